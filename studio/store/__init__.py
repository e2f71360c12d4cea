"""Everything SQLite; nothing outside this package writes SQL."""

from studio.store.connection import connect, immediate, opened

__all__ = ["connect", "immediate", "opened"]
