"""Benchmarks printed by ``python -m vmaviz bench``.  They print figures; tests never time."""
