"""Jupyter Server extension: REST under ``<base_url>/mlops-lab/api/`` for the sidebar.

The server reads the same store the kernels write (same resolution order, started from the
server's root directory), so the sidebar and every notebook agree without configuration.
"""

from __future__ import annotations

from ..config import resolve
from ..workspace import Workspace
from .handlers import ROUTES


def _load_jupyter_server_extension(serverapp) -> None:
    from jupyter_server.utils import url_path_join

    location = resolve(start_dir=serverapp.root_dir)
    web_app = serverapp.web_app
    # Opened lazily: a broken store cannot stop the server starting.  It acts as the lab's user (the
    # kernels' name); handlers act as the signed-in user where an identity provider names people.
    web_app.settings["mlops_lab"] = Workspace(location)
    base_url = web_app.settings["base_url"]
    web_app.add_handlers(
        ".*$", [(url_path_join(base_url, "mlops-lab", "api", path), handler) for path, handler in ROUTES]
    )
    shown = location.public()
    serverapp.log.info("mlops_lab: store %s (%s)", shown["db_url"], shown["source"])


def _unload_jupyter_server_extension(serverapp) -> None:
    """Stop the serving processes this server started (each drains its requests first)."""
    workspace = serverapp.web_app.settings.get("mlops_lab")
    if workspace is not None:
        workspace.close()
