"""``drift(reference, current)``: per-column tests, a dataset verdict, drift over time.

Which statistic decides a column follows Evidently's defaults, so results are comparable: with at
most 1,000 rows per side, KS (numeric) or chi-square (categorical) at p < 0.05; with more, where
every p-value is tiny, the effect sizes decide: Wasserstein ≥ 0.1 reference std, or Jensen–Shannon
distance ≥ 0.1.  Every statistic is computed and reported either way.
"""

from __future__ import annotations

import html
import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from ..jsonsafe import json_number
from . import stats
from .profile import (
    WORKERS,
    CategoricalProfile,
    DriftError,
    NumericProfile,
    Profile,
    build_profile,
    is_numeric,
    is_vector,
    profile_column,
)

SMALL_SAMPLE = 1000
HISTOGRAM_BINS = 20
ECDF_POINTS = 101
TOP_CATEGORIES = 20


@dataclass
class ColumnDrift:
    column: str
    kind: str  # numeric | categorical | embedding
    role: str  # feature | target | prediction
    method: str  # the statistic that decides
    drift: bool
    score: float  # the deciding effect size, for sorting
    statistics: list[stats.Statistic]
    reference_rows: int
    current_rows: int
    reference_nulls: int
    current_nulls: int
    plot: dict = field(default_factory=dict, repr=False)  # small summaries for the widget

    def to_dict(self) -> dict:
        return {
            "column": self.column,
            "kind": self.kind,
            "role": self.role,
            "method": self.method,
            "drift": self.drift,
            "score": json_number(self.score),
            "statistics": [s.to_dict() for s in self.statistics],
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "reference_nulls": self.reference_nulls,
            "current_nulls": self.current_nulls,
            "plot": self.plot,
        }

    def statistic(self, name: str) -> stats.Statistic:
        return next(s for s in self.statistics if s.name == name)


@dataclass
class DriftReport:
    columns: list[ColumnDrift]
    reference_rows: int
    current_rows: int
    drift_share: float
    correction: str | None
    only_in_reference: list[str] = field(default_factory=list)
    only_in_current: list[str] = field(default_factory=list)
    over_time: list[dict] | None = None  # one row per period: {"period", column: score, …}

    @property
    def features(self) -> list[ColumnDrift]:
        return [c for c in self.columns if c.role == "feature"]

    @property
    def share_drifted(self) -> float:
        features = self.features
        return sum(c.drift for c in features) / len(features) if features else 0.0

    @property
    def dataset_drift(self) -> bool:
        return bool(self.features) and self.share_drifted >= self.drift_share

    def column(self, name: str) -> ColumnDrift:
        for c in self.columns:
            if c.column == name:
                return c
        raise KeyError(f"no drift result for column {name!r}")

    def to_dict(self) -> dict:
        return {
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "share_drifted": self.share_drifted,
            "dataset_drift": self.dataset_drift,
            "drift_share": self.drift_share,
            "correction": self.correction,
            "only_in_reference": self.only_in_reference,
            "only_in_current": self.only_in_current,
            "columns": [c.to_dict() for c in self.columns],
            "over_time": self.over_time,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict) -> "DriftReport":
        columns = [
            ColumnDrift(
                c["column"],
                c["kind"],
                c["role"],
                c["method"],
                c["drift"],
                _number(c["score"]),
                [
                    stats.Statistic(
                        s["name"], _number(s["value"]), _number(s["p_value"]), s["threshold"], s["drift"], s["detail"]
                    )
                    for s in c["statistics"]
                ],
                c["reference_rows"],
                c["current_rows"],
                c["reference_nulls"],
                c["current_nulls"],
                c["plot"],
            )
            for c in data["columns"]
        ]
        return cls(
            columns,
            data["reference_rows"],
            data["current_rows"],
            data["drift_share"],
            data["correction"],
            data["only_in_reference"],
            data["only_in_current"],
            data["over_time"],
        )

    def to_frame(self):
        """One row per column, most drifted first (pandas)."""
        import pandas as pd

        rows = []
        for c in self.columns:
            row = {
                "column": c.column,
                "kind": c.kind,
                "role": c.role,
                "drift": c.drift,
                "method": c.method,
                "score": c.score,
            }
            for s in c.statistics:
                row[s.name] = s.value
                if s.p_value is not None:
                    row[f"{s.name}_p_value"] = s.p_value
            rows.append(row)
        return pd.DataFrame(rows)

    def summary(self) -> str:
        drifted = [c.column for c in self.features if c.drift]
        verdict = "dataset drift" if self.dataset_drift else "no dataset drift"
        return (
            f"{verdict}: {len(drifted)} of {len(self.features)} features drifted "
            f"({self.share_drifted:.0%}; threshold {self.drift_share:.0%})"
        )

    def _repr_html_(self) -> str:
        from .widget import report_html

        return report_html(self)

    def _ipython_display_(self) -> None:
        from ..snapshot import NotebookView
        from .widget import drift_widget, report_html

        NotebookView(drift_widget(self), f"<p>{html.escape(self.summary())}</p>{report_html(self)}")._ipython_display_()


