"""MLflow's REST API, in the lab under ``<base_url>mlops-lab/mlflow`` and at the team server's root:

    MLFLOW_TRACKING_URI=http://host:port/<base_url>mlops-lab/mlflow  MLFLOW_TRACKING_TOKEN=<the lab's token>
    MLFLOW_TRACKING_URI=http://team-server:5050                      MLFLOW_TRACKING_TOKEN=mlt_…

Thin doors onto ``mlops_lab.mlflow_api``: each parses the request, calls the API on a worker thread
acting as the caller (one-value writes to a local SQLite store on the event loop: ``MlflowDoor.run``),
and writes MLflow's JSON, or MLflow's error shape (``{"error_code", "message"}``) for a refused
request.  ``MlflowDoor`` holds what both servers share; the lab's handlers authenticate as Jupyter
does, the team server's (in ``team.py``) with its tokens.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json

import orjson
import sqlalchemy.exc
import tornado.web
from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join

from ..errors import InvalidInputError, UnavailableError
from ..mlflow_api import QUICK_CALLS, MlflowApi
from ..mlflow_api.wire import error_answer
from ..store.engine import DatabaseBusy, not_waiting
from .handlers import BaseHandler, _send_file

MAX_ARTIFACT_BYTES = 2 * 1024**3


class MlflowAnswer(tornado.web.HTTPError):
    """A refused request, answered in MLflow's error shape."""

    def __init__(self, status: int, body: dict):
        super().__init__(status, reason=body["message"][:200].replace("\n", " "), log_message=body["message"])
        self.body = body


def basic_password(header: str) -> str | None:
    """The password of ``Authorization: Basic …`` (MLFLOW_TRACKING_USERNAME/PASSWORD): the token.
    None when the header is not basic credentials; "" when they do not decode."""
    if header[:6].lower() != "basic ":
        return None
    try:
        return base64.b64decode(header[6:], validate=True).decode().partition(":")[2]
    except (binascii.Error, UnicodeDecodeError):
        return ""


class MlflowDoor:
    """MLflow's routes, for a handler that says who acts (``api``) and who may (``authorize``)."""

    api: MlflowApi

    def authorize(self) -> None:
        """Refuse a caller who may not make this request (the team server's stores decide per call)."""

    async def in_thread(self, function, *args):
        """Run blocking work off the event loop (the team server uses its own threads)."""
        return await asyncio.to_thread(function, *args)

    def quick_writes(self) -> bool:
        """Whether a quick call (``QUICK_CALLS``) may run on the event loop: where its store is a
        local SQLite file (see ``LabMlflowHandler``); never over a network."""
        return False

    async def run(self, function, *args, quick: bool = False):
        """A blocking API call off the event loop; a refused request becomes MLflow's error answer.
        A ``quick`` one runs on the loop when ``quick_writes`` allows and no other writer holds the
        database: a one-value write takes ~0.2 ms there, and the hop to a thread ~0.4 ms."""
        self.authorize()
        try:
            if quick and self.quick_writes():
                try:
                    with not_waiting():
                        return function(*args)
                except DatabaseBusy:
                    pass  # another writer (a kernel) holds the database: wait for it in a thread
            return await self.in_thread(function, *args)
        except Exception as exc:
            answer = error_answer(exc)
            if answer is None:
                raise
            raise MlflowAnswer(*answer) from exc

    def write_error(self, status_code: int, **kwargs) -> None:
        self.finish_json(self.mlflow_error(status_code, kwargs.get("exc_info", (None, None, None))[1]))

    def mlflow_error(self, status_code: int, exc) -> dict:
        if isinstance(exc, MlflowAnswer):
            return exc.body
        if isinstance(exc, sqlalchemy.exc.OperationalError):  # the database went away: worth retrying
            exc = UnavailableError(f"the database cannot be reached right now: {exc.orig or exc}")
        answer = error_answer(exc) if exc is not None else None
        if answer is not None:
            self.set_status(answer[0])
            return answer[1]
        if status_code == 403:
            return {"error_code": "PERMISSION_DENIED", "message": "the token is missing or wrong"}
        return {"error_code": "INTERNAL_ERROR", "message": self._reason}

    def mlflow_body(self) -> dict:
        """The request's fields: a GET's query (a repeated field as a list), else the JSON body."""
        if self.request.method == "GET":
            body = {}
            for key, values in self.request.query_arguments.items():
                decoded = [v.decode(errors="replace") for v in values]
                body[key] = decoded if len(decoded) > 1 or key.endswith(("_ids", "stages")) else decoded[0]
            return body
        # orjson: a log_batch of 1,000 points parses in a fifth of json's time.  It refuses NaN and
        # infinities as JSON (MLflow sends them as strings) and reads an integer beyond 64 bits as a
        # float, which no integer field of MLflow's accepts.
        try:
            body = orjson.loads(self.request.body or b"{}")
        except orjson.JSONDecodeError as exc:
            raise MlflowAnswer(
                400, {"error_code": "MALFORMED_REQUEST", "message": f"the body is not JSON: {exc}"}
            ) from None
        if not isinstance(body, dict):
            raise MlflowAnswer(400, {"error_code": "MALFORMED_REQUEST", "message": "the body must be a JSON object"})
        return body

    def finish_json(self, answer: dict) -> None:
        """MLflow's JSON answer, encoded by orjson (a search of 1,000 runs: ~1 ms, json's ~10 ms)."""
        self.set_header("Content-Type", "application/json")
        self.finish(orjson.dumps(answer, option=orjson.OPT_NON_STR_KEYS))

    async def api_call(self, path: str) -> None:
        api = self.api
        body = self.mlflow_body()
        self.finish_json(await self.run(api.call, self.request.method, path, body, quick=path in QUICK_CALLS))

    async def artifact_get(self, path: str | None) -> None:
        api = self.api
        if path:
            name, data = await self.run(api.download_artifact, path)
            _send_file(self, name, data)
        else:
            self.finish_json(await self.run(api.list_artifacts, self.get_argument("path", "")))

    async def artifact_put(self, path: str | None) -> None:
        if len(self.request.body) > MAX_ARTIFACT_BYTES:
            raise MlflowAnswer(400, error_answer(InvalidInputError("an artifact is at most 2 GiB"))[1])
        api = self.api
        self.finish_json(await self.run(api.upload_artifact, path or "", self.request.body))

    def artifact_delete(self) -> None:
        self.authorize()
        raise MlflowAnswer(
            400,
            {
                "error_code": "INVALID_PARAMETER_VALUE",
                "message": "artifacts are kept with their runs: delete the run instead",
            },
        )


