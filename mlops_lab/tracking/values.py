"""Checks on what the API is asked to log.  Each error names the key, the value and what is accepted.

NaN and ±inf policy: metrics accept them and give them back unchanged (a diverging loss is worth
seeing).  In filters NaN matches no comparison, as in IEEE arithmetic.
"""

from __future__ import annotations

import math

from ..errors import InvalidInputError
from ..store.models import MAX_KEY_LENGTH, MAX_PARAM_LENGTH, MAX_TAG_LENGTH

INT64_MAX = 2**63 - 1


def check_key(key, what: str) -> str:
    if not isinstance(key, str):
        raise TypeError(f"{what} name must be a string, got {type(key).__name__} {key!r}")
    if not key or key != key.strip():
        raise ValueError(f"{what} name {key!r} must be non-empty and not start or end with spaces")
    if len(key) > MAX_KEY_LENGTH:
        raise ValueError(f"{what} name is {len(key)} characters; at most {MAX_KEY_LENGTH} are allowed: {key[:40]!r}…")
    if any(ord(c) < 32 for c in key):
        raise ValueError(f"{what} name {key!r} contains a control character")
    return key


def check_name(key, what: str) -> str:
    """A name that is also a file name somewhere (a run's notebook, a model, a dataset in a checkout):
    a key with no path in it."""
    check_key(key, what)
    if "/" in key or "\\" in key or key in (".", ".."):
        raise InvalidInputError(
            f"{what} name {key!r} may not contain '/' or '\\' or be '.' or '..': it becomes a file name"
        )
    return key


def check_artifact_path(path) -> str:
    """An artifact's name in its run, for writing and reading alike.  Names are never joined to a
    folder on disk, so ``../`` cannot reach out; they are still refused early, with a clear message."""
    if (
        not isinstance(path, str)
        or not path
        or path.startswith("/")
        or "\\" in path
        or "\x00" in path
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise InvalidInputError(f"artifact path {path!r} must be a relative path inside the run, without '..'")
    return path


def check_metric_value(key: str, value) -> float | None:
    """The stored form: a float, or None for NaN."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"metric {key!r} must be a number, got {type(value).__name__} {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"metric {key!r} must be a number, got {type(value).__name__} {value!r}") from None
    return None if math.isnan(number) else number


def check_step(key: str, step) -> int:
    if isinstance(step, bool) or not isinstance(step, int) and not hasattr(step, "__index__"):
        raise TypeError(f"step of metric {key!r} must be an integer, got {type(step).__name__} {step!r}")
    step = int(step.__index__())
    if abs(step) > INT64_MAX:
        raise ValueError(f"step of metric {key!r} is out of range: {step}")
    return step


def check_timestamp(key: str, timestamp) -> int:
    if isinstance(timestamp, bool) or not isinstance(timestamp, (int, float)) or not math.isfinite(timestamp):
        raise TypeError(f"timestamp of metric {key!r} must be milliseconds since the epoch, got {timestamp!r}")
    if not 0 <= timestamp <= INT64_MAX:
        raise ValueError(f"timestamp of metric {key!r} is out of range: {timestamp}")
    return int(timestamp)


def param_text(key: str, value) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_PARAM_LENGTH:
        raise ValueError(
            f"param {key!r} is {len(text)} characters; at most {MAX_PARAM_LENGTH} are kept. "
            "Log a large value as an artifact (ml.log_artifact) instead."
        )
    return text


def param_number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def tag_text(key: str, value) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_TAG_LENGTH:
        raise ValueError(f"tag {key!r} is {len(text)} characters; at most {MAX_TAG_LENGTH} are kept")
    return text
