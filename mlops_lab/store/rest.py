"""The stores of a team server, reached over REST: the same interfaces as the SQL stores, so every
service (tracking, registry, drift, features) works unchanged against ``mlops-lab server``.

Each method is one ``POST <server>/api/store/<domain>/<method>`` with its arguments as JSON.  No
call sends a user: the server acts as the token's user.  A write batch carries an id, so a batch
sent again after a lost answer is applied once (the client retries through a server restart).
"""

from __future__ import annotations

import dataclasses
import uuid

from ..remote import RemoteClient
from .file_state import HOST, FileKey
from .models import ApprovalRequest, ApprovalVote, Experiment, ModelVersion, RegisteredModel, Run
from .runs import Batch, MetricSeries, RunRecord

BATCH_FIELDS = tuple(field.name for field in dataclasses.fields(Batch))


# ---- what travels: plain JSON both ways --------------------------------------------------------


def batch_to_wire(batch: Batch) -> dict:
    wire = {name: getattr(batch, name) for name in BATCH_FIELDS if getattr(batch, name)}
    if "metric_series" in wire:
        wire["metric_series"] = [dataclasses.asdict(series) for series in batch.metric_series]
    if "run_updates" in wire:
        wire["run_updates"] = [[run_id, values] for run_id, values in batch.run_updates]
    return wire


def batch_from_wire(wire: dict) -> Batch:
    """A ``Batch`` from its JSON form; anything malformed is a ``TypeError``/``ValueError``."""
    if not isinstance(wire, dict) or set(wire) - set(BATCH_FIELDS):
        raise ValueError(f"a batch is an object with some of the fields {', '.join(BATCH_FIELDS)}")
    batch = Batch()
    for name, rows in wire.items():
        if not isinstance(rows, list):
            raise ValueError(f"batch field {name!r} must be a list")
        if name == "metric_series":
            batch.metric_series = [MetricSeries(**series) for series in rows]
        elif name == "run_updates":
            batch.run_updates = [(str(run_id), dict(values)) for run_id, values in rows]
        else:
            if not all(isinstance(row, dict) for row in rows):
                raise ValueError(f"every row of batch field {name!r} must be an object")
            setattr(batch, name, rows)
    return batch


