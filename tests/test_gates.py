"""Gates: data validation and candidate-vs-Production evaluation, stored on the version; the CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

import mlops_lab as ml
from mlops_lab.gates import data_checks, threshold_checks
from mlops_lab.registry import RegistryError


@pytest.fixture
def models(workspace, tracker, tmp_path):
    """Two versions of one model: a weak tree in Production, a better logistic regression candidate."""
    data = load_breast_cancer(as_frame=True)
    frame = data.frame.rename(columns=lambda c: c.replace(" ", "_"))
    features = [c for c in frame.columns if c != "target"]
    train, holdout = frame.iloc[:400], frame.iloc[400:]
    holdout_path = tmp_path / "holdout.parquet"
    holdout.to_parquet(holdout_path)
    versions = []
    for model in (DecisionTreeClassifier(max_depth=1, random_state=0), LogisticRegression(max_iter=5000)):
        with ml.start_run() as run:
            ml.log_model(model.fit(train[features], train["target"]), input_example=train[features].head())
        ml.flush()
        versions.append(ml.register("cancer", run.id, sample_rows=train[features].head(50)))
    registry = workspace.as_user("ci").registry
    registry.set_policy("cancer", 0)
    registry.promote("cancer", versions[0], "Staging")
    registry.promote("cancer", versions[0], "Production")
    return registry, versions, holdout_path, train, holdout


def test_evaluation_gate_compares_with_production(workspace, tracker, models):
    registry, (weak, strong), holdout_path, _, _ = models
    result = ml.evaluate(
        "cancer",
        strong,
        str(holdout_path),
        target="target",
        thresholds={"accuracy": {"min_improvement": 0.0, "min": 0.9}, "roc_auc": {"max_regression": 0.0}},
    )
    assert result.passed, result.checks
    assert result.metrics["production_version"] == weak
    assert result.metrics["candidate"]["accuracy"] > result.metrics["production"]["accuracy"]
    backwards = ml.evaluate("cancer", weak, str(holdout_path), target="target", thresholds={"accuracy": {"min": 0.99}})
    assert not backwards.passed
    stored = workspace.store.models.gate_results("cancer", strong)
    assert [r["passed"] for r in stored] == [True] and stored[0]["details"]["gate"] == "evaluation"
    assert any(e["kind"] == "gate" for e in ml.model_history("cancer"))


def test_data_gate_catches_schema_nulls_ranges_categories_and_drift():
    rng = np.random.default_rng(0)
    reference = pd.DataFrame(
        {"x": rng.normal(size=2000), "city": rng.choice(["a", "b"], 2000), "n": rng.integers(0, 5, 2000)}
    )
    good = pd.DataFrame(
        {"x": rng.normal(size=2000), "city": rng.choice(["a", "b"], 2000), "n": rng.integers(0, 5, 2000)}
    )
    import polars as pl

    assert all(c.passed for c in data_checks(pl.from_pandas(good), pl.from_pandas(reference)))
    bad = good.copy()
    bad.loc[:300, "x"] = np.nan
    bad["x"] = bad["x"] * 10
    bad.loc[0, "city"] = "z"
    bad = bad.drop(columns=["n"])
    checks = {
        c.name: c
        for c in data_checks(pl.from_pandas(bad).with_columns(pl.col("x").fill_nan(None)), pl.from_pandas(reference))
    }
    assert not checks["columns"].passed and "n" in checks["columns"].detail
    assert not checks["x: nulls"].passed and not checks["x: range"].passed
    assert not checks["city: categories"].passed and "'z'" in checks["city: categories"].detail


def test_data_gate_is_stored(workspace, tracker, models):
    registry, (_, strong), _, train, holdout = models
    result = ml.validate_data("cancer", strong, holdout, train, check_drift=False)
    assert result.gate == "data" and workspace.store.models.gate_results("cancer", strong)[0]["gate"] == "data"


@pytest.mark.parametrize(
    "thresholds, message",
    [
        ({}, "at least one threshold"),
        ({"accuracy": {"at_least": 1}}, "unknown threshold"),
        ({"f1": {"min": 0.5}}, "metric 'f1' is not computed"),
    ],
)
def test_bad_thresholds(workspace, tracker, models, thresholds, message):
    _, (_, strong), holdout_path, _, _ = models
    with pytest.raises(RegistryError, match=message):
        ml.evaluate("cancer", strong, str(holdout_path), target="target", thresholds=thresholds)
    assert workspace.store.models.gate_results("cancer") == []


def test_threshold_rules_for_errors_where_lower_is_better():
    checks = threshold_checks({"rmse": 1.0}, {"rmse": 1.2}, {"rmse": {"min_improvement": 0.1, "max_regression": 0.0}})
    assert [c.passed for c in checks] == [True, True]
    worse = threshold_checks({"rmse": 1.3}, {"rmse": 1.2}, {"rmse": {"max_regression": 0.05}})
    assert [c.passed for c in worse] == [False]


def test_cli_gate_exit_codes(tracker, models):
    _, (weak, strong), holdout_path, _, _ = models
    base = [
        sys.executable,
        "-m",
        "mlops_lab.cli",
        "--db-url",
        tracker.runs.url,
        "--artifacts",
        tracker.artifacts.root,
        "gate",
        "cancer",
        "--holdout",
        str(holdout_path),
        "--target",
        "target",
    ]
    passed = subprocess.run(
        [*base, "--candidate", str(strong), "--threshold", "accuracy:min_improvement=0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert passed.returncode == 0 and "evaluation gate passed" in passed.stdout
    failed = subprocess.run(
        [*base, "--candidate", str(weak), "--threshold", "accuracy:min=0.99"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1 and "FAIL accuracy >= 0.99" in failed.stdout
    malformed = subprocess.run(
        [*base, "--candidate", str(strong), "--threshold", "accuracy"], capture_output=True, text=True, timeout=120
    )
    assert malformed.returncode == 2 and "metric:kind=value" in malformed.stderr
