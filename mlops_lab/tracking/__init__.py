"""Tracking service: runs, params, metrics, tags, artifacts, models and dataset versions."""

from .client import ActiveRun, Tracker, default_tracker, set_tracker
from .search import runs_frame, runs_page

__all__ = ["ActiveRun", "Tracker", "default_tracker", "runs_frame", "runs_page", "set_tracker"]
