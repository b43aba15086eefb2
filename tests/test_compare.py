"""Comparing runs: aligned values, downsampled curves, code diffs and artifact access."""

from __future__ import annotations

import numpy as np
import pytest

import mlops_lab as ml
from mlops_lab.store import NotFoundError
from mlops_lab.tracking.compare import code_diff, compare_runs, downsample, metric_history
from mlops_lab.tracking.run_page import artifact_bytes


def test_downsample_keeps_ends_and_extremes():
    steps = np.arange(100_000)
    values = np.sin(steps / 1000.0)
    values[54_321] = 50.0  # a spike
    values[70_000] = -50.0
    kept_steps, kept_values = downsample(steps, values, 1000)
    assert len(kept_steps) <= 1002 and kept_steps[0] == 0 and kept_steps[-1] == 99_999
    assert 54_321 in kept_steps and 70_000 in kept_steps
    assert kept_values.max() == 50.0 and kept_values.min() == -50.0
    assert list(np.diff(kept_steps) > 0) == [True] * (len(kept_steps) - 1)
    short_steps, _ = downsample(steps[:10], values[:10], 1000)
    assert len(short_steps) == 10


def test_metric_history_and_nan(workspace, tracker):
    with ml.start_run() as run:
        for step in range(5000):
            ml.log_metric("loss", float("nan") if step == 10 else 1 / (step + 1), step=step)
    ml.flush()
    curve = metric_history(workspace.store.runs, run.id, "loss", max_points=300)
    assert curve["points"] == 5000 and len(curve["steps"]) <= 302 and curve["steps"][0] == 0
    full = metric_history(workspace.store.runs, run.id, "loss", max_points=10_000)
    assert full["values"][10] == "NaN" and full["values"][0] == 1.0
    assert metric_history(workspace.store.runs, run.id, "absent")["points"] == 0
    with pytest.raises(NotFoundError):
        metric_history(workspace.store.runs, "0" * 32, "loss")


def test_compare_aligns_and_flags_differences(workspace, tracker):
    ids = []
    for lr, seed in [(0.1, 1), (0.1, 2), (0.3, 1)]:
        with ml.start_run(f"lr{lr}-s{seed}") as run:
            ml.log_params({"lr": lr, "seed": seed, "model": "rf"})
            ml.log_metric("acc", 0.8 + lr)
        ids.append(run.id)
    ml.flush()
    result = compare_runs(workspace.store.runs, ids)
    params = {row["key"]: row for row in result["params"]}
    assert params["model"]["differs"] is False and params["lr"]["differs"] is True
    assert params["lr"]["values"] == {ids[0]: "0.1", ids[1]: "0.1", ids[2]: "0.3"}
    metrics = {row["key"]: row for row in result["metrics"]}
    assert metrics["acc"]["values"][ids[2]] == pytest.approx(1.1)
    assert [r["name"] for r in result["runs"]] == ["lr0.1-s1", "lr0.1-s2", "lr0.3-s1"]
    assert result["packages"] == []  # one process: the same environment everywhere
    with pytest.raises(ValueError, match="1 to 50 run ids"):
        compare_runs(workspace.store.runs, [])
    with pytest.raises(ValueError, match="same run id twice"):
        compare_runs(workspace.store.runs, [ids[0], ids[0]])
    with pytest.raises(NotFoundError):
        compare_runs(workspace.store.runs, [ids[0], "f" * 32])


def test_code_diff_side_by_side(workspace, tracker):
    t = workspace.tracking
    a = t.start_run("a", source="x = 1\ny = 2\nprint(x + y)\n")
    t.end_run()
    b = t.start_run("b", source="x = 1\ny = 3\nprint(x + y)\nprint('done')\n")
    t.end_run()
    t.flush()
    diff = code_diff(workspace.store.runs, a.id, b.id)
    assert not diff["identical"]
    ops = [(r["op"], r["left"], r["right"]) for r in diff["rows"]]
    assert ops == [
        ("equal", "x = 1", "x = 1"),
        ("replace", "y = 2", "y = 3"),
        ("equal", "print(x + y)", "print(x + y)"),
        ("insert", None, "print('done')"),
    ]
    assert "-y = 2" in diff["unified"] and "+y = 3" in diff["unified"]
    assert code_diff(workspace.store.runs, a.id, a.id)["identical"]


