"""Quantized operators (int8 in, int8 out) with TFLite's integer arithmetic, and their float references."""
