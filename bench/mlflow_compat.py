"""MLflow's own client against the lab's MLflow endpoint and against `mlflow server`, side by side.

    .venv/bin/python bench/mlflow_compat.py [--metrics 10000] [--runs 1000] [--postgres] [--parts one,batch,search]

Both servers on this machine, each on its own SQLite file (or, with --postgres, its own fresh
database on the local PostgreSQL, as a shared server would run), the same client process:
  1. 10,000 metrics logged one call each (`MlflowClient.log_metric`), then the same 10,000 with
     `log_batch` (1,000 a call);
  2. searching 1,000 runs (10 params, 5 metrics, 3 tags each) for the page MLflow's UI asks for:
     a filter on a metric and a param, ordered by a metric, 1,000 results (median of 5).
Goal (#14): ours >= 5x faster in each.  Under each row, "bare HTTP" is the servers' own share (the
same bodies from a plain HTTP session), and "a server that does nothing" is the bound any server
reaches through MLflow's client: Tornado (the web server under Jupyter) answering each call at once
from memory (`{}`; for the search, our answer's bytes), so what is left is MLflow's client, HTTP
and Tornado themselves.
  3. `mlops-lab import mlflow` of 1,000 runs x 1,000 metric points from an MLflow SQLite store
     (made by MLflow's client first, not timed): time and points/s (`--import-runs`, `--import-points`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.lab: the lab the UI tests start

import mlflow
from mlflow.entities import Metric, Param, RunTag

from mlops_lab.net import free_port
from tests.lab import LabServer, mlflow_server

T0 = 1_700_000_000_000


PG = os.environ.get("MLOPS_LAB_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@contextlib.contextmanager
def databases(root: Path, postgres: bool):
    """A database URL for each side: SQLite files, or fresh PostgreSQL databases dropped after."""
    if not postgres:
        yield f"sqlite:///{root / 'lab.db'}", f"sqlite:///{root / 'mlflow.db'}"
        return
    import psycopg

    names = [f"bench_{side}_{os.getpid()}" for side in ("lab", "mlflow")]
    with psycopg.connect(PG.replace("+psycopg", ""), autocommit=True) as conn:
        for name in names:
            conn.execute(f"CREATE DATABASE {name}")
    try:
        yield tuple(PG.rsplit("/", 1)[0] + f"/{name}" for name in names)
    finally:
        with psycopg.connect(PG.replace("+psycopg", ""), autocommit=True) as conn:
            for name in names:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def new_run(client, name: str, *, to_nothing: bool = False) -> str:
    """A fresh run's id; a server that does nothing takes any id."""
    if to_nothing:
        return "0" * 32
    return client.create_run(client.create_experiment(f"{name}-{time.time_ns()}")).info.run_id


def log_one_by_one(uri: str, metrics: int, *, to_nothing: bool = False) -> float:
    client = mlflow.MlflowClient(uri)
    run_id = new_run(client, "one-by-one", to_nothing=to_nothing)
    client.log_metric(run_id, "warm", 1.0)
    start = time.perf_counter()
    for i in range(metrics):
        client.log_metric(run_id, "loss", 1 / (i + 1), timestamp=T0 + i, step=i)
    seconds = time.perf_counter() - start
    assert to_nothing or len(client.get_metric_history(run_id, "loss")) == metrics
    return seconds


NULL_SERVER = """
import sys, tornado.ioloop, tornado.web
SEARCH = open(sys.argv[2], "rb").read() if len(sys.argv) > 2 else b'{"runs": []}'
class Nothing(tornado.web.RequestHandler):
    def get(self, path):
        self.set_header("Content-Type", "application/json")
        self.finish(SEARCH if path == "runs/search" else b'{"metrics": []}' if path.endswith("get-history") else b"{}")
    post = get
tornado.web.Application([(r"/api/2.0/mlflow/(.*)", Nothing)], log_function=lambda handler: None).listen(
    int(sys.argv[1]), "127.0.0.1")
tornado.ioloop.IOLoop.current().start()
"""


