"""MLflow's REST API in the lab, under ``<base_url>mlops-lab/mlflow``:

    MLFLOW_TRACKING_URI=http://host:port/<base_url>mlops-lab/mlflow  MLFLOW_TRACKING_TOKEN=<the lab's token>

Thin doors onto ``mlops_lab.mlflow_api``: each parses the request, calls the API on a worker thread
acting as the signed-in user, and writes MLflow's JSON, or MLflow's error shape
(``{"error_code", "message"}``) for a refused request.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json

import tornado.web
from jupyter_server.auth.decorator import authorized

from ..errors import InvalidInputError
from ..mlflow_api import MlflowApi, error_answer
from .handlers import BaseHandler, _bounded_int, _refuse_constant, _send_file

MAX_ARTIFACT_BYTES = 2 * 1024**3


class MlflowBaseHandler(BaseHandler):
    async def prepare(self) -> None:
        """MLflow's client sends ``MLFLOW_TRACKING_TOKEN`` as a Bearer token, which the lab takes as
        it is, or ``MLFLOW_TRACKING_USERNAME``/``PASSWORD`` as basic credentials: the password is
        then the lab's token."""
        header = self.request.headers.get("Authorization", "")
        if header[:6].lower() == "basic ":
            try:
                _, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                password = ""
            self.request.headers["Authorization"] = f"token {password}"
        await super().prepare()

    @property
    def api(self) -> MlflowApi:
        workspace = self.workspace
        return MlflowApi(workspace.store, workspace.artifacts, self.username, registry=workspace.registry)

    async def run(self, function, *args):
        """A blocking API call off the event loop; a refused request becomes MLflow's error answer."""
        try:
            return await asyncio.to_thread(function, *args)
        except Exception as exc:
            answer = error_answer(exc)
            if answer is None:
                raise
            raise MlflowAnswer(*answer) from exc

    def write_error(self, status_code: int, **kwargs) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, MlflowAnswer):
            body = exc.body
        elif status_code == 403:
            body = {"error_code": "PERMISSION_DENIED", "message": "the lab's token is missing or wrong"}
        else:
            body = {"error_code": "INTERNAL_ERROR", "message": self._reason}
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))

    def mlflow_body(self) -> dict:
        """The request's fields: a GET's query (a repeated field as a list), else the JSON body."""
        if self.request.method == "GET":
            body = {}
            for key, values in self.request.query_arguments.items():
                decoded = [v.decode(errors="replace") for v in values]
                body[key] = decoded if len(decoded) > 1 or key.endswith("_ids") else decoded[0]
            return body
        try:
            body = json.loads(self.request.body or b"{}", parse_constant=_refuse_constant, parse_int=_int64)
        except ValueError as exc:
            raise MlflowAnswer(
                400, {"error_code": "MALFORMED_REQUEST", "message": f"the body is not JSON: {exc}"}
            ) from None
        if not isinstance(body, dict):
            raise MlflowAnswer(400, {"error_code": "MALFORMED_REQUEST", "message": "the body must be a JSON object"})
        return body


def _int64(text: str) -> int:
    """An integer of the body; beyond 64 bits no field of MLflow's takes it."""
    try:
        return _bounded_int(text)
    except ValueError as exc:
        raise MlflowAnswer(400, {"error_code": "INVALID_PARAMETER_VALUE", "message": str(exc)}) from None


class MlflowAnswer(tornado.web.HTTPError):
    """A refused request, answered in MLflow's error shape."""

    def __init__(self, status: int, body: dict):
        super().__init__(status, reason=body["message"][:200].replace("\n", " "), log_message=body["message"])
        self.body = body


class MlflowHandler(MlflowBaseHandler):
    async def _answer(self, path: str) -> None:
        api = self.api
        self.finish(await self.run(api.call, self.request.method, path, self.mlflow_body()))

    @tornado.web.authenticated
    @authorized
    async def get(self, path: str):
        await self._answer(path)

    @tornado.web.authenticated
    @authorized
    async def post(self, path: str):
        await self._answer(path)

    @tornado.web.authenticated
    @authorized
    async def patch(self, path: str):
        await self._answer(path)

    @tornado.web.authenticated
    @authorized
    async def delete(self, path: str):
        await self._answer(path)


class MlflowArtifactsHandler(MlflowBaseHandler):
    """``mlflow-artifacts``: upload (PUT), download (GET with a path), list (GET ``?path=``)."""

    @tornado.web.authenticated
    @authorized
    async def get(self, path: str | None):
        api = self.api
        if path:
            name, data = await self.run(api.download_artifact, path)
            _send_file(self, name, data)
        else:
            self.finish(await self.run(api.list_artifacts, self.get_argument("path", "")))

    @tornado.web.authenticated
    @authorized
    async def put(self, path: str | None):
        if len(self.request.body) > MAX_ARTIFACT_BYTES:
            raise MlflowAnswer(400, error_answer(InvalidInputError("an artifact is at most 2 GiB"))[1])
        api = self.api
        self.finish(await self.run(api.upload_artifact, path or "", self.request.body))

    @tornado.web.authenticated
    @authorized
    async def delete(self, path: str | None):
        raise MlflowAnswer(
            400,
            {
                "error_code": "INVALID_PARAMETER_VALUE",
                "message": "artifacts are kept with their runs: delete the run instead",
            },
        )


class MlflowServerInfoHandler(MlflowBaseHandler):
    """What MLflow's client asks before a large upload: no multipart uploads here."""

    @tornado.web.authenticated
    @authorized
    async def get(self):
        self.finish({"multipart_uploads_enabled": False, "multipart_downloads_enabled": False})


ROUTES = [
    (r"(?:api|ajax-api)/2\.0/mlflow/(.+)", MlflowHandler),
    (r"(?:api|ajax-api)/2\.0/mlflow-artifacts/artifacts(?:/(.*))?", MlflowArtifactsHandler),
    (r"api/3\.0/mlflow/server-info", MlflowServerInfoHandler),
]
