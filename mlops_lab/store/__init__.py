"""Stores by domain over one database (SQLite or PostgreSQL), each behind an interface.

    store = open_store("sqlite:///runs.db")
    store.runs.get_run(run_id)              # RunStore: runs and their search
    store.models.list_versions("churn")     # ModelRegistryStore
    store.drift_reports.list()              # DriftReportStore
    store.features.definitions()            # FeatureDefinitionStore
    store.file_state.file_hashes(...)       # FileStateStore
    store.events.events("model", "churn")   # EventStore
    store.deployments.list()                # DeploymentStore: what every lab should be serving
    store.mlflow_models.get(model_id)       # MlflowModelStore: models MLflow's client logged

The SQL implementations sit beside their interfaces; the REST client of a team server
(``open_store("http://team-server:5050", token)``) stands in for all of them.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import NotFoundError
from .deployments import DeploymentStore, SqlDeploymentStore
from .drift_reports import DriftReportStore, SqlDriftReportStore
from .engine import Database, StoreError
from .events import EventStore, SqlEventStore, now_ms
from .features import FeatureDefinitionStore, SqlFeatureDefinitionStore
from .file_state import FileStateStore, SqlFileStateStore
from .filters import FilterError
from .mlflow_models import MlflowModelStore, SqlMlflowModelStore
from .registry import ModelRegistryStore, SqlModelRegistryStore
from .runs import Batch, MetricSeries, RunRecord, RunStore, SqlRunStore
from .team import SqlTeamStore

if TYPE_CHECKING:
    from ..remote import RemoteClient


@dataclass
class Store:
    """One database's stores, one per domain (``db`` is None for a team server's)."""

    db: Database | None
    runs: RunStore
    models: ModelRegistryStore
    drift_reports: DriftReportStore
    features: FeatureDefinitionStore
    file_state: FileStateStore
    events: EventStore
    deployments: DeploymentStore
    mlflow_models: MlflowModelStore
    team: SqlTeamStore | None = None  # users, tokens and permissions: the team server's own

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
            SqlDeploymentStore(db),
            SqlMlflowModelStore(db),
            SqlTeamStore(db),
        )

    @classmethod
    def rest(cls, client: "RemoteClient") -> "Store":
        from . import rest

        return cls(
            None,
            rest.RestRunStore(client),
            rest.RestModelRegistryStore(client),
            rest.RestDriftReportStore(client),
            rest.RestFeatureDefinitionStore(client),
            rest.RestFileStateStore(client),
            rest.RestEventStore(client),
            rest.RestDeploymentStore(client),
            rest.RestMlflowModelStore(client),
        )

    @property
    def url(self) -> str:
        return self.runs.url

    def dispose(self) -> None:
        if self.db is not None:
            self.db.dispose()


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def open_store(db_url: str, token: str | None = None) -> Store:
    """The process's one Store for a URL (engines and their pools are shared): a database's, or a
    team server's (``http(s)://…``, reached with ``token``)."""
    with _stores_lock:
        key = f"{db_url} {token}" if token else db_url
        store = _stores.get(key)
        if store is None:
            if db_url.startswith(("http://", "https://")):
                from ..remote import RemoteClient  # requests: loaded only for a team server

                store = Store.rest(RemoteClient(db_url, token))
            else:
                store = Store.sql(Database(db_url))
            _stores[key] = store
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