# ---- in the lab: Jupyter authenticates, the signed-in user acts ------------------------------------


class LabMlflowHandler(MlflowDoor, BaseHandler):
    async def prepare(self) -> None:
        """``MLFLOW_TRACKING_TOKEN`` arrives as a Bearer token, which Jupyter takes as it is; basic
        credentials carry the lab's token as their password."""
        password = basic_password(self.request.headers.get("Authorization", ""))
        if password is not None:
            self.request.headers["Authorization"] = f"token {password}"
        await super().prepare()

    def authorize(self) -> None:
        if not self.current_user:
            raise MlflowAnswer(
                403, {"error_code": "PERMISSION_DENIED", "message": "the lab's token is missing or wrong"}
            )
        action = "read" if self.request.method == "GET" else "write"
        if not self.authorizer.is_authorized(self, self.current_user, action, self.auth_resource):
            raise MlflowAnswer(403, {"error_code": "PERMISSION_DENIED", "message": f"you may not {action} here"})

    def quick_writes(self) -> bool:
        db = self.workspace.store.db  # None where the lab's store is a team server
        return db is not None and db.dialect == "sqlite"

    @property
    def api(self) -> MlflowApi:
        workspace = self.workspace
        return MlflowApi(workspace.store, workspace.artifacts, self.username, registry=workspace.registry)


# MLflow's three routes; each server pairs them with its own door (below, and in ``team.py``).


class ApiRoute:
    """``api/2.0/mlflow/<path>``: every verb goes to ``MlflowApi.call``."""

    async def get(self, path: str):
        await self.api_call(path)

    post = patch = delete = get


class ArtifactsRoute:
    """``mlflow-artifacts``: upload (PUT), download (GET with a path), list (GET ``?path=``)."""

    async def get(self, path: str | None):
        await self.artifact_get(path)

    async def put(self, path: str | None):
        await self.artifact_put(path)

    async def delete(self, path: str | None):
        self.artifact_delete()


class ServerInfoRoute:
    """What MLflow's client asks before a large upload: no multipart uploads here."""

    async def get(self):
        self.authorize()
        self.finish({"multipart_uploads_enabled": False, "multipart_downloads_enabled": False})


class LabApiHandler(ApiRoute, LabMlflowHandler):
    pass


class LabArtifactsHandler(ArtifactsRoute, LabMlflowHandler):
    pass


class LabServerInfoHandler(ServerInfoRoute, LabMlflowHandler):
    pass


class MlflowUiLinkHandler(JupyterHandler):
    """MLflow's client prints links to MLflow's UI (``<tracking URI>/#/experiments/1/runs/<id>``);
    here they open the run's page in the lab (the part after ``#`` reaches only the browser)."""

    @tornado.web.authenticated
    def get(self):
        lab = json.dumps(url_path_join(self.base_url, "lab"))
        self.set_header("Content-Type", "text/html")
        self.finish(
            "<!doctype html><title>mlops_lab</title><script>"
            "const run = /runs\\/([0-9a-f]{32})/.exec(location.hash);"
            f"location.replace({lab} + (run ? '?mlops-run=' + run[1] : ''));"
            "</script>",
        )


ROUTES = [
    ("?", MlflowUiLinkHandler),
    (r"(?:api|ajax-api)/2\.0/mlflow/(.+)", LabApiHandler),
    (r"(?:api|ajax-api)/2\.0/mlflow-artifacts/artifacts(?:/(.*))?", LabArtifactsHandler),
    (r"api/3\.0/mlflow/server-info", LabServerInfoHandler),
]
