"""The tracking service: runs, and what is logged to them.

``Tracker`` is plain Python over a workspace's run store and artifacts (``workspace.tracking``);
the fluent functions in ``mlops_lab.api`` and the ``%%track`` magic are doors onto the default
workspace's tracker.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import sys
import threading
import uuid
import weakref
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ..errors import ConflictError, InvalidInputError, NotFoundError
from ..store import Batch, MetricSeries, RunRecord, StoreError, now_ms
from ..store.file_state import HOST
from ..store.runs import HEARTBEAT_SECONDS, TERMINAL_STATUSES
from . import capture, environment, figures
from .search import experiment_ids, runs_frame
from .values import (
    INT64_MAX,
    check_artifact_path,
    check_key,
    check_metric_value,
    check_name,
    check_step,
    check_timestamp,
    param_number,
    param_text,
    tag_text,
)
from .writer import BatchWriter

if TYPE_CHECKING:
    from ..workspace import Workspace

DEFAULT_EXPERIMENT = "Default"
_ADJECTIVES = ["brisk", "calm", "clever", "bold", "eager", "gentle", "keen", "lucky", "merry", "quiet", "swift", "wise"]
_NOUNS = ["otter", "falcon", "maple", "comet", "badger", "heron", "cedar", "lynx", "orca", "pine", "wren", "zebu"]


def _run_name(run_id: str) -> str:
    n = int(run_id[:8], 16)
    return f"{_ADJECTIVES[n % 12]}-{_NOUNS[(n // 12) % 12]}-{n % 1000:03d}"


class MetricPoint(NamedTuple):
    """One point of a metric, as MLflow's ``Metric`` entity has it."""

    key: str
    value: float
    timestamp: int
    step: int


@dataclass
class ActiveRun:
    """A run this process is logging to.  Use as a context manager; it ends the run on exit."""

    id: str
    name: str
    experiment_id: int
    tracker: "Tracker" = field(repr=False)
    params: dict[str, str] = field(default_factory=dict, repr=False)
    steps: dict[str, int] = field(default_factory=dict, repr=False)

    def __enter__(self) -> "ActiveRun":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            status = "FINISHED"
        elif issubclass(exc_type, KeyboardInterrupt):
            status = "KILLED"
        else:
            status = "FAILED"
        error = None if exc is None else f"{exc_type.__name__}: {exc}"
        self.tracker.end_run(status, run=self, error=error)

    # Logging through the run object reaches this run even when others are active.
    def log_param(self, key, value):
        self.tracker.log_params({key: value}, run=self)

    def log_params(self, params: dict):
        self.tracker.log_params(params, run=self)

    def log_metric(self, key, value, step=None, timestamp=None):
        self.tracker.log_metric(key, value, step=step, timestamp=timestamp, run=self)

    def log_metrics(self, metrics: dict, step=None, timestamp=None):
        self.tracker.log_metrics(metrics, step=step, timestamp=timestamp, run=self)

    def set_tag(self, key, value):
        self.tracker.set_tags({key: value}, run=self)

    def set_tags(self, tags: dict):
        self.tracker.set_tags(tags, run=self)


