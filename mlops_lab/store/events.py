"""The append-only history: every state change of a run, model or deployment, with who and when.

Other domains write their events inside their own transaction (``add_events(conn, rows)``), so a
change and its record land together or not at all.
"""

from __future__ import annotations

import json
import time
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy import select

from .engine import Database
from .models import Event


def now_ms() -> int:
    return int(time.time() * 1000)


def event_row(entity_type: str, entity_id: str, kind: str, user: str, payload: dict) -> dict:
    return {
        "entity_type": entity_type,
        "entity_id": entity_id,
        "kind": kind,
        "user": user,
        "time": now_ms(),
        "payload": json.dumps(payload),
    }


def add_events(conn, rows: list[dict]) -> None:
    if rows:
        conn.execute(sa.insert(Event), rows)


class EventStore(Protocol):
    def add(self, rows: list[dict]) -> None: ...

    def events(self, entity_type: str, entity_id: str) -> list[dict]: ...


class SqlEventStore(EventStore):
    def __init__(self, db: Database):
        self.db = db

    def add(self, rows: list[dict]) -> None:
        with self.db.writing() as conn:
            add_events(conn, rows)

    def events(self, entity_type: str, entity_id: str) -> list[dict]:
        with self.db.reading() as conn:
            rows = conn.execute(
                select(Event).where(Event.entity_type == entity_type, Event.entity_id == entity_id).order_by(Event.id)
            ).all()
        return [{**dict(r._mapping), "payload": json.loads(r.payload)} for r in rows]
