"""Tracking a notebook cell as a run, with no edit to the cell.

The cell is instrumented before it runs: each notebook-level statement that binds names reports
them to a recorder, and each cell-level ``for``/``while`` loop reports its iterations.  So a run
records only what this execution bound (a cell that fails half-way records what it reached), and
loops become curves or sweeps:

- names bound to literals are params (``lr = 0.01``); configs — dicts, dataclasses, namespaces,
  pydantic models, named tuples — are flattened (``config.lr``);
- names bound to computed numbers are metrics; inside a cell-level loop, one point per iteration
  (step = iteration index); the loop variable is the step, never a metric or param;
- a loop that fits a new model each iteration is a sweep: one child run per iteration, with the
  loop variable as its param, its metrics and its model;
- a literal container the cell then mutates (``history = []`` … ``history.append(loss)``) is an
  accumulator, not a param; a numeric one becomes a metric series;
- fitted models bound are logged (``get_params(deep=True)`` scalars become ``name.param`` params);
- frames read from the namespace and files opened are input dataset versions;
- stdout, duration and the outcome are recorded: FAILED with the error, KILLED when interrupted.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import numbers
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidInputError
from . import capture, figures, seeds
from .client import ActiveRun, Tracker
from .live import LiveOutput

MAX_COLLECTION_ITEMS = 50
MAX_CONFIG_PARAMS = 200
MAX_MODEL_PARAMS = 500
MAX_STDOUT_CHARS = 1_000_000
TICK_SECONDS = 1.0  # how often a running loop's live output is redrawn
PUSH_SECONDS = 10.0  # how often its finished points are sent to the store (writing competes with the loop)
FOLDER_FILES = 20  # files read under one folder from which they are one folder-level version
READ_SUFFIXES = set(capture.DATA_SUFFIXES) | {".txt", ".npy", ".npz", ".xlsx", ".xls", ".h5", ".hdf5", ".pkl", ".avro"}
HOOK_PREFIX = "__mlops_lab_"  # the recorder's methods are __mlops_lab_point__ & co. while the cell runs
HOOKS = ("assigned", "point", "iteration", "loop_end")
MUTATORS = {"append", "extend", "insert", "update", "add", "setdefault", "appendleft", "extendleft"}


# ---- reading the cell ------------------------------------------------------------------------


@dataclass
class CellPlan:
    literal: set[str] = field(default_factory=set)  # bound to a literal somewhere
    computed: set[str] = field(default_factory=set)  # bound to anything else somewhere
    loaded: set[str] = field(default_factory=set)  # read before the cell binds them: its inputs
    accumulators: set[str] = field(default_factory=set)  # mutated in place by the cell
    loops: int = 0  # cell-level loops, numbered in order

    def is_param(self, name: str) -> bool:
        return name in self.literal and name not in self.computed and name not in self.accumulators


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


def _target_names(target: ast.AST) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        return [name for element in target.elts for name in _target_names(element)]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    return []


def _report(method: str, loop: int, names: list[str], node: ast.AST) -> ast.stmt:
    """``__mlops_lab_method__(loop, ("a", "b"), (a, b))`` at ``node``'s line."""
    arguments = [
        ast.Tuple([ast.Constant(n) for n in names], ast.Load()),
        ast.Tuple([ast.Name(n, ast.Load()) for n in names], ast.Load()),
    ]
    return ast.copy_location(_call(method, loop, *arguments), node)


def _points(loop: int, names: list[str], node: ast.AST) -> list[ast.stmt]:
    """``__mlops_lab_point__(loop, "a", a)`` per name: a loop's hot path, one call a value."""
    return [ast.copy_location(_call("point", loop, ast.Constant(n), ast.Name(n, ast.Load())), node) for n in names]