@contextlib.contextmanager
def null_server(search_answer: Path | None = None):
    """A Tornado server that answers every MLflow call at once, with ``{}`` (or, for runs/search, the
    bytes of ``search_answer``): what MLflow's client, HTTP and Tornado cost by themselves, the floor
    under any server built on them."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", NULL_SERVER, str(port), *([str(search_answer)] * bool(search_answer))]
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/2.0/mlflow/ping", data=b"{}", timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the null server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def log_raw(uri: str, metrics: int) -> float:
    """The server's own share: the same calls from a bare HTTP session, without MLflow's client."""
    import requests

    run_id = new_run(mlflow.MlflowClient(uri), "raw")
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"
    url = f"{uri}/api/2.0/mlflow/runs/log-metric"
    start = time.perf_counter()
    for i in range(metrics):
        body = {"run_id": run_id, "key": "loss", "value": 1 / (i + 1), "timestamp": T0 + i, "step": i}
        session.post(url, json=body).raise_for_status()
    return time.perf_counter() - start


def log_batched(uri: str, metrics: int, *, to_nothing: bool = False) -> float:
    client = mlflow.MlflowClient(uri)
    run_id = new_run(client, "batched", to_nothing=to_nothing)
    start = time.perf_counter()
    for first in range(0, metrics, 1000):
        points = [Metric("loss", 1 / (i + 1), T0 + i, i) for i in range(first, min(first + 1000, metrics))]
        client.log_batch(run_id, metrics=points)
    seconds = time.perf_counter() - start
    assert to_nothing or len(client.get_metric_history(run_id, "loss")) == metrics
    return seconds


def log_batched_raw(uri: str, metrics: int) -> float:
    """The server's share of log_batch: the same bodies from a bare HTTP session."""
    import json

    import requests

    run_id = new_run(mlflow.MlflowClient(uri), "batched-raw")
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}",
                            "Content-Type": "application/json"})  # fmt: skip
    bodies = [
        json.dumps(
            {
                "run_id": run_id,
                "metrics": [
                    {"key": "loss", "value": 1 / (i + 1), "timestamp": T0 + i, "step": i}
                    for i in range(first, min(first + 1000, metrics))
                ],
            }
        )  # fmt: skip
        for first in range(0, metrics, 1000)
    ]
    start = time.perf_counter()
    for body in bodies:
        session.post(f"{uri}/api/2.0/mlflow/runs/log-batch", data=body).raise_for_status()
    return time.perf_counter() - start


def populate(uri: str, runs: int) -> str:
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("search")
    for i in range(runs):
        run = client.create_run(experiment, run_name=f"r{i}", start_time=T0 + i)
        client.log_batch(
            run.info.run_id,
            metrics=[Metric(f"m{k}", ((i * 7919 + k) % 1000) / 1000, T0, 0) for k in range(5)],
            params=[Param(f"p{k}", str((i + k) % 7)) for k in range(10)],
            tags=[RunTag(f"t{k}", f"v{i % 3}") for k in range(3)],
        )
    return experiment


SEARCH = {"filter": "metrics.m0 > 0.1 and params.p1 != '3'", "order_by": ["metrics.m1 DESC"], "max_results": 1000}


def search_seconds(uri: str, experiment: str, repeats: int = 5) -> tuple[float, int]:
    client = mlflow.MlflowClient(uri)
    times, found = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        found = len(client.search_runs([experiment], SEARCH["filter"], order_by=SEARCH["order_by"], max_results=1000))
        times.append(time.perf_counter() - start)
    return statistics.median(times), found


def search_raw_seconds(uri: str, experiment: str, repeats: int = 5) -> tuple[float, int, bytes]:
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {os.environ['MLFLOW_TRACKING_TOKEN']}"
    times, found = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        answer = session.post(f"{uri}/api/2.0/mlflow/runs/search", json={"experiment_ids": [experiment], **SEARCH})
        found = len(answer.json()["runs"])
        times.append(time.perf_counter() - start)
    return statistics.median(times), found, answer.content


