"""What a pipeline is: its steps, read from ``pipeline.yaml`` (or given in Python), checked, ordered.

    name: churn                     # optional: the folder's name
    steps:
      prepare:  {notebook: prepare.ipynb, params: {rows: 5000}, deps: [data/raw.csv], outs: [data/clean.parquet]}
      train:    {notebook: train.ipynb, params: {C: 1.0}, deps: [data/clean.parquet], outs: [model.onnx]}
      register: {register: {model: churn, from: train}}
      gate:     {gate: {model: churn, holdout: data/holdout.parquet, target: churned,
                        thresholds: {accuracy: {min: 0.8}}}}
      promote:  {promote: {model: churn, stage: Staging}}

The DAG comes from deps and outs (a step that reads what another writes runs after it), from
``after:``, and from the built-in steps' own links: ``register`` runs after its ``from`` step, a
``gate`` after the register step of its model, ``promote`` after that model's gates.  Every
problem is found before anything runs, and its message names the file and the step.
"""

from __future__ import annotations

import ast
import graphlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidInputError

KINDS = ("notebook", "gate", "register", "promote")
STEP_KEYS = {"notebook": {"params", "deps", "outs", "after", "timeout"}, "*": {"deps", "after"}}
BUILTIN_KEYS = {
    "gate": {"model", "version", "holdout", "target", "thresholds", "data", "reference"},
    "register": {"model", "from", "artifact", "best"},
    "promote": {"model", "version", "stage"},
}
THRESHOLD_KINDS = {"min", "max", "min_improvement", "min_relative_improvement", "max_regression"}
PROMOTION_STAGES = ("Staging", "Production")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}")
PARAMETERS_TAG = "parameters"


class PipelineError(InvalidInputError):
    """A pipeline that cannot run as written; the message names the file and the step."""


@dataclass(frozen=True)
class Step:
    name: str
    kind: str  # notebook | gate | register | promote
    notebook: str | None = None  # relative to the pipeline's folder
    params: dict = field(default_factory=dict)
    deps: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    config: dict = field(default_factory=dict)  # a built-in step's settings
    timeout: float | None = None  # seconds a notebook cell may take


@dataclass
class Pipeline:
    name: str
    root: Path  # the folder the steps' paths are relative to
    steps: dict[str, Step]
    file: Path | None = None
    experiment: str | None = None
    upstream: dict[str, set[str]] = field(default_factory=dict)  # step -> the steps it runs after

    @property
    def label(self) -> str:
        return str(self.file) if self.file else f"pipeline {self.name!r}"

    def order(self) -> list[str]:
        """The steps, each after everything it needs (file order where the DAG leaves a choice)."""
        position = {name: i for i, name in enumerate(self.steps)}
        sorter = graphlib.TopologicalSorter(self.upstream)
        sorter.prepare()
        order: list[str] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready(), key=position.__getitem__)
            order.extend(ready)
            sorter.done(*ready)
        return order

    def ancestors(self, name: str) -> set[str]:
        found, todo = set(), [name]
        while todo:
            for parent in self.upstream[todo.pop()]:
                if parent not in found:
                    found.add(parent)
                    todo.append(parent)
        return found

    def descendants(self, name: str) -> set[str]:
        return {other for other in self.steps if name in self.ancestors(other)}

    def edges(self) -> list[tuple[str, str]]:
        return [(parent, name) for name in self.order() for parent in sorted(self.upstream[name])]

    def path(self, relative: str) -> Path:
        return self.root / relative


def load_pipeline(file: str | Path = "pipeline.yaml") -> Pipeline:
    """The pipeline in ``file`` (a folder means its ``pipeline.yaml``), checked."""
    import yaml

    path = Path(file).expanduser()
    if path.is_dir():
        path = path / "pipeline.yaml"
    if not path.is_file():
        raise PipelineError(f"no pipeline file at {path}: write a pipeline.yaml (docs/pipelines.md shows one)")
    try:
        spec = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise PipelineError(f"{path} is not valid YAML: {error}") from None
    return build_pipeline(spec, root=path.parent, file=path)


