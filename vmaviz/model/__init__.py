"""Deterministic models of Linux 6.4 kernel data structures."""
