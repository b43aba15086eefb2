"""Lineage both ways: what made a model version, and what was made from a dataset version.

model_lineage(ws, "churn/3")   # its run → the pipeline step → the pipeline run; every step's
                               # run, data read and written, notebook, cell and git commit
dataset_lineage(ws, HASH)      # runs that read it, what they wrote, who read that, … and the
                               # model versions registered from any of those runs
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from ..errors import MlopsLabError, NotFoundError
from .builtin import run_tree
from .runner import PIPELINE_TAG, STEP_TAG

if TYPE_CHECKING:
    from ..workspace import Workspace

MAX_RUNS = 2000  # a dataset read by every run of a busy team: the walk stops, and says so


def _run_facts(record) -> dict:
    info = record.info
    return {
        "run_id": info.id,
        "name": info.name,
        "status": info.status,
        "experiment": record.experiment,
        "user": info.user,
        "start_time": info.start_time,
        "pipeline": record.tags.get(PIPELINE_TAG),
        "step": record.tags.get(STEP_TAG),
        "notebook": info.notebook_path,
        "cell_hash": info.source_hash,
        "git_commit": info.git_commit,
        "git_dirty": info.git_dirty,
        "params": record.params,
        "models": [m["name"] for m in record.models],
        "datasets": [
            {"hash": d["hash"], "name": d["name"], "direction": d["direction"], "format": d.get("format")}
            for d in record.datasets
        ],
    }


def model_lineage(workspace: "Workspace", uri: str) -> dict:
    """The runs behind a model version, from the one that logged it up to its pipeline run, and the
    pipeline's steps with their data and code."""
    registry = workspace.registry
    runs = workspace.store.runs
    name, version = registry.resolve(uri)
    model = workspace.store.models.get_version(name, version)
    chain, run_id = [], model.run_id
    while run_id and len(chain) < 20:
        record = runs.get_run(run_id)
        chain.append(_run_facts(record))
        run_id = record.info.parent_run_id
    pipeline_run = next((r for r in chain if r["pipeline"] and not r["step"]), None)
    steps = _pipeline_steps(workspace, pipeline_run["run_id"]) if pipeline_run else []
    return {
        "model": {"name": name, "version": version, "stage": model.stage, "run_id": model.run_id},
        "runs": chain,
        "pipeline": pipeline_run,
        "steps": steps,
    }


def _pipeline_steps(workspace: "Workspace", pipeline_run_id: str) -> list[dict]:
    """Every step of a pipeline run, cached ones too (their facts come from the run that made them)."""
    record = workspace.store.runs.get_run(pipeline_run_id)
    listed = next((a for a in record.artifacts if a["path"] == "pipeline/steps.json"), None)
    if listed is None:
        return []
    steps = []
    for step in json.loads(workspace.artifacts.get_bytes(listed["hash"]))["steps"]:
        entry = {"step": step["step"], "state": step["state"], "run_id": step["run_id"]}
        if step["run_id"]:
            try:
                entry.update(_run_facts(workspace.store.runs.get_run(step["run_id"])), step=step["step"])
            except MlopsLabError:
                entry["missing"] = True  # deleted since, or not readable by this user
        steps.append(entry)
    return steps


def dataset_lineage(workspace: "Workspace", dataset_hash: str) -> dict:
    """Everything downstream of a dataset version: the runs that read it (and their child runs),
    what those wrote, the runs that read that, and so on; and the model versions registered from
    any of them."""
    runs = workspace.store.runs
    uses = runs.dataset_uses([dataset_hash])
    if not uses:
        raise NotFoundError(f"no run read or wrote a dataset version {dataset_hash!r}")
    seen_data, frontier, found, edges = {dataset_hash}, [dataset_hash], {}, []
    truncated = False
    while frontier and not truncated:
        readers = [u for u in runs.dataset_uses(frontier) if u["direction"] == "input"]
        frontier = []
        for use in readers:
            for run_id in run_tree(runs, use["run_id"]):
                if run_id in found:
                    continue
                if len(found) >= MAX_RUNS:
                    truncated = True
                    break
                found[run_id] = _run_facts(runs.get_run(run_id))
                edges.append({"dataset": use["dataset_hash"], "run_id": run_id})
                for data in found[run_id]["datasets"]:
                    if data["direction"] == "output" and data["hash"] not in seen_data:
                        seen_data.add(data["hash"])
                        frontier.append(data["hash"])
                        edges.append({"run_id": run_id, "dataset": data["hash"]})
    versions = []
    for registered in workspace.store.models.list_models():
        for version in workspace.store.models.list_versions(registered.name):
            if version.run_id in found:
                versions.append(
                    {"name": version.name, "version": version.version, "stage": version.stage, "run_id": version.run_id}
                )
    return {
        "dataset": dataset_hash,
        "runs": list(found.values()),
        "datasets": sorted(seen_data),
        "edges": edges,
        "model_versions": versions,
        "truncated": truncated,
    }
