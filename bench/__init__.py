"""Benchmarks: print ratios measured side by side in one run; never timed assertions (see bench/README.md)."""
