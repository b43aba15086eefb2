"""The demo notebooks run end to end on a real kernel (nbclient) and fill the store."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from mlops_lab.store import open_store

DEMOS = Path(__file__).parent.parent / "demo_notebooks"


def run_demo(name: str, tmp_path, monkeypatch) -> tuple[list, str]:
    """Execute a demo notebook on a real kernel against a store in ``tmp_path``; return its outputs
    and the store's URL. Any error output fails the test."""
    db_url = f"sqlite:///{tmp_path / 'demo.db'}"
    monkeypatch.setenv("MLOPS_LAB_DB_URL", db_url)
    monkeypatch.setenv("MLOPS_LAB_ARTIFACTS", str(tmp_path / "artifacts"))
    notebook_path = tmp_path / name
    shutil.copy(DEMOS / name, notebook_path)
    notebook = nbformat.read(notebook_path, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert [o for o in outputs if o.output_type == "error"] == []
    return outputs, db_url


@pytest.mark.slow
def test_tracking_demo_runs_and_fills_the_store(tmp_path, monkeypatch):
    outputs, db_url = run_demo("01_tracking.ipynb", tmp_path, monkeypatch)
    store = open_store(db_url)
    runs, params, metrics, tags = store.runs.search_runs(order_by="attributes.start_time")
    by_name = {r["name"]: r for r in runs}
    assert {"rf-baseline", "rf-deeper", "logreg", "gb-sweep", "gb-lr0.1"} <= set(by_name)
    assert all(r["status"] == "FINISHED" for r in runs)
    baseline = store.runs.get_run(by_name["rf-baseline"]["id"])
    assert baseline.params["n_estimators"] == "50" and baseline.params["max_depth"] == "4"
    assert 0.9 < baseline.metrics["accuracy"] <= 1 and baseline.tags["family"] == "forest"
    assert baseline.models[0]["onnx_hash"] and {d["name"] for d in baseline.datasets} >= {"X_train", "X_test"}
    assert [a["path"] for a in baseline.artifacts] == ["stdout.txt"]  # the cell printed its scores
    child = store.runs.get_run(by_name["gb-lr0.1"]["id"])
    assert child.info.parent_run_id == by_name["gb-sweep"]["id"]
    assert len(store.runs.metric_history(child.info.id, "test_log_loss")) == 60
    # One cell's loop over C: a parent and a child run per value; a training loop: curves.
    trials = [r for r in runs if r["parent_run_id"] == by_name["svc-sweep"]["id"]]
    assert sorted(r["name"] for r in trials) == ["svc-sweep-C=0.1", "svc-sweep-C=1.0", "svc-sweep-C=10.0"]
    assert all(store.runs.get_run(r["id"]).models for r in trials)
    sgd = by_name["sgd-epochs"]["id"]
    assert [s for s, _, _ in store.runs.metric_history(sgd, "train_loss")] == list(range(30))
    assert "epoch" not in store.runs.get_run(sgd).metrics and store.runs.get_run(sgd).models
    # The last cells searched and printed the best run.
    printed = "".join(o.get("text", "") for o in outputs)
    assert "model: [('model'" in printed and "data:" in printed


@pytest.mark.slow
def test_drift_demo_finds_the_shift(tmp_path, monkeypatch):
    outputs, db_url = run_demo("02_drift.ipynb", tmp_path, monkeypatch)
    printed = "".join(o.get("text", "") for o in outputs)
    assert "dataset drift: 3 of 5 features drifted" in printed
    store = open_store(db_url)
    [report] = store.drift_reports.list()
    assert report["name"] == "weekly check" and set(report["drifted_columns"]) == {"age", "income", "plan"}


@pytest.mark.slow
def test_features_demo_trains_materializes_and_has_no_skew(tmp_path, monkeypatch):
    outputs, db_url = run_demo("03_features.ipynb", tmp_path, monkeypatch)
    assert "'mismatches': 0" in "".join(o.get("text", "") for o in outputs)
    store = open_store(db_url)
    runs, params, metrics, _ = store.runs.search_runs()
    assert runs[0]["name"] == "logreg-on-features" and "accuracy" in metrics[runs[0]["id"]]


@pytest.mark.slow
def test_serving_demo_serves_shadows_logs_and_swaps(tmp_path, monkeypatch):
    outputs, db_url = run_demo("04_serving.ipynb", tmp_path, monkeypatch)
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "same as in-process onnxruntime: True" in text
    assert "nv_inference_request_success" in text
    # The wording matches the numbers: requests, and the rows they carry (100 of 20 rows, 2 earlier ones of 5 and 2)
    requests, rows = map(int, re.search(r"(\d+) requests so far, carrying (\d+) rows", text).groups())
    assert (requests, rows) == (102, 2007)
    assert float(re.search(r"ran (\d+\.\d) rows at a time", text)[1]) > 1
    compared = re.search(r"shadow: (\d+) rows of (\d+) requests compared", text)
    shadow_rows, shadow_requests = int(compared[1]), int(compared[2])  # (a full shadow queue drops, never slows)
    assert 90 <= shadow_requests <= 102 and 20 * (shadow_requests - 2) <= shadow_rows <= 2007
    assert "shadow verdict: the candidate" in text
    assert re.search(r"(\d+) rows logged", text) and int(re.search(r"(\d+) rows logged", text)[1]) >= 2000
    assert "1 of 4 features drifted" in text and "now serving: 2" in text  # monthly_charges moved
    (report,) = open_store(db_url).drift_reports.list(10)
    assert report["deployment"] == "churn" and report["model_name"] == "churn" and report["model_version"] == "1"
    assert report["drifted_columns"] == ["monthly_charges"]