def _number(value):
    """The inverse of ``json_number``: JSON strings back to floats."""
    return float(value) if isinstance(value, str) else value


# ---- inputs ----------------------------------------------------------------------------------


def load_frame(data, artifacts=None) -> pl.DataFrame:
    """A polars frame from a frame, a parquet/CSV/JSON path, or a stored dataset version's hash."""
    if isinstance(data, pl.DataFrame):
        return data
    if isinstance(data, pl.LazyFrame):
        return data.collect()
    module = type(data).__module__
    if module.startswith("pandas"):
        import pandas as pd

        if isinstance(data, pd.DataFrame):
            return pl.from_pandas(data)
    if isinstance(data, (str, os.PathLike)):
        text = str(data)
        if len(text) == 64 and all(c in "0123456789abcdef" for c in text) and not Path(text).exists():
            if artifacts is None:
                raise DriftError(f"{text} looks like a dataset version hash, but no artifact store was given")
            import io

            payload = artifacts.get_bytes(text)
            for reader in (pl.read_ipc, pl.read_parquet, pl.read_csv):
                try:
                    return reader(io.BytesIO(payload))
                except Exception:  # try the next format
                    continue
            raise DriftError(f"dataset version {text} is not a table mlops_lab can read")
        path = Path(text).expanduser()
        if not path.exists():
            raise DriftError(f"no such file: {text}")
        suffix = path.suffix.lower()
        readers = {
            ".parquet": pl.read_parquet,
            ".pq": pl.read_parquet,
            ".csv": pl.read_csv,
            ".json": pl.read_json,
            ".jsonl": pl.read_ndjson,
            ".ndjson": pl.read_ndjson,
            ".arrow": pl.read_ipc,
            ".feather": pl.read_ipc,
        }
        if suffix not in readers:
            raise DriftError(f"cannot read {path.name}: use parquet, CSV, JSON or Arrow files")
        return readers[suffix](path)
    raise DriftError(
        f"drift takes pandas or polars frames, file paths or dataset version hashes, "
        f"got {type(data).__module__}.{type(data).__name__}"
    )


def _choose_columns(reference_columns: list[str], current_columns: list[str], columns, timestamp):
    ref_cols, cur_cols = set(reference_columns), set(current_columns)
    if columns is None:
        chosen = [c for c in reference_columns if c in cur_cols and c != timestamp]
    else:
        chosen = list(columns)
        for c in chosen:
            if c not in ref_cols or c not in cur_cols:
                side = "reference" if c not in ref_cols else "current"
                raise DriftError(f"column {c!r} is missing from the {side} data")
    only_ref = sorted(ref_cols - cur_cols - {timestamp})
    only_cur = sorted(cur_cols - ref_cols - {timestamp})
    return chosen, only_ref, only_cur


