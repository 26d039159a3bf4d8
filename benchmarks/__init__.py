"""Benchmarks of the workbench (run as modules: ``python -m benchmarks.throughput``)."""
