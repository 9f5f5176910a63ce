"""Benchmarks: `make bench` runs them all; each prints ratios to a baseline measured in the same run."""
