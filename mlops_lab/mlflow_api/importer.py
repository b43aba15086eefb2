"""``mlops-lab import mlflow SOURCE``: an MLflow history moved in whole.

SOURCE is whatever MLflow's client reads: a tracking server (``http(s)://…``, with
``MLFLOW_TRACKING_TOKEN`` if it wants one), a database (``sqlite:///mlflow.db``,
``postgresql://…``) or an ``mlruns`` folder.  Experiments, runs with every metric point, params,
tags, artifacts and datasets, MLflow 3's logged models, registered models with their versions,
stages, aliases, descriptions and tags come over.

- **Idempotent and resumable**: a run keeps its MLflow id, so a run already here is skipped; each
  run is written in one transaction (its artifacts' blobs first), so an interrupted import leaves
  no half-imported run, and the next import goes on from where it stopped.  Logged models and
  registered versions are matched by their MLflow ids and versions.
- **Faithful where our model is stricter**: a registered version must be a model mlops_lab can
  convert to ONNX (our registry serves what it registers); others are skipped with the reason.
  Stages are taken as they were (the approval that allowed a Production in MLflow is history).
- **A report** of what was imported and what was skipped and why.
"""

from __future__ import annotations

import json
import math
import re
import tempfile
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path

import sqlalchemy as sa

from ..errors import InvalidInputError
from ..store import Batch, Store
from ..store.events import event_row, now_ms
from ..store.models import MAX_KEY_LENGTH
from ..tracking.values import param_number
from .formats import dataset_version_row, sklearn_model_row
from .search import SYSTEM_TAGS

IMPORT_HOST = "mlflow-import"
PAGE = 1000


@dataclass
class ImportReport:
    source: str
    experiments: int = 0
    runs_imported: int = 0
    runs_already_here: int = 0
    metric_points: int = 0
    params: int = 0
    tags: int = 0
    artifact_files: int = 0
    artifact_bytes: int = 0
    datasets: int = 0
    logged_models: int = 0
    registered_models: int = 0
    versions_imported: int = 0
    versions_already_here: int = 0
    aliases: int = 0
    skipped: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    def skip(self, what: str, ident: str, why: str) -> None:
        self.skipped.append({"what": what, "id": ident, "why": why})

    def to_dict(self) -> dict:
        return asdict(self)


def source_uri(source: str) -> str:
    """What MLflow's client takes: a folder becomes a file store URI, a .db file a SQLite URI."""
    if re.match(r"^[a-z][a-z0-9+.-]*://", source):
        return source
    path = Path(source).expanduser()
    if path.is_dir():
        return path.resolve().as_uri()
    if path.is_file():
        return f"sqlite:///{path.resolve()}"
    raise InvalidInputError(
        f"{source!r} is neither a tracking URI (http(s)://, sqlite:///, postgresql://…), an mlruns folder "
        "nor an MLflow database file"
    )


def _pages(fetch):
    token = None
    while True:
        page = fetch(token)
        yield from page
        token = page.token
        if not token:
            return


