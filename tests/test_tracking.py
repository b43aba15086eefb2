"""The Python API (``import mlops_lab as ml``) on both engines."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlops_lab as ml
from mlops_lab.store import FilterError, NotFoundError


def test_run_lifecycle_params_metrics_tags(tracker):
    with ml.start_run("baseline", experiment="churn", tags={"team": "ds"}) as run:
        ml.log_params({"lr": 0.01, "model": "rf"})
        for step in range(5):
            ml.log_metric("loss", 1.0 / (step + 1))
        ml.log_metrics({"acc": 0.9, "f1": np.float32(0.8)})
        ml.set_tag("note", "first")
    record = ml.get_run(run.id)
    assert record.info.status == "FINISHED" and record.info.end_time >= record.info.start_time
    assert record.experiment == "churn" and record.info.user == "tester"
    assert record.params == {"lr": "0.01", "model": "rf"}
    assert record.metrics["loss"] == pytest.approx(0.2) and record.metrics["f1"] == pytest.approx(0.8)
    assert record.tags == {"team": "ds", "note": "first"}
    history = tracker.runs.metric_history(run.id, "loss")  # get_run flushed
    assert [s for s, _, _ in history] == [0, 1, 2, 3, 4]  # steps count up per key by default
    assert record.environment["python"] and "numpy" in record.environment["packages"]


def test_nested_runs_and_parent_ending_children(tracker):
    with ml.start_run("parent") as parent:
        with ml.start_run("child", nested=True) as child:
            ml.log_metric("x", 1)
        grandchild = ml.start_run("left-open", nested=True)
    assert ml.active_run() is None
    assert ml.get_run(child.id).info.parent_run_id == parent.id
    assert ml.get_run(grandchild.id).info.status == "FINISHED"


def test_second_top_level_run_is_refused(tracker):
    with ml.start_run("one"), pytest.raises(RuntimeError, match="still active.*nested=True"):
        ml.start_run("two")


def test_failed_and_interrupted_runs(tracker):
    with pytest.raises(ZeroDivisionError), ml.start_run("boom") as failing:
        1 / 0  # noqa: B018 (the error is the point)
    with pytest.raises(KeyboardInterrupt), ml.start_run("stop") as stopped:
        raise KeyboardInterrupt
    assert ml.get_run(failing.id).info.status == "FAILED"
    assert "ZeroDivisionError" in ml.get_run(failing.id).info.error
    assert ml.get_run(stopped.id).info.status == "KILLED"


def test_logging_without_a_run_starts_one_like_mlflow(tracker):
    ml.log_metric("auto", 1.0)
    run = ml.active_run()
    assert run is not None
    ml.end_run()
    assert ml.get_run(run.id).metrics == {"auto": 1.0}


def test_explicit_steps_and_timestamps(tracker):
    with ml.start_run() as run:
        ml.log_metric("m", 3.0, step=10, timestamp=1_000)
        ml.log_metric("m", 1.0, step=2, timestamp=2_000)
    ml.flush()
    assert tracker.runs.metric_history(run.id, "m") == [(2, 2000, 1.0), (10, 1000, 3.0)]
    assert ml.get_run(run.id).metrics["m"] == 3.0


def test_nan_and_inf_policy(tracker):
    with ml.start_run() as run:
        ml.log_metric("loss", float("nan"))
        ml.log_metric("grad", float("inf"))
    metrics = ml.get_run(run.id).metrics
    assert math.isnan(metrics["loss"]) and metrics["grad"] == math.inf
    assert ml.search_runs(filter_string="metrics.loss < 1").empty  # NaN matches no comparison
    frame = ml.search_runs()
    assert math.isnan(frame["metrics.loss"][0]) and frame["metrics.grad"][0] == math.inf


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: ml.log_metric("acc", "high"), "metric 'acc' must be a number, got str 'high'"),
        (lambda: ml.log_metric("acc", [1, 2]), "metric 'acc' must be a number"),
        (lambda: ml.log_metric("acc", 1.0, step=1.5), "step of metric 'acc' must be an integer"),
        (lambda: ml.log_metric("acc", 1.0, timestamp=-5), "timestamp of metric 'metrics' is out of range"),
        (lambda: ml.log_metric("", 1.0), "must be non-empty"),
        (lambda: ml.log_metric(3, 1.0), "metric name must be a string"),
        (lambda: ml.log_metric("a\nb", 1.0), "control character"),
        (lambda: ml.log_param("big", "x" * 9000), "param 'big' is 9000 characters; at most 8000"),
        (lambda: ml.log_param("k" * 300, 1), "at most 250"),
        (lambda: ml.log_params(["lr", 1]), "params must be a dict"),
        (lambda: ml.set_tag("t", "y" * 9000), "tag 't' is 9000 characters"),
        (lambda: ml.log_artifact("/nonexistent/file.txt"), "does not exist"),
        (lambda: ml.log_dataset(object()), "log_dataset takes a pandas or polars frame"),
        (
            lambda: ml.log_model(object()),
            "log_model takes a fitted scikit-learn, XGBoost or LightGBM estimator, a PyTorch module",
        ),
    ],
)
def test_bad_input_is_refused_and_nothing_stored_changes(tracker, call, message):
    with ml.start_run("keep") as run:
        ml.log_params({"lr": 0.1})
        ml.log_metric("acc", 0.5)
        ml.flush()
        before = ml.get_run(run.id)
        with pytest.raises((TypeError, ValueError, FileNotFoundError)) as info:
            call()
        assert message in str(info.value)
    after = ml.get_run(run.id)
    assert (after.params, after.metrics, after.tags) == (before.params, before.metrics, before.tags)
    assert tracker.runs.count_metric_points(run.id) == 1


def test_params_cannot_change_within_a_run(tracker):
    with ml.start_run() as run:
        ml.log_param("lr", 0.1)
        ml.log_param("lr", 0.1)  # the same value again is fine
        with pytest.raises(ValueError, match="already logged as '0.1'.*got '0.2'"):
            ml.log_param("lr", 0.2)
    assert ml.get_run(run.id).params == {"lr": "0.1"}


def test_unknown_run_id(tracker):
    with pytest.raises(NotFoundError, match="no run with id 'nope'"):
        ml.get_run("nope")
    with pytest.raises(NotFoundError):
        ml.resume_run("0" * 32)


def test_resume_run(tracker):
    with ml.start_run("r") as run:
        ml.log_param("a", 1)
    with ml.resume_run(run.id):
        ml.log_metric("later", 2.0)
        with pytest.raises(ValueError, match="already logged"):
            ml.log_param("a", 2)
    record = ml.get_run(run.id)
    assert record.info.status == "FINISHED" and record.metrics == {"later": 2.0}


def test_a_resumed_run_continues_its_metric_steps(tracker):
    with ml.start_run("curve") as run:
        for loss in (0.9, 0.7, 0.6):
            ml.log_metric("loss", loss)
    with ml.resume_run(run.id):
        ml.log_metric("loss", 0.5)
        ml.log_metric("new", 1.0)
    ml.flush()
    assert [s for s, _, _ in tracker.runs.metric_history(run.id, "loss")] == [0, 1, 2, 3]
    assert [s for s, _, _ in tracker.runs.metric_history(run.id, "new")] == [0]


def test_artifacts_are_content_addressed(tracker, tmp_path):
    (tmp_path / "report.txt").write_text("hello")
    folder = tmp_path / "plots"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("hello")
    (folder / "sub" / "b.txt").write_text("world")
    with ml.start_run() as run:
        ml.log_artifact(tmp_path / "report.txt")
        ml.log_artifacts(folder, "plots")
    record = ml.get_run(run.id)
    by_path = {a["path"]: a for a in record.artifacts}
    assert by_path["report.txt"]["size"] == 5 and by_path["plots"]["kind"] == "dir"
    manifest = tracker.artifacts.get_manifest(by_path["plots"]["hash"])
    assert manifest["a.txt"] == by_path["report.txt"]["hash"]  # same bytes, one blob
    out = tracker.artifacts.export(by_path["plots"]["hash"], tmp_path / "restored", is_dir=True)
    assert (out / "sub" / "b.txt").read_text() == "world"
    with pytest.raises(ValueError, match="relative path"):
        ml.log_artifact(tmp_path / "report.txt", "../escape.txt")


def test_log_model_sklearn_keeps_estimator_and_onnx_agrees(tracker):
    import pickle

    import onnxruntime as ort
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    X, y = load_iris(return_X_y=True)
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    with ml.start_run() as run:
        ml.log_model(model, "rf", input_example=pd.DataFrame(X[:5], columns=list("abcd")))
    [logged] = ml.get_run(run.id).models
    assert logged["flavor"] == "sklearn" and logged["onnx_error"] is None
    restored = pickle.loads(tracker.artifacts.get_bytes(logged["model_hash"]))
    session = ort.InferenceSession(tracker.artifacts.get_bytes(logged["onnx_hash"]), providers=["CPUExecutionProvider"])
    labels = session.run(None, {"input": X.astype(np.float32)})[0]
    assert (labels == restored.predict(X)).mean() > 0.99
    signature = ml.get_run(run.id).to_dict()["models"][0]["signature"]
    assert signature["inputs"] == [{"name": "input", "datatype": "float32", "shape": [-1, 4]}]
    assert signature["input_columns"] == ["a", "b", "c", "d"]


def test_log_model_onnx_and_unfitted(tracker):
    from onnx import TensorProto, helper
    from sklearn.linear_model import LinearRegression

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 3])],
    )
    with ml.start_run() as run:
        ml.log_model(helper.make_model(graph), "relu")
        with pytest.raises(ValueError, match="not fitted"):
            ml.log_model(LinearRegression(), "unfitted")
    [logged] = ml.get_run(run.id).models
    assert logged["flavor"] == "onnx" and logged["onnx_hash"] == logged["model_hash"]


def test_log_dataset_frames_and_files(tracker, tmp_path):
    frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    csv = tmp_path / "data.csv"
    frame.to_csv(csv, index=False)
    with ml.start_run() as run:
        ml.log_dataset(frame, "train")
        ml.log_dataset(pl.from_pandas(frame), "train-polars")
        ml.log_dataset(csv)
        ml.log_dataset(frame, "predictions", direction="output")
        with pytest.raises(ValueError, match="direction"):
            ml.log_dataset(frame, direction="sideways")
    datasets = {d["name"]: d for d in ml.get_run(run.id).datasets}
    assert datasets["train"]["num_rows"] == 3 and datasets["train"]["hash"] == datasets["train-polars"]["hash"]
    assert datasets["data.csv"]["format"] == "csv" and datasets["data.csv"]["num_rows"] == 3
    assert datasets["predictions"]["direction"] == "output"
    frame.loc[0, "a"] = 99
    with ml.start_run() as changed:
        ml.log_dataset(frame, "train")
    assert ml.get_run(changed.id).datasets[0]["hash"] != datasets["train"]["hash"]


def test_search_runs_filters_orders_and_limits(tracker):
    for i, model in enumerate(["rf", "rf", "lr", "gb"]):
        with ml.start_run(f"run{i}", experiment="sweep"):
            ml.log_params({"model": model, "depth": i * 2})
            ml.log_metric("acc", 0.7 + i * 0.05)
            ml.set_tag("fold", str(i % 2))
    with ml.start_run("other", experiment="elsewhere"):
        ml.log_metric("acc", 0.99)

    frame = ml.search_runs("sweep", "metrics.acc > 0.72 and params.model = 'rf'")
    assert list(frame["run_name"]) == ["run1"]
    frame = ml.search_runs("sweep", order_by=["metrics.acc DESC"])
    assert list(frame["run_name"]) == ["run3", "run2", "run1", "run0"]
    frame = ml.search_runs(order_by="params.depth DESC", max_results=2)
    assert list(frame["run_name"]) == ["run3", "run2"]  # numeric params sort as numbers
    assert set(ml.search_runs(filter_string="params.depth >= 4")["run_name"]) == {"run3", "run2"}
    assert set(ml.search_runs(filter_string="tags.fold = '1' or metrics.acc > 0.9")["run_name"]) == {
        "run1",
        "run3",
        "other",
    }
    assert len(ml.search_runs(filter_string="attributes.status = 'FINISHED' and params.model IN ('lr', 'gb')")) == 2
    assert len(ml.search_runs(filter_string="params.model LIKE 'r%'")) == 2
    assert len(ml.search_runs(filter_string="attributes.run_name ILIKE 'RUN%'")) == 4
    assert list(ml.search_runs(["sweep", "elsewhere"], order_by="metrics.acc DESC")["run_name"])[0] == "other"
    assert ml.search_runs("no-such-experiment").empty
    assert {"metrics.acc", "params.model", "tags.fold"} <= set(frame.columns)


@pytest.mark.parametrize(
    "bad, message",
    [
        ("metrics.acc >", "ends early"),
        ("acc > 0.5", "expected a field such as metrics.acc"),
        ("metrics.acc > 'high'", "compares with"),
        ("tags.x > 3", "tags.x compares with a quoted string"),
        ("foo.acc = 1", "unknown entity 'foo'"),
        ("attributes.color = 'red'", "unknown attribute 'color'"),
        ("metrics.acc > 0.5 and", "ends early"),
        ("(metrics.acc > 0.5", "expected ')'"),
        ("metrics.acc > 0.5; DROP TABLE run", "unexpected character ';'"),
        ("params.x IN 'a'", "IN needs a parenthesised list"),
    ],
)
def test_malformed_filters_are_clear_errors(tracker, bad, message):
    with ml.start_run():
        ml.log_metric("acc", 0.9)
    with pytest.raises(FilterError, match=message.replace("(", r"\(").replace(")", r"\)")):
        ml.search_runs(filter_string=bad)
    assert len(ml.search_runs()) == 1


def test_filters_cannot_inject_sql(tracker):
    with ml.start_run("safe"):
        ml.log_param("model", "rf")
    hostile = [
        "params.model = 'x'' OR ''1''=''1'",
        "params.model = 'rf'' OR 1=1 --'",
        "tags.`x' OR 1=1 --` = 'a'",
        "params.model IN ('a'); DELETE FROM run; --')",
    ]
    for text in hostile:
        try:
            assert ml.search_runs(filter_string=text).empty
        except FilterError:
            pass
    assert list(ml.search_runs()["run_name"]) == ["safe"]


def test_bad_order_by_and_max_results(tracker):
    with pytest.raises(FilterError, match="order_by"):
        ml.search_runs(order_by=["  "])
    with pytest.raises(FilterError, match="max_results"):
        ml.search_runs(max_results=0)
    with pytest.raises(FilterError, match="unknown attribute"):
        ml.search_runs(order_by="attributes.nope")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("metrics.a > " + "1" * 16_000 + "a", "unexpected character"),  # was 12 s of backtracking
        ("params.a = '" + "x" * 25_000 + "'", "at most 20,000"),
        ("(" * 350 + "metrics.a > 1" + ")" * 350, "more than 32 deep"),
        (" or ".join(["metrics.a > 1"] * 1_100), "more than 250 comparisons"),
        ("params.a IN (" + ",".join(["'x'"] * 1_001) + ")", "at most 1,000 values"),
    ],
)
def test_hostile_filters_are_refused_quickly(tracker, text, message):
    import time

    start = time.perf_counter()
    with pytest.raises(FilterError, match=message):
        ml.search_runs(filter_string=text)
    assert time.perf_counter() - start < 1.0  # (12 s for the first before the fix)


def test_too_many_order_by_keys_is_a_clear_error(tracker):
    with pytest.raises(FilterError, match="at most 10 keys"):
        ml.search_runs(order_by=[f"metrics.m{i}" for i in range(70)])


_FILTER_PIECES = [
    "metrics.acc", "params.lr", "tags.`a b`", "attributes.status", "attributes.start_time", "run.name", "acc",
    "=", "!=", "<", "<=", ">", ">=", "<>", "LIKE", "ILIKE", "IN", "NOT IN", "and", "or", "AND", "OR", "(", ")", ",",
    "'x'", "'it''s'", '"q"', "'%a_'", "1", "-2.5e3", ".5", "1e400", "NaN", "'", '"', "`", "\\", "\x00", "é", ";",
    "--", "/*", "DROP TABLE run",
]  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(st.sampled_from(_FILTER_PIECES) | st.text(max_size=8), max_size=14))
def test_any_filter_text_gives_runs_or_a_filter_error(tracker, pieces):
    """The grammar's only answers: a result, or a FilterError that says why (never another error)."""
    text = " ".join(pieces)
    try:
        frame = ml.search_runs(filter_string=text)
    except FilterError:
        return
    assert frame is not None


