"""The store calls a team server accepts: each checks who may make it, acts as the caller (whatever
user a client names is ignored), keeps the registry's rules, then calls the SQL store.

One method per ``<domain>/<method>`` of ``mlops_lab.store.rest``; ``call`` binds the JSON arguments
to it, so a missing or unknown argument is a 400 before anything is read or written.
"""

from __future__ import annotations

import inspect
import json
import re

from ..errors import ForbiddenError, InvalidInputError, NotFoundError
from ..remote import dumps
from ..store import Store
from ..store.events import event_row
from ..store.models import ModelVersion, Run
from ..store.rest import batch_from_wire, to_wire
from . import LEVELS, Access, Identity

DEPLOYMENT_COLUMNS = {"name", "model", "options", "owner", "host", "port", "state"}


def served_model(reference: str) -> str | None:
    """The registered model a deployment serves (``churn@production`` → ``churn``); None for a file."""
    if not isinstance(reference, str) or reference.endswith(".onnx"):
        return None
    return re.split(r"[@/]", reference, maxsplit=1)[0]


# What a client may set on its own run after creating it (never whose or where it is).
RUN_UPDATE_COLUMNS = set(Run.model_fields) - {"id", "experiment_id", "user", "deleted_at", "start_time"}
VERSION_COLUMNS = set(ModelVersion.model_fields) - {"version", "stage", "created_at", "created_by"}
ROW_RUN_FIELDS = ("params", "metrics", "tags", "artifacts", "models", "run_datasets")


