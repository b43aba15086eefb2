"""The run store (SQLModel tables on SQLite or PostgreSQL) and the content-addressed blob store."""

from .filters import FilterError
from .sql import Batch, NotFoundError, RunRecord, Store, StoreError, forget_stores, now_ms, open_store

__all__ = ["Batch", "FilterError", "NotFoundError", "RunRecord", "Store", "StoreError", "forget_stores", "now_ms", "open_store"]