def to_wire(value):
    """A store method's answer as JSON-ready values (models as dicts, tuples as lists)."""
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if isinstance(value, RunRecord):
        return {field.name: to_wire(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [to_wire(item) for item in value]
    if isinstance(value, dict):
        return {key: to_wire(item) for key, item in value.items()}
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def run_record_from_wire(wire: dict) -> RunRecord:
    return RunRecord(**{**wire, "info": Run.model_validate(wire["info"])})


# ---- the client stores ------------------------------------------------------------------------


class _Remote:
    domain = ""

    def __init__(self, client: RemoteClient):
        self.client = client
        self.url = client.url

    def _call(self, method: str, *, idempotent: bool = True, **args):
        return self.client.call(f"api/store/{self.domain}/{method}", args, idempotent=idempotent)


class RestRunStore(_Remote):
    domain = "runs"

    def get_or_create_experiment(self, name: str, user: str) -> int:
        return self._call("get_or_create_experiment", name=name)

    def experiment_id(self, name: str) -> int | None:
        return self._call("experiment_id", name=name)

    def list_experiments(self) -> list[Experiment]:
        return [Experiment.model_validate(row) for row in self._call("list_experiments")]

    def update_experiment(self, experiment_id: int, values: dict, event: dict) -> None:
        self._call("update_experiment", experiment_id=experiment_id, values=values, event=event)

    def write(self, batch: Batch, batch_id: str | None = None) -> list[dict]:
        if not len(batch):
            return []
        return self._call("write", batch=batch_to_wire(batch), batch_id=batch_id or uuid.uuid4().hex)

    def reap_stale_runs(self, *, force: bool = False) -> list[str]:
        return []  # the team server reaps the runs of processes that stopped beating, itself

    def get_run(self, run_id: str) -> RunRecord:
        return run_record_from_wire(self._call("get_run", run_id=run_id))

    def run_state(self, run_id: str) -> dict | None:
        return self._call("run_state", run_id=run_id)

    def dataset_uses(self, hashes: list[str]) -> list[dict]:
        return self._call("dataset_uses", hashes=hashes)

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, int, float]]:
        return [tuple(point) for point in self._call("metric_history", run_id=run_id, key=key)]

    def metric_arrays(self, run_id: str, key: str):
        import numpy as np

        steps, values = self._call("metric_arrays", run_id=run_id, key=key)
        return np.array(steps, dtype=np.int64), np.array(values, dtype=np.float64)

    def count_metric_points(self, run_id: str | None = None) -> int:
        return self._call("count_metric_points", run_id=run_id)

    def edit_tags(self, run_id: str, tags: dict[str, str], removed: list[str], event: dict) -> None:
        self._call("edit_tags", run_id=run_id, tags=tags, removed=removed, event=event)

    def set_deleted(self, run_id: str, deleted: bool, event: dict) -> None:
        self._call("set_deleted", run_id=run_id, deleted=deleted, event=event)

    def search_runs(
        self,
        experiment_ids: list[int] | None = None,
        filter_string: str | None = None,
        order_by: list[str] | str | None = None,
        max_results: int = 1000,
        offset: int = 0,
        lifecycle: str = "active",
    ) -> tuple[list[dict], dict[str, dict], dict[str, dict], dict[str, dict]]:
        runs, params, metrics, tags = self._call(
            "search_runs",
            experiment_ids=experiment_ids,
            filter_string=filter_string,
            order_by=order_by,
            max_results=max_results,
            offset=offset,
            lifecycle=lifecycle,
        )
        return runs, params, metrics, tags


class RestModelRegistryStore(_Remote):
    domain = "models"

    def add_version(self, row: dict, user: str) -> int:
        return self._call("add_version", row=row, idempotent=False)

    def create_model(self, name: str, user: str, description: str | None, tags: dict) -> None:
        self._call("create_model", name=name, description=description, tags=tags, idempotent=False)

    def update_model(self, name: str, values: dict, user: str) -> None:
        self._call("update_model", name=name, values=values)

    def rename_model(self, name: str, new_name: str, user: str) -> None:
        self._call("rename_model", name=name, new_name=new_name, idempotent=False)

    def delete_model(self, name: str, user: str) -> None:
        self._call("delete_model", name=name)

    def update_version(self, name: str, version: int, values: dict, user: str) -> None:
        self._call("update_version", name=name, version=version, values=values)

    def delete_version(self, name: str, version: int, user: str) -> None:
        self._call("delete_version", name=name, version=version)

    def get_version(self, name: str, version: int) -> ModelVersion:
        return ModelVersion.model_validate(self._call("get_version", name=name, version=version))

    def get_model(self, name: str) -> RegisteredModel:
        return RegisteredModel.model_validate(self._call("get_model", name=name))

    def list_models(self) -> list[RegisteredModel]:
        return [RegisteredModel.model_validate(row) for row in self._call("list_models")]

    def list_versions(self, name: str) -> list[ModelVersion]:
        return [ModelVersion.model_validate(row) for row in self._call("list_versions", name=name)]

    def aliases(self, name: str) -> dict[str, int]:
        return self._call("aliases", name=name)

    def set_stage(
        self,
        name: str,
        version: int,
        stage: str,
        user: str,
        comment: str | None,
        expected_production: int | None,
        archive_previous: bool,
        approval_id: str | None,
    ) -> None:
        self._call(
            "set_stage",
            name=name,
            version=version,
            stage=stage,
            comment=comment,
            expected_production=expected_production,
            archive_previous=archive_previous,
            approval_id=approval_id,
            idempotent=False,
        )

    def set_alias(self, name: str, alias: str, version: int | None, user: str, comment: str | None) -> None:
        self._call("set_alias", name=name, alias=alias, version=version, comment=comment)

    def set_policy(self, name: str, required_approvals: int | None, user: str) -> None:
        self._call("set_policy", name=name, required_approvals=required_approvals)

    def request_approval(self, name: str, version: int, stage: str, user: str, comment: str | None) -> str:
        return self._call(
            "request_approval", name=name, version=version, stage=stage, comment=comment, idempotent=False
        )

    def approval(self, request_id: str) -> tuple[ApprovalRequest, list[ApprovalVote]]:
        request, votes = self._call("approval", request_id=request_id)
        return ApprovalRequest.model_validate(request), [ApprovalVote.model_validate(v) for v in votes]

    def approvals_for(self, name: str, version: int | None = None) -> list[ApprovalRequest]:
        return [ApprovalRequest.model_validate(r) for r in self._call("approvals_for", name=name, version=version)]

    def vote(self, request_id: str, user: str, decision: str, comment: str | None, needed: int) -> str:
        # ``needed`` is the server's to say: it reads the model's policy itself
        return self._call("vote", request_id=request_id, decision=decision, comment=comment, idempotent=False)

    def add_gate_result(self, name: str, version: int, gate: str, passed: bool, details: dict, user: str) -> str:
        return self._call(
            "add_gate_result", name=name, version=version, gate=gate, passed=passed, details=details, idempotent=False
        )

    def gate_results(self, name: str, version: int | None = None) -> list[dict]:
        return self._call("gate_results", name=name, version=version)


