"""Drift reports: one row each naming what was compared and what it belongs to; the report itself
is a JSON blob in the artifact store."""

from __future__ import annotations

import json
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy import select

from ..errors import NotFoundError
from .engine import Database
from .models import DriftReportRecord


class DriftReportStore(Protocol):
    def add(self, row: dict) -> None: ...

    def list(self, limit: int = 100) -> list[dict]: ...

    def get(self, report_id: str) -> dict: ...


def _record(row) -> dict:
    return {**dict(row._mapping), "drifted_columns": json.loads(row.drifted_columns)}


class SqlDriftReportStore(DriftReportStore):
    def __init__(self, db: Database):
        self.db = db

    def add(self, row: dict) -> None:
        with self.db.writing() as conn:
            conn.execute(sa.insert(DriftReportRecord), [row])

    def list(self, limit: int = 100) -> list[dict]:
        table = DriftReportRecord.__table__
        with self.db.reading() as conn:
            rows = conn.execute(select(table).order_by(table.c.created_at.desc()).limit(limit)).all()
        return [_record(r) for r in rows]

    def get(self, report_id: str) -> dict:
        table = DriftReportRecord.__table__
        with self.db.reading() as conn:
            row = conn.execute(select(table).where(table.c.id == report_id)).first()
        if row is None:
            raise NotFoundError(f"no drift report with id {report_id!r}")
        return _record(row)