class _Instrumenter:
    """Reads what the cell binds and adds the reports (functions and classes are left alone: their
    bodies run when called, not as part of the cell)."""

    def __init__(self):
        self.plan = CellPlan()
        self.statement = 0
        self.first_load: dict[str, int] = {}
        self.first_store: dict[str, int] = {}

    def cell(self, tree: ast.Module) -> ast.Module:
        body = []
        for index, statement in enumerate(tree.body):
            self.statement = index
            body.extend(self._statement(statement, loop=-1))
        tree.body = body
        plan = self.plan
        # An input is read no later than the statement that first binds it (x = f(x) reads x first).
        plan.loaded = {n for n, i in self.first_load.items() if i <= self.first_store.get(n, i)}
        return ast.fix_missing_locations(tree)

    def _block(self, statements: list[ast.stmt], loop: int) -> list[ast.stmt]:
        return [out for statement in statements for out in self._statement(statement, loop)]

    def _bind(self, names: list[str], literal: bool) -> list[str]:
        names = [n for n in names if not n.startswith("_")]
        for name in names:
            self.first_store.setdefault(name, self.statement)
            (self.plan.literal if literal else self.plan.computed).add(name)
        return names

    def _reads(self, *nodes: ast.AST | None) -> None:
        for node in nodes:
            if node is None:
                continue
            for sub in _walk_cell_level(node):
                if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                    self.first_load.setdefault(sub.id, self.statement)
                elif _mutated(sub):  # history.append(loss), totals[key] = value
                    self.plan.accumulators.add(_mutated(sub))

    def _statement(self, node: ast.stmt, loop: int) -> list[ast.stmt]:
        names: list[str] = []
        if isinstance(node, ast.Assign):
            self._reads(node.value, *node.targets)
            for target in node.targets:
                if isinstance(target, (ast.Tuple, ast.List)) and isinstance(node.value, (ast.Tuple, ast.List)):
                    for element, value in zip(target.elts, node.value.elts):
                        names += self._bind(_target_names(element), _is_literal(value))
                else:
                    names += self._bind(_target_names(target), _is_literal(node.value))
        elif isinstance(node, ast.AnnAssign):
            self._reads(node.value, node.target)
            if node.value is not None:
                names = self._bind(_target_names(node.target), _is_literal(node.value))
        elif isinstance(node, ast.AugAssign):
            self._reads(node.value, node.target)
            names = self._bind(_target_names(node.target), False)
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            return self._loop(node, loop)
        elif isinstance(node, (ast.If, ast.With, ast.AsyncWith, ast.Try, getattr(ast, "TryStar", ast.Try))):
            self._reads(*[getattr(node, "test", None)], *[item.context_expr for item in getattr(node, "items", [])])
            for attribute in ("body", "orelse", "finalbody"):
                if hasattr(node, attribute):
                    setattr(node, attribute, self._block(getattr(node, attribute), loop) or [ast.Pass()])
            for handler in getattr(node, "handlers", []):
                handler.body = self._block(handler.body, loop) or [ast.Pass()]
            return [node]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            self._reads(*node.decorator_list, *node.args.defaults, *node.args.kw_defaults)  # these run now
            return [node]
        elif isinstance(node, ast.ClassDef):
            self._reads(*node.decorator_list, *node.bases)
            return [node]
        else:
            self._reads(node)
        names += [n.target.id for n in _walk_cell_level(node) if isinstance(n, ast.NamedExpr)]
        if not names:
            return [node]
        names = list(dict.fromkeys(names))
        if loop >= 0:
            return [node, *_points(loop, names, node)]
        return [node, _report("assigned", loop, names, node)]

    def _loop(self, node, loop: int) -> list[ast.stmt]:
        """A cell-level loop gets a number; loops inside it are part of its iterations."""
        if loop >= 0:
            inner = loop
        else:
            inner = self.plan.loops
            self.plan.loops += 1
        targets: list[str] = []
        if isinstance(node, ast.While):
            self._reads(node.test)
        else:
            self._reads(node.iter)
            targets = [n for n in _target_names(node.target) if not n.startswith("_")]
            for name in targets:
                self.first_store.setdefault(name, self.statement)
        body = self._block(node.body, inner)
        if loop < 0:  # each iteration of a cell-level loop starts by saying so
            body.insert(0, _report("iteration", inner, targets, node))
        node.body = body
        node.orelse = self._block(node.orelse, loop)
        if loop >= 0:
            return [node]
        return [node, ast.copy_location(_call("loop_end", inner), node)]