class RestDriftReportStore(_Remote):
    domain = "drift_reports"

    def add(self, row: dict) -> None:
        self._call("add", row=row)

    def list(self, limit: int = 100) -> list[dict]:
        return self._call("list", limit=limit)

    def get(self, report_id: str) -> dict:
        return self._call("get", report_id=report_id)


class RestFeatureDefinitionStore(_Remote):
    domain = "features"

    def save_definition(self, kind: str, name: str, spec: dict, user: str) -> None:
        self._call("save_definition", kind=kind, name=name, spec=spec)

    def definitions(self) -> dict[str, dict[str, dict]]:
        return self._call("definitions")


class RestFileStateStore(_Remote):
    """What this host's files hashed to, kept by the server under this host's name."""

    domain = "file_state"

    def file_hashes(self, keys: list[FileKey]) -> dict[str, str]:
        return self._call("file_hashes", host=HOST, keys=keys) if keys else {}

    def remember_file_hashes(self, hashed: list[tuple[FileKey, str]]) -> None:
        if hashed:
            self._call("remember_file_hashes", host=HOST, hashed=hashed)


class RestEventStore(_Remote):
    domain = "events"

    def add(self, rows: list[dict]) -> None:
        self._call("add", rows=rows, idempotent=False)

    def events(self, entity_type: str, entity_id: str) -> list[dict]:
        return self._call("events", entity_type=entity_type, entity_id=entity_id)


class RestDeploymentStore(_Remote):
    domain = "deployments"

    def save(self, row: dict, user: str) -> None:
        self._call("save", row=row)

    def get(self, name: str) -> dict | None:
        return self._call("get", name=name)

    def list(self) -> list[dict]:
        return self._call("list")

    def remove(self, name: str) -> None:
        self._call("remove", name=name)


class RestMlflowModelStore(_Remote):
    domain = "mlflow_models"

    def create(self, row: dict) -> None:
        self._call("create", row=row)

    def update(self, model_id: str, values: dict) -> None:
        self._call("update", model_id=model_id, values=values)

    def get(self, model_id: str) -> dict | None:
        return self._call("get", model_id=model_id)

    def search(self, experiment_ids: list[int], name: str | None = None) -> list[dict]:
        return self._call("search", experiment_ids=experiment_ids, name=name)

    def add_files(self, rows: list[dict]) -> None:
        self._call("add_files", rows=rows)

    def files(self, model_id: str) -> list[dict]:
        return self._call("files", model_id=model_id)
