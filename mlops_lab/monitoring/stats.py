"""Two-sample drift statistics on sorted arrays and category counts.

Every numeric statistic works from the two samples sorted once (the reference's sorted values are
what a stored profile keeps), so a column costs a sort and a few ``searchsorted`` calls, not three
passes over raw data.  Results equal scipy's: tests compare them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

from ..jsonsafe import json_number

PSI_SHARE_FLOOR = 1e-4
PSI_BANDS = (0.1, 0.25)  # below: no change; between: moderate; above: significant
EXACT_KS_LIMIT = 1_000  # the larger sample size up to which the KS p-value is exact


@dataclass(frozen=True)
class Statistic:
    """One test's result.  ``drift`` compares ``value`` (or ``p_value``) with ``threshold``."""

    name: str
    value: float
    p_value: float | None
    threshold: float
    drift: bool
    detail: str = ""

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "value": json_number(self.value),
            "p_value": json_number(self.p_value),
            "threshold": self.threshold,
            "drift": self.drift,
            "detail": self.detail,
        }


# ---- numeric ---------------------------------------------------------------------------------


def _cdf_counts_at_own_points(sorted_values: np.ndarray) -> np.ndarray:
    """For each element of a sorted array, how many elements are <= it (ties count to the last)."""
    if len(sorted_values) > 1 and (sorted_values[1:] == sorted_values[:-1]).any():
        return np.searchsorted(sorted_values, sorted_values, side="right")
    return np.arange(1, len(sorted_values) + 1)  # no ties: the position itself