def test_two_processes_logging_one_param_to_a_resumed_run_keep_the_first_and_say_so(workspace, capsys):
    from mlops_lab.workspace import Workspace

    with ml.start_run("shared") as run:
        ml.log_metric("m", 1.0)
    other = Workspace(workspace.location, user="other-kernel")  # a second kernel on the same store
    try:
        mine, theirs = workspace.tracking.resume_run(run.id), other.tracking.resume_run(run.id)
        mine.log_param("lr", 0.1)
        workspace.tracking.flush()
        theirs.log_param("lr", 0.5)  # this process has not seen 0.1: the store has
        other.tracking.flush()
        workspace.tracking.end_run(run=mine)
        other.tracking.end_run(run=theirs)
    finally:
        other.close()
    ml.flush()
    assert ml.get_run(run.id).params == {"lr": "0.1"}
    conflicts = [e["payload"] for e in workspace.store.events.events("run", run.id) if e["kind"] == "param_conflict"]
    assert conflicts == [{"key": "lr", "kept": "0.1", "refused": "0.5"}]
    assert "param 'lr' of run" in capsys.readouterr().err


@pytest.mark.parametrize("descending", [True, False])
def test_pages_ordered_by_a_metric_put_runs_without_it_last_across_page_boundaries(tracker, descending):
    """The order a metric gives (runs with it by value, ties newest first; then runs without it or
    with NaN, newest first) holds on every page, the page that crosses from one group to the other
    included, and with a filter."""
    values = [0.5, None, 0.9, float("nan"), 0.5, 0.1, None, 0.7, 0.5, 0.3]
    made = []
    for i, value in enumerate(values):
        run = tracker.start_run(f"r{i}", experiment="paging")
        tracker.log_params({"group": "odd" if i % 2 else "even"}, run=run)
        tracker.log_metric("other", float(i), run=run)
        if value is not None:
            tracker.log_metric("score", value, run=run)
        tracker.end_run(run=run)
        tracker.flush()
        made.append((run.id, value, tracker.runs.get_run(run.id).info.start_time))
    ids = [tracker.experiment_id("paging")]
    for flt in (None, "metrics.other >= 2"):
        chosen = made if flt is None else made[2:]  # "other" is the run's index
        having = [m for m in chosen if m[1] is not None and not math.isnan(m[1])]
        lacking = [m for m in chosen if m not in having]
        newest_first = sorted(chosen, key=lambda m: (-m[2], m[0]))
        having.sort(key=lambda m: newest_first.index(m))
        having.sort(key=lambda m: m[1], reverse=descending)  # stable: ties stay newest first
        lacking.sort(key=lambda m: newest_first.index(m))
        expected = [m[0] for m in having + lacking]
        order = ["metrics.score DESC" if descending else "metrics.score"]
        for size in (1, 3, 4):
            got = []
            for offset in range(0, len(expected) + size, size):
                page, *_ = tracker.runs.search_runs(ids, flt, order, max_results=size, offset=offset)
                got += [r["id"] for r in page]
            assert got == expected, (flt, size)
