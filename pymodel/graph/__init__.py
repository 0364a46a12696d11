"""Networks as graphs: the float network description, the quantized-network artifact, integer inference."""
