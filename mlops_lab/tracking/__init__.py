"""Tracking service: runs, params, metrics, tags, artifacts, models and dataset versions."""

from .client import ActiveRun, MetricPoint, Tracker
from .search import experiment_ids, runs_frame, runs_page

__all__ = ["ActiveRun", "MetricPoint", "Tracker", "experiment_ids", "runs_frame", "runs_page"]