def _check_types(reference: pl.DataFrame, current: pl.DataFrame, columns: list[str], categorical: set[str]) -> None:
    for c in columns:
        ref_t, cur_t = reference.schema[c], current.schema[c]
        if c in categorical:
            continue
        if is_numeric(ref_t) != is_numeric(cur_t) or is_vector(ref_t) != is_vector(cur_t):
            raise DriftError(
                f"column {c!r} is {ref_t} in the reference but {cur_t} in the current data; "
                f"cast one side, or list it in categorical= to compare the values as categories"
            )


# ---- per column ------------------------------------------------------------------------------


def _numeric_drift(name, role, ref: NumericProfile, cur: NumericProfile, alpha: float) -> ColumnDrift:
    small = max(len(ref.sorted_values), len(cur.sorted_values)) <= SMALL_SAMPLE
    ks = stats.ks(ref.sorted_values, cur.sorted_values, alpha)
    wasserstein = stats.wasserstein_normed(ref.sorted_values, cur.sorted_values, ref.std)
    psi = stats.psi_from_shares(ref.shares, stats.binned_shares(cur.sorted_values, ref.edges))
    deciding = ks if small else wasserstein
    return ColumnDrift(
        name,
        "numeric",
        role,
        deciding.name,
        deciding.drift,
        wasserstein.value,
        [ks, wasserstein, psi],
        ref.rows,
        cur.rows,
        ref.nulls,
        cur.nulls,
        _numeric_plot(ref.sorted_values, cur.sorted_values),
    )


def _numeric_plot(ref: np.ndarray, cur: np.ndarray) -> dict:
    both = np.concatenate([ref[[0, -1]], cur[[0, -1]]])
    low, high = float(both.min()), float(both.max())
    if low == high:
        high = low + 1.0
    edges = np.linspace(low, high, HISTOGRAM_BINS + 1)
    levels = np.linspace(0, 1, ECDF_POINTS)
    return {
        "edges": edges.round(12).tolist(),
        "reference": stats.binned_shares(ref, edges[1:-1]).round(6).tolist(),
        "current": stats.binned_shares(cur, edges[1:-1]).round(6).tolist(),
        "levels": levels.tolist(),
        "reference_quantiles": stats.sorted_quantiles(ref, levels).round(12).tolist(),
        "current_quantiles": stats.sorted_quantiles(cur, levels).round(12).tolist(),
    }


def _categorical_drift(name, role, ref: CategoricalProfile, cur: CategoricalProfile, alpha: float) -> ColumnDrift:
    categories, ref_counts, cur_counts = stats.aligned_counts(ref.counts, cur.counts)
    small = max(ref_counts.sum(), cur_counts.sum()) <= SMALL_SAMPLE
    chi = stats.chi_square(ref_counts, cur_counts, alpha)
    js = stats.jensen_shannon(ref_counts, cur_counts)
    psi = stats.psi_from_shares(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum())
    deciding = chi if small else js
    top = np.argsort(-(ref_counts + cur_counts))[:TOP_CATEGORIES]
    plot = {
        "categories": [str(categories[i]) for i in top],
        "reference": (ref_counts[top] / ref_counts.sum()).round(6).tolist(),
        "current": (cur_counts[top] / cur_counts.sum()).round(6).tolist(),
        "new_categories": [str(c) for c in categories if c not in ref.counts][:TOP_CATEGORIES],
    }
    return ColumnDrift(
        name,
        "categorical",
        role,
        deciding.name,
        deciding.drift,
        js.value,
        [chi, js, psi],
        ref.rows,
        cur.rows,
        ref.nulls,
        cur.nulls,
        plot,
    )


