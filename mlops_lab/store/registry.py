"""The model registry's store: versions, stages, aliases, approvals, all with events.

Every change runs in one transaction with its event, so the history is complete or nothing
happened.  Promotion to Production compare-and-sets ``registered_model.production_version``.
"""

from __future__ import annotations

import json
import uuid
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy import select, update

from ..errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError
from .engine import Database
from .events import add_events, event_row, now_ms
from .models import ApprovalRequest, ApprovalVote, GateResultRecord, ModelAlias, ModelVersion, RegisteredModel


def _event(conn, name: str, kind: str, user: str, payload: dict) -> None:
    add_events(conn, [event_row("model", name, kind, user, payload)])


def _model(conn, name: str) -> RegisteredModel:
    row = conn.execute(select(RegisteredModel.__table__).where(RegisteredModel.name == name)).first()
    if row is None:
        raise NotFoundError(f"no registered model named {name!r}")
    return RegisteredModel.model_validate(dict(row._mapping))


def _version(conn, name: str, version: int) -> ModelVersion:
    row = conn.execute(
        select(ModelVersion.__table__).where(ModelVersion.name == name, ModelVersion.version == version)
    ).first()
    if row is None:
        raise NotFoundError(f"model {name!r} has no version {version}")
    return ModelVersion.model_validate(dict(row._mapping))


def _only(values: dict, allowed: set[str], what: str) -> None:
    unknown = set(values) - allowed
    if unknown:
        raise InvalidInputError(f"a {what}'s {', '.join(sorted(unknown))} cannot be changed here")


def _encoded(values: dict) -> dict:
    return {k: (json.dumps(v) if v else None) if k == "tags" else v for k, v in values.items()}


class ModelRegistryStore(Protocol):
    """What the registry service reads and writes; each change lands with its event."""

    def add_version(self, row: dict, user: str) -> int: ...

    def create_model(self, name: str, user: str, description: str | None, tags: dict) -> None: ...

    def update_model(self, name: str, values: dict, user: str) -> None: ...

    def rename_model(self, name: str, new_name: str, user: str) -> None: ...

    def delete_model(self, name: str, user: str) -> None: ...

    def update_version(self, name: str, version: int, values: dict, user: str) -> None: ...

    def delete_version(self, name: str, version: int, user: str) -> None: ...

    def get_version(self, name: str, version: int) -> ModelVersion: ...

    def get_model(self, name: str) -> RegisteredModel: ...

    def list_models(self) -> list[RegisteredModel]: ...

    def list_versions(self, name: str) -> list[ModelVersion]: ...

    def aliases(self, name: str) -> dict[str, int]: ...

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
    ) -> None: ...

    def set_alias(self, name: str, alias: str, version: int | None, user: str, comment: str | None) -> None: ...

    def set_policy(self, name: str, required_approvals: int | None, user: str) -> None: ...

    def request_approval(self, name: str, version: int, stage: str, user: str, comment: str | None) -> str: ...

    def approval(self, request_id: str) -> tuple[ApprovalRequest, list[ApprovalVote]]: ...

    def approvals_for(self, name: str, version: int | None = None) -> list[ApprovalRequest]: ...

    def vote(self, request_id: str, user: str, decision: str, comment: str | None, needed: int) -> str: ...

    def add_gate_result(self, name: str, version: int, gate: str, passed: bool, details: dict, user: str) -> str: ...

    def gate_results(self, name: str, version: int | None = None) -> list[dict]: ...


