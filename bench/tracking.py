"""Tracking speed, mlops_lab against MLflow, both on SQLite files, in one run.

    make bench            # or: .venv/bin/python bench/tracking.py [--runs 1000] [--points 10000]

MLflow lives in its own environment (bench/.venv-mlflow, made on first use) so that it never
shares packages with the project.  Each side runs in its own process on a fresh temporary store;
this script prints every figure and the ratio.  It is not a test: machines are noisy, ratios matter.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).parent
MLFLOW_VENV = HERE / ".venv-mlflow"

# One script, run by each side's Python: `SIDE` picks the API.  Every timing includes making the
# data durable (mlops_lab's flush; MLflow writes synchronously), so the two measure the same work.
WORKLOAD = textwrap.dedent("""
    import json, os, statistics, sys, time
    side, root, runs, points = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    db = f"sqlite:///{root}/store.db"
    out = {}
    if side == "mlflow":
        import mlflow
        mlflow.set_tracking_uri(db)
        mlflow.set_experiment("bench")
        start_run, end_run = mlflow.start_run, mlflow.end_run
        log_metric, log_params, log_metrics = mlflow.log_metric, mlflow.log_params, mlflow.log_metrics
        flush = lambda: None
        def search(flt, order):
            return mlflow.search_runs(experiment_names=["bench"], filter_string=flt, order_by=order)
    else:
        import mlops_lab as ml
        ml.set_store(db, f"{root}/artifacts")
        start_run, end_run = lambda: ml.start_run(experiment="bench"), ml.end_run
        log_metric, log_params, log_metrics, flush = ml.log_metric, ml.log_params, ml.log_metrics, ml.flush
        def search(flt, order):
            return ml.search_runs("bench", filter_string=flt, order_by=order)

    with start_run():  # warm-up: schema, experiment, imports
        log_metric("warm", 1.0)
    flush()

    t = time.perf_counter()
    with start_run():
        for i in range(points):
            log_metric("loss", 1.0 / (i + 1), step=i)
    flush()
    out["log_metric_s"] = time.perf_counter() - t

    t = time.perf_counter()
    for r in range(runs):
        with start_run():
            log_params({f"p{k}": f"v{(r + k) % 7}" for k in range(10)})
            log_metrics({f"m{k}": ((r * 7919 + k * 104729) % 1000) / 1000 for k in range(5)})
    flush()
    out["create_runs_s"] = time.perf_counter() - t

    for name, flt in (("search", "metrics.m0 > 0.5 and params.p1 = 'v3'"), ("broad_search", "metrics.m0 > 0.2")):
        times, found = [], 0
        for _ in range(21):
            t = time.perf_counter()
            found = len(search(flt, ["metrics.m1 DESC"]))
            times.append(time.perf_counter() - t)
        out[f"{name}_s"] = statistics.median(times)
        out[f"{name}_found"] = found

    times = []
    for _ in range(100):
        t = time.perf_counter()
        with start_run():
            pass
        times.append(time.perf_counter() - t)
    out["empty_run_ms"] = statistics.median(times) * 1000
    flush()
    print(json.dumps(out))
""")

TRACK_CELL = textwrap.dedent("""
    import json, statistics, sys, time
    from IPython.core.interactiveshell import InteractiveShell
    import mlops_lab as ml
    ml.set_store(f"sqlite:///{sys.argv[1]}/cells.db", f"{sys.argv[1]}/artifacts")
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "mlops_lab")
    ip.run_cell("%%track\\npass")  # warm-up
    def median_ms(cell):
        times = []
        for _ in range(50):
            t = time.perf_counter()
            ip.run_cell(cell)
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1000
    plain, tracked = median_ms("pass"), median_ms("%%track\\npass")
    ml.flush()
    print(json.dumps({"plain_cell_ms": plain, "tracked_cell_ms": tracked}))