def build_pipeline(spec, *, root: str | Path = ".", file: Path | None = None, name: str | None = None) -> Pipeline:
    """A checked pipeline from its description (what ``pipeline.yaml`` holds, as a dict)."""
    root = Path(root).expanduser().resolve()
    where = str(file) if file else "the pipeline"
    if not isinstance(spec, dict):
        raise PipelineError(f"{where} must be a mapping with a 'steps' mapping, got {type(spec).__name__}")
    unknown = set(spec) - {"name", "experiment", "steps"}
    if unknown:
        raise PipelineError(f"{where}: unknown keys {sorted(unknown)}; a pipeline has name, experiment and steps")
    steps = spec.get("steps")
    if not isinstance(steps, dict) or not steps:
        raise PipelineError(f"{where} needs a non-empty 'steps' mapping of step name to step")
    name = _name(name or spec.get("name") or root.name, f"{where}: the pipeline's name")
    experiment = spec.get("experiment")
    if experiment is not None and not isinstance(experiment, str):
        raise PipelineError(f"{where}: experiment must be a name, got {experiment!r}")
    pipeline = Pipeline(name, root, {}, file, experiment)
    for step_name, body in steps.items():
        step_name = _name(str(step_name), f"{where}: step name")
        pipeline.steps[step_name] = _step(pipeline, step_name, body)
    _link(pipeline)
    return pipeline


def _name(text, what: str) -> str:
    if not isinstance(text, str) or not NAME.fullmatch(text):
        raise PipelineError(f"{what} {text!r} must be letters, digits, '_', '.' or '-' (at most 100)")
    return text


