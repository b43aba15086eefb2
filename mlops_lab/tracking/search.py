"""Searching runs: experiment names to ids, and results as a DataFrame (MLflow's column layout)
or as a page of JSON rows for the lab's panels."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import NotFoundError
from ..jsonsafe import json_number
from ..store.runs import RunStore

if TYPE_CHECKING:
    import pandas as pd

# DataFrame column, and the run's field it comes from; start/end/duration go between the two parts.
ATTRIBUTES = [
    ("run_id", "id"),
    ("experiment", "experiment"),
    ("run_name", "name"),
    ("status", "status"),
    ("user", "user"),
    ("parent_run_id", "parent_run_id"),
    ("notebook_path", "notebook_path"),
    ("git_commit", "git_commit"),
]


def experiment_ids(runs: RunStore, experiment: str | list[str] | None, *, missing: str = "skip") -> list[int] | None:
    """The ids of the named experiments (None: every experiment).

    An unknown name matches no runs (``missing="skip"``, as MLflow's ``search_runs`` does and as a
    panel watching for an experiment that is not there yet needs), or raises ``NotFoundError``
    (``missing="raise"``: a person at a shell who mistyped the name)."""
    if experiment is None:
        return None
    names = [experiment] if isinstance(experiment, str) else list(experiment)
    ids = []
    for name in names:
        found = runs.experiment_id(name)
        if found is None and missing == "raise":
            raise NotFoundError(f"no experiment named {name!r}")
        if found is not None:
            ids.append(found)
    return ids


def runs_frame(
    runs_store: RunStore,
    experiment_ids: list[int] | None = None,
    filter_string: str | None = None,
    order_by: list[str] | str | None = None,
    max_results: int = 1000,
) -> "pd.DataFrame":
    import numpy as np
    import pandas as pd  # only searches pay for pandas, not every tracked cell

    runs, params, metrics, tags = runs_store.search_runs(experiment_ids, filter_string, order_by, max_results)
    ids = [run["id"] for run in runs]
    starts = np.fromiter((run["start_time"] for run in runs), dtype="float64", count=len(runs))
    ends = np.fromiter(
        (np.nan if run["end_time"] is None else run["end_time"] for run in runs), dtype="float64", count=len(runs)
    )
    # Typed arrays, not lists: pandas then has nothing to guess, which is most of its cost here.
    columns = {name: np.array([run[key] for run in runs], dtype=object) for name, key in ATTRIBUTES[:5]}
    columns["start_time"] = pd.DatetimeIndex(starts.astype("datetime64[ms]")).tz_localize("UTC")
    columns["end_time"] = pd.DatetimeIndex(ends.astype("datetime64[ms]")).tz_localize("UTC")
    columns["duration_s"] = (ends - starts) / 1000
    columns.update({name: np.array([run[key] for run in runs], dtype=object) for name, key in ATTRIBUTES[5:]})
    for prefix, values in (("metrics", metrics), ("params", params), ("tags", tags)):
        for key in sorted({k for per_run in values.values() for k in per_run}):
            column = [values[run_id].get(key) for run_id in ids]
            columns[f"{prefix}.{key}"] = (
                np.array([np.nan if v is None else v for v in column], dtype="float64")
                if prefix == "metrics"
                else np.array(column, dtype=object)
            )
    return pd.DataFrame(columns, copy=False)


def runs_page(
    runs_store: RunStore,
    experiment_ids: list[int] | None = None,
    filter_string: str | None = None,
    order_by: list[str] | str | None = None,
    limit: int = 100,
    offset: int = 0,
    *,
    lifecycle: str = "active",
) -> dict:
    """A page of runs for the lab's panels: plain JSON, NaN/inf spelled out."""
    runs, params, metrics, tags = runs_store.search_runs(
        experiment_ids, filter_string, order_by, limit, offset, lifecycle=lifecycle
    )
    rows = []
    for run in runs:
        run_id = run["id"]
        end = run["end_time"]
        rows.append(
            {
                "run_id": run_id,
                "name": run["name"],
                "experiment": run["experiment"],
                "status": run["status"],
                "parent_run_id": run["parent_run_id"],
                "user": run["user"],
                "start_time": run["start_time"],
                "end_time": end,
                "duration_ms": None if end is None else end - run["start_time"],
                "params": params[run_id],
                "metrics": {k: json_number(v) for k, v in metrics[run_id].items()},
                "tags": tags[run_id],
            }
        )
    return {
        "runs": rows,
        "param_keys": sorted({k for r in rows for k in r["params"]}),
        "metric_keys": sorted({k for r in rows for k in r["metrics"]}),
        "offset": offset,
        "limit": limit,
    }
