"""Gates a model version passes before promotion: data validation and candidate-vs-Production
evaluation.  Each result is stored on the version (and in its history) and returned.

    ml.validate_data("churn", 4, current_hash, reference=train_hash)
    ml.evaluate("churn", 4, holdout_hash, target="churned",
                thresholds={"accuracy": {"max_regression": 0.01}, "roc_auc": {"min": 0.8}})
    mlops-lab gate churn --candidate 4 --holdout HASH --target churned --threshold accuracy:max_regression=0.01
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from .monitoring import drift, load_frame
from .monitoring.profile import is_numeric
from .registry import Registry, RegistryError

LOWER_IS_BETTER = {"rmse", "mae"}
THRESHOLD_KINDS = {"min", "max", "min_improvement", "min_relative_improvement", "max_regression"}


@dataclass
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class GateResult:
    gate: str
    passed: bool
    checks: list[Check] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    id: str | None = None

    def to_dict(self) -> dict:
        return {
            "gate": self.gate,
            "passed": self.passed,
            "metrics": self.metrics,
            "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in self.checks],
        }

    def summary(self) -> str:
        failed = [c.name for c in self.checks if not c.passed]
        return f"{self.gate} gate {'passed' if self.passed else 'FAILED'}" + (
            f": {', '.join(failed)}" if failed else ""
        )


# ---- data validation -------------------------------------------------------------------------


def data_checks(
    current: pl.DataFrame,
    reference: pl.DataFrame,
    *,
    max_null_increase: float = 0.05,
    range_margin: float = 0.1,
    allow_new_categories: bool = False,
    check_drift: bool = True,
) -> list[Check]:
    checks = []
    missing = [c for c in reference.columns if c not in current.columns]
    checks.append(Check("columns", not missing, f"missing: {missing}" if missing else "all reference columns present"))
    for column in [c for c in reference.columns if c in current.columns]:
        ref, cur = reference.get_column(column), current.get_column(column)
        if ref.dtype != cur.dtype:
            checks.append(Check(f"{column}: dtype", False, f"{cur.dtype}, reference {ref.dtype}"))
            continue
        ref_nulls, cur_nulls = ref.null_count() / max(len(ref), 1), cur.null_count() / max(len(cur), 1)
        checks.append(
            Check(
                f"{column}: nulls",
                cur_nulls <= ref_nulls + max_null_increase,
                f"{cur_nulls:.1%} null, reference {ref_nulls:.1%} (+{max_null_increase:.0%} allowed)",
            )
        )
        if is_numeric(ref.dtype) and ref.drop_nulls().len() and cur.drop_nulls().len():
            low, high = float(ref.min()), float(ref.max())
            slack = (high - low) * range_margin
            seen_low, seen_high = float(cur.min()), float(cur.max())
            checks.append(
                Check(
                    f"{column}: range",
                    low - slack <= seen_low and seen_high <= high + slack,
                    f"[{seen_low:.4g}, {seen_high:.4g}], reference [{low:.4g}, {high:.4g}] ±{range_margin:.0%}",
                )
            )
        elif not is_numeric(ref.dtype):
            new = sorted(
                set(cur.drop_nulls().cast(pl.String).unique()) - set(ref.drop_nulls().cast(pl.String).unique())
            )
            checks.append(
                Check(
                    f"{column}: categories",
                    allow_new_categories or not new,
                    f"new: {new[:10]}" if new else "no new categories",
                )
            )
    if check_drift and not missing:
        report = drift(reference, current)
        for column in report.features:
            checks.append(
                Check(
                    f"{column.column}: distribution",
                    not column.drift,
                    f"{column.method} {column.score:.4g} ({'drift' if column.drift else 'no drift'})",
                )
            )
    return checks


def validate_data(registry: Registry, name: str, version: int, data, reference, **options) -> GateResult:
    artifacts = registry.artifacts
    checks = data_checks(load_frame(data, artifacts), load_frame(reference, artifacts), **options)
    result = GateResult("data", all(c.passed for c in checks), checks)
    result.id = registry.models.add_gate_result(name, version, "data", result.passed, result.to_dict(), registry.user)
    return result


# ---- evaluation ------------------------------------------------------------------------------


def score(model, frame: pl.DataFrame, target: str) -> dict[str, float]:
    """The model's metrics on a labelled frame: classification or regression, by the outputs."""
    from sklearn import metrics

    columns = model.signature.get("input_columns") or [c for c in frame.columns if c != target]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise RegistryError(f"the holdout data lacks the model's input columns {missing}")
    rows = frame.select(columns).to_numpy().astype(np.float32)
    y = frame.get_column(target).to_numpy()
    outputs = model.session.run(None, {model.session.get_inputs()[0].name: rows})
    predicted = np.asarray(outputs[0]).reshape(len(y), -1)[:, 0]
    if len(outputs) > 1 or predicted.dtype.kind in "iub":  # labels (and probabilities): a classifier
        result = {"accuracy": float(metrics.accuracy_score(y, predicted))}
        if len(outputs) > 1 and np.asarray(outputs[1]).ndim == 2 and np.asarray(outputs[1]).shape[1] == 2:
            result["roc_auc"] = float(metrics.roc_auc_score(y, np.asarray(outputs[1])[:, 1]))
        return result
    return {
        "rmse": float(np.sqrt(metrics.mean_squared_error(y, predicted))),
        "mae": float(metrics.mean_absolute_error(y, predicted)),
    }


