"""Feature store speed: point-in-time join, online lookups, re-hashing an unchanged large file.

    .venv/bin/python bench/features.py [--entities 1000000] [--feature-rows 10000000]

The point-in-time join (1M entity rows against a 10M-row feature view, 3 features) is compared in
the same run with Feast's `get_historical_features` on its local offline store when Feast can be
installed in bench/.venv-feast, and always with a plain pandas `merge_asof` (the textbook way).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from measure import MEASURE

HERE = Path(__file__).parent

OURS = MEASURE + textwrap.dedent("""
    import json, sys
    import polars as pl
    import mlops_lab as ml
    from mlops_lab.features import Entity, FeatureView
    folder, features, entities = sys.argv[1:4]
    store = ml.feature_store(folder + "/fs")
    store.apply(Entity("customer", ["customer_id"]),
                FeatureView("activity", ["customer"], features, "event_time", ["f1", "f2", "f3"]))
    rows = pl.read_parquet(entities)
    with Peak() as run:
        joined = store.get_historical_features(rows, ["activity:f1", "activity:f2", "activity:f3"])
    print(json.dumps({"seconds": run.seconds, "extra_mb": run.extra_mb, "rows": joined.height,
                      "checksum": float(joined["f1"].fill_null(0).sum())}))
""")

PANDAS = MEASURE + textwrap.dedent("""
    import json, sys
    import pandas as pd
    folder, features, entities = sys.argv[1:4]
    rows = pd.read_parquet(entities)
    with Peak() as run:  # reading the feature data counts, as it does for the feature stores
        values = pd.read_parquet(features)
        joined = pd.merge_asof(rows.sort_values("event_time"), values.sort_values("event_time"), on="event_time",
                               by="customer_id", direction="backward")
    print(json.dumps({"seconds": run.seconds, "extra_mb": run.extra_mb, "rows": len(joined),
                      "checksum": float(joined["f1"].fillna(0).sum())}))
""")

FEAST = MEASURE + textwrap.dedent("""
    import json, sys, os
    from datetime import timedelta
    import pandas as pd
    from feast import Entity, FeatureStore, FeatureView, Field, FileSource, ValueType
    from feast.types import Float64
    folder, features, entities = sys.argv[1:4]
    repo = folder + "/feast_repo"
    os.makedirs(repo, exist_ok=True)
    open(repo + "/feature_store.yaml", "w").write(
        "project: bench\\nregistry: " + repo + "/registry.db\\nprovider: local\\n"
        "online_store:\\n  type: sqlite\\n  path: " + repo + "/online.db\\nentity_key_serialization_version: 3\\n")
    store = FeatureStore(repo_path=repo)
    customer = Entity(name="customer", join_keys=["customer_id"], value_type=ValueType.INT64)
    source = FileSource(path=features, timestamp_field="event_time")
    view = FeatureView(name="activity", entities=[customer], ttl=timedelta(days=3650), source=source,
                       schema=[Field(name=f, dtype=Float64) for f in ("f1", "f2", "f3")])
    store.apply([customer, view])
    rows = pd.read_parquet(entities)
    with Peak() as run:
        joined = store.get_historical_features(entity_df=rows, features=["activity:f1", "activity:f2", "activity:f3"]).to_df()
    print(json.dumps({"seconds": run.seconds, "extra_mb": run.extra_mb, "rows": len(joined),
                      "checksum": float(joined["f1"].fillna(0).sum())}))
