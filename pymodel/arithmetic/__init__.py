"""Integer arithmetic: rounding rules, fixed-point requantization, scales / zero points, exact GEMM."""
