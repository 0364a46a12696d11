"""qmac cocotb testbenches and the simulation runner (``python -m tb.run``)."""
