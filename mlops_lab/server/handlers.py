"""REST handlers: each parses its request, calls the backend on a worker thread, writes JSON."""

from __future__ import annotations

import asyncio
import json

import tornado.web
from jupyter_server.base.handlers import APIHandler

from ..artifacts import ArtifactError, ArtifactStore
from ..config import StoreLocation
from ..store import FilterError, NotFoundError, StoreError, open_store
from ..tracking.compare import artifact_bytes, code_diff, compare_runs, metric_history
from ..tracking.search import runs_page

MAX_PAGE = 1000


class LabBackend:
    """What the handlers need, opened lazily so a broken store cannot stop the server starting."""

    def __init__(self, location: StoreLocation):
        self.location = location
        self._store = None
        self._artifacts = None

    @property
    def store(self):
        if self._store is None:
            self._store = open_store(self.location.db_url)
        return self._store

    @property
    def artifacts(self) -> ArtifactStore:
        if self._artifacts is None:
            self._artifacts = ArtifactStore(self.location.artifacts)
        return self._artifacts

    def drift_report(self, report_id: str) -> dict:
        record = self.store.drift_report(report_id)
        return {"record": record, "report": json.loads(self.artifacts.get_bytes(record["blob_hash"]))}


class BaseHandler(APIHandler):
    @property
    def backend(self) -> LabBackend:
        return self.settings["mlops_lab"]

    async def call(self, function, *args, **kwargs):
        """Run a blocking service call off the event loop; map its errors to HTTP answers."""
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except (FilterError, ValueError) as exc:
            raise tornado.web.HTTPError(400, reason=str(exc)[:200], log_message=str(exc)) from exc
        except NotFoundError as exc:
            raise tornado.web.HTTPError(404, reason=str(exc)[:200]) from exc
        except (StoreError, ArtifactError) as exc:
            raise tornado.web.HTTPError(503, reason=str(exc)[:200]) from exc

    def write_error(self, status_code: int, **kwargs) -> None:
        self.set_header("Content-Type", "application/json")
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or self._reason
        self.finish(json.dumps({"error": message, "status": status_code}))

    def int_argument(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.get_argument(name, str(default))
        try:
            value = int(raw)
        except ValueError:
            raise tornado.web.HTTPError(400, reason=f"{name} must be an integer, got {raw[:50]!r}") from None
        if not low <= value <= high:
            raise tornado.web.HTTPError(400, reason=f"{name} must be from {low} to {high}, got {value}")
        return value


class InfoHandler(BaseHandler):
    @tornado.web.authenticated
    async def get(self):
        location = self.backend.location
        self.finish({"db_url": location.db_url, "artifacts": location.artifacts, "source": location.source})


class ExperimentsHandler(BaseHandler):
    @tornado.web.authenticated
    async def get(self):
        experiments = await self.call(lambda: self.backend.store.list_experiments())
        self.finish({"experiments": [e.model_dump() for e in experiments]})


class RunsHandler(BaseHandler):
    @tornado.web.authenticated
    async def get(self):
        limit = self.int_argument("limit", 100, 1, MAX_PAGE)
        offset = self.int_argument("offset", 0, 0, 10**9)
        filter_string = self.get_argument("filter", None)
        order_by = self.get_arguments("order_by") or None
        experiment = self.get_argument("experiment", None)

        def page():
            store = self.backend.store
            ids = None
            if experiment:
                found = store.experiment_id(experiment)
                ids = [] if found is None else [found]
            return runs_page(store, ids, filter_string, order_by, limit, offset)

        self.finish(await self.call(page))


class RunHandler(BaseHandler):
    @tornado.web.authenticated
    async def get(self, run_id: str):
        record = await self.call(lambda: self.backend.store.get_run(run_id))
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(record.to_dict(), default=str))


class MetricHistoryHandler(BaseHandler):
    @tornado.web.authenticated
    async def get(self, run_id: str):
        key = self.get_argument("key")
        max_points = self.int_argument("max_points", 1000, 10, 100_000)
        self.finish(await self.call(metric_history, self.backend.store, run_id, key, max_points))


class CompareHandler(BaseHandler):
    @tornado.web.authenticated
    async def get(self):
        run_ids = [i for i in self.get_argument("runs", "").split(",") if i]
        self.finish(await self.call(compare_runs, self.backend.store, run_ids))


class CodeDiffHandler(BaseHandler):
    @tornado.web.authenticated
    async def get(self):
        left, right = self.get_argument("left"), self.get_argument("right")
        self.finish(await self.call(code_diff, self.backend.store, left, right))


class ArtifactHandler(BaseHandler):
    @tornado.web.authenticated
    async def get(self, run_id: str, path: str):
        name, data = await self.call(artifact_bytes, self.backend.store, self.backend.artifacts, run_id, path)
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("Content-Disposition", f'attachment; filename="{name.rsplit("/", 1)[-1]}"')
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(data)


class DriftReportsHandler(BaseHandler):
    @tornado.web.authenticated
    async def get(self):
        limit = self.int_argument("limit", 100, 1, MAX_PAGE)
        self.finish({"reports": await self.call(lambda: self.backend.store.drift_reports(limit))})


class DriftReportHandler(BaseHandler):
    @tornado.web.authenticated
    async def get(self, report_id: str):
        self.finish(await self.call(self.backend.drift_report, report_id))


ROUTES = [
    ("info", InfoHandler),
    ("experiments", ExperimentsHandler),
    ("runs", RunsHandler),
    (r"runs/([0-9a-f]{32})", RunHandler),
    (r"runs/([0-9a-f]{32})/metric-history", MetricHistoryHandler),
    (r"runs/([0-9a-f]{32})/artifacts/(.+)", ArtifactHandler),
    ("compare", CompareHandler),
    ("code-diff", CodeDiffHandler),
    ("drift-reports", DriftReportsHandler),
    (r"drift-reports/([0-9a-f]{32})", DriftReportHandler),
]
