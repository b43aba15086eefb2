"""REST handlers: each parses its request, calls a service of the workspace on a worker thread, writes JSON."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import tornado.web
from jupyter_server.auth.decorator import authorized
from jupyter_server.auth.identity import IdentityProvider, PasswordIdentityProvider
from jupyter_server.base.handlers import APIHandler, JupyterHandler

from ..errors import ForbiddenError, InvalidInputError, error_body, status_of
from ..pipelines import lab as lab_pipelines
from ..pipelines import lineage
from ..tracking import experiment_ids, run_page
from ..tracking.compare import code_diff, compare_runs, metric_history
from ..tracking.search import runs_page
from ..workspace import Workspace

MAX_PAGE = 1000


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def _bounded_int(text: str) -> int:
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ValueError(f"the number {text[:30]} is out of range")
    return value


class BaseHandler(APIHandler):
    # Jupyter's Authorizer decides who may read (GET), write (POST) and execute (start or stop serving
    # processes) on this resource: a read-only user of a shared lab can look but not change.
    auth_resource = "mlops_lab"

    async def prepare(self) -> None:
        """Refuse what a page of another site made the browser send: a top-level navigation carries the
        lab's cookie (SameSite=Lax), so even a GET could start expensive work as the user.  Browsers say
        where a request comes from (``Sec-Fetch-Site``); clients that send the token themselves are fine."""
        await super().prepare()
        site = self.request.headers.get("Sec-Fetch-Site")
        if site in ("cross-site", "same-site") and "Authorization" not in self.request.headers:
            raise http_error(
                ForbiddenError(f"the mlops_lab API does not answer requests started by another site ({site})")
            )

    @property
    def workspace(self) -> Workspace:
        """The server's workspace, acting as the signed-in user: approvals are by who clicks."""
        return self.settings["mlops_lab"].as_user(self.username)

    async def call(self, function, *args, **kwargs):
        """Run a blocking service call off the event loop; its errors become HTTP answers (``http_error``)."""
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except Exception as exc:
            raise http_error(exc) from exc

    def write_error(self, status_code: int, **kwargs) -> None:
        self.set_header("Content-Type", "application/json")
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or self._reason
        self.finish(json.dumps(error_body(message, status_code)))

    @property
    def username(self) -> str:
        """Who acts: the person a real identity provider (JupyterHub's, a configured one) names; in a
        single-user lab, whose token or password names no one, the lab's own user (``MLOPS_LAB_USER``
        or the OS user), the same name the kernels log under, so one person is one name and cannot
        ask in a notebook and approve in the sidebar."""
        if type(self.identity_provider) in (IdentityProvider, PasswordIdentityProvider):
            return self.settings["mlops_lab"].user
        user = self.current_user
        return getattr(user, "username", None) or str(user)

    def json_body(self, *required: str) -> dict:
        try:  # NaN, Infinity and integers beyond 64 bits are not JSON any database takes
            body = json.loads(self.request.body or b"{}", parse_constant=_refuse_constant, parse_int=_bounded_int)
        except ValueError as exc:
            raise http_error(InvalidInputError(f"the request body is not JSON: {exc}")) from None
        if not isinstance(body, dict):
            raise http_error(InvalidInputError("the request body must be a JSON object"))
        missing = [key for key in required if key not in body]
        if missing:
            raise http_error(InvalidInputError(f"the request body lacks {', '.join(missing)}"))
        return body

    @property
    def root_dir(self) -> Path:
        """The lab's folder: what the file browser shows."""
        return Path(self.settings.get("server_root_dir") or self.contents_manager.root_dir).expanduser().resolve()

    @staticmethod
    def version_number(text: str) -> int:
        """A model version from the URL (digits by the route); beyond a database integer it is no version."""
        if len(text) > 9:
            raise http_error(InvalidInputError(f"version {text[:20]} is out of range"))
        return int(text)

    def int_argument(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get_argument(name, str(default))
        try:
            value = int(raw)
        except ValueError:
            raise http_error(InvalidInputError(f"{name} must be an integer, got {raw[:50]!r}")) from None
        if not low <= value <= high:
            raise http_error(InvalidInputError(f"{name} must be from {low} to {high}, got {value}"))
        return value


def http_error(exc: Exception) -> Exception:
    """The one mapping from the error vocabulary to HTTP: a refused request keeps its status and
    message; anything else is a bug and stays a 500 with its traceback in the server's log."""
    status = status_of(exc)
    if status is None:
        return exc
    message = str(exc)
    return tornado.web.HTTPError(status, reason=message[:200].replace("\n", " "), log_message=message)


class InfoHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        location = self.settings["mlops_lab"].location
        self.finish(location.public())


class ExperimentsHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        experiments = await self.call(lambda: self.workspace.store.runs.list_experiments())
        self.finish({"experiments": [e.model_dump() for e in experiments]})


class RunsHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        limit = self.int_argument("limit", 100, 1, MAX_PAGE)
        offset = self.int_argument("offset", 0, 0, 10**9)
        filter_string = self.get_argument("filter", None)
        order_by = self.get_arguments("order_by") or None
        experiment = self.get_argument("experiment", None)
        lifecycle = self.get_argument("lifecycle", "active")

        def page():
            runs = self.workspace.store.runs
            # an experiment not there yet lists no runs: the panel may be waiting for it
            ids = experiment_ids(runs, experiment or None)
            return runs_page(runs, ids, filter_string, order_by, limit, offset, lifecycle=lifecycle)

        self.finish(await self.call(page))


class RunHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str):
        workspace = self.workspace
        page = await self.call(run_page.run_page, workspace.store.runs, workspace.artifacts, run_id)
        page["notebook"] = self._openable(page["info"]["notebook_path"])
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(page, default=str))

    @tornado.web.authenticated
    @authorized
    async def delete(self, run_id: str):
        await self.call(run_page.set_deleted, self.workspace.store.runs, run_id, self.username, True)
        self.finish({"run_id": run_id, "deleted": True})

    def _openable(self, notebook_path: str | None) -> str | None:
        """The notebook's path as the lab opens it (relative to the server's root), if it is under it."""
        if not notebook_path:
            return None
        root = self.root_dir
        path = Path(notebook_path)
        try:
            relative = (path if path.is_absolute() else root / path).resolve().relative_to(root)
        except (ValueError, OSError):
            return None
        return relative.as_posix()


class RunRestoreHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, run_id: str):
        await self.call(run_page.set_deleted, self.workspace.store.runs, run_id, self.username, False)
        self.finish({"run_id": run_id, "deleted": False})


class RunTagsHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, run_id: str):
        body = self.json_body()
        unknown = set(body) - {"set", "remove"}
        if unknown:
            raise http_error(InvalidInputError(f"tags are changed with 'set' and 'remove', not {sorted(unknown)}"))
        runs = self.workspace.store.runs
        await self.call(run_page.edit_tags, runs, run_id, self.username, body.get("set"), body.get("remove"))
        self.finish({"tags": (await self.call(runs.get_run, run_id)).tags})


class MetricHistoryHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str):
        key = self.get_argument("key")
        max_points = self.int_argument("max_points", 1000, 10, 100_000)
        self.finish(await self.call(metric_history, self.workspace.store.runs, run_id, key, max_points))


class CompareHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        run_ids = [i for i in self.get_argument("runs", "").split(",") if i]
        self.finish(await self.call(compare_runs, self.workspace.store.runs, run_ids))


class DatasetDiffHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        from ..tracking.datadiff import dataset_diff

        left, right = self.get_argument("left"), self.get_argument("right")
        key = self.get_arguments("key") or None
        for digest in (left, right):
            if not re.fullmatch(r"[0-9a-f]{64}", digest):  # hashes only: never a path on the server
                raise http_error(InvalidInputError(f"not a dataset version hash: {digest[:80]!r}"))
        self.finish(await self.call(dataset_diff, self.workspace.artifacts, left, right, key=key))


class CodeDiffHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        left, right = self.get_argument("left"), self.get_argument("right")
        self.finish(await self.call(code_diff, self.workspace.store.runs, left, right))


def _send_file(handler: BaseHandler, name: str, data: bytes) -> None:
    """Bytes as a download, never rendered by the browser on the lab's origin (an SVG or HTML
    artifact could hold scripts): the page draws images from a blob it fetched."""
    handler.set_header("Content-Type", "application/octet-stream")
    filename = re.sub(r"[^\w.\- ]", "_", name.rsplit("/", 1)[-1])
    handler.set_header("Content-Disposition", f'attachment; filename="{filename}"')
    handler.set_header("X-Content-Type-Options", "nosniff")
    handler.write(data)
    JupyterHandler.finish(handler)  # not APIHandler's, which labels every answer JSON


class ArtifactHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str, path: str):
        workspace = self.workspace
        if self.get_argument("preview", None) is not None:
            preview = run_page.artifact_preview
            self.finish(await self.call(preview, workspace.store.runs, workspace.artifacts, run_id, path))
            return
        name, data = await self.call(run_page.artifact_bytes, workspace.store.runs, workspace.artifacts, run_id, path)
        _send_file(self, name, data)


