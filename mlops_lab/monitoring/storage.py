"""Storing drift reports and reference profiles beside runs: a row in the store, a blob in the artifacts.

reports = workspace.drift_reports
report_id = reports.save(report, "weekly", reference="train.parquet", model="churn/3")
reports.list()              # newest first
reports.load(report_id)     # the DriftReport again
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

from ..errors import InvalidInputError
from ..store import now_ms
from .profile import Profile
from .report import DriftReport

if TYPE_CHECKING:
    from ..workspace import Workspace


class DriftReports:
    """The drift reports of a workspace, saved as its user."""

    def __init__(self, workspace: "Workspace"):
        self.store = workspace.store.drift_reports
        self.artifacts = workspace.artifacts
        self.user = workspace.user

    def save_profile(self, profile: Profile) -> str:
        """Store a reference profile; its content hash names it."""
        return self.artifacts.put_bytes(profile.to_bytes())

    def load_profile(self, digest: str) -> Profile:
        return Profile.from_bytes(self.artifacts.get_bytes(digest))

    def save(
        self,
        report: DriftReport,
        name: str,
        *,
        reference: str = "",
        current: str = "",
        model: str | None = None,
        deployment: str | None = None,
        run_id: str | None = None,
    ) -> str:
        """Store ``report``; ``model`` is ``"name/version"`` or ``"name"``, linking it to a model."""
        if not isinstance(name, str) or not name.strip() or len(name) > 250:
            raise InvalidInputError(f"a drift report needs a name of 1 to 250 characters, got {name!r}")
        model_name, _, model_version = (model or "").partition("/")
        report_id = uuid.uuid4().hex
        self.store.add(
            {
                "id": report_id,
                "name": name,
                "created_at": now_ms(),
                "user": self.user,
                "reference": reference,
                "current": current,
                "share_drifted": report.share_drifted,
                "dataset_drift": report.dataset_drift,
                "drifted_columns": json.dumps([c.column for c in report.columns if c.drift]),
                "blob_hash": self.artifacts.put_bytes(report.to_json().encode()),
                "model_name": model_name or None,
                "model_version": model_version or None,
                "deployment": deployment,
                "run_id": run_id,
            }
        )
        return report_id

    def list(self, limit: int = 100) -> list[dict]:
        """The stored reports' records, newest first."""
        return self.store.list(limit)

    def record(self, report_id: str) -> dict:
        """A report's record and its content as JSON (what the lab's Drift view shows)."""
        record = self.store.get(report_id)
        return {"record": record, "report": json.loads(self.artifacts.get_bytes(record["blob_hash"]))}

    def load(self, report_id: str) -> DriftReport:
        return DriftReport.from_dict(self.record(report_id)["report"])