def _call(method: str, loop: int, *arguments: ast.expr) -> ast.stmt:
    """``__mlops_lab_point__(loop, …)``: a bound method under its own name (no attribute lookup in
    a loop's hot path)."""
    function = ast.Name(f"{HOOK_PREFIX}{method}__", ast.Load())
    return ast.Expr(ast.Call(function, [ast.Constant(loop), *arguments], []))


def _mutated(node: ast.AST) -> str | None:
    """The name a node changes in place, if it does."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATORS:
        return node.func.value.id if isinstance(node.func.value, ast.Name) else None
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store) and isinstance(node.value, ast.Name):
        return node.value.id
    return None


def _walk_cell_level(node: ast.AST):
    """``ast.walk`` that does not enter functions, lambdas, classes or nested statements' bodies."""
    todo = [node]
    while todo:
        current = todo.pop()
        yield current
        for child in ast.iter_child_nodes(current):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.stmt)):
                continue
            todo.append(child)


def instrument(source_tree: ast.Module) -> tuple[ast.Module, CellPlan]:
    instrumenter = _Instrumenter()
    tree = instrumenter.cell(source_tree)
    return tree, instrumenter.plan


# ---- values ----------------------------------------------------------------------------------


def param_value(value) -> str | None:
    """A value worth recording as a hyperparameter, as text; None when it is not one."""
    if value is None or isinstance(value, (bool, int, float, str)):
        text = str(value)
    elif (
        isinstance(value, (list, tuple, set, frozenset))
        and len(value) <= MAX_COLLECTION_ITEMS
        and all(v is None or isinstance(v, (bool, int, float, str)) for v in value)
    ):
        text = repr(value)
    else:
        return None
    return text if len(text) <= 1000 else None


