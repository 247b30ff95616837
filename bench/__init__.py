"""Benchmarks (``make bench``): figures are printed, not asserted; each is a ratio to a baseline run in the same command."""
