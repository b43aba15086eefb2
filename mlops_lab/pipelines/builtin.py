"""The built-in steps: register a model a notebook step logged, gate a version, promote it.

Each returns what it did (``{"version": 4}``, a gate's result), kept in the step's record; a gate
that does not pass fails its step, so nothing after it (a promotion) runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import gates
from ..registry import RegistryError
from .spec import PipelineError, Step

if TYPE_CHECKING:
    from .runner import PipelineRunner


def run_builtin(runner: "PipelineRunner", step: Step, run) -> dict:
    registry = runner.workspace.registry
    config = step.config
    model = config["model"]
    where = f"{runner.pipeline.label}, step {step.name!r}"
    tracker = runner.tracker
    if step.kind == "register":
        source_run, artifact = _logged_model(runner, config, where)
        version = registry.register(
            model,
            source_run,
            artifact,
            details={"description": f"pipeline {runner.pipeline.name}, step {config['from']}"},
        )
        tracker.set_tags({"mlops_lab.model_version": f"{model}/{version}"}, run=run)
        runner.progress(f"{step.name}: registered {model}/{version} from run {source_run[:8]} ({artifact})")
        return {"model": model, "version": version, "run_id": source_run}
    version = config.get("version") or _version_made_upstream(runner, step, where)
    if step.kind == "promote":
        current = registry.models.get_version(model, version)
        if current.stage != config["stage"]:
            registry.promote(model, version, config["stage"], comment=f"pipeline {runner.pipeline.name}, run {run.id}")
        return {"model": model, "version": version, "stage": config["stage"]}
    results = []
    if "holdout" in config:
        results.append(
            gates.evaluate(
                registry,
                model,
                version,
                str(runner.pipeline.path(config["holdout"])),
                target=config["target"],
                thresholds=config["thresholds"],
            )
        )
    if "data" in config:
        results.append(
            gates.validate_data(
                registry,
                model,
                version,
                str(runner.pipeline.path(config["data"])),
                str(runner.pipeline.path(config["reference"])),
            )
        )
    for result in results:
        candidate = result.metrics.get("candidate") or {}
        tracker.log_metrics({f"candidate_{k}": v for k, v in candidate.items() if isinstance(v, (int, float))}, run=run)
    failed = [r.summary() for r in results if not r.passed]
    if failed:
        raise RegistryError(f"{model}/{version}: {'; '.join(failed)}")
    return {"model": model, "version": version, "gates": [r.to_dict() for r in results]}


def _logged_model(runner: "PipelineRunner", config: dict, where: str) -> tuple[str, str]:
    """The run (the step's, or one of its notebook's tracked cells) and the name of the model to register."""
    source = runner.step_run(config["from"])
    if source is None:
        raise PipelineError(f"{where}: step {config['from']!r} has no finished run to register a model from")
    runs = run_tree(runner.runs, source)
    found = []
    for run_id in runs:
        record = runner.runs.get_run(run_id)
        for logged in record.models:
            if config.get("artifact") in (None, logged["name"]):
                found.append((record, logged["name"]))
    if not found:
        what = f"a model named {config['artifact']!r}" if config.get("artifact") else "no model"
        raise PipelineError(
            f"{where}: the runs of step {config['from']!r} logged {what}; log one (a fitted estimator in a %%track cell is logged)"
        )
    best = config.get("best")
    if best:
        metric, sign = (best[1:], -1) if best.startswith("-") else (best, 1)
        scored = [(r, n) for r, n in found if metric in r.metrics]
        if not scored:
            raise PipelineError(
                f"{where}: no run of step {config['from']!r} that logged a model has the metric {metric!r}"
            )
        record, name = max(scored, key=lambda pair: sign * pair[0].metrics[metric])
        return record.info.id, name
    if len({(r.info.id, n) for r, n in found}) > 1:
        listed = ", ".join(f"{n} in run {r.info.name}" for r, n in found[:6])
        raise PipelineError(
            f"{where}: step {config['from']!r} logged several models ({listed}); say which with artifact: or best: METRIC"
        )
    record, name = found[0]
    return record.info.id, name


def _version_made_upstream(runner: "PipelineRunner", step: Step, where: str) -> int:
    """The version the register step before this one made; else the newest version registered
    from a run of a step this one runs after."""
    model = step.config["model"]
    ancestors = runner.pipeline.ancestors(step.name)
    for name in ancestors:
        other = runner.pipeline.steps[name]
        if other.kind == "register" and other.config["model"] == model:
            record = runner.step_record(name)
            if record is not None and record.result.get("version"):
                return int(record.result["version"])
    runs = set()
    for name in ancestors:
        run_id = runner.step_run(name)
        if run_id:
            runs |= set(run_tree(runner.runs, run_id))
    try:
        versions = runner.workspace.store.models.list_versions(model)
    except KeyError:
        versions = []
    made = [v.version for v in versions if v.run_id in runs]
    if not made:
        raise PipelineError(
            f"{where}: no version of {model!r} was registered by the steps before it; add a register step "
            f"(register: {{model: {model}, from: STEP}}) or give version:"
        )
    return max(made)


def run_tree(runs, run_id: str) -> list[str]:
    """A run and every run below it (a step's run, its notebook's tracked cells, their trials)."""
    found, todo = [run_id], [run_id]
    while todo:
        rows = runs.search_runs(None, f"attributes.parent_run_id = '{todo.pop()}'", None, max_results=10_000)[0]
        todo.extend(row["id"] for row in rows)
        found.extend(row["id"] for row in rows)
    return found
