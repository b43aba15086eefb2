"""A deployment: the versions one server runs for one model, and how traffic reaches them.

- **primary** answers every request not sent to the canary;
- **canary** answers a share (``canary_share``) of them;
- **shadow** gets a copy of each routed request; its answers are compared with the primary's
  and logged, never returned.

Each role names a model the way the registry does (``churn@production``, ``churn@candidate``,
``churn/3``) or a ``.onnx`` file.  A thread re-resolves alias and stage references every
``watch_seconds``: when ``@production`` moves (a promotion or a rollback), the new version is
loaded and warmed up aside, then swapped in; requests already queued on the old version finish
there, so none is dropped.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .batcher import Batcher
from .metrics import VersionStats
from .protocol import ProtocolError
from .request_log import RequestLog
from .runtime import ModelLoadError, ModelRuntime

if TYPE_CHECKING:
    from ..workspace import Workspace

log = logging.getLogger("mlops_lab.serving")
ROLES = ("primary", "canary", "shadow")


@dataclass
class ServeOptions:
    max_batch_size: int = 64
    max_queue_delay_us: int = 0
    max_queue_size: int = 1024
    request_timeout_us: int | None = None
    intra_op_threads: int | None = None
    providers: list[str] | None = None
    log_sample: float = 1.0  # share of requests written to the request log; 0 turns it off
    log_dir: str | None = None
    watch_seconds: float = 2.0

    def check(self) -> None:
        if self.max_batch_size < 0 or self.max_queue_delay_us < 0 or self.max_queue_size < 1:
            raise ValueError("max_batch_size and max_queue_delay_us must be ≥ 0, max_queue_size ≥ 1")
        if not 0.0 <= self.log_sample <= 1.0:
            raise ValueError(f"log_sample must be between 0 and 1, got {self.log_sample}")


@dataclass
class ModelSource:
    name: str
    version: str
    onnx: bytes
    input_columns: list[str] | None = None


def is_pinned(spec: str) -> bool:
    """A fixed version (``name/3``) or a file: nothing to watch."""
    return spec.endswith(".onnx") or "/" in spec


def resolve_model(spec: str, workspace: "Workspace | None" = None) -> ModelSource:
    """The ONNX bytes behind a registry reference or a ``.onnx`` file."""
    if spec.endswith(".onnx"):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ModelLoadError(f"no such model file: {spec}")
        payload = path.read_bytes()
        return ModelSource(path.stem, hashlib.sha256(payload).hexdigest()[:8], payload)
    if workspace is None:
        raise ModelLoadError(f"{spec!r} is a registry reference: serving it needs a store (or give a .onnx file)")
    name, version, onnx_bytes, signature = workspace.registry.onnx(spec)
    return ModelSource(name, str(version), onnx_bytes, signature.get("input_columns"))


@dataclass
class ServedVersion:
    role: str
    spec: str
    runtime: ModelRuntime
    batcher: Batcher
    stats: VersionStats


@dataclass
class ShadowSummary:
    compared: int = 0  # requests
    disagreed: int = 0  # requests with at least one row whose decisive output differs
    rows_compared: int = 0
    rows_disagreed: int = 0
    dropped: int = 0  # the shadow's queue was full: mirroring never slows the primary
    failed: int = 0
    max_abs_diff: float = 0.0
    disagreed_by_output: dict[str, int] = field(default_factory=dict)


def _rows_differing(ours: np.ndarray, theirs: np.ndarray | None, rows: int) -> np.ndarray:
    """Which rows of a decisive output differ (all of them when the shapes do not even match)."""
    if theirs is None or theirs.shape != ours.shape or ours.ndim == 0 or ours.shape[0] != rows:
        return np.ones(rows, dtype=bool)
    if ours.dtype.kind == "f":
        far = np.abs(ours.astype(np.float64) - theirs) > 1e-4
    else:
        far = ours != theirs
    return far.reshape(rows, -1).any(axis=1)


class Deployment:
    def __init__(
        self,
        primary: str,
        *,
        loop,
        options: ServeOptions | None = None,
        canary: str | None = None,
        canary_share: float = 0.0,
        shadow: str | None = None,
        workspace: "Workspace | None" = None,
        name: str | None = None,
    ):
        self.options = options or ServeOptions()
        self.options.check()
        if not 0.0 <= canary_share <= 1.0:
            raise ValueError(f"canary_share must be between 0 and 1, got {canary_share}")
        if canary_share and not canary:
            raise ValueError("canary_share needs a canary version")
        self.loop = loop
        self.workspace = workspace
        self.specs = {role: spec for role, spec in zip(ROLES, (primary, canary, shadow)) if spec}
        self.canary_share = canary_share if canary else 0.0
        self.served: dict[str, ServedVersion] = {}
        self.stats: dict[tuple[str, str], VersionStats] = {}
        self.shadow = ShadowSummary()
        self.events: deque[dict] = deque(maxlen=200)
        self.name = name
        self.request_log: RequestLog | None = None
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._changing = threading.Lock()  # one change of versions at a time: the watcher's or a rollout's
        self._chosen: dict[str, str] = {}  # the version last chosen per role (installed a moment later)

    # ---- loading and swapping ----------------------------------------------------------------

    def load(self) -> None:
        """Load every role (in this thread), then start the watcher if any reference can move."""
        for role, spec in self.specs.items():  # primary first: the others must take its inputs
            runtime = self._runtime(spec)
            self.name = self.name or runtime.name
            self._install(role, runtime)
            self._chosen[role] = runtime.version
        if self.options.log_sample > 0:
            from ..config import deployments_dir

            folder = self.options.log_dir or deployments_dir() / self.name / "requests"
            elsewhere = self.workspace is not None and not self.workspace.artifacts.is_local
            self.request_log = RequestLog(
                folder, sample=self.options.log_sample, on_file=self._keep_request_log if elsewhere else None
            )
        self._start_watcher()

    def _start_watcher(self) -> None:
        if self._watcher is None and any(not is_pinned(spec) for spec in self.specs.values()):
            self._watcher = threading.Thread(target=self._watch, name="alias-watcher", daemon=True)
            self._watcher.start()

    def _runtime(self, spec: str) -> ModelRuntime:
        source = resolve_model(spec, self.workspace)
        runtime = ModelRuntime(
            source.name,
            source.version,
            source.onnx,
            providers=self.options.providers,
            intra_op_threads=self.options.intra_op_threads,
            max_batch_size=self.options.max_batch_size,
            input_columns=source.input_columns,
        )
        primary = self.served.get("primary")
        if primary is not None and runtime.inputs != primary.runtime.inputs:
            raise ModelLoadError(
                f"{spec} takes inputs {[s.as_dict() for s in runtime.inputs]}, but the deployment's "
                f"requests fit {[s.as_dict() for s in primary.runtime.inputs]}"
            )
        return runtime

    def _install(self, role: str, runtime: ModelRuntime) -> None:
        """Put ``runtime`` in ``role`` (on the loop thread); the old version drains and stops."""
        key = (self.name, runtime.version)
        stats = self.stats.setdefault(key, VersionStats(*key))
        batcher = Batcher(
            runtime,
            stats,
            self.loop,
            max_queue_delay_us=self.options.max_queue_delay_us,
            max_queue_size=self.options.max_queue_size,
        )
        old = self.served.get(role)
        self.served[role] = ServedVersion(role, self.specs[role], runtime, batcher, stats)
        if old is not None:
            old.batcher.close()
            self.event("swapped", f"{role}: {self.name}/{old.runtime.version} → {runtime.version}")
        else:
            self.event("loaded", f"{role}: {self.name}/{runtime.version} on {runtime.provider}")

    def event(self, kind: str, detail: str) -> None:
        self.events.append({"time": time.time(), "event": kind, "detail": detail})
        log.info("%s: %s", kind, detail)

    def _watch(self) -> None:
        while not self._stop.wait(self.options.watch_seconds):
            with self._changing:
                for role, spec in list(self.specs.items()):
                    if is_pinned(spec):
                        continue
                    try:
                        _, version = self.workspace.registry.resolve(spec)
                        if str(version) == self._chosen.get(role):
                            continue
                        runtime = self._runtime(spec)
                    except Exception as exc:  # keep serving what runs now
                        self.loop.call_soon_threadsafe(self.event, "watch-error", f"{role} {spec}: {exc}")
                        continue
                    previous, self._chosen[role] = self._chosen.get(role), runtime.version
                    self.loop.call_soon_threadsafe(self._install, role, runtime)
                    self._record_swap(role, spec, previous, runtime.version)

    def rollout(self, *, canary: str | None, canary_share: float, shadow: str | None) -> dict:
        """Set the canary (and its share) and the shadow while serving; ``None`` removes a role.

        Runs off the loop (it loads models): new versions are loaded and warmed up first, and only
        if all of them load does anything change — then on the loop, in one step."""
        if not isinstance(canary_share, (int, float)) or isinstance(canary_share, bool) or not 0 <= canary_share <= 1:
            raise ValueError(f"canary_share must be between 0 and 1, got {canary_share!r}")
        if canary_share and not canary:
            raise ValueError("canary_share needs a canary version")
        wanted = {"canary": canary, "shadow": shadow}
        with self._changing:
            runtimes = {
                role: self._runtime(spec) for role, spec in wanted.items() if spec and spec != self.specs.get(role)
            }  # raises before anything changes
            for role in [role for role, spec in wanted.items() if not spec]:
                self._chosen.pop(role, None)
            for role, runtime in runtimes.items():
                self._chosen[role] = runtime.version
            done = threading.Event()
            self.loop.call_soon_threadsafe(
                self._apply_rollout, wanted, runtimes, float(canary_share if canary else 0), done
            )
            done.wait(30)
        self._start_watcher()
        return {"canary": canary, "canary_share": self.canary_share, "shadow": shadow}

    def _apply_rollout(self, wanted: dict, runtimes: dict, share: float, done: threading.Event) -> None:
        for role, spec in wanted.items():
            if not spec and role in self.served:
                self.served.pop(role).batcher.close()
                self.specs.pop(role, None)
                self.event("removed", role)
            elif spec:
                self.specs[role] = spec
        for role, runtime in runtimes.items():
            self._install(role, runtime)
        self.canary_share = share
        done.set()

    def _keep_request_log(self, path, rows: int) -> None:
        """A request log file into the artifact store (S3, a team server), and a ``request_log``
        event of the deployment that names it: the log outlives this host."""
        from ..store.events import event_row

        digest = self.workspace.artifacts.put_file(path)
        self.workspace.store.events.add(
            [
                event_row(
                    "deployment", self.name, "request_log", "server", {"hash": digest, "rows": rows, "file": path.name}
                )
            ]
        )

    def _record_swap(self, role: str, spec: str, previous: str, version: str) -> None:
        """The swap in the store's history of this deployment, beside the lab's own events."""
        from ..store.events import event_row

        try:
            self.workspace.store.events.add(
                [
                    event_row(
                        "deployment",
                        self.name,
                        "swapped",
                        "server",
                        {
                            "detail": f"{role}: {previous} → {version}",
                            "role": role,
                            "spec": spec,
                            "previous": previous,
                            "version": version,
                        },
                    )
                ]
            )
        except Exception:  # serving goes on; the process log has the swap
            log.exception("could not record the swap of %s in the store", role)

    def close(self, timeout: float = 30.0) -> None:
        self._stop.set()
        for served in self.served.values():
            served.batcher.close()
        for served in self.served.values():
            served.batcher.join(timeout)
        if self.request_log is not None:
            self.request_log.close()

    # ---- routing ------------------------------------------------------------------------------

    def route(self, model: str, version: str | None) -> tuple[ServedVersion, ServedVersion | None]:
        """The version that answers, and the shadow that gets a copy (only for routed requests)."""
        if model != self.name:
            raise ProtocolError(404, f"unknown model {model!r}; this server serves {self.name!r}")
        if version is not None:
            for served in self.served.values():
                if served.runtime.version == version and served.role != "shadow":
                    return served, None
            loaded = sorted({s.runtime.version for s in self.served.values() if s.role != "shadow"})
            raise ProtocolError(404, f"version {version!r} of {model!r} is not loaded; loaded: {loaded}")
        canary = self.served.get("canary")
        if canary is not None and random.random() < self.canary_share:
            return canary, self.served.get("shadow")
        return self.served["primary"], self.served.get("shadow")

    def versions(self) -> list[str]:
        return sorted({s.runtime.version for s in self.served.values()}, key=lambda v: (len(v), v))

    def compare_shadow(self, primary: dict[str, np.ndarray], shadow: dict[str, np.ndarray]) -> None:
        """Count a disagreement when a label-like (non-float) output differs — two classifiers'
        probabilities always differ a little — or, for models with float outputs only, when one
        differs by more than 1e-4.  Every output's own count is kept too."""
        summary = self.shadow
        summary.compared += 1
        decisive = [n for n, a in primary.items() if a.dtype.kind != "f"] or list(primary)
        rows = next((a.shape[0] for a in primary.values() if a.ndim), 1)
        differing_rows = np.zeros(rows, dtype=bool)
        disagreed = False
        for name, ours in primary.items():
            theirs = shadow.get(name)
            if theirs is None or theirs.shape != ours.shape:
                same = False
            elif ours.dtype.kind == "f":
                diff = float(np.max(np.abs(ours.astype(np.float64) - theirs))) if ours.size else 0.0
                summary.max_abs_diff = max(summary.max_abs_diff, diff)
                same = diff <= 1e-4
            else:
                same = bool(np.array_equal(ours, theirs))
            if not same:
                summary.disagreed_by_output[name] = summary.disagreed_by_output.get(name, 0) + 1
                disagreed = disagreed or name in decisive
                if name in decisive:
                    differing_rows |= _rows_differing(ours, theirs, rows)
        summary.disagreed += disagreed
        summary.rows_compared += rows
        summary.rows_disagreed += int(differing_rows.sum())

    def describe(self) -> dict:
        return {
            "name": self.name,
            "roles": {
                role: {
                    "spec": s.spec,
                    **s.runtime.describe(),
                    "pending": s.batcher.pending,
                    "running": s.batcher.running,
                }
                for role, s in self.served.items()
            },
            "canary_share": self.canary_share,
            "shadow": vars(self.shadow) if "shadow" in self.served else None,
            "options": vars(self.options),
            "request_log": str(self.request_log.folder) if self.request_log else None,
            "events": list(self.events),
            "stats": [s.as_triton() for s in self.stats.values()],
        }
