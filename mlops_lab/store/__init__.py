"""Stores by domain over one database (SQLite or PostgreSQL), each behind an interface.

    store = open_store("sqlite:///runs.db")
    store.runs.get_run(run_id)              # RunStore: runs and their search
    store.models.list_versions("churn")     # ModelRegistryStore
    store.drift_reports.list()              # DriftReportStore
    store.features.definitions()            # FeatureDefinitionStore
    store.file_state.file_hashes(...)       # FileStateStore
    store.events.events("model", "churn")   # EventStore

The SQL implementations sit beside their interfaces; a second implementation (a REST client of a
team server) can stand in for any of them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ..errors import NotFoundError
from .drift_reports import DriftReportStore, SqlDriftReportStore
from .engine import Database, StoreError
from .events import EventStore, SqlEventStore, now_ms
from .features import FeatureDefinitionStore, SqlFeatureDefinitionStore
from .file_state import FileStateStore, SqlFileStateStore
from .filters import FilterError
from .registry import ModelRegistryStore, SqlModelRegistryStore
from .runs import Batch, MetricSeries, RunRecord, RunStore, SqlRunStore


@dataclass
class Store:
    """One database's stores, one per domain."""

    db: Database
    runs: RunStore
    models: ModelRegistryStore
    drift_reports: DriftReportStore
    features: FeatureDefinitionStore
    file_state: FileStateStore
    events: EventStore

    @classmethod
    def sql(cls, db: Database) -> "Store":
        return cls(
            db,
            SqlRunStore(db),
            SqlModelRegistryStore(db),
            SqlDriftReportStore(db),
            SqlFeatureDefinitionStore(db),
            SqlFileStateStore(db),
            SqlEventStore(db),
        )

    @property
    def url(self) -> str:
        return self.db.url

    def dispose(self) -> None:
        self.db.dispose()


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def open_store(db_url: str) -> Store:
    """The process's one Store for a URL (engines and their pools are shared)."""
    with _stores_lock:
        store = _stores.get(db_url)
        if store is None:
            store = _stores[db_url] = Store.sql(Database(db_url))
        return store


def forget_stores() -> None:
    """Close every open store (tests, and a process that switches stores)."""
    with _stores_lock:
        for store in _stores.values():
            store.dispose()
        _stores.clear()


__all__ = [
    "Batch",
    "MetricSeries",
    "Database",
    "FilterError",
    "NotFoundError",
    "RunRecord",
    "Store",
    "StoreError",
    "forget_stores",
    "now_ms",
    "open_store",
]
