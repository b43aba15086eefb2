"""Numbers as JSON can carry them: the one place NaN and ±infinity become strings."""

from __future__ import annotations


def json_number(value: float | None) -> float | str | None:
    """``value``, or ``"NaN"`` / ``"Infinity"`` / ``"-Infinity"``, which JSON lacks (None stays None)."""
    if value is None:
        return None
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def from_json_number(value) -> float:
    """The inverse of ``json_number`` (None also reads as NaN: SQL NULL is how NaN is stored)."""
    if value is None:
        return float("nan")
    return float(value)  # float() reads "NaN", "Infinity" and "-Infinity"
