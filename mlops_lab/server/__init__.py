"""Jupyter Server extension: REST under ``<base_url>/mlops-lab/api/`` for the sidebar.

The server reads the same store the kernels write (same resolution order, started from the
server's root directory), so the sidebar and every notebook agree without configuration.
"""

from __future__ import annotations

import threading

from ..config import resolve
from ..store.file_state import HOST
from ..workspace import Workspace
from .handlers import ROUTES
from .mlflow import ROUTES as MLFLOW_ROUTES


def _load_jupyter_server_extension(serverapp) -> None:
    from jupyter_server.utils import url_path_join

    location = resolve(start_dir=serverapp.root_dir)
    web_app = serverapp.web_app
    # Opened lazily: a broken store cannot stop the server starting.  It acts as the lab's user (the
    # kernels' name); handlers act as the signed-in user where an identity provider names people.
    workspace = web_app.settings["mlops_lab"] = Workspace(location, lab=True)
    base_url = web_app.settings["base_url"]
    web_app.add_handlers(
        ".*$",
        [(url_path_join(base_url, "mlops-lab", "api", path), handler) for path, handler in ROUTES]
        # MLflow's REST API: MLFLOW_TRACKING_URI=<lab URL>mlops-lab/mlflow
        + [(url_path_join(base_url, "mlops-lab", "mlflow", path), handler) for path, handler in MLFLOW_ROUTES],
    )
    # The lab runs again the deployments it ran before it stopped (the team's table says which).
    threading.Thread(target=_adopt_deployments, args=(workspace, serverapp.log), daemon=True).start()
    shown = location.public()
    serverapp.log.info("mlops_lab: store %s (%s)", shown["db_url"], shown["source"])


def _adopt_deployments(workspace: Workspace, log) -> None:
    try:
        if any(d["host"] == HOST and d["state"] == "running" for d in workspace.store.deployments.list()):
            _ = workspace.serving  # starting the manager starts its reconciliation
    except Exception as exc:  # a store that cannot be read now: the first serving request tries again
        log.warning("mlops_lab: could not read the deployment table: %s", exc)


def _unload_jupyter_server_extension(serverapp) -> None:
    """Stop the serving processes this server started (each drains its requests first)."""
    workspace = serverapp.web_app.settings.get("mlops_lab")
    if workspace is not None:
        workspace.close()