def _paths(value, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise PipelineError(f"{what} must be a list of paths, got {value!r}")
    return tuple(dict.fromkeys(v.strip().rstrip("/") for v in value))


def _step(pipeline: Pipeline, name: str, body) -> Step:
    where = f"{pipeline.label}, step {name!r}"
    if not isinstance(body, dict):
        raise PipelineError(f"{where} must be a mapping, e.g. {{notebook: train.ipynb}}, got {body!r}")
    kinds = [kind for kind in KINDS if kind in body]
    if len(kinds) != 1:
        raise PipelineError(f"{where} must have exactly one of {', '.join(KINDS)}, got {sorted(body)}")
    kind = kinds[0]
    allowed = STEP_KEYS.get(kind, STEP_KEYS["*"])
    unknown = set(body) - allowed - {kind}
    if unknown:
        raise PipelineError(f"{where}: unknown keys {sorted(unknown)}; a {kind} step takes {sorted(allowed)}")
    after = _paths(body.get("after"), f"{where}: after")
    deps = list(_paths(body.get("deps"), f"{where}: deps"))
    outs = _paths(body.get("outs"), f"{where}: outs")
    for out in outs:
        target = pipeline.path(out).resolve()
        if not target.is_relative_to(pipeline.root) or target == pipeline.root:
            raise PipelineError(f"{where}: out {out!r} must lie inside the pipeline's folder {pipeline.root}")
        if out in deps:
            raise PipelineError(f"{where}: {out!r} is both a dep and an out of the step")
    timeout = body.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise PipelineError(f"{where}: timeout must be a positive number of seconds, got {timeout!r}")
    if kind == "notebook":
        notebook = body["notebook"]
        if not isinstance(notebook, str) or not notebook.endswith(".ipynb"):
            raise PipelineError(f"{where}: notebook must be the path of an .ipynb file, got {notebook!r}")
        params = body.get("params") or {}
        if not isinstance(params, dict):
            raise PipelineError(f"{where}: params must be a mapping of name to value, got {params!r}")
        check_params(pipeline.path(notebook), params, where)
        return Step(name, kind, notebook, params, tuple(deps), outs, after, timeout=timeout)
    config = body[kind]
    if not isinstance(config, dict):
        raise PipelineError(f"{where}: {kind} takes a mapping of settings, got {config!r}")
    config = _builtin(kind, config, where)
    deps.extend(config[key] for key in ("holdout", "data", "reference") if isinstance(config.get(key), str))
    return Step(name, kind, None, {}, tuple(dict.fromkeys(deps)), (), after, config)


def _builtin(kind: str, config: dict, where: str) -> dict:
    unknown = set(config) - BUILTIN_KEYS[kind]
    if unknown:
        raise PipelineError(
            f"{where}: unknown {kind} settings {sorted(unknown)}; it takes {sorted(BUILTIN_KEYS[kind])}"
        )
    _name(config.get("model"), f"{where}: {kind}'s model")
    version = config.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int) or version < 1):
        raise PipelineError(f"{where}: version must be a version number, got {version!r}")
    if kind == "register":
        if not isinstance(config.get("from"), str):
            raise PipelineError(f"{where}: register needs from: the notebook step whose run logged the model")
        best = config.get("best")
        if best is not None and not (isinstance(best, str) and re.fullmatch(r"-?[\w.\-/ ]+", best)):
            raise PipelineError(f"{where}: best must be a metric name (prefix '-' when lower is better), got {best!r}")
    elif kind == "promote":
        if config.get("stage") not in PROMOTION_STAGES:
            raise PipelineError(
                f"{where}: promote's stage must be one of {PROMOTION_STAGES}, got {config.get('stage')!r}"
            )
    elif kind == "gate":
        evaluation = [key for key in ("holdout", "target", "thresholds") if key in config]
        validation = [key for key in ("data", "reference") if key in config]
        if len(evaluation) not in (0, 3) or len(validation) not in (0, 2) or not (evaluation or validation):
            raise PipelineError(
                f"{where}: a gate evaluates (holdout, target and thresholds) and/or validates data "
                f"(data and reference); got {sorted(config)}"
            )
        thresholds = config.get("thresholds", {})
        if not isinstance(thresholds, dict) or (evaluation and not thresholds):
            raise PipelineError(f"{where}: thresholds must map a metric to {{kind: value}}, got {thresholds!r}")
        for metric, rule in thresholds.items():
            if not isinstance(rule, dict) or not rule:
                raise PipelineError(f"{where}: threshold {metric!r} must be a mapping like {{min: 0.8}}, got {rule!r}")
            for threshold_kind, value in rule.items():
                if threshold_kind not in THRESHOLD_KINDS:
                    raise PipelineError(
                        f"{where}: threshold {metric}.{threshold_kind} is not one of {sorted(THRESHOLD_KINDS)}"
                    )
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise PipelineError(f"{where}: threshold {metric}.{threshold_kind} must be a number, got {value!r}")
        for key in ("holdout", "data", "reference", "target"):
            if key in config and not isinstance(config[key], str):
                raise PipelineError(f"{where}: {key} must be a path (target: a column name), got {config[key]!r}")
    return config


# ---- notebooks' parameters (papermill's convention) ----------------------------------------


