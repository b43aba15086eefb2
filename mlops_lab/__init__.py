"""mlops_lab: track, compare, register, monitor and serve models from JupyterLab.

``import mlops_lab as ml`` is cheap: the API and its dependencies load on first use.
"""

from .version import __version__ as __version__

_API = {
    "set_store",
    "start_run",
    "resume_run",
    "end_run",
    "active_run",
    "log_param",
    "log_params",
    "log_metric",
    "log_metrics",
    "set_tag",
    "set_tags",
    "log_artifact",
    "log_artifacts",
    "log_model",
    "log_figure",
    "log_dataset",
    "get_run",
    "get_metric_history",
    "search_runs",
    "flush",
    "drift",
    "drift_profile",
    "load_profile",
    "save_drift_report",
    "drift_reports",
    "load_drift_report",
    "performance",
    "runs",
    "compare",
    "register",
    "promote",
    "set_alias",
    "set_approval_policy",
    "request_approval",
    "approve",
    "reject",
    "load_model",
    "model_history",
    "validate_data",
    "evaluate",
    "models",
    "checkout",
    "dataset_diff",
    "feature_store",
    "serve",
    "deployments",
    "stop_serving",
    "predict",
    "log_text",
    "delete_run",
    "restore_run",
    "pipeline",
    "lineage",
}


def __getattr__(name):
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'mlops_lab' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _API)


def _jupyter_labextension_paths():
    return [{"src": "labextension", "dest": "mlops-lab"}]


def _jupyter_server_extension_points():
    return [{"module": "mlops_lab.server"}]


def load_ipython_extension(ipython):
    from .magics import register

    register(ipython)


def unload_ipython_extension(ipython):
    from .magics import unregister

    unregister(ipython)