class LoggedModelFileHandler(BaseHandler):
    """A logged model as it was logged (pickle or ONNX) or its ONNX form."""

    @tornado.web.authenticated
    @authorized
    async def get(self, run_id: str, name: str, form: str):
        workspace = self.workspace
        read = run_page.logged_model_file
        _send_file(self, *(await self.call(read, workspace.store.runs, workspace.artifacts, run_id, name, form)))


class ModelsHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        self.finish({"models": await self.call(lambda: self.workspace.registry.overview())})


class ModelVersionsHandler(BaseHandler):
    """Register a run's logged model as a new version (the run page's Register button)."""

    @tornado.web.authenticated
    @authorized
    async def post(self, name: str):
        body = self.json_body("run_id")
        model = body.get("model", "model")
        if not isinstance(body["run_id"], str) or not isinstance(model, str):
            raise http_error(InvalidInputError("run_id and model must be strings"))
        registry = self.workspace.registry
        version = await self.call(registry.register, name, body["run_id"], model)
        self.finish({"name": name, "version": version})


class ModelHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, name: str):
        self.finish(await self.call(lambda: self.workspace.registry.describe(name)))


class StageHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, name: str, version: str):
        body = self.json_body("stage")
        registry = self.workspace.registry
        await self.call(
            registry.promote, name, self.version_number(version), body["stage"], comment=body.get("comment")
        )
        self.finish(await self.call(registry.describe, name))


class AliasHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, name: str):
        body = self.json_body("alias", "version")
        registry = self.workspace.registry
        await self.call(registry.set_alias, name, body["alias"], body["version"], comment=body.get("comment"))
        self.finish(await self.call(registry.describe, name))


class ApprovalRequestHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, name: str, version: str):
        body = self.json_body()
        registry = self.workspace.registry
        request_id = await self.call(
            registry.request_approval, name, self.version_number(version), comment=body.get("comment")
        )
        self.finish({"request": request_id})


class ApprovalVoteHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self, request_id: str):
        body = self.json_body("decision")
        registry = self.workspace.registry
        if body["decision"] not in ("approve", "reject"):
            raise http_error(InvalidInputError("decision must be 'approve' or 'reject'"))
        vote = registry.approve if body["decision"] == "approve" else registry.reject
        self.finish({"status": await self.call(vote, request_id, comment=body.get("comment"))})


class DriftReportsHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        limit = self.int_argument("limit", 100, 1, MAX_PAGE)
        self.finish({"reports": await self.call(lambda: self.workspace.drift_reports.list(limit))})


class DriftReportHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, report_id: str):
        self.finish(await self.call(self.workspace.drift_reports.record, report_id))


class DeploymentsHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        self.finish({"deployments": await self.call(self.workspace.serving.list)})

    @tornado.web.authenticated
    @authorized("execute")  # starts or stops processes
    async def post(self):
        body = self.json_body("model")
        model = body.pop("model")
        body.pop("user", None)  # who asks is the signed-in user, not what the body says
        self.finish(await self.call(self.workspace.serving.start, model, user=self.username, **body))


class DeploymentHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, name: str):
        self.finish(await self.call(self.workspace.serving.get, name))

    @tornado.web.authenticated
    @authorized("execute")  # starts or stops processes
    async def delete(self, name: str):
        self.finish(await self.call(self.workspace.serving.stop, name, user=self.username))


class DeploymentRolloutHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized("execute")  # starts or stops processes
    async def post(self, name: str):
        body = self.json_body()
        unknown = set(body) - {"canary", "canary_share", "shadow"}
        if unknown:
            raise http_error(
                InvalidInputError(f"a rollout takes canary, canary_share and shadow, not {sorted(unknown)}")
            )
        self.finish(await self.call(self.workspace.serving.rollout, name, user=self.username, **body))


class DeploymentRemoveHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized("execute")
    async def post(self, name: str):
        await self.call(self.workspace.serving.remove, name, user=self.username)
        self.finish({"name": name, "removed": True})


class DeploymentLogHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self, name: str):
        lines = self.int_argument("lines", 200, 1, 5000)
        self.finish({"log": await self.call(self.workspace.serving.log, name, lines)})


def _team(workspace: Workspace):
    team = workspace.team
    if team is None:
        raise http_error(InvalidInputError("this lab's store is not a team server: see docs/teams.md"))
    return team


class TeamHandler(BaseHandler):
    """The Team section: who one is on the team server, one's tokens, grants, and (admins) users."""

    @tornado.web.authenticated
    @authorized
    async def get(self):
        team = self.workspace.team
        self.finish({"server": None} if team is None else await self.call(team.overview))


class TeamTokensHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def post(self):
        body = self.json_body()
        team = _team(self.workspace)
        token_id, token = await self.call(
            team.create_token, body.get("user"), note=body.get("note", ""), expires_in_days=body.get("expires_in_days")
        )
        self.finish({"id": token_id, "token": token})


class TeamTokenHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def delete(self, token_id: str):
        await self.call(_team(self.workspace).revoke_token, token_id)
        self.finish({"revoked": token_id})


class TeamPermissionsHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def put(self):
        body = self.json_body("kind", "name", "grantee")
        team = _team(self.workspace)
        await self.call(team.set_permission, body["kind"], body["name"], body["grantee"], body.get("level"))
        self.finish({"permission": body})


class PipelinesHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        self.finish({"pipelines": await self.call(lab_pipelines.find_pipelines, self.root_dir)})


class PipelineHandler(BaseHandler):
    @property
    def launcher(self) -> lab_pipelines.Launcher:
        return self.settings.setdefault("mlops_lab_pipelines", lab_pipelines.Launcher())

    @tornado.web.authenticated
    @authorized
    async def get(self):
        path = self.get_argument("path")
        self.finish(await self.call(lab_pipelines.pipeline_view, self.workspace, self.root_dir, path, self.launcher))

    @tornado.web.authenticated
    @authorized("execute")  # starts a process that runs notebooks
    async def post(self):
        body = self.json_body("path")
        unknown = set(body) - {"path", "step", "force"}
        if unknown:
            raise http_error(InvalidInputError(f"a pipeline run takes path, step and force, not {sorted(unknown)}"))
        launched = await self.call(
            self.launcher.start,
            self.workspace,
            self.root_dir,
            body["path"],
            step=body.get("step"),
            force=body.get("force", False),
        )
        self.finish({"launch": launched})


class ExecutedNotebookHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized  # writes a file into the lab's folder
    async def post(self):
        body = self.json_body("path", "run_id")
        path = await self.call(
            lab_pipelines.executed_notebook, self.workspace, self.root_dir, body["path"], body["run_id"]
        )
        self.finish({"notebook": path})


class LineageHandler(BaseHandler):
    @tornado.web.authenticated
    @authorized
    async def get(self):
        model, dataset = self.get_argument("model", None), self.get_argument("dataset", None)
        if (model is None) == (dataset is None):
            raise http_error(InvalidInputError("lineage takes model=NAME/VERSION or dataset=HASH"))
        workspace = self.workspace
        if model is not None:
            found = await self.call(lineage.model_lineage, workspace, model)
        else:
            found = await self.call(lineage.dataset_lineage, workspace, dataset)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(found, default=str))


ROUTES = [
    ("info", InfoHandler),
    ("experiments", ExperimentsHandler),
    ("runs", RunsHandler),
    (r"runs/([0-9a-f]{32})", RunHandler),
    (r"runs/([0-9a-f]{32})/metric-history", MetricHistoryHandler),
    (r"runs/([0-9a-f]{32})/restore", RunRestoreHandler),
    (r"runs/([0-9a-f]{32})/tags", RunTagsHandler),
    (r"runs/([0-9a-f]{32})/artifacts/(.+)", ArtifactHandler),
    (r"runs/([0-9a-f]{32})/models/([^/]+)/(logged|onnx)", LoggedModelFileHandler),
    ("compare", CompareHandler),
    ("code-diff", CodeDiffHandler),
    ("dataset-diff", DatasetDiffHandler),
    ("models", ModelsHandler),
    (r"models/([^/]+)", ModelHandler),
    (r"models/([^/]+)/versions", ModelVersionsHandler),
    (r"models/([^/]+)/versions/(\d+)/stage", StageHandler),
    (r"models/([^/]+)/versions/(\d+)/approvals", ApprovalRequestHandler),
    (r"models/([^/]+)/aliases", AliasHandler),
    (r"approvals/([0-9a-f]{32})", ApprovalVoteHandler),
    ("drift-reports", DriftReportsHandler),
    (r"drift-reports/([0-9a-f]{32})", DriftReportHandler),
    ("deployments", DeploymentsHandler),
    (r"deployments/([^/]+)", DeploymentHandler),
    (r"deployments/([^/]+)/log", DeploymentLogHandler),
    (r"deployments/([^/]+)/rollout", DeploymentRolloutHandler),
    (r"deployments/([^/]+)/remove", DeploymentRemoveHandler),
    ("team", TeamHandler),
    ("team/tokens", TeamTokensHandler),
    (r"team/tokens/([^/]+)", TeamTokenHandler),
    ("team/permissions", TeamPermissionsHandler),
    ("pipelines", PipelinesHandler),
    ("pipeline", PipelineHandler),
    ("pipeline/executed", ExecutedNotebookHandler),
    ("lineage", LineageHandler),
]
