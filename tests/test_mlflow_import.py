"""``mlops-lab import mlflow``: a real MLflow history (MLflow's own client writing its SQLite store
and artifact folder) moved into the lab's store, checked against the source through MLflow's client
on both sides; imported again (nothing added); killed mid-way and resumed (no half-imported run)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mlops_lab.cli import main as cli
from mlops_lab.store import open_store
from tests.lab import mlflow_server

mlflow = pytest.importorskip("mlflow")


def _history(root) -> str:
    """An MLflow history: two experiments (and MLflow's Default), nested and deleted runs, metric curves with a NaN,
    artifacts in folders, a dataset, a scikit-learn model registered twice with stages and an alias,
    and a model our registry cannot take."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    uri = f"sqlite:///{root / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("imported", artifact_location=(root / "artifacts").as_uri(),
                                          tags={"team": "ds"})  # fmt: skip
    client.create_experiment("other", artifact_location=(root / "artifacts-other").as_uri())
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    y = (X["a"] > 0).astype(int)
    with mlflow.start_run(experiment_id=experiment, run_name="parent") as parent:
        mlflow.log_params({"C": 0.5, "solver": "lbfgs"})
        for step in range(50):
            mlflow.log_metric("loss", 1 / (step + 1), step=step)
        mlflow.log_metric("odd", float("nan"))
        mlflow.set_tag("stage", "baseline")
        mlflow.log_text("notes", "docs/notes.txt")
        mlflow.log_dict({"k": 1}, "config.json")
        mlflow.log_input(mlflow.data.from_pandas(X, name="train"), context="training")
        model = LogisticRegression().fit(X, y)
        first = mlflow.sklearn.log_model(model, name="model", input_example=X.head(2))
        with mlflow.start_run(run_name="child", nested=True):
            mlflow.log_metric("inner", 3.0)
    with mlflow.start_run(experiment_id=experiment, run_name="second"):
        mlflow.log_param("C", 1.0)
        second = mlflow.sklearn.log_model(LogisticRegression(C=1.0).fit(X, y), name="model", input_example=X.head(2))
        custom = mlflow.pyfunc.log_model(name="custom", python_model=_Constant())
    with mlflow.start_run(experiment_id=experiment, run_name="gone") as gone:
        mlflow.log_metric("x", 1.0)
    client.delete_run(gone.info.run_id)
    client.create_registered_model("churn", tags={"owner": "ds"}, description="from MLflow")
    client.create_model_version("churn", f"models:/{first.model_id}", parent.info.run_id, model_id=first.model_id)
    client.create_model_version("churn", f"models:/{second.model_id}", second.run_id, model_id=second.model_id)
    client.transition_model_version_stage("churn", "1", "Staging")
    client.transition_model_version_stage("churn", "2", "Production")
    client.set_registered_model_alias("churn", "champion", "2")
    client.create_registered_model("custom")
    client.create_model_version("custom", f"models:/{custom.model_id}", custom.run_id, model_id=custom.model_id)
    mlflow.set_tracking_uri(None)
    return uri


class _Constant(mlflow.pyfunc.PythonModel if mlflow else object):
    def predict(self, context, model_input, params=None):
        return [0] * len(model_input)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return _history(tmp_path_factory.mktemp("mlflow-source"))


def _target(tmp_path):
    return ["--db-url", f"sqlite:///{tmp_path / 'ours.db'}", "--artifacts", str(tmp_path / "blobs")]