def threshold_checks(candidate: dict, baseline: dict | None, thresholds: dict[str, dict]) -> list[Check]:
    checks = []
    for metric, rules in thresholds.items():
        unknown = set(rules) - THRESHOLD_KINDS
        if unknown:
            raise RegistryError(f"unknown threshold {sorted(unknown)} for {metric}; use {sorted(THRESHOLD_KINDS)}")
        if metric not in candidate:
            raise RegistryError(f"metric {metric!r} is not computed for this model; it has {sorted(candidate)}")
        value = candidate[metric]
        sign = -1 if metric in LOWER_IS_BETTER else 1  # improvement means higher, or lower for errors
        for kind, limit in rules.items():
            if kind == "min":
                checks.append(Check(f"{metric} >= {limit}", value >= limit, f"{value:.4g}"))
            elif kind == "max":
                checks.append(Check(f"{metric} <= {limit}", value <= limit, f"{value:.4g}"))
            elif baseline is None or metric not in baseline:
                checks.append(Check(f"{metric}: {kind}", True, "no Production version to compare with"))
            else:
                gain = sign * (value - baseline[metric])
                if kind == "min_improvement":
                    passed = gain >= limit
                elif kind == "min_relative_improvement":
                    passed = gain >= limit * abs(baseline[metric])
                else:  # max_regression
                    passed = -gain <= limit
                checks.append(
                    Check(
                        f"{metric}: {kind} {limit}",
                        passed,
                        f"candidate {value:.4g}, Production {baseline[metric]:.4g}, change {gain:+.4g}",
                    )
                )
    return checks


def evaluate(
    registry: Registry, name: str, candidate: int, holdout, *, target: str, thresholds: dict[str, dict]
) -> GateResult:
    """Score the candidate and the Production version on the same pinned holdout; apply thresholds."""
    if not thresholds:
        raise RegistryError("an evaluation gate needs at least one threshold")
    frame = load_frame(holdout, registry.artifacts)
    if target not in frame.columns:
        raise RegistryError(f"the holdout data has no target column {target!r}")
    candidate_metrics = score(registry.load_model(f"{name}/{candidate}"), frame, target)
    production = registry.models.get_model(name).production_version
    baseline = None
    if production is not None and production != candidate:
        baseline = score(registry.load_model(f"{name}/{production}"), frame, target)
    checks = threshold_checks(candidate_metrics, baseline, thresholds)
    result = GateResult(
        "evaluation",
        all(c.passed for c in checks),
        checks,
        {"candidate": candidate_metrics, "production": baseline, "production_version": production},
    )
    result.id = registry.models.add_gate_result(
        name, candidate, "evaluation", result.passed, result.to_dict(), registry.user
    )
    return result


def parse_threshold(text: str) -> tuple[str, str, float]:
    """``accuracy:max_regression=0.01`` → ("accuracy", "max_regression", 0.01)."""
    try:
        metric, rest = text.split(":", 1)
        kind, value = rest.split("=", 1)
        return metric.strip(), kind.strip(), float(value)
    except ValueError:
        raise RegistryError(
            f"threshold {text!r} must look like metric:kind=value, e.g. accuracy:max_regression=0.01"
        ) from None
