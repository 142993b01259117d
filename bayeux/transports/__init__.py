"""Thin Tornado adapters between bytes on a connection and the sans-I/O core."""
