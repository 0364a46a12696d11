"""Calibration: streaming histograms and the calibrators that choose a tensor's real range."""
