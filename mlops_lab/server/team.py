"""``mlops-lab server``: the team server.  It owns the store (PostgreSQL) and the artifacts (any fsspec
URL), authenticates every call (its own tokens, or JupyterHub's when it runs as a hub service) and
serves the stores' REST API that kernels, labs and the CLI use through ``MLOPS_LAB_TRACKING_URI``.

    GET  /health                                  no token needed
    GET  /api/whoami
    POST /api/store/<domain>/<method>             mlops_lab.store.rest's calls, as the token's user
    POST /api/artifacts/missing                   {"blobs": [[sha256, size], …]} → {"missing": [bool, …]}
    PUT  /api/artifacts/<sha256>                  streamed in; kept only if the bytes hash to the name
    GET  /api/artifacts/<sha256>[?head=N]         hash-checked (head: the first N bytes, for previews)
    GET|POST /api/team/tokens, DELETE /api/team/tokens/<id>
    GET  /api/team/users, PUT /api/team/users/<name>     {"admin": true}
    GET|PUT /api/team/permissions                 {"kind", "name", "grantee", "level"}
    /api/2.0/mlflow/…, /api/2.0/mlflow-artifacts/…  MLflow's REST API (docs/mlflow.md), as the token's user

A thin door: ``mlops_lab.team`` decides who may do what; the store does the rest.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import SimpleNamespace

import sqlalchemy.exc
import tornado.httpserver
import tornado.netutil
import tornado.web

from ..artifacts import CHUNK, ArtifactStore, check_hash
from ..errors import InvalidInputError, MlopsLabError, UnauthorizedError, UnavailableError, error_body, status_of
from ..mlflow_api import MlflowApi
from ..registry import Registry
from ..remote import dumps
from ..store import open_store
from ..team import Access, HubIdentities, Identity
from ..team.calls import StoreCalls
from .mlflow import ApiRoute, ArtifactsRoute, MlflowAnswer, MlflowDoor, ServerInfoRoute, basic_password

log = logging.getLogger("mlops_lab.team")
MAX_UPLOAD_BYTES = 64 << 30
MAX_JSON_BYTES = 256 << 20


@dataclass
class TeamServer:
    access: Access
    calls: StoreCalls
    artifacts: ArtifactStore
    executor: ThreadPoolExecutor


class TeamHandler(tornado.web.RequestHandler):
    """Every route but /health: the caller's token, errors as ``{"error", "status"}``."""

    needs_token = True

    @property
    def team(self) -> TeamServer:
        return self.settings["team"]

    async def blocking(self, function, *args):
        """Run store work on the server's threads: one slow call does not stall the others."""
        return await asyncio.get_running_loop().run_in_executor(self.team.executor, function, *args)

    async def prepare(self):
        self.who: Identity | None = None
        if self.needs_token:
            header = self.request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            token = token.strip() if scheme.lower() in ("bearer", "token") else ""
            self.who = await self.blocking(self.team.access.authenticate, token)

    def answer(self, value, status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(dumps(value))

    def json_body(self) -> dict:
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise InvalidInputError(f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise InvalidInputError("the body must be a JSON object")
        return body

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, sqlalchemy.exc.OperationalError):  # the database went away: worth retrying
            exc = UnavailableError(f"the team server's database cannot be reached right now: {exc.orig or exc}")
        status = status_of(exc) if exc is not None else None
        if status is None:
            message = self._reason if isinstance(exc, tornado.web.HTTPError) or exc is None else "internal error"
            status = status_code
        else:
            message = str(exc.args[0]) if exc.args else str(exc)
        kind = type(exc).__name__ if isinstance(exc, MlopsLabError) else None
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        if status == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="mlops-lab"')
        self.finish(dumps(error_body(message, status, kind)))

    def log_exception(self, typ, value, tb):
        if isinstance(value, sqlalchemy.exc.OperationalError):
            log.warning(
                "team server: %s %s: the database cannot be reached: %s",
                self.request.method,
                self.request.path,
                value.orig,
            )
        elif status_of(value) is None and not isinstance(value, tornado.web.HTTPError):
            log.error("team server: %s %s failed", self.request.method, self.request.path, exc_info=(typ, value, tb))


class HealthHandler(TeamHandler):
    needs_token = False

    def get(self):
        self.answer({"status": "ok"})


class WhoAmIHandler(TeamHandler):
    def get(self):
        self.answer({"user": self.who.user, "admin": self.who.admin, "groups": list(self.who.groups)})


class StoreCallHandler(TeamHandler):
    async def post(self, domain: str, method: str):
        args = self.json_body()
        result = await self.blocking(self.team.calls.call, self.who, domain, method, args)
        self.answer({"result": result})


class MissingBlobsHandler(TeamHandler):
    async def post(self):
        blobs = self.json_body().get("blobs")
        if not isinstance(blobs, list) or not all(isinstance(b, list) and len(b) == 2 for b in blobs):
            raise InvalidInputError('the body is {"blobs": [[sha256, size], …]}')
        self.answer({"missing": await self.blocking(self.team.artifacts.missing, [tuple(b) for b in blobs])})


@tornado.web.stream_request_body
class BlobHandler(TeamHandler):
    """A blob in or out.  Uploads stream to a temporary file while they are hashed: nothing is kept
    unless the bytes hash to the name they were sent under."""

    async def prepare(self):
        self._incoming = None
        await super().prepare()
        if self.request.method == "PUT":
            self.request.connection.set_max_body_size(MAX_UPLOAD_BYTES)
            self._incoming = tempfile.NamedTemporaryFile(prefix="mlops-lab-upload-", delete=False)  # noqa: SIM115 (closed in on_finish)
            self._hash = hashlib.sha256()

    def data_received(self, chunk: bytes) -> None:
        if self._incoming is not None:
            self._hash.update(chunk)
            self._incoming.write(chunk)

    def on_finish(self) -> None:
        if self._incoming is not None:
            self._incoming.close()
            os.unlink(self._incoming.name)

    async def put(self, digest: str):
        check_hash(digest)
        self._incoming.flush()
        if self._hash.hexdigest() != digest:
            raise InvalidInputError(f"the uploaded bytes hash to {self._hash.hexdigest()}, not {digest}: nothing kept")
        await self.blocking(self.team.artifacts.put_file, self._incoming.name, digest)
        self.answer({"hash": digest}, 201)

    async def get(self, digest: str):
        check_hash(digest)
        self.set_header("Content-Type", "application/octet-stream")
        head = self.get_argument("head", None)
        if head is not None:
            if not head.isdigit():
                raise InvalidInputError(f"head is a number of bytes, got {head!r}")
            data, size = await self.blocking(self.team.artifacts.read_head, digest, int(head))
            self.set_header("X-Blob-Size", str(size))
            self.finish(data)
            return
        # Streamed a chunk at a time (a large model never sits whole in the server's memory) and
        # hashed on the way: a blob that no longer matches its name is cut off before its end, so
        # no client ever receives it whole.
        blob, size = await self.blocking(self.team.artifacts.open_blob, digest)
        self.set_header("Content-Length", str(size))
        seen = hashlib.sha256()
        try:
            while chunk := await self.blocking(blob.read, CHUNK):
                seen.update(chunk)
                if blob.tell() >= size and seen.hexdigest() != digest:
                    log.error("team server: blob %s is corrupt; its download was cut off", digest)
                    self.request.connection.close()
                    return
                self.write(chunk)
                await self.flush()
        finally:
            blob.close()
        self.finish()


class TokensHandler(TeamHandler):
    async def get(self):
        self.answer({"tokens": await self.blocking(self.team.access.tokens, self.who, self.get_argument("user", None))})

    async def post(self):
        body = self.json_body()
        token_id, secret = await self.blocking(
            lambda: self.team.access.create_token(
                self.who,
                body.get("user", self.who.user),
                note=body.get("note", ""),
                expires_in_days=body.get("expires_in_days"),
            )
        )
        self.answer({"id": token_id, "token": secret}, 201)


class TokenHandler(TeamHandler):
    async def delete(self, token_id: str):
        await self.blocking(self.team.access.revoke_token, self.who, token_id)
        self.answer({"revoked": token_id})


class UsersHandler(TeamHandler):
    async def get(self):
        self.answer({"users": await self.blocking(self.team.access.users, self.who)})


class UserHandler(TeamHandler):
    async def put(self, name: str):
        admin = self.json_body().get("admin")
        if not isinstance(admin, bool):
            raise InvalidInputError('the body is {"admin": true|false}')
        await self.blocking(self.team.access.set_admin, self.who, name, admin)
        self.answer({"user": name, "admin": admin})


class PermissionsHandler(TeamHandler):
    async def get(self):
        kind, name = self.get_argument("kind", None), self.get_argument("name", None)
        self.answer({"permissions": await self.blocking(self.team.access.permissions, self.who, kind, name)})

    async def put(self):
        body = self.json_body()
        fields = [body.get(key) for key in ("kind", "name", "grantee")]
        await self.blocking(self.team.access.set_permission, self.who, *fields, body.get("level"))
        self.answer({"permission": body})


# ---- at the team server's root: its tokens, the token's user acts with its permissions -------------


class TeamMlflowHandler(MlflowDoor, TeamHandler):
    """MLflow's REST API at the team server's root (``mlops_lab.server.mlflow``'s routes)."""

    async def prepare(self):
        password = basic_password(self.request.headers.get("Authorization", ""))
        if password is not None:
            self.request.headers["Authorization"] = f"Bearer {password}"
        try:
            await super().prepare()
        except UnauthorizedError as exc:
            raise MlflowAnswer(401, {"error_code": "UNAUTHENTICATED", "message": str(exc)}) from None

    @property
    def api(self) -> MlflowApi:
        calls = self.team.calls
        store = calls.store_for(self.who)
        # The registry service works on a workspace's store, artifacts and user; here the caller's.
        workspace = SimpleNamespace(store=store, artifacts=self.team.artifacts, user=self.who.user, flush=lambda: None)
        registry = Registry(workspace, default_required_approvals=calls.default_required_approvals)
        # Loading an uploaded model would unpickle a client's bytes in the shared server: not here.
        return MlflowApi(store, self.team.artifacts, self.who.user, registry=registry, adopt_models=False)

    async def in_thread(self, function, *args):
        return await self.blocking(function, *args)


class TeamApiHandler(ApiRoute, TeamMlflowHandler):
    pass


class TeamArtifactsHandler(ArtifactsRoute, TeamMlflowHandler):
    pass


class TeamServerInfoHandler(ServerInfoRoute, TeamMlflowHandler):
    pass


TEAM_MLFLOW_ROUTES = [
    (r"(?:api|ajax-api)/2\.0/mlflow/(.+)", TeamApiHandler),
    (r"(?:api|ajax-api)/2\.0/mlflow-artifacts/artifacts(?:/(.*))?", TeamArtifactsHandler),
    (r"api/3\.0/mlflow/server-info", TeamServerInfoHandler),
]


def make_app(team: TeamServer, base_url: str = "/") -> tornado.web.Application:
    base = "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"
    routes = [
        ("health", HealthHandler),
        ("api/whoami", WhoAmIHandler),
        (r"api/store/([a-z_]+)/([a-z_]+)", StoreCallHandler),
        ("api/artifacts/missing", MissingBlobsHandler),
        (r"api/artifacts/([^/]+)", BlobHandler),
        ("api/team/tokens", TokensHandler),
        (r"api/team/tokens/([^/]+)", TokenHandler),
        ("api/team/users", UsersHandler),
        (r"api/team/users/([^/]+)", UserHandler),
        ("api/team/permissions", PermissionsHandler),
        *TEAM_MLFLOW_ROUTES,  # MLFLOW_TRACKING_URI=<this server>, MLFLOW_TRACKING_TOKEN=mlt_…
    ]
    # under the base URL (JupyterHub's proxy sends /services/<name>/… on unchanged) and at the root
    # (kernels beside the hub call the service's own address)
    prefixes = {"/", base}
    return tornado.web.Application(
        [(prefix + path, handler) for prefix in prefixes for path, handler in routes], team=team
    )


def build_team_server(
    db_url: str,
    artifacts: str,
    *,
    default_level: str = "READ",
    admins: set[str] | frozenset[str] = frozenset(),
    approver_group: str | None = None,
    hub_api_url: str | None = None,
    hub_service: str | None = None,
    default_required_approvals: int = 1,
    threads: int = 16,
) -> TeamServer:
    if db_url.startswith(("http://", "https://")):
        raise InvalidInputError("a team server owns a database (sqlite:// or postgresql://), not another server")
    store = open_store(db_url)
    hub = HubIdentities(hub_api_url, hub_service) if hub_api_url else None
    access = Access(store, default_level=default_level, admins=admins, approver_group=approver_group, hub=hub)
    calls = StoreCalls(store, access, default_required_approvals=default_required_approvals)
    executor = ThreadPoolExecutor(threads, thread_name_prefix="mlops-lab-team")
    return TeamServer(access, calls, ArtifactStore(artifacts), executor)


async def serve(team: TeamServer, host: str, port: int, base_url: str = "/", ready=None) -> None:
    """Serve until cancelled; ``ready(port)`` is called once it listens (port 0 picks one)."""
    server = tornado.httpserver.HTTPServer(make_app(team, base_url), max_body_size=MAX_JSON_BYTES)
    sockets = tornado.netutil.bind_sockets(port, host)
    server.add_sockets(sockets)
    if ready is not None:
        ready(sockets[0].getsockname()[1])
    try:
        await asyncio.Event().wait()
    finally:
        server.stop()
