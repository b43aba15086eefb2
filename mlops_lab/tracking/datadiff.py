"""What changed between two dataset versions: schema, rows, keys, and each column's distribution."""

from __future__ import annotations

from ..artifacts import ArtifactStore
from ..monitoring import DriftError, drift, load_frame


def dataset_diff(
    artifacts: ArtifactStore, left, right, *, key: str | list[str] | None = None, with_drift: bool = True
) -> dict:
    """Compare two tables: dataset version hashes, files or frames (``left`` is the older one)."""
    old, new = load_frame(left, artifacts), load_frame(right, artifacts)
    old_schema, new_schema = dict(old.schema), dict(new.schema)
    result = {
        "rows": {"left": old.height, "right": new.height, "change": new.height - old.height},
        "columns_added": [c for c in new.columns if c not in old_schema],
        "columns_removed": [c for c in old.columns if c not in new_schema],
        "dtype_changes": {
            c: {"left": str(old_schema[c]), "right": str(new_schema[c])}
            for c in old.columns
            if c in new_schema and old_schema[c] != new_schema[c]
        },
    }
    if key is not None:
        keys = [key] if isinstance(key, str) else list(key)
        missing = [k for k in keys if k not in old_schema or k not in new_schema]
        if missing:
            raise DriftError(f"key column(s) {missing} are not in both datasets")
        added = new.join(old.select(keys), on=keys, how="anti")
        removed = old.join(new.select(keys), on=keys, how="anti")
        result["keys"] = {
            "added": added.height,
            "removed": removed.height,
            "added_sample": added.select(keys).head(10).to_dicts(),
            "removed_sample": removed.select(keys).head(10).to_dicts(),
            "duplicated_left": old.height - old.select(keys).unique().height,
            "duplicated_right": new.height - new.select(keys).unique().height,
        }
    shared = [
        c
        for c in old.columns
        if c in new_schema
        and c not in result["dtype_changes"]
        and not (key and c in ([key] if isinstance(key, str) else key))
    ]
    if with_drift and shared and old.height and new.height:
        report = drift(old.select(shared), new.select(shared))
        result["drift"] = {
            "share_drifted": report.share_drifted,
            "columns": [
                {
                    "column": c.column,
                    "kind": c.kind,
                    "drift": c.drift,
                    "method": c.method,
                    "score": c.to_dict()["score"],
                }
                for c in report.columns
            ],
        }
    return result


__all__ = ["dataset_diff"]
