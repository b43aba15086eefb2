"""What ``ml.serve`` returns, and how a notebook reaches the lab that runs its deployments.

Inside a kernel started by a Jupyter server, deployments belong to that server's
:class:`~mlops_lab.serving.manager.ServingManager` (so the Serving panel shows them and they
outlive the kernel): the kernel finds its server through the runtime file the server wrote
(``jpserver-<its pid>.json``; a kernel is the server's child) and calls the same REST API as the
panel.  Anywhere else — a script, a plain IPython — a manager in this process does the work.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

import numpy as np

from ..errors import InvalidInputError, error_from_response
from .protocol import DTYPES, TensorSpec, tensor_from_bytes, tensor_to_bytes

if TYPE_CHECKING:
    from ..workspace import Workspace


class ServingClient:
    """A small v2 client sending and receiving binary tensors; one keep-alive connection per thread."""

    def __init__(self, url: str, model: str, token: str | None = None, timeout: float = 60.0):
        parts = urlsplit(url)
        self.model, self.token, self.timeout = model, token, timeout
        self._address = (parts.hostname, parts.port)
        self._local = threading.local()
        self._metadata: dict | None = None

    def _request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        headers = dict(headers or {})
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        for attempt in (0, 1):  # a keep-alive connection the server closed: reconnect once
            connection = getattr(self._local, "connection", None)
            if connection is None:
                connection = self._local.connection = http.client.HTTPConnection(*self._address, timeout=self.timeout)
            try:
                connection.request(method, path, body, headers)
                response = connection.getresponse()
                return response, response.read()
            except (ConnectionError, http.client.HTTPException):
                connection.close()
                self._local.connection = None
                if attempt:
                    raise

    def metadata(self) -> dict:
        if self._metadata is None:
            response, body = self._request("GET", f"/v2/models/{quote(self.model)}")
            if response.status != 200:
                raise error_from_response(response.status, body)
            self._metadata = json.loads(body)
        return self._metadata

    def infer(self, inputs: dict[str, np.ndarray], version: str | None = None) -> dict[str, np.ndarray]:
        described, blobs = [], []
        for name, array in inputs.items():
            spec = next((s for s in self.metadata()["inputs"] if s["name"] == name), None)
            if spec is None:
                raise InvalidInputError(f"{self.model} has no input {name!r}")
            array = np.asarray(array, dtype=DTYPES[spec["datatype"]])
            raw = tensor_to_bytes(array)
            described.append(
                {
                    "name": name,
                    "shape": list(array.shape),
                    "datatype": spec["datatype"],
                    "parameters": {"binary_data_size": len(raw)},
                }
            )
            blobs.append(raw)
        header = json.dumps({"inputs": described, "parameters": {"binary_data_output": True}}).encode()
        path = f"/v2/models/{quote(self.model)}" + (f"/versions/{quote(version)}" if version else "") + "/infer"
        response, body = self._request(
            "POST",
            path,
            b"".join([header, *blobs]),
            {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"},
        )
        if response.status != 200:
            raise error_from_response(response.status, body)
        length = int(response.getheader("Inference-Header-Content-Length") or len(body))
        answer = json.loads(body[:length])
        outputs, offset = {}, length
        for output in answer["outputs"]:
            size = output.get("parameters", {}).get("binary_data_size")
            if size is None:
                outputs[output["name"]] = np.asarray(output["data"]).reshape(output["shape"])
                continue
            spec = TensorSpec(output["name"], output["datatype"], tuple(output["shape"]))
            outputs[spec.name] = tensor_from_bytes(body[offset : offset + size], spec, spec.shape)
            offset += size
        return outputs

    def predict(self, rows) -> np.ndarray:
        """The first output for a table of rows (a frame or an array), for a model with one input.

        A frame's columns are put in the order the model was registered with, when it was."""
        metadata = self.metadata()
        inputs = metadata["inputs"]
        if len(inputs) != 1:
            raise InvalidInputError(f"{self.model} takes {len(inputs)} inputs: use infer() with a dict")
        columns = (metadata.get("parameters") or {}).get("input_columns")
        if columns and hasattr(rows, "columns"):
            missing = [c for c in columns if c not in list(rows.columns)]
            if missing:
                raise InvalidInputError(f"{self.model} needs columns {missing}")
            rows = rows[columns]
        values = rows.to_numpy() if hasattr(rows, "to_numpy") else np.asarray(rows)
        return next(iter(self.infer({inputs[0]["name"]: values}).values()))

    def close(self) -> None:
        """Close this thread's connection (others close with their threads)."""
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


# ---- who runs the deployments -------------------------------------------------------------------


