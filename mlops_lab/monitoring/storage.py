"""Storing drift reports and reference profiles next to runs (store rows + artifact blobs)."""

from __future__ import annotations

import json
import uuid

from ..store import now_ms
from ..tracking.client import Tracker
from .profile import Profile
from .report import DriftReport


def save_profile(tracker: Tracker, profile: Profile) -> str:
    """Store a reference profile; its content hash names it."""
    return tracker.artifacts.put_bytes(profile.to_bytes())


def load_profile(tracker: Tracker, digest: str) -> Profile:
    return Profile.from_bytes(tracker.artifacts.get_bytes(digest))


def save_report(tracker: Tracker, report: DriftReport, name: str, *, reference: str = "", current: str = "",
                model: str | None = None, deployment: str | None = None, run_id: str | None = None) -> str:
    """Store ``report``; ``model`` is ``"name/version"`` or ``"name"``, linking it to a model."""
    if not isinstance(name, str) or not name.strip() or len(name) > 250:
        raise ValueError(f"a drift report needs a name of 1 to 250 characters, got {name!r}")
    model_name, _, model_version = (model or "").partition("/")
    report_id = uuid.uuid4().hex
    tracker.store.add_drift_report({
        "id": report_id, "name": name, "created_at": now_ms(), "user": tracker.user,
        "reference": reference, "current": current, "share_drifted": report.share_drifted,
        "dataset_drift": report.dataset_drift,
        "drifted_columns": json.dumps([c.column for c in report.columns if c.drift]),
        "blob_hash": tracker.artifacts.put_bytes(report.to_json().encode()),
        "model_name": model_name or None, "model_version": model_version or None,
        "deployment": deployment, "run_id": run_id,
    })
    return report_id


def load_report(tracker: Tracker, report_id: str) -> DriftReport:
    record = tracker.store.drift_report(report_id)
    return DriftReport.from_dict(json.loads(tracker.artifacts.get_bytes(record["blob_hash"])))
