"""The run store: the only code that writes SQL.  SQLite (WAL) by default, PostgreSQL by URL.

Writes arrive as a ``Batch`` (many rows of many tables) and land in one transaction: that is what
makes tracking cheap, unlike a transaction per logged value.
"""

from __future__ import annotations

import functools
import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event, func, select, update
from sqlalchemy.exc import DatabaseError, IntegrityError, OperationalError
from sqlmodel import SQLModel

from .filters import FilterError, attribute_column, compile_filter, parse_order_by
from .models import (
    Artifact, DatasetVersion, DriftReportRecord, Environment, FeatureDefinition, FileState, Event, Experiment, LatestMetric, LoggedModel, Metric,
    Param, Run, RunDataset, Tag,
)

# The Alembic revision the models above describe; tests check it equals the migrations' head.
SCHEMA_REVISION = "0006"
TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")
# What a search returns of each run (the cell's code and the like stay in get_run).
SEARCH_COLUMNS = ("id", "experiment_id", "name", "status", "user", "start_time", "end_time", "parent_run_id",
                  "notebook_path", "git_commit")
HEARTBEAT_SECONDS = 15
STALE_AFTER_SECONDS = 300
HOST = socket.gethostname()


class StoreError(RuntimeError):
    """The store cannot be opened or used; the message says which store and why."""


class NotFoundError(KeyError):
    def __str__(self) -> str:  # KeyError quotes its message; a person reads this one
        return str(self.args[0])


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Batch:
    """Rows to write together.  Order of application: parents before children, updates last."""

    environments: list[dict] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)
    datasets: list[dict] = field(default_factory=list)
    params: list[dict] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)
    tags: list[dict] = field(default_factory=list)
    artifacts: list[dict] = field(default_factory=list)
    models: list[dict] = field(default_factory=list)
    run_datasets: list[dict] = field(default_factory=list)
    run_updates: list[tuple[str, dict]] = field(default_factory=list)
    events: list[dict] = field(default_factory=list)

    def extend(self, other: "Batch") -> None:
        for name in self.__dataclass_fields__:
            getattr(self, name).extend(getattr(other, name))

    def __len__(self) -> int:
        return sum(len(getattr(self, name)) for name in self.__dataclass_fields__)


@dataclass
class RunRecord:
    """Everything stored about one run."""

    info: Run
    experiment: str
    params: dict[str, str]
    metrics: dict[str, float]  # the latest value of each
    metric_summaries: dict[str, dict]  # per metric: last step, min, max, count
    tags: dict[str, str]
    artifacts: list[dict]
    models: list[dict]
    datasets: list[dict]
    environment: dict | None

    def to_dict(self) -> dict:
        """A JSON-ready form (NaN and inf become strings, which JSON lacks)."""
        info = self.info.model_dump()
        info["experiment"] = self.experiment
        return {
            "info": info, "params": self.params, "metrics": {k: json_number(v) for k, v in self.metrics.items()},
            "metric_summaries": {k: {**s, "min": json_number(s["min"]), "max": json_number(s["max"])}
                                 for k, s in self.metric_summaries.items()},
            "tags": self.tags, "artifacts": self.artifacts,
            "models": [{**m, "signature": json.loads(m["signature"])} for m in self.models],
            "datasets": [{**d, "columns": json.loads(d["columns"]),
                          "preview": json.loads(d["preview"]) if d.get("preview") else None} for d in self.datasets],
            "environment": self.environment,
        }


def json_number(value: float) -> float | str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _json_dict(text) -> dict:
    if text is None:
        return {}
    return text if isinstance(text, dict) else json.loads(text)


def _metric_from_json(value) -> float:
    """JSON has no NaN or infinity: NULL is NaN, and each engine spells infinity its own way."""
    if value is None:
        return float("nan")
    return float(value)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _json_value(value: float | None) -> float:
    return float("nan") if value is None else value


