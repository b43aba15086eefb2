"""Runs and their search: experiments, runs, params, metrics, tags, artifacts, logged models and
dataset versions.

Writes arrive as a ``Batch`` (many rows of many tables) and land in one transaction: that is what
makes tracking cheap, unlike a transaction per logged value.  Search is one statement per page.
"""

from __future__ import annotations

import functools
import json
import operator
import os
import time
from dataclasses import dataclass, field
from typing import Protocol

import orjson
import sqlalchemy as sa
from sqlalchemy import func, select, update

from ..errors import ConflictError, InvalidInputError, NotFoundError
from ..jsonsafe import from_json_number, json_number
from .engine import Database
from .events import add_events, now_ms
from .file_state import HOST
from .filters import FilterError, attribute_column, compile_filter, parse_order_by
from .models import (
    AppliedBatch,
    Artifact,
    DatasetVersion,
    Environment,
    Experiment,
    LatestMetric,
    LoggedModel,
    Metric,
    Param,
    Run,
    RunDataset,
    Tag,
)

TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")
LIFECYCLES = ("active", "deleted", "all")
CARD_VALUES = 8  # metrics and params a run shows in a notebook's output
# What a search returns of each run (the cell's code and the like stay in get_run).
SEARCH_COLUMNS = (
    "id",
    "experiment_id",
    "name",
    "status",
    "user",
    "start_time",
    "end_time",
    "parent_run_id",
    "notebook_path",
    "git_commit",
    "deleted_at",
)
HEARTBEAT_SECONDS = 15
STALE_AFTER_SECONDS = 300


# Asked before every write a client makes one call at a time: built once (building costs more than running it).
RUN_STATE = select(Run.id, Run.experiment_id, Run.name, Run.status, Run.user, Run.deleted_at).where(
    Run.id == sa.bindparam("run_id")
)


@dataclass
class MetricSeries:
    """Points of one metric of one run, steps increasing, one timestamp: written without a dict per point."""

    run_id: str
    key: str
    timestamp: int
    steps: list[int]
    values: list[float | None]  # None for NaN


@dataclass
class Batch:
    """Rows to write together.  Order of application: parents before children, updates last."""

    environments: list[dict] = field(default_factory=list)
    runs: list[dict] = field(default_factory=list)
    datasets: list[dict] = field(default_factory=list)
    params: list[dict] = field(default_factory=list)
    metrics: list[dict] = field(default_factory=list)
    metric_series: list[MetricSeries] = field(default_factory=list)  # a loop's points, many at once
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

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict:
        """In JupyterLab a card with a button that opens the run's page; elsewhere an HTML table."""
        from ..snapshot import run_card

        metrics = {k: json_number(v) for k, v in sorted(self.metrics.items())[:CARD_VALUES]}
        params = dict(sorted(self.params.items())[:CARD_VALUES])
        card = {
            "run_id": self.info.id,
            "name": self.info.name,
            "status": self.info.status,
            "experiment": self.experiment,
            "metrics": metrics,
            "params": params,
        }
        values = {**{f"metrics.{k}": f"{v:.4g}" if isinstance(v, float) else str(v) for k, v in metrics.items()}}
        values.update({f"params.{k}": v for k, v in params.items()})
        return {
            "application/vnd.mlops-lab.run+json": card,
            "text/html": run_card(self.info.name, self.info.status, self.experiment, values),
            "text/plain": f"<Run {self.info.name!r} {self.info.status} {self.info.id}>",
        }

    def to_dict(self) -> dict:
        """A JSON-ready form (NaN and inf become strings, which JSON lacks)."""
        info = self.info.model_dump()
        info["experiment"] = self.experiment
        return {
            "info": info,
            "params": self.params,
            "metrics": {k: json_number(v) for k, v in self.metrics.items()},
            "metric_summaries": {
                k: {**s, "min": json_number(s["min"]), "max": json_number(s["max"])}
                for k, s in self.metric_summaries.items()
            },
            "tags": self.tags,
            "artifacts": self.artifacts,
            "models": [{**m, "signature": json.loads(m["signature"])} for m in self.models],
            "datasets": [
                {
                    **d,
                    "columns": json.loads(d["columns"]),
                    "preview": json.loads(d["preview"]) if d.get("preview") else None,
                }
                for d in self.datasets
            ],
            "environment": self.environment,
        }


