"""An HTTP client of the team server: its token on every call, keep-alive connections, and retries
that ride out a server restart.

A call the server may have applied before its answer was lost is retried only when it is safe to
apply twice (reads, and writes that carry an id the server deduplicates): ``idempotent=True``.
A call that never reached the server (connection refused) is always retried.
"""

from __future__ import annotations

import json
import os
import threading
import time

import requests

from .errors import UnauthorizedError, UnavailableError, error_from_response

RETRY_STATUSES = {502, 503, 504}


def dumps(value) -> bytes:
    """JSON as both ends read it: NaN and infinities kept (metrics have them), any object refused."""
    return json.dumps(value, allow_nan=True, separators=(",", ":")).encode()


class RemoteClient:
    def __init__(self, url: str, token: str | None, *, timeout: float = 60, retry_seconds: float | None = None):
        if not url.startswith(("http://", "https://")):
            raise UnavailableError(f"a team server's address starts with http:// or https://, got {url!r}")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.retry_seconds = (
            float(os.environ.get("MLOPS_LAB_RETRY_SECONDS", 120)) if retry_seconds is None else retry_seconds
        )
        self._local = threading.local()  # a session (a kept-alive connection) per thread

    def __repr__(self) -> str:
        return f"<RemoteClient {self.url}>"

    @property
    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
            if self.token:
                session.headers["Authorization"] = f"Bearer {self.token}"
        return session

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        params: dict | None = None,
        headers: dict | None = None,
        idempotent: bool = True,
    ) -> requests.Response:
        """Send a request; return the response of a 2xx answer, raise the server's error otherwise."""
        deadline = time.monotonic() + self.retry_seconds
        delay = 0.05
        while True:
            if hasattr(body, "seek"):
                body.seek(0)  # a file sent again is sent whole
            problem = None  # why no answer came, when none did
            try:
                response = self._session.request(
                    method, f"{self.url}/{path}", data=body, params=params, headers=headers, timeout=self.timeout
                )
            except requests.ConnectionError as exc:
                never_sent = "refused" in str(exc).lower() or isinstance(exc, requests.exceptions.ConnectTimeout)
                problem, retry = f"cannot be reached: {exc}", idempotent or never_sent
            except requests.exceptions.ChunkedEncodingError:
                problem, retry = "cut its answer off part way", idempotent
            except requests.Timeout:
                problem, retry = f"did not answer within {self.timeout:.0f} s", idempotent
            else:
                if response.status_code < 300:
                    return response
                retry = idempotent and response.status_code in RETRY_STATUSES
            if retry and time.monotonic() + delay < deadline:
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if problem is not None:
                raise UnavailableError(f"the team server at {self.url} {problem}")
            error = error_from_response(response.status_code, response.content)
            if isinstance(error, UnauthorizedError):
                error.args = (f"{error.args[0]} (the team server at {self.url}: set MLOPS_LAB_TOKEN)",)
            raise error

    def call(self, path: str, args: dict | None = None, *, idempotent: bool = True):
        """POST ``args`` as JSON, return the answer's ``result``."""
        response = self.request(
            "POST",
            path,
            body=dumps(args or {}),
            headers={"Content-Type": "application/json"},
            idempotent=idempotent,
        )
        return json.loads(response.content)["result"]

    def get_json(self, path: str, params: dict | None = None):
        return json.loads(self.request("GET", path, params=params).content)