class SqlModelRegistryStore(ModelRegistryStore):
    def __init__(self, db: Database):
        self.db = db

    def add_version(self, row: dict, user: str) -> int:
        """Create the registered model if new, and its next version; returns the version number."""
        name = row["name"]
        for _ in range(5):  # two registrations at once may pick the same number: the loser retries
            try:
                with self.db.writing() as conn:
                    conn.execute(
                        self.db.insert(RegisteredModel).on_conflict_do_nothing(index_elements=["name"]),
                        [{"name": name, "created_at": now_ms(), "created_by": user}],
                    )
                    version = (
                        conn.execute(
                            select(sa.func.max(ModelVersion.version)).where(ModelVersion.name == name)
                        ).scalar()
                        or 0
                    ) + 1
                    conn.execute(
                        sa.insert(ModelVersion),
                        [{**row, "version": version, "stage": "None", "created_at": now_ms(), "created_by": user}],
                    )
                    _event(conn, name, "registered", user, {"version": version, "run_id": row["run_id"]})
                    return version
            except sa.exc.IntegrityError:
                continue
        raise ConflictError(f"could not register a new version of {name!r}: too many registrations at once")

    def create_model(self, name: str, user: str, description: str | None, tags: dict) -> None:
        """A registered model with no version yet (MLflow's registry allows one)."""
        with self.db.writing() as conn:
            created = conn.execute(
                self.db.insert(RegisteredModel).on_conflict_do_nothing(index_elements=["name"]),
                [{"name": name, "created_at": now_ms(), "created_by": user, "description": description,
                  "tags": json.dumps(tags) if tags else None}],
            ).rowcount  # fmt: skip
            if not created:
                raise ConflictError(f"a registered model named {name!r} already exists")
            _event(conn, name, "created", user, {"description": description, "tags": tags})

    def update_model(self, name: str, values: dict, user: str) -> None:
        """Change a model's description or tags (``tags`` a dict, replacing the old)."""
        _only(values, {"description", "tags"}, "registered model")
        with self.db.writing() as conn:
            _model(conn, name)
            conn.execute(update(RegisteredModel).where(RegisteredModel.name == name).values(**_encoded(values)))
            _event(conn, name, "updated", user, values)

    def rename_model(self, name: str, new_name: str, user: str) -> None:
        """Rename a model with its versions, aliases, approvals and gate results, in one transaction."""
        with self.db.writing() as conn:
            model = _model(conn, name)
            if conn.execute(select(RegisteredModel.name).where(RegisteredModel.name == new_name)).first():
                raise ConflictError(f"a registered model named {new_name!r} already exists")
            conn.execute(sa.insert(RegisteredModel), [{**model.model_dump(), "name": new_name}])
            for table in (ModelVersion, ModelAlias, ApprovalRequest, GateResultRecord):
                conn.execute(update(table).where(table.name == name).values(name=new_name))
            conn.execute(sa.delete(RegisteredModel).where(RegisteredModel.name == name))
            _event(conn, new_name, "renamed", user, {"from": name, "to": new_name})

    def delete_model(self, name: str, user: str) -> None:
        """Forget a model and its versions (its history of events stays); not while one is in Production."""
        with self.db.writing() as conn:
            model = _model(conn, name)
            if model.production_version is not None:
                raise ConflictError(
                    f"{name}/{model.production_version} is in Production: move it out of Production first"
                )
            requests = select(ApprovalRequest.id).where(ApprovalRequest.name == name)
            conn.execute(sa.delete(ApprovalVote).where(ApprovalVote.request_id.in_(requests)))
            for table in (ApprovalRequest, GateResultRecord, ModelAlias, ModelVersion):
                conn.execute(sa.delete(table).where(table.name == name))
            conn.execute(sa.delete(RegisteredModel).where(RegisteredModel.name == name))
            _event(conn, name, "deleted", user, {})

    def update_version(self, name: str, version: int, values: dict, user: str) -> None:
        """Change a version's description or tags."""
        _only(values, {"description", "tags"}, "model version")
        with self.db.writing() as conn:
            _version(conn, name, version)
            conn.execute(
                update(ModelVersion)
                .where(ModelVersion.name == name, ModelVersion.version == version)
                .values(**_encoded(values))
            )
            _event(conn, name, "version updated", user, {"version": version, **values})

    def delete_version(self, name: str, version: int, user: str) -> None:
        """Forget one version and the aliases on it; not the version in Production."""
        with self.db.writing() as conn:
            if _version(conn, name, version).stage == "Production":
                raise ConflictError(f"{name}/{version} is in Production: move it out of Production first")
            requests = select(ApprovalRequest.id).where(
                ApprovalRequest.name == name, ApprovalRequest.version == version
            )
            conn.execute(sa.delete(ApprovalVote).where(ApprovalVote.request_id.in_(requests)))
            for table in (ApprovalRequest, GateResultRecord, ModelAlias, ModelVersion):
                conn.execute(sa.delete(table).where(table.name == name, table.version == version))
            _event(conn, name, "version deleted", user, {"version": version})

    def get_version(self, name: str, version: int) -> ModelVersion:
        with self.db.reading() as conn:
            return _version(conn, name, version)

    def get_model(self, name: str) -> RegisteredModel:
        with self.db.reading() as conn:
            return _model(conn, name)

    def list_models(self) -> list[RegisteredModel]:
        with self.db.reading() as conn:
            rows = conn.execute(select(RegisteredModel.__table__).order_by(RegisteredModel.name)).all()
        return [RegisteredModel.model_validate(dict(r._mapping)) for r in rows]

    def list_versions(self, name: str) -> list[ModelVersion]:
        with self.db.reading() as conn:
            _model(conn, name)
            rows = conn.execute(
                select(ModelVersion.__table__).where(ModelVersion.name == name).order_by(ModelVersion.version)
            ).all()
        return [ModelVersion.model_validate(dict(r._mapping)) for r in rows]

    def aliases(self, name: str) -> dict[str, int]:
        with self.db.reading() as conn:
            return dict(conn.execute(select(ModelAlias.alias, ModelAlias.version).where(ModelAlias.name == name)).all())

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
        """Move a version to ``stage``; to Production only if Production is still ``expected_production``."""
        with self.db.writing() as conn:
            current = _version(conn, name, version)
            if stage == "Production":
                changed = conn.execute(
                    update(RegisteredModel)
                    .where(
                        RegisteredModel.name == name,
                        RegisteredModel.production_version.is_(None)
                        if expected_production is None
                        else RegisteredModel.production_version == expected_production,
                    )
                    .values(production_version=version)
                ).rowcount
                if not changed:
                    raise ConflictError(
                        f"model {name!r}: Production changed while promoting version {version} "
                        "(another promotion won); look again and retry if still wanted"
                    )
                if expected_production is not None and expected_production != version:
                    previous_stage = "Archived" if archive_previous else "Staging"
                    conn.execute(
                        update(ModelVersion)
                        .where(ModelVersion.name == name, ModelVersion.version == expected_production)
                        .values(stage=previous_stage)
                    )
                    _event(
                        conn,
                        name,
                        "stage",
                        user,
                        {
                            "version": expected_production,
                            "from": "Production",
                            "to": previous_stage,
                            "comment": f"replaced by version {version}",
                        },
                    )
                if approval_id is not None:
                    conn.execute(update(ApprovalRequest).where(ApprovalRequest.id == approval_id).values(status="USED"))
            elif current.stage == "Production":
                conn.execute(
                    update(RegisteredModel)
                    .where(RegisteredModel.name == name, RegisteredModel.production_version == version)
                    .values(production_version=None)
                )
            conn.execute(
                update(ModelVersion)
                .where(ModelVersion.name == name, ModelVersion.version == version)
                .values(stage=stage)
            )
            _event(
                conn,
                name,
                "stage",
                user,
                {"version": version, "from": current.stage, "to": stage, "comment": comment, "approval": approval_id},
            )

    def set_alias(self, name: str, alias: str, version: int | None, user: str, comment: str | None) -> None:
        """Point ``alias`` at ``version`` (None removes it)."""
        with self.db.writing() as conn:
            if version is not None:
                _version(conn, name, version)
            else:
                _model(conn, name)
            old = conn.execute(
                select(ModelAlias.version).where(ModelAlias.name == name, ModelAlias.alias == alias)
            ).scalar()
            conn.execute(sa.delete(ModelAlias).where(ModelAlias.name == name, ModelAlias.alias == alias))
            if version is not None:
                conn.execute(sa.insert(ModelAlias), [{"name": name, "alias": alias, "version": version}])
            _event(conn, name, "alias", user, {"alias": alias, "from": old, "to": version, "comment": comment})

    def set_policy(self, name: str, required_approvals: int | None, user: str) -> None:
        with self.db.writing() as conn:
            _model(conn, name)
            conn.execute(
                update(RegisteredModel)
                .where(RegisteredModel.name == name)
                .values(required_approvals=required_approvals)
            )
            _event(conn, name, "policy", user, {"required_approvals": required_approvals})

    def request_approval(self, name: str, version: int, stage: str, user: str, comment: str | None) -> str:
        request_id = uuid.uuid4().hex
        with self.db.writing() as conn:
            _version(conn, name, version)
            conn.execute(
                sa.insert(ApprovalRequest),
                [
                    {
                        "id": request_id,
                        "name": name,
                        "version": version,
                        "stage": stage,
                        "requested_by": user,
                        "status": "PENDING",
                        "comment": comment,
                        "created_at": now_ms(),
                    }
                ],
            )
            _event(
                conn,
                name,
                "approval_requested",
                user,
                {"version": version, "stage": stage, "request": request_id, "comment": comment},
            )
        return request_id

    def approval(self, request_id: str) -> tuple[ApprovalRequest, list[ApprovalVote]]:
        with self.db.reading() as conn:
            row = conn.execute(select(ApprovalRequest.__table__).where(ApprovalRequest.id == request_id)).first()
            if row is None:
                raise NotFoundError(f"no approval request {request_id!r}")
            votes = conn.execute(
                select(ApprovalVote.__table__).where(ApprovalVote.request_id == request_id).order_by(ApprovalVote.time)
            ).all()
        return (
            ApprovalRequest.model_validate(dict(row._mapping)),
            [ApprovalVote.model_validate(dict(v._mapping)) for v in votes],
        )

    def approvals_for(self, name: str, version: int | None = None) -> list[ApprovalRequest]:
        query = select(ApprovalRequest.__table__).where(ApprovalRequest.name == name)
        if version is not None:
            query = query.where(ApprovalRequest.version == version)
        with self.db.reading() as conn:
            rows = conn.execute(query.order_by(ApprovalRequest.created_at)).all()
        return [ApprovalRequest.model_validate(dict(r._mapping)) for r in rows]

    def vote(self, request_id: str, user: str, decision: str, comment: str | None, needed: int) -> str:
        """Record an approval or rejection; returns the request's status after it."""
        with self.db.writing() as conn:
            row = conn.execute(select(ApprovalRequest.__table__).where(ApprovalRequest.id == request_id)).first()
            if row is None:
                raise NotFoundError(f"no approval request {request_id!r}")
            if row.status != "PENDING":
                raise InvalidInputError(f"approval request {request_id} is {row.status}, not open for votes")
            if row.requested_by == user:
                raise ForbiddenError(f"{user!r} asked for this approval and cannot {decision} it themselves")
            try:
                conn.execute(
                    sa.insert(ApprovalVote),
                    [
                        {
                            "request_id": request_id,
                            "user": user,
                            "decision": decision,
                            "comment": comment,
                            "time": now_ms(),
                        }
                    ],
                )
            except sa.exc.IntegrityError:
                raise InvalidInputError(f"{user!r} has already voted on approval request {request_id}") from None
            approvals = conn.execute(
                select(sa.func.count())
                .select_from(ApprovalVote)
                .where(ApprovalVote.request_id == request_id, ApprovalVote.decision == "approve")
            ).scalar()
            status = "REJECTED" if decision == "reject" else ("APPROVED" if approvals >= needed else "PENDING")
            conn.execute(update(ApprovalRequest).where(ApprovalRequest.id == request_id).values(status=status))
            _event(
                conn,
                row.name,
                decision,
                user,
                {"version": row.version, "request": request_id, "comment": comment, "status": status},
            )
        return status

    def add_gate_result(self, name: str, version: int, gate: str, passed: bool, details: dict, user: str) -> str:
        result_id = uuid.uuid4().hex
        with self.db.writing() as conn:
            _version(conn, name, version)
            conn.execute(
                sa.insert(GateResultRecord),
                [
                    {
                        "id": result_id,
                        "name": name,
                        "version": version,
                        "gate": gate,
                        "passed": passed,
                        "details": json.dumps(details),
                        "created_at": now_ms(),
                        "user": user,
                    }
                ],
            )
            _event(conn, name, "gate", user, {"version": version, "gate": gate, "passed": passed, "result": result_id})
        return result_id

    def gate_results(self, name: str, version: int | None = None) -> list[dict]:
        query = select(GateResultRecord.__table__).where(GateResultRecord.name == name)
        if version is not None:
            query = query.where(GateResultRecord.version == version)
        with self.db.reading() as conn:
            rows = conn.execute(query.order_by(GateResultRecord.created_at)).all()
        return [{**dict(r._mapping), "details": json.loads(r.details)} for r in rows]