""")


def make_data(folder: Path, entities: int, feature_rows: int) -> tuple[str, str]:
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(0)
    customers = max(1, feature_rows // 100)
    start = np.datetime64("2026-01-01T00:00:00", "us")
    span = 365 * 24 * 3600 * 1_000_000
    values = pl.DataFrame(
        {
            "customer_id": rng.integers(0, customers, feature_rows),
            "event_time": start + rng.integers(0, span, feature_rows).astype("timedelta64[us]"),
            "f1": rng.random(feature_rows),
            "f2": rng.random(feature_rows),
            "f3": rng.random(feature_rows),
        }
    )
    rows = pl.DataFrame(
        {
            "customer_id": rng.integers(0, customers, entities),
            "event_time": start + rng.integers(0, span, entities).astype("timedelta64[us]"),
        }
    )
    features_path, entities_path = str(folder / "features.parquet"), str(folder / "entities.parquet")
    values.write_parquet(features_path)
    rows.write_parquet(entities_path)
    return features_path, entities_path


def side(python: str, script: str, *args) -> dict | str:
    result = subprocess.run([python, "-c", script, *map(str, args)], capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        return result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "failed"
    return json.loads(result.stdout.strip().splitlines()[-1])


def online_p50(folder: Path, online: str, entities: int = 100_000) -> float:
    from datetime import datetime

    import numpy as np
    import polars as pl

    import mlops_lab as ml
    from mlops_lab.features import Entity, FeatureView

    rng = np.random.default_rng(1)
    path = folder / f"online-{online.split(':')[0]}.parquet"
    pl.DataFrame(
        {
            "customer_id": np.arange(entities),
            "event_time": [datetime(2026, 1, 1)] * entities,
            "f1": rng.random(entities),
            "f2": rng.random(entities),
            "f3": rng.random(entities),
        }
    ).write_parquet(path)
    store = ml.feature_store(folder / f"fs-{online.split(':')[0]}", online=online)
    store.apply(
        Entity("customer", ["customer_id"]),
        FeatureView("activity", ["customer"], str(path), "event_time", ["f1", "f2", "f3"]),
    )
    store.materialize(datetime(2025, 1, 1), datetime(2027, 1, 1))
    times = []
    for _ in range(300):
        keys = [{"customer_id": int(k)} for k in rng.integers(0, entities, 100)]
        start = time.perf_counter()
        store.get_online_features(["activity:f1", "activity:f2", "activity:f3"], keys)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def rehash_ms(folder: Path, size: int = 1 << 30) -> tuple[float, float]:
    from mlops_lab.store import open_store
    from mlops_lab.tracking.capture import cached_file_hash

    path = folder / "big.bin"
    block = os.urandom(1 << 20)
    with open(path, "wb") as handle:
        for _ in range(size // len(block)):
            handle.write(block)
    file_state = open_store(f"sqlite:///{folder / 'state.db'}").file_state
    start = time.perf_counter()
    cached_file_hash(file_state, path)
    first = time.perf_counter() - start
    start = time.perf_counter()
    cached_file_hash(file_state, path)
    return first * 1000, (time.perf_counter() - start) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--feature-rows", type=int, default=10_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        features, entities = make_data(folder, args.entities, args.feature_rows)
        ours = side(sys.executable, OURS, folder, features, entities)
        pandas = side(sys.executable, PANDAS, folder, features, entities)
        feast_python = HERE / ".venv-feast" / "bin" / "python"
        feast = (
            side(str(feast_python), FEAST, folder, features, entities)
            if feast_python.exists()
            else "bench/.venv-feast not found (pip install feast there to compare)"
        )
        sqlite_ms = online_p50(folder, "sqlite")
        try:
            redis_ms = online_p50(folder, "redis://127.0.0.1:6379/14")
        except Exception as exc:  # no Redis on this machine
            redis_ms = f"not measured: {exc}"
        first_hash, second_hash = rehash_ms(folder)

    print(f"\nPoint-in-time join: {args.entities:,} entity rows x {args.feature_rows:,}-row feature view, 3 features\n")
    print(f"{'':12} {'time':>9} {'peak above input':>18}  ratio (theirs / ours)")
    print(f"{'mlops_lab':12} {ours['seconds']:>8.2f}s {ours['extra_mb']:>15.0f} MB")
    for label, result in (("Feast", feast), ("pandas", pandas)):
        if isinstance(result, dict):
            agree = (
                "same values"
                if abs(result["checksum"] - ours["checksum"]) < 1e-6 * max(1, abs(ours["checksum"]))
                else f"checksums differ ({result['checksum']:.6g} vs {ours['checksum']:.6g})"
            )
            print(
                f"{label:12} {result['seconds']:>8.2f}s {result['extra_mb']:>15.0f} MB  "
                f"{result['seconds'] / ours['seconds']:.1f}x  ({agree})"
            )
        else:
            print(f"{label:12} not measured: {result}")
    print(
        f"\nonline lookup of 100 entities (p50): SQLite {sqlite_ms:.2f} ms, Redis "
        + (f"{redis_ms:.2f} ms" if isinstance(redis_ms, float) else redis_ms)
        + "  (goal <= 2 ms)"
    )
    print(f"hashing a 1 GB file: first {first_hash:.0f} ms, second (unchanged) {second_hash:.2f} ms  (goal <= 50 ms)")


if __name__ == "__main__":
    main()
