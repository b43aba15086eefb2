"""One run as its page shows it (everything in one answer, so the page paints at once), its
artifacts read and previewed, and what a person may change about it: tags, the description,
deleted or not.  Every change is an event with who made it."""

from __future__ import annotations

import io
import json
import posixpath

from ..artifacts import ArtifactStore
from ..errors import InvalidInputError, NotFoundError
from ..store.events import event_row
from ..store.runs import RunStore
from .compare import metric_history
from .values import check_artifact_path, check_key, tag_text

# Short curves come with the page (one request paints it); long ones cost ~3 µs a point to read, so
# the page asks for them after it is drawn, in parallel.
INLINE_CURVES = 24
INLINE_POINTS = 2_000
FOLDER_ENTRIES = 500  # files listed per logged folder
TEXT_BYTES = 100_000  # of stdout, a git diff or a text artifact shown in the page
PREVIEW_ROWS = 20
TABLE_BYTES = 64 << 20  # a parquet file is read whole to preview it (its schema is at the end)
DESCRIPTION_TAG = "description"

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".svg": "image/svg+xml",
}
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")
TEXT_SUFFIXES = (".txt", ".log", ".md", ".py", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".sql", ".sh", ".html")


def run_page(runs: RunStore, artifacts: ArtifactStore, run_id: str) -> dict:
    """The run with its curves, artifacts listed (folders opened), stdout, git diff, parent and children."""
    record = runs.get_run(run_id)
    page = record.to_dict()
    info = record.info
    page["info"]["deleted"] = info.deleted_at is not None
    page["description"] = record.tags.get(DESCRIPTION_TAG, "")
    curves = [k for k, s in sorted(record.metric_summaries.items()) if s["count"] > 1]
    short = [k for k in curves if record.metric_summaries[k]["count"] <= INLINE_POINTS][:INLINE_CURVES]
    page["curves"] = {
        key: {k: v for k, v in metric_history(runs, run_id, key, INLINE_POINTS).items() if k in ("steps", "values")}
        for key in short
    }
    page["curve_keys"] = curves
    page["artifacts"] = _listing(record.artifacts, artifacts)
    page["figures"] = sorted(a["path"] for a in record.artifacts if a["kind"] == "figure")
    stdout = next((a for a in record.artifacts if a["path"] == "stdout.txt" and a["kind"] == "file"), None)
    page["stdout"] = _text_head(artifacts, stdout["hash"]) if stdout else None
    page["git"] = {
        "commit": info.git_commit,
        "dirty": info.git_dirty,
        "diff": _text_head(artifacts, info.git_diff_hash) if info.git_diff_hash else None,
    }
    page["parent"] = _summary(runs, info.parent_run_id) if info.parent_run_id else None
    children, *_ = runs.search_runs(
        None,
        f"attributes.parent_run_id = '{run_id}'",
        ["attributes.start_time ASC", "attributes.name ASC"],
        1000,
        lifecycle="all",
    )
    page["children"] = [
        {"run_id": c["id"], "name": c["name"], "status": c["status"], "start_time": c["start_time"]} for c in children
    ]
    return page


def _summary(runs: RunStore, run_id: str) -> dict:
    try:
        parent = runs.get_run(run_id).info
    except NotFoundError:
        return {"run_id": run_id, "name": None, "status": None}
    return {"run_id": run_id, "name": parent.name, "status": parent.status}


def _listing(logged: list[dict], artifacts: ArtifactStore) -> list[dict]:
    """Every artifact file, a logged folder's files under its path (the first FOLDER_ENTRIES)."""
    entries = []
    for artifact in sorted(logged, key=lambda a: a["path"]):
        if artifact["kind"] != "dir":
            entries.append({"path": artifact["path"], "size": artifact["size"], "kind": artifact["kind"]})
            continue
        try:
            manifest = artifacts.get_manifest(artifact["hash"])
        except Exception as exc:  # a missing folder is said in the page, the rest still shown
            entries.append({"path": artifact["path"], "size": artifact["size"], "kind": "dir", "error": str(exc)})
            continue
        inner = sorted(manifest)
        entries.append({"path": artifact["path"], "size": artifact["size"], "kind": "dir", "files": len(inner)})
        entries.extend(
            {"path": f"{artifact['path']}/{name}", "size": None, "kind": "file", "folder": artifact["path"]}
            for name in inner[:FOLDER_ENTRIES]
        )
    return entries


def _text_head(artifacts: ArtifactStore, digest: str) -> dict:
    try:
        head, size = artifacts.read_head(digest, TEXT_BYTES)
    except Exception as exc:
        return {"text": "", "size": 0, "error": str(exc)}
    return {"text": head.decode("utf-8", errors="replace"), "size": size, "truncated": size > len(head)}


def artifact_blob(runs: RunStore, artifacts: ArtifactStore, run_id: str, path: str) -> str:
    """The blob hash of a run's artifact by its logical path (a file, or a file inside a logged folder)."""
    check_artifact_path(path)
    by_path = {a["path"]: a for a in runs.get_run(run_id).artifacts}
    if path in by_path and by_path[path]["kind"] in ("file", "figure"):
        return by_path[path]["hash"]
    for folder, artifact in by_path.items():
        if artifact["kind"] == "dir" and path.startswith(folder + "/"):
            manifest = artifacts.get_manifest(artifact["hash"])
            inner = path[len(folder) + 1 :]
            if inner in manifest:
                return manifest[inner]
    raise NotFoundError(f"run {run_id} has no artifact {path!r}")


