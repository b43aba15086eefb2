"""The team server against MLflow's tracking server, side by side in one run, both on PostgreSQL.

    .venv/bin/python bench/team_server.py [--calls 10000] [--mlflow-calls 300] [--clients 20]
                                          [--seconds 20] [--runs 100000]

1. log_metric from a kernel: mlops_lab's client through `mlops-lab server` against MLflow's client
   through `mlflow server` (MLflow is timed on --mlflow-calls calls and its per-call time is used:
   10,000 calls of it take minutes).  Both times include making the points durable.
2. A tracked cell's added cost when the store is a team server (`%%track` of `pass` vs `pass`).
3. --clients processes logging for --seconds each through one team server: points logged and stored.
4. The Runs panel's page: 100 runs filtered and ordered by a metric, through the team server, at
   --runs runs on PostgreSQL (p50 of 21).

MLflow lives in bench/.venv-mlflow (made on first use, with psycopg for PostgreSQL).  Not a test.
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
import uuid
from pathlib import Path

import requests
import sqlalchemy as sa

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))
from bench.tracking import MLFLOW_VENV, ensure_mlflow  # noqa: E402
from mlops_lab.net import free_port  # noqa: E402

PG = os.environ.get("MLOPS_LAB_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

LOG_METRICS = textwrap.dedent("""
    import json, sys, time
    side, calls = sys.argv[1], int(sys.argv[2])
    if side == "mlflow":
        import mlflow
        mlflow.set_experiment("bench")
        start_run, log_metric, flush = mlflow.start_run, mlflow.log_metric, lambda: None
    else:
        import mlops_lab as ml
        start_run = lambda: ml.start_run(experiment="bench")
        log_metric, flush = ml.log_metric, ml.flush
    with start_run():
        log_metric("warm", 1.0)
    flush()
    t = time.perf_counter()
    with start_run():
        for i in range(calls):
            log_metric("loss", 1.0 / (i + 1), step=i)
    flush()
    print(json.dumps({"seconds": time.perf_counter() - t, "calls": calls}))
""")

TRACK_CELL = textwrap.dedent("""
    import json, statistics, time
    from IPython.core.interactiveshell import InteractiveShell
    import mlops_lab as ml
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "mlops_lab")
    ip.run_cell("%%track\\npass")  # warm-up: the experiment, imports
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

CLIENT = textwrap.dedent("""
    import json, sys, time
    import mlops_lab as ml
    seconds = float(sys.argv[1])
    logged = 0
    with ml.start_run(experiment="load") as run:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for _ in range(100):
                ml.log_metric("loss", 0.5, step=logged)
                logged += 1
            time.sleep(0.001)
    ml.flush()
    print(json.dumps({"run_id": run.id, "logged": logged}))
""")


def fresh_schema(engine) -> tuple[str, str]:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in PG else "?"
    return schema, f"{PG}{separator}options=-csearch_path%3D{schema}"


