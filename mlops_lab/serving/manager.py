"""Starting, watching, restarting and stopping serving processes — what the lab's server runs.

Each deployment is a ``python -m mlops_lab.serving`` child on 127.0.0.1 and a port chosen once
(kept across restarts, so clients keep their URL), its output appended to ``server.log`` in the
deployment's folder.  One watcher thread checks every process: an exit that nobody asked for is
a crash — recorded, then restarted after a growing pause; a process that stops answering its
readiness probe is killed and restarted the same way.  A process that fails before it was ever
ready (a model that cannot load, say) is not restarted: its state is ``failed`` and the log says
why.  Every change of state is also an event in the store (entity ``deployment``), with who
asked — or ``watcher`` for what the manager did itself — so the history outlives the lab.

Deployments are team state: each one's desired state (model, rollout, owner, host, running or
stopped) is a row of the store's deployment table, which every lab lists.  A lab reconciles the
rows it owns (its user's, on its host): it starts again what should run after a restart, stops
what another lab asked to stop, and applies a rollout another lab asked for.  Through a team
server only the owner, or one who manages the model, may change another's deployment.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import deployments_dir
from ..errors import InvalidInputError, NotFoundError
from ..net import free_port
from ..store.deployments import COLUMNS as DEPLOYMENT_COLUMNS
from ..store.file_state import HOST
from .options import TOKEN_ENV

if TYPE_CHECKING:
    from ..workspace import Workspace

ADMIN_TOKEN_ENV = "MLOPS_LAB_SERVE_ADMIN_TOKEN"  # rollout changes while serving (the manager sets it)

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
# the options of `mlops-lab serve` a deployment may set, with their types
OPTIONS = {
    "canary": str,
    "canary_share": float,
    "shadow": str,
    "max_batch_size": int,
    "max_queue_delay_us": int,
    "max_queue_size": int,
    "timeout_us": int,
    "threads": int,
    "cpu": bool,
    "log_sample": float,
}
UNHEALTHY_CHECKS = 10  # failed readiness probes in a row before a live process is restarted
WATCHER = "watcher"  # the user recorded on what the manager does by itself
RECONCILE_SECONDS = 2.0  # how often a lab compares its processes with what the team's table wants
ROLLOUT_KEYS = ("canary", "canary_share", "shadow")
log = logging.getLogger("mlops_lab.serving")


class ServingError(InvalidInputError):
    """A deployment request that cannot be carried out; the message says why."""


@dataclass
class ManagedProcess:
    name: str
    model: str
    options: dict
    port: int
    token: str | None
    folder: Path
    owner: str = ""
    process: subprocess.Popen | None = None
    state: str = "starting"  # starting → ready; crashed → restarting → ready; stopped; failed
    restarts: int = 0
    ever_ready: bool = False
    last_exit: int | None = None
    started_at: float = 0.0
    next_start: float = 0.0
    failed_checks: int = 0
    events: list[dict] = field(default_factory=list)
    admin_token: str = field(default_factory=lambda: secrets.token_hex(16))  # rollout changes, ours only

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.folder / "server.log"

    def event(self, kind: str, detail: str = "", user: str = WATCHER) -> dict:
        entry = {"time": time.time(), "event": kind, "detail": detail, "user": user}
        self.events.append(entry)
        del self.events[:-100]
        return entry

    def summary(self) -> dict:
        return {
            "name": self.name,
            "model": self.model,
            "options": self.options,
            "owner": self.owner,
            "host": HOST,
            "here": True,
            "url": self.url,
            "port": self.port,
            "state": self.state,
            "pid": self.process.pid if self.process else None,
            "restarts": self.restarts,
            "last_exit": self.last_exit,
            "started_at": self.started_at,
            "token_required": bool(self.token),
            "log": str(self.log_path),
            "events": self.events[-20:],
        }


def _check_options(options: dict) -> dict:
    checked = {}
    for key, value in options.items():
        kind = OPTIONS.get(key)
        if kind is None:
            raise ServingError(f"unknown serving option {key!r}; known: {sorted(OPTIONS)}")
        if value is None:
            continue
        if kind is bool:
            if not isinstance(value, bool):
                raise ServingError(f"{key} must be true or false")
        elif kind is str:
            if not isinstance(value, str) or not value or len(value) > 500 or value.startswith("-"):
                raise ServingError(f"{key} must be a model reference such as churn@candidate")
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and value != int(value)):
            raise ServingError(f"{key} must be a number")
        elif value < 0:
            raise ServingError(f"{key} must not be negative")
        checked[key] = kind(value)
    if not 0 <= checked.get("canary_share", 0) <= 1:
        raise ServingError("canary_share must be between 0 and 1")
    return checked


LOG_BYTES = 16 << 20  # server.log is rotated to server.log.1 past this size, at each (re)start


def _rotate(path: Path) -> None:
    """Keep a deployment's log from growing without bound (a client can make a server log a lot)."""
    try:
        if path.stat().st_size > LOG_BYTES:
            path.replace(path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass


def default_name(model: str) -> str:
    if model.endswith(".onnx"):
        return Path(model).stem
    return re.split(r"[@/]", model, maxsplit=1)[0]


class ServingManager:
    def __init__(self, workspace: "Workspace", *, check_seconds: float = 0.5, reconcile: bool = False):
        """``reconcile``: this is a lab's manager, which runs the team table's deployments of its user
        on its host (a script's or a kernel's own manager runs only what it started)."""
        self.workspace = workspace
        self.reconcile = reconcile
        self.location = workspace.location
        self.root = deployments_dir(self.location)
        self.check_seconds = check_seconds
        self._deployments: dict[str, ManagedProcess] = {}
        self._unrecorded: list[dict] = []  # events waiting to be written to the store
        self._lock = threading.RLock()
        self._closed = threading.Event()
        self._last_reconcile = 0.0
        self._reconcile_error: str | None = None
        self._watcher = threading.Thread(target=self._watch, name="serving-watcher", daemon=True)
        self._watcher.start()

    # ---- requests ----------------------------------------------------------------------------

    def start(
        self, model: str, *, name: str | None = None, token: str | None = None, user: str | None = None, **options
    ) -> dict:
        """Start serving ``model``; returns at once (state ``starting``) — :meth:`wait_ready` waits."""
        if not isinstance(model, str) or not model.strip() or model.startswith("-") or len(model) > 500:
            raise ServingError("model must be a reference such as churn@production, churn/3 or a .onnx path")
        name = name or default_name(model)
        if not NAME.match(name):
            raise ServingError(f"deployment name {name!r}: use letters, digits, '_', '.', '-' (≤ 100)")
        options = _check_options(options)
        if token is not None and (not isinstance(token, str) or len(token) < 8):
            raise ServingError("a token must be a string of at least 8 characters")
        for spec in filter(None, (model, options.get("canary"), options.get("shadow"))):
            self._check_reference(spec)
        user = user or self.workspace.user
        wanted = self.workspace.store.deployments.get(name)
        if wanted is not None and wanted["state"] == "running" and not self._owns(wanted):
            raise ServingError(
                f"{name} is {wanted['owner']}'s deployment on {wanted['host']}; stop it or choose another name"
            )
        with self._lock:
            current = self._deployments.get(name)
            if current is not None and current.state not in ("stopped", "failed"):
                raise ServingError(f"{name} is already being served at {current.url}; stop it first")
            port = current.port if current is not None else free_port()
            managed = self._begin(name, model, options, port, token, self.workspace.user)
            self._want(managed, "running", user)  # refused (another's deployment): nothing started
            self._deployments[name] = managed
            self._note(managed, "requested", model, user, model=model, options=options)
            self._launch(managed)
            summary = managed.summary()
        self._record()
        return summary

    def _begin(self, name: str, model: str, options: dict, port: int, token: str | None, owner: str):
        folder = self.root / name
        folder.mkdir(parents=True, exist_ok=True)
        return ManagedProcess(name, model, options, port, token, folder, owner)

    # ---- the team's table of deployments --------------------------------------------------------

    def _owns(self, wanted: dict) -> bool:
        """Whether this lab runs the deployment ``wanted`` describes (its user's, on its host)."""
        return wanted["host"] == HOST and wanted["owner"] == self.workspace.user

    def _want(self, managed: ManagedProcess, state: str, user: str) -> None:
        row = {"name": managed.name, "model": managed.model, "options": managed.options, "owner": managed.owner,
               "host": HOST, "port": managed.port, "state": state}  # fmt: skip
        self.workspace.store.deployments.save(row, user)

    def _save_wanted(self, wanted: dict, user: str, **changes) -> None:
        self.workspace.store.deployments.save({**{k: wanted[k] for k in DEPLOYMENT_COLUMNS}, **changes}, user)

    def _wanted_elsewhere(self, name: str) -> dict:
        """The table's row of a deployment this lab does not run (its owner's lab does)."""
        wanted = self.workspace.store.deployments.get(name)
        if wanted is None:
            raise NotFoundError(f"no deployment named {name!r}")
        return wanted

    @staticmethod
    def _elsewhere(wanted: dict) -> dict:
        """What a lab shows of a deployment another lab runs."""
        return {
            **{key: wanted[key] for key in ("name", "model", "options", "owner", "host", "port")},
            "url": f"http://{wanted['host']}:{wanted['port']}",
            "state": "elsewhere" if wanted["state"] == "running" else "stopped",
            "here": False,
            "pid": None,
            "restarts": 0,
            "last_exit": None,
            "started_at": wanted["updated_at"] / 1000,
            "token_required": False,
            "events": [],
        }

    def _note_elsewhere(self, name: str, kind: str, user: str, **facts) -> None:
        self.workspace.store.events.add(
            [{"entity_type": "deployment", "entity_id": name, "kind": kind, "user": user,
              "time": int(time.time() * 1000), "payload": json.dumps({"detail": "", **facts})}]
        )  # fmt: skip

    def _reconcile(self) -> None:
        """Make this lab's processes what the table wants of the deployments it owns."""
        for wanted in self.workspace.store.deployments.list():
            if not self._owns(wanted):
                continue
            with self._lock:
                managed = self._deployments.get(wanted["name"])
            if wanted["state"] == "running" and (managed is None or managed.state in ("stopped", "failed")):
                if managed is None:  # this lab restarted: adopt it again, on its port if still free
                    self._adopt(wanted)
            elif wanted["state"] == "stopped" and managed is not None and managed.state not in ("stopped", "failed"):
                self._halt(managed, wanted["updated_by"])
            elif managed is not None and managed.state == "ready":
                asked = {k: wanted["options"].get(k) or None for k in ROLLOUT_KEYS}
                running = {k: managed.options.get(k) or None for k in ROLLOUT_KEYS}
                if asked != running:
                    self.rollout(wanted["name"], **{**asked, "canary_share": asked["canary_share"] or 0.0},
                                 user=wanted["updated_by"])  # fmt: skip

    def _adopt(self, wanted: dict) -> None:
        port = wanted["port"]
        try:
            import socket

            with socket.socket() as probe:  # as the server binds it: a closed connection's TIME_WAIT is no use
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(("127.0.0.1", port))
        except OSError:
            port = free_port()
        with self._lock:
            if wanted["name"] in self._deployments:
                return
            managed = self._begin(wanted["name"], wanted["model"], dict(wanted["options"]), port, None, wanted["owner"])
            self._deployments[managed.name] = managed
            self._note(managed, "adopted", "started again after the lab restarted", WATCHER)
            self._launch(managed)

    def stop(self, name: str, timeout: float = 30.0, user: str | None = None) -> dict:
        """SIGTERM (the server drains requests in flight), then SIGKILL after ``timeout``.  Another
        lab's deployment is marked stopped in the team's table, and its lab stops it."""
        user = user or self.workspace.user
        with self._lock:
            managed = self._deployments.get(name)
        if managed is None:
            wanted = self._wanted_elsewhere(name)
            self._save_wanted(wanted, user, state="stopped")
            self._note_elsewhere(name, "stop", user, host=wanted["host"])
            return self._elsewhere({**wanted, "state": "stopped"})
        self._want(managed, "stopped", user)
        return self._halt(managed, user, timeout)

    def _halt(self, managed: ManagedProcess, user: str, timeout: float = 30.0) -> dict:
        """Stop ``managed``'s process, leaving the table as it is (a lab shutting down keeps its
        deployments wanted: it starts them again when it is back)."""
        with self._lock:
            managed.state = "stopped"
            process = managed.process
            self._note(managed, "stop", "", user)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        with self._lock:
            managed.last_exit = process.returncode if process is not None else None
            self._note(managed, "stopped", f"exit code {managed.last_exit}")
            summary = managed.summary()
        self._record()
        return summary

    def rollout(
        self,
        name: str,
        *,
        canary: str | None = None,
        canary_share: float = 0.0,
        shadow: str | None = None,
        user: str | None = None,
    ) -> dict:
        """Change the canary, its share and the shadow of a running deployment without a restart.

        The serving process loads the new versions aside first; if one cannot be loaded nothing
        changes.  Restarts keep the new rollout."""
        change = _check_options({"canary": canary, "canary_share": canary_share, "shadow": shadow})
        user = user or self.workspace.user
        with self._lock:
            managed = self._deployments.get(name)
        if managed is None:  # another lab's: the table says what it should become, its lab does it
            wanted = self._wanted_elsewhere(name)
            for spec in filter(None, (canary, shadow)):
                self._check_reference(spec)
            options = {k: v for k, v in wanted["options"].items() if k not in ROLLOUT_KEYS}
            options.update({k: v for k, v in change.items() if v})
            self._save_wanted(wanted, user, options=options)
            self._note_elsewhere(name, "rollout requested", user, **change)
            return self._elsewhere({**wanted, "options": options})
        with self._lock:
            if managed.state != "ready":
                raise ServingError(f"{name} is {managed.state}; a rollout needs it ready")
        body = {"canary": canary, "canary_share": change.get("canary_share", 0.0), "shadow": shadow}
        request = urllib.request.Request(
            managed.url + "/v2/deployment/rollout",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {managed.admin_token}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                result = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise ServingError(json.loads(exc.read() or b"{}").get("error", f"rollout refused ({exc.code})")) from None
        except OSError as exc:
            raise ServingError(f"{name} did not answer the rollout: {exc}") from None
        with self._lock:
            for key in ("canary", "canary_share", "shadow"):
                managed.options.pop(key, None)
            managed.options.update({k: v for k, v in change.items() if v})
            detail = (
                f"canary {result['canary']} at {result['canary_share']:.0%}" if result["canary"] else "no canary"
            ) + (f", shadow {result['shadow']}" if result["shadow"] else ", no shadow")
            self._note(managed, "rollout", detail, user, **result)
            summary = managed.summary()
        self._want(managed, "running", user)
        self._record()
        return summary

    def _check_reference(self, spec: str) -> None:
        """An unknown model, version, alias or file fails here, in one sentence, before a process
        starts (and crashes with it in its log)."""
        if spec.endswith(".onnx"):
            if not Path(spec).expanduser().is_file():
                raise NotFoundError(f"no such model file: {spec}")
            return
        self.workspace.registry.resolve(spec)

    def remove(self, name: str, user: str | None = None) -> None:
        """Forget a stopped or failed deployment (its history stays in the store)."""
        user = user or self.workspace.user
        with self._lock:
            managed = self._deployments.get(name)
        if managed is None:
            if self._wanted_elsewhere(name)["state"] != "stopped":
                raise ServingError(f"{name} is running; stop it before removing it")
            self.workspace.store.deployments.remove(name)
            self._note_elsewhere(name, "removed", user)
            return
        with self._lock:
            if managed.state not in ("stopped", "failed"):
                raise ServingError(f"{name} is {managed.state}; stop it before removing it")
            self.workspace.store.deployments.remove(name)
            self._note(managed, "removed", "", user)
            del self._deployments[name]
        self._record()

    def list(self) -> list[dict]:
        """The team's deployments: this lab's processes, and those other labs run (by the table)."""
        with self._lock:
            here = {m.name: m.summary() for m in self._deployments.values()}
        try:
            table = self.workspace.store.deployments.list()
        except Exception:  # the table cannot be read: this lab's own still show
            log.exception("could not read the deployment table")
            table = []
        elsewhere = [self._elsewhere(w) for w in table if w["name"] not in here]
        return sorted([*here.values(), *elsewhere], key=lambda d: d["name"])

    def get(self, name: str) -> dict:
        """The summary, and the serving process's own account (versions, providers, statistics)."""
        with self._lock:
            managed = self._deployments.get(name)
        if managed is None:
            summary = self._elsewhere(self._wanted_elsewhere(name))
            return {**summary, "server": None, "history": self.history(name)}
        with self._lock:
            summary = managed.summary()
        summary["server"] = self._fetch(managed, "/v2/deployment") if managed.state == "ready" else None
        for role in ((summary["server"] or {}).get("roles") or {}).values():
            role["run_id"] = self.workspace.registry.source_run(role["spec"])  # where each version came from
        summary["history"] = self.history(name)
        return summary

    def history(self, name: str) -> list[dict]:
        """Every recorded change of ``name``, oldest first, from the store (any lab's)."""
        return self.workspace.store.events.events("deployment", name)

    def log(self, name: str, lines: int = 200) -> str:
        with self._lock:
            path = self._get(name).log_path
        if not path.exists():
            return ""
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - 256 * 1024))
            return b"\n".join(f.read().splitlines()[-lines:]).decode(errors="replace")

    def wait_ready(self, name: str, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                managed = self._get(name)
                if managed.state == "ready":
                    return managed.summary()
                if managed.state in ("failed", "stopped"):
                    raise ServingError(f"{name} is {managed.state}: {self.log(name, 5)}")
            time.sleep(0.05)
        raise ServingError(f"{name} was not ready within {timeout:.0f} s; see {self._get(name).log_path}")

    def shutdown(self) -> None:
        """Stop the processes; a lab's stay wanted in the table (the lab starts them when it is back),
        a script's are marked stopped (nothing would start them again)."""
        self._closed.set()
        for managed in [m for m in self._deployments.values() if m.state not in ("stopped", "failed")]:
            if not self.reconcile:
                try:
                    self._want(managed, "stopped", WATCHER)
                except Exception:
                    log.exception("could not mark %s stopped in the deployment table", managed.name)
            self._halt(managed, WATCHER)
        self._record()

    # ---- the record in the store --------------------------------------------------------------

    def _note(self, managed: ManagedProcess, kind: str, detail: str = "", user: str = WATCHER, **facts) -> None:
        """Remember an event (under the lock); :meth:`_record` writes it outside the lock."""
        entry = managed.event(kind, detail, user)
        self._unrecorded.append(
            {
                "entity_type": "deployment",
                "entity_id": managed.name,
                "kind": kind,
                "user": user,
                "time": int(entry["time"] * 1000),
                "payload": json.dumps({"detail": detail, **facts}),
            }
        )

    def _record(self) -> None:
        with self._lock:
            events, self._unrecorded = self._unrecorded, []
        if not events:
            return
        try:
            self.workspace.store.events.add(events)
        except Exception:  # serving goes on without its history; the log says so
            log.exception("could not record %d deployment events in the store", len(events))

    # ---- processes ---------------------------------------------------------------------------

    def _get(self, name: str) -> ManagedProcess:
        managed = self._deployments.get(name)
        if managed is None:
            raise NotFoundError(f"no deployment named {name!r}")
        return managed

    def _command(self, managed: ManagedProcess) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "mlops_lab.serving",
            managed.model,
            "--name",
            managed.name,
            "--port",
            str(managed.port),
            "--parent-pid",
            str(os.getpid()),
        ]  # the store's location goes by environment (below): a password never on the command line
        for key, value in managed.options.items():
            flag = "--" + key.replace("_", "-")
            if value is True:
                command.append(flag)
            elif value is not False:
                command += [flag, str(value)]
        return command

    def _launch(self, managed: ManagedProcess) -> None:
        env = dict(os.environ) | self.location.environment()
        env.pop(TOKEN_ENV, None)
        if managed.token:
            env[TOKEN_ENV] = managed.token  # not on the command line, where `ps` shows it
        env[ADMIN_TOKEN_ENV] = managed.admin_token
        _rotate(managed.log_path)
        with managed.log_path.open("ab") as log:
            log.write(f"---- {time.strftime('%Y-%m-%d %H:%M:%S')} starting {managed.model}\n".encode())
            log.flush()
            managed.process = subprocess.Popen(
                self._command(managed),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        managed.started_at = time.time()
        managed.failed_checks = 0
        self._note(managed, "started", f"pid {managed.process.pid} on port {managed.port}")

    def _fetch(self, managed: ManagedProcess, path: str, timeout: float = 2.0):
        request = urllib.request.Request(managed.url + path)
        if managed.token:
            request.add_header("Authorization", f"Bearer {managed.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read())
        except (OSError, ValueError):
            return None

    def _watch(self) -> None:
        while not self._closed.wait(self.check_seconds):
            with self._lock:
                deployments = list(self._deployments.values())
            for managed in deployments:
                try:
                    self._check(managed)
                except Exception as exc:  # the watcher must outlive any one deployment
                    managed.event("watch-error", repr(exc))
            if self.reconcile and time.monotonic() - self._last_reconcile >= RECONCILE_SECONDS:
                self._last_reconcile = time.monotonic()
                try:
                    self._reconcile()
                    self._reconcile_error = None
                except Exception as exc:  # a store that cannot be reached now may be back at the next round
                    if str(exc) != self._reconcile_error:  # said once, not every round
                        self._reconcile_error = str(exc)
                        log.warning("could not reconcile deployments with the team's table: %s", exc)
            self._record()

    def _check(self, managed: ManagedProcess) -> None:
        with self._lock:
            if managed.state in ("stopped", "failed"):
                return
            process = managed.process
            if managed.state == "crashed":
                if time.monotonic() >= managed.next_start:
                    managed.state = "restarting"
                    managed.restarts += 1
                    self._launch(managed)
                return
            code = process.poll()
            if code is not None:
                managed.last_exit = code
                if not managed.ever_ready:
                    managed.state = "failed"
                    self._note(managed, "failed", f"exited with {code} before it was ready; see the log")
                    return
                pause = min(30.0, 0.5 * 2 ** min(managed.restarts, 6))
                managed.state = "crashed"
                managed.next_start = time.monotonic() + pause
                self._note(managed, "crashed", f"exit code {code}; restarting in {pause:.1f} s")
                return
        ready = self._fetch(managed, "/v2/health/ready", timeout=1.0)
        with self._lock:
            if managed.state in ("stopped", "failed") or managed.process is not process:
                return
            if ready and ready.get("ready"):
                if managed.state != "ready":
                    self._note(managed, "ready", managed.url)
                managed.state, managed.ever_ready, managed.failed_checks = "ready", True, 0
            elif managed.state == "ready":
                managed.failed_checks += 1
                if managed.failed_checks >= UNHEALTHY_CHECKS:
                    self._note(managed, "unhealthy", f"no answer to {UNHEALTHY_CHECKS} readiness probes; killing it")
                    process.kill()
