"""The workspace: where data lives, who is acting, and the services built on them — one object.

    ws = Workspace()                     # the resolution order of mlops_lab.config
    run = ws.tracking.start_run("baseline", experiment="churn")
    ws.registry.register("churn", run.id)
    ws.drift_reports.list()
    ws.features().get_online_features([...], [...])
    ws.serving.start("churn@production")

A kernel uses ``default_workspace()``; the lab's server keeps one in its settings and acts for
each signed-in user through ``as_user(name)``; the CLI builds one from its arguments.  Services
are created on first use, so opening a workspace costs nothing until something is asked of it;
``as_user`` copies share the store, artifacts, tracker and serving processes.
"""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .config import StoreLocation, current_user, resolve

if TYPE_CHECKING:
    from .artifacts import ArtifactStore
    from .features import FeatureStore
    from .monitoring.storage import DriftReports
    from .registry import Registry
    from .serving.manager import ServingManager
    from .store import Store
    from .team.client import TeamClient
    from .tracking.client import Tracker


class _Shared:
    """What every user's view of one workspace shares: connections, the tracker, serving processes."""

    def __init__(self, owner: "Workspace", lab: bool = False):
        self.owner = owner  # shared services act as the workspace that was opened, not as a copy's user
        self.lab = lab  # a lab's server: it runs the team's deployments that are its user's on its host
        self.lock = threading.RLock()
        self.store: Store | None = None
        self.artifacts: ArtifactStore | None = None
        self.tracking: Tracker | None = None
        self.serving: ServingManager | None = None


class Workspace:
    def __init__(
        self,
        location: StoreLocation | None = None,
        *,
        user: str | None = None,
        lab: bool = False,
        _shared: _Shared | None = None,
    ):
        self.location = location or resolve()
        self._user = user
        self._shared = _shared or _Shared(self, lab)

    @property
    def user(self) -> str:
        """Who acts: the name given, else the team server's word for the token (asked once), else
        MLOPS_LAB_USER or the OS user (advisory: the embedded store cannot check it)."""
        if self._user is None:
            self._user = self._shared.owner._server_user() if self.location.is_team_server else current_user()
        return self._user

    def _server_user(self) -> str:
        with self._shared.lock:
            if self._user is None:
                import warnings

                self._user = self.store.runs.client.get_json("api/whoami")["user"]
                claimed = os.environ.get("MLOPS_LAB_USER")
                if claimed and claimed != self._user:
                    warnings.warn(
                        f"MLOPS_LAB_USER={claimed!r} is ignored: the team server knows this token as {self._user!r}",
                        stacklevel=3,
                    )
        return self._user

    def __repr__(self) -> str:
        return f"<Workspace {self.location.db_url} as {self.user!r}>"

    def as_user(self, user: str) -> "Workspace":
        """The same workspace acting as ``user`` (the lab's signed-in user, say)."""
        return Workspace(self.location, user=user, _shared=self._shared)

    def _shared_once(self, name: str, build):
        """What ``_shared`` holds under ``name``, built once by ``build(owner)``, whichever thread asks first."""
        shared = self._shared
        with shared.lock:
            value = getattr(shared, name)
            if value is None:
                value = build(shared.owner)
                setattr(shared, name, value)
        return value

    # ---- storage -----------------------------------------------------------------------------

    @property
    def store(self) -> "Store":
        """The stores by domain over the workspace's database."""
        return self._shared.store or self._shared_once("store", _open_store)

    @property
    def artifacts(self) -> "ArtifactStore":
        return self._shared.artifacts or self._shared_once("artifacts", _open_artifacts)

    # ---- services ----------------------------------------------------------------------------

    @property
    def tracking(self) -> "Tracker":
        """Runs and what is logged to them (one tracker, with its background writer, per workspace)."""
        return self._shared.tracking or self._shared_once("tracking", _start_tracking)

    @property
    def registry(self) -> "Registry":
        """The model registry, acting as this workspace's user."""
        from .registry import Registry

        return Registry(self)

    @property
    def drift_reports(self) -> "DriftReports":
        """Stored drift reports and reference profiles."""
        from .monitoring.storage import DriftReports

        return DriftReports(self)

    def features(self, path: str | Path | None = None, online: str = "sqlite") -> "FeatureStore":
        """The feature store: definitions in this workspace's store, online values under ``path``
        (default: the per-user home) or in Redis (``online="redis://…"``)."""
        from .features import FeatureStore

        return FeatureStore(self, path, online)

    @property
    def team(self) -> "TeamClient | None":
        """The team server's administration (tokens, users, permissions) as this workspace's token;
        None when the store is not a team server."""
        if not self.location.is_team_server:
            return None
        from .team.client import TeamClient

        return TeamClient(self.store.runs.client)

    @property
    def serving(self) -> "ServingManager":
        """The serving processes this workspace runs (started on first use)."""
        return self._shared.serving or self._shared_once("serving", _start_serving)

    # ---- life ---------------------------------------------------------------------------------

    def flush(self) -> None:
        """Wait until everything this process logged is in the store (nothing to do if it logged nothing)."""
        if self._shared.tracking is not None:
            self._shared.tracking.flush()

    def close(self) -> None:
        """End open runs, write what is queued, stop serving processes this workspace started."""
        shared = self._shared
        if shared.tracking is not None:
            shared.tracking.close()
        if shared.serving is not None:
            shared.serving.shutdown()


# What the workspace shares, built on first use (imports here, so an unused service costs nothing).
def _open_store(workspace: Workspace) -> "Store":
    from .store import open_store

    return open_store(workspace.location.db_url, workspace.location.token)


def _open_artifacts(workspace: Workspace) -> "ArtifactStore":
    if workspace.location.is_team_server:  # through the server, which holds them
        from .artifacts.rest import RestArtifactStore

        return RestArtifactStore(workspace.store.runs.client)
    from .artifacts import ArtifactStore

    return ArtifactStore(workspace.location.artifacts)


def _start_tracking(workspace: Workspace) -> "Tracker":
    from .tracking.client import Tracker

    return Tracker(workspace)


def _start_serving(workspace: Workspace) -> "ServingManager":
    from .serving.manager import ServingManager

    return ServingManager(workspace, reconcile=workspace._shared.lab)


_default: Workspace | None = None
_default_lock = threading.Lock()


def default_workspace() -> Workspace:
    """This process's workspace (a kernel's, a script's): the resolution order, the OS user."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Workspace()
    return _default


def set_default_workspace(workspace: Workspace | None) -> Workspace | None:
    """Use another workspace from now on (``ml.set_store``); the old one's runs are ended and flushed."""
    global _default
    with _default_lock:
        old, _default = _default, workspace
    if old is not None and old is not workspace and old._shared.tracking is not None:
        old._shared.tracking.close()
    return old


def flush_logged() -> None:
    """Wait until what this process logged is in the store; opens nothing if it logged nothing
    (a pipeline's kernels run this last, so they may be stopped at once)."""
    if _default is not None:
        _default.flush()


@atexit.register
def _close_default() -> None:
    if _default is not None:
        _default.close()
