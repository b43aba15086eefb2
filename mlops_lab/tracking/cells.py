"""Tracking a notebook cell as a run, with no edit to the cell.

From the cell's syntax tree: names bound to literals are params (``lr = 0.01``), names bound to
computed numbers are metrics (``acc = accuracy_score(...)``), fitted estimators and ONNX models it
binds are logged models (their hyperparameters become ``name.param`` params), frames it reads from
the namespace and files it opens are input dataset versions.  Stdout, duration and the outcome are
recorded; a failing cell is a FAILED run, an interrupted one KILLED.
"""

from __future__ import annotations

import ast
import numbers
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from . import capture
from .client import Tracker

MAX_COLLECTION_ITEMS = 50
MAX_STDOUT_CHARS = 1_000_000
READ_SUFFIXES = set(capture.DATA_SUFFIXES) | {".txt", ".npy", ".npz", ".xlsx", ".xls", ".h5", ".hdf5", ".pkl", ".avro"}


@dataclass
class CellNames:
    literal: list[str] = field(default_factory=list)  # bound to a literal: params
    computed: list[str] = field(default_factory=list)  # bound to anything else
    loaded: set[str] = field(default_factory=set)  # read by the cell before it binds them: its inputs


def _is_literal(node: ast.AST) -> bool:
    try:
        ast.literal_eval(node)
        return True
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False


