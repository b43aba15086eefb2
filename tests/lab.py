"""A real ``jupyter lab`` on 127.0.0.1 (random port and token, temp dirs) and Debian's Chromium."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from mlops_lab.net import free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextlib.contextmanager
def mlflow_server(backend_uri: str, log: Path, artifacts: Path | None = None):
    """A real ``mlflow server`` on 127.0.0.1 over ``backend_uri`` (one worker, no GenAI job runners:
    a dozen huey processes would take a 2-core machine); yields its URL.  Its output goes to ``log``."""
    port = free_port()
    with open(log, "w") as output:
        process = subprocess.Popen(
            [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri", backend_uri,
             *(["--artifacts-destination", str(artifacts)] if artifacts else []),
             "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MLFLOW_TRACKING_TOKEN": "", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=2):
                        break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"mlflow server did not start:\n{log.read_text()[-3000:]}") from None
                    time.sleep(0.5)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


class LabServer:
    def __init__(self, root: Path, env: dict, python: str = sys.executable, args: tuple[str, ...] = ()):
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.root = root
        state = root.parent / f"lab-state-{self.port}"
        for name in ("config", "data", "runtime", "settings", "workspaces"):
            (state / name).mkdir(parents=True, exist_ok=True)
        # No "would you like news?" toast over the screenshots.
        notification = state / "settings" / "@jupyterlab" / "apputils-extension"
        notification.mkdir(parents=True)
        (notification / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        self.log = open(state / "server.log", "w")  # noqa: SIM115 (open while the server runs; closed in stop)
        self.log_path = state / "server.log"
        self.process = subprocess.Popen(
            [
                python,
                "-m",
                "jupyterlab",
                "--no-browser",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={root}",
                f"--LabApp.user_settings_dir={state / 'settings'}",
                f"--LabApp.workspaces_dir={state / 'workspaces'}",
                "--LabServerApp.open_browser=False",
                "--ServerApp.allow_root=True",
                *args,
            ],
            env={
                **os.environ,
                **env,
                "JUPYTER_CONFIG_DIR": str(state / "config"),
                "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
                # the tests package importable by the server (a test identity provider lives there)
                "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent), os.environ.get("PYTHONPATH", "")]),
            },
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _wait(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"jupyter lab did not start in {timeout} s: {self.log_path.read_text()[-3000:]}")

    def api(self, method: str, path: str, body: dict | None = None, prefix: str = "mlops-lab/api/"):
        """Call the lab's REST API as the browser would (with the token)."""
        import json

        request = urllib.request.Request(
            f"{self.url}/{prefix}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def run_in_kernel(self, code: str, timeout: float = 120) -> str:
        """Start a kernel through the lab, run ``code`` over the kernel's websocket, return its stdout."""
        import asyncio
        import json
        import uuid

        from tornado.websocket import websocket_connect

        kernel = self.api("POST", "api/kernels", {"name": "python3"}, prefix="")

        async def run() -> str:
            ws = await websocket_connect(
                f"ws://127.0.0.1:{self.port}/api/kernels/{kernel['id']}/channels?token={self.token}"
            )
            msg_id = uuid.uuid4().hex
            ws.write_message(
                json.dumps(
                    {
                        "header": {
                            "msg_id": msg_id,
                            "session": uuid.uuid4().hex,
                            "username": "test",
                            "msg_type": "execute_request",
                            "version": "5.3",
                        },
                        "parent_header": {},
                        "metadata": {},
                        "channel": "shell",
                        "buffers": [],
                        "content": {
                            "code": code,
                            "silent": False,
                            "store_history": False,
                            "user_expressions": {},
                            "allow_stdin": False,
                            "stop_on_error": True,
                        },
                    }
                )
            )
            out = []
            try:
                while True:
                    message = json.loads(await asyncio.wait_for(ws.read_message(), timeout))
                    if message.get("parent_header", {}).get("msg_id") != msg_id:
                        continue
                    kind = message["msg_type"]
                    if kind == "stream":
                        out.append(message["content"]["text"])
                    elif kind == "error":
                        raise RuntimeError("\n".join(message["content"]["traceback"]))
                    elif kind == "status" and message["content"]["execution_state"] == "idle":
                        return "".join(out)
            finally:
                ws.close()

        try:
            return asyncio.run(run())
        finally:
            request = urllib.request.Request(
                f"{self.url}/api/kernels/{kernel['id']}",
                method="DELETE",
                headers={"Authorization": f"token {self.token}"},
            )
            urllib.request.urlopen(request, timeout=30).close()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


def require_chromium() -> None:
    if not Path(CHROMIUM).exists():
        reason = f"Debian's Chromium is not installed at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("MLOPS_LAB_REQUIRE_SERVICES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
