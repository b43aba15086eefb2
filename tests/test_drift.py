"""Drift statistics against scipy and direct computations; reports, profiles and bad input."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

import mlops_lab as ml
from mlops_lab.monitoring import DriftError, DriftReport, drift, profile, stats


@pytest.mark.parametrize(
    "n, m, decimals", [(20, 30, 1), (500, 700, 2), (900, 1000, None), (5000, 4000, None), (3, 3, 0)]
)
def test_ks_and_wasserstein_equal_scipy(n, m, decimals):
    rng = np.random.default_rng(n)
    a, b = rng.normal(size=n), rng.normal(0.2, 1.3, size=m)
    if decimals is not None:  # ties
        a, b = a.round(decimals), b.round(decimals)
    a, b = np.sort(a), np.sort(b)
    exact = max(n, m) <= stats.EXACT_KS_LIMIT
    ours, theirs = stats.ks(a, b), sps.ks_2samp(a, b, method="exact" if exact else "asymp")
    assert abs(ours.value - theirs.statistic) < 1e-12
    assert ours.p_value == pytest.approx(theirs.pvalue, rel=1e-2, abs=1e-12)
    assert ours.detail == ("exact p-value" if exact else "asymptotic p-value")
    w = stats.wasserstein_normed(a, b, a.std())
    assert abs(w.value - sps.wasserstein_distance(a, b) / a.std()) < 1e-9


def test_psi_matches_the_direct_formula():
    rng = np.random.default_rng(1)
    ref, cur = np.sort(rng.normal(size=10_000)), np.sort(rng.normal(0.3, 1, size=8_000))
    edges = np.quantile(ref, np.linspace(0.1, 0.9, 9))
    bins = np.concatenate([[-np.inf], edges, [np.inf]])
    ref_share = np.clip(np.histogram(ref, bins)[0] / len(ref), 1e-4, None)
    cur_share = np.clip(np.histogram(cur, bins)[0] / len(cur), 1e-4, None)
    expected = np.sum((cur_share - ref_share) * np.log(cur_share / ref_share))
    # np.histogram's bins are closed on the left, ours on the right: equal for continuous data.
    result = stats.psi_from_shares(
        stats.binned_shares(ref, stats.decile_edges(ref)), stats.binned_shares(cur, stats.decile_edges(ref))
    )
    assert result.value == pytest.approx(expected, rel=1e-9)
    assert result.detail == (
        "moderate" if 0.1 <= expected < 0.25 else "significant" if expected >= 0.25 else "no change"
    )


def test_chi_square_js_and_categorical_psi_equal_direct_computations():
    ref = {"a": 50, "b": 30, "c": 20}
    cur = {"a": 40, "b": 30, "d": 30}  # c vanished, d is new
    categories, r, c = stats.aligned_counts(ref, cur)
    assert categories == ["a", "b", "c", "d"]
    chi = stats.chi_square(r, c)
    expected = sps.chi2_contingency(np.array([[50, 30, 20, 0], [40, 30, 0, 30]]), correction=False)
    assert chi.value == pytest.approx(expected.statistic) and chi.p_value == pytest.approx(expected.pvalue)
    js = stats.jensen_shannon(r, c)
    assert js.value == pytest.approx(jensenshannon(r / r.sum(), c / c.sum(), base=2))
    assert 0 <= js.value <= 1 and js.detail == "distance, base 2"
    single = stats.chi_square(np.array([10.0]), np.array([5.0]))
    assert single.p_value == 1.0 and not single.drift


def test_constant_and_tied_columns_have_defined_results():
    same = drift(pl.DataFrame({"x": [1.0] * 50}), pl.DataFrame({"x": [1.0] * 60}))
    assert same.column("x").statistic("wasserstein").value == 0 and not same.column("x").drift
    moved = drift(pl.DataFrame({"x": [1.0] * 50}), pl.DataFrame({"x": [2.0] * 60}))
    assert moved.column("x").statistic("wasserstein").value == math.inf and moved.column("x").drift
    assert moved.to_dict()["columns"][0]["score"] == "Infinity"  # JSON has no infinity


def test_nulls_are_counted_and_left_out_of_the_tests():
    ref = pl.DataFrame({"x": [1.0, 2.0, None, 3.0, float("nan")] * 40})
    cur = pl.DataFrame({"x": [1.0, 2.0, 3.0, None] * 50})
    column = drift(ref, cur).column("x")
    assert (column.reference_nulls, column.current_nulls) == (80, 50)
    assert column.statistic("ks").value == 0


def test_finds_shifted_columns_and_only_those():
    rng = np.random.default_rng(7)
    n = 20_000
    ref = pd.DataFrame({f"f{i}": rng.normal(size=n) for i in range(6)} | {"city": rng.choice(list("abc"), n)})
    cur = pd.DataFrame({f"f{i}": rng.normal(size=n) for i in range(6)} | {"city": rng.choice(list("abc"), n)})
    cur["f1"] += 0.5
    cur["f4"] *= 2
    cur["city"] = rng.choice(list("abd"), n, p=[0.6, 0.2, 0.2])
    report = drift(ref, cur)
    assert {c.column for c in report.columns if c.drift} == {"f1", "f4", "city"}
    assert report.columns[0].drift and not report.columns[-1].drift  # most drifted first
    assert report.share_drifted == pytest.approx(3 / 7)
    assert "new_categories" in report.column("city").plot and "d" in report.column("city").plot["new_categories"]


def test_false_positive_rate_stays_near_alpha():
    rng = np.random.default_rng(11)
    flags = []
    for _ in range(200):  # small samples: KS decides, at alpha 0.05
        a = pl.DataFrame({"x": rng.normal(size=200)})
        b = pl.DataFrame({"x": rng.normal(size=200)})
        flags.append(drift(a, b).column("x").drift)
    assert 0.01 <= np.mean(flags) <= 0.10


def test_corrections_reduce_false_alarms():
    rng = np.random.default_rng(3)
    ref = pl.DataFrame({f"c{i}": rng.normal(size=300) for i in range(40)})
    cur = pl.DataFrame({f"c{i}": rng.normal(size=300) for i in range(40)})
    plain = sum(c.drift for c in drift(ref, cur).columns)
    bonferroni = sum(c.drift for c in drift(ref, cur, correction="bonferroni").columns)
    bh = sum(c.drift for c in drift(ref, cur, correction="bh").columns)
    assert bonferroni <= bh <= plain
    p_values = [0.001, 0.02, 0.04, 0.3]
    assert stats.corrected_alpha_flags(p_values, 0.05, None) == [True, True, True, False]
    assert stats.corrected_alpha_flags(p_values, 0.05, "bonferroni") == [True, False, False, False]
    assert stats.corrected_alpha_flags(p_values, 0.05, "bh") == [True, True, False, False]


def test_target_prediction_and_over_time():
    rng = np.random.default_rng(5)
    n = 3 * 1440  # three days of one row a minute
    ref = pl.DataFrame({"x": rng.normal(size=n), "label": rng.integers(0, 2, n), "score": rng.random(n)})
    times = pl.datetime_range(pl.datetime(2026, 1, 1), pl.datetime(2026, 1, 3, 23, 59), "1m", eager=True)[:n]
    cur = pl.DataFrame(
        {
            "x": np.concatenate([rng.normal(size=1440), rng.normal(1.0, 1, size=n - 1440)]),
            "label": rng.integers(0, 2, n),
            "score": rng.random(n) ** 2,
            "ts": times,
        }
    )
    report = drift(ref, cur, target="label", prediction="score", categorical=["label"], timestamp="ts")
    assert report.column("label").role == "target" and report.column("score").role == "prediction"
    assert report.column("score").drift and [c.column for c in report.features] == ["x"]
    periods = report.over_time
    assert [p["period"][:10] for p in periods] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert periods[0]["x"] < 0.2 < periods[-1]["x"]  # the shift arrives on the second day


def test_embeddings_with_mmd():
    rng = np.random.default_rng(9)
    ref = pl.DataFrame({"emb": rng.normal(size=(300, 8)).tolist()})
    same = pl.DataFrame({"emb": rng.normal(size=(300, 8)).tolist()})
    moved = pl.DataFrame({"emb": (rng.normal(size=(300, 8)) + 0.5).tolist()})
    assert not drift(ref, same).column("emb").drift
    result = drift(ref, moved).column("emb")
    assert result.kind == "embedding" and result.drift and result.statistic("mmd").p_value < 0.05


@pytest.mark.parametrize(
    "reference, current, kwargs, message",
    [
        (pl.DataFrame({"x": []}, schema={"x": pl.Float64}), pl.DataFrame({"x": [1.0]}), {}, "reference data is empty"),
        (pl.DataFrame({"x": [1.0]}), pl.DataFrame({"x": []}, schema={"x": pl.Float64}), {}, "current data is empty"),
        (pl.DataFrame({"x": [1.0]}), pl.DataFrame({"x": ["a"]}), {}, "Float64 in the reference but String"),
        (pl.DataFrame({"x": [1.0]}), pl.DataFrame({"y": [1.0]}), {}, "share no column"),
        (
            pl.DataFrame({"x": [1.0]}),
            pl.DataFrame({"x": [1.0]}),
            {"columns": ["y"]},
            "'y' is missing from the reference",
        ),
        (pl.DataFrame({"x": [1.0]}), pl.DataFrame({"x": [None]}, schema={"x": pl.Float64}), {}, "no non-null values"),
        (pl.DataFrame({"x": [1.0]}), pl.DataFrame({"x": [1.0]}), {"correction": "magic"}, "correction must be"),
        (pl.DataFrame({"x": [1.0]}), pl.DataFrame({"x": [1.0]}), {"target": "t"}, "target column 't'"),
        (pl.DataFrame({"x": [1.0]}), pl.DataFrame({"x": [1.0]}), {"timestamp": "ts"}, "timestamp column 'ts'"),
        ("/no/such/file.parquet", pl.DataFrame({"x": [1.0]}), {}, "no such file"),
        ([1, 2, 3], pl.DataFrame({"x": [1.0]}), {}, "drift takes pandas or polars frames"),
    ],
)
def test_bad_input_gives_a_clear_error(reference, current, kwargs, message):
    with pytest.raises(DriftError, match=message):
        drift(reference, current, **kwargs)


def test_mismatched_types_compare_as_categories_when_asked():
    report = drift(pl.DataFrame({"x": [1, 2, 3] * 10}), pl.DataFrame({"x": ["1", "2", "4"] * 10}), categorical=["x"])
    assert report.column("x").kind == "categorical" and report.column("x").drift


def test_profile_round_trip_gives_the_same_report(tmp_path):
    rng = np.random.default_rng(2)
    ref = pl.DataFrame({"a": rng.normal(size=5000), "c": rng.choice(["u", "v"], 5000)})
    cur = pl.DataFrame({"a": rng.normal(0.2, 1, size=4000), "c": rng.choice(["u", "v", "w"], 4000)})
    ref.write_parquet(tmp_path / "ref.parquet")
    direct = drift(tmp_path / "ref.parquet", cur)
    stored = profile(ref)
    again = type(stored).from_bytes(stored.to_bytes())
    via_profile = drift(None, cur, reference_profile=again)
    assert via_profile.to_dict() == direct.to_dict()


def test_reports_and_profiles_are_stored_and_linked(tracker, tmp_path):
    rng = np.random.default_rng(4)
    ref = pd.DataFrame({"a": rng.normal(size=2000)})
    cur = pd.DataFrame({"a": rng.normal(1, 1, size=2000)})
    reference_profile, digest = ml.drift_profile(ref, save=True)
    report = ml.drift(ml.load_profile(digest), cur)
    assert isinstance(report, DriftReport) and report.column("a").drift
    report_id = ml.save_drift_report(report, "nightly", reference=digest, model="churn/3", deployment="churn-prod")
    listed = ml.drift_reports()
    assert list(listed["id"]) == [report_id]
    row = listed.iloc[0]
    assert (row["model_name"], row["model_version"], row["deployment"]) == ("churn", "3", "churn-prod")
    assert row["drifted_columns"] == ["a"] and row["dataset_drift"]
    assert ml.load_drift_report(report_id).to_dict() == report.to_dict()
    with pytest.raises(ValueError, match="needs a name"):
        ml.save_drift_report(report, "")
    assert len(ml.drift_reports()) == 1


def test_dataset_versions_can_be_compared(tracker):
    frame = pd.DataFrame({"a": np.arange(100.0)})
    with ml.start_run() as run:
        ml.log_dataset(frame, "train")
    digest = ml.get_run(run.id).datasets[0]["hash"]
    assert not ml.drift(digest, frame).column("a").drift


def test_widget_and_html_render(tracker):
    import ipywidgets

    rng = np.random.default_rng(6)
    report = drift(
        pl.DataFrame({"a": rng.normal(size=500), "c": rng.choice(["x", "y"], 500)}),
        pl.DataFrame({"a": rng.normal(1, 1, size=500), "c": rng.choice(["x", "z"], 500)}),
    )
    page = report._repr_html_()
    assert "<svg" in page and "Jensen–Shannon distance in base 2" in page and "<td>a</td>" in page
    widget = __import__("mlops_lab.monitoring.widget", fromlist=["drift_widget"]).drift_widget(report)
    assert isinstance(widget, ipywidgets.VBox) and len(widget.children) == 3
    from mlops_lab.monitoring.widget import column_figure

    figure = column_figure(report.column("a"))
    assert [trace.name for trace in figure.data] == ["reference", "current", "reference ECDF", "current ECDF"]


def test_performance_per_period_for_classification_and_regression():
    from mlops_lab.monitoring import performance

    rng = np.random.default_rng(8)
    n = 2 * 1440
    times = pl.datetime_range(pl.datetime(2026, 3, 1), pl.datetime(2026, 3, 2, 23, 59), "1m", eager=True)[:n]
    y = rng.integers(0, 2, n)
    good = np.clip(y * 0.8 + rng.random(n) * 0.2, 0, 1)
    noisy = rng.random(n)
    score = np.concatenate([good[:1440], noisy[1440:]])  # the model degrades on day two
    frame = pl.DataFrame({"ts": times, "label": y, "score": score, "label_late": [None] * 10 + list(y[10:])})
    rows = performance(frame, target="label", prediction="score", timestamp="ts")
    assert [r["rows"] for r in rows] == [1440, 1440]
    assert rows[0]["roc_auc"] > 0.95 > 0.6 > rows[1]["roc_auc"] and rows[0]["accuracy"] > rows[1]["accuracy"]
    late = performance(frame, target="label_late", prediction="score", timestamp="ts")
    assert late[0]["rows"] == 1430  # rows without a label yet are left out
    reg = performance(
        pl.DataFrame({"ts": times, "y": np.arange(n, dtype=float), "p": np.arange(n) + 2.0}),
        target="y",
        prediction="p",
        timestamp="ts",
    )
    assert reg[0]["rmse"] == pytest.approx(2.0) and reg[0]["mae"] == pytest.approx(2.0)
    with pytest.raises(DriftError, match="'missing' is not in the data"):
        performance(frame, target="missing", prediction="score", timestamp="ts")
    with pytest.raises(DriftError, match="must hold dates or times"):
        performance(frame, target="label", prediction="score", timestamp="label")
