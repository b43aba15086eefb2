"""The feature store's storage: definitions in the run database, online values in a SQLite file
(one row per view and entity key) or in Redis (one hash per view).

Both online stores write only values at least as new as what they hold.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Protocol

from sqlalchemy import select

from .engine import Database
from .events import now_ms
from .models import FeatureDefinition

DEFINITION_KINDS = ("entity", "view", "service", "materialized")


class FeatureDefinitionStore(Protocol):
    def save_definition(self, kind: str, name: str, spec: dict, user: str) -> None: ...

    def definitions(self) -> dict[str, dict[str, dict]]: ...


class SqlFeatureDefinitionStore(FeatureDefinitionStore):
    def __init__(self, db: Database):
        self.db = db

    def save_definition(self, kind: str, name: str, spec: dict, user: str) -> None:
        stmt = self.db.insert(FeatureDefinition)
        values = {"spec": json.dumps(spec), "updated_at": now_ms(), "updated_by": user}
        with self.db.writing() as conn:
            conn.execute(
                stmt.on_conflict_do_update(index_elements=["kind", "name"], set_=values),
                [{"kind": kind, "name": name, **values}],
            )

    def definitions(self) -> dict[str, dict[str, dict]]:
        """Feature definitions by kind, then name."""
        with self.db.reading() as conn:
            rows = conn.execute(select(FeatureDefinition.kind, FeatureDefinition.name, FeatureDefinition.spec)).all()
        result: dict[str, dict[str, dict]] = {kind: {} for kind in DEFINITION_KINDS}
        for kind, name, spec in rows:
            result.setdefault(kind, {})[name] = json.loads(spec)
        return result


class OnlineStore(Protocol):
    """Rows are ``(entity key as JSON, event time, values as JSON)``."""

    def write(self, view: str, rows: list[tuple[str, str, str]]) -> None: ...

    def read(self, view: str, entities: list[str]) -> dict[str, str]: ...


class SQLiteOnlineStore(OnlineStore):
    """Online values in a local SQLite file: one row per (view, entity key)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self.path = path
        with self._connection() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS online (view TEXT, entity TEXT, event_time TEXT, "
                "vals TEXT, PRIMARY KEY (view, entity))"
            )

    def _connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = sqlite3.connect(self.path, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
        return conn

    def write(self, view: str, rows: list[tuple[str, str, str]]) -> None:
        with self._connection() as conn:
            conn.executemany(
                "INSERT INTO online VALUES (?, ?, ?, ?) ON CONFLICT (view, entity) DO UPDATE SET "
                "event_time = excluded.event_time, vals = excluded.vals "
                "WHERE excluded.event_time >= online.event_time",
                [(view, *r) for r in rows],
            )

    def read(self, view: str, entities: list[str]) -> dict[str, str]:
        marks = ",".join("?" * len(entities))
        rows = (
            self._connection()
            .execute(f"SELECT entity, vals FROM online WHERE view = ? AND entity IN ({marks})", [view, *entities])
            .fetchall()
        )
        return dict(rows)


class RedisOnlineStore(OnlineStore):
    """Online values in Redis: one hash per view, field = entity key."""

    def __init__(self, url: str):
        import redis

        self.client = redis.Redis.from_url(url)
        self.client.ping()

    def write(self, view: str, rows: list[tuple[str, str, str]]) -> None:
        key = f"mlops_lab:features:{view}"
        existing = self.client.hmget(f"{key}:time", [entity for entity, _, _ in rows]) if rows else []
        newer = [(e, t, v) for (e, t, v), old in zip(rows, existing) if old is None or t >= old.decode()]
        if newer:
            pipe = self.client.pipeline()
            pipe.hset(key, mapping={e: v for e, _, v in newer})
            pipe.hset(f"{key}:time", mapping={e: t for e, t, _ in newer})
            pipe.execute()

    def read(self, view: str, entities: list[str]) -> dict[str, str]:
        values = self.client.hmget(f"mlops_lab:features:{view}", entities)
        return {e: v.decode() for e, v in zip(entities, values) if v is not None}


def open_online_store(online: str, folder: Path) -> OnlineStore:
    """``"sqlite"`` (a file in ``folder``) or a ``redis://`` URL."""
    return RedisOnlineStore(online) if online.startswith("redis://") else SQLiteOnlineStore(folder / "online.db")
