"""Data files the app reads (built by scripts in tests/data)."""
