"""Benchmark scripts (plain scripts, not tests) and the app modules they run."""