class LabController:
    """The deployments of the Jupyter server this kernel runs in, through its REST API."""

    def __init__(self, url: str, token: str):
        self.base = url.rstrip("/") + "/mlops-lab/api/deployments"
        self.token = token

    def _call(self, method: str, path: str = "", body: dict | None = None):
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise error_from_response(exc.code, exc.read()) from None

    def start(self, model: str, **options) -> dict:
        return self._call("POST", "", {"model": model, **options})

    def stop(self, name: str) -> dict:
        return self._call("DELETE", "/" + quote(name))

    def get(self, name: str) -> dict:
        return self._call("GET", "/" + quote(name))

    def list(self) -> list[dict]:
        return self._call("GET")["deployments"]

    def log(self, name: str, lines: int = 200) -> str:
        return self._call("GET", f"/{quote(name)}/log?lines={lines}")["log"]

    def rollout(self, name: str, **change) -> dict:
        return self._call("POST", f"/{quote(name)}/rollout", change)

    def wait_ready(self, name: str, timeout: float = 120.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            summary = self.get(name)
            if summary["state"] == "ready":
                return summary
            if summary["state"] in ("failed", "stopped"):
                raise InvalidInputError(f"{name} is {summary['state']}: {self.log(name, 5)}")
            time.sleep(0.1)
        raise TimeoutError(f"{name} was not ready within {timeout:.0f} s")


def lab_server() -> dict | None:
    """The Jupyter server that started this process, from the runtime file it wrote."""
    try:
        from jupyter_core.paths import jupyter_runtime_dir
    except ImportError:
        return None
    path = Path(jupyter_runtime_dir()) / f"jpserver-{os.getppid()}.json"
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return info if info.get("url") else None


def controller(workspace: "Workspace"):
    """The lab's deployments when this is a kernel of a lab, else the workspace's own manager."""
    info = lab_server()
    if info is not None:
        return LabController(info["url"], info.get("token", ""))
    return workspace.serving


class DeploymentHandle:
    """A running deployment, seen from a notebook: predict with it, watch it, stop it."""

    def __init__(self, summary: dict, control, workspace: "Workspace", token: str | None = None):
        self.name, self.url = summary["name"], summary["url"]
        self._control = control
        self._workspace = workspace
        self.client = ServingClient(self.url, self.name, token)

    def predict(self, rows) -> np.ndarray:
        return self.client.predict(rows)

    def infer(self, inputs: dict[str, np.ndarray], version: str | None = None) -> dict[str, np.ndarray]:
        return self.client.infer(inputs, version)

    def status(self) -> dict:
        return self._control.get(self.name)

    def log(self, lines: int = 50) -> str:
        return self._control.log(self.name, lines)

    def rollout(self, *, canary: str | None = None, canary_share: float = 0.0, shadow: str | None = None) -> dict:
        """Set the canary (and its share of traffic) and the shadow without a restart; None removes."""
        return self._control.rollout(self.name, canary=canary, canary_share=canary_share, shadow=shadow)

    def request_log(self, *, shadow: bool = False):
        """The requests answered so far, as a polars frame (the drift service's "current")."""
        from .request_log import read_request_log, read_stored_request_log

        if not self._workspace.artifacts.is_local:  # kept in the artifact store, readable from anywhere
            return read_stored_request_log(self._workspace, self.name, shadow=shadow)
        server = self.status().get("server") or {}
        if not server.get("request_log"):
            raise InvalidInputError(f"{self.name} keeps no request log (log_sample=0) or is not ready")
        return read_request_log(server["request_log"], shadow=shadow)

    def drift(self, reference, *, save: bool = True, name: str | None = None, **options):
        """Drift of what this deployment was asked (its request log) against ``reference`` —
        the training data, a file, a dataset version or a stored profile — over the columns both
        have.  With ``save`` the report is stored linked to the deployment and the primary version,
        and shows in the Drift reports panel."""
        from ..monitoring import drift

        report = drift(reference, self.request_log(), artifacts=self._workspace.artifacts, **options)
        if save:
            server = self.status().get("server") or {}
            primary = server.get("roles", {}).get("primary", {})
            model = f"{primary['name']}/{primary['version']}" if primary.get("name") else None
            self._workspace.drift_reports.save(
                report,
                name or f"{self.name}: requests",
                reference=_describe(reference),
                current=server.get("request_log", ""),
                model=model,
                deployment=self.name,
            )
        return report

    def stop(self) -> dict:
        self.client.close()
        return self._control.stop(self.name)

    def __repr__(self) -> str:
        return f"<served {self.name} at {self.url}>"

    def _repr_html_(self) -> str:
        import html

        summary = self.status()
        server = summary.get("server") or {}
        roles = "; ".join(f"{role} v{r['version']} on {r['provider']}" for role, r in server.get("roles", {}).items())
        return (
            f"<b>{html.escape(self.name)}</b> {html.escape(summary['state'])} at "
            f"<code>{html.escape(self.url)}</code> — {html.escape(roles or summary['model'])}"
        )


def _describe(reference) -> str:
    """How a drift report names its reference: a path or hash as given, else the kind of object."""
    return str(reference) if isinstance(reference, (str, os.PathLike)) else type(reference).__name__


def start_serving(
    workspace: "Workspace", model: str, *, wait: bool = True, timeout: float = 120.0, **options
) -> DeploymentHandle:
    """Start a deployment (through the lab when there is one) and, with ``wait``, wait until it is ready."""
    control = controller(workspace)
    summary = control.start(model, **options)
    if wait:
        summary = control.wait_ready(summary["name"], timeout)
    return DeploymentHandle(summary, control, workspace, options.get("token"))
