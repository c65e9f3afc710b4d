"""Integrations with other frameworks (shoal.contrib.asgi)."""