class _Binder(ast.NodeVisitor):
    """Names the cell binds at notebook level (not inside functions, classes or lambdas)."""

    def __init__(self):
        self.names = CellNames()
        self.statement = 0  # which top-level statement is being read
        self.first_load: dict[str, int] = {}
        self.first_store: dict[str, int] = {}

    def visit_Module(self, node: ast.Module) -> None:
        for index, statement in enumerate(node.body):
            self.statement = index
            self.visit(statement)

    def _bind(self, target: ast.AST, value: ast.AST | None) -> None:
        if isinstance(target, ast.Name):
            self.first_store.setdefault(target.id, self.statement)
            bucket = self.names.literal if value is not None and _is_literal(value) else self.names.computed
            if target.id not in bucket:
                bucket.append(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            values = (
                value.elts
                if isinstance(value, (ast.Tuple, ast.List)) and len(value.elts) == len(target.elts)
                else [None] * len(target.elts)
            )
            for sub_target, sub_value in zip(target.elts, values):
                self._bind(sub_target, sub_value)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            self._bind(target, node.value)
        self.visit(node.value)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self._bind(node.target, node.value)
            self.visit(node.value)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._bind(node.target, None)
        self.visit(node.value)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self._bind(node.target, None)
        self.visit(node.value)

    def visit_For(self, node: ast.For) -> None:
        self._bind(node.target, None)
        self.generic_visit(node)

    def visit_With(self, node: ast.With) -> None:
        for item in node.items:
            if item.optional_vars is not None:
                self._bind(item.optional_vars, None)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self.first_load.setdefault(node.id, self.statement)

    def _skip_body(self, node) -> None:
        # A function's defaults run now; its body (and its names) only when it is called.
        for default in [*node.args.defaults, *node.args.kw_defaults]:
            if default is not None:
                self.visit(default)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _skip_body

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        for base in node.bases:
            self.visit(base)


def cell_names(tree: ast.Module) -> CellNames:
    binder = _Binder()
    binder.visit(tree)
    names = binder.names
    # An input is read no later than the statement that first binds it (x = f(x) reads x first).
    names.loaded = {name for name, index in binder.first_load.items() if index <= binder.first_store.get(name, index)}
    names.literal = [n for n in names.literal if not n.startswith("_") and n not in names.computed]
    names.computed = [n for n in names.computed if not n.startswith("_")]
    return names


def param_value(value) -> str | None:
    """A value worth recording as a hyperparameter, as text; None when it is not one."""
    if value is None or isinstance(value, (bool, int, float, str)):
        text = str(value)
    elif (
        isinstance(value, (list, tuple, set, frozenset))
        and len(value) <= MAX_COLLECTION_ITEMS
        and all(v is None or isinstance(v, (bool, int, float, str)) for v in value)
    ) or (
        isinstance(value, dict)
        and len(value) <= MAX_COLLECTION_ITEMS
        and all(isinstance(k, str) and (v is None or isinstance(v, (bool, int, float, str))) for k, v in value.items())
    ):
        text = repr(value)
    else:
        return None
    return text if len(text) <= 1000 else None


def metric_value(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        shape = getattr(value, "shape", None)
        if shape != () or not hasattr(value, "item"):  # a numpy/torch scalar
            return None
        value = value.item()
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return None
    return float(value)


# ---- reads of files during a cell ------------------------------------------------------------


class _ReadRecorder:
    """Collects paths of data files opened for reading while a tracked cell runs.

    Python's audit hook sees every ``open`` (pandas, numpy, builtins); polars and pyarrow read in
    native code, so their readers are wrapped for the duration of the cell.
    """

    def __init__(self):
        self.active: set[str] | None = None
        self.owner: int | None = None
        self._ignored = tuple({sys.prefix, sys.base_prefix, sys.exec_prefix})
        sys.addaudithook(self._audit)

    def _audit(self, event: str, args) -> None:
        if event != "open" or self.active is None or threading.get_ident() != self.owner:
            return
        path, mode = args[0], args[1]
        if isinstance(path, (str, bytes, Path)) and (mode is None or not any(c in str(mode) for c in "wax+")):
            self.note(path)

    def note(self, path) -> None:
        if self.active is None:
            return
        try:
            text = str(Path(path if not isinstance(path, bytes) else path.decode()).expanduser().resolve())
        except (OSError, ValueError, RuntimeError):
            return
        if Path(text).suffix.lower() in READ_SUFFIXES and not text.startswith(self._ignored) and Path(text).is_file():
            self.active.add(text)

    def start(self) -> None:
        self.active, self.owner = set(), threading.get_ident()

    def stop(self) -> set[str]:
        paths, self.active, self.owner = self.active or set(), None, None
        return paths


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
):
    """Run ``source`` in ``shell``'s namespace as a run; return the value of its last expression."""
    global _recorder
    if _recorder is None:
        _recorder = _ReadRecorder()
    transformed = shell.transform_cell(source)
    tree = ast.parse(transformed)  # a SyntaxError is the user's to see, before any run exists
    names = cell_names(tree)
    namespace = shell.user_ns
    frames_read = {n: namespace[n] for n in names.loaded if n in namespace and capture.is_frame(namespace[n])}

    from .environment import notebook_path

    run = tracker.start_run(
        name, experiment=experiment, tags=tags, source=source, notebook_path=notebook_path(namespace), nested=True
    )
    for var, frame in frames_read.items():
        tracker.log_dataset(frame, var, run=run)

    last_expr = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last_expr = ast.Expression(tree.body.pop().value)
    filename = shell.compile.cache(transformed)
    tee = _Tee(sys.stdout)
    status, error, result = "FINISHED", None, None
    _recorder.start()
    sys.stdout = tee
    try:
        with _wrapped_readers(_recorder):
            exec(compile(tree, filename, "exec"), namespace)
            if last_expr is not None:
                result = eval(compile(last_expr, filename, "eval"), namespace)
    except KeyboardInterrupt as exc:
        status, error = "KILLED", "KeyboardInterrupt: the cell was interrupted"
        raise exc
    except BaseException as exc:
        status, error = "FAILED", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if sys.stdout is tee:
            sys.stdout = tee.stream
        files_read = _recorder.stop()
        try:
            _record_outcome(tracker, run, namespace, names, files_read, "".join(tee.parts))
        finally:
            tracker.end_run(status, run=run, error=error)
    return result


def _record_outcome(
    tracker: Tracker, run, namespace: dict, names: CellNames, files_read: set[str], stdout: str
) -> None:
    params, metrics = {}, {}
    for var in names.literal:
        if var in namespace and (text := param_value(namespace[var])) is not None:
            params[var] = text
    for var in names.computed:
        if var not in namespace:
            continue
        value = namespace[var]
        if (number := metric_value(value)) is not None:
            metrics[var] = number
        elif capture.is_onnx_model(value) or (capture.is_sklearn_estimator(value) and capture.is_fitted(value)):
            tracker.log_model(value, var, run=run)
            if capture.is_sklearn_estimator(value):
                for key, hyper in value.get_params(deep=False).items():
                    if (text := param_value(hyper)) is not None:
                        params.setdefault(f"{var}.{key}", text)
    if params:
        tracker.log_params({k: v for k, v in params.items() if k not in run.params}, run=run)
    if metrics:
        tracker.log_metrics(metrics, run=run)
    for path in sorted(files_read):
        if capture.looks_like_credentials(Path(path)):
            print(f"mlops_lab: {path} looks like credentials, not data: not logged with the run", file=sys.stderr)
            continue
        try:
            tracker.log_dataset(path, Path(path).name, run=run)
        except OSError as exc:  # read by the cell, gone or unreadable since: the rest is still recorded
            print(f"mlops_lab: could not log the data file {path}: {exc}", file=sys.stderr)
    if stdout:
        tracker.log_text(stdout, "stdout.txt", run=run)
