"""Search results as a DataFrame, one row per run, in MLflow's column layout."""

from __future__ import annotations

import pandas as pd

from ..store import Store

ATTRIBUTE_COLUMNS = ["run_id", "experiment", "run_name", "status", "user", "start_time", "end_time", "duration_s",
                     "parent_run_id", "notebook_path", "git_commit"]


def runs_frame(store: Store, experiment_ids: list[int] | None = None, filter_string: str | None = None,
               order_by: list[str] | str | None = None, max_results: int = 1000) -> pd.DataFrame:
    runs, params, metrics, tags = store.search_runs(experiment_ids, filter_string, order_by, max_results)
    param_keys = sorted({k for values in params.values() for k in values})
    metric_keys = sorted({k for values in metrics.values() for k in values})
    tag_keys = sorted({k for values in tags.values() for k in values})
    records = []
    for run in runs:
        run_id = run["id"]
        end = run["end_time"]
        record = {
            "run_id": run_id, "experiment": run["experiment"], "run_name": run["name"], "status": run["status"],
            "user": run["user"], "start_time": run["start_time"], "end_time": end,
            "duration_s": None if end is None else (end - run["start_time"]) / 1000,
            "parent_run_id": run["parent_run_id"], "notebook_path": run["notebook_path"], "git_commit": run["git_commit"],
        }
        record.update({f"metrics.{k}": metrics[run_id].get(k) for k in metric_keys})
        record.update({f"params.{k}": params[run_id].get(k) for k in param_keys})
        record.update({f"tags.{k}": tags[run_id].get(k) for k in tag_keys})
        records.append(record)
    columns = ATTRIBUTE_COLUMNS + [f"metrics.{k}" for k in metric_keys] + [f"params.{k}" for k in param_keys] + \
        [f"tags.{k}" for k in tag_keys]
    frame = pd.DataFrame.from_records(records, columns=columns)
    for column in ("start_time", "end_time"):
        frame[column] = pd.to_datetime(frame[column], unit="ms", utc=True)
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
