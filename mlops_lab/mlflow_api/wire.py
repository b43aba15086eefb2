"""MLflow's wire: its error shape, and reading and writing the fields of its JSON (protobuf's
JSON: int64 as numbers or strings, NaN and infinities as words, opaque page tokens)."""

from __future__ import annotations

import base64
import json
import math
import re

from ..errors import status_of
from ..store.models import MAX_KEY_LENGTH


class MlflowApiError(Exception):
    """A request MLflow's API refuses: MLflow's error code, its HTTP status and a sentence."""

    def __init__(self, error_code: str, message: str, status: int = 400):
        super().__init__(message)
        self.error_code = error_code
        self.status = status


# Our error vocabulary in MLflow's words (MLflow answers "already exists" with a 400).
ERROR_CODES = {
    400: ("INVALID_PARAMETER_VALUE", 400),
    401: ("UNAUTHENTICATED", 401),
    403: ("PERMISSION_DENIED", 403),
    404: ("RESOURCE_DOES_NOT_EXIST", 404),
    409: ("RESOURCE_ALREADY_EXISTS", 400),
    503: ("TEMPORARILY_UNAVAILABLE", 503),
}


def error_answer(exc: Exception) -> tuple[int, dict] | None:
    """The status and MLflow error body for a refused request; None for a bug (a 500 the door logs)."""
    if isinstance(exc, MlflowApiError):
        return exc.status, {"error_code": exc.error_code, "message": str(exc)}
    status = status_of(exc)
    if status is None:
        return None
    code, status = ERROR_CODES.get(status, ("INTERNAL_ERROR", status))
    return status, {"error_code": code, "message": str(exc)}


# ---- reading MLflow's JSON ------------------------------------------------------------------------


def read_text(
    body: dict, key: str, *, required: bool = True, default: str | None = None, limit: int = 1000
) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Missing value for required parameter '{key}'.")
        return default
    if not isinstance(value, str):
        raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Invalid value {value!r} for parameter '{key}': a string")
    if len(value) > limit:
        raise MlflowApiError(
            "INVALID_PARAMETER_VALUE", f"Parameter '{key}' is {len(value)} characters long; at most {limit}."
        )
    return value


def read_integer(body: dict, key: str, *, default: int | None = None, low: int = -(2**63), high: int = 2**63 - 1):
    """An int64 as protobuf's JSON carries it: a number or a string of digits."""
    value = body.get(key)
    if type(value) is int and low <= value <= high:  # nearly always: first, and cheap (a batch reads 2,000)
        return value
    if value is None:
        return default
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,19}", value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Invalid value {value!r} for parameter '{key}': an integer")
    return value


def read_metric_value(value, key: str) -> float | None:
    """A metric's double as protobuf's JSON carries it (NaN and infinities as words); None for NaN,
    as stored."""
    if type(value) is float and value == value:  # nearly always: first, and cheap (a batch reads 1,000)
        return value
    if isinstance(value, str) and value in ("NaN", "Infinity", "-Infinity"):
        value = float(value.replace("Infinity", "inf"))
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Invalid value {value!r} for metric '{key}': a number")
    value = float(value)
    return None if math.isnan(value) else value


def json_number(value: float | None):
    if value is None or value != value:
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def read_key(value, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Invalid {what} key {value!r}: a non-empty string")
    if len(value) > MAX_KEY_LENGTH:
        raise MlflowApiError("INVALID_PARAMETER_VALUE", f"{what} key {value[:50]!r}… is longer than {MAX_KEY_LENGTH}")
    if ".." in value.split("/") or value.startswith("/"):
        raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Invalid {what} key {value!r}: no '..' or leading '/'")
    return value


def read_value(value, what: str, key: str, limit: int) -> str:
    if value is None:
        value = ""
    if not isinstance(value, str):
        value = str(value)
    if len(value) > limit:
        raise MlflowApiError(
            "INVALID_PARAMETER_VALUE", f"{what} '{key}' has a value of {len(value)} characters; at most {limit}"
        )
    return value


def read_pairs(items, what: str) -> list[dict]:
    if items is None:
        return []
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise MlflowApiError("INVALID_PARAMETER_VALUE", f"'{what}' must be a list of objects")
    return items


def page_offset(token) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.b64decode(token, validate=True))["offset"]
    except (ValueError, TypeError, KeyError):
        raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Invalid page token {str(token)[:50]!r}") from None
    if not isinstance(offset, int) or offset < 0:
        raise MlflowApiError("INVALID_PARAMETER_VALUE", f"Invalid page token {str(token)[:50]!r}")
    return offset


def next_page(offset: int, page: int, limit: int) -> dict:
    if page < limit:
        return {}
    return {"next_page_token": base64.b64encode(json.dumps({"offset": offset + page}).encode()).decode()}


# ---- the API ----------------------------------------------------------------------------------------
