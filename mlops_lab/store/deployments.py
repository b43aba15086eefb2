"""Deployments as team state: each one's desired state (model, rollout, owner, host), one row each."""

from __future__ import annotations

import json
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy import select

from .engine import Database
from .events import now_ms
from .models import Deployment

COLUMNS = ("name", "model", "options", "owner", "host", "port", "state")


class DeploymentStore(Protocol):
    def save(self, row: dict, user: str) -> None: ...

    def get(self, name: str) -> dict | None: ...

    def list(self) -> list[dict]: ...

    def remove(self, name: str) -> None: ...


def _record(row) -> dict:
    return {**dict(row._mapping), "options": json.loads(row.options)}


class SqlDeploymentStore(DeploymentStore):
    def __init__(self, db: Database):
        self.db = db

    def save(self, row: dict, user: str) -> None:
        """Create or replace ``row["name"]``'s desired state (``options`` a dict)."""
        values = {**{k: row[k] for k in COLUMNS}, "options": json.dumps(row["options"], sort_keys=True)}
        values.update(updated_at=now_ms(), updated_by=user)
        stmt = self.db.insert(Deployment)
        update = {column: stmt.excluded[column] for column in values if column != "name"}
        with self.db.writing() as conn:
            conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=update), [values])

    def get(self, name: str) -> dict | None:
        with self.db.reading() as conn:
            row = conn.execute(select(Deployment.__table__).where(Deployment.name == name)).first()
        return None if row is None else _record(row)

    def list(self) -> list[dict]:
        with self.db.reading() as conn:
            return [_record(r) for r in conn.execute(select(Deployment.__table__).order_by(Deployment.name)).all()]

    def remove(self, name: str) -> None:
        with self.db.writing() as conn:
            conn.execute(sa.delete(Deployment).where(Deployment.name == name))