def import_figure(root: Path, runs: int, points: int) -> str:
    from mlops_lab.config import resolve
    from mlops_lab.mlflow_api.importer import import_mlflow
    from mlops_lab.workspace import Workspace

    source = f"sqlite:///{root / 'source.db'}"
    client = mlflow.MlflowClient(source)
    experiment = client.create_experiment("to-import", artifact_location=(root / "source-artifacts").as_uri())
    made = time.perf_counter()
    for i in range(runs):
        run = client.create_run(experiment, run_name=f"r{i}", start_time=T0 + i)
        for first in range(0, points, 1000):
            batch = [Metric("loss", 1 / (s + 1), T0 + s, s) for s in range(first, min(first + 1000, points))]
            client.log_batch(run.info.run_id, metrics=batch, params=[Param("i", str(i))] if not first else [])
        client.set_terminated(run.info.run_id)
    made = time.perf_counter() - made
    workspace = Workspace(resolve(f"sqlite:///{root / 'imported.db'}", str(root / "imported-blobs")))
    try:
        start = time.perf_counter()
        report = import_mlflow(source, workspace.store, workspace.artifacts, workspace.registry, "bench")
        seconds = time.perf_counter() - start
    finally:
        workspace.close()
    assert report.runs_imported == runs and report.metric_points == runs * points, report
    return (
        f"import of {runs:,} runs x {points:,} points from MLflow's SQLite store: {seconds:.1f} s, "
        f"{report.metric_points / seconds:,.0f} points/s (MLflow's client took {made:.0f} s to log them)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--metrics", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=1_000)
    parser.add_argument("--postgres", action="store_true", help="each side on its own PostgreSQL database")
    parser.add_argument("--import-runs", type=int, default=1_000)
    parser.add_argument("--import-points", type=int, default=1_000)
    parser.add_argument("--parts", default="one,batch,search", help="which of one,batch,search to measure")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory() as folder, databases(Path(folder), args.postgres) as (lab_db, mlflow_db):
        root = Path(folder)
        (root / "lab").mkdir()
        lab = LabServer(root / "lab", {"MLOPS_LAB_DB_URL": lab_db, "MLOPS_LAB_ARTIFACTS": str(root / "blobs")})
        os.environ["MLFLOW_TRACKING_TOKEN"] = lab.token  # the lab's; mlflow server ignores it
        try:
            with mlflow_server(mlflow_db, root / "mlflow-server.log", root / "artifacts") as mlflow_uri:
                sides = {"mlops_lab": f"{lab.url}/mlops-lab/mlflow", "mlflow server": mlflow_uri}
                backend = "PostgreSQL database" if args.postgres else "SQLite file"
                print(f"MLflow {mlflow.__version__}'s client; each server on its own {backend}\n")
                rows = []
                one = (
                    (f"log_metric x {args.metrics:,} (one call each)", log_one_by_one, args.metrics, 1),
                    ("  the same, bare HTTP (the server's share)", log_raw, args.metrics, 1),
                )
                batch = (
                    (
                        f"log_batch of {args.metrics:,} metrics (1,000 a call, median of 5)",
                        log_batched,
                        args.metrics,
                        5,
                    ),
                    ("  the same, bare HTTP (the server's share)", log_batched_raw, args.metrics, 5),
                )
                timed = [*(one if "one" in parts else ()), *(batch if "batch" in parts else ())]
                for title, measure, count, repeats in timed:
                    seconds = {
                        side: statistics.median(measure(uri, count) for _ in range(repeats))
                        for side, uri in sides.items()
                    }
                    rows.append((title, seconds, f"{count / seconds['mlops_lab']:,.0f} vs "
                                 f"{count / seconds['mlflow server']:,.0f} metrics/s"))  # fmt: skip
                with null_server() as nothing:  # the floors, under the rows they bound
                    for part, measure, repeats in (("batch", log_batched, 5), ("one", log_one_by_one, 1)):
                        if part in parts:
                            row = 0 if part == "one" else len(rows) - 2
                            floor = statistics.median(
                                measure(nothing, args.metrics, to_nothing=True) for _ in range(repeats)
                            )
                            rows.insert(row + 1, (
                                "  the same, to a server that does nothing",
                                {"mlops_lab": floor, "mlflow server": rows[row][1]["mlflow server"]},
                                "the most any server reaches through MLflow's client and Tornado",
                            ))  # fmt: skip
                if "search" in parts:
                    search_rows(rows, sides, args.runs, root)
                print(f"{'':58}{'mlops_lab':>11}{'mlflow':>11}  ratio (goal >= 5x)")
                for title, seconds, note in rows:
                    ours, theirs = seconds["mlops_lab"], seconds["mlflow server"]
                    print(f"{title:58}{ours:>10.3f}s{theirs:>10.3f}s  {theirs / ours:.1f}x  ({note})")
        finally:
            lab.stop()
        if args.import_runs:
            print("\n" + import_figure(root, args.import_runs, args.import_points))


def search_rows(rows: list, sides: dict, runs: int, root: Path) -> None:
    """The search's rows: end to end, from a server that does nothing, and bare HTTP."""
    experiments = {side: populate(uri, runs) for side, uri in sides.items()}
    searched = {side: search_seconds(uri, experiments[side]) for side, uri in sides.items()}
    raw = {side: search_raw_seconds(uri, experiments[side]) for side, uri in sides.items()}
    ours_answer = root / "search-answer.json"
    ours_answer.write_bytes(raw["mlops_lab"][2])
    with null_server(ours_answer) as nothing:
        floor = search_seconds(nothing, experiments["mlops_lab"])
    assert searched["mlops_lab"][1] == searched["mlflow server"][1] == raw["mlops_lab"][1], (searched, raw)
    rows.append(
        (
            f"search_runs over {runs:,} runs (median of 5)",
            {side: found[0] for side, found in searched.items()},
            f"{searched['mlops_lab'][1]} runs found by each",
        )
    )
    rows.append(
        (
            "  the same answer from a server that does nothing",
            {"mlops_lab": floor[0], "mlflow server": searched["mlflow server"][0]},
            f"the most any server reaches: MLflow's client reading {floor[1]} runs",
        )
    )
    rows.append(
        (
            "  the same, bare HTTP (the server's share)",
            {side: found[0] for side, found in raw.items()},
            "the rest of search_runs is MLflow's client reading it",
        )
    )


if __name__ == "__main__":
    main()
