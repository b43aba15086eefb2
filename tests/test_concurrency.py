"""Several processes on one store, and processes that die mid-run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from mlops_lab.store import open_store

SECONDS = float(os.environ.get("MLOPS_LAB_CONCURRENCY_SECONDS", "20"))

WRITER = textwrap.dedent("""
    import json, sys, time
    import mlops_lab as ml
    ml.set_store(sys.argv[1], sys.argv[2])
    deadline = time.monotonic() + float(sys.argv[3])
    logged = 0
    with ml.start_run(f"writer-{sys.argv[4]}", experiment="concurrent") as run:
        ml.log_param("writer", sys.argv[4])
        while time.monotonic() < deadline:
            ml.log_metrics({"a": logged, "b": -logged})
            logged += 2
            if logged % 20 == 0:
                time.sleep(0.002)  # a training step between logging calls
    ml.flush()
    print(json.dumps({"run_id": run.id, "logged": logged}))
""")


@pytest.mark.slow
def test_four_processes_logging_at_once_lose_no_point(db_url, tmp_path):
    open_store(db_url)  # create the schema once, as the first kernel would
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), db_url, str(tmp_path / "artifacts"), str(SECONDS), str(i)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=SECONDS + 120)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    store = open_store(db_url)
    total = 0
    for result in results:
        record = store.runs.get_run(result["run_id"])
        assert record.info.status == "FINISHED"
        assert store.runs.count_metric_points(result["run_id"]) == result["logged"]
        assert record.metrics["a"] == result["logged"] - 2
        total += result["logged"]
    assert total > 1000  # it really did log for the whole time
    print(f"{total} points from 4 processes in {SECONDS:.0f} s on {store.db.dialect}")


HANGER = textwrap.dedent("""
    import sys, time
    import mlops_lab as ml
    ml.set_store(sys.argv[1], sys.argv[2])
    run = ml.start_run("doomed")
    ml.log_metric("x", 1.0)
    ml.flush()
    print(run.id, flush=True)
    time.sleep(600)
""")


def test_a_killed_kernel_leaves_no_run_running(db_url, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", HANGER, db_url, str(tmp_path / "artifacts")], stdout=subprocess.PIPE, text=True
    )
    run_id = proc.stdout.readline().strip()
    store = open_store(db_url)
    assert store.runs.get_run(run_id).info.status == "RUNNING"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(0.1)
    store.runs.reap_stale_runs(force=True)
    record = store.runs.get_run(run_id)
    assert record.info.status == "KILLED" and record.info.end_time is not None
    assert record.metrics == {"x": 1.0}  # what was written before the kill is kept
