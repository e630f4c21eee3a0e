"""Benchmarks of the product against raw-conversion baselines on a look-alike corpus at real scale."""