def wait_for(url: str, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{url} exited: {process.stdout.read() if process.stdout else ''}")
        try:
            if requests.get(url, timeout=1).status_code < 500:
                return
        except requests.ConnectionError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {seconds:.0f} s")


def start_team_server(db_url: str, artifacts: str) -> tuple[subprocess.Popen, str, str]:
    port = free_port()
    cli = [sys.executable, "-m", "mlops_lab.cli", "--db-url", db_url, "--artifacts", artifacts]
    server = subprocess.Popen([*cli, "server", "--port", str(port), "--default-permission", "EDIT"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/health", server)
    token = subprocess.run([*cli, "token", "create", "--user", "bench"], capture_output=True, text=True, check=True)
    return server, url, token.stdout.strip()


def start_mlflow_server(python: Path, db_url: str, artifacts: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    mlflow = str(python.parent / "mlflow")
    backend = db_url  # psycopg 3, as ours
    server = subprocess.Popen(
        [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--backend-store-uri", backend,
         "--artifacts-destination", artifacts, "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/health", server, 180)
    return server, url


def run_json(command: list[str], env: dict) -> dict:
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **env}, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"{command[:3]} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def seed_runs(url: str, token: str, runs: int) -> None:
    """``runs`` runs with 10 params and 5 metrics each, written as the tracker writes (batches)."""
    from mlops_lab.store import open_store
    from mlops_lab.store.runs import Batch

    store = open_store(url, token)
    experiment = store.runs.get_or_create_experiment("page", "bench")
    now = int(time.time() * 1000)
    for start in range(0, runs, 2000):
        batch = Batch()
        for r in range(start, min(runs, start + 2000)):
            run_id = uuid.uuid4().hex
            batch.runs.append({"id": run_id, "experiment_id": experiment, "name": f"run-{r}", "status": "FINISHED",
                               "user": "bench", "start_time": now - r, "end_time": now - r + 5, "heartbeat_at": now,
                               "host": "bench", "pid": 0})  # fmt: skip
            batch.params += [{"run_id": run_id, "key": f"p{k}", "value": f"v{(r + k) % 7}", "value_num": None}
                             for k in range(10)]  # fmt: skip
            value = ((r * 7919) % 1000) / 1000
            batch.metrics += [{"run_id": run_id, "key": f"m{k}", "value": (value + k / 10) % 1, "step": 0,
                               "timestamp": now} for k in range(5)]  # fmt: skip
        store.runs.write(batch)


def page_p50(url: str, token: str) -> tuple[float, int]:
    from mlops_lab.store import open_store

    store = open_store(url, token)
    experiment = store.runs.experiment_id("page")
    times, found = [], 0
    for _ in range(21):
        t = time.perf_counter()
        found = len(store.runs.search_runs([experiment], "metrics.m0 > 0.2", ["metrics.m1 DESC"], 100)[0])
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000, found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--mlflow-calls", type=int, default=300)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--parts", default="1234", help="which measurements to make, e.g. 4")
    args = parser.parse_args()

    python = ensure_mlflow()
    if subprocess.run([str(python), "-c", "import psycopg"], capture_output=True).returncode:
        subprocess.run([str(MLFLOW_VENV / "bin" / "pip"), "install", "-q", "psycopg[binary]"], check=True)
    engine = sa.create_engine(PG)
    schemas, servers = [], []
    try:
        with tempfile.TemporaryDirectory() as root:
            schema, ours_db = fresh_schema(engine)
            schemas.append(schema)
            team, team_url, token = start_team_server(ours_db, f"{root}/ours")
            servers.append(team)
            schema, theirs_db = fresh_schema(engine)
            schemas.append(schema)
            mlflow_server, mlflow_url = start_mlflow_server(python, theirs_db, f"{root}/theirs")
            servers.append(mlflow_server)
            ours_env = {"MLOPS_LAB_TRACKING_URI": team_url, "MLOPS_LAB_TOKEN": token, "MLOPS_LAB_HOME": f"{root}/h"}

            if "1" in args.parts:
                log_metric_side_by_side(args, python, ours_env, mlflow_url)
            if "2" in args.parts:
                tracked_cell(ours_env)
            if "3" in args.parts:
                concurrent_clients(args, ours_env, team_url, token)
            if "4" in args.parts:
                runs_page(args, team_url, token, ours_db)
    finally:
        for server in servers:
            server.terminate()
            server.wait(30)
        with engine.begin() as conn:
            for schema in schemas:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


def log_metric_side_by_side(args, python, ours_env, mlflow_url) -> None:
    print("1. log_metric from a kernel, through each server (PostgreSQL behind both)")
    ours = run_json([sys.executable, "-c", LOG_METRICS, "ours", str(args.calls)], ours_env)
    theirs = run_json(
        [str(python), "-c", LOG_METRICS, "mlflow", str(args.mlflow_calls)],
        {
            "MLFLOW_TRACKING_URI": mlflow_url,
            "MLFLOW_ENABLE_ASYNC_LOGGING": "false",
            "GIT_PYTHON_REFRESH": "quiet",
        },
    )
    ours_call = ours["seconds"] / ours["calls"] * 1000
    theirs_call = theirs["seconds"] / theirs["calls"] * 1000
    print(f"   mlops_lab: {ours['calls']:,} calls in {ours['seconds']:.3f} s = {ours_call * 1000:.1f} µs a call")
    print(f"   MLflow:    {theirs['calls']:,} calls in {theirs['seconds']:.2f} s = {theirs_call:.2f} ms a call "
          f"({theirs_call * args.calls / 1000:.0f} s for {args.calls:,})")  # fmt: skip
    print(f"   ratio: {theirs_call / ours_call:,.0f}x (goal >= 50x)")


def tracked_cell(ours_env) -> None:
    print("2. a tracked cell's added cost through the team server")
    cell = run_json([sys.executable, "-c", TRACK_CELL], ours_env)
    added = cell["tracked_cell_ms"] - cell["plain_cell_ms"]
    print(f"   plain {cell['plain_cell_ms']:.3f} ms, tracked {cell['tracked_cell_ms']:.3f} ms: "
          f"+{added:.2f} ms (goal <= 2 ms)")  # fmt: skip


def concurrent_clients(args, ours_env, team_url, token) -> None:
    print(f"3. {args.clients} clients x {args.seconds:.0f} s through one team server")
    t = time.perf_counter()
    clients = [
        subprocess.Popen(
            [sys.executable, "-c", CLIENT, str(args.seconds)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **ours_env},
        )  # fmt: skip
        for _ in range(args.clients)
    ]
    results = [json.loads(c.communicate(timeout=600)[0].strip().splitlines()[-1]) for c in clients]
    elapsed = time.perf_counter() - t
    from mlops_lab.store import open_store

    store = open_store(team_url, token)
    stored = sum(store.runs.count_metric_points(r["run_id"]) for r in results)
    logged = sum(r["logged"] for r in results)
    print(f"   logged {logged:,} points, stored {stored:,} (lost {logged - stored:,}) in {elapsed:.1f} s: "
          f"{stored / elapsed:,.0f} points/s")  # fmt: skip


def runs_page(args, team_url, token, db_url) -> None:
    print(f"4. a Runs panel page (100 runs, filtered, ordered by a metric) at {args.runs:,} runs")
    t = time.perf_counter()
    seed_runs(team_url, token, args.runs)
    print(f"   ({args.runs:,} runs written in {time.perf_counter() - t:.0f} s)")
    p50, found = page_p50(team_url, token)
    print(f"   p50 {p50:.1f} ms for {found} runs, at once after the bulk insert (no planner statistics yet)")
    with sa.create_engine(db_url).begin() as conn:
        conn.execute(sa.text("ANALYZE"))  # what autovacuum does within a minute or so of such a load
    p50, found = page_p50(team_url, token)
    print(f"   p50 {p50:.1f} ms for {found} runs, once the tables are analyzed (goal <= 100 ms)")


if __name__ == "__main__":
    main()
