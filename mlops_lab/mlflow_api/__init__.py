"""MLflow's REST API 2.0 over mlops_lab's stores: MLflow's own client — the fluent API,
``MlflowClient`` and the integrations that speak MLflow — logs into mlops_lab unchanged, and its
runs sit in the Runs panel beside ``%%track`` runs.

``MlflowApi.call(method, path, body)`` answers one request to ``<tracking URI>/api/2.0/mlflow/<path>``
with MLflow's JSON; the artifact methods serve MLflow's proxied artifact API
(``mlflow-artifacts:/<experiment>/<run>/artifacts/<path>``), MLflow 3's logged models too.  The
registry's endpoints act through the ``Registry`` service, so its rules (ONNX conversion and
checks, approvals before Production) hold.  A refused request raises ``MlflowApiError``, which the
doors write as MLflow's ``{"error_code", "message"}``.  Beside it: ``wire`` (MLflow's JSON fields
and error shape), ``search`` (its filters and orders), ``formats`` (its model folders and
datasets as ours), ``importer`` (``mlops-lab import mlflow``).

How MLflow's model maps onto ours:

- experiment ids are ours as text; MLflow's default experiment "0" is the experiment "Default";
- a run made here has no process of ours behind it (``pid`` 0): it stays RUNNING until its client
  ends it, as in MLflow, where ``%%track`` runs are ended when their process goes away;
- ``mlflow.runName``, ``mlflow.user``, ``mlflow.parentRunId`` and ``mlflow.source.name`` are the
  run's columns (set through MLflow, they change the columns; filters on them read the columns);
- artifacts are content-addressed blobs recorded under the run, so a file logged by MLflow's
  client and one logged by ``ml.log_artifact`` are listed, previewed and downloaded alike.
"""

from __future__ import annotations

import json
import posixpath
import re
import uuid

from ..errors import ConflictError, InvalidInputError, NotFoundError
from ..store import Store
from ..store.events import event_row, now_ms
from ..store.models import MAX_KEY_LENGTH, MAX_PARAM_LENGTH, MAX_TAG_LENGTH, Experiment
from ..store.runs import Batch
from ..tracking.values import check_artifact_path, param_number
from .formats import dataset_inputs, dataset_version_row, list_level, sklearn_model_row
from .search import (
    COLUMN_OF_TAG,
    SYSTEM_TAGS,
    entity_filter,
    experiment_filter,
    experiment_order,
    logged_model_filter,
    mlflow_filter,
    mlflow_order,
)
from .wire import (
    MlflowApiError,
    json_number,
    next_page,
    page_offset,
    read_integer,
    read_key,
    read_metric_value,
    read_pairs,
    read_text,
    read_value,
)

DEFAULT_EXPERIMENT = "Default"
# MLflow's own limits on one log-batch request.
MAX_BATCH_METRICS, MAX_BATCH_PARAMS, MAX_BATCH_TAGS, MAX_BATCH_ENTRIES = 1000, 100, 1000, 1000
MAX_SEARCH_RESULTS = 50_000
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
VIEW_TYPES = {"ACTIVE_ONLY": "active", "DELETED_ONLY": "deleted", "ALL": "all"}
MLFLOW_HOST = "mlflow-client"  # the host column of runs MLflow's client made
# Calls that read a little and write one value in one short transaction: MLflow's client makes
# them one per logged value, and on a local SQLite store they cost less than a hop to a thread.
QUICK_CALLS = frozenset({"runs/log-metric", "runs/log-parameter", "runs/set-tag"})


ROUTES = {
    ("POST", "experiments/create"): "create_experiment",
    ("GET", "experiments/get"): "get_experiment",
    ("GET", "experiments/get-by-name"): "get_experiment_by_name",
    ("POST", "experiments/search"): "search_experiments",
    ("GET", "experiments/search"): "search_experiments",
    ("POST", "experiments/update"): "update_experiment",
    ("POST", "experiments/delete"): "delete_experiment",
    ("POST", "experiments/restore"): "restore_experiment",
    ("POST", "experiments/set-experiment-tag"): "set_experiment_tag",
    ("POST", "experiments/delete-experiment-tag"): "delete_experiment_tag",
    ("POST", "runs/create"): "create_run",
    ("GET", "runs/get"): "get_run",
    ("POST", "runs/update"): "update_run",
    ("POST", "runs/delete"): "delete_run",
    ("POST", "runs/restore"): "restore_run",
    ("POST", "runs/log-metric"): "log_metric",
    ("POST", "runs/log-parameter"): "log_param",
    ("POST", "runs/set-tag"): "set_tag",
    ("POST", "runs/delete-tag"): "delete_tag",
    ("POST", "runs/log-batch"): "log_batch",
    ("POST", "runs/log-inputs"): "log_inputs",
    ("POST", "runs/search"): "search_runs",
    ("GET", "metrics/get-history"): "get_metric_history",
    ("GET", "artifacts/list"): "list_run_artifacts",
    ("POST", "logged-models"): "create_logged_model",
    ("POST", "logged-models/search"): "search_logged_models",
    ("POST", "runs/outputs"): "log_outputs",
    ("POST", "registered-models/create"): "create_registered_model",
    ("GET", "registered-models/get"): "get_registered_model",
    ("GET", "registered-models/search"): "search_registered_models",
    ("POST", "registered-models/rename"): "rename_registered_model",
    ("PATCH", "registered-models/update"): "update_registered_model",
    ("DELETE", "registered-models/delete"): "delete_registered_model",
    ("POST", "registered-models/set-tag"): "set_registered_model_tag",
    ("DELETE", "registered-models/delete-tag"): "delete_registered_model_tag",
    ("POST", "registered-models/get-latest-versions"): "get_latest_versions",
    ("GET", "registered-models/get-latest-versions"): "get_latest_versions",
    ("POST", "registered-models/alias"): "set_alias",
    ("DELETE", "registered-models/alias"): "delete_alias",
    ("GET", "registered-models/alias"): "get_version_by_alias",
    ("POST", "model-versions/create"): "create_model_version",
    ("GET", "model-versions/get"): "get_model_version",
    ("GET", "model-versions/search"): "search_model_versions",
    ("PATCH", "model-versions/update"): "update_model_version",
    ("POST", "model-versions/transition-stage"): "transition_stage",
    ("DELETE", "model-versions/delete"): "delete_model_version",
    ("GET", "model-versions/get-download-uri"): "get_download_uri",
    ("POST", "model-versions/set-tag"): "set_model_version_tag",
    ("DELETE", "model-versions/delete-tag"): "delete_model_version_tag",
}
# Routes with a logged model's id (and a tag's key) in the path.
MODEL_ROUTES = [
    ("GET", re.compile(r"logged-models/(m-[0-9a-f]{32})"), "get_logged_model"),
    ("PATCH", re.compile(r"logged-models/(m-[0-9a-f]{32})"), "finalize_logged_model"),
    ("DELETE", re.compile(r"logged-models/(m-[0-9a-f]{32})"), "delete_logged_model"),
    ("PATCH", re.compile(r"logged-models/(m-[0-9a-f]{32})/tags"), "set_logged_model_tags"),
    ("DELETE", re.compile(r"logged-models/(m-[0-9a-f]{32})/tags/(.+)"), "delete_logged_model_tag"),
    ("POST", re.compile(r"logged-models/(m-[0-9a-f]{32})/params"), "log_logged_model_params"),
]
STAGE_NAMES = {"none": "None", "staging": "Staging", "production": "Production", "archived": "Archived"}
MODEL_STATUSES = ("LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED")


