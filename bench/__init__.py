"""Benchmarks and the fault suite: programs that print figures (not timed tests)."""
