"""The store: SQLAlchemy Core on SQLite (the default) or PostgreSQL."""

from syndicate.store.db import Database
from syndicate.store.schema import migrate, require_current

__all__ = ["Database", "migrate", "require_current"]
