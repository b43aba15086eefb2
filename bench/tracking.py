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


# A training loop with three numeric names per iteration, two bodies: a tiny numpy step (~5 µs, the
# worst case for capture's cost) and a mini-batch step of a small MLP (~50 µs, closer to real work).
LOOP_BODIES = {
    "tiny step": (
        "w = np.zeros(32)\n",
        "    w = w - 0.05 * (w - target)\n"
        "    loss = float(((w - target) ** 2).mean())\n"
        "    grad_norm = float(np.abs(w - target).sum())\n"
        "    lr = 0.05 * 0.9999 ** step\n",
    ),
    "MLP mini-batch": (
        "W1, W2 = np.full((32, 64), 0.01), np.full((64, 1), 0.01)\n",
        "    h = np.maximum(batch @ W1, 0)\n"
        "    err = h @ W2 - labels\n"
        "    W2 = W2 - 1e-4 * h.T @ err\n"
        "    W1 = W1 - 1e-4 * batch.T @ ((err @ W2.T) * (h > 0))\n"
        "    loss = float((err ** 2).mean())\n"
        "    grad_norm = float(np.abs(err).sum())\n"
        "    lr = 1e-4 * 0.9999 ** step\n",
    ),
}
LOOP_SETUP = (
    "import numpy as np\nrng = np.random.default_rng(0)\ntarget = np.linspace(0, 1, 32)\n"
    "batch, labels = rng.normal(size=(64, 32)), rng.normal(size=(64, 1))\n"
)

TRACK_LOOP = textwrap.dedent("""
    import json, sys, time
    from IPython.core.interactiveshell import InteractiveShell
    import mlops_lab as ml
    root, n, setup, before, body = sys.argv[1], int(sys.argv[2]), *[json.loads(a) for a in sys.argv[3:6]]
    ml.set_store(f"sqlite:///{root}/loops.db", f"{root}/artifacts")
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "mlops_lab")
    ip.run_cell(setup)
    ip.run_cell("%%track\\npass"); ml.flush()
    cell = before + f"for step in range({n}):\\n" + body
    def timed(source):
        t = time.perf_counter(); ip.run_cell(source).raise_error(); cell_s = time.perf_counter() - t
        ml.flush()
        return cell_s, time.perf_counter() - t
    plain = min(timed(cell) for _ in range(3))
    tracked = min(timed("%%track\\n" + cell) for _ in range(3))
    print(json.dumps({"plain_s": plain[0], "tracked_cell_s": tracked[0], "tracked_durable_s": tracked[1]}))
""")

MLFLOW_LOOP = textwrap.dedent("""
    import json, sys, time
    import numpy as np
    import mlflow
    root, n, setup, before, body = sys.argv[1], int(sys.argv[2]), *[json.loads(a) for a in sys.argv[3:6]]
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    mlflow.set_experiment("loops")
    namespace = {}
    exec(setup, namespace)
    logged = body + "    mlflow.log_metrics({'loss': loss, 'grad_norm': grad_norm, 'lr': lr}, step=step)\\n"
    code = compile(before + f"for step in range({n}):\\n" + logged, "loop", "exec")
    with mlflow.start_run():
        mlflow.log_metric("warm", 1.0)
    t = time.perf_counter()
    with mlflow.start_run():
        exec(code, {**namespace, "mlflow": mlflow})
    mlflow.flush_async_logging() if hasattr(mlflow, "flush_async_logging") else None
    print(json.dumps({"logged_s": time.perf_counter() - t}))
""")


