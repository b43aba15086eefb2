"""One error vocabulary: every error the project raises on purpose carries its HTTP status.

Each door maps errors in one place (``status_of``): the REST handlers answer
``{"error": message, "status": code}``, the CLI prints the message and exits 2, and clients rebuild
the error from that answer with ``error_from_response``.  Every class keeps a builtin base as well,
so a caller's ``except ValueError`` or ``except KeyError`` still works.

    raise NotFoundError(f"no run with id {run_id!r}")       # 404 over REST, exit 2 in the CLI
"""

from __future__ import annotations

import json


class MlopsLabError(Exception):
    """The base of every error with a status; the message says what was wrong and what is accepted."""

    status = 500

    def __init__(self, message: str = "", *, status: int | None = None):
        super().__init__(message)
        if status is not None:
            self.status = status

    def __str__(self) -> str:  # KeyError would quote its message; a person reads this one
        return str(self.args[0]) if self.args else ""


class InvalidInputError(MlopsLabError, ValueError):
    """A request that breaks a rule or names something malformed (400)."""

    status = 400


class UnauthorizedError(MlopsLabError, PermissionError):
    """No credentials, or credentials that are unknown, revoked or expired (401)."""

    status = 401


class ForbiddenError(MlopsLabError, PermissionError):
    """The caller may not do this (403)."""

    status = 403


class NotFoundError(MlopsLabError, KeyError):
    """Nothing by that name or id (404)."""

    status = 404


class ConflictError(MlopsLabError, RuntimeError):
    """Someone else changed it first; nothing was changed by this call (409)."""

    status = 409


class UnavailableError(MlopsLabError, RuntimeError):
    """A store, a file or a process cannot be reached or used right now (503)."""

    status = 503


_BY_STATUS = {
    cls.status: cls
    for cls in (InvalidInputError, UnauthorizedError, ForbiddenError, NotFoundError, ConflictError, UnavailableError)
}


def status_of(exc: BaseException) -> int | None:
    """The HTTP status a door answers ``exc`` with, or None for a bug (which doors let through).

    Builtin errors raised by validation (``ValueError``, ``TypeError``, ``PermissionError``,
    ``LookupError``) map the way their mlops_lab counterparts do."""
    if isinstance(exc, MlopsLabError):
        return exc.status
    if isinstance(exc, PermissionError):
        return 403
    if isinstance(exc, (ValueError, TypeError)):
        return 400
    if isinstance(exc, (LookupError, FileNotFoundError)):
        return 404
    if isinstance(exc, FileExistsError):
        return 409
    return None


def error_body(message: str, status: int, kind: str | None = None) -> dict:
    """What a REST door answers for a refused request (``error_from_response`` reads it back);
    ``kind``, the error's class, lets a client of the team server raise the same class."""
    return {"error": message, "status": status, **({"kind": kind} if kind else {})}


def _error_class(name: str, status: int) -> type[MlopsLabError] | None:
    pending = [MlopsLabError]
    while pending:
        cls = pending.pop()
        if cls.__name__ == name and cls.status == status:
            return cls
        pending.extend(cls.__subclasses__())
    return None


def error_from_response(status: int, body: bytes | str) -> MlopsLabError:
    """Rebuild the error a server answered with: ``{"error", "status"}``, or plain text."""
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    message = text
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    kind = None
    if isinstance(parsed, dict) and parsed.get("error"):
        message = str(parsed["error"])
        status = int(parsed.get("status") or status)
        kind = _error_class(str(parsed.get("kind")), status)
    cls = kind or _BY_STATUS.get(status) or (InvalidInputError if 400 <= status < 500 else UnavailableError)
    return cls(message or f"HTTP {status}", status=status)