def _embedding_drift(name, role, reference: pl.Series, current: pl.Series, alpha: float, seed: int = 0) -> ColumnDrift:
    ref = _vectors(reference, name)
    cur = _vectors(current, name)
    statistic = stats.mmd(ref, cur, alpha=alpha, seed=seed)
    return ColumnDrift(
        name,
        "embedding",
        role,
        "mmd",
        statistic.drift,
        statistic.value,
        [statistic],
        len(reference),
        len(current),
        reference.null_count(),
        current.null_count(),
        {},
    )


def _vectors(series: pl.Series, name: str) -> np.ndarray:
    values = series.drop_nulls()
    if isinstance(values.dtype, pl.List):
        lengths = values.list.len().unique()
        if len(lengths) > 1:
            raise DriftError(f"embedding column {name!r} holds vectors of different lengths: {sorted(lengths)[:5]}")
        values = values.list.to_array(int(lengths[0]) if len(lengths) else 0)
    return values.to_numpy().astype(np.float64)


# ---- the entry point -------------------------------------------------------------------------


def drift(
    reference,
    current,
    *,
    columns: list[str] | None = None,
    categorical: list[str] | None = None,
    target: str | None = None,
    prediction: str | None = None,
    timestamp: str | None = None,
    period: str = "1d",
    alpha: float = 0.05,
    correction: str | None = None,
    drift_share: float = 0.5,
    reference_profile: Profile | None = None,
    artifacts=None,
) -> DriftReport:
    """Compare ``current`` with ``reference`` (data, or a stored ``Profile``) column by column; see the
    module docstring."""
    if isinstance(reference, Profile):
        reference, reference_profile = None, reference
    if correction not in (None, "bonferroni", "bh"):
        raise DriftError(f"correction must be None, 'bonferroni' or 'bh', got {correction!r}")
    if not 0 < alpha < 1:
        raise DriftError(f"alpha must be between 0 and 1, got {alpha!r}")
    current = load_frame(current, artifacts)
    reference_frame = None if reference_profile is not None else load_frame(reference, artifacts)
    if reference_frame is not None and reference_frame.height == 0:
        raise DriftError("the reference data is empty")
    if current.height == 0:
        raise DriftError("the current data is empty")
    categorical = set(categorical or [])

    if reference_profile is not None:
        categorical |= {c for c, p in reference_profile.columns.items() if isinstance(p, CategoricalProfile)}
        chosen, only_ref, only_cur = _choose_columns(
            list(reference_profile.columns), current.columns, columns, timestamp
        )
    else:
        chosen, only_ref, only_cur = _choose_columns(reference_frame.columns, current.columns, columns, timestamp)
        _check_types(reference_frame, current, chosen, categorical)
    for role, name in (("target", target), ("prediction", prediction)):
        if name is not None and name not in chosen:
            raise DriftError(f"{role} column {name!r} is not in both datasets")
    if timestamp is not None and timestamp not in current.columns:
        raise DriftError(f"timestamp column {timestamp!r} is not in the current data")
    if not chosen:
        raise DriftError("the two datasets share no column to compare")

    vectors = [c for c in chosen if is_vector(current.schema[c])]
    tabular = [c for c in chosen if c not in vectors]
    for c in tabular:
        if not is_numeric(current.schema[c]) and c not in categorical:
            categorical.add(c)
    # Over time needs the whole reference profile; otherwise each column is profiled, compared and
    # dropped in turn, so memory holds a few columns' sorted values, not the whole data set's.
    if reference_profile is None and timestamp is not None:
        reference_profile = build_profile(reference_frame, tabular, categorical)
    roles = {c: ("target" if c == target else "prediction" if c == prediction else "feature") for c in chosen}

    def one(c: str) -> ColumnDrift:
        if reference_profile is not None:
            ref = reference_profile.columns[c]
        else:
            ref = profile_column(reference_frame.get_column(c), c in categorical)
        cur = profile_column(current.get_column(c), c in categorical)
        if isinstance(ref, NumericProfile) != isinstance(cur, NumericProfile):
            raise DriftError(f"column {c!r} is numeric on one side and categorical on the other")
        empty_side = "reference" if ref.rows == ref.nulls else "current" if cur.rows == cur.nulls else None
        if empty_side:
            raise DriftError(f"column {c!r} has no non-null values in the {empty_side} data")
        if isinstance(ref, NumericProfile):
            return _numeric_drift(c, roles[c], ref, cur, alpha)
        return _categorical_drift(c, roles[c], ref, cur, alpha)

    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        results = list(pool.map(one, tabular))
    for c in vectors:
        if reference_frame is None:
            raise DriftError(f"embedding column {c!r} needs the raw reference, not a profile")
        results.append(_embedding_drift(c, roles[c], reference_frame.get_column(c), current.get_column(c), alpha))
    _apply_correction(results, alpha, correction)
    results.sort(key=lambda r: (not r.drift, -(r.score if math.isfinite(r.score) else 1e300)))

    over_time = None
    if timestamp is not None:
        over_time = _over_time(reference_profile, current, timestamp, period, tabular)
    reference_rows = reference_profile.rows if reference_profile is not None else reference_frame.height
    return DriftReport(results, reference_rows, current.height, drift_share, correction, only_ref, only_cur, over_time)