def loop_figures(mlflow_python: str, iterations: int, mlflow_iterations: int) -> None:
    """Per-point cost of loop capture, tracked vs untracked, and MLflow's log_metrics per step."""
    print(f"\nLoops as curves: {iterations:,} iterations x 3 numeric names ({3 * iterations:,} points)")
    print(f"{'body':16} {'untracked':>10} {'%%track cell':>13} {'ratio':>6} {'+ durable':>10} {'µs/point':>9}  "
          f"{'MLflow sync':>12} {'MLflow async':>13}  (µs/point)")  # fmt: skip
    for label, (before, body) in LOOP_BODIES.items():
        arguments = [json.dumps(LOOP_SETUP), json.dumps(before), json.dumps(body)]
        with tempfile.TemporaryDirectory() as root:
            ours = json.loads(
                subprocess.run([sys.executable, "-c", TRACK_LOOP, root, str(iterations), *arguments],
                               capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            )  # fmt: skip
        per_iteration = ours["plain_s"] / iterations
        anchor = {}
        for mode in ("false", "true"):
            with tempfile.TemporaryDirectory() as root:
                env = {**os.environ, "MLFLOW_ENABLE_ASYNC_LOGGING": mode, "GIT_PYTHON_REFRESH": "quiet"}
                result = subprocess.run([mlflow_python, "-c", MLFLOW_LOOP, root, str(mlflow_iterations), *arguments],
                                        capture_output=True, text=True, env=env)  # fmt: skip
                if result.returncode != 0:
                    raise SystemExit(f"MLflow loop failed:\n{result.stderr[-3000:]}")
                logged = json.loads(result.stdout.strip().splitlines()[-1])["logged_s"]
                anchor[mode] = (logged - per_iteration * mlflow_iterations) / (3 * mlflow_iterations) * 1e6
        ratio = ours["tracked_cell_s"] / ours["plain_s"]
        per_point = (ours["tracked_durable_s"] - ours["plain_s"]) / (3 * iterations) * 1e6
        print(
            f"{label:16} {ours['plain_s']:>9.3f}s {ours['tracked_cell_s']:>12.3f}s {ratio:>5.2f}x "
            f"{ours['tracked_durable_s']:>9.3f}s {per_point:>9.2f}  {anchor['false']:>12.1f} {anchor['true']:>13.1f}"
        )
    print(
        "(ratio: the tracked cell's wall time over the untracked one, goal <= 1.2x; µs/point: added time until the "
        "points are durable, goal <= 5 µs; MLflow: log_metrics per step, "
        f"{mlflow_iterations:,} iterations, the loop's own time taken out)"
    )


# A tracked cell that reads many small files (a data loader) and one that reads a large frame:
# the time the cell adds, the time until everything is durable, and what the store grows by.
DATA_CELLS = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    import numpy as np, pandas as pd, polars as pl
    from IPython.core.interactiveshell import InteractiveShell
    import mlops_lab as ml
    root, n_files, frame_mb = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    ml.set_store(f"sqlite:///{root}/data.db", f"{root}/artifacts")
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "mlops_lab")
    folder = root / "shards"
    folder.mkdir()
    for i in range(n_files):
        (folder / f"part-{i:06d}.csv").write_text(f"x,y\\n{i},{i % 7}\\n")
    ip.user_ns.update(folder=str(folder), os=os)
    def store_mb():  # the database and the blobs (SQLite's write-ahead log comes and goes: left out)
        files = [p for p in root.rglob("*") if p.is_file() and "shards" not in p.parts]
        return sum(p.stat().st_size for p in files if not p.name.endswith(("-wal", "-shm"))) / 2**20
    def timed(cell):
        t = time.perf_counter(); ip.run_cell(cell).raise_error(); cell_s = time.perf_counter() - t
        ml.flush()
        return cell_s, time.perf_counter() - t
    def measure(cell):
        plain = min(timed(cell)[0] for _ in range(3))
        size = store_mb()
        first = timed("%%track\\n" + cell)
        grown = store_mb() - size
        again = timed("%%track\\n" + cell)
        return {"plain": plain, "first": first, "again": again, "grown_mb": grown, "again_mb": store_mb() - size - grown}
    out = {"files": measure("total = 0\\nfor name in os.listdir(folder):\\n"
                            "    with open(os.path.join(folder, name)) as f:\\n        total += len(f.read())\\n")}
    frame = pd.DataFrame(np.random.default_rng(0).normal(size=(frame_mb * 2**20 // 80, 10)))
    frame.columns = [f"c{i}" for i in range(10)]
    ip.user_ns.update(pandas_frame=frame, polars_frame=pl.from_pandas(frame))
    for name in ("pandas_frame", "polars_frame"):
        out[name] = measure(f"n = len({name})")
    # What an open costs while the cell runs: the recorder on, against the same opens without it.
    from mlops_lab.tracking.cells import _ReadRecorder
    names = [os.path.join(folder, name) for name in os.listdir(folder)]
    def opens():
        t = time.perf_counter()
        for name in names:
            with open(name) as f:
                f.read()
        return time.perf_counter() - t
    recorder = _ReadRecorder()
    bare = min(opens() for _ in range(3))
    recorder.start(); watched = min(opens() for _ in range(3)); recorder.stop()
    out["per_open_us"] = (watched - bare) / len(names) * 1e6
    print(json.dumps(out))
""")


def data_figures(n_files: int, frame_mb: int) -> None:
    with tempfile.TemporaryDirectory() as root:
        result = subprocess.run([sys.executable, "-c", DATA_CELLS, root, str(n_files), str(frame_mb)],
                                capture_output=True, text=True)  # fmt: skip
        if result.returncode != 0:
            raise SystemExit(f"data cells failed:\n{result.stderr[-3000:]}")
        out = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"\nData a tracked cell reads ({n_files:,} small files; a {frame_mb:,} MB frame)")
    print(
        f"{'cell':28} {'untracked':>10} {'added, 1st':>11} {'durable, 1st':>13} {'added, again':>13} {'store +MB':>10}"
    )
    labels = {
        "files": f"opens {n_files:,} files",
        "pandas_frame": "reads a pandas frame",
        "polars_frame": "reads a polars frame",
    }
    for key, label in labels.items():
        row = out[key]
        print(
            f"{label:28} {row['plain']:>9.3f}s {row['first'][0] - row['plain']:>10.3f}s {row['first'][1]:>12.3f}s "
            f"{row['again'][0] - row['plain']:>12.3f}s {row['grown_mb']:>6.1f}/{row['again_mb']:.1f}"
        )
    per_file = (out["files"]["again"][0] - out["files"]["plain"]) / n_files * 1e6
    print(f"(added: the tracked cell's wall time minus the untracked one's, goal <= 20 ms for frames; store +MB: "
          f"first time / again)\nan open during a tracked cell costs {out['per_open_us']:.2f} µs more (goal <= 10 µs); "
          f"a re-read folder costs {per_file:.1f} µs a file in all")  # fmt: skip


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
    parser.add_argument("--loop-iterations", type=int, default=100_000)
    parser.add_argument("--mlflow-loop-iterations", type=int, default=2_000, help="MLflow writes each step")
    parser.add_argument("--loops-only", action="store_true", help="only the loop-capture figures")
    parser.add_argument("--files", type=int, default=10_000, help="small files a tracked cell reads")
    parser.add_argument("--frame-mb", type=int, default=1000, help="size of the frame a tracked cell reads")
    parser.add_argument("--data-only", action="store_true", help="only the figures for data a cell reads")
    args = parser.parse_args()
    if args.data_only:
        return data_figures(args.files, args.frame_mb)
    mlflow_python = str(ensure_mlflow())
    version = subprocess.run(
        [mlflow_python, "-c", "import mlflow; print(mlflow.__version__)"], capture_output=True, text=True
    ).stdout.strip()

    loop_figures(mlflow_python, args.loop_iterations, args.mlflow_loop_iterations)
    if args.loops_only:
        return
    data_figures(args.files, args.frame_mb)
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