def sorted_quantiles(sorted_values: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """``np.quantile`` (linear interpolation) for an already sorted array, without re-partitioning."""
    position = levels * (len(sorted_values) - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, len(sorted_values) - 1)
    fraction = position - low
    return sorted_values[low] * (1 - fraction) + sorted_values[high] * fraction


def ks(reference_sorted: np.ndarray, current_sorted: np.ndarray, alpha: float = 0.05) -> Statistic:
    """Two-sample Kolmogorov–Smirnov: exact p-value for small samples, asymptotic for large."""
    n, m = len(reference_sorted), len(current_sorted)
    # The right-continuous empirical CDFs at every observed value; the largest gap is D.
    gap_at_ref = (
        _cdf_counts_at_own_points(reference_sorted) / n - np.searchsorted(current_sorted, reference_sorted, "right") / m
    )
    gap_at_cur = (
        np.searchsorted(reference_sorted, current_sorted, "right") / n - _cdf_counts_at_own_points(current_sorted) / m
    )
    d = float(max(np.abs(gap_at_ref).max(), np.abs(gap_at_cur).max()))
    if max(n, m) <= EXACT_KS_LIMIT:
        p_value = float(stats.ks_2samp(reference_sorted, current_sorted, method="exact").pvalue)
        detail = "exact p-value"
    else:
        p_value = float(stats.kstwo.sf(d, np.round(n * m / (n + m))))
        detail = "asymptotic p-value"
    return Statistic("ks", d, p_value, alpha, p_value < alpha, detail)


def wasserstein_normed(
    reference_sorted: np.ndarray, current_sorted: np.ndarray, reference_std: float, threshold: float = 0.1
) -> Statistic:
    """Earth mover's distance between the two samples, in units of the reference's std (ddof=0)."""
    # W1 is the area between the two quantile functions. On the common grid of levels i/n and j/m
    # (kept as integers i*m and j*n, so no rounding), both quantile functions are steps.
    n, m = len(reference_sorted), len(current_sorted)
    if n == m:  # the quantile functions share one grid: the mean gap of the sorted samples
        distance = float(np.abs(reference_sorted - current_sorted).mean())
        return _normed(distance, reference_std, threshold)
    levels = np.concatenate([np.arange(1, n + 1, dtype=np.int64) * m, np.arange(1, m + 1, dtype=np.int64) * n])
    levels.sort(kind="stable")
    widths = np.diff(levels, prepend=0)
    gaps = np.abs(reference_sorted[(levels + m - 1) // m - 1] - current_sorted[(levels + n - 1) // n - 1])
    distance = float(np.dot(widths, gaps) / (n * m))
    return _normed(distance, reference_std, threshold)


def _normed(distance: float, reference_std: float, threshold: float) -> Statistic:
    if reference_std > 0:
        value = distance / reference_std
        detail = "distance / reference std"
    else:  # a constant reference: any movement at all is infinitely many standard deviations
        value = 0.0 if distance == 0 else math.inf
        detail = "constant reference"
    return Statistic("wasserstein", value, None, threshold, value >= threshold, detail)


def decile_edges(reference_sorted: np.ndarray) -> np.ndarray:
    """Inner bin edges at the reference's deciles (duplicates removed); outer bins are open."""
    return np.unique(sorted_quantiles(reference_sorted, np.linspace(0.1, 0.9, 9)))


def binned_shares(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of values in (-inf, e0], (e0, e1], …, (e_last, inf)."""
    counts = np.diff(np.concatenate([[0], np.searchsorted(sorted_values, edges, side="right"), [len(sorted_values)]]))
    return counts / len(sorted_values)


def psi_from_shares(reference: np.ndarray, current: np.ndarray, threshold: float = 0.1) -> Statistic:
    ref = np.clip(reference, PSI_SHARE_FLOOR, None)
    cur = np.clip(current, PSI_SHARE_FLOOR, None)
    value = float(np.sum((cur - ref) * np.log(cur / ref)))
    band = "no change" if value < PSI_BANDS[0] else "moderate" if value < PSI_BANDS[1] else "significant"
    return Statistic("psi", value, None, threshold, value >= threshold, band)


# ---- categorical -----------------------------------------------------------------------------


def aligned_counts(reference: dict, current: dict) -> tuple[list, np.ndarray, np.ndarray]:
    """Counts of both samples over the union of categories (new ones count 0 in the reference)."""
    categories = sorted(set(reference) | set(current), key=lambda c: (c is None, str(c)))
    return (
        categories,
        np.array([reference.get(c, 0) for c in categories], dtype=float),
        np.array([current.get(c, 0) for c in categories], dtype=float),
    )


def chi_square(reference_counts: np.ndarray, current_counts: np.ndarray, alpha: float = 0.05) -> Statistic:
    """Chi-square test of homogeneity on the 2×K table (no continuity correction)."""
    table = np.vstack([reference_counts, current_counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return Statistic("chi_square", 0.0, 1.0, alpha, False, "a single category on both sides")
    result = stats.chi2_contingency(table, correction=False)
    p_value = float(result.pvalue)
    return Statistic(
        "chi_square",
        float(result.statistic),
        p_value,
        alpha,
        p_value < alpha,
        f"{table.shape[1] - 1} degrees of freedom",
    )


def jensen_shannon(reference_counts: np.ndarray, current_counts: np.ndarray, threshold: float = 0.1) -> Statistic:
    """Jensen–Shannon distance (the square root of the divergence) in base 2: from 0 to 1."""
    value = float(
        jensenshannon(reference_counts / reference_counts.sum(), current_counts / current_counts.sum(), base=2)
    )
    return Statistic("jensen_shannon", value, None, threshold, value >= threshold, "distance, base 2")


# ---- many columns ----------------------------------------------------------------------------


def corrected_alpha_flags(p_values: list[float], alpha: float, correction: str | None) -> list[bool]:
    """Which p-values reject at ``alpha`` after a multiple-testing correction."""
    if not p_values:
        return []
    p = np.asarray(p_values, dtype=float)
    if correction is None:
        return list(p < alpha)
    if correction == "bonferroni":
        return list(p < alpha / len(p))
    if correction in ("bh", "benjamini-hochberg"):
        return list(stats.false_discovery_control(p, method="bh") < alpha)
    raise ValueError(f"correction must be None, 'bonferroni' or 'bh', got {correction!r}")


# ---- embeddings ------------------------------------------------------------------------------


def mmd(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    alpha: float = 0.05,
    max_rows: int = 1000,
    permutations: int = 100,
    seed: int = 0,
) -> Statistic:
    """Maximum mean discrepancy with an RBF kernel (median heuristic bandwidth) on a subsample of
    each side, with a permutation test for the p-value."""
    rng = np.random.default_rng(seed)
    if reference.ndim != 2 or current.ndim != 2 or reference.shape[1] != current.shape[1]:
        raise ValueError(f"embeddings must be 2-D with the same width, got {reference.shape} and {current.shape}")
    ref = reference[rng.permutation(len(reference))[:max_rows]]
    cur = current[rng.permutation(len(current))[:max_rows]]
    pooled = np.vstack([ref, cur])
    squared = np.sum(pooled**2, axis=1)
    distances = np.maximum(squared[:, None] + squared[None, :] - 2 * pooled @ pooled.T, 0)
    median = np.median(distances[np.triu_indices(len(pooled), k=1)])
    kernel = np.exp(-distances / (median if median > 0 else 1.0))
    n = len(ref)

    def statistic(order: np.ndarray) -> float:
        k = kernel[np.ix_(order, order)]
        x, y = k[:n, :n], k[n:, n:]
        return (
            (x.sum() - np.trace(x)) / (n * (n - 1))
            + (y.sum() - np.trace(y)) / (len(cur) * (len(cur) - 1))
            - 2 * k[:n, n:].mean()
        )

    observed = statistic(np.arange(len(pooled)))
    null = [statistic(rng.permutation(len(pooled))) for _ in range(permutations)]
    p_value = (1 + sum(v >= observed for v in null)) / (1 + permutations)
    return Statistic(
        "mmd",
        float(observed),
        float(p_value),
        alpha,
        p_value < alpha,
        f"RBF kernel, median heuristic, {len(ref)}+{len(cur)} rows, {permutations} permutations",
    )