class Store:
    """One database, either engine.  Thread-safe; open it with ``open_store``."""

    def __init__(self, db_url: str):
        self.url = db_url
        self.dialect = sa.engine.make_url(db_url).get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise StoreError(f"unsupported database {db_url!r}: use sqlite:///PATH or postgresql+psycopg://…")
        self.engine = self._make_engine(db_url)
        self._last_reap = 0.0
        self._ensure_schema()

    # ---- engine and schema -------------------------------------------------------------------

    def _make_engine(self, db_url: str) -> sa.Engine:
        if self.dialect == "sqlite":
            path = sa.engine.make_url(db_url).database
            if path and path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = sa.create_engine(db_url, connect_args={"timeout": 60, "check_same_thread": False})

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_connection, _record):
                dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
                cursor.execute("PRAGMA busy_timeout=60000")
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute("PRAGMA cache_size=-65536")  # 64 MB of pages per connection, not 2 MB
                cursor.close()

            @event.listens_for(engine, "begin")
            def _on_begin(connection):
                # A writer takes the lock up front: a deferred transaction that later writes can
                # fail at once with "database is locked" instead of waiting its turn.
                write = connection.get_execution_options().get("write", False)
                connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

            return engine
        if db_url.startswith("postgresql://"):
            db_url = "postgresql+psycopg://" + db_url.removeprefix("postgresql://")
        return sa.create_engine(db_url, pool_pre_ping=True, pool_size=5, max_overflow=5)

    @contextmanager
    def writing(self):
        """A connection in a write transaction (``with store.writing() as conn``)."""
        with self.engine.connect().execution_options(write=True) as conn, conn.begin():
            yield conn

    def _ensure_schema(self) -> None:
        try:
            with self.writing() as conn:
                if self.dialect == "postgresql":
                    # Two processes opening a fresh database must not both create the tables.
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7245001)"))
                tables = set(sa.inspect(conn).get_table_names())
                if "alembic_version" in tables:
                    revision = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
                    if revision == SCHEMA_REVISION:
                        return
                elif not tables:
                    SQLModel.metadata.create_all(conn)
                    conn.execute(sa.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)"))
                    conn.execute(sa.text("INSERT INTO alembic_version VALUES (:v)"), {"v": SCHEMA_REVISION})
                    return
                else:
                    raise StoreError(
                        f"{self.url} holds tables of another application ({', '.join(sorted(tables)[:5])}); "
                        "mlops_lab will not write into it: point MLOPS_LAB_DB_URL at a new or mlops_lab database"
                    )
            self._upgrade(revision)
        except DatabaseError as exc:
            raise StoreError(f"cannot open store {self.url}: {exc.orig or exc}. Is it a database file, and not corrupt?") from exc

    def _upgrade(self, revision: str | None) -> None:
        from . import migrations

        migrations.upgrade(self.engine, from_revision=revision)

    # ---- writes ------------------------------------------------------------------------------

    def _insert(self, model):
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        return insert(model.__table__)

    def get_or_create_experiment(self, name: str, user: str) -> int:
        with self.writing() as conn:
            conn.execute(
                self._insert(Experiment).on_conflict_do_nothing(index_elements=["name"]),
                {"name": name, "created_at": now_ms(), "created_by": user},
            )
            return conn.execute(select(Experiment.id).where(Experiment.name == name)).scalar_one()

    def write(self, batch: Batch) -> None:
        """Apply a batch in one transaction; all of it lands or none of it."""
        if not len(batch):
            return
        with self.writing() as conn:
            if batch.environments:
                conn.execute(self._insert(Environment).on_conflict_do_nothing(index_elements=["hash"]), batch.environments)
            if batch.runs:
                conn.execute(sa.insert(Run), batch.runs)
            if batch.datasets:
                conn.execute(self._insert(DatasetVersion).on_conflict_do_nothing(index_elements=["hash"]), batch.datasets)
            if batch.params:
                conn.execute(self._insert(Param).on_conflict_do_nothing(index_elements=["run_id", "key"]), batch.params)
            if batch.metrics:
                conn.execute(sa.insert(Metric), batch.metrics)
                self._update_latest_metrics(conn, batch.metrics)
            for model, rows, keys in (
                (Tag, batch.tags, ["run_id", "key"]),
                (Artifact, batch.artifacts, ["run_id", "path"]),
                (LoggedModel, batch.models, ["run_id", "name"]),
            ):
                if rows:
                    stmt = self._insert(model)
                    values = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
                    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=values), rows)
            if batch.run_datasets:
                conn.execute(
                    self._insert(RunDataset).on_conflict_do_nothing(index_elements=["run_id", "dataset_hash", "direction", "name"]),
                    batch.run_datasets,
                )
            for run_id, values in batch.run_updates:
                conn.execute(update(Run).where(Run.id == run_id).values(**values))
            if batch.events:
                conn.execute(sa.insert(Event), batch.events)

    def _update_latest_metrics(self, conn, points: list[dict]) -> None:
        summary: dict[tuple[str, str], dict] = {}
        for p in points:
            key = (p["run_id"], p["key"])
            value = p["value"]
            s = summary.get(key)
            if s is None:
                summary[key] = s = {**p, "min_value": value, "max_value": value, "count": 0}
            elif (p["step"], p["timestamp"]) >= (s["step"], s["timestamp"]):
                s.update(value=value, step=p["step"], timestamp=p["timestamp"])
            if value is not None:
                if s["min_value"] is None or value < s["min_value"]:
                    s["min_value"] = value
                if s["max_value"] is None or value > s["max_value"]:
                    s["max_value"] = value
            s["count"] += 1
        stmt = self._insert(LatestMetric)
        new, old = stmt.excluded, LatestMetric.__table__.c
        newer = sa.or_(new.step > old.step, sa.and_(new.step == old.step, new.timestamp >= old.timestamp))
        stmt = stmt.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={
                "value": sa.case((newer, new.value), else_=old.value),
                "timestamp": sa.case((newer, new.timestamp), else_=old.timestamp),
                "step": sa.case((newer, new.step), else_=old.step),
                "min_value": sa.case((sa.or_(old.min_value.is_(None), new.min_value < old.min_value), new.min_value), else_=old.min_value),
                "max_value": sa.case((sa.or_(old.max_value.is_(None), new.max_value > old.max_value), new.max_value), else_=old.max_value),
                "count": old.count + new.count,
            },
        )
        rows = [{k: s[k] for k in ("run_id", "key", "value", "step", "timestamp", "min_value", "max_value", "count")}
                for s in summary.values()]
        conn.execute(stmt, rows)

    def reap_stale_runs(self, *, force: bool = False) -> list[str]:
        """Mark KILLED the RUNNING runs whose process is gone (same host) or silent too long."""
        if not force and time.monotonic() - self._last_reap < 5:
            return []
        self._last_reap = time.monotonic()
        with self.engine.connect() as conn:
            running = conn.execute(select(Run.id, Run.host, Run.pid, Run.heartbeat_at).where(Run.status == "RUNNING")).all()
        cutoff = now_ms() - STALE_AFTER_SECONDS * 1000
        dead = [r.id for r in running if (r.host == HOST and not _pid_alive(r.pid)) or r.heartbeat_at < cutoff]
        if not dead:
            return []
        end = now_ms()
        with self.writing() as conn:
            for run_id in dead:
                changed = conn.execute(
                    update(Run).where(Run.id == run_id, Run.status == "RUNNING").values(
                        status="KILLED", end_time=end,
                        error="the process that ran this run ended without finishing it"),
                ).rowcount
                if changed:
                    conn.execute(sa.insert(Event), [{
                        "entity_type": "run", "entity_id": run_id, "kind": "status", "user": "mlops_lab",
                        "time": end, "payload": json.dumps({"from": "RUNNING", "to": "KILLED", "reason": "process gone"}),
                    }])
        return dead

    # ---- reads -------------------------------------------------------------------------------

    def list_experiments(self) -> list[Experiment]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(Experiment).order_by(Experiment.id)).all()
        return [Experiment.model_validate(r._mapping) for r in rows]

    def experiment_id(self, name: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(select(Experiment.id).where(Experiment.name == name)).scalar()

    def get_run(self, run_id: str) -> RunRecord:
        self.reap_stale_runs()
        with self.engine.connect() as conn:
            row = conn.execute(
                select(*Run.__table__.c, Experiment.name.label("experiment_name"))
                .join(Experiment, Experiment.id == Run.experiment_id).where(Run.id == run_id)
            ).first()
            if row is None:
                raise NotFoundError(f"no run with id {run_id!r}")
            info = Run.model_validate({k: v for k, v in row._mapping.items() if k != "experiment_name"})
            params = dict(conn.execute(select(Param.key, Param.value).where(Param.run_id == run_id)).all())
            latest = conn.execute(select(LatestMetric.key, LatestMetric.value, LatestMetric.step, LatestMetric.min_value,
                                         LatestMetric.max_value, LatestMetric.count)
                                  .where(LatestMetric.run_id == run_id)).all()
            metrics = {key: _json_value(value) for key, value, *_ in latest}
            summaries = {key: {"last_step": step, "min": _json_value(low), "max": _json_value(high), "count": count}
                         for key, _, step, low, high, count in latest}
            tags = dict(conn.execute(select(Tag.key, Tag.value).where(Tag.run_id == run_id)).all())
            artifacts = [dict(r._mapping) for r in conn.execute(
                select(Artifact.path, Artifact.hash, Artifact.size, Artifact.kind).where(Artifact.run_id == run_id))]
            models = [dict(r._mapping) for r in conn.execute(select(LoggedModel).where(LoggedModel.run_id == run_id))]
            datasets = [dict(r._mapping) for r in conn.execute(
                select(RunDataset.name, RunDataset.direction, RunDataset.source, DatasetVersion.hash,
                       DatasetVersion.format, DatasetVersion.num_rows, DatasetVersion.num_bytes,
                       DatasetVersion.columns, DatasetVersion.preview)
                .join(DatasetVersion, DatasetVersion.hash == RunDataset.dataset_hash)
                .where(RunDataset.run_id == run_id))]
            environment = None
            if info.environment_hash:
                env = conn.execute(select(Environment).where(Environment.hash == info.environment_hash)).first()
                if env is not None:
                    environment = {"python": env.python, "platform": env.platform,
                                   "packages": json.loads(env.packages), "hardware": json.loads(env.hardware)}
        return RunRecord(info, row.experiment_name, params, metrics, summaries, tags, artifacts, models, datasets,
                         environment)

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, int, float]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(Metric.step, Metric.timestamp, Metric.value)
                .where(Metric.run_id == run_id, Metric.key == key).order_by(Metric.step, Metric.timestamp, Metric.id)
            ).all()
        return [(step, ts, _json_value(v)) for step, ts, v in rows]

    @functools.cached_property
    def _metric_points_statement(self):
        metric = Metric.__table__.c
        return select(metric.step, metric.value).where(
            metric.run_id == sa.bindparam("run_id"), metric.key == sa.bindparam("key"),
        ).order_by(metric.step, metric.timestamp, metric.id)

    def metric_arrays(self, run_id: str, key: str):
        """A metric's steps and values as numpy arrays, in step order (NaN where NULL): for charts."""
        import numpy as np

        rows = self._raw_rows(*self._compiled(self._metric_points_statement, {"run_id": run_id, "key": key}))
        if not rows:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        steps, values = zip(*rows)
        return np.array(steps, dtype=np.int64), np.array(values, dtype=np.float64)  # None becomes NaN

    def count_metric_points(self, run_id: str | None = None) -> int:
        with self.engine.connect() as conn:
            query = select(func.count()).select_from(Metric)
            if run_id is not None:
                query = query.where(Metric.run_id == run_id)
            return conn.execute(query).scalar_one()

    def search_runs(
        self,
        experiment_ids: list[int] | None = None,
        filter_string: str | None = None,
        order_by: list[str] | str | None = None,
        max_results: int = 1000,
        offset: int = 0,
    ) -> tuple[list[dict], dict[str, dict], dict[str, dict], dict[str, dict]]:
        """Matching runs (as dicts) and their params, latest metrics and tags keyed by run id."""
        if not isinstance(max_results, int) or isinstance(max_results, bool) or not 0 < max_results <= 100_000:
            raise FilterError(f"max_results must be an integer from 1 to 100000, got {max_results!r}")
        if not isinstance(offset, int) or offset < 0:
            raise FilterError(f"offset must be a non-negative integer, got {offset!r}")
        order = tuple(order_by) if isinstance(order_by, (list, tuple)) else order_by
        query = self._search_statement(None if experiment_ids is None else tuple(experiment_ids), filter_string,
                                       order, max_results, offset)
        self.reap_stale_runs()
        sql, parameters = query
        with self.engine.connect() as conn:
            result = conn.exec_driver_sql(sql, parameters)
            columns = list(result.keys())
            runs = [dict(zip(columns, row)) for row in result.all()]
        params, metrics, tags = {}, {}, {}
        for r in runs:
            run_id = r["id"]
            document = _json_dict(r.pop("run_values"))
            params[run_id] = document.get("params") or {}
            metrics[run_id] = {k: _metric_from_json(v) for k, v in (document.get("metrics") or {}).items()}
            tags[run_id] = document.get("tags") or {}
        return runs, params, metrics, tags

    @functools.lru_cache(maxsize=256)
    def _search_statement(self, experiment_ids: tuple | None, filter_string: str | None, order_by,
                          max_results: int, offset: int) -> tuple[str, tuple | dict]:
        """The search statement, compiled to SQL text and its parameters.  Kept: a lab polls the
        same search again and again, and building and compiling it costs more than running it."""
        condition = compile_filter(filter_string)
        run, experiment = Run.__table__, Experiment.__table__
        # Each run's params, latest metrics and tags come back as one JSON document in the run's
        # row: one statement and one row per run, not one row per value.
        values = self._json_object(*[part for kind, model in (
            ("params", Param), ("metrics", LatestMetric), ("tags", Tag)) for part in (
            sa.literal(kind),
            select(self._json_group(model.__table__.c.key, model.__table__.c.value))
            .where(model.__table__.c.run_id == run.c.id).scalar_subquery())])
        query = select(*(run.c[name] for name in SEARCH_COLUMNS), experiment.c.name.label("experiment"),
                       values.label("run_values")) \
            .join(experiment, experiment.c.id == run.c.experiment_id)
        if experiment_ids is not None:
            query = query.where(run.c.experiment_id.in_(experiment_ids))
        if condition is not None:
            query = query.where(condition)
        for index, (fld, descending) in enumerate(parse_order_by(order_by)):
            if fld.entity == "attributes":
                column = attribute_column(fld.key)
            else:
                table = {"metrics": LatestMetric, "params": Param, "tags": Tag}[fld.entity].__table__.alias(f"order_{index}")
                query = query.outerjoin(table, sa.and_(table.c.run_id == run.c.id, table.c.key == fld.key))
                column = table.c.value
                if fld.entity == "params":  # numbers by value, then the rest as text
                    number = table.c.value_num
                    query = query.order_by(number.is_(None), number.desc() if descending else number.asc())
            query = query.order_by(column.is_(None), column.desc() if descending else column.asc())
        query = query.order_by(run.c.start_time.desc(), run.c.id).limit(max_results).offset(offset)
        return self._compiled(query)

    def _compiled(self, statement, values: dict | None = None) -> tuple[str, tuple | dict]:
        """SQL text and parameters in the driver's own form, to run without SQLAlchemy's per-row work;
        ``values`` fill the statement's named ``bindparam``s."""
        compiled = statement.compile(dialect=self.engine.dialect, compile_kwargs={"render_postcompile": True})
        params = {**compiled.params, **(values or {})}
        if compiled.positiontup is not None:  # SQLite's "?" placeholders take a tuple in order
            return str(compiled), tuple(params[name] for name in compiled.positiontup)
        return str(compiled), params

    def _raw_rows(self, sql: str, parameters: tuple | dict) -> list[tuple]:
        """Plain tuples straight from the driver: for results of many thousands of rows."""
        with self.engine.connect() as conn:
            cursor = conn.connection.driver_connection.cursor()
            try:
                cursor.execute(sql, parameters)
                return cursor.fetchall()
            finally:
                cursor.close()

    def _json_object(self, *pairs):
        """``{k1: v1, …}`` from alternating keys and values; the function differs by engine."""
        return func.json_object(*pairs) if self.dialect == "sqlite" else func.json_build_object(*pairs)

    def _json_group(self, key, value):
        """An aggregate building ``{key: value}`` from rows; the function differs by engine."""
        if self.dialect == "sqlite":
            if isinstance(value.type, sa.Float):  # SQLite writes infinity as a bare Inf, not JSON
                value = sa.case((value > 1.7e308, "Infinity"), (value < -1.7e308, "-Infinity"), else_=value)
            return func.json_group_object(key, value)
        return func.json_object_agg(key, value)

    def file_hash(self, path: str, inode: int, mtime_ns: int, size: int) -> str | None:
        """The cached hash of a file on this host, if it has not changed since it was hashed."""
        state = FileState.__table__.c
        with self.engine.connect() as conn:
            return conn.execute(select(state.hash).where(
                state.host == HOST, state.path == path, state.inode == inode, state.mtime_ns == mtime_ns,
                state.size == size)).scalar()

    def remember_file_hash(self, path: str, inode: int, mtime_ns: int, size: int, digest: str) -> None:
        stmt = self._insert(FileState)
        values = {"inode": inode, "mtime_ns": mtime_ns, "size": size, "hash": digest}
        with self.writing() as conn:
            conn.execute(stmt.on_conflict_do_update(index_elements=["host", "path"], set_=values),
                         [{"host": HOST, "path": path, **values}])

    def save_definition(self, kind: str, name: str, spec: dict, user: str) -> None:
        stmt = self._insert(FeatureDefinition)
        values = {"spec": json.dumps(spec), "updated_at": now_ms(), "updated_by": user}
        with self.writing() as conn:
            conn.execute(stmt.on_conflict_do_update(index_elements=["kind", "name"], set_=values),
                         [{"kind": kind, "name": name, **values}])

    def definitions(self) -> dict[str, dict[str, dict]]:
        """Feature definitions by kind, then name."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(FeatureDefinition.kind, FeatureDefinition.name, FeatureDefinition.spec)).all()
        result: dict[str, dict[str, dict]] = {"entity": {}, "view": {}, "service": {}, "materialized": {}}
        for kind, name, spec in rows:
            result.setdefault(kind, {})[name] = json.loads(spec)
        return result

    def add_drift_report(self, row: dict) -> None:
        with self.writing() as conn:
            conn.execute(sa.insert(DriftReportRecord), [row])

    def drift_reports(self, limit: int = 100) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(DriftReportRecord.__table__).order_by(DriftReportRecord.created_at.desc())
                                .limit(limit)).all()
        return [{**dict(r._mapping), "drifted_columns": json.loads(r.drifted_columns)} for r in rows]

    def drift_report(self, report_id: str) -> dict:
        with self.engine.connect() as conn:
            row = conn.execute(select(DriftReportRecord.__table__).where(DriftReportRecord.id == report_id)).first()
        if row is None:
            raise NotFoundError(f"no drift report with id {report_id!r}")
        return {**dict(row._mapping), "drifted_columns": json.loads(row.drifted_columns)}

    def events(self, entity_type: str, entity_id: str) -> list[dict]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(Event).where(Event.entity_type == entity_type, Event.entity_id == entity_id)
                                .order_by(Event.id)).all()
        return [{**dict(r._mapping), "payload": json.loads(r.payload)} for r in rows]

    def dispose(self) -> None:
        self.engine.dispose()


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def open_store(db_url: str) -> Store:
    """The process's one Store for a URL (engines and their pools are shared)."""
    with _stores_lock:
        store = _stores.get(db_url)
        if store is None:
            store = _stores[db_url] = Store(db_url)
        return store


def forget_stores() -> None:
    """Close every open store (tests, and a process that switches stores)."""
    with _stores_lock:
        for store in _stores.values():
            store.dispose()
        _stores.clear()


__all__ = ["Batch", "FilterError", "IntegrityError", "NotFoundError", "OperationalError", "RunRecord",
           "Store", "StoreError", "TERMINAL_STATUSES", "now_ms", "open_store", "forget_stores"]
