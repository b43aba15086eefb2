"""What the lab's Pipelines panel shows and starts: the pipelines under the lab's folder, one
pipeline's DAG with each step's state, and a run of it in a process of its own.

    find_pipelines(root)                         # [{"path": "demo/pipeline.yaml", "name": "churn", …}]
    pipeline_view(workspace, root, "demo/pipeline.yaml")
    launcher.start(workspace, root, "demo/pipeline.yaml", step="train", force=False)
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConflictError, InvalidInputError, MlopsLabError, NotFoundError
from .runner import PIPELINE_TAG, STEP_TAG, PipelineRunner, quoted
from .spec import load_pipeline

if TYPE_CHECKING:
    from ..workspace import Workspace

SKIPPED = {"node_modules", "__pycache__", "site-packages", ".git", ".venv", "venv"}
MAX_DEPTH = 4
MAX_FOUND = 200


def pipeline_path(root: str | Path, relative: str) -> Path:
    """A pipeline file named relative to the lab's folder, refused if it lies outside it."""
    if not isinstance(relative, str) or not relative.endswith((".yaml", ".yml")):
        raise InvalidInputError(f"a pipeline is a .yaml file under the lab's folder, got {str(relative)[:200]!r}")
    root = Path(root).resolve()
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise InvalidInputError(f"{relative!r} lies outside the lab's folder")
    if not path.is_file():
        raise NotFoundError(f"no pipeline file {relative!r}")
    return path


def find_pipelines(root: str | Path) -> list[dict]:
    """Every ``pipeline.yaml`` a few folders deep under ``root`` (hidden and package folders skipped)."""
    root = Path(root).resolve()
    found = []
    for folder, folders, files in os.walk(root):
        depth = len(Path(folder).relative_to(root).parts)
        folders[:] = sorted(f for f in folders if not f.startswith(".") and f not in SKIPPED and depth < MAX_DEPTH)
        if "pipeline.yaml" in files:
            path = Path(folder) / "pipeline.yaml"
            entry = {"path": path.relative_to(root).as_posix(), "name": None, "steps": 0, "error": None}
            try:
                pipeline = load_pipeline(path)
                entry.update(name=pipeline.name, steps=len(pipeline.steps))
            except MlopsLabError as error:
                entry["error"] = str(error)
            found.append(entry)
            if len(found) >= MAX_FOUND:
                break
    return found


def pipeline_view(workspace: "Workspace", root: str | Path, relative: str, launcher: "Launcher | None" = None) -> dict:
    """The DAG and each step's state: cached, done (in the last run), restore, stale (and why),
    running, failed (with the error), blocked; a step's run and its duration."""
    path = pipeline_path(root, relative)
    pipeline = load_pipeline(path)
    runner = PipelineRunner(workspace, pipeline)
    states = runner.status()
    runs = workspace.store.runs
    rows, _, _, tags = runs.search_runs(
        None, f"tags.`{PIPELINE_TAG}` = '{quoted(pipeline.name)}'", ["attributes.start_time DESC"], max_results=500
    )
    last_pipeline_run = next((r for r in rows if STEP_TAG not in tags[r["id"]]), None)
    parent_of = {row["id"]: row.get("parent_run_id") for row in rows}
    last_step_run: dict[str, dict] = {}
    for row in rows:
        step = tags[row["id"]].get(STEP_TAG)
        if step:
            last_step_run.setdefault(step, row)
    steps = []
    for name in pipeline.order():
        step, state = pipeline.steps[name], states[name]
        view = {**state.to_dict(), "kind": step.kind, "label": _label(step), "notebook": None}
        if step.notebook:
            view["notebook"] = Path(os.path.relpath(pipeline.path(step.notebook), Path(root).resolve())).as_posix()
        last = last_step_run.get(name)
        record = state.record
        if record is not None:
            if record.ended:
                view["seconds"] = (record.ended - record.started) / 1000
            if last_pipeline_run and parent_of.get(record.run_id) == last_pipeline_run["id"]:
                view["state"] = "done" if state.state == "cached" else state.state
        if state.state == "stale" and last and last["status"] in ("FAILED", "KILLED"):
            view.update(state="failed", error=runs.get_run(last["id"]).info.error, run_id=last["id"])
            if last.get("end_time"):
                view["seconds"] = (last["end_time"] - last["start_time"]) / 1000
        steps.append(view)
    return {
        "name": pipeline.name,
        "path": relative,
        "steps": steps,
        "edges": [list(edge) for edge in pipeline.edges()],
        "last_run": None
        if last_pipeline_run is None
        else {k: last_pipeline_run.get(k) for k in ("id", "status", "start_time", "end_time")},
        "launch": launcher.state(path) if launcher else None,
    }