def _text(value, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 1000:
        raise InvalidInputError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _integer(value, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInputError(f"{what} must be an integer, got {value!r}")
    return value


class StoreCalls:
    def __init__(self, store: Store, access: Access, *, default_required_approvals: int = 1):
        self.store = store
        self.access = access
        self.default_required_approvals = default_required_approvals

    def store_for(self, who: Identity) -> Store:
        """The stores as ``who`` reaches them through the REST API, answered in this process: what the
        team server's other doors (MLflow's API) act through, with exactly the caller's rights."""
        return Store.rest(_Caller(self, who))

    def call(self, who: Identity, domain: str, method: str, args: dict):
        handler = getattr(self, f"{domain}__{method}", None) if domain.isidentifier() else None
        if handler is None or method.startswith("_"):
            raise NotFoundError(f"the team server has no store call {domain}/{method}")
        if not isinstance(args, dict):
            raise InvalidInputError("a store call's body is a JSON object of its arguments")
        try:
            bound = inspect.signature(handler).bind(who, **args)
        except TypeError as exc:
            raise InvalidInputError(f"{domain}/{method}: {exc}") from None
        return to_wire(handler(*bound.args, **bound.kwargs))

    # ---- helpers -----------------------------------------------------------------------------

    def _run_experiment(self, run_id) -> str:
        experiment = self.store.team.experiments_of_runs([_text(run_id, "run_id")]).get(run_id)
        if experiment is None:
            raise NotFoundError(f"no run with id {run_id!r}")
        return experiment

    def _require_run(self, who: Identity, run_id, level: str) -> None:
        self.access.require(who, "experiment", self._run_experiment(run_id), level)

    def _require_model(self, who: Identity, name, level: str) -> None:
        self.access.require(who, "model", _text(name, "name"), level)

    def _readable_experiments(self, who: Identity) -> list[int]:
        experiments = self.store.runs.list_experiments()
        levels = self.access.levels(who, "experiment", [e.name for e in experiments])
        return [e.id for e in experiments if levels[e.name] >= LEVELS["READ"]]

    def _required_approvals(self, name: str) -> int:
        policy = self.store.models.get_model(name).required_approvals
        return self.default_required_approvals if policy is None else policy

    # ---- runs --------------------------------------------------------------------------------

    def runs__get_or_create_experiment(self, who: Identity, name):
        """Asked by a kernel about to log a run there: one who may not edit hears it now, not when
        the run's first batch is refused."""
        existing = self.store.runs.experiment_id(_text(name, "name"))
        if existing is not None:
            self.access.require(who, "experiment", name, "EDIT")
            return existing
        experiment_id = self.store.runs.get_or_create_experiment(name, who.user)
        self.access.grant_creator(who, "experiment", name)
        return experiment_id

    def runs__experiment_id(self, who: Identity, name):
        experiment_id = self.store.runs.experiment_id(_text(name, "name"))
        if experiment_id is not None:
            self.access.require(who, "experiment", name, "READ")
        return experiment_id

    def runs__list_experiments(self, who: Identity):
        readable = set(self._readable_experiments(who))
        return [e for e in self.store.runs.list_experiments() if e.id in readable]

    def runs__update_experiment(self, who: Identity, experiment_id, values, event):
        experiment = next((e for e in self.store.runs.list_experiments() if e.id == experiment_id), None)
        if experiment is None:
            raise NotFoundError(f"no experiment with id {experiment_id!r}")
        self.access.require(who, "experiment", experiment.name, "MANAGE")
        if not isinstance(values, dict) or not isinstance(event, dict):
            raise InvalidInputError("values and event must be objects")
        self.store.runs.update_experiment(experiment_id, values, {**event, "user": who.user})

    def runs__write(self, who: Identity, batch, batch_id):
        try:
            batch = batch_from_wire(batch)
        except (TypeError, ValueError, KeyError) as exc:
            raise InvalidInputError(f"a malformed write batch: {exc}") from None
        _text(batch_id, "batch_id")
        new_runs = {}
        for row in batch.runs:
            row["user"] = who.user  # the token's user, whatever the client said
            new_runs[_text(row.get("id"), "a run's id")] = _integer(row.get("experiment_id"), "experiment_id")
        names = self.store.team.experiment_names(sorted(set(new_runs.values())))
        for experiment_id in set(new_runs.values()):
            if experiment_id not in names:
                raise NotFoundError(f"no experiment with id {experiment_id}")
        touched = {str(row.get("run_id")) for field in ROW_RUN_FIELDS for row in getattr(batch, field)}
        touched |= {series.run_id for series in batch.metric_series}
        for run_id, values in batch.run_updates:
            touched.add(run_id)
            if set(values) - RUN_UPDATE_COLUMNS:
                raise ForbiddenError(f"a run's {', '.join(sorted(set(values) - RUN_UPDATE_COLUMNS))} cannot be changed")
        for event in batch.events:
            if event.get("entity_type") != "run":
                raise ForbiddenError("a write batch records events of its own runs only")
            event["user"] = who.user
            touched.add(str(event.get("entity_id")))
        existing = self.store.team.experiments_of_runs(sorted(touched - set(new_runs)))
        unknown = touched - set(new_runs) - set(existing)
        if unknown:
            raise NotFoundError(f"no run with id {sorted(unknown)[0]!r}")
        experiments = set(existing.values()) | {names[e] for e in new_runs.values()}
        for experiment in experiments:
            self.access.require(who, "experiment", experiment, "EDIT")
        return self.store.runs.write(batch, batch_id)

    def runs__get_run(self, who: Identity, run_id):
        self._require_run(who, run_id, "READ")
        return self.store.runs.get_run(run_id)

    def runs__run_state(self, who: Identity, run_id):
        self._require_run(who, run_id, "READ")
        return self.store.runs.run_state(run_id)

    def runs__dataset_uses(self, who: Identity, hashes):
        if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes) or len(hashes) > 10_000:
            raise InvalidInputError("hashes must be a list of at most 10000 dataset hashes")
        rows = self.store.runs.dataset_uses(hashes)
        experiments = self.store.team.experiments_of_runs(sorted({row["run_id"] for row in rows}))
        readable = set(self._readable_experiments(who))
        names = {e.name for e in self.store.runs.list_experiments() if e.id in readable}
        return [row for row in rows if experiments.get(row["run_id"]) in names]

    def runs__metric_history(self, who: Identity, run_id, key):
        self._require_run(who, run_id, "READ")
        return self.store.runs.metric_history(run_id, _text(key, "key"))

    def runs__metric_arrays(self, who: Identity, run_id, key):
        self._require_run(who, run_id, "READ")
        return list(self.store.runs.metric_arrays(run_id, _text(key, "key")))

    def runs__count_metric_points(self, who: Identity, run_id=None):
        if run_id is None:
            if not who.admin:
                raise ForbiddenError("only an admin may count every run's points")
        else:
            self._require_run(who, run_id, "READ")
        return self.store.runs.count_metric_points(run_id)

    def runs__edit_tags(self, who: Identity, run_id, tags, removed, event):
        self._require_run(who, run_id, "EDIT")
        if not isinstance(event, dict):
            raise InvalidInputError("event must be an object")
        event = event_row("run", run_id, str(event.get("kind", "tags")), who.user, {})
        self.store.runs.edit_tags(run_id, tags, removed, event)

    def runs__set_deleted(self, who: Identity, run_id, deleted, event):
        self._require_run(who, run_id, "MANAGE")
        event = event_row("run", run_id, "deleted" if deleted else "restored", who.user, {})
        self.store.runs.set_deleted(run_id, bool(deleted), event)

    def runs__search_runs(
        self,
        who: Identity,
        experiment_ids=None,
        filter_string=None,
        order_by=None,
        max_results=1000,
        offset=0,
        lifecycle="active",
    ):
        readable = self._readable_experiments(who)
        if experiment_ids is None:
            experiment_ids = readable
        elif not isinstance(experiment_ids, list) or set(experiment_ids) - set(readable):
            raise ForbiddenError(f"{who.user!r} cannot read every experiment of {experiment_ids!r}")
        return self.store.runs.search_runs(experiment_ids, filter_string, order_by, max_results, offset, lifecycle)

    # ---- the registry ------------------------------------------------------------------------

    def models__add_version(self, who: Identity, row):
        if not isinstance(row, dict) or set(row) - VERSION_COLUMNS:
            raise InvalidInputError(f"a version row has some of the fields {', '.join(sorted(VERSION_COLUMNS))}")
        name = _text(row.get("name"), "name")
        self._require_run(who, row.get("run_id"), "READ")
        created = not self.store.team.model_exists(name)
        if not created:
            self.access.require(who, "model", name, "EDIT")
        version = self.store.models.add_version(row, who.user)
        if created:
            self.access.grant_creator(who, "model", name)
        return version

    def models__create_model(self, who: Identity, name, description, tags):
        if not isinstance(tags, dict) or (description is not None and not isinstance(description, str)):
            raise InvalidInputError("tags must be an object and description a string")
        self.store.models.create_model(_text(name, "name"), who.user, description, tags)
        self.access.grant_creator(who, "model", name)

    def models__update_model(self, who: Identity, name, values):
        self._require_model(who, name, "EDIT")
        if not isinstance(values, dict):
            raise InvalidInputError("values must be an object")
        self.store.models.update_model(name, values, who.user)

    def models__rename_model(self, who: Identity, name, new_name):
        self._require_model(who, name, "MANAGE")
        self.store.models.rename_model(name, _text(new_name, "new_name"), who.user)
        self.access.grant_creator(who, "model", new_name)

    def models__delete_model(self, who: Identity, name):
        self._require_model(who, name, "MANAGE")
        self.store.models.delete_model(name, who.user)

    def models__update_version(self, who: Identity, name, version, values):
        self._require_model(who, name, "EDIT")
        if not isinstance(values, dict):
            raise InvalidInputError("values must be an object")
        self.store.models.update_version(name, _integer(version, "version"), values, who.user)

    def models__delete_version(self, who: Identity, name, version):
        self._require_model(who, name, "MANAGE")
        self.store.models.delete_version(name, _integer(version, "version"), who.user)

    def models__get_version(self, who: Identity, name, version):
        self._require_model(who, name, "READ")
        return self.store.models.get_version(name, _integer(version, "version"))

    def models__get_model(self, who: Identity, name):
        self._require_model(who, name, "READ")
        return self.store.models.get_model(name)

    def models__list_models(self, who: Identity):
        models = self.store.models.list_models()
        levels = self.access.levels(who, "model", [m.name for m in models])
        return [m for m in models if levels[m.name] >= LEVELS["READ"]]

    def models__list_versions(self, who: Identity, name):
        self._require_model(who, name, "READ")
        return self.store.models.list_versions(name)

    def models__aliases(self, who: Identity, name):
        self._require_model(who, name, "READ")
        return self.store.models.aliases(name)

    def models__set_stage(
        self, who: Identity, name, version, stage, comment, expected_production, archive_previous, approval_id
    ):
        self._require_model(who, name, "EDIT")
        _integer(version, "version")
        if stage == "Production" and self._required_approvals(name):
            if approval_id is None:
                raise ForbiddenError(
                    f"{name}/{version} needs an approval by someone other than the requester before Production"
                )
            request, _ = self.store.models.approval(_text(approval_id, "approval_id"))
            if (request.name, request.version, request.stage, request.status) != (name, version, stage, "APPROVED"):
                raise ForbiddenError(f"approval request {approval_id} does not approve {name}/{version} for {stage}")
        self.store.models.set_stage(
            name, version, stage, who.user, comment, expected_production, bool(archive_previous), approval_id
        )

    def models__set_alias(self, who: Identity, name, alias, version, comment):
        self._require_model(who, name, "EDIT")
        self.store.models.set_alias(name, _text(alias, "alias"), version, who.user, comment)

    def models__set_policy(self, who: Identity, name, required_approvals):
        self._require_model(who, name, "MANAGE")
        self.store.models.set_policy(name, required_approvals, who.user)

    def models__request_approval(self, who: Identity, name, version, stage, comment):
        self._require_model(who, name, "EDIT")
        return self.store.models.request_approval(
            name, _integer(version, "version"), _text(stage, "stage"), who.user, comment
        )

    def models__approval(self, who: Identity, request_id):
        request, votes = self.store.models.approval(_text(request_id, "request_id"))
        self._require_model(who, request.name, "READ")
        return request, votes

    def models__approvals_for(self, who: Identity, name, version=None):
        self._require_model(who, name, "READ")
        return self.store.models.approvals_for(name, version)

    def models__vote(self, who: Identity, request_id, decision, comment):
        request, _ = self.store.models.approval(_text(request_id, "request_id"))
        if decision not in ("approve", "reject"):
            raise InvalidInputError(f"a vote is approve or reject, got {decision!r}")
        if not self.access.may_approve(who, request.name):
            raise ForbiddenError(f"{who.user!r} needs MANAGE on the model {request.name!r} to {decision} its versions")
        return self.store.models.vote(request_id, who.user, decision, comment, self._required_approvals(request.name))

    def models__add_gate_result(self, who: Identity, name, version, gate, passed, details):
        self._require_model(who, name, "EDIT")
        return self.store.models.add_gate_result(name, version, _text(gate, "gate"), bool(passed), details, who.user)

    def models__gate_results(self, who: Identity, name, version=None):
        self._require_model(who, name, "READ")
        return self.store.models.gate_results(name, version)

    # ---- the rest ----------------------------------------------------------------------------

    def drift_reports__add(self, who: Identity, row):
        if not isinstance(row, dict):
            raise InvalidInputError("a drift report row is an object")
        self.store.drift_reports.add({**row, "user": who.user})

    def drift_reports__list(self, who: Identity, limit=100):
        return self.store.drift_reports.list(_integer(limit, "limit"))

    def drift_reports__get(self, who: Identity, report_id):
        return self.store.drift_reports.get(_text(report_id, "report_id"))

    def features__save_definition(self, who: Identity, kind, name, spec):
        self.store.features.save_definition(_text(kind, "kind"), _text(name, "name"), spec, who.user)

    def features__definitions(self, who: Identity):
        return self.store.features.definitions()

    def file_state__file_hashes(self, who: Identity, host, keys):
        return self.store.file_state.file_hashes([tuple(key) for key in keys], _text(host, "host"))

    def file_state__remember_file_hashes(self, who: Identity, host, hashed):
        self.store.file_state.remember_file_hashes(
            [(tuple(key), digest) for key, digest in hashed], _text(host, "host")
        )

    def events__add(self, who: Identity, rows):
        if not isinstance(rows, list) or any(
            not isinstance(r, dict) or r.get("entity_type") != "deployment" for r in rows
        ):
            raise ForbiddenError("events are recorded with the change they describe; deployments' alone come apart")
        self.store.events.add([{**row, "user": who.user} for row in rows])

    def events__events(self, who: Identity, entity_type, entity_id):
        if entity_type == "run":
            self._require_run(who, entity_id, "READ")
        elif entity_type in ("model", "experiment"):
            self.access.require(who, entity_type, _text(entity_id, "entity_id"), "READ")
        return self.store.events.events(entity_type, entity_id)

    # ---- deployments: the team's, each changed by its owner or by who manages its model ----

    def _require_deployment(self, who: Identity, existing: dict) -> None:
        if existing["owner"] == who.user or who.admin:
            return
        model = served_model(existing["model"])
        if model is None:
            raise ForbiddenError(f"{existing['name']} is {existing['owner']}'s deployment; only they may change it")
        if self.access.level(who, "model", model) < LEVELS["MANAGE"]:
            raise ForbiddenError(
                f"{existing['name']} is {existing['owner']}'s deployment; changing it needs MANAGE on the model {model!r}"
            )

    def deployments__save(self, who: Identity, row):
        if not isinstance(row, dict) or set(row) != DEPLOYMENT_COLUMNS or not isinstance(row["options"], dict):
            raise InvalidInputError(f"a deployment row has exactly the fields {', '.join(sorted(DEPLOYMENT_COLUMNS))}")
        name = _text(row["name"], "name")
        model = served_model(_text(row["model"], "model"))
        if model is not None:
            self.access.require(who, "model", model, "READ")
        existing = self.store.deployments.get(name)
        if existing is None or existing["owner"] == who.user:
            row = {**row, "owner": who.user}
        else:  # another's: its wanted state may change, not whose it is or where it runs
            self._require_deployment(who, existing)
            row = {**row, **{key: existing[key] for key in ("owner", "host", "port")}}
        self.store.deployments.save(row, who.user)

    def deployments__get(self, who: Identity, name):
        return self.store.deployments.get(_text(name, "name"))

    def deployments__list(self, who: Identity):
        return self.store.deployments.list()

    def deployments__remove(self, who: Identity, name):
        existing = self.store.deployments.get(_text(name, "name"))
        if existing is not None:
            self._require_deployment(who, existing)
            self.store.deployments.remove(name)

    # ---- MLflow 3's logged models: permissions of their experiment ------------------------------

    def _require_experiment_id(self, who: Identity, experiment_id, level: str) -> None:
        name = self.store.team.experiment_names([_integer(experiment_id, "experiment_id")]).get(experiment_id)
        if name is None:
            raise NotFoundError(f"no experiment with id {experiment_id!r}")
        self.access.require(who, "experiment", name, level)

    def _require_mlflow_model(self, who: Identity, model_id, level: str) -> dict:
        model = self.store.mlflow_models.get(_text(model_id, "model_id"))
        if model is None:
            raise NotFoundError(f"no logged model with id {model_id!r}")
        self._require_experiment_id(who, model["experiment_id"], level)
        return model

    def mlflow_models__create(self, who: Identity, row):
        if not isinstance(row, dict):
            raise InvalidInputError("a logged model is an object")
        self._require_experiment_id(who, row.get("experiment_id"), "EDIT")
        if row.get("run_id") is not None:
            self._require_run(who, row["run_id"], "EDIT")
        self.store.mlflow_models.create({**row, "created_by": who.user})

    def mlflow_models__update(self, who: Identity, model_id, values):
        self._require_mlflow_model(who, model_id, "EDIT")
        if not isinstance(values, dict):
            raise InvalidInputError("values must be an object")
        self.store.mlflow_models.update(model_id, values)

    def mlflow_models__get(self, who: Identity, model_id):
        model = self.store.mlflow_models.get(_text(model_id, "model_id"))
        if model is not None:
            self._require_experiment_id(who, model["experiment_id"], "READ")
        return model

    def mlflow_models__search(self, who: Identity, experiment_ids, name=None):
        if not isinstance(experiment_ids, list):
            raise InvalidInputError("experiment_ids must be a list")
        readable = set(self._readable_experiments(who))
        return self.store.mlflow_models.search([i for i in experiment_ids if i in readable], name)

    def mlflow_models__add_files(self, who: Identity, rows):
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise InvalidInputError("rows must be a list of objects")
        for model_id in {r.get("model_id") for r in rows}:
            self._require_mlflow_model(who, model_id, "EDIT")
        self.store.mlflow_models.add_files(rows)

    def mlflow_models__files(self, who: Identity, model_id):
        self._require_mlflow_model(who, model_id, "READ")
        return self.store.mlflow_models.files(model_id)


class _Caller:
    """The REST stores' client for one caller, answered by ``StoreCalls`` in process.  Arguments
    and answers go through JSON as over the wire, so both sides see exactly what a client would."""

    url = "the team server itself"

    def __init__(self, calls: StoreCalls, who: Identity):
        self.calls = calls
        self.who = who

    def call(self, path: str, args: dict | None = None, *, idempotent: bool = True):
        _, _, domain, method = path.split("/")  # api/store/<domain>/<method>
        answer = self.calls.call(self.who, domain, method, json.loads(dumps(args or {})))
        return json.loads(dumps(answer))
