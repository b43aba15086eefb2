"""Tracking service: runs, params, metrics, tags, artifacts, models and dataset versions."""

from .client import ActiveRun, Tracker
from .search import experiment_ids, runs_frame, runs_page

__all__ = ["ActiveRun", "Tracker", "experiment_ids", "runs_frame", "runs_page"]
