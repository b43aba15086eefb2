"""Drift monitoring: per-column two-sample statistics, reference profiles, reports and their widgets."""

from .performance import performance
from .profile import DriftError, Profile
from .report import ColumnDrift, DriftReport, drift, load_frame, profile

__all__ = ["ColumnDrift", "DriftError", "DriftReport", "Profile", "drift", "load_frame", "performance", "profile"]
