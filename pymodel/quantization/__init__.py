"""Quantization flows: post-training quantization, QAT and its fake quantization, CLE, bias correction."""
