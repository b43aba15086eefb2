"""Model quality over time, once delayed labels are joined to logged predictions."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from .profile import DriftError
from .report import load_frame

CLASSIFICATION = ("accuracy", "roc_auc")
REGRESSION = ("rmse", "mae")


def performance(
    data, *, target: str, prediction: str, timestamp: str, period: str = "1d", task: str | None = None, artifacts=None
) -> list[dict]:
    """Per period: rows, and accuracy and ROC AUC (classification) or RMSE and MAE (regression).

    ``task`` is guessed when not given: a target with two values is binary classification, in
    which case ``prediction`` is a score (AUC) thresholded at 0.5 for accuracy, or a label.
    """
    frame = load_frame(data, artifacts)
    for name in (target, prediction, timestamp):
        if name not in frame.columns:
            raise DriftError(f"column {name!r} is not in the data")
    if not frame.schema[timestamp].is_temporal():
        raise DriftError(f"timestamp column {timestamp!r} must hold dates or times, not {frame.schema[timestamp]}")
    labelled = frame.drop_nulls([target, prediction])
    if labelled.height == 0:
        raise DriftError("no row has both a label and a prediction yet")
    if task is None:
        task = "classification" if labelled[target].n_unique() <= 2 else "regression"
    if task not in ("classification", "regression"):
        raise DriftError(f"task must be 'classification' or 'regression', got {task!r}")

    from sklearn import metrics

    rows = []
    grouped = labelled.sort(timestamp).with_columns(pl.col(timestamp).dt.truncate(period).alias("__period"))
    for (start,), chunk in grouped.group_by("__period", maintain_order=True):
        y = chunk[target].to_numpy()
        p = chunk[prediction].to_numpy()
        row = {"period": str(start), "rows": chunk.height}
        if task == "classification":
            is_score = p.dtype.kind == "f" and not np.isin(p, [0.0, 1.0]).all()
            labels = (p >= 0.5).astype(y.dtype) if is_score else p
            row["accuracy"] = float(metrics.accuracy_score(y, labels))
            row["roc_auc"] = float(metrics.roc_auc_score(y, p)) if is_score and len(np.unique(y)) == 2 else math.nan
        else:
            row["rmse"] = float(np.sqrt(metrics.mean_squared_error(y, p)))
            row["mae"] = float(metrics.mean_absolute_error(y, p))
        rows.append(row)
    return rows
