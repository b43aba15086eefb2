"""Comparing runs: aligned params and metrics, metric curves for charts, code diffs, artifacts."""

from __future__ import annotations

import difflib
import json

import numpy as np

from ..errors import InvalidInputError
from ..jsonsafe import json_number
from ..store.runs import RunStore

MAX_COMPARE = 50


def downsample(steps: np.ndarray, values: np.ndarray, max_points: int) -> tuple[np.ndarray, np.ndarray]:
    """At most about ``max_points`` points that keep the curve's shape: per bucket of consecutive
    points, the first, the lowest and the highest (so spikes survive), plus the very last."""
    n = len(steps)
    if n <= max_points:
        return steps, values
    buckets = max(1, max_points // 3)
    size = -(-n // buckets)  # points per bucket, rounded up; the last bucket is padded
    padded = np.full(buckets * size, np.nan)
    padded[:n] = values
    grid = padded.reshape(buckets, size)
    lows = np.where(np.isnan(grid), np.inf, grid).argmin(axis=1)
    highs = np.where(np.isnan(grid), -np.inf, grid).argmax(axis=1)
    starts = np.arange(buckets) * size
    keep = np.concatenate([[0, n - 1], starts, starts + lows, starts + highs])
    index = np.unique(keep[keep < n])
    return steps[index], values[index]


def metric_history(runs: RunStore, run_id: str, key: str, max_points: int = 1000) -> dict:
    steps, values = runs.metric_arrays(run_id, key)
    if not len(steps):
        runs.get_run(run_id)  # an unknown run is a 404, a run without the metric an empty curve
    kept_steps, kept_values = downsample(steps, values, max_points)
    return {
        "run_id": run_id,
        "key": key,
        "points": len(steps),
        "steps": kept_steps.tolist(),
        "values": [json_number(v) for v in kept_values.tolist()],
    }


def _aligned(per_run: dict[str, dict]) -> list[dict]:
    keys = sorted({k for values in per_run.values() for k in values})
    rows = []
    for key in keys:
        values = {run_id: values.get(key) for run_id, values in per_run.items()}
        distinct = {json.dumps(v, sort_keys=True, default=str) for v in values.values()}
        rows.append({"key": key, "values": values, "differs": len(distinct) > 1})
    return rows


def compare_runs(runs: RunStore, run_ids: list[str]) -> dict:
    """Params, metrics, tags, data, environment and code of several runs, side by side."""
    if not run_ids or len(run_ids) > MAX_COMPARE:
        raise InvalidInputError(f"compare takes 1 to {MAX_COMPARE} run ids, got {len(run_ids)}")
    if len(set(run_ids)) != len(run_ids):
        raise InvalidInputError("compare got the same run id twice")
    records = {run_id: runs.get_run(run_id) for run_id in run_ids}
    runs = []
    for run_id, record in records.items():
        info = record.info
        runs.append(
            {
                "run_id": run_id,
                "name": info.name,
                "experiment": record.experiment,
                "status": info.status,
                "start_time": info.start_time,
                "end_time": info.end_time,
                "user": info.user,
                "git_commit": info.git_commit,
                "git_dirty": info.git_dirty,
                "source_hash": info.source_hash,
            }
        )
    environment = {
        run_id: {
            "git commit": r.info.git_commit,
            "uncommitted changes": r.info.git_dirty,
            **_environment_summary(r.environment),
        }
        for run_id, r in records.items()
    }
    return {
        "runs": runs,
        "params": _aligned({i: r.params for i, r in records.items()}),
        "metrics": _aligned({i: {k: json_number(v) for k, v in r.metrics.items()} for i, r in records.items()}),
        "tags": _aligned({i: r.tags for i, r in records.items()}),
        "datasets": _aligned(
            {i: {f"{d['direction']}:{d['name']}": d["hash"] for d in r.datasets} for i, r in records.items()}
        ),
        "environment": _aligned(environment),
        "packages": _package_differences(records),
        # figures by path, so the same chart of each run sits side by side
        "figures": {i: sorted(a["path"] for a in r.artifacts if a["kind"] == "figure") for i, r in records.items()},
        "code_differs": len({r.info.source_hash for r in records.values()}) > 1,
    }


def _environment_summary(environment: dict | None) -> dict:
    if not environment:
        return {}
    hardware = environment.get("hardware", {})
    return {
        "python": environment.get("python"),
        "platform": environment.get("platform"),
        "cpu": hardware.get("cpu"),
        "cpu_count": hardware.get("cpu_count"),
        "gpus": ", ".join(g.get("name", "") for g in hardware.get("gpus", [])) or None,
    }


def _package_differences(records: dict) -> list[dict]:
    """Only the packages whose version is not the same everywhere (the full lists are long)."""
    per_run = {run_id: (r.environment or {}).get("packages", {}) for run_id, r in records.items()}
    return [row for row in _aligned(per_run) if row["differs"]]


MAX_DIFF_LINES = 20_000


def code_diff(runs: RunStore, run_a: str, run_b: str, context: int = 3) -> dict:
    """The two runs' cell code, aligned line by line for a side-by-side view, and a unified diff."""
    a, b = runs.get_run(run_a).info, runs.get_run(run_b).info
    left, right = (a.source or "").splitlines(), (b.source or "").splitlines()
    if max(len(left), len(right)) > MAX_DIFF_LINES:
        raise InvalidInputError(f"cells of over {MAX_DIFF_LINES:,} lines are not diffed; compare them elsewhere")
    rows = []
    # Exact matching is quadratic; past a few hundred lines lines seen everywhere (blank ones) are
    # set aside, as difflib's autojunk does: 4,000 lines take a tenth of the time.
    matcher = difflib.SequenceMatcher(a=left, b=right, autojunk=max(len(left), len(right)) > 500)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        span = max(i2 - i1, j2 - j1)
        for k in range(span):
            rows.append(
                {
                    "op": tag,
                    "left": left[i1 + k] if i1 + k < i2 else None,
                    "right": right[j1 + k] if j1 + k < j2 else None,
                    "left_line": i1 + k + 1 if i1 + k < i2 else None,
                    "right_line": j1 + k + 1 if j1 + k < j2 else None,
                }
            )
    unified = "\n".join(difflib.unified_diff(left, right, a.name, b.name, n=context, lineterm=""))
    return {
        "left": {"run_id": run_a, "name": a.name},
        "right": {"run_id": run_b, "name": b.name},
        "identical": left == right,
        "rows": rows,
        "unified": unified,
    }


__all__ = ["code_diff", "compare_runs", "downsample", "metric_history"]
