"""Dash user interface: pure figure builders and the app factory."""
