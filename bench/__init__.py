"""qmac benchmarks (``make bench``)."""
