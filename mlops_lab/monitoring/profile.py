"""Reference profiles: what drift checks need of a reference, computed once.

Numeric columns keep their sorted non-null values (exact KS and Wasserstein need the whole
empirical distribution), mean, standard deviation, decile edges and bin shares; categorical
columns keep their category counts.  A profile is saved as one blob; later checks against it read
the profile instead of re-reading and re-sorting the reference.
"""

from __future__ import annotations

import io
import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from ..errors import InvalidInputError
from .stats import binned_shares, decile_edges

# Columns worked on at once: sorting and searching release the GIL, and each column in flight
# holds both sides' sorted values, so more workers than cores only costs memory.
WORKERS = max(1, min(2, os.cpu_count() or 1))


class DriftError(InvalidInputError):
    """Drift cannot be computed on this input; the message names the column and the problem."""


@dataclass
class NumericProfile:
    sorted_values: np.ndarray
    nulls: int
    mean: float
    std: float
    edges: np.ndarray
    shares: np.ndarray
    dtype: str

    @property
    def rows(self) -> int:
        return len(self.sorted_values) + self.nulls


@dataclass
class CategoricalProfile:
    counts: dict
    nulls: int
    dtype: str

    @property
    def rows(self) -> int:
        return sum(self.counts.values()) + self.nulls


@dataclass
class Profile:
    columns: dict[str, NumericProfile | CategoricalProfile] = field(default_factory=dict)
    rows: int = 0

    def to_bytes(self) -> bytes:
        """One ``.npz``: arrays per numeric column, a JSON header for the rest."""
        header, arrays = {"rows": self.rows, "columns": {}}, {}
        for i, (name, column) in enumerate(self.columns.items()):
            if isinstance(column, NumericProfile):
                header["columns"][name] = {
                    "kind": "numeric",
                    "nulls": column.nulls,
                    "mean": column.mean,
                    "std": column.std,
                    "dtype": column.dtype,
                    "index": i,
                }
                arrays[f"v{i}"], arrays[f"e{i}"], arrays[f"s{i}"] = column.sorted_values, column.edges, column.shares
            else:
                header["columns"][name] = {
                    "kind": "categorical",
                    "nulls": column.nulls,
                    "dtype": column.dtype,
                    "counts": [[k, v] for k, v in column.counts.items()],
                }
        buffer = io.BytesIO()
        np.savez(buffer, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "Profile":
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            header = json.loads(archive["header"].tobytes())
            profile = cls(rows=header["rows"])
            for name, meta in header["columns"].items():
                if meta["kind"] == "numeric":
                    i = meta["index"]
                    profile.columns[name] = NumericProfile(
                        archive[f"v{i}"],
                        meta["nulls"],
                        meta["mean"],
                        meta["std"],
                        archive[f"e{i}"],
                        archive[f"s{i}"],
                        meta["dtype"],
                    )
                else:
                    profile.columns[name] = CategoricalProfile(
                        {k: v for k, v in meta["counts"]}, meta["nulls"], meta["dtype"]
                    )
        return profile


def is_numeric(dtype: pl.DataType) -> bool:
    return dtype.is_numeric() and dtype != pl.Boolean


def is_vector(dtype: pl.DataType) -> bool:
    return isinstance(dtype, (pl.List, pl.Array))


def profile_column(series: pl.Series, categorical: bool) -> NumericProfile | CategoricalProfile:
    nulls = series.null_count()
    if not categorical and is_numeric(series.dtype):
        values = series.drop_nulls().cast(pl.Float64)
        nan = values.is_nan()
        if nan.any():  # NaN counts as missing, like a null
            nulls += int(nan.sum())
            values = values.filter(~nan)
        sorted_values = values.sort().to_numpy()
        if len(sorted_values) == 0:
            edges = shares = np.array([])
            mean = std = float("nan")
        else:
            edges = decile_edges(sorted_values)
            shares = binned_shares(sorted_values, edges)
            mean, std = float(sorted_values.mean()), float(sorted_values.std())
        return NumericProfile(sorted_values, nulls, mean, std, edges, shares, str(series.dtype))
    counts = series.drop_nulls().cast(pl.String).value_counts()
    return CategoricalProfile(dict(zip(counts[:, 0].to_list(), counts[:, 1].to_list())), nulls, str(series.dtype))


def build_profile(frame: pl.DataFrame, columns: list[str], categorical: set[str]) -> Profile:
    """Profile ``columns`` of ``frame``, a few columns at a time (sorting releases the GIL)."""
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        profiles = list(pool.map(lambda c: profile_column(frame.get_column(c), c in categorical), columns))
    return Profile(dict(zip(columns, profiles)), frame.height)