def _json_dict(text) -> dict:
    if text is None:
        return {}
    return text if isinstance(text, dict) else orjson.loads(text)


def _summary(newest: dict, values: list) -> dict:
    """A metric's summary of some points: the newest of them, and min, max and count of their
    values (NaN, stored as None, counts but is neither min nor max)."""
    known = [v for v in values if v is not None]
    return {
        **newest,
        "min_value": min(known, default=None),
        "max_value": max(known, default=None),
        "count": len(values),
    }


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunStore(Protocol):
    """Runs and their search: what the tracking service reads and writes."""

    url: str  # where the runs are, for messages

    def get_or_create_experiment(self, name: str, user: str) -> int: ...

    def experiment_id(self, name: str) -> int | None: ...

    def list_experiments(self) -> list[Experiment]: ...

    def update_experiment(self, experiment_id: int, values: dict, event: dict) -> None: ...

    def write(self, batch: Batch, batch_id: str | None = None) -> list[dict]: ...

    def reap_stale_runs(self, *, force: bool = False) -> list[str]: ...

    def get_run(self, run_id: str) -> RunRecord: ...

    def run_state(self, run_id: str) -> dict | None: ...

    def dataset_uses(self, hashes: list[str]) -> list[dict]: ...

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, int, float]]: ...

    def metric_arrays(self, run_id: str, key: str): ...

    def count_metric_points(self, run_id: str | None = None) -> int: ...

    def edit_tags(self, run_id: str, tags: dict[str, str], removed: list[str], event: dict) -> None: ...

    def set_deleted(self, run_id: str, deleted: bool, event: dict) -> None: ...

    def search_runs(
        self,
        experiment_ids: list[int] | None = None,
        filter_string: str | None = None,
        order_by: list[str] | str | None = None,
        max_results: int = 1000,
        offset: int = 0,
        lifecycle: str = "active",
    ) -> tuple[list[dict], dict[str, dict], dict[str, dict], dict[str, dict]]: ...


