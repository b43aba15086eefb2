"""Restoring a run to re-execute it: its input data, its cell as a notebook, its models and its
package versions (as ``dvc checkout`` and ``git checkout`` would together)."""

from __future__ import annotations

import json
import re
import shlex
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from ..artifacts import ArtifactError
from ..errors import InvalidInputError
from .seeds import UNSEEDED_TAG

if TYPE_CHECKING:
    from ..workspace import Workspace

SUFFIX = {"arrow": ".arrow", "folder": "", "files": ""}
MANIFESTS = ("folder", "files")  # a folder, or the files a cell read under one


class ReproducibilityWarning(UserWarning):
    """A run is restored that cannot be expected to give the same results again."""


_UNSAFE = re.compile(r"[/\\\x00-\x1f]")


def file_name(name: str) -> str:
    """``name`` as one file name: separators and control characters replaced, never ``.`` or ``..``
    (names are checked when logged, but a store written by an older version may hold anything)."""
    safe = _UNSAFE.sub("_", str(name)).strip() or "_"
    return "_" + safe if safe in (".", "..") else safe


def inside(folder: Path, *parts: str) -> Path:
    """``folder / parts`` with each part made a plain file name, refused unless it resolves inside
    ``folder`` (a link planted in the folder cannot lead out either)."""
    target = folder.joinpath(*(file_name(part) for part in parts)).resolve()
    if not target.is_relative_to(folder.resolve()):
        raise InvalidInputError(f"checkout refused to write {target}: it is outside {folder}")
    return target


def checkout(workspace: "Workspace", run_id: str, into: str | Path) -> Path:
    """Write the run into the folder ``into`` (new or empty); returns the notebook's path."""
    workspace.flush()
    record = workspace.store.runs.get_run(run_id)
    chance = record.tags.get(UNSEEDED_TAG, "")
    if chance.startswith("unseeded"):
        warnings.warn(
            f"run {record.info.name!r} left randomness unseeded ({chance.removeprefix('unseeded: ')}): "
            "re-running it is not expected to reproduce its results",
            ReproducibilityWarning,
            stacklevel=3,
        )
    folder = Path(into).expanduser()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise FileExistsError(f"{folder} is not an empty folder; checkout writes only into a new or empty one")
    folder.mkdir(parents=True, exist_ok=True)
    blobs = workspace.artifacts
    for dataset in record.datasets:
        if dataset["direction"] != "input":
            continue
        name = file_name(dataset["name"]) + SUFFIX.get(dataset["format"], "")
        blobs.export(dataset["hash"], inside(folder, name), is_dir=dataset["format"] in MANIFESTS)
    for model in record.models:
        extension = ".onnx" if model["flavor"] == "onnx" else ".pkl"
        blobs.export(model["model_hash"], inside(folder, "models", file_name(model["name"]) + extension))
        if model["onnx_hash"] and model["flavor"] != "onnx":
            blobs.export(model["onnx_hash"], inside(folder, "models", file_name(model["name"]) + ".onnx"))
    packages = (record.environment or {}).get("packages", {})
    inside(folder, "requirements.txt").write_text("".join(f"{name}=={version}\n" for name, version in packages.items()))
    inside(folder, "run.json").write_text(json.dumps(record.to_dict(), indent=2, default=str))
    return _write_notebook(record, folder)


def _write_notebook(record, folder: Path) -> Path:
    import nbformat

    info = record.info
    if not info.source:
        raise ArtifactError(f"run {info.id} kept no cell code to re-run (it was not tracked from a cell)")
    summary = [
        f"# Re-running `{info.name}`",
        "",
        f"Run `{info.id}` of experiment **{record.experiment}**, by {info.user}; git commit "
        f"`{info.git_commit or 'none'}`{' (with uncommitted changes)' if info.git_dirty else ''}.",
        "Its input data is in this folder, its models in `models/`, its packages in `requirements.txt`.",
        "",
        "Metrics then: " + ", ".join(f"{k} = {v:.6g}" for k, v in sorted(record.metrics.items())),
    ]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_markdown_cell("\n".join(summary)),
        nbformat.v4.new_code_cell("%load_ext mlops_lab"),
        nbformat.v4.new_code_cell(
            f"%%track --experiment {shlex.quote(record.experiment + '-reproduced')} "
            f"--name {shlex.quote(info.name + '-rerun')} --tag reproduces={info.id}\n{info.source}"
        ),
    ]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = inside(folder, file_name(info.name) + ".ipynb")
    nbformat.write(notebook, path)
    return path