def test_an_mlflow_history_moves_in_whole_and_once(source, tmp_path, capsys):
    report_file = tmp_path / "report.json"
    assert cli([*_target(tmp_path), "import", "mlflow", source, "--report", str(report_file)]) == 0
    report = json.loads(report_file.read_text())
    printed = capsys.readouterr().out
    assert "4 runs (0 already here)" in printed and "skipped version custom/1" in printed, printed
    assert report["experiments"] == 3 and report["runs_imported"] == 4 and report["runs_already_here"] == 0
    assert report["metric_points"] == 50 + 1 + 1 + 1 and report["logged_models"] == 3
    assert report["versions_imported"] == 2 and report["aliases"] == 1
    assert [s["id"] for s in report["skipped"]] == ["custom/1"]
    assert "ONNX" in report["skipped"][0]["why"]

    from mlops_lab.config import resolve
    from mlops_lab.workspace import Workspace

    workspace = Workspace(resolve(f"sqlite:///{tmp_path / 'ours.db'}", str(tmp_path / "blobs")))
    source_client = mlflow.MlflowClient(source)
    try:
        runs = workspace.store.runs
        for theirs in source_client.search_runs(
            [e.experiment_id for e in source_client.search_experiments()], run_view_type=3
        ):
            ours = runs.get_run(theirs.info.run_id)
            assert ours.info.name == theirs.info.run_name and ours.info.status == theirs.info.status
            assert ours.params == theirs.data.params
            # MLflow's system tags are the run's columns here; the others are tags
            system = ("mlflow.runName", "mlflow.user", "mlflow.parentRunId", "mlflow.source.name")
            assert ours.tags == {k: v for k, v in theirs.data.tags.items() if k not in system}
            assert ours.info.user == theirs.data.tags["mlflow.user"] == theirs.info.user_id
            assert ours.info.notebook_path == theirs.data.tags["mlflow.source.name"]
            assert ours.info.parent_run_id == theirs.data.tags.get("mlflow.parentRunId")
            for key in theirs.data.metrics:
                expected = [
                    (m.step, m.timestamp, m.value) for m in source_client.get_metric_history(theirs.info.run_id, key)
                ]
                got = runs.metric_history(theirs.info.run_id, key)
                assert [(s, t) for s, t, _ in got] == [(s, t) for s, t, _ in expected]
                assert np.allclose([v for *_, v in got], [v for *_, v in expected], equal_nan=True)
            assert (ours.info.deleted_at is not None) == (theirs.info.lifecycle_stage == "deleted")
        parent = next(r for r in source_client.search_runs([source_client.get_experiment_by_name("imported").experiment_id])
                      if r.info.run_name == "parent")  # fmt: skip
        record = runs.get_run(parent.info.run_id)
        files = {a["path"]: a for a in record.artifacts}
        assert workspace.artifacts.get_bytes(files["docs/notes.txt"]["hash"]) == b"notes"
        assert [d["direction"] for d in record.datasets] == ["input"]
        assert [(m["name"], m["flavor"]) for m in record.models] == [("model", "sklearn")]
        child = runs.search_runs(None, f"attributes.parent_run_id = '{parent.info.run_id}'")[0]
        assert [r["name"] for r in child] == ["child"]
        churn = workspace.registry.describe("churn")
        assert [(v["version"], v["stage"]) for v in churn["versions"]] == [(1, "Staging"), (2, "Production")]
        assert churn["aliases"] == {"champion": 2} and churn["model"]["description"] == "from MLflow"
        assert all(v["onnx_hash"] for v in churn["versions"])  # converted and verified on the way in
        experiment = next(e for e in runs.list_experiments() if e.name == "imported")
        assert json.loads(experiment.tags) == {"team": "ds"}
    finally:
        workspace.close()

    # Read back through MLflow's client, from the lab's MLflow endpoint: the same runs, the same values.
    from tests.lab import LabServer

    (tmp_path / "notebooks").mkdir()
    lab = LabServer(
        tmp_path / "notebooks",
        {"MLOPS_LAB_DB_URL": f"sqlite:///{tmp_path / 'ours.db'}", "MLOPS_LAB_ARTIFACTS": str(tmp_path / "blobs")},
    )
    try:
        os.environ["MLFLOW_TRACKING_TOKEN"] = lab.token
        ours_client = mlflow.MlflowClient(f"{lab.url}/mlops-lab/mlflow")
        theirs_id = source_client.get_experiment_by_name("imported").experiment_id
        ours_id = ours_client.get_experiment_by_name("imported").experiment_id
        theirs = {r.info.run_id: r for r in source_client.search_runs([theirs_id], run_view_type=3)}
        ours = {r.info.run_id: r for r in ours_client.search_runs([ours_id], run_view_type=3)}
        assert set(ours) == set(theirs)
        for run_id, run in theirs.items():
            assert ours[run_id].data.params == run.data.params
            assert ours[run_id].data.tags == run.data.tags
            assert ours[run_id].data.metrics.keys() == run.data.metrics.keys()
            for key, value in run.data.metrics.items():
                assert ours[run_id].data.metrics[key] == pytest.approx(value, nan_ok=True)
        loss = ours_client.get_metric_history(parent.info.run_id, "loss")
        assert [(m.step, m.value) for m in loss] == [(s, 1 / (s + 1)) for s in range(50)]
        assert ours_client.get_model_version_by_alias("churn", "champion").run_id == ours[next(
            r for r in theirs if theirs[r].info.run_name == "second")].info.run_id  # fmt: skip
    finally:
        os.environ.pop("MLFLOW_TRACKING_TOKEN", None)
        lab.stop()

    # A second import adds nothing.
    assert cli([*_target(tmp_path), "import", "mlflow", source, "--report", str(report_file)]) == 0
    again = json.loads(report_file.read_text())
    assert again["runs_imported"] == 0 and again["runs_already_here"] == 4
    assert again["versions_imported"] == 0 and again["versions_already_here"] == 2 and again["logged_models"] == 0


