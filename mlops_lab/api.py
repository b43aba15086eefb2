"""The public Python API (``import mlops_lab as ml``): thin calls onto the default workspace's services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .config import resolve
from .store import RunRecord
from .tracking import ActiveRun, MetricPoint
from .workspace import Workspace, default_workspace, set_default_workspace

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd


def set_store(db_url: str | None = None, artifacts: str | None = None) -> Workspace:
    """Point this process at another store (the resolution order applies to what is not given)."""
    workspace = Workspace(resolve(db_url, artifacts))
    set_default_workspace(workspace)
    return workspace


def _tracking():
    return default_workspace().tracking


def start_run(
    name: str | None = None,
    *,
    experiment: str | None = None,
    tags: dict | None = None,
    nested: bool = False,
    description: str | None = None,
) -> ActiveRun:
    """Start a run; use it as a context manager (``with ml.start_run() as run:``)."""
    return _tracking().start_run(name, experiment=experiment, tags=tags, nested=nested, description=description)


def resume_run(run_id: str) -> ActiveRun:
    return _tracking().resume_run(run_id)


def end_run(status: str = "FINISHED") -> None:
    _tracking().end_run(status)


def active_run() -> ActiveRun | None:
    return _tracking().active_run()


def log_param(key: str, value) -> None:
    _tracking().log_params({key: value})


def log_params(params: dict) -> None:
    _tracking().log_params(params)


def log_metric(key: str, value, step: int | None = None, timestamp: int | None = None) -> None:
    _tracking().log_metrics({key: value}, step=step, timestamp=timestamp)


def log_metrics(metrics: dict, step: int | None = None, timestamp: int | None = None) -> None:
    _tracking().log_metrics(metrics, step=step, timestamp=timestamp)


def set_tag(key: str, value) -> None:
    _tracking().set_tags({key: value})


def set_tags(tags: dict) -> None:
    _tracking().set_tags(tags)


def log_artifact(path, artifact_path: str | None = None) -> None:
    _tracking().log_artifact(path, artifact_path)


def log_artifacts(folder, artifact_path: str | None = None) -> None:
    """Store a whole folder (one manifest, each file content-addressed)."""
    _tracking().log_artifact(folder, artifact_path)


def log_text(text: str, artifact_file: str) -> None:
    """Store text as an artifact file of the active run (MLflow's ``log_text``)."""
    _tracking().log_text(text, artifact_file)


def log_figure(figure, artifact_file: str) -> None:
    """A matplotlib or plotly figure or a PIL image as an artifact of the active run, as MLflow's
    ``log_figure``: ``chart.png``, ``chart.json`` (plotly, interactive in the lab) or ``chart.html``."""
    _tracking().log_figure(figure, artifact_file)


def log_model(model, name: str = "model", *, input_example=None) -> None:
    """A fitted scikit-learn estimator (kept, and converted to ONNX) or an ONNX model."""
    _tracking().log_model(model, name, input_example=input_example)


def log_dataset(data, name: str | None = None, *, direction: str = "input") -> None:
    """A pandas/polars frame or a file/folder: content hash, schema and row count, stored once."""
    _tracking().log_dataset(data, name, direction=direction)


def get_run(run_id: str) -> RunRecord:
    return _tracking().get_run(run_id)


def delete_run(run_id: str) -> None:
    """Take a run out of searches and the Runs panel; everything is kept until ``restore_run``."""
    from .tracking.run_page import set_deleted

    workspace = default_workspace()
    set_deleted(workspace.store.runs, run_id, workspace.user, True)


def restore_run(run_id: str) -> None:
    from .tracking.run_page import set_deleted

    workspace = default_workspace()
    set_deleted(workspace.store.runs, run_id, workspace.user, False)


def get_metric_history(run_id: str, key: str) -> list[MetricPoint]:
    """Every point of one metric of a run, by step, as MLflow's client gives them."""
    return _tracking().metric_history(run_id, key)


def flush() -> None:
    """Wait until everything logged so far is in the store."""
    default_workspace().flush()


def search_runs(
    experiment: str | list[str] | None = None,
    filter_string: str | None = None,
    order_by: list[str] | str | None = None,
    max_results: int = 1000,
) -> pd.DataFrame:
    """Runs as a DataFrame, filtered with MLflow's grammar (``"metrics.acc > 0.9 and params.model = 'rf'"``)."""
    return _tracking().search_runs(experiment, filter_string, order_by, max_results)


# ---- drift -----------------------------------------------------------------------------------


def drift(reference, current, **options):
    """Compare ``current`` with ``reference`` (frames, file paths, dataset version hashes, or a
    reference ``Profile``); returns a report that renders as a widget.  See ``mlops_lab.monitoring``."""
    from .monitoring import drift as compute

    return compute(reference, current, artifacts=default_workspace().artifacts, **options)


def drift_profile(
    reference, *, columns: list[str] | None = None, categorical: list[str] | None = None, save: bool = False
):
    """Profile a reference once; with ``save=True`` returns ``(profile, hash)`` after storing it."""
    from .monitoring import profile

    workspace = default_workspace()
    result = profile(reference, columns=columns, categorical=categorical, artifacts=workspace.artifacts)
    return (result, workspace.drift_reports.save_profile(result)) if save else result


def load_profile(digest: str):
    return default_workspace().drift_reports.load_profile(digest)


def save_drift_report(
    report,
    name: str,
    *,
    reference: str = "",
    current: str = "",
    model: str | None = None,
    deployment: str | None = None,
) -> str:
    """Store a report (linked to the active run, if any); it shows in the Drift reports panel."""
    workspace = default_workspace()
    active = workspace.tracking.active_run()
    return workspace.drift_reports.save(
        report,
        name,
        reference=reference,
        current=current,
        model=model,
        deployment=deployment,
        run_id=active.id if active else None,
    )


def drift_reports(limit: int = 100) -> "pd.DataFrame":
    import pandas as pd

    return pd.DataFrame(default_workspace().drift_reports.list(limit))


def load_drift_report(report_id: str):
    return default_workspace().drift_reports.load(report_id)


def performance(data, *, target: str, prediction: str, timestamp: str, period: str = "1d", task: str | None = None):
    """Accuracy/AUC or RMSE/MAE per period, once delayed labels are joined (a DataFrame)."""
    import pandas as pd

    from .monitoring import performance as compute

    return pd.DataFrame(
        compute(
            data,
            target=target,
            prediction=prediction,
            timestamp=timestamp,
            period=period,
            task=task,
            artifacts=default_workspace().artifacts,
        )
    )


def runs(
    experiment: str | list[str] | None = None,
    filter_string: str | None = None,
    order_by: list[str] | str | None = None,
    max_results: int = 100,
):
    """A widget: runs with a filter box, and a param-vs-metric scatter."""
    from .widgets import runs as widget

    return widget(experiment, filter_string, order_by, max_results)


def compare(run_ids: list[str]):
    """A widget: runs side by side, what differs, metric curves, parallel coordinates, code diff."""
    from .widgets import compare as widget

    return widget(run_ids)


# ---- model registry --------------------------------------------------------------------------


def _registry():
    return default_workspace().registry


def register(
    name: str, run_id: str, model: str = "model", *, sample_rows=None, tolerance: float = 1e-4, allow_failed=False
) -> int:
    """Register the model a run logged as a new version of ``name``; returns the version number.
    A FAILED or KILLED run's model needs ``allow_failed=True``."""
    return _registry().register(
        name, run_id, model, sample_rows=sample_rows, tolerance=tolerance, allow_failed=allow_failed
    )


def promote(name: str, version: int, stage: str, *, comment: str | None = None, archive_previous: bool = True) -> None:
    """Move a version to None, Staging, Production or Archived (Production may need approvals)."""
    _registry().promote(name, version, stage, comment=comment, archive_previous=archive_previous)


def set_alias(name: str, alias: str, version: int | None, *, comment: str | None = None) -> None:
    """Point an alias (``champion``, ``challenger``) at a version; ``None`` removes it."""
    _registry().set_alias(name, alias, version, comment=comment)


def set_approval_policy(name: str, required_approvals: int | None) -> None:
    _registry().set_policy(name, required_approvals)


def request_approval(name: str, version: int, *, stage: str = "Production", comment: str | None = None) -> str:
    return _registry().request_approval(name, version, stage=stage, comment=comment)


def approve(request_id: str, *, comment: str | None = None) -> str:
    return _registry().approve(request_id, comment=comment)


def reject(request_id: str, *, comment: str | None = None) -> str:
    return _registry().reject(request_id, comment=comment)


def load_model(uri: str):
    """``"name@production"``, ``"name@champion"``, ``"name/3"``: an onnxruntime-backed model."""
    return _registry().load_model(uri)


def model_history(name: str) -> list[dict]:
    return _registry().history(name)


def validate_data(name: str, version: int, data, reference, **options):
    """Data gate: schema, nulls, ranges, categories and distributions of ``data`` against ``reference``."""
    from .gates import validate_data as gate

    return gate(_registry(), name, version, data, reference, **options)


def evaluate(name: str, candidate: int, holdout, *, target: str, thresholds: dict[str, dict]):
    """Evaluation gate: the candidate against Production on a pinned holdout, with per-metric thresholds."""
    from .gates import evaluate as gate

    return gate(_registry(), name, candidate, holdout, target=target, thresholds=thresholds)


def models():
    """A widget: registered models, versions, stages, aliases, gates, approvals and history, with actions."""
    from .widgets import models as widget

    return widget()


# ---- pipelines -------------------------------------------------------------------------------


def pipeline(source="pipeline.yaml", *, root=".", name: str | None = None):
    """A pipeline to inspect and run: its file (or folder), or the same description as a dict.

    p = ml.pipeline("demo_notebooks/pipeline")
    p.status()                     # each step: cached, restore or stale, and why
    p.run()                        # the stale steps, as runs; p.run(steps=["train"], force=True)
    """
    from .pipelines import build_pipeline, load_pipeline
    from .pipelines.runner import PipelineRunner

    spec = build_pipeline(source, root=root, name=name) if isinstance(source, dict) else load_pipeline(source)
    return PipelineRunner(default_workspace(), spec, progress=print)


def lineage(model: str | None = None, *, dataset: str | None = None) -> dict:
    """Where a model version came from (``"churn/3"``: its runs, pipeline, steps, data and code), or
    everything made downstream of a dataset version (``dataset=HASH``)."""
    from .pipelines.lineage import dataset_lineage, model_lineage

    if (model is None) == (dataset is None):
        raise TypeError('lineage takes a model version ("name/version") or dataset=HASH')
    workspace = default_workspace()
    return model_lineage(workspace, model) if model is not None else dataset_lineage(workspace, dataset)


# ---- data and features -----------------------------------------------------------------------


def checkout(run_id: str, into) -> "Path":
    """Restore a run into a new folder: input data, its cell as a notebook, models, requirements."""
    from .tracking.checkout import checkout as restore

    return restore(default_workspace(), run_id, into)


def dataset_diff(left, right, *, key: str | list[str] | None = None) -> dict:
    """Schema, row, key and distribution changes between two dataset versions (hashes, files or frames)."""
    from .tracking.datadiff import dataset_diff as diff

    return diff(default_workspace().artifacts, left, right, key=key)


def feature_store(path=None, *, online: str = "sqlite"):
    """The feature store: definitions beside runs, online values under ``path`` (default: the
    per-user home) or in Redis (``online="redis://…"``).  See ``mlops_lab.features``."""
    return default_workspace().features(path, online)


# ---- serving ---------------------------------------------------------------------------------


def serve(model: str, *, name: str | None = None, wait: bool = True, **options):
    """Serve ``model`` (``"churn@production"``, ``"churn/3"``, a ``.onnx`` file) on 127.0.0.1.

    In a notebook the lab runs the process (the Serving panel shows it, restarts it on a crash);
    options are those of ``mlops-lab serve``: ``canary``, ``canary_share``, ``shadow``,
    ``max_batch_size``, ``max_queue_delay_us``, ``max_queue_size``, ``timeout_us``, ``threads``,
    ``cpu``, ``log_sample``, ``token``.  Returns a handle with ``predict``, ``infer``, ``status``,
    ``log``, ``request_log``, ``rollout``, ``drift`` and ``stop``.
    """
    from .serving.client import start_serving

    return start_serving(default_workspace(), model, name=name, wait=wait, **options)


def deployments() -> list[dict]:
    """The deployments this lab (or this process) runs, with their state."""
    from .serving.client import controller

    return controller(default_workspace()).list()


def stop_serving(name: str) -> dict:
    """Stop a deployment (it drains the requests in flight first)."""
    from .serving.client import controller

    return controller(default_workspace()).stop(name)


def predict(model: str, source, destination, *, chunk_rows: int = 50_000, keep: list[str] | None = None) -> dict:
    """Score a parquet/CSV file with a registered version (or a ``.onnx`` file), chunk by chunk."""
    from .serving.predict import predict_file

    return predict_file(
        model,
        source,
        destination,
        chunk_rows=chunk_rows,
        keep=keep,
        workspace=None if str(model).endswith(".onnx") else default_workspace(),
    )
