"""A real team server for tests: in a thread of the test process (cheap enough for one per test),
or as its own process (``mlops-lab server``) where a test restarts or kills it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time

import requests

from mlops_lab.config import StoreLocation
from mlops_lab.net import free_port
from mlops_lab.server.team import build_team_server, serve

_running: dict[str, TeamServerThread] = {}


class TeamServerThread:
    def __init__(self, db_url: str, artifacts: str, **options):
        self.team = build_team_server(db_url, artifacts, **options)
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self.port = 0

        def ready(port: int) -> None:
            self.port = port
            started.set()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._task = self._loop.create_task(serve(self.team, "127.0.0.1", 0, "/", ready))
            try:
                self._loop.run_until_complete(self._task)
            except asyncio.CancelledError:
                pass

        self._thread = threading.Thread(target=run, name="team-server", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("the team server did not start")
        self.url = f"http://127.0.0.1:{self.port}"
        _running[self.url] = self

    def token(self, user: str, *, admin: bool = False) -> str:
        if admin:
            self.team.access.team.ensure_user(user, is_admin=True)
        return self.team.access.create_token(None, user)[1]

    def location(self, user: str, *, admin: bool = False) -> StoreLocation:
        return StoreLocation(self.url, self.url, "test team server", self.token(user, admin=admin))

    def stop(self) -> None:
        _running.pop(self.url, None)
        self._loop.call_soon_threadsafe(self._task.cancel)
        self._thread.join(10)
        self.team.executor.shutdown(wait=False)


def server_of(url: str) -> TeamServerThread:
    return _running[url]


class TeamServerProcess:
    """``mlops-lab server`` as its own process, on a fixed port so that a restart keeps its address."""

    def __init__(self, db_url: str, artifacts: str, *extra: str, port: int | None = None, env: dict | None = None):
        self.db_url, self.artifacts, self.extra = db_url, artifacts, extra
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **(env or {})}
        self.process: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        command = [sys.executable, "-m", "mlops_lab.cli", "--db-url", self.db_url, "--artifacts", self.artifacts]
        command += ["server", "--port", str(self.port), *self.extra]
        self.process = subprocess.Popen(command, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the team server exited: {self.process.stdout.read().decode()}")
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("the team server did not answer within 30 s")

    def token(self, user: str) -> str:
        """A token for ``user``, made as the server's operator does: the CLI straight on the database."""
        command = [sys.executable, "-m", "mlops_lab.cli", "--db-url", self.db_url, "token", "create", "--user", user]
        return subprocess.run(command, capture_output=True, text=True, check=True).stdout.strip()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(10)