def metric_value(value) -> float | None:
    kind = type(value)
    if kind is float or kind is int:
        return float(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        shape = getattr(value, "shape", None)
        if shape != () or not hasattr(value, "item"):  # a numpy/torch scalar
            return None
        value = value.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return None
    return float(value)


def config_items(value) -> dict | None:
    """The fields of a config: a dict with text keys, a dataclass, a namespace, a pydantic model
    or a named tuple."""
    if isinstance(value, dict):
        return value if all(isinstance(k, str) for k in value) else None
    return config_object_items(value)


def config_object_items(value) -> dict | None:
    """The fields of a config object (not a dict: a computed dict is data, a literal one a config)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if type(value).__name__ in ("Namespace", "SimpleNamespace") and hasattr(value, "__dict__"):
        return dict(vars(value))
    if hasattr(value, "model_dump") and hasattr(type(value), "model_fields"):  # pydantic
        try:
            return value.model_dump()
        except Exception:
            return None
    if isinstance(value, tuple) and hasattr(value, "_asdict"):
        return value._asdict()
    return None


def flat_params(name: str, value) -> dict[str, str]:
    """``{name: text}`` for a plain value; ``{name.key: text, …}`` for a config, nested keys joined by dots."""
    out: dict[str, str] = {}

    def walk(prefix: str, item, depth: int) -> None:
        if len(out) >= MAX_CONFIG_PARAMS:
            return
        fields = config_items(item) if depth < 4 else None
        if fields is not None:
            for key, sub in fields.items():
                walk(f"{prefix}.{key}", sub, depth + 1)
        elif (text := param_value(item)) is not None:
            out[prefix] = text

    walk(name, value, 0)
    return out


def model_params(name: str, model) -> dict[str, str]:
    """A model's hyperparameters as MLflow autolog logs them: ``get_params(deep=True)``, scalars only."""
    if capture.is_torch_module(model):
        return {f"{name}.parameters": str(sum(p.numel() for p in model.parameters()))}
    get_params = getattr(model, "get_params", None)
    if get_params is None:
        return {}
    try:
        hyper = get_params(deep=True)
    except Exception:
        return {}
    out = {}
    for key, value in hyper.items():
        if value is None or isinstance(value, (bool, int, float, str)):
            out[f"{name}.{key}"] = str(value)[:1000]
            if len(out) >= MAX_MODEL_PARAMS:
                break
    return out


# ---- what the cell does, as it runs ----------------------------------------------------------


@dataclass
class _Loop:
    step: int = -1
    series: dict[str, tuple[list[int], list[float]]] = field(default_factory=dict)
    targets: tuple | None = None  # the loop variable(s) this iteration: (names, values)
    others: dict[str, object] = field(default_factory=dict)  # non-numeric values bound this iteration
    before: dict[str, object] | None = None  # values of its names before the loop
    last_others: dict[str, object] = field(default_factory=dict)  # the others of the latest iteration
    children: int = 0
    started: float = 0.0  # when the iteration began (time.time())
    offsets: dict[str, int] = field(default_factory=dict)  # a second loop's curve goes on from the first's
    pushed: dict[str, int] = field(default_factory=dict)  # points already sent to the store, per name


class CellRecorder:
    """Called by the instrumented cell: keeps what it bound, one point per loop iteration, and
    starts a child run for each iteration of a sweep."""

    def __init__(
        self,
        tracker: Tracker,
        run: ActiveRun,
        plan: CellPlan,
        namespace: dict,
        experiment: str | None,
        live: LiveOutput | None = None,
    ):
        self.tracker, self.run, self.plan, self.namespace = tracker, run, plan, namespace
        self.experiment, self.live = experiment, live
        self.bound: dict[str, object] = {}  # notebook-level names this execution bound: last value
        self.loops = [_Loop() for _ in range(plan.loops)]
        self.constants = {name for name in plan.literal if plan.is_param(name)}  # params even inside a loop
        self.next_step: dict[str, int] = {}  # per curve, the step a later loop starts at
        self.arrays: set[str] = set()  # names a loop binds to arrays with dimensions
        self.started = time.monotonic()
        self._next_tick = self.started + TICK_SECONDS
        self._next_push = self._next_tick  # a first look soon, then every PUSH_SECONDS

    def curves(self) -> dict[str, tuple[list[int], list[float]]]:
        """The loops' curves so far (not a sweep's: those are its child runs), in global steps."""
        out: dict[str, tuple[list[int], list[float]]] = {}
        for record in self.loops:
            if record.children:
                continue
            for name, (steps, values) in record.series.items():
                offset = record.offsets.get(name, 0)
                steps_out, values_out = out.setdefault(name, ([], []))
                steps_out.extend(s + offset for s in steps)
                values_out.extend(values)
        return out

    def tick(self) -> None:
        """At most once a second during a loop: redraw the live output; every PUSH_SECONDS, send the
        finished iterations' points to the store (the Runs panel shows the run's latest values)."""
        now = time.monotonic()
        self._next_tick = now + TICK_SECONDS
        if now >= self._next_push:
            self._next_push = now + PUSH_SECONDS
            self.push()
        if self.live is not None:
            self.live.update("RUNNING", now - self.started, self.curves())

    def push(self) -> None:
        for record in self.loops:
            if record.children or record.step < 1:
                continue  # a sweep's points belong to its trials; an unfinished first iteration may be one
            for name, (steps, values) in record.series.items():
                done = len(steps) - (1 if steps and steps[-1] == record.step else 0)  # the current one may change
                start = record.pushed.get(name, 0)
                if done > start:
                    offset = record.offsets.get(name, 0)
                    self.tracker.log_metric_series(
                        name, [s + offset for s in steps[start:done]], values[start:done], run=self.run
                    )
                    record.pushed[name] = done

    def assigned(self, loop: int, names: tuple, values: tuple) -> None:
        """Names bound at notebook level (outside loops): the last value of each is kept."""
        for name, value in zip(names, values):
            self.bound[name] = value

    def point(self, loop: int, name: str, value) -> None:
        """A name bound inside a loop: a number is this iteration's point of its curve (the last
        one, if bound twice); anything else is kept for the end of the iteration."""
        kind = type(value)
        if kind is not float and (kind is not int or name in self.constants):
            if name in self.arrays:
                return
            number = None if name in self.constants else metric_value(value)
            if number is None:
                if name in self.constants or _kept(kind):
                    self.loops[loop].others[name] = value
                elif getattr(value, "ndim", 0):  # a weight matrix, a batch: never a point, so not looked at again
                    self.arrays.add(name)
                return
            value = number
        record = self.loops[loop]
        points = record.series.get(name)
        if points is None:
            points = record.series[name] = ([], [])
            record.offsets[name] = self.next_step.get(name, 0)
        steps, values = points
        if steps and steps[-1] == record.step:
            values[-1] = float(value)
        else:
            steps.append(record.step)
            values.append(float(value))

    def iteration(self, loop: int, names: tuple, values: tuple) -> None:
        record = self.loops[loop]
        if record.step < 0:
            record.before = dict(self.namespace)  # references only: what a sweep's models must differ from
        elif record.others:
            self._end_iteration(loop, "FINISHED")
            record.others = {}
        record.step += 1
        record.targets = (names, values)  # made a dict only for a sweep's trial
        record.started = time.time()
        if time.monotonic() >= self._next_tick:
            self.tick()

    def loop_end(self, loop: int, status: str = "FINISHED") -> None:
        record = self.loops[loop]
        if record.step >= 0 and record.targets is not None:
            if record.others:
                self._end_iteration(loop, status)
            record.targets = None
            for name in [*record.series, *record.last_others]:  # the loop's values supersede earlier ones
                self.bound.pop(name, None)
            for name, (steps, _) in record.series.items():
                if steps:
                    self.next_step[name] = record.offsets[name] + steps[-1] + 1

    def finish(self, status: str) -> None:
        """The cell ended, perhaps inside a loop: close what is open."""
        for loop in range(len(self.loops)):
            self.loop_end(loop, status)

    def _end_iteration(self, loop: int, status: str) -> None:
        """An iteration that bound a new fitted model is one trial of a sweep: a child run."""
        record = self.loops[loop]
        models = {
            name: value
            for name, value in record.others.items()
            if capture.is_loggable_model(value) and value is not record.last_others.get(name)
        }
        if record.before is not None:
            models = {name: value for name, value in models.items() if value is not record.before.get(name)}
            record.before = None
        record.last_others.update(record.others)
        if not models:
            return
        step = record.step
        targets = dict(zip(*record.targets))
        params: dict[str, str] = {}
        for name, value in targets.items():
            params.update(flat_params(name, value))
        for name, value in record.others.items():
            if name in self.constants or config_object_items(value) is not None:
                params.update(flat_params(name, value))
        for name, model in models.items():
            params.update(model_params(name, model))
        metrics = {name: values[-1] for name, (steps, values) in record.series.items() if steps and steps[-1] == step}
        label = ",".join(f"{k}={v}" for k, v in params.items() if k in targets)[:80] or f"{step}"
        child = self.tracker.start_run(
            _safe_name(f"{self.run.name}-{label}"),
            experiment=self.experiment,
            parent_run_id=self.run.id,
            nested=True,
            start_time=int(record.started * 1000),
            capture_git=False,
        )
        try:
            self.tracker.log_params(params, run=child)
            if metrics:
                self.tracker.log_metrics(metrics, step=0, run=child)
            for name, model in models.items():
                self.tracker.log_model(model, name, run=child)
        finally:
            self.tracker.end_run(status, run=child)
        record.children += 1

    def outcome(self) -> tuple[dict[str, str], dict[str, float], dict[str, object], dict[str, tuple[list, list]]]:
        """What the run keeps: params, final metrics, models and the points of its curves not sent yet."""
        params: dict[str, str] = {}
        metrics: dict[str, float] = {}
        models: dict[str, object] = {}
        series: dict[str, tuple[list, list]] = {}
        candidates = dict(self.bound)
        for record in self.loops:
            if record.children:
                continue  # a sweep: its iterations are the child runs
            for name, (steps, values) in record.series.items():
                start, offset = record.pushed.get(name, 0), record.offsets.get(name, 0)
                steps_out, values_out = series.setdefault(name, ([], []))
                steps_out.extend(s + offset for s in steps[start:])
                values_out.extend(values[start:])
            for name, value in record.last_others.items():  # a training loop's model, and such
                candidates.setdefault(name, value)
        for name, value in candidates.items():
            if name in self.plan.accumulators:
                numbers_ = _numeric_list(value)
                if numbers_ is not None:
                    series[name] = (list(range(len(numbers_))), numbers_)
                continue
            if self.plan.is_param(name) or config_object_items(value) is not None:
                params.update(flat_params(name, value))
            elif (number := metric_value(value)) is not None:
                metrics[name] = number
            elif isinstance(value, dict) and (scores := _numeric_dict(name, value)):
                metrics.update(scores)  # scores = {"accuracy": …, "f1": …}: scores.accuracy, scores.f1
            elif capture.is_loggable_model(value):
                models[name] = value
                params.update(model_params(name, value))
        return params, metrics, models, series


@functools.cache
def _kept(kind: type) -> bool:
    """Whether a loop keeps a non-numeric value of this type for the iteration's end: a model (a
    sweep's trial) or a config (its params); arrays, frames and the like are not kept."""
    module = kind.__module__.partition(".")[0]
    return (
        module in ("sklearn", "xgboost", "lightgbm", "onnx", "torch")
        or hasattr(kind, "__dataclass_fields__")
        or kind.__name__ in ("Namespace", "SimpleNamespace")
        or hasattr(kind, "model_fields")
        or (issubclass(kind, tuple) and hasattr(kind, "_asdict"))
    )


def _numeric_list(value) -> list[float] | None:
    if not isinstance(value, (list, tuple)) or not value:
        return None
    numbers_ = [metric_value(v) for v in value]
    return None if any(n is None for n in numbers_) else numbers_


def _numeric_dict(name: str, value: dict) -> dict[str, float] | None:
    if not 0 < len(value) <= MAX_COLLECTION_ITEMS or not all(isinstance(k, str) for k in value):
        return None
    numbers_ = {f"{name}.{key}": metric_value(v) for key, v in value.items()}
    return None if any(n is None for n in numbers_.values()) else numbers_


def _safe_name(text: str) -> str:
    return "".join("_" if c in "/\\" or ord(c) < 32 else c for c in text).strip() or "trial"


# ---- reads of files during a cell ------------------------------------------------------------


class _ReadRecorder:
    """Collects paths of files opened for reading while a tracked cell runs.

    Python's audit hook sees every ``open`` (pandas, numpy, builtins); polars and pyarrow read in
    native code, so their readers are wrapped for the duration of the cell.  During the cell a path
    is only remembered (a set insert: a data loader opening 100,000 files pays nothing noticeable);
    it is made absolute and filtered when the cell ends.
    """

    def __init__(self):
        self.active: set | None = None
        self.owner: int | None = None
        self.cwd = ""
        self._ignored = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
        sys.addaudithook(self._audit)

    def _audit(self, event: str, args) -> None:
        if event != "open" or self.active is None or threading.get_ident() != self.owner:
            return
        path, mode = args[0], args[1]
        if mode is not None and ("w" in mode or "a" in mode or "x" in mode or "+" in mode):
            return
        self.active.add(path)

    def note(self, path) -> None:
        if self.active is not None:
            self.active.add(path)

    def start(self) -> None:
        self.active, self.owner, self.cwd = set(), threading.get_ident(), os.getcwd()

    def stop(self) -> list[str]:
        """The data files read, as absolute paths (those of Python itself left out)."""
        seen, self.active, self.owner = self.active or set(), None, None
        paths = set()
        for item in seen:
            if isinstance(item, bytes):
                item = os.fsdecode(item)
            elif isinstance(item, os.PathLike):
                item = os.fspath(item)
            if not isinstance(item, str) or os.path.splitext(item)[1].lower() not in READ_SUFFIXES:
                continue  # a descriptor, or not a data file
            path = os.path.normpath(os.path.join(self.cwd, os.path.expanduser(item)))
            if not path.startswith(self._ignored):
                paths.add(path)
        return sorted(paths)


_NATIVE_READERS = {
    "polars": [
        "read_csv",
        "read_parquet",
        "read_ipc",
        "read_json",
        "read_ndjson",
        "scan_csv",
        "scan_parquet",
        "scan_ipc",
        "scan_ndjson",
    ],
    "pandas": ["read_parquet", "read_feather", "read_orc"],
}


class _wrapped_readers:
    """Wrap the native readers of already imported libraries so their first argument is noted."""

    def __init__(self, recorder: _ReadRecorder):
        self.recorder = recorder
        self.saved: list[tuple[object, str, object]] = []

    def __enter__(self):
        for module_name, names in _NATIVE_READERS.items():
            module = sys.modules.get(module_name)
            if module is None:
                continue
            for name in names:
                original = getattr(module, name, None)
                if original is None:
                    continue
                self.saved.append((module, name, original))
                setattr(module, name, self._wrap(original))
        return self

    def _wrap(self, original):
        recorder = self.recorder

        def reader(source, *args, **kwargs):
            if isinstance(source, (str, Path)):
                recorder.note(source)
            return original(source, *args, **kwargs)

        reader.__wrapped__ = original
        reader.__doc__ = original.__doc__
        return reader

    def __exit__(self, *exc):
        for module, name, original in reversed(self.saved):
            setattr(module, name, original)


class _Tee:
    def __init__(self, stream):
        self.stream = stream
        self.parts: list[str] = []
        self.size = 0

    def write(self, text):
        if self.size < MAX_STDOUT_CHARS:
            self.parts.append(text)
            self.size += len(text)
        return self.stream.write(text)

    def __getattr__(self, name):
        return getattr(self.stream, name)


# ---- the cell runner -------------------------------------------------------------------------

_recorder: _ReadRecorder | None = None


def run_tracked_cell(
    tracker: Tracker,
    shell,
    source: str,
    *,
    experiment: str | None = None,
    name: str | None = None,
    tags: dict | None = None,
    quiet: bool = False,
):
    """Run ``source`` in ``shell``'s namespace as a run; return the value of its last expression.
    In a kernel (unless ``quiet``) a small output under the cell follows the run as it goes."""
    __tracebackhide__ = True  # IPython shows the user's frames, not these
    global _recorder
    if _recorder is None:
        _recorder = _ReadRecorder()
    transformed = shell.transform_cell(source)
    tree = ast.parse(transformed)  # a SyntaxError is the user's to see, before any run exists
    if any(isinstance(n, ast.Name) and n.id.startswith(HOOK_PREFIX) for n in ast.walk(tree)):
        raise InvalidInputError(f"names starting {HOOK_PREFIX} are the ones %%track uses while a cell runs: rename it")
    last = tree.body[-1] if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    tree, plan = instrument(tree)
    last_expr = None
    if last is not None and tree.body[-1] is last:  # the cell's value, shown as IPython shows it
        last_expr = ast.Expression(tree.body.pop().value)
    namespace = shell.user_ns
    frames_read = {n: namespace[n] for n in plan.loaded if n in namespace and capture.is_frame(namespace[n])}

    from .environment import notebook_path

    run = tracker.start_run(
        name, experiment=experiment, tags=tags, source=source, notebook_path=notebook_path(namespace), nested=True
    )
    for var, frame in frames_read.items():
        tracker.log_frame_read(frame, var, run=run)

    in_kernel = type(shell).__name__ == "ZMQInteractiveShell"
    live = LiveOutput(run.name, run.id) if in_kernel and not quiet else None
    cell = CellRecorder(tracker, run, plan, namespace, experiment, live)
    draws = seeds.global_draws(tree, seeds.module_aliases(namespace, tree))
    filename = shell.compile.cache(transformed, number=_cell_number(shell), raw_code=source)
    tee = _Tee(sys.stdout)
    status, error, result, seeds_seen = "FINISHED", None, None, {}
    _recorder.start()
    sys.stdout = tee
    namespace.update({f"{HOOK_PREFIX}{hook}__": getattr(cell, hook) for hook in HOOKS})
    shown = figures.CellFigures(shell)
    try:
        with _wrapped_readers(_recorder), seeds.watching(namespace) as seeds_seen, shown:
            exec(compile(tree, filename, "exec"), namespace)
            if last_expr is not None:
                result = eval(compile(last_expr, filename, "eval"), namespace)
                shown.add_value(result)
    except KeyboardInterrupt as exc:
        status, error = "KILLED", "KeyboardInterrupt: the cell was interrupted"
        raise exc
    except BaseException as exc:
        status, error = "FAILED", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        for hook in HOOKS:
            namespace.pop(f"{HOOK_PREFIX}{hook}__", None)
        if sys.stdout is tee:
            sys.stdout = tee.stream
        files_read = _recorder.stop()
        try:
            cell.finish(status)
            curves = cell.curves()
            summary = _record_outcome(
                tracker, run, cell, files_read, "".join(tee.parts), seeds_seen, draws, tree, frames=len(frames_read)
            )
            for number, (data, suffix) in enumerate(shown.figures, 1):
                tracker.log_bytes(data, f"figures/figure-{number}{suffix}", run=run, kind="figure")
            if live is not None:
                children = sum(record.children for record in cell.loops)
                extra = [f"{children} trial runs"] if children else []
                extra += [f"{len(shown.figures)} figures"] if shown.figures else []
                said = ", ".join(part for part in [summary, *extra] if part)
                live.update(status, time.monotonic() - cell.started, curves, said)
        finally:
            tracker.end_run(status, run=run, error=error)
    return result


def _cell_number(shell) -> int:
    """The In[n] of the cell that called the magic, so a traceback names the cell the user sees."""
    numbers = getattr(shell.compile, "_filename_map", {})
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code.co_filename in numbers:
            return numbers[frame.f_code.co_filename]
        frame = frame.f_back
    return shell.execution_count


def group_files(paths: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """Files read one by one, and folders whose files were read many at a time (a data loader):
    each of those is one folder-level version, as DVC tracks a directory.

    Files are grouped by folder; sibling groups join under their parent (train/ and valid/ become
    their dataset folder), and a group joins the one of its parent folder when that one holds many
    files itself, until nothing changes."""
    if len(paths) < FOLDER_FILES:
        return paths, {}
    groups: dict[str, list[str]] = {}
    for path in paths:
        groups.setdefault(os.path.dirname(path), []).append(path)
    changed = True
    while changed:
        changed = False
        for folder in sorted(groups, key=len, reverse=True):  # the deepest first
            parent = os.path.dirname(folder)
            siblings = [f for f in groups if f != folder and os.path.dirname(f) == parent]
            if siblings or len(groups.get(parent, ())) >= FOLDER_FILES:
                for merged in [folder, *siblings]:
                    groups.setdefault(parent, []).extend(groups.pop(merged))
                changed = True
                break
    single = sorted(p for files in groups.values() if len(files) < FOLDER_FILES for p in files)
    return single, {folder: sorted(files) for folder, files in groups.items() if len(files) >= FOLDER_FILES}


def _record_outcome(
    tracker: Tracker,
    run: ActiveRun,
    cell: CellRecorder,
    files_read: list[str],
    stdout: str,
    seeds_seen: dict,
    draws: set[str],
    tree: ast.Module,
    frames: int = 0,
) -> str:
    """Log what the cell bound and read; return a line saying what was recorded."""
    params, metrics, models, series = cell.outcome()
    aliases = seeds.module_aliases(cell.namespace, tree)
    seen = {**seeds.seeding_calls(tree, aliases, cell.namespace), **seeds_seen}
    seed_params, reproducibility = seeds.assess(seen, draws, models)
    params.update(seed_params)
    if reproducibility:
        tracker.set_tags(reproducibility, run=run)
    params = {k: v for k, v in params.items() if k not in run.params}
    if params:
        tracker.log_params(params, run=run)
    for key, (steps, values) in series.items():
        tracker.log_metric_series(key, steps, values, run=run)
        if key in metrics:  # bound again after its loop: the value it ended with, one step on
            tracker.log_metrics({key: metrics.pop(key)}, run=run)
    if metrics:
        tracker.log_metrics(metrics, step=0, run=run)
    for name, model in models.items():
        tracker.log_model(model, name, run=run)
    single, folders = group_files(files_read)
    for folder, paths in folders.items():
        tracker.log_file_set(folder, paths, run=run)
    for path in single:
        if capture.looks_like_credentials(Path(path)):
            print(f"mlops_lab: {path} looks like credentials, not data: not logged with the run", file=sys.stderr)
            continue
        try:
            tracker.log_dataset(path, Path(path).name, run=run)
        except OSError as exc:  # read by the cell, gone or unreadable since: the rest is still recorded
            print(f"mlops_lab: could not log the data file {path}: {exc}", file=sys.stderr)
    if stdout:
        tracker.log_text(stdout, "stdout.txt", run=run)
    counts = [(len(params), "param"), (len(metrics) + len(series), "metric"), (len(models), "model")]
    counts += [(frames + len(single) + len(folders), "data version")]
    return ", ".join(f"{n} {word}{'s' if n != 1 else ''}" for n, word in counts if n)
