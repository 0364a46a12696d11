"""Float training: the autograd-free layer API, the training loop, the demo digits network."""