class SqlRunStore(RunStore):
    """Runs on either engine.  Thread-safe."""

    def __init__(self, db: Database):
        self.db = db
        self.url = db.url
        self._last_reap = 0.0

    # ---- writes ------------------------------------------------------------------------------

    def get_or_create_experiment(self, name: str, user: str) -> int:
        with self.db.writing() as conn:
            conn.execute(
                self.db.insert(Experiment).on_conflict_do_nothing(index_elements=["name"]),
                {"name": name, "created_at": now_ms(), "created_by": user},
            )
            return conn.execute(select(Experiment.id).where(Experiment.name == name)).scalar_one()

    EXPERIMENT_COLUMNS = frozenset({"name", "description", "deleted_at", "tags"})

    def update_experiment(self, experiment_id: int, values: dict, event: dict) -> None:
        """Rename, describe, tag, delete or restore an experiment, and record who did it."""
        unknown = set(values) - self.EXPERIMENT_COLUMNS
        if unknown:
            raise InvalidInputError(f"an experiment's {', '.join(sorted(unknown))} cannot be changed")
        with self.db.writing() as conn:
            if "name" in values:
                taken = conn.execute(
                    select(Experiment.id).where(Experiment.name == values["name"], Experiment.id != experiment_id)
                ).first()
                if taken is not None:
                    raise ConflictError(f"an experiment named {values['name']!r} already exists")
            changed = conn.execute(update(Experiment).where(Experiment.id == experiment_id).values(**values)).rowcount
            if not changed:
                raise NotFoundError(f"no experiment with id {experiment_id!r}")
            add_events(conn, [event])

    def write(self, batch: Batch, batch_id: str | None = None) -> list[dict]:
        """Apply a batch in one transaction; all of it lands or none of it.  Returns the params that
        could not be written because the run already has another value for them (two processes
        logging to one resumed run): the first value stays, and each refusal is an event.
        A batch with an id is applied once: sent again (its answer was lost), it changes nothing."""
        if not len(batch):
            return []
        conflicts: list[dict] = []
        with self.db.writing() as conn:
            if batch_id is not None:
                first_time = conn.execute(
                    self.db.insert(AppliedBatch)
                    .on_conflict_do_nothing(index_elements=["id"])
                    .returning(AppliedBatch.id),
                    {"id": batch_id, "applied_at": now_ms()},
                ).first()
                if first_time is None:
                    return []
            if batch.environments:
                conn.execute(
                    self.db.insert(Environment).on_conflict_do_nothing(index_elements=["hash"]), batch.environments
                )
            if batch.runs:
                conn.execute(sa.insert(Run), batch.runs)
            if batch.datasets:
                conn.execute(
                    self.db.insert(DatasetVersion).on_conflict_do_nothing(index_elements=["hash"]), batch.datasets
                )
            conflicts = self._insert_params(conn, batch.params) if batch.params else []
            if batch.metrics:
                # the driver's executemany: SQLAlchemy's per-row work would cost more than the write
                columns = ("run_id", "key", "value", "step", "timestamp")
                self.db.insert_many(conn, Metric, columns, list(map(operator.itemgetter(*columns), batch.metrics)))
                self._update_latest_metrics(conn, batch.metrics)
            for series in batch.metric_series:
                self._insert_series(conn, series)
            for model, rows, keys in (
                (Tag, batch.tags, ["run_id", "key"]),
                (Artifact, batch.artifacts, ["run_id", "path"]),
                (LoggedModel, batch.models, ["run_id", "name"]),
            ):
                if rows:
                    stmt = self.db.insert(model)
                    values = {c: stmt.excluded[c] for c in rows[0] if c not in keys}
                    conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=values), rows)
            if batch.run_datasets:
                conn.execute(
                    self.db.insert(RunDataset).on_conflict_do_nothing(
                        index_elements=["run_id", "dataset_hash", "direction", "name"]
                    ),
                    batch.run_datasets,
                )
            for run_id, values in batch.run_updates:
                conn.execute(update(Run).where(Run.id == run_id).values(**values))
            add_events(conn, batch.events)
        return conflicts

    def _insert_params(self, conn, params: list[dict]) -> list[dict]:
        """Insert params; those already there with another value are conflicts, recorded as events."""
        statement = self.db.insert(Param).on_conflict_do_nothing(index_elements=["run_id", "key"])
        inserted = set(conn.execute(statement.returning(Param.run_id, Param.key), params).all())
        skipped = [p for p in params if (p["run_id"], p["key"]) not in inserted]
        if not skipped:
            return []
        runs = {p["run_id"] for p in skipped}
        stored = {(r, k): v for r, k, v in conn.execute(
            select(Param.run_id, Param.key, Param.value).where(Param.run_id.in_(runs))).all()}  # fmt: skip
        conflicts = [
            {"run_id": p["run_id"], "key": p["key"], "kept": stored.get((p["run_id"], p["key"])), "refused": p["value"]}
            for p in skipped
            if stored.get((p["run_id"], p["key"])) != p["value"]
        ]
        add_events(conn, [
            {"entity_type": "run", "entity_id": c["run_id"], "kind": "param_conflict", "user": "mlops_lab",
             "time": now_ms(), "payload": json.dumps({k: c[k] for k in ("key", "kept", "refused")})}
            for c in conflicts
        ])  # fmt: skip
        return conflicts

    def _insert_series(self, conn, series: MetricSeries) -> None:
        run_id, key, ts = series.run_id, series.key, series.timestamp
        columns = ("run_id", "key", "value", "step", "timestamp")
        self.db.insert_many(
            conn, Metric, columns, [(run_id, key, v, s, ts) for s, v in zip(series.steps, series.values)]
        )
        newest = dict(zip(columns, (run_id, key, series.values[-1], series.steps[-1], ts)))
        self._upsert_latest(conn, [_summary(newest, series.values)])

    def _update_latest_metrics(self, conn, points: list[dict]) -> None:
        series: dict[tuple[str, str], list[dict]] = {}
        for p in points:
            series.setdefault((p["run_id"], p["key"]), []).append(p)
        # each metric's newest point by (step, timestamp); of equals, the last to arrive
        summaries = [
            _summary(max(reversed(same), key=operator.itemgetter("step", "timestamp")), [p["value"] for p in same])
            for same in series.values()
        ]
        self._upsert_latest(conn, summaries)

    @functools.cached_property
    def _latest_upsert(self):
        """The upsert folding a metric's newest point, min, max and count into its summary row, built
        once: building it costs more than running it when a client logs one point a call."""
        stmt = self.db.insert(LatestMetric)
        new, old = stmt.excluded, LatestMetric.__table__.c
        newer = sa.or_(new.step > old.step, sa.and_(new.step == old.step, new.timestamp >= old.timestamp))
        return stmt.on_conflict_do_update(
            index_elements=["run_id", "key"],
            set_={
                "value": sa.case((newer, new.value), else_=old.value),
                "timestamp": sa.case((newer, new.timestamp), else_=old.timestamp),
                "step": sa.case((newer, new.step), else_=old.step),
                "min_value": sa.case(
                    (sa.or_(old.min_value.is_(None), new.min_value < old.min_value), new.min_value), else_=old.min_value
                ),
                "max_value": sa.case(
                    (sa.or_(old.max_value.is_(None), new.max_value > old.max_value), new.max_value), else_=old.max_value
                ),
                "count": old.count + new.count,
            },
        )

    def _upsert_latest(self, conn, summaries: list[dict]) -> None:
        """Fold each metric's newest point, min, max and count into what is stored."""
        rows = [
            {k: s[k] for k in ("run_id", "key", "value", "step", "timestamp", "min_value", "max_value", "count")}
            for s in summaries
        ]
        conn.execute(self._latest_upsert, rows)

    def reap_stale_runs(self, *, force: bool = False) -> list[str]:
        """Mark KILLED the RUNNING runs whose process is gone (same host) or silent too long."""
        if not force and time.monotonic() - self._last_reap < 5:
            return []
        self._last_reap = time.monotonic()
        with self.db.reading() as conn:
            running = conn.execute(
                select(Run.id, Run.host, Run.pid, Run.heartbeat_at).where(Run.status == "RUNNING")
            ).all()
        cutoff = now_ms() - STALE_AFTER_SECONDS * 1000
        # pid 0: no process of ours runs it (MLflow's client started it over REST, and never beats);
        # as in MLflow, such a run stays RUNNING until its client ends it.
        dead = [
            r.id
            for r in running
            if r.pid != 0 and ((r.host == HOST and not _pid_alive(r.pid)) or r.heartbeat_at < cutoff)
        ]
        if not dead:
            return []
        end = now_ms()
        with self.db.writing() as conn:
            for run_id in dead:
                changed = conn.execute(
                    update(Run)
                    .where(Run.id == run_id, Run.status == "RUNNING")
                    .values(
                        status="KILLED", end_time=end, error="the process that ran this run ended without finishing it"
                    ),
                ).rowcount
                if changed:
                    add_events(
                        conn,
                        [
                            {
                                "entity_type": "run",
                                "entity_id": run_id,
                                "kind": "status",
                                "user": "mlops_lab",
                                "time": end,
                                "payload": json.dumps({"from": "RUNNING", "to": "KILLED", "reason": "process gone"}),
                            }
                        ],
                    )
        return dead

    # ---- reads -------------------------------------------------------------------------------

    def list_experiments(self) -> list[Experiment]:
        with self.db.reading() as conn:
            rows = conn.execute(select(Experiment).order_by(Experiment.id)).all()
        return [Experiment.model_validate(r._mapping) for r in rows]

    def experiment_id(self, name: str) -> int | None:
        with self.db.reading() as conn:
            return conn.execute(select(Experiment.id).where(Experiment.name == name)).scalar()

    def run_state(self, run_id: str) -> dict | None:
        """A run's experiment, name, status and deletion, read cheaply (None: no such run)."""
        with self.db.reading() as conn:
            row = conn.execute(RUN_STATE, {"run_id": run_id}).first()
        return None if row is None else dict(row._mapping)

    def dataset_uses(self, hashes: list[str]) -> list[dict]:
        """Which runs read or wrote these dataset versions: run_id, dataset_hash, direction, name."""
        if not hashes:
            return []
        table = RunDataset.__table__.c
        with self.db.reading() as conn:
            rows = conn.execute(
                select(table.run_id, table.dataset_hash, table.direction, table.name).where(
                    table.dataset_hash.in_(sorted(set(hashes)))
                )
            ).all()
        return [dict(row._mapping) for row in rows]

    def get_run(self, run_id: str) -> RunRecord:
        self.reap_stale_runs()
        with self.db.reading() as conn:
            row = conn.execute(
                select(*Run.__table__.c, Experiment.name.label("experiment_name"))
                .join(Experiment, Experiment.id == Run.experiment_id)
                .where(Run.id == run_id)
            ).first()
            if row is None:
                raise NotFoundError(f"no run with id {run_id!r}")
            info = Run.model_validate({k: v for k, v in row._mapping.items() if k != "experiment_name"})
            params = dict(conn.execute(select(Param.key, Param.value).where(Param.run_id == run_id)).all())
            latest = conn.execute(
                select(
                    LatestMetric.key,
                    LatestMetric.value,
                    LatestMetric.step,
                    LatestMetric.min_value,
                    LatestMetric.max_value,
                    LatestMetric.count,
                    LatestMetric.timestamp,
                ).where(LatestMetric.run_id == run_id)
            ).all()
            metrics = {key: from_json_number(value) for key, value, *_ in latest}
            summaries = {
                key: {
                    "last_step": step,
                    "min": from_json_number(low),
                    "max": from_json_number(high),
                    "count": count,
                    "timestamp": timestamp,
                }
                for key, _, step, low, high, count, timestamp in latest
            }
            tags = dict(conn.execute(select(Tag.key, Tag.value).where(Tag.run_id == run_id)).all())
            artifacts = [
                dict(r._mapping)
                for r in conn.execute(
                    select(Artifact.path, Artifact.hash, Artifact.size, Artifact.kind).where(Artifact.run_id == run_id)
                )
            ]
            models = [dict(r._mapping) for r in conn.execute(select(LoggedModel).where(LoggedModel.run_id == run_id))]
            datasets = [
                dict(r._mapping)
                for r in conn.execute(
                    select(
                        RunDataset.name,
                        RunDataset.direction,
                        RunDataset.source,
                        DatasetVersion.hash,
                        DatasetVersion.format,
                        DatasetVersion.num_rows,
                        DatasetVersion.num_bytes,
                        DatasetVersion.columns,
                        DatasetVersion.preview,
                    )
                    .join(DatasetVersion, DatasetVersion.hash == RunDataset.dataset_hash)
                    .where(RunDataset.run_id == run_id)
                )
            ]
            environment = None
            if info.environment_hash:
                env = conn.execute(select(Environment).where(Environment.hash == info.environment_hash)).first()
                if env is not None:
                    environment = {
                        "python": env.python,
                        "platform": env.platform,
                        "packages": json.loads(env.packages),
                        "hardware": json.loads(env.hardware),
                    }
        return RunRecord(
            info, row.experiment_name, params, metrics, summaries, tags, artifacts, models, datasets, environment
        )

    def _existing(self, conn, run_id: str) -> None:
        if conn.execute(select(Run.id).where(Run.id == run_id)).first() is None:
            raise NotFoundError(f"no run with id {run_id!r}")

    def edit_tags(self, run_id: str, tags: dict[str, str], removed: list[str], event: dict) -> None:
        """Set and remove tags of a run, finished or not, and record who did it: one transaction."""
        with self.db.writing() as conn:
            self._existing(conn, run_id)
            if removed:
                conn.execute(sa.delete(Tag).where(Tag.run_id == run_id, Tag.key.in_(removed)))
            if tags:
                stmt = self.db.insert(Tag)
                conn.execute(
                    stmt.on_conflict_do_update(index_elements=["run_id", "key"], set_={"value": stmt.excluded.value}),
                    [{"run_id": run_id, "key": k, "value": v} for k, v in tags.items()],
                )
            add_events(conn, [event])

    def set_deleted(self, run_id: str, deleted: bool, event: dict) -> None:
        """Delete (keeping everything, out of searches) or restore a run, and record who did it."""
        with self.db.writing() as conn:
            self._existing(conn, run_id)
            conn.execute(update(Run).where(Run.id == run_id).values(deleted_at=now_ms() if deleted else None))
            add_events(conn, [event])

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, int, float]]:
        with self.db.reading() as conn:
            rows = conn.execute(
                select(Metric.step, Metric.timestamp, Metric.value)
                .where(Metric.run_id == run_id, Metric.key == key)
                .order_by(Metric.step, Metric.timestamp, Metric.id)
            ).all()
        return [(step, ts, from_json_number(v)) for step, ts, v in rows]

    @functools.cached_property
    def _metric_points_statement(self):
        metric = Metric.__table__.c
        return (
            select(metric.step, metric.value)
            .where(
                metric.run_id == sa.bindparam("run_id"),
                metric.key == sa.bindparam("key"),
            )
            .order_by(metric.step, metric.timestamp, metric.id)
        )

    def metric_arrays(self, run_id: str, key: str):
        """A metric's steps and values as numpy arrays, in step order (NaN where NULL): for charts."""
        import numpy as np

        rows = self.db.raw_rows(*self.db.compiled(self._metric_points_statement, {"run_id": run_id, "key": key}))
        if not rows:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        steps, values = zip(*rows)
        return np.array(steps, dtype=np.int64), np.array(values, dtype=np.float64)  # None becomes NaN

    def count_metric_points(self, run_id: str | None = None) -> int:
        with self.db.reading() as conn:
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
        lifecycle: str = "active",
    ) -> tuple[list[dict], dict[str, dict], dict[str, dict], dict[str, dict]]:
        """Matching runs (as dicts) and their params, latest metrics and tags keyed by run id.
        ``lifecycle``: "active" (not deleted), "deleted" or "all", as MLflow's ``run_view_type``."""
        if not isinstance(max_results, int) or isinstance(max_results, bool) or not 0 < max_results <= 100_000:
            raise FilterError(f"max_results must be an integer from 1 to 100000, got {max_results!r}")
        if not isinstance(offset, int) or offset < 0:
            raise FilterError(f"offset must be a non-negative integer, got {offset!r}")
        if lifecycle not in LIFECYCLES:
            raise FilterError(f"lifecycle must be one of {', '.join(LIFECYCLES)}, got {lifecycle!r}")
        order = tuple(order_by) if isinstance(order_by, (list, tuple)) else order_by
        ids = None if experiment_ids is None else tuple(experiment_ids)
        self.reap_stale_runs()

        def page(part: str, size: int, skip: int) -> list[dict]:
            sql, parameters = self._search_statement(ids, filter_string, order, size, skip, lifecycle, part)
            with self.db.reading() as conn:
                result = conn.exec_driver_sql(sql, parameters)
                columns = list(result.keys())
                return [dict(zip(columns, row)) for row in result.all()]

        keys = parse_order_by(order)
        if not keys or keys[0][0].entity != "metrics":
            runs = page("all", max_results, offset)
        else:
            # Ordered by a metric: the runs that have it come first, read in the order of the
            # (key, value) index and stopped at the page's end (a few ms at 100,000 runs, where
            # sorting every run took a second); those without it follow, as MLflow orders them.
            runs = page("with", max_results, offset)
            if len(runs) < max_results:
                having = offset + len(runs) if runs or not offset else page("count", 1, 0)[0]["n"]
                runs += page("without", max_results - len(runs), max(0, offset - having))
        params, metrics, tags = {}, {}, {}
        for r in runs:
            run_id = r["id"]
            document = _json_dict(r.pop("run_values"))
            params[run_id] = document.get("params") or {}
            metrics[run_id] = {k: from_json_number(v) for k, v in (document.get("metrics") or {}).items()}
            tags[run_id] = document.get("tags") or {}
        return runs, params, metrics, tags

    @functools.lru_cache(maxsize=256)  # noqa: B019 (a store lives as long as its process)
    def _search_statement(
        self,
        experiment_ids: tuple | None,
        filter_string: str | None,
        order_by,
        max_results: int,
        offset: int,
        lifecycle: str,
        part: str = "all",
    ) -> tuple[str, tuple | dict]:
        """The search statement, compiled to SQL text and its parameters.  Kept: a lab polls the
        same search again and again, and building and compiling it costs more than running it.

        ``part``, when the first order key is a metric: "with" the runs that have a value of it,
        driven by the metric's index; "without" the others; "count" how many have it."""
        condition = compile_filter(filter_string)
        run, experiment = Run.__table__, Experiment.__table__
        # Each run's params, latest metrics and tags come back as one JSON document in the run's
        # row: one statement and one row per run, not one row per value.
        values = self.db.json_object(
            *[
                part
                for kind, model in (("params", Param), ("metrics", LatestMetric), ("tags", Tag))
                for part in (
                    sa.literal(kind),
                    select(self.db.json_group(model.__table__.c.key, model.__table__.c.value))
                    .where(model.__table__.c.run_id == run.c.id)
                    .scalar_subquery(),
                )
            ]
        )
        query = select(
            *(run.c[name] for name in SEARCH_COLUMNS), experiment.c.name.label("experiment"), values.label("run_values")
        )
        keys = parse_order_by(order_by)
        if part in ("with", "count"):  # from the first order metric's rows, in its index's order
            first, descending = keys[0]
            driver = LatestMetric.__table__.alias("order_0")
            if part == "count":
                query = select(func.count().label("n"))
            query = query.select_from(driver).join(run, run.c.id == driver.c.run_id)
            query = query.where(driver.c.key == first.key, driver.c.value.is_not(None))
            query = query.order_by(driver.c.value.desc() if descending else driver.c.value.asc())
            keys = keys[1:]
        elif part == "without":
            first, _ = keys[0]
            metric = LatestMetric.__table__
            query = query.where(
                ~sa.exists().where(metric.c.run_id == run.c.id, metric.c.key == first.key, metric.c.value.is_not(None))
            )
            keys = keys[1:]
        query = query.join(experiment, experiment.c.id == run.c.experiment_id)
        if experiment_ids is not None:
            query = query.where(run.c.experiment_id.in_(experiment_ids))
        if condition is not None:
            query = query.where(condition)
        if lifecycle != "all":
            deleted = run.c.deleted_at
            query = query.where(deleted.is_(None) if lifecycle == "active" else deleted.is_not(None))
        if part == "count":
            return self.db.compiled(query.order_by(None))
        for index, (fld, descending) in enumerate(keys, start=1):
            if fld.entity == "attributes":
                column = attribute_column(fld.key)
            else:
                table = {"metrics": LatestMetric, "params": Param, "tags": Tag}[fld.entity].__table__.alias(
                    f"order_{index}"
                )
                query = query.outerjoin(table, sa.and_(table.c.run_id == run.c.id, table.c.key == fld.key))
                column = table.c.value
                if fld.entity == "params":  # numbers by value, then the rest as text
                    number = table.c.value_num
                    query = query.order_by(number.is_(None), number.desc() if descending else number.asc())
            query = query.order_by(column.is_(None), column.desc() if descending else column.asc())
        query = query.order_by(run.c.start_time.desc(), run.c.id).limit(max_results).offset(offset)
        return self.db.compiled(query)