def test_artifacts_by_logical_path_only(workspace, tracker, tmp_path):
    (tmp_path / "report.txt").write_text("hello")
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "roc.svg").write_text("<svg/>")
    with ml.start_run() as run:
        ml.log_artifact(tmp_path / "report.txt")
        ml.log_artifacts(tmp_path / "plots", "plots")
    ml.flush()
    store, blobs = workspace.store.runs, workspace.artifacts
    assert artifact_bytes(store, blobs, run.id, "report.txt") == ("report.txt", b"hello")
    assert artifact_bytes(store, blobs, run.id, "plots/roc.svg")[1] == b"<svg/>"
    for hostile in ["../../etc/passwd", "/etc/passwd", "plots/../report.txt", "plots//roc.svg", "..", "a\\..\\b"]:
        with pytest.raises(ValueError, match="relative path"):
            artifact_bytes(store, blobs, run.id, hostile)
    with pytest.raises(NotFoundError, match="no artifact 'nope.txt'"):
        artifact_bytes(store, blobs, run.id, "nope.txt")


def test_notebook_widgets_render(workspace, tracker):
    import ipywidgets

    from mlops_lab.widgets import code_diff_html, parallel_figure

    ids = []
    for depth in (3, 6):
        with ml.start_run(f"depth-{depth}") as run:
            ml.log_params({"depth": depth, "model": "<b>rf</b>"})
            for step in range(20):
                ml.log_metric("loss", 1 / (step + depth), step=step)
        ids.append(run.id)
    widget = ml.compare(ids)
    assert isinstance(widget.widget, ipywidgets.VBox) and "<svg" in widget.snapshot
    tables = widget.children[1].value
    assert "depth" in tables and "&lt;b&gt;rf&lt;/b&gt;" not in tables  # same everywhere: hidden by default
    widget.children[0].value = False  # "only what differs" off
    assert "&lt;b&gt;rf&lt;/b&gt;" in widget.children[1].value  # shown, and escaped
    comparison = compare_runs(workspace.store.runs, ids)
    figure = parallel_figure(comparison, "loss")
    assert [d.label for d in figure.data[0].dimensions] == ["depth", "loss"]
    page = code_diff_html(
        {
            "left": {"name": "a<"},
            "right": {"name": "b"},
            "identical": False,
            "rows": [{"op": "replace", "left": "<script>", "right": "x", "left_line": 1, "right_line": 1}],
        }
    )
    assert "&lt;script&gt;" in page and "<script>" not in page

    listing = ml.runs(filter_string="params.depth > 4")
    assert "depth-6" in listing.children[2].value and "depth-3" not in listing.children[2].value
    listing.children[0].value = "metrics.loss >"  # what Enter in the box does
    assert "ends early" in listing.children[1].value


def test_long_cells_diff_quickly_and_huge_ones_are_refused(workspace, tracker):
    import random
    import time

    from mlops_lab.errors import InvalidInputError

    random.seed(0)
    left = [f"x{i} = {random.randint(0, 9)}" if i % 3 else "" for i in range(4000)]
    right = [line + " # changed" if i % 20 == 0 else line for i, line in enumerate(left)]
    a = tracker.start_run("long-a", source="\n".join(left))
    tracker.end_run(run=a)
    b = tracker.start_run("long-b", source="\n".join(right))
    tracker.end_run(run=b)
    tracker.flush()
    started = time.perf_counter()
    diff = code_diff(workspace.store.runs, a.id, b.id)
    assert time.perf_counter() - started < 1.0  # was 1.2 to 1.6 s
    assert sum(row["op"] == "replace" for row in diff["rows"]) >= 150
    huge = tracker.start_run("huge", source="x = 1\n" * 25_000)
    tracker.end_run(run=huge)
    tracker.flush()
    with pytest.raises(InvalidInputError, match="over 20,000 lines"):
        code_diff(workspace.store.runs, a.id, huge.id)


def test_run_names_are_text_in_charts(workspace, tracker):
    from mlops_lab.widgets import curves_figure

    run = tracker.start_run('<a href="javascript:alert(1)">click')
    tracker.log_metric("loss", 1.0, run=run)
    tracker.end_run(run=run)
    tracker.flush()
    figure = curves_figure(workspace.store.runs, [{"run_id": run.id, "name": run.name}], "loss")
    assert figure.data[0].name == "&lt;a href=&quot;javascript:alert(1)&quot;&gt;click"