def executed_notebook(workspace: "Workspace", root: str | Path, relative: str, run_id: str) -> str:
    """Write the notebook a step's run executed (outputs and injected params included) beside the
    pipeline, under ``executed/`` (Jupyter will not open a dot-folder's files), for the lab to open;
    returns its path in the lab's folder."""
    path = pipeline_path(root, relative)
    pipeline = load_pipeline(path)
    if not isinstance(run_id, str) or len(run_id) != 32:
        raise InvalidInputError(f"run_id must be a run's 32-character id, got {str(run_id)[:40]!r}")
    record = workspace.store.runs.get_run(run_id)
    step = record.tags.get(STEP_TAG)
    if record.tags.get(PIPELINE_TAG) != pipeline.name or step not in pipeline.steps:
        raise InvalidInputError(f"run {run_id} is no step of pipeline {pipeline.name!r}")
    kept = [a for a in record.artifacts if a["path"].startswith("notebooks/") and a["path"].endswith(".ipynb")]
    if not kept:
        raise NotFoundError(f"run {run_id} ({step}) kept no executed notebook")
    target = pipeline.root / "executed" / f"{step}-{run_id[:8]}.ipynb"
    target.parent.mkdir(exist_ok=True)
    target.write_bytes(workspace.artifacts.get_bytes(kept[0]["hash"]))
    return target.relative_to(Path(root).resolve()).as_posix()


def _label(step) -> str:
    if step.kind == "notebook":
        return Path(step.notebook).name
    if step.kind == "promote":
        return f"promote {step.config['model']} → {step.config['stage']}"
    return f"{step.kind} {step.config['model']}"


class Launcher:
    """Runs pipelines for the lab, each in a process of its own (``mlops-lab pipeline run``), one at a
    time per pipeline file; keeps the end of each one's output for the panel."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running: dict[Path, dict] = {}

    def start(
        self, workspace: "Workspace", root, relative: str, *, step: str | None = None, force: bool = False
    ) -> dict:
        path = pipeline_path(root, relative)
        pipeline = load_pipeline(path)  # a broken pipeline is refused here, with its reason
        if step is not None and step not in pipeline.steps:
            raise InvalidInputError(f"{relative} has no step {step!r}; its steps: {', '.join(pipeline.steps)}")
        if not isinstance(force, bool):
            raise InvalidInputError(f"force must be true or false, got {force!r}")
        command = [sys.executable, "-m", "mlops_lab.cli", "pipeline", "run", str(path)]
        command += ["--step", step] if step else []
        command += ["--force"] if force else []
        env = {**os.environ, **workspace.location.environment(), "MLOPS_LAB_USER": workspace.user}
        with self._lock:
            current = self._running.get(path)
            if current and current["process"].poll() is None:
                raise ConflictError(
                    f"{relative} is running already (since {time.strftime('%H:%M:%S', time.localtime(current['started']))})"
                )
            output = tempfile.TemporaryFile()  # noqa: SIM115 (the process writes to it after this returns)
            process = subprocess.Popen(
                command, cwd=path.parent, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
            )
            if current:
                current["output"].close()
            self._running[path] = {"process": process, "output": output, "started": time.time(), "step": step}
        return self.state(path)

    def state(self, path: Path) -> dict | None:
        with self._lock:
            current = self._running.get(path)
            if current is None:
                return None
            current["output"].seek(0)
            text = current["output"].read()[-4000:].decode(errors="replace")
            code = current["process"].poll()
        return {
            "running": code is None,
            "exit_code": code,
            "started": current["started"],
            "step": current["step"],
            "output": text,
        }
