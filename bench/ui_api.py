"""The lab's REST API and Runs panel on a large store.

    .venv/bin/python bench/ui_api.py [--runs 10000] [--points 10000] [--no-browser]

A store of 10,000 runs x 20 params x 10 metrics; a real `jupyter lab` on loopback reads it.
Figures: a filtered, sorted page of 100 runs through REST (p50, goal <= 100 ms); comparing 10
runs with 10,000 metric points each, as the Compare view asks for it (goal <= 300 ms); and, in
Chromium, the Runs panel's first rows after a click (goal <= 2 s). The anchor printed beside the
REST page is the same search called in-process, so the ratio is the server's own cost.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from mlops_lab.net import free_port

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the browser the UI tests drive


def populate(url: str, artifacts: str, runs: int, points: int) -> list[str]:
    import numpy as np

    import mlops_lab as ml

    ml.set_store(url, artifacts)
    rng = np.random.default_rng(0)
    for r in range(runs):
        with ml.start_run(f"run-{r}", experiment="big"):
            ml.log_params({f"p{k}": f"v{(r * 7 + k) % 13}" for k in range(20)})
            ml.log_metrics({f"m{k}": float(rng.random()) for k in range(10)})
    curves = []
    for c in range(10):
        with ml.start_run(f"curve-{c}", experiment="curves") as run:
            ml.log_param("lr", 0.01 * (c + 1))
            for step in range(points):
                ml.log_metric("loss", 1.0 / (step + 1 + c), step=step)
        curves.append(run.id)
    ml.flush()
    return curves


def get(base: str, token: str, path: str) -> bytes:
    request = urllib.request.Request(f"{base}/mlops-lab/api/{path}", headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.read()


def timed(function, repeats: int) -> float:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--points", type=int, default=10_000)
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    url, artifacts = f"sqlite:///{folder / 'big.db'}", str(folder / "artifacts")
    start = time.perf_counter()
    curves = populate(url, artifacts, args.runs, args.points)
    print(
        f"store: {args.runs:,} runs x 20 params x 10 metrics, 10 runs x {args.points:,} points "
        f"(written in {time.perf_counter() - start:.1f} s)"
    )

    port, token = free_port(), secrets.token_hex(16)
    (folder / "root").mkdir()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={port}",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={folder / 'root'}",
            "--ServerApp.allow_root=True",
        ],
        env={**os.environ, "MLOPS_LAB_DB_URL": url, "MLOPS_LAB_ARTIFACTS": artifacts},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                get(base, token, "info")
                break
            except OSError:
                time.sleep(0.2)
        query = urllib.parse.urlencode(
            {
                "filter": "metrics.m0 > 0.3 and params.p1 = 'v4'",
                "order_by": "metrics.m2 DESC",
                "limit": 100,
                "offset": 100,
                "experiment": "big",
            }
        )
        page = json.loads(get(base, token, f"runs?{query}"))
        rest_page = timed(lambda: get(base, token, f"runs?{query}"), 51)

        from mlops_lab.store import open_store
        from mlops_lab.tracking.search import runs_page

        store = open_store(url)
        experiment = store.runs.experiment_id("big")
        in_process = timed(
            lambda: runs_page(
                store.runs, [experiment], "metrics.m0 > 0.3 and params.p1 = 'v4'", ["metrics.m2 DESC"], 100, 100
            ),
            51,
        )

        def compare_view():
            get(base, token, "compare?runs=" + ",".join(curves))
            for run_id in curves:
                get(base, token, f"runs/{run_id}/metric-history?key=loss")

        compare = timed(compare_view, 11)
        print(f"\n{'':58} {'time':>10}  goal")
        print(
            f"{'filtered, sorted page of 100 runs via REST (p50)':58} {rest_page * 1000:>8.1f}ms  <= 100 ms: "
            f"{'met' if rest_page <= 0.1 else 'NOT MET'}  ({len(page['runs'])} runs on the page; in-process "
            f"{in_process * 1000:.1f} ms, so HTTP adds {(rest_page - in_process) * 1000:.1f} ms)"
        )
        print(
            f"{'compare 10 runs x ' + format(args.points, ',') + ' points (compare + 10 curves)':58} "
            f"{compare * 1000:>8.1f}ms  <= 300 ms: {'met' if compare <= 0.3 else 'NOT MET'}"
        )
        if not args.no_browser:
            from lab import launch_browser  # Debian's Chromium with the tests' flags
            from playwright.sync_api import sync_playwright

            with sync_playwright() as playwright:
                browser = launch_browser(playwright)
                tab = browser.new_page()
                tab.goto(f"{base}/lab?token={token}")
                button = tab.locator('.lm-TabBar-tab[data-id="mlops-lab-runs"]')
                button.wait_for(timeout=120_000)
                opened = time.perf_counter()
                button.click()
                tab.locator(".jp-mlops-runs tr[data-run-id]").first.wait_for(timeout=30_000)
                interactive = time.perf_counter() - opened
                browser.close()
            print(
                f"{'Runs panel: first rows after the click':58} {interactive * 1000:>8.0f}ms  <= 2000 ms: "
                f"{'met' if interactive <= 2 else 'NOT MET'}"
            )
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