def read_notebook(path: Path, where: str) -> dict:
    """A notebook's JSON with each cell's source as one string.  Plain ``json``: nbformat's import
    alone (its schema validators) takes a second, which a no-op run cannot afford; the step's
    execution reads it with nbformat."""
    if not path.is_file():
        raise PipelineError(f"{where}: notebook {path} does not exist")
    try:
        notebook = json.loads(path.read_bytes())
        cells = notebook["cells"]
        if notebook.get("nbformat", 0) < 4 or not isinstance(cells, list):
            raise ValueError("not an nbformat 4 notebook")
        for cell in cells:
            source = cell.get("source", "")
            cell["source"] = "".join(source) if isinstance(source, list) else str(source)
            cell["cell_type"] = str(cell["cell_type"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise PipelineError(f"{where}: {path} is not a notebook Jupyter can read: {error}") from None
    return notebook


def parameters_cell(notebook) -> int | None:
    """The index of the cell tagged ``parameters``, as papermill finds it."""
    for index, cell in enumerate(notebook["cells"]):
        if PARAMETERS_TAG in cell.get("metadata", {}).get("tags", []):
            return index
    return None


def parameter_defaults(source: str) -> dict:
    """``name = literal`` assignments of a parameters cell (anything else is left out)."""
    defaults = {}
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return defaults
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        value = getattr(node, "value", None)
        for target in targets:
            if isinstance(target, ast.Name) and value is not None:
                try:
                    defaults[target.id] = ast.literal_eval(value)
                except ValueError:
                    defaults[target.id] = ...  # set by an expression: any value goes
    return defaults


def _type_name(value) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return {str: "a string", list: "a list", tuple: "a list", dict: "a mapping", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def check_params(path: Path, params: dict, where: str) -> None:
    """Params go into a notebook with a ``parameters`` cell that sets each one, as the same kind of value."""
    notebook = read_notebook(path, where)
    for key, value in params.items():
        if not isinstance(key, str) or not key.isidentifier():
            raise PipelineError(f"{where}: param {key!r} must be a Python name")
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError):
            raise PipelineError(
                f"{where}: param {key} = {value!r} must be a number, string, boolean, list or mapping"
            ) from None
    if not params:
        return
    index = parameters_cell(notebook)
    if index is None:
        raise PipelineError(
            f"{where}: {path.name} has no cell tagged 'parameters' to take params {sorted(params)}; tag the cell "
            "that sets their defaults (cell toolbar → Property Inspector → Cell Tags: parameters)"
        )
    defaults = parameter_defaults(notebook["cells"][index]["source"])
    for key, value in params.items():
        if key not in defaults:
            raise PipelineError(
                f"{where}: param {key!r} is not set in {path.name}'s parameters cell (it sets {sorted(defaults) or 'nothing'})"
            )
        default = defaults[key]
        if default is ... or default is None:
            continue
        if _type_name(default) != _type_name(value):
            raise PipelineError(
                f"{where}: param {key} = {value!r} is {_type_name(value)}, but {path.name}'s parameters cell sets "
                f"{key} = {default!r}, {_type_name(default)}"
            )


# ---- the DAG ----------------------------------------------------------------------------------


def _link(pipeline: Pipeline) -> None:
    where = pipeline.label
    writer: dict[str, str] = {}
    for step in pipeline.steps.values():
        for out in step.outs:
            for other_out, other in writer.items():
                if out == other_out or Path(out).is_relative_to(other_out) or Path(other_out).is_relative_to(out):
                    raise PipelineError(
                        f"{where}: steps {other!r} and {step.name!r} both write {out if out == other_out else (out, other_out)}"
                        "; each out has one step that makes it"
                    )
            writer[out] = step.name
    upstream: dict[str, set[str]] = {}
    for step in pipeline.steps.values():
        parents = set()
        for after in step.after:
            if after not in pipeline.steps:
                raise PipelineError(f"{where}, step {step.name!r}: after names no step {after!r}")
            parents.add(after)
        for dep in step.deps:
            maker = next((w for out, w in writer.items() if dep == out or Path(dep).is_relative_to(out)), None)
            if maker is not None:
                parents.add(maker)
            elif not pipeline.path(dep).exists():
                raise PipelineError(
                    f"{where}, step {step.name!r}: dep {dep!r} does not exist ({pipeline.path(dep)}) and no step writes it"
                )
        model = step.config.get("model")
        if step.kind == "register":
            source = pipeline.steps.get(step.config["from"])
            if source is None or source.kind != "notebook":
                raise PipelineError(
                    f"{where}, step {step.name!r}: from must name a notebook step, got {step.config['from']!r}"
                )
            parents.add(source.name)
        elif step.kind in ("gate", "promote") and "version" not in step.config:
            kinds = ("register",) if step.kind == "gate" else ("register", "gate")
            parents.update(
                o.name for o in pipeline.steps.values() if o.kind in kinds and o.config.get("model") == model
            )
        parents.discard(step.name)
        upstream[step.name] = parents
    pipeline.upstream = upstream
    try:
        graphlib.TopologicalSorter(upstream).prepare()
    except graphlib.CycleError as error:
        cycle = error.args[1]
        raise PipelineError(
            f"{where}: steps {' → '.join(reversed(cycle))} form a cycle; a step cannot need itself"
        ) from None
