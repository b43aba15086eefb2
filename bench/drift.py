"""Drift speed and memory, mlops_lab against Evidently's DataDriftPreset, on the same files.

    .venv/bin/python bench/drift.py [--rows 1000000] [--wide-columns 200]

Evidently runs in its own environment (bench/.venv-evidently, made on first use: it pins pandas
below what the project uses).  Each side runs in its own process and reads the same parquet files;
time and peak memory are measured around the drift call only (memory above what was loaded,
sampled from /proc every 5 ms).  Not a test: it prints figures and ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from measure import MEASURE

HERE = Path(__file__).parent
EVIDENTLY_VENV = HERE / ".venv-evidently"

OURS = MEASURE + textwrap.dedent("""
    import json, sys
    import polars as pl
    from mlops_lab.monitoring import drift, profile
    ref, cur = pl.read_parquet(sys.argv[1]), pl.read_parquet(sys.argv[2])
    categorical = [c for c in ref.columns if c.startswith("cat")]
    drift(ref.head(1000), cur.head(1000))  # warm-up: imports, thread pool
    with Peak() as first:
        report = drift(ref, cur, categorical=categorical)
    with Peak() as profiling:
        reference_profile = profile(ref, categorical=categorical)
    with Peak() as second:
        again = drift(None, cur, reference_profile=reference_profile)
    assert again.to_dict()["columns"] == report.to_dict()["columns"]
    print(json.dumps({"seconds": first.seconds, "extra_mb": first.extra_mb, "profile_seconds": profiling.seconds,
                      "with_profile_seconds": second.seconds, "drifted": sorted(c.column for c in report.columns if c.drift)}))
""")

THEIRS = MEASURE + textwrap.dedent("""
    import json, sys
    import pandas as pd
    from evidently import Report
    from evidently.presets import DataDriftPreset
    ref, cur = pd.read_parquet(sys.argv[1]), pd.read_parquet(sys.argv[2])
    with Peak() as run:
        result = Report([DataDriftPreset()]).run(reference_data=ref, current_data=cur)
        drifted = []
        for metric in result.dict()["metrics"]:
            config = metric.get("config", {})
            value = metric.get("value")
            column = config.get("column")
            threshold = config.get("threshold")
            if column and isinstance(value, (int, float)) and threshold is not None:
                method = config.get("method", "")
                is_p = "p_value" in method or method in ("K-S p_value", "chi-square p_value")
                if (value < threshold) if is_p else (value >= threshold):
                    drifted.append(column)
    import evidently
    print(json.dumps({"seconds": run.seconds, "extra_mb": run.extra_mb, "drifted": sorted(set(drifted)),
                      "version": evidently.__version__}))
""")

WIDE = MEASURE + textwrap.dedent("""
    import json, sys
    import polars as pl
    from mlops_lab.monitoring import drift
    ref, cur = pl.read_parquet(sys.argv[1]), pl.read_parquet(sys.argv[2])
    with Peak() as run:
        report = drift(ref, cur)
    print(json.dumps({"seconds": run.seconds, "extra_mb": run.extra_mb, "columns": len(report.columns)}))
""")


def make_data(folder: Path, rows: int, numeric: int, categorical: int, seed: int = 0) -> tuple[Path, Path]:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)

    def frame(shifted: bool) -> pl.DataFrame:
        columns = {}
        for i in range(numeric):
            shift = 0.3 if shifted and i % 4 == 0 else 0.0  # every fourth numeric column moves
            columns[f"num{i}"] = rng.normal(shift, 1.0 + (0.5 if shifted and i % 4 == 1 else 0), rows)
        for i in range(categorical):
            k = 5 + 10 * i
            p = np.ones(k) / k
            if shifted and i % 2 == 0:
                p = np.linspace(1, 3, k)
                p /= p.sum()
            columns[f"cat{i}"] = rng.choice([f"c{j}" for j in range(k)], rows, p=p)
        return pl.DataFrame(columns)

    ref, cur = folder / f"ref_{numeric}.parquet", folder / f"cur_{numeric}.parquet"
    frame(False).write_parquet(ref)
    frame(True).write_parquet(cur)
    return ref, cur


def ensure_evidently() -> Path:
    python = EVIDENTLY_VENV / "bin" / "python"
    if not python.exists():
        print("creating bench/.venv-evidently with Evidently (first run only)…", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(EVIDENTLY_VENV)], check=True)
        subprocess.run([str(EVIDENTLY_VENV / "bin" / "pip"), "install", "-q", "evidently", "pandas<3"], check=True)
    return python


def run(python: str, script: str, *args) -> dict:
    result = subprocess.run([python, "-c", script, *map(str, args)], capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise SystemExit(f"benchmark side failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--wide-columns", type=int, default=200)
    parser.add_argument("--skip-evidently", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        ref, cur = make_data(Path(folder), args.rows, 20, 5)
        ours = run(sys.executable, OURS, ref, cur)
        theirs = None if args.skip_evidently else run(str(ensure_evidently()), THEIRS, ref, cur)
        wide_ref, wide_cur = make_data(Path(folder), args.rows, args.wide_columns, 0, seed=1)
        wide = run(sys.executable, WIDE, wide_ref, wide_cur)

    print(f"\nDrift benchmark: {args.rows:,} rows x 25 columns (20 numeric, 5 categorical), reference and current\n")
    print(f"{'':32} {'mlops_lab':>12} {'Evidently':>12} {'ratio':>8}")
    if theirs:
        ratio = theirs["seconds"] / ours["seconds"]
        print(
            f"{'time':32} {ours['seconds']:>11.2f}s {theirs['seconds']:>11.2f}s {ratio:>7.1f}x  "
            f"(goal >= 50x: {'met' if ratio >= 50 else 'NOT MET'}; Evidently {theirs['version']})"
        )
        print(
            f"{'peak memory above loaded data':32} {ours['extra_mb']:>10.0f}MB {theirs['extra_mb']:>10.0f}MB "
            f"          (goal <= 200 MB: {'met' if ours['extra_mb'] <= 200 else 'NOT MET'})"
        )
        print(f"{'drifted columns':32} {len(ours['drifted']):>12} {len(theirs['drifted']):>12}")
        if ours["drifted"] != theirs["drifted"]:
            print(
                f"  differ: only ours {sorted(set(ours['drifted']) - set(theirs['drifted']))}, "
                f"only Evidently {sorted(set(theirs['drifted']) - set(ours['drifted']))}"
            )
    else:
        print(f"{'time':32} {ours['seconds']:>11.2f}s  (Evidently skipped)")
        print(f"{'peak memory above loaded data':32} {ours['extra_mb']:>10.0f}MB")
    print(
        f"\nprofiling the reference once: {ours['profile_seconds']:.2f} s; a check against the stored profile: "
        f"{ours['with_profile_seconds']:.2f} s (the first check: {ours['seconds']:.2f} s)"
    )
    print(
        f"{args.rows:,} rows x {wide['columns']} numeric columns: {wide['seconds']:.2f} s, "
        f"peak {wide['extra_mb']:.0f} MB above the loaded data"
    )


if __name__ == "__main__":
    main()