def test_a_killed_import_leaves_no_half_run_and_resumes(tmp_path):
    uri = f"sqlite:///{tmp_path / 'big.db'}"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("big", artifact_location=(tmp_path / "a").as_uri())
    points = 400
    for i in range(40):
        run = client.create_run(experiment, run_name=f"r{i}")
        for first in range(0, points, 200):
            client.log_batch(
                run.info.run_id,
                metrics=[
                    mlflow.entities.Metric("loss", float(s), 1_700_000_000_000 + s, s)
                    for s in range(first, first + 200)
                ],
            )
        client.set_terminated(run.info.run_id)
    target = ["--db-url", f"sqlite:///{tmp_path / 'ours.db'}", "--artifacts", str(tmp_path / "blobs")]
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_lab.cli", *target, "import", "mlflow", uri],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )

    ours = open_store(f"sqlite:///{tmp_path / 'ours.db'}")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if len(ours.runs.search_runs(None)[0]) >= 5:
                break
        except Exception:  # the schema is still being made
            pass
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    imported = ours.runs.search_runs(None)[0]
    assert 0 < len(imported) < 40, "the import was to be killed after its first runs, before its end"
    for run in imported:  # every run here is whole
        assert ours.runs.count_metric_points(run["id"]) == points
    assert cli([*target, "import", "mlflow", uri]) == 0
    assert len(ours.runs.search_runs(None)[0]) == 40
    assert ours.runs.count_metric_points() == 40 * points


def test_a_source_that_is_not_one_is_a_clear_error(tmp_path, capsys):
    assert cli([*_target(tmp_path), "import", "mlflow", str(tmp_path / "nothing-here")]) == 2
    assert "neither a tracking URI" in capsys.readouterr().err


def test_from_a_tracking_server_the_same_history_arrives_as_from_its_database(source, tmp_path):
    """A database is read directly, a server only through MLflow's client: both give every point."""
    histories = {}
    with mlflow_server(source, tmp_path / "server.log") as url:
        for side, uri in (("database", source), ("server", url)):
            target = tmp_path / side
            assert cli(["--db-url", f"sqlite:///{target}.db", "--artifacts", str(target), "import", "mlflow", uri]) == 0
            store = open_store(f"sqlite:///{target}.db")
            runs, _, metrics, _ = store.runs.search_runs(None, None, None, 100, lifecycle="all")
            histories[side] = {
                (run["id"], key): [(s, t, "NaN" if v != v else v) for s, t, v in store.runs.metric_history(run["id"], key)]
                for run in runs
                for key in metrics[run["id"]]
            }  # fmt: skip
    assert sum(len(points) for points in histories["database"].values()) == 50 + 1 + 1 + 1
    assert "NaN" in str(histories["database"])  # the database's is_nan column read as NaN
    assert histories["server"] == histories["database"]