def artifact_bytes(runs: RunStore, artifacts: ArtifactStore, run_id: str, path: str) -> tuple[str, bytes]:
    """A run's artifact by its logical path, its hash checked."""
    return path, artifacts.get_bytes(artifact_blob(runs, artifacts, run_id, path))


def logged_model_file(runs: RunStore, artifacts: ArtifactStore, run_id: str, name: str, form: str) -> tuple[str, bytes]:
    """A model the run logged, as it was logged (``form="logged"``: pickle or ONNX) or its ONNX form."""
    model = next((m for m in runs.get_run(run_id).models if m["name"] == name), None)
    if model is None:
        raise NotFoundError(f"run {run_id} logged no model named {name!r}")
    if form == "onnx":
        if not model["onnx_hash"]:
            raise NotFoundError(f"model {name!r} has no ONNX form: {model['onnx_error'] or 'not converted'}")
        return f"{name}.onnx", artifacts.get_bytes(model["onnx_hash"])
    suffix = ".onnx" if model["flavor"] == "onnx" else ".pkl"
    return f"{name}{suffix}", artifacts.get_bytes(model["model_hash"])


def artifact_preview(runs: RunStore, artifacts: ArtifactStore, run_id: str, path: str) -> dict:
    """What the page shows of an artifact: an image's type (the page fetches its bytes), a table's
    first rows, JSON or text (the first TEXT_BYTES), or only its size."""
    digest = artifact_blob(runs, artifacts, run_id, path)
    suffix = posixpath.splitext(path)[1].lower()
    if suffix in IMAGE_TYPES:  # the page fetches the bytes itself: only the size is read here
        return {
            "path": path,
            "size": artifacts.read_head(digest, 0)[1],
            "kind": "image",
            "media_type": IMAGE_TYPES[suffix],
        }
    head, size = artifacts.read_head(digest, TABLE_BYTES if suffix == ".parquet" else TEXT_BYTES)
    preview = {"path": path, "size": size}
    if suffix in TABLE_SUFFIXES and (suffix == ".parquet" or b"\x00" not in head):
        return {**preview, **_table_preview(head, size, suffix)}
    truncated = size > len(head)
    if suffix == ".json" and not truncated:
        try:
            text = json.dumps(json.loads(head), indent=2)[:TEXT_BYTES]
            return {**preview, "kind": "json", "text": text}
        except ValueError:
            pass  # shown as text below
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if not truncated or exc.start < len(head) - 4:  # a cut multi-byte character at the end is text still
            return {**preview, "kind": "binary"}
        text = head[: exc.start].decode("utf-8")
    if suffix in TEXT_SUFFIXES or suffix in (".json", "") or "\x00" not in text:
        return {**preview, "kind": "text", "text": text, "truncated": truncated}
    return {**preview, "kind": "binary"}


def _table_preview(head: bytes, size: int, suffix: str) -> dict:
    import polars as pl

    from .capture import preview_json

    try:
        if suffix == ".parquet":
            if size > len(head):
                return {"kind": "binary", "note": f"parquet files over {TABLE_BYTES >> 20} MB are not previewed"}
            frame = pl.read_parquet(io.BytesIO(head), n_rows=PREVIEW_ROWS)
        else:
            complete = head if size == len(head) else head[: head.rfind(b"\n") + 1]
            separator = "\t" if suffix == ".tsv" else ","
            frame = pl.read_csv(io.BytesIO(complete), n_rows=PREVIEW_ROWS, separator=separator, infer_schema_length=0)
    except Exception as exc:  # a file named .csv that is not one: say so, show nothing
        return {"kind": "binary", "note": f"not a readable {suffix[1:]} file: {str(exc).splitlines()[0][:200]}"}
    return {
        "kind": "table",
        "columns": {name: str(dtype) for name, dtype in frame.schema.items()},
        "rows": json.loads(preview_json(frame, PREVIEW_ROWS)),
    }


def edit_tags(runs: RunStore, run_id: str, user: str, set_tags: dict | None = None, remove: list | None = None) -> None:
    """Set and remove tags of any run (the description is the tag ``description``)."""
    set_tags, remove = set_tags or {}, remove or []
    if not isinstance(set_tags, dict) or not isinstance(remove, list):
        raise InvalidInputError("tags are set with an object {key: value} and removed with a list of keys")
    if not set_tags and not remove:
        raise InvalidInputError("nothing to change: give tags to set or keys to remove")
    try:
        checked = {check_key(k, "tag"): tag_text(k, v) for k, v in set_tags.items()}
        removed = [check_key(k, "tag") for k in remove]
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(str(exc)) from None
    if set(checked) & set(removed):
        raise InvalidInputError(f"tag {sorted(set(checked) & set(removed))[0]!r} is both set and removed")
    runs.edit_tags(
        run_id, checked, removed, event_row("run", run_id, "tags edited", user, {"set": checked, "removed": removed})
    )


def set_deleted(runs: RunStore, run_id: str, user: str, deleted: bool) -> None:
    """Delete a run (it leaves searches and the Runs panel, everything kept) or restore it."""
    runs.set_deleted(run_id, deleted, event_row("run", run_id, "deleted" if deleted else "restored", user, {}))
