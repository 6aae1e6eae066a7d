"""Benchmark: the pipeline against the queue's own limit (see docs/performance.md)."""