""")


def ensure_mlflow() -> Path:
    python = MLFLOW_VENV / "bin" / "python"
    if not python.exists():
        print("creating bench/.venv-mlflow with MLflow (first run only)…", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(MLFLOW_VENV)], check=True)
        subprocess.run([str(MLFLOW_VENV / "bin" / "pip"), "install", "-q", "mlflow"], check=True)
    return python


def side(python: str, name: str, runs: int, points: int) -> dict:
    with tempfile.TemporaryDirectory() as root:
        env = {**os.environ, "MLFLOW_ENABLE_ASYNC_LOGGING": "false", "GIT_PYTHON_REFRESH": "quiet"}
        result = subprocess.run(
            [python, "-c", WORKLOAD, name, root, str(runs), str(points)],
            capture_output=True,
            text=True,
            env=env,
            timeout=3600,
        )
        if result.returncode != 0:
            raise SystemExit(f"{name} side failed:\n{result.stderr[-3000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])


def import_seconds(python: str, module: str, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        subprocess.run([python, "-c", f"import {module}"], check=True)
        base = time.perf_counter() - t
        t = time.perf_counter()
        subprocess.run([python, "-c", "pass"], check=True)
        times.append(base - (time.perf_counter() - t))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--points", type=int, default=10_000)
    args = parser.parse_args()
    mlflow_python = str(ensure_mlflow())
    version = subprocess.run(
        [mlflow_python, "-c", "import mlflow; print(mlflow.__version__)"], capture_output=True, text=True
    ).stdout.strip()

    ours = side(sys.executable, "mlops_lab", args.runs, args.points)
    theirs = side(mlflow_python, "mlflow", args.runs, args.points)
    with tempfile.TemporaryDirectory() as root:
        cells = json.loads(
            subprocess.run([sys.executable, "-c", TRACK_CELL, root], capture_output=True, text=True, check=True)
            .stdout.strip()
            .splitlines()[-1]
        )
    import_ours = import_seconds(sys.executable, "mlops_lab")
    import_mlflow = import_seconds(mlflow_python, "mlflow")

    rows = [
        (f"{args.points:,} log_metric calls, one run", ours["log_metric_s"], theirs["log_metric_s"], "s", 20),
        (f"create {args.runs:,} runs x 10 params x 5 metrics", ours["create_runs_s"], theirs["create_runs_s"], "s", 5),
        (
            f"filtered, ordered search ({ours['search_found']} / {theirs['search_found']} runs)",
            ours["search_s"],
            theirs["search_s"],
            "s",
            10,
        ),
        (
            f"broad search, same order ({ours['broad_search_found']} / {theirs['broad_search_found']} runs)",
            ours["broad_search_s"],
            theirs["broad_search_s"],
            "s",
            None,
        ),
        ("empty start_run/end (median)", ours["empty_run_ms"], theirs["empty_run_ms"], "ms", None),
        ("import time", import_ours, import_mlflow, "s", None),
    ]
    print(f"\nTracking benchmark: mlops_lab vs MLflow {version}, SQLite files, one machine, one run\n")
    print(f"{'workload':52} {'mlops_lab':>12} {'MLflow':>12} {'ratio':>8}  goal")
    for label, mine, anchor, unit, goal in rows:
        ratio = anchor / mine if mine else float("inf")
        verdict = "" if goal is None else (f">= {goal}x  {'met' if ratio >= goal else 'NOT MET'}")
        print(f"{label:52} {mine:>10.4f}{unit:>2} {anchor:>10.4f}{unit:>2} {ratio:>7.1f}x  {verdict}")
    added = cells["tracked_cell_ms"] - cells["plain_cell_ms"]
    print(
        f"\nempty start_run/end: {ours['empty_run_ms']:.2f} ms (goal <= 5 ms: {'met' if ours['empty_run_ms'] <= 5 else 'NOT MET'})"
    )
    print(
        f"%%track on an empty cell adds {added:.2f} ms (plain {cells['plain_cell_ms']:.2f} ms, tracked "
        f"{cells['tracked_cell_ms']:.2f} ms; goal <= 20 ms: {'met' if added <= 20 else 'NOT MET'})"
    )
    print(
        f"import mlops_lab: {import_ours:.3f} s (goal <= 0.5 s: {'met' if import_ours <= 0.5 else 'NOT MET'}); "
        f"import mlflow: {import_mlflow:.3f} s"
    )
    if ours["search_found"] != theirs["search_found"] or ours["broad_search_found"] != theirs["broad_search_found"]:
        print(f"WARNING: the searches found different counts ({ours['search_found']} vs {theirs['search_found']})")


if __name__ == "__main__":
    main()