class MlflowImporter:
    def __init__(self, source: str, store: Store, artifacts, registry, user: str, *, progress=None):
        try:
            from mlflow import MlflowClient
        except ImportError:
            raise InvalidInputError("importing from MLflow needs MLflow's client: pip install mlflow") from None
        self.uri = source_uri(source)
        self.client = MlflowClient(tracking_uri=self.uri, registry_uri=self.uri)
        # An MLflow database (a scheme MLflow's own SQL store takes; its schema brought up to date by
        # the client above) is read directly where MLflow's client is slow; anything else only
        # through the client.
        from mlflow.store.db.db_types import DATABASE_ENGINES

        is_database = urllib.parse.urlparse(self.uri).scheme.partition("+")[0] in DATABASE_ENGINES
        self._source_db = sa.create_engine(self.uri, poolclass=sa.pool.NullPool) if is_database else None
        self.store = store
        self.artifacts = artifacts
        self.registry = registry
        self.user = user
        self.progress = progress or (lambda text: None)
        self.report = ImportReport(source)

    # ---- the whole history ---------------------------------------------------------------------

    def run(self, experiments: list[str] | None = None) -> ImportReport:
        import time

        from mlflow.entities import ViewType

        start = time.perf_counter()
        chosen = [
            e
            for e in _pages(lambda t: self.client.search_experiments(ViewType.ALL, max_results=PAGE, page_token=t))
            if experiments is None or e.name in experiments
        ]
        missing = set(experiments or []) - {e.name for e in chosen}
        if missing:
            raise InvalidInputError(f"the source has no experiment named {', '.join(sorted(missing))}")
        for experiment in chosen:
            self.import_experiment(experiment)
        self.import_registry()
        if self.store.db is not None and self.store.db.dialect == "postgresql":
            with self.store.db.engine.connect() as conn:  # planner statistics for what just arrived
                conn.exec_driver_sql("ANALYZE")
        self.report.seconds = time.perf_counter() - start
        self.progress("")
        return self.report

    def import_experiment(self, experiment) -> None:
        from mlflow.entities import ViewType

        name = experiment.name[:MAX_KEY_LENGTH]
        ours = self.store.runs.get_or_create_experiment(name, self.user)
        known = next(e for e in self.store.runs.list_experiments() if e.id == ours)
        values = {}
        if experiment.tags and not known.tags:
            values["tags"] = json.dumps(dict(experiment.tags))
        if experiment.lifecycle_stage == "deleted" and not known.deleted_at:
            values["deleted_at"] = experiment.last_update_time or now_ms()
        if values:
            event = event_row("experiment", str(ours), "imported", self.user, {"from": self.uri})
            self.store.runs.update_experiment(ours, values, event)
        self.report.experiments += 1
        runs = list(
            _pages(
                lambda t: self.client.search_runs(
                    [experiment.experiment_id], run_view_type=ViewType.ALL, max_results=PAGE, page_token=t
                )
            )
        )
        # Parents first, so a child's parent is always here before it.
        runs.sort(key=lambda r: (r.data.tags.get("mlflow.parentRunId") is not None, r.info.start_time or 0))
        for index, run in enumerate(runs, 1):
            self.progress(f"{experiment.name}: run {index:,} of {len(runs):,}")
            self.import_run(run, ours)
        self.import_logged_models(experiment.experiment_id, ours)

    # ---- one run, in one transaction -----------------------------------------------------------

    def import_run(self, run, experiment_id: int) -> None:
        info, data = run.info, run.data
        run_id = info.run_id
        if not re.fullmatch(r"[0-9a-f]{32}", run_id or ""):
            self.report.skip("run", str(run_id), "its id is not 32 hexadecimal digits, as every run id here is")
            return
        if self.store.runs.run_state(run_id) is not None:
            self.report.runs_already_here += 1
            return
        tags = dict(data.tags)
        start = info.start_time or 0
        batch = Batch(
            runs=[
                {
                    "id": run_id,
                    "experiment_id": experiment_id,
                    "name": (info.run_name or tags.get("mlflow.runName") or f"run-{run_id[:8]}")[:MAX_KEY_LENGTH],
                    "status": "RUNNING" if info.status == "SCHEDULED" else info.status,
                    "user": (info.user_id or tags.get("mlflow.user") or self.user)[:250],
                    "start_time": start,
                    "end_time": info.end_time,
                    "parent_run_id": tags.get("mlflow.parentRunId"),
                    "notebook_path": tags.get("mlflow.source.name"),
                    "git_commit": (tags.get("mlflow.source.git.commit") or None)
                    and tags["mlflow.source.git.commit"][:64],
                    "host": IMPORT_HOST,
                    "pid": 0,
                    "heartbeat_at": info.end_time or start,
                    "deleted_at": (info.end_time or start) if info.lifecycle_stage == "deleted" else None,
                }
            ],
            params=[
                {"run_id": run_id, "key": k, "value": v, "value_num": param_number(v)} for k, v in data.params.items()
            ],
            tags=[{"run_id": run_id, "key": k, "value": v} for k, v in tags.items() if k not in SYSTEM_TAGS],
            events=[event_row("run", run_id, "imported", self.user, {"from": self.uri, "status": info.status})],
        )
        for key, value, timestamp, step in self._metric_points(run_id, list(data.metrics)):
            batch.metrics.append(
                {"run_id": run_id, "key": key, "value": None if value != value else value, "step": step,
                 "timestamp": timestamp}
            )  # fmt: skip
        for item in run.inputs.dataset_inputs if run.inputs else []:
            dataset = item.dataset
            described = {
                k: getattr(dataset, k, None) for k in ("name", "digest", "source_type", "source", "schema", "profile")
            }
            version = dataset_version_row(described)
            context = {t.key: t.value for t in item.tags}
            batch.datasets.append(version)
            batch.run_datasets.append(
                {
                    "run_id": run_id,
                    "dataset_hash": version["hash"],
                    "direction": "input",
                    "name": f"{dataset.name}@{dataset.digest}"[:MAX_KEY_LENGTH],
                    "source": json.dumps({"mlflow": described, "tags": context}),
                }  # fmt: skip
            )
        with tempfile.TemporaryDirectory() as folder:
            files = self._download_run_artifacts(run_id, Path(folder))
            for path, local in files.items():
                size = local.stat().st_size
                digest = self.artifacts.put_file(local)
                batch.artifacts.append({"run_id": run_id, "path": path, "hash": digest, "size": size, "kind": "file"})
                self.report.artifact_bytes += size
            blobs = {row["path"]: row for row in batch.artifacts}
            batch.models += self._models_in_artifacts(run_id, blobs)
        self.store.runs.write(batch)
        self.report.runs_imported += 1
        self.report.metric_points += len(batch.metrics)
        self.report.params += len(batch.params)
        self.report.tags += len(batch.tags)
        self.report.artifact_files += len(batch.artifacts)
        self.report.datasets += len(batch.run_datasets)

    def _metric_points(self, run_id: str, keys: list[str]) -> list[tuple]:
        """Every point of the run's metrics as (key, value, timestamp, step), NaN as NaN.  From an
        MLflow database, read from its ``metrics`` table in one query: MLflow's client builds an
        ORM object per point, two thirds of an import's time."""
        if self._source_db is None:
            return [
                (key, point.value, point.timestamp, point.step)
                for key in keys
                for point in self.client.get_metric_history(run_id, key)
            ]
        with self._source_db.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT key, value, timestamp, step, is_nan FROM metrics WHERE run_uuid = :run_id"),
                {"run_id": run_id},
            ).all()
        return [(key, math.nan if is_nan else value, timestamp, step) for key, value, timestamp, step, is_nan in rows]

    def _download_run_artifacts(self, run_id: str, folder: Path) -> dict[str, Path]:
        """Every file under the run's artifacts, downloaded: {path under the run: local file}."""
        try:
            listed = self.client.list_artifacts(run_id)
        except Exception as exc:  # a run whose artifact store is gone: its other data still comes over
            self.report.skip("artifacts", run_id, f"could not be listed: {exc}")
            return {}
        if not listed:
            return {}
        local = Path(self.client.download_artifacts(run_id, "", str(folder)))
        return {p.relative_to(local).as_posix(): p for p in sorted(local.rglob("*")) if p.is_file()}

    def _models_in_artifacts(self, run_id: str, blobs: dict[str, dict]) -> list[dict]:
        """MLflow 2's logged models (a folder with an MLmodel among the run's artifacts) that are
        scikit-learn: the run's models here too."""
        rows = []
        for path in blobs:
            folder, _, name = path.rpartition("/")
            if name != "MLmodel" or not folder or "/" in folder:
                continue
            inside = {p[len(folder) + 1 :]: blob for p, blob in blobs.items() if p.startswith(folder + "/")}
            row = self._adopted(run_id, folder, inside)
            if row is not None:
                rows.append(row)
        return rows

    def _adopted(self, run_id: str, name: str, blobs: dict[str, dict]) -> dict | None:
        try:
            return sklearn_model_row(run_id, name, blobs, self.artifacts)
        except Exception as exc:  # a model that does not load here (a library we lack): kept as files
            self.report.skip("model", f"{run_id}/{name}", f"kept as files; it does not load here: {exc}")
            return None

    # ---- MLflow 3's logged models ----------------------------------------------------------------

    def import_logged_models(self, source_experiment: str, experiment_id: int) -> None:
        try:
            models = list(_pages(lambda t: self.client.search_logged_models([source_experiment], page_token=t)))
        except Exception as exc:  # an MLflow 2 source has none
            if "logged" not in str(exc).lower() and "not found" not in str(exc).lower():
                self.report.skip("logged models", source_experiment, f"could not be listed: {exc}")
            return
        for model in models:
            if self.store.mlflow_models.get(model.model_id) is not None:
                continue
            if model.source_run_id and self.store.runs.run_state(model.source_run_id) is None:
                self.report.skip("logged model", model.model_id, "its run was not imported")
                continue
            with tempfile.TemporaryDirectory() as folder:
                import mlflow.artifacts

                local = Path(mlflow.artifacts.download_artifacts(model.artifact_location, dst_path=folder,
                                                                 tracking_uri=self.uri))  # fmt: skip
                files = {p.relative_to(local).as_posix(): p for p in sorted(local.rglob("*")) if p.is_file()}
                rows = [{"model_id": model.model_id, "path": path, "hash": self.artifacts.put_file(f),
                         "size": f.stat().st_size} for path, f in files.items()]  # fmt: skip
                blobs = {row["path"]: row for row in rows}
                adopted = self._adopted(model.source_run_id, model.name, blobs) if model.source_run_id else None
            status = getattr(model.status, "name", str(model.status))
            self.store.mlflow_models.create(
                {
                    "id": model.model_id,
                    "experiment_id": experiment_id,
                    "run_id": model.source_run_id,
                    "name": model.name[:MAX_KEY_LENGTH],
                    "status": status if status.startswith("LOGGED_MODEL_") else f"LOGGED_MODEL_{status}",
                    "model_type": model.model_type,
                    "params": dict(model.params or {}),
                    "tags": dict(model.tags or {}),
                    "created_at": model.creation_timestamp,
                    "updated_at": model.last_updated_timestamp or model.creation_timestamp,
                    "created_by": self.user,
                }
            )
            self.store.mlflow_models.add_files(rows)
            if adopted is not None:
                self.store.runs.write(Batch(models=[adopted]))
            self.report.logged_models += 1

    # ---- the registry ------------------------------------------------------------------------------

    def import_registry(self) -> None:
        try:
            models = list(_pages(lambda t: self.client.search_registered_models(max_results=PAGE, page_token=t)))
        except Exception as exc:
            self.report.skip("registry", self.uri, f"could not be read: {exc}")
            return
        for model in models:
            self.progress(f"registered model {model.name}")
            self.import_registered_model(model)

    def import_registered_model(self, model) -> None:
        from ..errors import ConflictError, MlopsLabError, NotFoundError

        models = self.store.models
        try:
            models.get_model(model.name)
        except NotFoundError:
            try:
                models.create_model(model.name, self.user, model.description or None, dict(model.tags or {}))
            except ConflictError:
                pass
            self.report.registered_models += 1
        ours = {}
        for version in models.list_versions(model.name):
            imported = json.loads(version.tags or "{}").get("mlflow.import.version")
            if imported is not None:
                ours[str(imported)] = version.version
        versions = sorted(
            _pages(lambda t: self.client.search_model_versions(f"name='{_quoted(model.name)}'", page_token=t)),
            key=lambda v: int(v.version),
        )
        for version in versions:
            if str(version.version) in ours:
                self.report.versions_already_here += 1
                continue
            where = self._version_source(version)
            if where is None:
                self.report.skip("version", f"{model.name}/{version.version}",
                                 f"its source {version.source!r} names no run of this import")  # fmt: skip
                continue
            run_id, name = where
            record = self.store.runs.get_run(run_id)
            if not any(m["name"] == name for m in record.models):
                self.report.skip("version", f"{model.name}/{version.version}",
                                 f"{version.source} is not a model mlops_lab can convert to ONNX")  # fmt: skip
                continue
            details = {
                "source": version.source,
                "mlflow_model_id": getattr(version, "model_id", None),
                "description": version.description or None,
                "tags": {**dict(version.tags or {}), "mlflow.import.version": str(version.version)},
            }
            try:
                number = self.registry.register(model.name, run_id, name, details=details, allow_failed=True)
            except MlopsLabError as exc:
                self.report.skip("version", f"{model.name}/{version.version}", str(exc))
                continue
            ours[str(version.version)] = number
            self.report.versions_imported += 1
            if version.current_stage and version.current_stage != "None":
                current = models.get_model(model.name).production_version
                models.set_stage(model.name, number, version.current_stage, self.user,
                                 f"imported from MLflow ({model.name} version {version.version})", current, True,
                                 None)  # fmt: skip
        for alias, version in (model.aliases or {}).items():
            number = ours.get(str(version))
            if number is not None and models.aliases(model.name).get(alias) != number:
                models.set_alias(model.name, alias, number, self.user, "imported from MLflow")
                self.report.aliases += 1

    def _version_source(self, version) -> tuple[str, str] | None:
        """The run and the model's name in it that a version was registered from."""
        model_id = getattr(version, "model_id", None)
        match = re.fullmatch(r"models:/(m-[0-9a-f]{32})/?", version.source or "")
        if model_id is None and match:
            model_id = match[1]
        if model_id is not None:
            logged = self.store.mlflow_models.get(model_id)
            if logged is None or not logged["run_id"]:
                return None
            return logged["run_id"], logged["name"]
        match = re.search(r"(?:runs:/|/)([0-9a-f]{32})(?:/artifacts)?/([^/]+)/?$", version.source or "")
        if match is None or self.store.runs.run_state(match[1]) is None:
            return None
        return match[1], match[2]


def _quoted(text: str) -> str:
    return text.replace("'", "\\'")


def import_mlflow(source: str, store: Store, artifacts, registry, user: str, *, experiments=None, progress=None):
    """Import an MLflow history (see the module's docstring); returns an ``ImportReport``."""
    importer = MlflowImporter(source, store, artifacts, registry, user, progress=progress)
    return importer.run(experiments)