def _apply_correction(results: list[ColumnDrift], alpha: float, correction: str | None) -> None:
    """Multiple-testing correction of the p-value decisions (small samples) across columns."""
    decided_by_p = [r for r in results if r.method in ("ks", "chi_square", "mmd")]
    if correction is None or not decided_by_p:
        return
    flags = stats.corrected_alpha_flags([r.statistic(r.method).p_value for r in decided_by_p], alpha, correction)
    for result, flag in zip(decided_by_p, flags):
        result.drift = bool(flag)


def _over_time(
    ref_profile: Profile, current: pl.DataFrame, timestamp: str, period: str, columns: list[str]
) -> list[dict]:
    """The deciding score of each column in each period of ``current``."""
    if not current.schema[timestamp].is_temporal():
        raise DriftError(f"timestamp column {timestamp!r} must hold dates or times, not {current.schema[timestamp]}")
    periods = []
    ordered = current.sort(timestamp).with_columns(pl.col(timestamp).dt.truncate(period).alias("__period"))
    for (start,), chunk in ordered.group_by("__period", maintain_order=True):
        chunk_profile = build_profile(
            chunk, columns, {c for c, p in ref_profile.columns.items() if isinstance(p, CategoricalProfile)}
        )
        row = {"period": str(start), "rows": chunk.height}
        for c in columns:
            ref, cur = ref_profile.columns[c], chunk_profile.columns[c]
            if cur.rows == cur.nulls:
                row[c] = None
            elif isinstance(ref, NumericProfile):
                row[c] = stats.wasserstein_normed(ref.sorted_values, cur.sorted_values, ref.std).value
            else:
                _, ref_counts, cur_counts = stats.aligned_counts(ref.counts, cur.counts)
                row[c] = stats.jensen_shannon(ref_counts, cur_counts).value
        periods.append(row)
    return periods


def profile(
    reference, *, columns: list[str] | None = None, categorical: list[str] | None = None, artifacts=None
) -> Profile:
    """Profile a reference once, to check many current batches against it."""
    frame = load_frame(reference, artifacts)
    if frame.height == 0:
        raise DriftError("the reference data is empty")
    chosen = columns or [c for c in frame.columns if not is_vector(frame.schema[c])]
    missing = [c for c in chosen if c not in frame.columns]
    if missing:
        raise DriftError(f"columns not in the reference: {missing}")
    categorical = set(categorical or []) | {c for c in chosen if not is_numeric(frame.schema[c])}
    return build_profile(frame, chosen, categorical)


__all__ = ["ColumnDrift", "DriftError", "DriftReport", "drift", "load_frame", "profile"]
