"""The team server's own rows: users, hashed tokens and permissions, each change with its event.

Only the team server reads these (a kernel talking to it never does): the rules that use them live
in ``mlops_lab.team``.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import select, update

from ..errors import NotFoundError
from .engine import Database
from .events import add_events, event_row, now_ms
from .models import ApiToken, Experiment, Permission, RegisteredModel, Run, TeamUser


class SqlTeamStore:
    def __init__(self, db: Database):
        self.db = db

    # ---- users -------------------------------------------------------------------------------

    def ensure_user(self, name: str, *, is_admin: bool = False) -> None:
        """Know ``name`` (first seen through a token or JupyterHub); an admin stays one."""
        with self.db.writing() as conn:
            conn.execute(
                self.db.insert(TeamUser).on_conflict_do_nothing(index_elements=["name"]),
                {"name": name, "is_admin": is_admin, "created_at": now_ms()},
            )
            if is_admin:
                conn.execute(update(TeamUser).where(TeamUser.name == name).values(is_admin=True))

    def user(self, name: str) -> TeamUser | None:
        with self.db.reading() as conn:
            row = conn.execute(select(TeamUser.__table__).where(TeamUser.name == name)).first()
        return None if row is None else TeamUser.model_validate(dict(row._mapping))

    def users(self) -> list[TeamUser]:
        with self.db.reading() as conn:
            rows = conn.execute(select(TeamUser.__table__).order_by(TeamUser.name)).all()
        return [TeamUser.model_validate(dict(r._mapping)) for r in rows]

    def set_admin(self, name: str, is_admin: bool, actor: str) -> None:
        with self.db.writing() as conn:
            conn.execute(
                self.db.insert(TeamUser).on_conflict_do_nothing(index_elements=["name"]),
                {"name": name, "is_admin": is_admin, "created_at": now_ms()},
            )
            conn.execute(update(TeamUser).where(TeamUser.name == name).values(is_admin=is_admin))
            add_events(conn, [event_row("user", name, "admin", actor, {"is_admin": is_admin})])

    # ---- tokens ------------------------------------------------------------------------------

    def add_token(self, row: dict, actor: str) -> None:
        """Keep a new token (``row["hash"]`` is its sha256; the token itself is never stored)."""
        with self.db.writing() as conn:
            conn.execute(
                self.db.insert(TeamUser).on_conflict_do_nothing(index_elements=["name"]),
                {"name": row["user"], "is_admin": False, "created_at": now_ms()},
            )
            conn.execute(sa.insert(ApiToken), [row])
            payload = {"token": row["id"], "note": row["note"], "expires_at": row["expires_at"]}
            add_events(conn, [event_row("user", row["user"], "token_created", actor, payload)])

    def token_by_hash(self, digest: str) -> ApiToken | None:
        with self.db.reading() as conn:
            row = conn.execute(select(ApiToken.__table__).where(ApiToken.hash == digest)).first()
        return None if row is None else ApiToken.model_validate(dict(row._mapping))

    def tokens(self, user: str | None = None) -> list[ApiToken]:
        query = select(ApiToken.__table__).order_by(ApiToken.created_at)
        if user is not None:
            query = query.where(ApiToken.user == user)
        with self.db.reading() as conn:
            return [ApiToken.model_validate(dict(r._mapping)) for r in conn.execute(query).all()]

    def token(self, token_id: str) -> ApiToken:
        with self.db.reading() as conn:
            row = conn.execute(select(ApiToken.__table__).where(ApiToken.id == token_id)).first()
        if row is None:
            raise NotFoundError(f"no token with id {token_id!r}")
        return ApiToken.model_validate(dict(row._mapping))

    def revoke_token(self, token_id: str, actor: str) -> None:
        with self.db.writing() as conn:
            row = conn.execute(select(ApiToken.user).where(ApiToken.id == token_id)).first()
            if row is None:
                raise NotFoundError(f"no token with id {token_id!r}")
            conn.execute(
                update(ApiToken)
                .where(ApiToken.id == token_id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=now_ms())
            )
            add_events(conn, [event_row("user", row.user, "token_revoked", actor, {"token": token_id})])

    # ---- permissions -------------------------------------------------------------------------

    def set_permission(self, kind: str, name: str, grantee: str, level: str | None, actor: str) -> None:
        """Give ``grantee`` ``level`` on one experiment or model (None takes it away), with an event."""
        with self.db.writing() as conn:
            old = conn.execute(
                select(Permission.level).where(
                    Permission.kind == kind, Permission.name == name, Permission.grantee == grantee
                )
            ).scalar()
            conn.execute(
                sa.delete(Permission).where(
                    Permission.kind == kind, Permission.name == name, Permission.grantee == grantee
                )
            )
            if level is not None:
                conn.execute(sa.insert(Permission), [{"kind": kind, "name": name, "grantee": grantee, "level": level}])
            payload = {"grantee": grantee, "from": old, "to": level}
            add_events(conn, [event_row(kind if kind == "model" else "experiment", name, "permission", actor, payload)])

    def permissions(self, kind: str | None = None, name: str | None = None) -> list[Permission]:
        query = select(Permission.__table__).order_by(Permission.kind, Permission.name, Permission.grantee)
        if kind is not None:
            query = query.where(Permission.kind == kind)
        if name is not None:
            query = query.where(Permission.name == name)
        with self.db.reading() as conn:
            return [Permission.model_validate(dict(r._mapping)) for r in conn.execute(query).all()]

    def levels(self, kind: str, grantees: list[str], names: list[str] | None = None) -> dict[str, list[str]]:
        """Per resource name, the levels granted to any of ``grantees`` (a user and their groups)."""
        query = select(Permission.name, Permission.level).where(
            Permission.kind == kind, Permission.grantee.in_(grantees)
        )
        if names is not None:
            query = query.where(Permission.name.in_(names))
        found: dict[str, list[str]] = {}
        with self.db.reading() as conn:
            for name, level in conn.execute(query).all():
                found.setdefault(name, []).append(level)
        return found

    # ---- what a call touches -----------------------------------------------------------------

    def experiments_of_runs(self, run_ids: list[str]) -> dict[str, str]:
        """Each known run's experiment name (what permissions on runs are granted through)."""
        if not run_ids:
            return {}
        with self.db.reading() as conn:
            rows = conn.execute(
                select(Run.id, Experiment.name)
                .join(Experiment, Experiment.id == Run.experiment_id)
                .where(Run.id.in_(sorted(set(run_ids))))
            ).all()
        return dict(rows)

    def experiment_names(self, experiment_ids: list[int]) -> dict[int, str]:
        if not experiment_ids:
            return {}
        with self.db.reading() as conn:
            return dict(
                conn.execute(select(Experiment.id, Experiment.name).where(Experiment.id.in_(experiment_ids))).all()
            )

    def model_exists(self, name: str) -> bool:
        with self.db.reading() as conn:
            return conn.execute(select(RegisteredModel.name).where(RegisteredModel.name == name)).first() is not None
