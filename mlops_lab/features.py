"""A feature store: entities and feature views defined in Python, point-in-time correct training
sets, and an online store (SQLite by default, Redis for teams) that serving reads.

    customer = Entity("customer", join_keys=["customer_id"])
    activity = FeatureView("activity", entities=["customer"], source="activity.parquet",
                           timestamp="event_time", features=["orders_7d", "spend_7d"], ttl=timedelta(days=7))
    fs = ml.feature_store()            # or workspace.features(path, online="redis://…")
    fs.apply(customer, activity)
    training = fs.get_historical_features(labels, ["activity:orders_7d", "activity:spend_7d"])
    fs.materialize_incremental(datetime.now(timezone.utc))
    fs.get_online_features(["activity:orders_7d"], [{"customer_id": 42}])

A joined value is the latest one at or before the row's timestamp and not older than the view's
TTL (polars ``join_asof``, backward); rows with no such value get nulls.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from .config import default_home
from .errors import InvalidInputError
from .store.features import open_online_store

if TYPE_CHECKING:
    from .workspace import Workspace


class FeatureError(InvalidInputError):
    """A definition or a request the feature store cannot use; the message says what and why."""


@dataclass(frozen=True)
class Entity:
    name: str
    join_keys: list[str]


@dataclass(frozen=True)
class FeatureView:
    name: str
    entities: list[str]
    source: str  # a parquet or CSV path (or glob)
    timestamp: str
    features: list[str]
    ttl: timedelta | None = None


@dataclass(frozen=True)
class FeatureService:
    name: str
    features: list[str] = field(default_factory=list)  # "view:feature"


def _scan(source: str) -> pl.LazyFrame:
    if source.endswith((".csv", ".tsv")):
        return pl.scan_csv(source, try_parse_dates=True)
    return pl.scan_parquet(source)


class FeatureStore:
    """Definitions are registered in the run store (next to runs and models); the data stays where it
    is; online values go to a SQLite file under ``path`` or to Redis (``online="redis://…"``)."""

    def __init__(self, workspace: "Workspace", path: str | Path | None = None, online: str = "sqlite"):
        self.definition_store = workspace.store.features
        self.user = workspace.user
        self.path = Path(path or default_home() / "features")
        self.path.mkdir(parents=True, exist_ok=True)
        self.online = open_online_store(online, self.path)
        stored = self.definition_store.definitions()
        self._definitions = {
            "entities": stored["entity"],
            "views": stored["view"],
            "services": stored["service"],
            "materialized": {name: spec["end"] for name, spec in stored["materialized"].items()},
        }

    def _save(self, kind: str, name: str, spec: dict) -> None:
        self.definition_store.save_definition(kind, name, spec, self.user)

    # ---- definitions -------------------------------------------------------------------------

    def apply(self, *objects) -> None:
        """Register (or update) definitions, after checking them against each other and the data."""
        for obj in objects:
            if isinstance(obj, Entity):
                if not obj.join_keys:
                    raise FeatureError(f"entity {obj.name!r} needs at least one join key")
                self._definitions["entities"][obj.name] = asdict(obj)
                self._save("entity", obj.name, asdict(obj))
        for obj in objects:
            if isinstance(obj, FeatureView):
                self._check_view(obj)
                spec = asdict(obj)
                spec["ttl"] = obj.ttl.total_seconds() if obj.ttl else None
                self._definitions["views"][obj.name] = spec
                self._save("view", obj.name, spec)
            elif isinstance(obj, FeatureService):
                for ref in obj.features:
                    self._feature(ref)
                self._definitions["services"][obj.name] = asdict(obj)
                self._save("service", obj.name, asdict(obj))
            elif not isinstance(obj, Entity):
                raise FeatureError(f"apply takes Entity, FeatureView and FeatureService, got {type(obj).__name__}")

    def _check_view(self, view: FeatureView) -> None:
        unknown = [e for e in view.entities if e not in self._definitions["entities"]]
        if unknown:
            raise FeatureError(f"feature view {view.name!r} names unknown entities {unknown}; apply them first")
        try:
            schema = _scan(view.source).collect_schema()
        except Exception as exc:
            raise FeatureError(f"feature view {view.name!r}: cannot read {view.source}: {exc}") from exc
        needed = [view.timestamp, *self._keys(view.entities), *view.features]
        missing = [c for c in needed if c not in schema]
        if missing:
            raise FeatureError(f"feature view {view.name!r}: {view.source} has no column(s) {missing}")
        if not schema[view.timestamp].is_temporal():
            raise FeatureError(
                f"feature view {view.name!r}: timestamp column {view.timestamp!r} is "
                f"{schema[view.timestamp]}, not a date or time"
            )

    def _keys(self, entities: list[str]) -> list[str]:
        return [k for e in entities for k in self._definitions["entities"][e]["join_keys"]]

    def _view(self, name: str) -> dict:
        view = self._definitions["views"].get(name)
        if view is None:
            raise FeatureError(f"no feature view named {name!r}")
        return view

    def _feature(self, ref: str) -> tuple[dict, str]:
        view_name, sep, feature = ref.partition(":")
        if not sep:
            raise FeatureError(f"feature {ref!r} must be written view:feature")
        view = self._view(view_name)
        if feature not in view["features"]:
            raise FeatureError(f"feature view {view_name!r} has no feature {feature!r}")
        return view, feature

    def _grouped(self, features: list[str] | str) -> dict[str, list[str]]:
        if isinstance(features, str):  # a feature service's name
            service = self._definitions["services"].get(features)
            if service is None:
                raise FeatureError(f"no feature service named {features!r}")
            features = service["features"]
        grouped: dict[str, list[str]] = {}
        for ref in features:
            view, feature = self._feature(ref)
            grouped.setdefault(view["name"], []).append(feature)
        return grouped

    # ---- offline -----------------------------------------------------------------------------

    def get_historical_features(self, entity_df, features: list[str] | str, *, timestamp: str = "event_time"):
        """Each row of ``entity_df`` (keys + ``timestamp``) with the features as they were then."""
        frame = entity_df if isinstance(entity_df, pl.DataFrame) else pl.from_pandas(entity_df)
        if timestamp not in frame.columns:
            raise FeatureError(f"the entity frame has no timestamp column {timestamp!r}")
        result = frame.with_row_index("__row").sort(timestamp)
        for view_name, wanted in self._grouped(features).items():
            view = self._view(view_name)
            keys = self._keys(view["entities"])
            missing = [k for k in keys if k not in frame.columns]
            if missing:
                raise FeatureError(f"the entity frame lacks join key(s) {missing} of view {view_name!r}")
            clash = [f for f in wanted if f in result.columns]
            if clash:
                raise FeatureError(f"feature name(s) {clash} clash with columns already in the result")
            values = (
                _scan(view["source"])
                .select([*keys, pl.col(view["timestamp"]).alias("__feature_time"), *wanted])
                .collect()
                .sort("__feature_time")
            )
            for key in keys:  # one key type on both sides, or join_asof refuses
                mine, theirs = result.schema[key], values.schema[key]
                if mine.is_numeric() != theirs.is_numeric():
                    raise FeatureError(
                        f"join key {key!r} is {mine} in the entity frame but {theirs} in view "
                        f"{view_name!r}; cast one side"
                    )
                values = values.with_columns(pl.col(key).cast(mine))
            ts_type = result.schema[timestamp]
            values = values.with_columns(pl.col("__feature_time").cast(ts_type))
            tolerance = timedelta(seconds=view["ttl"]) if view["ttl"] else None
            # Both sides are sorted by time above; polars cannot verify it within groups, so it is told.
            result = result.join_asof(
                values,
                left_on=timestamp,
                right_on="__feature_time",
                by=keys,
                strategy="backward",
                tolerance=tolerance,
                check_sortedness=False,
            ).drop("__feature_time")
        return result.sort("__row").drop("__row")

    # ---- online ------------------------------------------------------------------------------

    def materialize(self, start: datetime, end: datetime, views: list[str] | None = None) -> dict[str, int]:
        """Load each view's latest values with event times in [start, end) into the online store."""
        if start >= end:
            raise FeatureError(f"materialize needs start < end, got {start} and {end}")
        written = {}
        for name in views or list(self._definitions["views"]):
            view = self._view(name)
            keys = self._keys(view["entities"])
            ts = view["timestamp"]
            frame = _scan(view["source"]).select([*keys, ts, *view["features"]])
            ts_type = frame.collect_schema()[ts]
            bounds = [pl.lit(b).cast(ts_type) for b in (_naive_or_aware(start, ts_type), _naive_or_aware(end, ts_type))]
            latest = (
                frame.filter((pl.col(ts) >= bounds[0]) & (pl.col(ts) < bounds[1]))
                .sort(ts)
                .group_by(keys)
                .last()
                .collect()
            )
            rows = [
                (
                    json.dumps([row[k] for k in keys], default=str),
                    _event_time_key(row[ts]),
                    json.dumps({f: row[f] for f in view["features"]}, default=str),
                )
                for row in latest.iter_rows(named=True)
            ]
            self.online.write(name, rows)
            written[name] = len(rows)
            self._definitions["materialized"][name] = end.isoformat()
            self._save("materialized", name, {"start": start.isoformat(), "end": end.isoformat(), "rows": len(rows)})
        return written

    def materialize_incremental(self, end: datetime) -> dict[str, int]:
        """Materialize each view from where its last materialization ended (or the beginning)."""
        written = {}
        for name in self._definitions["views"]:
            last = self._definitions["materialized"].get(name)
            start = datetime.fromisoformat(last) if last else datetime(1970, 1, 1, tzinfo=end.tzinfo)
            if start < end:
                written.update(self.materialize(start, end, [name]))
        return written

    def get_online_features(self, features: list[str] | str, entity_rows: list[dict]) -> dict[str, list]:
        """Feature values for each entity row, from the online store (None where there is none)."""
        result: dict[str, list] = {k: [row.get(k) for row in entity_rows] for k in {k for r in entity_rows for k in r}}
        for view_name, wanted in self._grouped(features).items():
            keys = self._keys(self._view(view_name)["entities"])
            missing = [k for k in keys if any(k not in row for row in entity_rows)]
            if missing:
                raise FeatureError(f"every entity row needs {keys} for view {view_name!r}; missing {missing}")
            encoded = [json.dumps([row[k] for k in keys], default=str) for row in entity_rows]
            found = self.online.read(view_name, list(dict.fromkeys(encoded)))
            for feature in wanted:
                result[feature] = [json.loads(found[e])[feature] if e in found else None for e in encoded]
        return result

    def skew_check(self, entity_rows: list[dict], features: list[str] | str, at: datetime) -> dict[str, dict]:
        """Online values against the offline point-in-time join at ``at``, per feature."""
        online = self.get_online_features(features, entity_rows)
        frame = pl.DataFrame(entity_rows).with_columns(pl.lit(at).alias("event_time"))
        offline = self.get_historical_features(frame, features)
        report = {}
        for wanted in self._grouped(features).values():
            for feature in wanted:
                mismatched = [
                    i
                    for i, (a, b) in enumerate(zip(online[feature], offline[feature].to_list()))
                    if not (a == b or (a is None and b is None))
                ]
                report[feature] = {
                    "rows": len(entity_rows),
                    "mismatches": len(mismatched),
                    "rows_mismatched": mismatched[:20],
                }
        return report


def _event_time_key(moment) -> str:
    """An event time as text that sorts as time does: UTC (a naive time is taken as UTC), fixed width.
    ``str()`` of zoned times would compare the wall clock, and an hour repeats when DST ends."""
    if isinstance(moment, datetime):
        if moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")
    if hasattr(moment, "isoformat"):  # a date
        return moment.isoformat() + "T00:00:00.000000"
    return str(moment)


def _naive_or_aware(moment: datetime, dtype) -> datetime:
    """Compare like with like: a naive column gets a naive UTC bound, a zoned one an aware bound."""
    zone = getattr(dtype, "time_zone", None)
    if zone is None and moment.tzinfo is not None:
        return moment.astimezone(UTC).replace(tzinfo=None)
    if zone is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment
