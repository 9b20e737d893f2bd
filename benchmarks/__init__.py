"""Benchmarks: latency, size and accuracy of every variant, the camera pipeline, training."""
