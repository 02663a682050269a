"""Persistence behind small interfaces: memory, SQLite (the default) and, later, Redis."""