class Tracker:
    """Runs of one workspace: validated on the caller's thread, written in batches by a background thread."""

    def __init__(self, workspace: "Workspace"):
        self.location = workspace.location
        self.runs = workspace.store.runs
        self.file_state = workspace.store.file_state
        self.artifacts = workspace.artifacts
        self.user = workspace.user
        self.writer = BatchWriter(self.runs, heartbeat=self._heartbeat, heartbeat_seconds=HEARTBEAT_SECONDS)
        self._experiments: dict[str, int] = {}
        self._local = threading.local()
        self._all_active: dict[str, ActiveRun] = {}
        self._frames: dict[int, list] = {}  # id(frame) -> [weak reference, identity, dataset hash, snapshot]
        self._lock = threading.Lock()
        atexit.register(self.close)

    # ---- runs --------------------------------------------------------------------------------

    @property
    def _stack(self) -> list[ActiveRun]:
        stack = getattr(self._local, "stack", None)
        if stack is None:
            stack = self._local.stack = []
        return stack

    def active_run(self) -> ActiveRun | None:
        return self._stack[-1] if self._stack else None

    def experiment_id(self, name: str) -> int:
        check_key(name, "experiment")
        if name not in self._experiments:
            self._experiments[name] = self.runs.get_or_create_experiment(name, self.user)
        return self._experiments[name]

    def start_run(
        self,
        name: str | None = None,
        *,
        experiment: str | None = None,
        tags: dict | None = None,
        nested: bool = False,
        parent_run_id: str | None = None,
        source: str | None = None,
        notebook_path: str | None = None,
        description: str | None = None,
        capture_git: bool = True,
        start_time: int | None = None,
        active: bool = True,
    ) -> ActiveRun:
        """A new RUNNING run.  Its parent: ``parent_run_id``, else this thread's active run when
        ``nested``, else the run named by MLOPS_LAB_PARENT_RUN (a pipeline's step, for the runs of the
        notebook it executes).  ``active=False``: not made this thread's active run (a pipeline
        runs several steps at once from one thread)."""
        self.writer.raise_pending_error()
        if name is not None:
            check_name(name, "run")
        parent = self.active_run() if active else None
        if parent is not None and not nested and parent_run_id is None:
            raise ConflictError(
                f"run {parent.name!r} ({parent.id}) is still active: end it first, or pass nested=True to start a child run"
            )
        if parent_run_id is None and parent is not None:
            parent_run_id = parent.id
        if parent_run_id is None:
            parent_run_id = os.environ.get("MLOPS_LAB_PARENT_RUN") or None
        experiment = experiment or os.environ.get("MLOPS_LAB_EXPERIMENT") or DEFAULT_EXPERIMENT
        experiment_id = self.experiment_id(experiment)
        run_id = uuid.uuid4().hex
        start = now_ms() if start_time is None else check_timestamp("start_time", start_time)
        run = ActiveRun(run_id, name or _run_name(run_id), experiment_id, self)
        tag_rows = self._tag_rows(run, tags or {})
        if description:
            tag_rows.append({"run_id": run_id, "key": "description", "value": tag_text("description", description)})
        self.writer.add(
            "runs",
            [
                {
                    "id": run_id,
                    "experiment_id": experiment_id,
                    "name": run.name,
                    "status": "RUNNING",
                    "user": self.user,
                    "start_time": start,
                    "parent_run_id": parent_run_id,
                    "notebook_path": notebook_path or environment.notebook_path(),
                    "source": source,
                    "source_hash": hashlib.sha256(source.encode()).hexdigest() if source else None,
                    "host": HOST,
                    "pid": os.getpid(),
                    "heartbeat_at": start,
                }
            ],
        )
        if tag_rows:
            self.writer.add("tags", tag_rows)
        self.writer.add("events", [self._event(run_id, "created", {"status": "RUNNING", "experiment": experiment})])
        self._defer(run, "the environment and git state", lambda: self._capture_context(run_id, capture_git))
        with self._lock:
            self._all_active[run_id] = run
        if active:
            self._stack.append(run)
        return run

    def _capture_context(self, run_id: str, capture_git: bool) -> Batch:
        env = environment.environment_snapshot()
        batch = Batch(
            environments=[
                {
                    "hash": env["hash"],
                    "python": env["python"],
                    "platform": env["platform"][:250],
                    "packages": json.dumps(env["packages"]),
                    "hardware": json.dumps(env["hardware"]),
                }
            ]
        )
        values: dict = {"environment_hash": env["hash"]}
        git = environment.git_state() if capture_git else None
        if git is not None:
            values.update(git_commit=git["commit"], git_dirty=git["dirty"])
            if git["diff"]:
                values["git_diff_hash"] = self.artifacts.put_bytes(git["diff"].encode())
        batch.run_updates.append((run_id, values))
        return batch

    def end_run(self, status: str = "FINISHED", *, run: ActiveRun | None = None, error: str | None = None) -> None:
        if status not in TERMINAL_STATUSES:
            raise InvalidInputError(f"status must be one of {', '.join(TERMINAL_STATUSES)}, got {status!r}")
        run = run or self.active_run()
        if run is None:
            return
        with self._lock:
            if self._all_active.pop(run.id, None) is None:
                return  # already ended
        # Children end with their parent.
        stack = self._stack
        while run in stack and stack[-1] is not run:
            self.end_run(status, run=stack[-1])
        if run in stack:
            stack.remove(run)
        end = now_ms()
        self.writer.add(
            "run_updates", [(run.id, {"status": status, "end_time": end, "error": error, "heartbeat_at": end})]
        )
        self.writer.add("events", [self._event(run.id, "status", {"from": "RUNNING", "to": status, "error": error})])

    def resume_run(self, run_id: str) -> ActiveRun:
        """Log more to a run that exists (ended or killed); it is RUNNING again until ended."""
        self.flush()
        record = self.get_run(run_id)
        # Steps go on from where each metric stopped, so a resumed curve does not restart at 0.
        steps = {key: summary["last_step"] for key, summary in record.metric_summaries.items()}
        run = ActiveRun(
            run_id, record.info.name, record.info.experiment_id, self, params=dict(record.params), steps=steps
        )
        now = now_ms()
        self.writer.add(
            "run_updates",
            [(run_id, {"status": "RUNNING", "end_time": None, "host": HOST, "pid": os.getpid(), "heartbeat_at": now})],
        )
        self.writer.add("events", [self._event(run_id, "status", {"from": record.info.status, "to": "RUNNING"})])
        with self._lock:
            self._all_active[run_id] = run
        self._stack.append(run)
        return run

    def _event(self, run_id: str, kind: str, payload: dict) -> dict:
        return {
            "entity_type": "run",
            "entity_id": run_id,
            "kind": kind,
            "user": self.user,
            "time": now_ms(),
            "payload": json.dumps(payload),
        }

    def _heartbeat(self) -> Batch | None:
        with self._lock:
            ids = list(self._all_active)
        if not ids:
            return None
        beat = now_ms()
        return Batch(run_updates=[(run_id, {"heartbeat_at": beat}) for run_id in ids])

    def _current(self, run: ActiveRun | None) -> ActiveRun:
        """The run to log to: the given one, the active one, or (as MLflow does) a new one."""
        if run is not None:
            if run.id not in self._all_active:
                raise ConflictError(f"run {run.name!r} ({run.id}) has ended; resume it with ml.resume_run({run.id!r})")
            return run
        return self.active_run() or self.start_run()

    # ---- logging -----------------------------------------------------------------------------

    def log_params(self, params: dict, *, run: ActiveRun | None = None) -> None:
        if not isinstance(params, dict):
            raise TypeError(f"params must be a dict, got {type(params).__name__}")
        rows = []
        for key, value in params.items():
            check_key(key, "param")
            text = param_text(key, value)
            rows.append((key, text))
        run = self._current(run)
        new = []
        for key, text in rows:
            old = run.params.get(key)
            if old is not None and old != text:
                raise InvalidInputError(
                    f"param {key!r} was already logged as {old!r} in run {run.name!r}; params cannot change "
                    f"(got {text!r}). Log it under another name, or start a new run."
                )
            if old is None:
                new.append({"run_id": run.id, "key": key, "value": text, "value_num": param_number(text)})
        for row in new:
            run.params[row["key"]] = row["value"]
        if new:
            self.writer.add("params", new)

    def log_metric(self, key, value, step=None, timestamp=None, *, run: ActiveRun | None = None) -> None:
        self.log_metrics({key: value}, step=step, timestamp=timestamp, run=run)

    def log_metrics(self, metrics: dict, step=None, timestamp=None, *, run: ActiveRun | None = None) -> None:
        """Log many values at once.  ``step`` defaults to one more than the key's last step."""
        if not isinstance(metrics, dict):
            raise TypeError(f"metrics must be a dict, got {type(metrics).__name__}")
        checked = []
        for key, value in metrics.items():
            check_key(key, "metric")
            checked.append((key, check_metric_value(key, value), None if step is None else check_step(key, step)))
        ts = now_ms() if timestamp is None else check_timestamp("metrics", timestamp)
        run = self._current(run)
        rows = []
        steps = run.steps
        for key, value, key_step in checked:
            if key_step is None:
                key_step = steps.get(key, -1) + 1
            steps[key] = max(key_step, steps.get(key, key_step))
            rows.append({"run_id": run.id, "key": key, "value": value, "step": key_step, "timestamp": ts})
        self.writer.add("metrics", rows)

    def log_metric_series(self, key: str, steps: list[int], values: list[float], *, run: ActiveRun | None = None):
        """Many points of one metric at once (a loop's curve): one row each, one timestamp."""
        check_key(key, "metric")
        if len(steps) != len(values):
            raise InvalidInputError(f"metric {key!r}: {len(steps)} steps for {len(values)} values")
        if not all(type(s) is int and abs(s) <= INT64_MAX for s in steps):
            raise InvalidInputError(f"metric {key!r}: steps must be integers in range")
        if not all(type(v) is float for v in values):
            raise InvalidInputError(f"metric {key!r}: values must be floats")
        run = self._current(run)
        if steps:
            run.steps[key] = max(run.steps.get(key, -1), max(steps))
            stored = [v if v == v else None for v in values]  # NaN is stored as NULL (only NaN != NaN)
            self.writer.add("metric_series", [MetricSeries(run.id, key, now_ms(), list(steps), stored)])

    def set_tags(self, tags: dict, *, run: ActiveRun | None = None) -> None:
        if not isinstance(tags, dict):
            raise TypeError(f"tags must be a dict, got {type(tags).__name__}")
        run = self._current(run)
        rows = self._tag_rows(run, tags)
        self.writer.add("tags", rows)
        self.writer.add("events", [self._event(run.id, "tags", {r["key"]: r["value"] for r in rows})])

    @staticmethod
    def _tag_rows(run: ActiveRun, tags: dict) -> list[dict]:
        return [{"run_id": run.id, "key": check_key(k, "tag"), "value": tag_text(k, v)} for k, v in tags.items()]

    def log_artifact(self, path, artifact_path: str | None = None, *, run: ActiveRun | None = None) -> None:
        """Store a file or a folder (content-addressed) under ``artifact_path`` in the run."""
        source = Path(path).expanduser()
        if not source.exists():
            raise FileNotFoundError(f"artifact {str(source)!r} does not exist")
        name = artifact_path or source.name
        check_artifact_path(name)
        run = self._current(run)
        artifacts = self.artifacts

        def job() -> Batch:
            if source.is_dir():
                digest, size = artifacts.put_dir(source)
                kind = "dir"
            else:
                digest = artifacts.put_file(source, capture.cached_file_hash(self.file_state, source.resolve()))
                size, kind = source.stat().st_size, "file"
            return Batch(artifacts=[{"run_id": run.id, "path": name, "hash": digest, "size": size, "kind": kind}])

        self._now_or_later(run, f"artifact {name!r}", job, source)

    def log_text(self, text: str, artifact_path: str, *, run: ActiveRun | None = None) -> None:
        self.log_bytes(text.encode(), artifact_path, run=run)

    def log_figure(self, figure, artifact_path: str, *, run: ActiveRun | None = None) -> None:
        """A matplotlib or plotly figure or a PIL image as an artifact: a PNG, or plotly's JSON
        (``artifact_path`` ending in ``.json``; ``.html`` gives a page that draws it)."""
        encoded = figures.encode(figure)
        if encoded is None:
            raise TypeError(
                f"log_figure takes a matplotlib or plotly figure or a PIL image, got {type(figure).__module__}."
                f"{type(figure).__name__}"
            )
        data, suffix = encoded
        wanted = (".json", ".html") if suffix == ".plotly.json" else (".png",)
        if not artifact_path.lower().endswith(wanted):
            raise InvalidInputError(
                f"a {type(figure).__name__} is saved as {' or '.join(wanted)}: name the artifact so, not {artifact_path!r}"
            )
        if artifact_path.lower().endswith(".html"):  # a page to open, not a figure to compare
            self.log_bytes(figure.to_html(include_plotlyjs="cdn", full_html=True).encode(), artifact_path, run=run)
        else:
            self.log_bytes(data, artifact_path, run=run, kind="figure")

    def log_bytes(self, data: bytes, artifact_path: str, *, run: ActiveRun | None = None, kind: str = "file") -> None:
        """Store ``data`` as the artifact ``artifact_path``; ``kind`` "figure" marks a PNG or plotly
        JSON that Compare shows side by side."""
        check_artifact_path(artifact_path)
        run = self._current(run)
        self.writer.add(
            "artifacts",
            [
                {
                    "run_id": run.id,
                    "path": artifact_path,
                    "hash": self.artifacts.put_bytes(data),
                    "size": len(data),
                    "kind": kind,
                }
            ],
        )

    def log_model(self, model, name: str = "model", *, input_example=None, run: ActiveRun | None = None) -> None:
        check_name(name, "model")
        run = self._current(run)
        self._defer(run, f"model {name!r}", capture.model_job(run.id, name, model, self.artifacts, input_example))

    def log_dataset(
        self,
        data,
        name: str | None = None,
        *,
        direction: str = "input",
        source: str | None = None,
        run: ActiveRun | None = None,
    ) -> None:
        if name is not None:
            check_name(name, "dataset")
        run = self._current(run)
        job = capture.dataset_job(
            run.id, data, self.artifacts, name=name, direction=direction, source=source, store=self.file_state
        )
        path = None if capture.is_frame(data) else Path(data).expanduser()
        self._now_or_later(run, f"dataset {name or str(data)!r}", job, path)

    def log_frame_read(self, frame, name: str, *, run: ActiveRun | None = None) -> None:
        """A frame a tracked cell read from the notebook: an O(1) snapshot now, hashed on the writer
        thread, and hashed only once while the frame is unchanged (a cell reading a 1 GB frame pays
        a fraction of a millisecond).  The snapshot is kept with the frame's hash: it is what makes
        a later in-place change visible (pandas copies what a change touches)."""
        check_name(name, "dataset")
        run = self._current(run)
        known = self._frames.get(id(frame))
        if known is not None and known[0]() is frame and known[1] == capture.frame_identity(frame) and known[2]:
            row = {"run_id": run.id, "dataset_hash": known[2], "direction": "input", "name": name, "source": None}
            self.writer.add("run_datasets", [row])
            return
        snapshot, identity = capture.frame_snapshot(frame)
        key = id(frame)

        def forget(dead) -> None:
            if self._frames.get(key, (None,))[0] is dead:
                self._frames.pop(key, None)

        entry = [weakref.ref(frame, forget), identity, None, snapshot]
        self._frames[key] = entry
        job = capture.frame_job(run.id, snapshot, self.artifacts, name=name, direction="input")

        def remembered() -> Batch:
            batch = job()
            entry[2] = batch.datasets[0]["hash"]
            return batch

        self._defer(run, f"frame {name!r}", remembered)

    def log_file_set(self, folder: str, paths: list[str], *, run: ActiveRun | None = None) -> None:
        """Many files read under ``folder`` as one dataset version (format ``files``: a manifest)."""
        run = self._current(run)
        self.writer.add_batch(capture.file_set_batch(run.id, folder, paths, self.artifacts, self.file_state))

    def _now_or_later(self, run: ActiveRun, what: str, job, path: Path | None) -> None:
        """A file small enough is hashed and stored now, on the caller's thread: it may be rewritten
        right after the call returns.  Folders, large files and frames' encodings go to the writer."""
        if path is not None and capture.snapshot_now(path):
            self.writer.add_batch(job())
        else:
            self._defer(run, what, job)

    def _defer(self, run: ActiveRun, what: str, job) -> None:
        """Run ``job`` on the writer thread; if it fails, only it fails: the run gets an event saying
        what could not be logged and why, and everything else logged meanwhile is written."""

        def guarded() -> Batch | None:
            try:
                return job()
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                print(f"mlops_lab: could not log {what} to run {run.name!r} ({run.id}): {error}", file=sys.stderr)
                return Batch(events=[self._event(run.id, "capture_failed", {"what": what, "error": error})])

        self.writer.defer(guarded)

    # ---- reads -------------------------------------------------------------------------------

    def flush(self) -> None:
        self.writer.flush()

    def metric_history(self, run_id: str, key: str) -> list[MetricPoint]:
        self.flush()
        self.get_run(run_id)  # a clear error for an unknown run
        return [MetricPoint(key, value, ts, step) for step, ts, value in self.runs.metric_history(run_id, key)]

    def get_run(self, run_id: str) -> RunRecord:
        if not isinstance(run_id, str) or not run_id:
            raise TypeError(f"run id must be a non-empty string, got {run_id!r}")
        self.flush()
        return self.runs.get_run(run_id)

    def search_runs(
        self,
        experiment: str | list[str] | None = None,
        filter_string: str | None = None,
        order_by: list[str] | str | None = None,
        max_results: int = 1000,
    ):
        """Runs as a DataFrame (after what this process logged is written); unknown experiments match nothing."""
        self.flush()
        return runs_frame(self.runs, experiment_ids(self.runs, experiment), filter_string, order_by, max_results)

    def close(self) -> None:
        """End this process's open runs (FINISHED) and write everything still queued."""
        with self._lock:
            open_runs = list(self._all_active.values())
        for run in open_runs:
            self.end_run("FINISHED", run=run)
        try:
            self.writer.flush(timeout=60)
        except StoreError as exc:
            print(f"mlops_lab: {exc}")


__all__ = ["ActiveRun", "NotFoundError", "Tracker"]
