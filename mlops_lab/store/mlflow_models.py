"""MLflow 3's logged models, as MLflow's client logs them through the lab's MLflow API: one row
each (params and tags as JSON) and one row per file (a blob in the artifact store)."""

from __future__ import annotations

import json
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy import select, update

from ..errors import NotFoundError
from .engine import Database
from .models import MlflowLoggedModel, MlflowLoggedModelFile

COLUMNS = frozenset(MlflowLoggedModel.model_fields)
CHANGEABLE = frozenset({"status", "params", "tags", "updated_at", "deleted_at"})


class MlflowModelStore(Protocol):
    def create(self, row: dict) -> None: ...

    def update(self, model_id: str, values: dict) -> None: ...

    def get(self, model_id: str) -> dict | None: ...

    def search(self, experiment_ids: list[int], name: str | None = None) -> list[dict]: ...

    def add_files(self, rows: list[dict]) -> None: ...

    def files(self, model_id: str) -> list[dict]: ...


def _record(row) -> dict:
    record = dict(row._mapping)
    return {**record, "params": json.loads(record["params"]), "tags": json.loads(record["tags"])}


def _encoded(values: dict) -> dict:
    return {k: json.dumps(v, sort_keys=True) if k in ("params", "tags") else v for k, v in values.items()}


class SqlMlflowModelStore(MlflowModelStore):
    def __init__(self, db: Database):
        self.db = db

    def create(self, row: dict) -> None:
        with self.db.writing() as conn:
            conn.execute(sa.insert(MlflowLoggedModel), [_encoded({k: row[k] for k in row if k in COLUMNS})])

    def update(self, model_id: str, values: dict) -> None:
        """Change a model's status, params, tags or deletion (params and tags replace the old)."""
        unknown = set(values) - CHANGEABLE
        if unknown:
            raise ValueError(f"a logged model's {', '.join(sorted(unknown))} cannot be changed")
        with self.db.writing() as conn:
            statement = update(MlflowLoggedModel).where(MlflowLoggedModel.id == model_id)
            if not conn.execute(statement.values(**_encoded(values))).rowcount:
                raise NotFoundError(f"no logged model with id {model_id!r}")

    def get(self, model_id: str) -> dict | None:
        with self.db.reading() as conn:
            row = conn.execute(select(MlflowLoggedModel.__table__).where(MlflowLoggedModel.id == model_id)).first()
        return None if row is None else _record(row)

    def search(self, experiment_ids: list[int], name: str | None = None) -> list[dict]:
        """Models of the experiments, newest first (deleted ones too: callers decide)."""
        table = MlflowLoggedModel.__table__
        query = select(table).where(table.c.experiment_id.in_(experiment_ids))
        if name is not None:
            query = query.where(table.c.name == name)
        with self.db.reading() as conn:
            rows = conn.execute(query.order_by(table.c.created_at.desc(), table.c.id)).all()
        return [_record(r) for r in rows]

    def add_files(self, rows: list[dict]) -> None:
        if not rows:
            return
        statement = self.db.insert(MlflowLoggedModelFile)
        replace = {"hash": statement.excluded.hash, "size": statement.excluded.size}
        with self.db.writing() as conn:
            conn.execute(statement.on_conflict_do_update(index_elements=["model_id", "path"], set_=replace), rows)

    def files(self, model_id: str) -> list[dict]:
        table = MlflowLoggedModelFile.__table__
        with self.db.reading() as conn:
            rows = conn.execute(select(table).where(table.c.model_id == model_id).order_by(table.c.path)).all()
        return [dict(r._mapping) for r in rows]
