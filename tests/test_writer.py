"""What the background writer is given is written, whatever else fails beside it."""

from __future__ import annotations

import hashlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlops_lab as ml
from mlops_lab.store import Batch, now_ms, open_store
from mlops_lab.tracking.writer import BatchWriter

from .test_store import make_run


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.sampled_from(["row", "job", "failing job"]), min_size=1, max_size=30))
def test_any_mix_of_failing_and_succeeding_jobs_loses_no_successful_row(tmp_path_factory, plan):
    store = open_store(f"sqlite:///{tmp_path_factory.mktemp('w') / 's.db'}")
    run_id = hashlib.md5(repr(plan).encode()).hexdigest()
    make_run(store, run_id)
    writer = BatchWriter(store.runs, interval=0.05)

    def point(step: int) -> dict:
        return {"run_id": run_id, "key": "m", "value": float(step), "step": step, "timestamp": now_ms()}

    expected = []
    for step, kind in enumerate(plan):
        if kind == "row":
            writer.add("metrics", [point(step)])
            expected.append(step)
        elif kind == "job":
            writer.defer(lambda step=step: Batch(metrics=[point(step)]))
            expected.append(step)
        else:
            writer.defer(lambda: (_ for _ in ()).throw(FileNotFoundError("the file went away")))
    writer.flush()  # no error surfaces for a job's own failure: nothing of the store failed
    steps, _ = store.runs.metric_arrays(run_id, "m")
    assert sorted(steps.tolist()) == expected


def test_a_dataset_that_vanishes_fails_alone_and_says_so(workspace, tracker, tmp_path, capsys):
    folder = tmp_path / "shards"
    folder.mkdir()
    (folder / "part-0.csv").write_text("x\n1\n")
    with ml.start_run("bystander") as bystander:
        ml.log_params({"lr": 0.1})
        ml.log_metric("loss", 0.5)
    with ml.start_run("unlucky") as unlucky:
        with tracker.writer._cond:  # the writer thread cannot take the job until the folder is gone
            ml.log_dataset(str(folder), "shards")  # a folder: read later, by the writer thread
            (folder / "part-0.csv").unlink()
            folder.rmdir()
        ml.log_metric("accuracy", 0.9)
    ml.flush()
    kept = ml.get_run(bystander.id)
    assert kept.info.status == "FINISHED" and kept.params == {"lr": "0.1"} and kept.metrics == {"loss": 0.5}
    lost = ml.get_run(unlucky.id)
    assert lost.info.status == "FINISHED" and lost.metrics == {"accuracy": 0.9} and lost.datasets == []
    failed = [e for e in workspace.store.events.events("run", unlucky.id) if e["kind"] == "capture_failed"]
    assert (
        failed
        and failed[0]["payload"]["what"] == "dataset 'shards'"
        and "No such file" in failed[0]["payload"]["error"]
    )
    assert "could not log dataset 'shards'" in capsys.readouterr().err


def test_a_logged_file_is_recorded_as_it_was_when_logged(tracker, tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("x,y\n1,2\n")
    original = hashlib.sha256(path.read_bytes()).hexdigest()
    with ml.start_run("snapshot") as run:
        ml.log_dataset(str(path), "train")
        path.write_text("x,y\n1,2\n3,4\n")  # rewritten right after the call
    ml.flush()
    [dataset] = ml.get_run(run.id).datasets
    assert dataset["hash"] == original and dataset["num_rows"] == 1
    assert tracker.artifacts.get_bytes(original) == b"x,y\n1,2\n"
