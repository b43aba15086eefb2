"""Who is calling the team server and what they may do: tokens, users, admins and permissions.

    access = Access(store, default_level="READ", admins={"alice"})
    token_id, secret = access.create_token(None, "bob", note="laptop", expires_in_days=90)
    who = access.authenticate(secret)            # Identity("bob", admin=False, groups=())
    access.require(who, "experiment", "churn", "EDIT")

Permissions are MLflow's auth app's: READ, EDIT or MANAGE on one experiment or registered model,
for a user or a group (``group:<name>``), the highest grant winning; without a grant, the server's
default level.  Whoever creates an experiment or a model gets MANAGE on it; admins may do anything.
Tokens are random, shown once, stored as their sha256, and may expire.  Inside JupyterHub a hub
token is accepted too: the hub says whose it is and their groups.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

from ..errors import ForbiddenError, InvalidInputError, NotFoundError, UnauthorizedError, UnavailableError
from ..store import Store
from ..store.events import now_ms

LEVELS = {"NONE": 0, "READ": 1, "EDIT": 2, "MANAGE": 3}
KINDS = ("experiment", "model")
TOKEN_PREFIX = "mlt_"
HUB_CACHE_SECONDS = 60


@dataclass(frozen=True)
class Identity:
    user: str
    admin: bool = False
    groups: tuple[str, ...] = ()

    @property
    def grantees(self) -> list[str]:
        return [self.user, *(f"group:{group}" for group in self.groups)]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _level(level: str) -> str:
    if level not in LEVELS:
        raise InvalidInputError(f"a permission is one of {', '.join(LEVELS)}, got {level!r}")
    return level


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise InvalidInputError(f"permissions are on an experiment or a model, got {kind!r}")
    return kind


class HubIdentities:
    """Hub tokens resolved by JupyterHub's API (``GET /hub/api/user`` with the caller's token).  As a
    hub service (``service`` is its name), a token must carry access to this service."""

    def __init__(self, api_url: str, service: str | None = None):
        self.api_url = api_url.rstrip("/")
        self.service = service
        self._cache: dict[str, tuple[float, Identity | None]] = {}
        self._lock = threading.Lock()

    def identify(self, token: str) -> Identity | None:
        key = token_hash(token)
        with self._lock:
            cached = self._cache.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        request = urllib.request.Request(f"{self.api_url}/user", headers={"Authorization": f"token {token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                model = json.loads(response.read())
            identity = Identity(model["name"], bool(model.get("admin")), tuple(model.get("groups") or ()))
            scopes = model.get("scopes")
        except urllib.error.HTTPError as exc:
            if exc.code not in (401, 403, 404):
                raise UnavailableError(f"JupyterHub at {self.api_url} answered {exc.code}") from None
            identity = scopes = None
        except (OSError, ValueError, KeyError) as exc:
            raise UnavailableError(f"JupyterHub at {self.api_url} cannot be asked who a token is: {exc}") from None
        allowed = {"access:services", f"access:services!service={self.service}"}
        if identity and self.service and scopes is not None and not allowed & set(scopes):
            raise ForbiddenError(f"{identity.user!r}'s token does not give access to the {self.service} service")
        with self._lock:
            self._cache[key] = (time.monotonic() + HUB_CACHE_SECONDS, identity)
        return identity


class Access:
    def __init__(
        self,
        store: Store,
        *,
        default_level: str = "READ",
        admins: frozenset[str] | set[str] = frozenset(),
        approver_group: str | None = None,
        hub: HubIdentities | None = None,
    ):
        if store.team is None:
            raise InvalidInputError("a team server keeps its users in its own database, not behind another server")
        self.store = store
        self.team = store.team
        self.default_level = _level(default_level)
        self.admins = frozenset(admins)
        self.approver_group = approver_group
        self.hub = hub
        for name in self.admins:
            self.team.ensure_user(name, is_admin=True)

    # ---- who is calling ----------------------------------------------------------------------

    def authenticate(self, token: str | None) -> Identity:
        if not token:
            raise UnauthorizedError("this team server needs a token: Authorization: Bearer <token>")
        if token.startswith(TOKEN_PREFIX):
            row = self.team.token_by_hash(token_hash(token))
            if row is None:
                raise UnauthorizedError("this token is not known to the team server")
            if row.revoked_at is not None:
                raise UnauthorizedError(f"token {row.id} was revoked")
            if row.expires_at is not None and row.expires_at <= now_ms():
                raise UnauthorizedError(f"token {row.id} has expired")
            user = self.team.user(row.user)
            return Identity(row.user, admin=bool(user and user.is_admin) or row.user in self.admins)
        if self.hub is not None:
            identity = self.hub.identify(token)
            if identity is not None:
                self.team.ensure_user(identity.user)
                user = self.team.user(identity.user)
                admin = identity.admin or identity.user in self.admins or bool(user and user.is_admin)
                return Identity(identity.user, admin, identity.groups)
        raise UnauthorizedError("this token is not known to the team server")

    # ---- what they may do --------------------------------------------------------------------

    def level(self, who: Identity, kind: str, name: str) -> int:
        if who.admin:
            return LEVELS["MANAGE"]
        granted = self.team.levels(kind, who.grantees, [name]).get(name)
        return max(LEVELS[level] for level in granted) if granted else LEVELS[self.default_level]

    def levels(self, who: Identity, kind: str, names: list[str]) -> dict[str, int]:
        if who.admin:
            return dict.fromkeys(names, LEVELS["MANAGE"])
        granted = self.team.levels(kind, who.grantees, names)
        default = LEVELS[self.default_level]
        return {name: max(LEVELS[level] for level in granted[name]) if name in granted else default for name in names}

    def require(self, who: Identity, kind: str, name: str, level: str) -> None:
        if self.level(who, kind, name) < LEVELS[level]:
            raise ForbiddenError(f"{who.user!r} needs {level} on the {kind} {name!r}")

    def may_approve(self, who: Identity, model: str) -> bool:
        """Approving needs MANAGE on the model, or membership of the approvers' group."""
        in_group = self.approver_group is not None and self.approver_group in who.groups
        return in_group or self.level(who, "model", model) >= LEVELS["MANAGE"]

    def grant_creator(self, who: Identity, kind: str, name: str) -> None:
        """Whoever creates an experiment or a model manages it (as in MLflow's auth app)."""
        self.team.set_permission(kind, name, who.user, "MANAGE", who.user)

    # ---- administration ----------------------------------------------------------------------

    def create_token(
        self, actor: Identity | None, user: str, *, note: str = "", expires_in_days: float | None = None
    ) -> tuple[str, str]:
        """A new token for ``user`` (an admin's, or one's own); returns its id and the token, shown once.
        ``actor`` None is the server's operator at its console."""
        if not isinstance(user, str) or not user.strip() or len(user) > 250:
            raise InvalidInputError(f"a user name is 1 to 250 characters, got {user!r}")
        if actor is not None and not actor.admin and actor.user != user:
            raise ForbiddenError(f"{actor.user!r} may create tokens for themselves only")
        if expires_in_days is not None and not (isinstance(expires_in_days, (int, float)) and expires_in_days > 0):
            raise InvalidInputError(f"expires_in_days must be a positive number, got {expires_in_days!r}")
        token_id = uuid.uuid4().hex[:12]
        secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        expires_at = None if expires_in_days is None else now_ms() + int(expires_in_days * 86_400_000)
        row = {
            "id": token_id,
            "hash": token_hash(secret),
            "user": user,
            "note": str(note)[:250],
            "created_at": now_ms(),
            "expires_at": expires_at,
            "revoked_at": None,
        }
        self.team.add_token(row, actor.user if actor else "operator")
        return token_id, secret

    def tokens(self, actor: Identity | None, user: str | None = None) -> list[dict]:
        if actor is not None and not actor.admin:
            if user not in (None, actor.user):
                raise ForbiddenError(f"{actor.user!r} may list their own tokens only")
            user = actor.user
        return [token.model_dump(exclude={"hash"}) for token in self.team.tokens(user)]

    def revoke_token(self, actor: Identity | None, token_id: str) -> None:
        token = self.team.token(token_id)
        if actor is not None and not actor.admin and token.user != actor.user:
            raise NotFoundError(f"no token with id {token_id!r}")  # another's token is not even said to exist
        self.team.revoke_token(token_id, actor.user if actor else "operator")

    def users(self, actor: Identity | None) -> list[dict]:
        if actor is not None and not actor.admin:
            raise ForbiddenError("only an admin may list the team's users")
        return [
            {**user.model_dump(), "is_admin": user.is_admin or user.name in self.admins} for user in self.team.users()
        ]

    def set_admin(self, actor: Identity | None, user: str, is_admin: bool) -> None:
        if actor is not None and not actor.admin:
            raise ForbiddenError("only an admin may make or unmake admins")
        self.team.set_admin(user, bool(is_admin), actor.user if actor else "operator")

    def set_permission(self, actor: Identity | None, kind: str, name: str, grantee: str, level: str | None) -> None:
        """Grant ``level`` (None: take the grant away); needs MANAGE on the resource."""
        _kind(kind)
        if level is not None:
            _level(level)
        if not isinstance(grantee, str) or not grantee.strip() or len(grantee) > 250:
            raise InvalidInputError(f"a grantee is a user name or group:<name>, got {grantee!r}")
        if actor is not None:
            self.require(actor, kind, name, "MANAGE")
        self.team.set_permission(kind, name, grantee, level, actor.user if actor else "operator")

    def permissions(self, actor: Identity | None, kind: str | None = None, name: str | None = None) -> list[dict]:
        if kind is not None:
            _kind(kind)
        rows = [p.model_dump() for p in self.team.permissions(kind, name)]
        if actor is None or actor.admin:
            return rows
        return [row for row in rows if self.level(actor, row["kind"], row["name"]) >= LEVELS["READ"]]
