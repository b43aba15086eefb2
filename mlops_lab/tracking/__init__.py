"""Tracking service: runs, params, metrics, tags, artifacts, models and dataset versions."""

from .client import ActiveRun, Tracker, default_tracker, set_tracker
from .search import runs_frame

__all__ = ["ActiveRun", "Tracker", "default_tracker", "runs_frame", "set_tracker"]
