"""``mlops-lab`` as a person runs it: a real process on a real store."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import mlops_lab as ml


def cli(*args, check=True):
    result = subprocess.run([sys.executable, "-m", "mlops_lab.cli", *args], capture_output=True, text=True, timeout=120)
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def runs(tracker):
    ids = []
    for i in range(3):
        with ml.start_run(f"r{i}", experiment="cli") as run:
            ml.log_param("depth", i)
            ml.log_metric("acc", 0.5 + i / 10)
            ml.log_metric("acc", 0.6 + i / 10)
        ids.append(run.id)
    ml.flush()
    return tracker, ids


def test_info_says_which_store_and_why(tracker):
    out = cli("--db-url", tracker.runs.url, "info").stdout
    assert tracker.runs.url in out and "explicit argument" in out


def test_experiments_and_runs(runs):
    tracker, ids = runs
    url = ["--db-url", tracker.runs.url]
    assert "cli" in cli(*url, "experiments", "list").stdout
    listing = json.loads(
        cli(*url, "runs", "list", "--json", "-f", "metrics.acc > 0.65", "-o", "metrics.acc DESC").stdout
    )
    assert [r["run_name"] for r in listing] == ["r2", "r1"]
    shown = json.loads(cli(*url, "runs", "show", ids[0]).stdout)
    assert shown["params"] == {"depth": "0"} and shown["info"]["status"] == "FINISHED"


def test_export_includes_metric_history(runs, tmp_path):
    tracker, ids = runs
    target = tmp_path / "export.json"
    cli("--db-url", tracker.runs.url, "runs", "export", "-e", "cli", "--output", str(target))
    exported = json.loads(target.read_text())["runs"]
    assert len(exported) == 3
    history = exported[0]["metric_history"]["acc"]
    assert [point["step"] for point in history] == [0, 1]


def test_bad_input_exits_non_zero_with_a_message(runs, tmp_path):
    tracker, _ = runs
    url = ["--db-url", tracker.runs.url]
    bad_filter = cli(*url, "runs", "list", "-f", "metrics.acc >", check=False)
    assert bad_filter.returncode == 2 and "ends early" in bad_filter.stderr
    unknown = cli(*url, "runs", "show", "nope", check=False)
    assert unknown.returncode == 2 and "no run with id 'nope'" in unknown.stderr
    missing = cli(*url, "runs", "list", "-e", "ghost", check=False)
    assert missing.returncode == 2 and "no experiment named 'ghost'" in missing.stderr
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database at all" * 50)
    corrupt = cli("--db-url", f"sqlite:///{garbage}", "runs", "list", check=False)
    assert corrupt.returncode == 2 and "cannot open store" in corrupt.stderr
    usage = cli("runs", check=False)
    assert usage.returncode == 2 and "usage" in usage.stderr


def test_models_register_promote_list(tracker):
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True)
    with ml.start_run() as run:
        ml.log_model(DecisionTreeClassifier(max_depth=3, random_state=0).fit(X, y))
    ml.flush()
    url = ["--db-url", tracker.runs.url, "--artifacts", tracker.artifacts.root]
    assert "registered iris/1" in cli(*url, "models", "register", "iris", run.id).stdout
    assert "now in Staging" in cli(*url, "models", "promote", "iris/1", "Staging").stdout
    refused = cli(*url, "models", "promote", "iris@staging", "Production", check=False)
    assert refused.returncode == 2 and "needs 1 approval" in refused.stderr  # the default policy
    assert "iris: 1 versions, production -" in cli(*url, "models", "list").stdout
    shown = json.loads(cli(*url, "models", "show", "iris").stdout)
    assert shown["versions"][0]["stage"] == "Staging" and shown["history"][-1]["payload"]["to"] == "Staging"
    illegal = cli(*url, "models", "promote", "iris/1", "None", check=False)
    assert illegal.returncode == 0  # Staging → None is allowed; then None → Production is not:
    assert (
        "cannot go from None to Production"
        in cli(*url, "models", "promote", "iris/1", "Production", check=False).stderr
    )
