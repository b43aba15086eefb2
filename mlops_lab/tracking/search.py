"""Search results as a DataFrame, one row per run, in MLflow's column layout."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..store import Store

if TYPE_CHECKING:
    import pandas as pd

def runs_frame(store: Store, experiment_ids: list[int] | None = None, filter_string: str | None = None,
               order_by: list[str] | str | None = None, max_results: int = 1000) -> "pd.DataFrame":
    import numpy as np
    import pandas as pd  # only searches pay for pandas, not every tracked cell

    runs, params, metrics, tags = store.search_runs(experiment_ids, filter_string, order_by, max_results)
    ids = [run["id"] for run in runs]
    starts = [run["start_time"] for run in runs]
    ends = [run["end_time"] for run in runs]
    columns = {
        "run_id": ids,
        "experiment": [run["experiment"] for run in runs],
        "run_name": [run["name"] for run in runs],
        "status": [run["status"] for run in runs],
        "user": [run["user"] for run in runs],
        "start_time": pd.to_datetime(np.array(starts, dtype="float64"), unit="ms", utc=True),
        "end_time": pd.to_datetime(np.array([np.nan if e is None else e for e in ends], dtype="float64"), unit="ms", utc=True),
        "duration_s": [None if e is None else (e - s) / 1000 for s, e in zip(starts, ends)],
        "parent_run_id": [run["parent_run_id"] for run in runs],
        "notebook_path": [run["notebook_path"] for run in runs],
        "git_commit": [run["git_commit"] for run in runs],
    }
    for prefix, values in (("metrics", metrics), ("params", params), ("tags", tags)):
        for key in sorted({k for per_run in values.values() for k in per_run}):
            columns[f"{prefix}.{key}"] = [values[run_id].get(key) for run_id in ids]
    frame = pd.DataFrame(columns)
    frame["duration_s"] = frame["duration_s"].astype("float64")
    return frame


def runs_page(store: Store, experiment_ids: list[int] | None = None, filter_string: str | None = None,
              order_by: list[str] | str | None = None, limit: int = 100, offset: int = 0) -> dict:
    """A page of runs for the lab's panels: plain JSON, NaN/inf spelled out."""
    from ..store.sql import json_number

    runs, params, metrics, tags = store.search_runs(experiment_ids, filter_string, order_by, limit, offset)
    rows = []
    for run in runs:
        run_id = run["id"]
        end = run["end_time"]
        rows.append({
            "run_id": run_id, "name": run["name"], "experiment": run["experiment"], "status": run["status"],
            "user": run["user"], "start_time": run["start_time"], "end_time": end,
            "duration_ms": None if end is None else end - run["start_time"],
            "params": params[run_id], "metrics": {k: json_number(v) for k, v in metrics[run_id].items()},
            "tags": tags[run_id],
        })
    return {
        "runs": rows,
        "param_keys": sorted({k for r in rows for k in r["params"]}),
        "metric_keys": sorted({k for r in rows for k in r["metrics"]}),
        "offset": offset,
        "limit": limit,
    }