class MlflowApi:
    """MLflow's tracking API over a ``Store`` and its artifacts, acting as ``user``."""

    def __init__(self, store: Store, artifacts, user: str, *, registry=None, adopt_models: bool = True):
        self.store = store
        self.registry = registry  # the registry service, acting as ``user``: its rules hold here too
        self.runs = store.runs
        self.artifacts = artifacts
        self.user = user
        # Loading an uploaded model unpickles it: a lab may (its users run code anyway), a shared
        # server must not.
        self.adopt_models = adopt_models

    def call(self, method: str, path: str, body: dict) -> dict:
        name = ROUTES.get((method, path))
        if name is None:
            for route_method, pattern, route_name in MODEL_ROUTES:
                match = pattern.fullmatch(path)
                if match and route_method == method:
                    if not isinstance(body, dict):
                        raise MlflowApiError("MALFORMED_REQUEST", "the request body must be a JSON object")
                    return getattr(self, route_name)(*match.groups(), body)
        if name is None:
            known = any(p == path for _, p in ROUTES) or any(p.fullmatch(path) for _, p, _ in MODEL_ROUTES)
            raise MlflowApiError(
                "ENDPOINT_NOT_FOUND",
                f"{method} is not allowed on {path}" if known else f"mlops_lab does not serve MLflow's {path} endpoint",
                405 if known else 404,
            )
        if not isinstance(body, dict):
            raise MlflowApiError("MALFORMED_REQUEST", "the request body must be a JSON object")
        return getattr(self, name)(body)

    # ---- experiments ------------------------------------------------------------------------------

    def _experiments(self) -> list[Experiment]:
        return self.runs.list_experiments()

    def _experiment(self, experiment_id) -> Experiment:
        if experiment_id in ("0", 0):  # MLflow's default experiment
            number = self.runs.get_or_create_experiment(DEFAULT_EXPERIMENT, self.user)
        else:
            number = read_integer({"experiment_id": experiment_id}, "experiment_id", low=0)
        found = next((e for e in self._experiments() if e.id == number), None)
        if found is None:
            raise MlflowApiError("RESOURCE_DOES_NOT_EXIST", f"No Experiment with id={experiment_id} exists", 404)
        return found

    @staticmethod
    def experiment_json(experiment: Experiment) -> dict:
        tags = json.loads(experiment.tags or "{}")
        if experiment.description and "mlflow.note.content" not in tags:
            tags["mlflow.note.content"] = experiment.description
        return {
            "experiment_id": str(experiment.id),
            "name": experiment.name,
            "artifact_location": f"mlflow-artifacts:/{experiment.id}",
            "lifecycle_stage": "deleted" if experiment.deleted_at else "active",
            "creation_time": experiment.created_at,
            "last_update_time": experiment.deleted_at or experiment.created_at,
            "tags": [{"key": k, "value": v} for k, v in tags.items()],
        }

    def _update_experiment(self, experiment: Experiment, values: dict, kind: str, payload: dict) -> None:
        event = event_row("experiment", str(experiment.id), kind, self.user, payload)
        self.runs.update_experiment(experiment.id, values, event)

    def create_experiment(self, body: dict) -> dict:
        name = read_text(body, "name", limit=MAX_KEY_LENGTH)
        if self.runs.experiment_id(name) is not None:
            raise MlflowApiError("RESOURCE_ALREADY_EXISTS", f"Experiment '{name}' already exists.")
        tags = {read_key(t.get("key"), "tag"): read_value(t.get("value"), "Tag", t.get("key"), MAX_TAG_LENGTH)
                for t in read_pairs(body.get("tags"), "tags")}  # fmt: skip
        experiment_id = self.runs.get_or_create_experiment(name, self.user)
        if tags:
            experiment = self._experiment(experiment_id)
            self._update_experiment(experiment, {"tags": json.dumps(tags)}, "tags", {"set": tags})
        return {"experiment_id": str(experiment_id)}

    def get_experiment(self, body: dict) -> dict:
        return {"experiment": self.experiment_json(self._experiment(read_text(body, "experiment_id")))}

    def get_experiment_by_name(self, body: dict) -> dict:
        name = read_text(body, "experiment_name", limit=MAX_KEY_LENGTH)
        found = next((e for e in self._experiments() if e.name == name), None)
        if found is None:
            raise MlflowApiError("RESOURCE_DOES_NOT_EXIST", f"Could not find experiment with name '{name}'", 404)
        return {"experiment": self.experiment_json(found)}

    def search_experiments(self, body: dict) -> dict:
        limit = read_integer(body, "max_results", default=1000, low=1, high=MAX_SEARCH_RESULTS)
        offset = page_offset(body.get("page_token"))
        view = VIEW_TYPES.get(body.get("view_type") or "ACTIVE_ONLY")
        if view is None:
            raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Invalid view_type {body.get('view_type')!r}")
        found = [
            self.experiment_json(e)
            for e in self._experiments()
            if view == "all" or (view == "deleted") == bool(e.deleted_at)
        ]
        found = [e for e in found if experiment_filter(body.get("filter"))(e)]
        order_by = body.get("order_by") or []
        for key, descending in reversed(experiment_order(order_by if isinstance(order_by, list) else [order_by])):
            found.sort(key=key, reverse=descending)
        page = found[offset : offset + limit]
        return {"experiments": page, **next_page(offset, len(page), limit)}

    def update_experiment(self, body: dict) -> dict:
        experiment = self._experiment(read_text(body, "experiment_id"))
        name = read_text(body, "new_name", required=False, limit=MAX_KEY_LENGTH)
        if name:
            self._update_experiment(experiment, {"name": name}, "renamed", {"from": experiment.name, "to": name})
        return {}

    def delete_experiment(self, body: dict) -> dict:
        experiment = self._experiment(read_text(body, "experiment_id"))
        self._update_experiment(experiment, {"deleted_at": now_ms()}, "deleted", {})
        return {}

    def restore_experiment(self, body: dict) -> dict:
        experiment = self._experiment(read_text(body, "experiment_id"))
        self._update_experiment(experiment, {"deleted_at": None}, "restored", {})
        return {}

    def set_experiment_tag(self, body: dict) -> dict:
        experiment = self._experiment(read_text(body, "experiment_id"))
        key = read_key(body.get("key"), "tag")
        value = read_value(body.get("value"), "Tag", key, MAX_TAG_LENGTH)
        tags = {**json.loads(experiment.tags or "{}"), key: value}
        self._update_experiment(experiment, {"tags": json.dumps(tags)}, "tags", {"set": {key: value}})
        return {}

    def delete_experiment_tag(self, body: dict) -> dict:
        experiment = self._experiment(read_text(body, "experiment_id"))
        key = read_key(body.get("key"), "tag")
        tags = json.loads(experiment.tags or "{}")
        if tags.pop(key, None) is None:
            raise MlflowApiError(
                "RESOURCE_DOES_NOT_EXIST", f"No tag with name: {key} in experiment {experiment.id}", 404
            )
        self._update_experiment(experiment, {"tags": json.dumps(tags)}, "tags", {"removed": [key]})
        return {}

    # ---- runs -------------------------------------------------------------------------------------

    def _state(self, body: dict, *, active: bool = False) -> dict:
        run_id = read_text(body, "run_id", required=False) or read_text(body, "run_uuid")
        state = self.runs.run_state(run_id) if re.fullmatch(r"[0-9a-f]{32}", run_id) else None
        if state is None:
            raise MlflowApiError("RESOURCE_DOES_NOT_EXIST", f"Run with id={run_id} not found", 404)
        if active and state["deleted_at"] is not None:
            raise MlflowApiError(
                "INVALID_PARAMETER_VALUE",
                f"The run {run_id} must be in the 'active' state. Current state is deleted.",
            )
        return state

    def _event(self, run_id: str, kind: str, payload: dict) -> dict:
        return event_row("run", run_id, kind, self.user, payload)

    def create_run(self, body: dict) -> dict:
        experiment = self._experiment(body.get("experiment_id") or "0")
        if experiment.deleted_at:
            raise MlflowApiError(
                "INVALID_PARAMETER_VALUE",
                f"The experiment {experiment.id} must be in the 'active' state. Current state is deleted.",
            )
        tags = self._tags(body.get("tags"), "tags")
        run_id = uuid.uuid4().hex
        name = read_text(body, "run_name", required=False, limit=MAX_KEY_LENGTH) or tags.get("mlflow.runName")
        name = name or f"run-{run_id[:8]}"
        parent = tags.get("mlflow.parentRunId")
        if parent is not None and self.runs.run_state(parent) is None:
            raise MlflowApiError("RESOURCE_DOES_NOT_EXIST", f"Parent run with id={parent} not found", 404)
        start = read_integer(body, "start_time", default=now_ms(), low=0)
        row = {
            "id": run_id,
            "experiment_id": experiment.id,
            "name": name,
            "status": "RUNNING",
            "user": self.user,  # who the token or the lab says, not the client's OS user
            "start_time": start,
            "parent_run_id": parent,
            "notebook_path": tags.get("mlflow.source.name"),
            "git_commit": tags.get("mlflow.source.git.commit"),
            "host": MLFLOW_HOST,
            "pid": 0,
            "heartbeat_at": start,
        }
        self.runs.write(
            Batch(
                runs=[row],
                tags=[{"run_id": run_id, "key": k, "value": v} for k, v in tags.items() if k not in SYSTEM_TAGS],
                events=[self._event(run_id, "created", {"status": "RUNNING", "experiment": experiment.name})],
            )
        )
        return {"run": self.run_json(run_id)}

    def get_run(self, body: dict) -> dict:
        return {"run": self.run_json(self._state(body)["id"])}

    def run_json(self, run_id: str) -> dict:
        record = self.runs.get_run(run_id)
        info = record.info
        latest = {key: summary for key, summary in record.metric_summaries.items()}
        metrics = [
            {
                "key": key,
                "value": json_number(value),
                "timestamp": latest.get(key, {}).get("timestamp") or 0,
                "step": latest.get(key, {}).get("last_step") or 0,
            }
            for key, value in record.metrics.items()
        ]
        return {
            "info": self._info(info.model_dump()),
            "data": {
                "metrics": metrics,
                "params": [{"key": k, "value": v} for k, v in record.params.items()],
                "tags": [{"key": k, "value": v} for k, v in self._run_tags(info.model_dump(), record.tags).items()],
            },
            "inputs": {"dataset_inputs": dataset_inputs(record.datasets)},
            "outputs": {"model_outputs": self._model_outputs(info)},
        }

    def _model_outputs(self, info) -> list[dict]:
        models = self.store.mlflow_models.search([info.experiment_id])
        return [{"model_id": m["id"], "step": 0} for m in models if m["run_id"] == info.id and not m["deleted_at"]]

    @staticmethod
    def _info(run: dict) -> dict:
        info = {
            "run_id": run["id"],
            "run_uuid": run["id"],
            "run_name": run["name"],
            "experiment_id": str(run["experiment_id"]),
            "user_id": run["user"],
            "status": run["status"],
            "start_time": run["start_time"],
            "artifact_uri": f"mlflow-artifacts:/{run['experiment_id']}/{run['id']}/artifacts",
            "lifecycle_stage": "deleted" if run.get("deleted_at") else "active",
        }
        if run.get("end_time") is not None:
            info["end_time"] = run["end_time"]
        return info

    @staticmethod
    def _run_tags(run: dict, tags: dict) -> dict:
        """The run's tags, with MLflow's system tags read from its columns (a ``%%track`` run has none)."""
        system = {"mlflow.runName": run["name"], "mlflow.user": run["user"]}
        if run.get("parent_run_id"):
            system["mlflow.parentRunId"] = run["parent_run_id"]
        if run.get("notebook_path"):
            system["mlflow.source.name"] = run["notebook_path"]
        return {**tags, **system}

    def update_run(self, body: dict) -> dict:
        state = self._state(body)
        run_id = state["id"]
        values, events = {}, []
        status = body.get("status")
        if status is not None:
            if status not in RUN_STATUSES:
                raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Invalid run status {status!r}")
            values["status"] = "RUNNING" if status == "SCHEDULED" else status
            if status != state["status"]:
                events.append(self._event(run_id, "status", {"from": state["status"], "to": values["status"]}))
        end = read_integer(body, "end_time", low=0)
        if end is not None:
            values["end_time"] = end
        name = read_text(body, "run_name", required=False, limit=MAX_KEY_LENGTH)
        if name:
            values["name"] = name
        values["heartbeat_at"] = now_ms()
        self.runs.write(Batch(run_updates=[(run_id, values)], events=events))
        return {"run_info": self.run_json(run_id)["info"]}

    def delete_run(self, body: dict) -> dict:
        run_id = self._state(body)["id"]
        self.runs.set_deleted(run_id, True, self._event(run_id, "deleted", {}))
        return {}

    def restore_run(self, body: dict) -> dict:
        run_id = self._state(body)["id"]
        self.runs.set_deleted(run_id, False, self._event(run_id, "restored", {}))
        return {}

    def log_metric(self, body: dict) -> dict:
        self._log(self._state(body, active=True)["id"], metrics=[body])
        return {}

    def log_param(self, body: dict) -> dict:
        self._log(self._state(body, active=True)["id"], params=[body])
        return {}

    def set_tag(self, body: dict) -> dict:
        self._log(self._state(body, active=True)["id"], tags=[body])
        return {}

    def delete_tag(self, body: dict) -> dict:
        run_id = self._state(body, active=True)["id"]
        key = read_key(body.get("key"), "tag")
        if key in SYSTEM_TAGS:
            raise MlflowApiError(
                "INVALID_PARAMETER_VALUE", f"{key} is the run's {SYSTEM_TAGS[key]}: it cannot be removed"
            )
        if key not in self.runs.get_run(run_id).tags:
            raise MlflowApiError("RESOURCE_DOES_NOT_EXIST", f"No tag with name: {key} in run with id {run_id}", 404)
        self.runs.edit_tags(run_id, {}, [key], self._event(run_id, "tags", {"removed": [key]}))
        return {}

    def log_batch(self, body: dict) -> dict:
        metrics = read_pairs(body.get("metrics"), "metrics")
        params = read_pairs(body.get("params"), "params")
        tags = read_pairs(body.get("tags"), "tags")
        for items, limit, what in ((metrics, MAX_BATCH_METRICS, "metrics"), (params, MAX_BATCH_PARAMS, "params"),
                                   (tags, MAX_BATCH_TAGS, "tags")):  # fmt: skip
            if len(items) > limit:
                raise MlflowApiError(
                    "INVALID_PARAMETER_VALUE",
                    f"A batch logging request can contain at most {limit} {what}. Got {len(items)} {what}.",
                )
        if len(metrics) + len(params) + len(tags) > MAX_BATCH_ENTRIES:
            raise MlflowApiError(
                "INVALID_PARAMETER_VALUE",
                f"A batch logging request can contain at most {MAX_BATCH_ENTRIES} metrics, params and tags in all.",
            )
        self._log(self._state(body, active=True)["id"], metrics=metrics, params=params, tags=tags)
        return {}

    def _tags(self, items, what: str) -> dict[str, str]:
        return {
            read_key(t.get("key"), "tag"): read_value(t.get("value"), "Tag", str(t.get("key")), MAX_TAG_LENGTH)
            for t in read_pairs(items, what)
        }

    def _log(self, run_id: str, *, metrics=(), params=(), tags=()) -> None:
        """Check every value first, then write all of them in one transaction: a refused request
        changes nothing."""
        points, keys, now = [], set(), now_ms()
        for metric in metrics:
            key = metric.get("key")
            if type(key) is not str or key not in keys:  # a batch repeats a few keys: check each once
                keys.add(read_key(key, "metric"))
            if "value" not in metric:
                raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Missing value for metric '{key}'")
            points.append(
                {
                    "run_id": run_id,
                    "key": key,
                    "value": read_metric_value(metric["value"], key),
                    "timestamp": read_integer(metric, "timestamp", default=now, low=0),
                    "step": read_integer(metric, "step", default=0),
                }
            )
        new_params = {}
        for param in params:
            key = read_key(param.get("key"), "param")
            value = read_value(param.get("value"), "Param", key, MAX_PARAM_LENGTH)
            if new_params.get(key, value) != value:
                raise MlflowApiError(
                    "INVALID_PARAMETER_VALUE",
                    f"Duplicate parameter keys have been submitted: {key!r} with values {new_params[key]!r} and {value!r}",
                )
            new_params[key] = value
        tag_values = self._tags(list(tags), "tags")
        if new_params:
            stored = self.runs.get_run(run_id).params
            for key, value in new_params.items():
                if key in stored and stored[key] != value:
                    raise MlflowApiError(
                        "INVALID_PARAMETER_VALUE",
                        f"Changing param values is not allowed. Param with key='{key}' was already logged with "
                        f"value='{stored[key]}' for run ID='{run_id}'. Attempted logging new value '{value}'.",
                    )
        # MLflow's system tags set the run's columns (mlflow.user: the run's user is who created it)
        columns = {column: tag_values[tag] for tag, column in COLUMN_OF_TAG.items() if tag_values.get(tag)}
        if len(columns.get("name", "")) > MAX_KEY_LENGTH:
            raise MlflowApiError("INVALID_PARAMETER_VALUE", f"a run name is at most {MAX_KEY_LENGTH} characters")
        batch = Batch(
            metrics=points,
            params=[
                {"run_id": run_id, "key": k, "value": v, "value_num": param_number(v)} for k, v in new_params.items()
            ],
            tags=[{"run_id": run_id, "key": k, "value": v} for k, v in tag_values.items() if k not in SYSTEM_TAGS],
            run_updates=[(run_id, columns)] if columns else [],
        )
        self.runs.write(batch)

    def log_inputs(self, body: dict) -> dict:
        run_id = self._state(body, active=True)["id"]
        versions, links = [], []
        for item in read_pairs(body.get("datasets"), "datasets"):
            dataset = item.get("dataset")
            if not isinstance(dataset, dict):
                raise MlflowApiError("INVALID_PARAMETER_VALUE", "each dataset input needs a 'dataset' object")
            name = read_key(dataset.get("name"), "dataset")
            digest = read_text(dataset, "digest", limit=MAX_KEY_LENGTH)
            described = {k: dataset.get(k) for k in ("name", "digest", "source_type", "source", "schema", "profile")}
            context = self._tags(item.get("tags"), "tags")
            versions.append(dataset_version_row(described))
            links.append(
                {
                    "run_id": run_id,
                    "dataset_hash": versions[-1]["hash"],
                    "direction": "input",
                    "name": f"{name}@{digest}" if context.get("mlflow.data.context") is None else name,
                    "source": json.dumps({"mlflow": described, "tags": context}),
                }
            )
        self.runs.write(Batch(datasets=versions, run_datasets=links))
        return {}

    def search_runs(self, body: dict) -> dict:
        ids = body.get("experiment_ids") or []
        if not isinstance(ids, list):
            ids = [ids]
        experiments = [self._experiment(i).id for i in ids]
        limit = read_integer(body, "max_results", default=1000, low=1, high=MAX_SEARCH_RESULTS)
        offset = page_offset(body.get("page_token"))
        view = VIEW_TYPES.get(body.get("run_view_type") or "ACTIVE_ONLY")
        if view is None:
            raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Invalid run_view_type {body.get('run_view_type')!r}")
        order_by = body.get("order_by") or []
        order_by = [mlflow_order(item) for item in (order_by if isinstance(order_by, list) else [order_by])]
        filter_string = body.get("filter") or None
        if filter_string is not None and not isinstance(filter_string, str):
            raise MlflowApiError("INVALID_PARAMETER_VALUE", "'filter' must be a string")
        runs, params, metrics, tags = self.runs.search_runs(
            experiments, mlflow_filter(filter_string), order_by or None, limit, offset, lifecycle=view
        )
        found = []
        for run in runs:
            run_id = run["id"]
            found.append(
                {
                    "info": self._info(run),
                    "data": {
                        "metrics": [{"key": k, "value": json_number(v)} for k, v in metrics[run_id].items()],
                        "params": [{"key": k, "value": v} for k, v in params[run_id].items()],
                        "tags": [{"key": k, "value": v} for k, v in self._run_tags(run, tags[run_id]).items()],
                    },
                }
            )
        return {"runs": found, **next_page(offset, len(found), limit)}

    def get_metric_history(self, body: dict) -> dict:
        run_id = self._state(body)["id"]
        key = read_key(body.get("metric_key"), "metric")
        limit = read_integer(body, "max_results", default=None, low=1, high=1_000_000)
        offset = page_offset(body.get("page_token"))
        points = self.runs.metric_history(run_id, key)
        page = points[offset : offset + limit] if limit else points[offset:]
        metrics = [
            {"key": key, "value": json_number(value), "timestamp": timestamp, "step": step}
            for step, timestamp, value in page
        ]
        return {"metrics": metrics, **(next_page(offset, len(page), limit) if limit else {})}

    # ---- MLflow 3's logged models ------------------------------------------------------------------

    def _model(self, model_id: str) -> dict:
        model = self.store.mlflow_models.get(model_id)
        if model is None or model["deleted_at"]:
            raise MlflowApiError("RESOURCE_DOES_NOT_EXIST", f"Logged model with ID '{model_id}' not found.", 404)
        return model

    def logged_model_json(self, model: dict) -> dict:
        info = {
            "model_id": model["id"],
            "experiment_id": str(model["experiment_id"]),
            "name": model["name"],
            "creation_timestamp_ms": model["created_at"],
            "last_updated_timestamp_ms": model["updated_at"],
            "artifact_uri": f"mlflow-artifacts:/{model['experiment_id']}/models/{model['id']}/artifacts",
            "status": model["status"],
            "tags": [{"key": k, "value": v} for k, v in model["tags"].items()],
        }
        info.update({k: model[v] for k, v in (("model_type", "model_type"), ("source_run_id", "run_id")) if model[v]})
        params = [{"key": k, "value": v} for k, v in model["params"].items()]
        return {"info": info, "data": {"params": params, "metrics": []}}

    def create_logged_model(self, body: dict) -> dict:
        experiment = self._experiment(read_text(body, "experiment_id"))
        run_id = read_text(body, "source_run_id", required=False)
        if run_id is not None:
            state = self._state({"run_id": run_id}, active=True)
            if state["experiment_id"] != experiment.id:
                raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Run {run_id} is not in experiment {experiment.id}")
        model_id = f"m-{uuid.uuid4().hex}"
        now = now_ms()
        row = {
            "id": model_id,
            "experiment_id": experiment.id,
            "run_id": run_id,
            "name": read_key(body.get("name") or f"model-{model_id[2:10]}", "model name"),
            "status": "LOGGED_MODEL_PENDING",
            "model_type": read_text(body, "model_type", required=False, limit=MAX_KEY_LENGTH),
            "params": self._params(body.get("params")),
            "tags": self._tags(body.get("tags"), "tags"),
            "created_at": now,
            "updated_at": now,
            "created_by": self.user,
        }
        self.store.mlflow_models.create(row)
        return {"model": self.logged_model_json(self._model(model_id))}

    def _params(self, items) -> dict[str, str]:
        return {
            read_key(p.get("key"), "param"): read_value(p.get("value"), "Param", str(p.get("key")), MAX_PARAM_LENGTH)
            for p in read_pairs(items, "params")
        }

    def get_logged_model(self, model_id: str, body: dict) -> dict:
        return {"model": self.logged_model_json(self._model(model_id))}

    def finalize_logged_model(self, model_id: str, body: dict) -> dict:
        model = self._model(model_id)
        status = body.get("status")
        if status not in MODEL_STATUSES[1:]:
            raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Invalid logged model status {status!r}")
        self.store.mlflow_models.update(model_id, {"status": status, "updated_at": now_ms()})
        if status == "LOGGED_MODEL_READY" and self.adopt_models and model["run_id"]:
            self._adopt(model)
        return {"model": self.logged_model_json(self._model(model_id))}

    def _adopt(self, model: dict) -> None:
        """A scikit-learn model MLflow logged in a run becomes one of the run's models too."""
        files = {f["path"]: f for f in self.store.mlflow_models.files(model["id"])}
        row = sklearn_model_row(model["run_id"], model["name"], files, self.artifacts)
        if row is not None:
            self.runs.write(Batch(models=[row]))

    def delete_logged_model(self, model_id: str, body: dict) -> dict:
        self._model(model_id)
        self.store.mlflow_models.update(model_id, {"deleted_at": now_ms(), "updated_at": now_ms()})
        return {}

    def set_logged_model_tags(self, model_id: str, body: dict) -> dict:
        model = self._model(model_id)
        tags = {**model["tags"], **self._tags(body.get("tags"), "tags")}
        self.store.mlflow_models.update(model_id, {"tags": tags, "updated_at": now_ms()})
        return {}

    def delete_logged_model_tag(self, model_id: str, key: str, body: dict) -> dict:
        model = self._model(model_id)
        if key not in model["tags"]:
            raise MlflowApiError("RESOURCE_DOES_NOT_EXIST", f"No tag with key {key!r} on logged model {model_id}", 404)
        tags = {k: v for k, v in model["tags"].items() if k != key}
        self.store.mlflow_models.update(model_id, {"tags": tags, "updated_at": now_ms()})
        return {}

    def log_logged_model_params(self, model_id: str, body: dict) -> dict:
        model = self._model(model_id)
        params = {**model["params"], **self._params(body.get("params"))}
        self.store.mlflow_models.update(model_id, {"params": params, "updated_at": now_ms()})
        return {}

    def search_logged_models(self, body: dict) -> dict:
        """MLflow's client asks for a run's models before it lists or downloads the run's artifacts.
        Filters: ``name``, ``source_run_id``, ``status`` and ``model_type`` compared with ``=`` or
        ``!=``, joined by AND; ordered by creation time (newest first) or by ``order_by`` fields."""
        ids = body.get("experiment_ids") or []
        if not isinstance(ids, list):
            raise MlflowApiError("INVALID_PARAMETER_VALUE", "experiment_ids must be a list")
        experiments = [self._experiment(i).id for i in ids]
        limit = read_integer(body, "max_results", default=100, low=1, high=MAX_SEARCH_RESULTS)
        offset = page_offset(body.get("page_token"))
        matches = logged_model_filter(body.get("filter"))
        found = [m for m in self.store.mlflow_models.search(experiments) if not m["deleted_at"] and matches(m)]
        order_by = body.get("order_by") or []
        if not isinstance(order_by, list) or not all(isinstance(o, dict) for o in order_by):
            raise MlflowApiError("INVALID_PARAMETER_VALUE", "order_by must be a list of {field_name, ascending}")
        for order in reversed(order_by):
            field = {"creation_timestamp": "created_at", "last_updated_timestamp": "updated_at", "name": "name",
                     "model_id": "id"}.get(order.get("field_name"))  # fmt: skip
            if field is None:
                raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Invalid order_by field {order.get('field_name')!r}")
            found.sort(key=lambda m, f=field: m[f], reverse=not order.get("ascending", True))
        page = found[offset : offset + limit]
        return {"models": [self.logged_model_json(m) for m in page], **next_page(offset, len(page), limit)}

    def log_outputs(self, body: dict) -> dict:
        run_id = self._state(body, active=True)["id"]
        outputs = []
        for item in read_pairs(body.get("models"), "models"):
            model = self._model(read_text(item, "model_id"))
            outputs.append({"model_id": model["id"], "step": read_integer(item, "step", default=0)})
        self.runs.write(Batch(events=[self._event(run_id, "model_outputs", {"models": outputs})]))
        return {}

    # ---- the model registry ------------------------------------------------------------------------

    def _registered(self, body: dict, key: str = "name"):
        name = read_text(body, key, limit=MAX_KEY_LENGTH)
        try:
            return self.store.models.get_model(name)
        except NotFoundError:
            raise MlflowApiError(
                "RESOURCE_DOES_NOT_EXIST", f"Registered Model with name={name} not found", 404
            ) from None

    def _version(self, body: dict):
        name = read_text(body, "name", limit=MAX_KEY_LENGTH)
        number = read_integer(body, "version", low=1, high=2**31 - 1)
        if number is None:
            raise MlflowApiError("INVALID_PARAMETER_VALUE", "Missing value for required parameter 'version'.")
        try:
            return self.store.models.get_version(name, number)
        except NotFoundError:
            raise MlflowApiError(
                "RESOURCE_DOES_NOT_EXIST", f"Model Version (name={name}, version={number}) not found", 404
            ) from None

    def version_json(self, version, aliases: dict[str, int] | None = None) -> dict:
        aliases = self.store.models.aliases(version.name) if aliases is None else aliases
        found = {
            "name": version.name,
            "version": str(version.version),
            "creation_timestamp": version.created_at,
            "last_updated_timestamp": version.created_at,
            "user_id": version.created_by,
            "current_stage": version.stage,
            "description": version.description or "",
            "source": version.source or f"runs:/{version.run_id}/{version.source_model}",
            "run_id": version.run_id,
            "status": "READY",
            "tags": [{"key": k, "value": v} for k, v in json.loads(version.tags or "{}").items()],
            "aliases": sorted(a for a, v in aliases.items() if v == version.version),
        }
        if version.mlflow_model_id:
            found["model_id"] = version.mlflow_model_id
        return found

    def registered_model_json(self, model) -> dict:
        versions = self.store.models.list_versions(model.name)
        aliases = self.store.models.aliases(model.name)
        latest = {v.stage: v for v in versions}  # the newest of each stage, as MLflow lists them
        return {
            "name": model.name,
            "creation_timestamp": model.created_at,
            "last_updated_timestamp": max([model.created_at, *(v.created_at for v in versions)]),
            "user_id": model.created_by,
            "description": model.description or "",
            "latest_versions": [self.version_json(v, aliases) for v in latest.values()],
            "tags": [{"key": k, "value": v} for k, v in json.loads(model.tags or "{}").items()],
            "aliases": [{"alias": a, "version": str(v)} for a, v in sorted(aliases.items())],
        }

    def create_registered_model(self, body: dict) -> dict:
        name = read_key(body.get("name"), "registered model")
        if "@" in name or "/" in name:
            raise MlflowApiError("INVALID_PARAMETER_VALUE", f"model name {name!r} may not contain '@' or '/'")
        description = read_text(body, "description", required=False, limit=MAX_TAG_LENGTH)
        try:
            self.store.models.create_model(name, self.user, description, self._tags(body.get("tags"), "tags"))
        except ConflictError:
            raise MlflowApiError("RESOURCE_ALREADY_EXISTS", f"Registered Model (name={name}) already exists.") from None
        return {"registered_model": self.registered_model_json(self.store.models.get_model(name))}

    def get_registered_model(self, body: dict) -> dict:
        return {"registered_model": self.registered_model_json(self._registered(body))}

    def search_registered_models(self, body: dict) -> dict:
        limit = read_integer(body, "max_results", default=100, low=1, high=MAX_SEARCH_RESULTS)
        offset = page_offset(body.get("page_token"))
        matches = entity_filter(body.get("filter"), {"name": lambda m: m["name"]})
        found = [m for m in (self.registered_model_json(m) for m in self.store.models.list_models()) if matches(m)]
        order_by = body.get("order_by") or []
        for item in reversed(order_by if isinstance(order_by, list) else [order_by]):
            field, _, direction = str(item).partition(" ")
            key = {"name": "name", "timestamp": "last_updated_timestamp",
                   "last_updated_timestamp": "last_updated_timestamp"}.get(field)  # fmt: skip
            if key is None or direction.strip().upper() not in ("", "ASC", "DESC"):
                raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Invalid order_by clause {item!r}")
            found.sort(key=lambda m, k=key: m[k], reverse=direction.strip().upper() == "DESC")
        page = found[offset : offset + limit]
        return {"registered_models": page, **next_page(offset, len(page), limit)}

    def rename_registered_model(self, body: dict) -> dict:
        model = self._registered(body)
        new_name = read_key(body.get("new_name"), "registered model")
        try:
            self.store.models.rename_model(model.name, new_name, self.user)
        except ConflictError as exc:
            raise MlflowApiError("RESOURCE_ALREADY_EXISTS", str(exc)) from None
        return {"registered_model": self.registered_model_json(self.store.models.get_model(new_name))}

    def update_registered_model(self, body: dict) -> dict:
        model = self._registered(body)
        description = read_value(body.get("description"), "Description", model.name, MAX_TAG_LENGTH)
        self.store.models.update_model(model.name, {"description": description}, self.user)
        return {"registered_model": self.registered_model_json(self.store.models.get_model(model.name))}

    def delete_registered_model(self, body: dict) -> dict:
        self.store.models.delete_model(self._registered(body).name, self.user)
        return {}

    def set_registered_model_tag(self, body: dict) -> dict:
        model = self._registered(body)
        tags = {**json.loads(model.tags or "{}"), **self._tags([body], "tag")}
        self.store.models.update_model(model.name, {"tags": tags}, self.user)
        return {}

    def delete_registered_model_tag(self, body: dict) -> dict:
        model = self._registered(body)
        key = read_key(body.get("key"), "tag")
        tags = json.loads(model.tags or "{}")
        if tags.pop(key, None) is None:
            raise MlflowApiError("RESOURCE_DOES_NOT_EXIST", f"No tag with key {key!r} on model {model.name}", 404)
        self.store.models.update_model(model.name, {"tags": tags}, self.user)
        return {}

    def get_latest_versions(self, body: dict) -> dict:
        model = self._registered(body)
        stages = body.get("stages") or []
        stages = [stages] if isinstance(stages, str) else stages
        wanted = {STAGE_NAMES.get(str(s).lower(), s) for s in stages}
        latest = {v.stage: v for v in self.store.models.list_versions(model.name)}
        return {
            "model_versions": [self.version_json(v) for stage, v in latest.items() if not wanted or stage in wanted]
        }

    def _source_model(self, body: dict) -> tuple[str, str, str | None]:
        """The run and the model name in it a new version comes from, and MLflow's model id if any."""
        source = read_text(body, "source", limit=4000)
        model_id = read_text(body, "model_id", required=False)
        if model_id is None and (match := re.fullmatch(r"models:/(m-[0-9a-f]{32})/?", source)):
            model_id = match[1]
        if model_id is not None:
            logged = self._model(model_id)
            if not logged["run_id"]:
                raise MlflowApiError(
                    "INVALID_PARAMETER_VALUE", f"logged model {model_id} was logged outside a run: nothing to register"
                )
            return logged["run_id"], logged["name"], model_id
        match = re.fullmatch(r"runs:/([0-9a-f]{32})/([^/]+)/?", source) or re.fullmatch(
            r"mlflow-artifacts:/\d+/([0-9a-f]{32})/artifacts/([^/]+)/?", source
        )
        if match is None:
            raise MlflowApiError(
                "INVALID_PARAMETER_VALUE",
                f"Unsupported model version source {source!r}: use models:/<model id> or runs:/<run>/<model>",
            )
        return match[1], match[2], None

    def create_model_version(self, body: dict) -> dict:
        name = read_key(body.get("name"), "registered model")
        run_id, model_name, model_id = self._source_model(body)
        record = self.runs.get_run(self._state({"run_id": run_id})["id"])
        if not any(m["name"] == model_name for m in record.models):
            raise MlflowApiError(
                "INVALID_PARAMETER_VALUE",
                f"run {run_id} has no model {model_name!r} that mlops_lab can serve: its registry keeps models "
                "it converts to ONNX (scikit-learn, XGBoost, LightGBM, PyTorch, ONNX)",
            )
        details = {
            "source": read_text(body, "source", limit=4000),
            "mlflow_model_id": model_id,
            "description": read_text(body, "description", required=False, limit=MAX_TAG_LENGTH),
            "tags": self._tags(body.get("tags"), "tags"),
        }
        number = self.registry.register(name, run_id, model_name, details=details)
        return {"model_version": self.version_json(self.store.models.get_version(name, number))}

    def get_model_version(self, body: dict) -> dict:
        return {"model_version": self.version_json(self._version(body))}

    def search_model_versions(self, body: dict) -> dict:
        limit = read_integer(body, "max_results", default=10_000, low=1, high=200_000)
        offset = page_offset(body.get("page_token"))
        fields = {"name": lambda v: v["name"], "run_id": lambda v: v["run_id"], "source": lambda v: v["source"],
                  "source_path": lambda v: v["source"], "version_number": lambda v: int(v["version"])}  # fmt: skip
        matches = entity_filter(body.get("filter"), fields)
        found = []
        for model in self.store.models.list_models():
            aliases = self.store.models.aliases(model.name)  # once per model, not per version
            versions = (self.version_json(v, aliases) for v in reversed(self.store.models.list_versions(model.name)))
            found += [v for v in versions if matches(v)]
        page = found[offset : offset + limit]
        return {"model_versions": page, **next_page(offset, len(page), limit)}

    def update_model_version(self, body: dict) -> dict:
        version = self._version(body)
        description = read_value(body.get("description"), "Description", version.name, MAX_TAG_LENGTH)
        self.store.models.update_version(version.name, version.version, {"description": description}, self.user)
        return {"model_version": self.version_json(self._version(body))}

    def transition_stage(self, body: dict) -> dict:
        version = self._version(body)
        stage = STAGE_NAMES.get(str(body.get("stage", "")).lower())
        if stage is None:
            raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Invalid Model Version stage: {body.get('stage')!r}")
        archive = body.get("archive_existing_versions") in (True, "true", "True")
        self.registry.promote(version.name, version.version, stage, archive_previous=archive)
        return {"model_version": self.version_json(self._version(body))}

    def delete_model_version(self, body: dict) -> dict:
        version = self._version(body)
        self.store.models.delete_version(version.name, version.version, self.user)
        return {}

    def get_download_uri(self, body: dict) -> dict:
        version = self._version(body)
        if not version.mlflow_model_id:
            raise MlflowApiError(
                "INVALID_PARAMETER_VALUE",
                f"{version.name}/{version.version} was registered from ml.log_model: its ONNX form is served by "
                "mlops_lab (ml.load_model), not kept in MLflow's format",
            )
        model = self._model(version.mlflow_model_id)
        return {"artifact_uri": f"mlflow-artifacts:/{model['experiment_id']}/models/{model['id']}/artifacts"}

    def set_model_version_tag(self, body: dict) -> dict:
        version = self._version(body)
        tags = {**json.loads(version.tags or "{}"), **self._tags([body], "tag")}
        self.store.models.update_version(version.name, version.version, {"tags": tags}, self.user)
        return {}

    def delete_model_version_tag(self, body: dict) -> dict:
        version = self._version(body)
        key = read_key(body.get("key"), "tag")
        tags = json.loads(version.tags or "{}")
        if tags.pop(key, None) is None:
            raise MlflowApiError(
                "RESOURCE_DOES_NOT_EXIST", f"No tag with key {key!r} on {version.name}/{version.version}", 404
            )
        self.store.models.update_version(version.name, version.version, {"tags": tags}, self.user)
        return {}

    def set_alias(self, body: dict) -> dict:
        version = self._version(body)
        self.registry.set_alias(version.name, read_key(body.get("alias"), "alias"), version.version)
        return {}

    def delete_alias(self, body: dict) -> dict:
        model = self._registered(body)
        alias = read_key(body.get("alias"), "alias")
        if alias not in self.store.models.aliases(model.name):
            raise MlflowApiError("RESOURCE_DOES_NOT_EXIST", f"Registered model alias {alias} not found.", 404)
        self.registry.set_alias(model.name, alias, None)
        return {}

    def get_version_by_alias(self, body: dict) -> dict:
        model = self._registered(body)
        alias = read_key(body.get("alias"), "alias")
        number = self.store.models.aliases(model.name).get(alias)
        if number is None:
            raise MlflowApiError("RESOURCE_DOES_NOT_EXIST", f"Registered model alias {alias} not found.", 404)
        return {"model_version": self.version_json(self.store.models.get_version(model.name, number))}

    # ---- artifacts (MLflow's proxied artifact API) ---------------------------------------------

    def _artifact_target(self, path: str) -> tuple[str, str, str]:
        """``<experiment>/<run>/artifacts[/<path>]`` or ``<experiment>/models/<model>/artifacts[/<path>]``
        → ("run" or "model", its id, the path under it)."""
        match = re.fullmatch(r"(\d+)/(?:([0-9a-f]{32})|models/(m-[0-9a-f]{32}))/artifacts(?:/(.*))?", path or "")
        if match is None:
            raise MlflowApiError(
                "RESOURCE_DOES_NOT_EXIST",
                f"No artifact location {path!r}: runs keep theirs at <experiment>/<run>/artifacts, "
                "logged models at <experiment>/models/<model>/artifacts",
                404,
            )
        experiment, run_id, model_id, relative = match.groups()
        if run_id is not None:
            state = self.runs.run_state(run_id)
            if state is None or str(state["experiment_id"]) != experiment:
                raise MlflowApiError("RESOURCE_DOES_NOT_EXIST", f"Run with id={run_id} not found", 404)
            return "run", run_id, (relative or "").strip("/")
        model = self._model(model_id)
        if str(model["experiment_id"]) != experiment:
            raise MlflowApiError("RESOURCE_DOES_NOT_EXIST", f"Logged model with ID '{model_id}' not found.", 404)
        return "model", model_id, (relative or "").strip("/")

    def _files(self, kind: str, owner: str) -> list[dict]:
        if kind == "run":
            return self.runs.get_run(owner).artifacts
        return [{**f, "kind": "file"} for f in self.store.mlflow_models.files(owner)]

    def upload_artifact(self, path: str, data: bytes) -> dict:
        kind, owner, relative = self._artifact_target(path)
        if not relative:
            raise MlflowApiError("INVALID_PARAMETER_VALUE", "an artifact upload names a file under the artifacts")
        try:
            relative = check_artifact_path(relative)
        except InvalidInputError as exc:
            raise MlflowApiError("INVALID_PARAMETER_VALUE", str(exc)) from None
        if kind == "run":
            self._state({"run_id": owner}, active=True)
        digest = self.artifacts.put_bytes(data)
        if kind == "run":
            row = {"run_id": owner, "path": relative, "hash": digest, "size": len(data), "kind": "file"}
            self.runs.write(Batch(artifacts=[row]))
        else:
            self.store.mlflow_models.add_files(
                [{"model_id": owner, "path": relative, "hash": digest, "size": len(data)}]
            )
        return {}

    def download_artifact(self, path: str) -> tuple[str, bytes]:
        kind, owner, relative = self._artifact_target(path)
        row = next((a for a in self._files(kind, owner) if a["path"] == relative and a["kind"] != "dir"), None)
        if row is None:
            raise MlflowApiError("RESOURCE_DOES_NOT_EXIST", f"No artifact {relative!r} in {kind} {owner}", 404)
        return posixpath.basename(relative), self.artifacts.get_bytes(row["hash"])

    def list_artifacts(self, path: str) -> dict:
        """The files and folders directly under ``path`` (names only, as MLflow's server answers)."""
        kind, owner, relative = self._artifact_target(path)
        return {"files": list_level(self._files(kind, owner), relative, names_only=True)}

    def list_run_artifacts(self, body: dict) -> dict:
        state = self._state(body)
        relative = (read_text(body, "path", required=False) or "").strip("/")
        files = list_level(self._files("run", state["id"]), relative, names_only=False)
        return {"root_uri": f"mlflow-artifacts:/{state['experiment_id']}/{state['id']}/artifacts", "files": files}
