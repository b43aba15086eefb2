"""Turning Python objects into stored models and dataset versions.

Each function splits its work in two: a quick snapshot on the caller's thread (so later changes
to the object do not leak in), and a job for the writer thread that hashes, converts and stores.
"""

from __future__ import annotations

import contextlib
import copy
import fnmatch
import functools
import io
import json
import logging
import os
import pickle
import re
import stat
import sys
import threading
import warnings
from pathlib import Path

import numpy as np

from ..artifacts import ArtifactStore, manifest_bytes, sha256_bytes, sha256_file
from ..store import Batch, now_ms
from ..store.file_state import cached_hashes

ONNX_DTYPES = {
    1: "float32",
    2: "uint8",
    3: "int8",
    5: "int16",
    6: "int32",
    7: "int64",
    8: "string",
    9: "bool",
    10: "float16",
    11: "float64",
    12: "uint32",
    13: "uint64",
}
DATA_SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".ndjson": "json",
    ".arrow": "arrow",
    ".feather": "arrow",
}


# ---- models ----------------------------------------------------------------------------------

_warnings_sink = threading.local()
_shown_by_python = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None):
    sink = getattr(_warnings_sink, "lines", None)
    if sink is None:
        return _shown_by_python(message, category, filename, lineno, file, line)
    sink.append(warnings.formatwarning(message, category, filename, lineno, line))


class _ConverterLog(logging.Handler):
    """The converters' log records: on a thread converting for a run, kept with its warnings; on
    any other, printed as Python prints records nobody configured (having a handler here stops
    that fallback, so it is done here)."""

    def emit(self, record: logging.LogRecord) -> None:
        sink = getattr(_warnings_sink, "lines", None)
        if sink is not None:
            sink.append(f"{record.levelname} {record.name}: {record.getMessage()}\n")
        elif not logging.getLogger().handlers and record.levelno >= logging.lastResort.level:
            logging.lastResort.handle(record)


CONVERTER_LOGGERS = ("torch.onnx", "onnxscript", "skl2onnx", "onnxmltools")
_converter_log = _ConverterLog()


def _not_while_converting(record: logging.LogRecord) -> bool:
    """A filter for the libraries' own handlers (PyTorch has some): silent on a converting thread."""
    return getattr(_warnings_sink, "lines", None) is None


@contextlib.contextmanager
def warnings_into(lines: list[str]):
    """Warnings and converter log records this thread raises meanwhile are appended to ``lines``
    instead of printed.

    ``warnings.catch_warnings`` is process-wide: on the writer thread it would swallow the
    notebook's own warnings, so the one hook routes by thread instead."""
    global _shown_by_python
    if warnings.showwarning is not _show_warning:
        _shown_by_python, warnings.showwarning = warnings.showwarning, _show_warning
    for name in CONVERTER_LOGGERS:
        logger = logging.getLogger(name)
        if _converter_log not in logger.handlers:
            logger.addHandler(_converter_log)
        while logger is not None and logger is not logging.getLogger():  # their ancestors' handlers too
            for handler in logger.handlers:
                if handler is not _converter_log and _not_while_converting not in handler.filters:
                    handler.addFilter(_not_while_converting)
            logger = logger.parent
    _warnings_sink.lines = lines
    try:
        yield lines
    finally:
        _warnings_sink.lines = None


def is_sklearn_estimator(obj) -> bool:
    return (
        type(obj).__module__.split(".")[0] in ("sklearn", "xgboost", "lightgbm")
        and hasattr(obj, "fit")
        and hasattr(obj, "get_params")
    )


def is_fitted(estimator) -> bool:
    try:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(estimator)
        return True
    except Exception:
        return False


def is_loggable_model(obj) -> bool:
    """A model a tracked cell logs by itself: a fitted scikit-learn-style estimator (XGBoost and
    LightGBM included), a PyTorch module or an ONNX model."""
    root = type(obj).__module__.partition(".")[0]
    if root == "onnx":
        return is_onnx_model(obj)
    if is_torch_module(obj):
        return True
    return root in ("sklearn", "xgboost", "lightgbm") and is_sklearn_estimator(obj) and is_fitted(obj)


def is_torch_module(obj) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def torch_input_example(module, input_example=None):
    """A float32 batch to trace ``module`` with: ``input_example`` (2 rows of it), else one made from
    the in_features of its first Linear layer."""
    import torch

    if input_example is not None:
        values = input_example.to_numpy() if hasattr(input_example, "to_numpy") else input_example
        return torch.as_tensor(np.asarray(values, dtype=np.float32)[:2])
    first = next((m for m in module.modules() if isinstance(m, torch.nn.Linear)), None)
    if first is None:
        raise ValueError("the input shape is unknown (no Linear layer to read it from): pass input_example")
    return torch.zeros(2, first.in_features)


def torch_to_onnx(module, example) -> tuple[bytes, float]:
    """The module as ONNX with a free batch axis, and the largest difference between the two on
    64 random rows (checked now: the module's class may not be importable anywhere else)."""
    import torch

    module = module.eval()
    exported = torch.onnx.export(
        module, (example,), dynamo=True, verbose=False, input_names=["input"], output_names=["output"],
        dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
    )  # fmt: skip
    onnx_bytes = exported.model_proto.SerializeToString()
    rows = np.random.default_rng(0).normal(size=(64, *example.shape[1:])).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(rows)).numpy()
    import onnxruntime as ort

    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    produced = session.run(None, {session.get_inputs()[0].name: rows})[0]
    return onnx_bytes, float(np.max(np.abs(produced - expected))) if expected.size else 0.0


def is_onnx_model(obj) -> bool:
    return type(obj).__name__ == "ModelProto" and type(obj).__module__.startswith("onnx")


def onnx_signature(model_bytes: bytes) -> dict:
    import onnx

    graph = onnx.load_model_from_string(model_bytes).graph
    initializers = {init.name for init in graph.initializer}

    def describe(values):
        out = []
        for value in values:
            if value.name in initializers:
                continue
            tensor = value.type.tensor_type
            shape = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim]
            out.append(
                {
                    "name": value.name,
                    "datatype": ONNX_DTYPES.get(tensor.elem_type, str(tensor.elem_type)),
                    "shape": shape,
                }
            )
        return out

    return {"inputs": describe(graph.input), "outputs": describe(graph.output)}


# library -> (classifier, regressor, the onnxmltools module and function that convert both)
BOOSTING = {
    "xgboost": (
        "XGBClassifier",
        "XGBRegressor",
        "onnxmltools.convert.xgboost.operator_converters.XGBoost",
        "convert_xgboost",
    ),
    "lightgbm": (
        "LGBMClassifier",
        "LGBMRegressor",
        "onnxmltools.convert.lightgbm.operator_converters.LightGbm",
        "convert_lightgbm",
    ),
}
_registered_boosting: set[str] = set()


def _register_boosting_converters() -> None:
    """skl2onnx converts XGBoost and LightGBM models (alone or in a pipeline) with onnxmltools'
    converters, once they are registered for their scikit-learn API classes (once per library)."""
    import importlib

    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    for library, (classifier, regressor, module, function) in BOOSTING.items():
        if library not in sys.modules or library in _registered_boosting:
            continue
        classes, convert = sys.modules[library], getattr(importlib.import_module(module), function)
        options = {"nocl": [True, False], "zipmap": [True, False, "columns"]}
        update_registered_converter(
            getattr(classes, classifier), f"{library}{classifier}", calculate_linear_classifier_output_shapes,
            convert, options=options,
        )  # fmt: skip
        update_registered_converter(
            getattr(classes, regressor), f"{library}{regressor}", calculate_linear_regressor_output_shapes, convert
        )
        _registered_boosting.add(library)


def sklearn_to_onnx(estimator, n_features: int | None) -> bytes:
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.base import is_classifier

    boosting = "xgboost" in sys.modules or "lightgbm" in sys.modules
    if boosting:
        _register_boosting_converters()

    n_features = n_features or getattr(estimator, "n_features_in_", None)
    if not n_features:
        raise ValueError("the number of input features is unknown: pass input_example")
    initial_types = [("input", FloatTensorType([None, int(n_features)]))]
    # Plain probability tensors rather than a list of dicts: what a serving client expects.
    options = {"zipmap": False} if is_classifier(estimator) else None
    # onnxmltools' tree converters write version 3 of the ai.onnx.ml operators, not the newest.
    opsets = {"": 17, "ai.onnx.ml": 3} if boosting else None
    try:
        onx = to_onnx(estimator, initial_types=initial_types, options=options, target_opset=opsets)
    except Exception:
        if options is None:
            raise
        onx = to_onnx(estimator, initial_types=initial_types, target_opset=opsets)
    return onx.SerializeToString()


def model_job(run_id: str, name: str, model, artifacts: ArtifactStore, input_example=None):
    """Snapshot ``model`` now; return the job that stores it and its ONNX form."""
    if is_onnx_model(model):
        flavor, payload = "onnx", model.SerializeToString()
    elif isinstance(model, (str, os.PathLike)) and str(model).endswith(".onnx"):
        flavor, payload = "onnx", Path(model).read_bytes()
    elif is_sklearn_estimator(model):
        if not is_fitted(model):
            raise ValueError(f"model {name!r} ({type(model).__name__}) is not fitted yet: fit it before logging")
        flavor, payload = "sklearn", pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL)
    elif is_torch_module(model):
        import torch

        # A copy now: the notebook may go on training the module while the writer exports it.
        snapshot = copy.deepcopy(model)
        example = torch_input_example(snapshot, input_example)
        buffer = io.BytesIO()
        torch.save(snapshot, buffer)
        flavor, payload = "pytorch", buffer.getvalue()
    else:
        raise TypeError(
            f"model {name!r} is a {type(model).__module__}.{type(model).__name__}; log_model takes a fitted "
            "scikit-learn, XGBoost or LightGBM estimator, a PyTorch module, an onnx.ModelProto or a .onnx file"
        )
    example_columns = None
    n_features = None
    if input_example is not None:
        shape = getattr(input_example, "shape", None)
        n_features = shape[1] if shape is not None and len(shape) == 2 else None
        columns = getattr(input_example, "columns", None)
        if columns is not None:
            example_columns = [str(c) for c in columns]
    names = getattr(model, "feature_names_in_", None) if flavor == "sklearn" else None
    if example_columns is None and names is not None:  # fitted on a frame: the columns it reads, by name
        example_columns = [str(c) for c in names]

    def job() -> Batch:
        model_hash = artifacts.put_bytes(payload)
        onnx_hash, onnx_error, signature, said = None, None, {}, []
        try:
            with warnings_into(said):
                if flavor == "pytorch":
                    onnx_bytes, difference = torch_to_onnx(snapshot, example)
                    signature["verified_max_difference"] = difference
                else:
                    onnx_bytes = payload if flavor == "onnx" else sklearn_to_onnx(pickle.loads(payload), n_features)
            onnx_hash = artifacts.put_bytes(onnx_bytes)
            signature = {**onnx_signature(onnx_bytes), **signature}
        except Exception as exc:  # kept as a fact of the model; registration can retry
            onnx_error = f"{type(exc).__name__}: {exc}"
        if example_columns:
            signature["input_columns"] = example_columns
        log = []
        if said:  # the converter's warnings belong to this run, not to whatever cell runs by now
            text = "".join(said).encode()
            path = f"{name}.conversion.txt"
            log = [
                {"run_id": run_id, "path": path, "hash": artifacts.put_bytes(text), "size": len(text), "kind": "file"}
            ]
        return Batch(
            artifacts=log,
            models=[
                {
                    "run_id": run_id,
                    "name": name,
                    "flavor": flavor,
                    "model_hash": model_hash,
                    "onnx_hash": onnx_hash,
                    "onnx_error": onnx_error,
                    "signature": json.dumps(signature),
                    "created_at": now_ms(),
                }
            ],
        )

    return job


# ---- datasets --------------------------------------------------------------------------------


def _frame_to_polars(data):
    import polars as pl

    if isinstance(data, pl.LazyFrame):
        return data.collect()
    if isinstance(data, pl.DataFrame):
        return data
    import pandas as pd

    if isinstance(data, pd.Series):
        data = data.to_frame()
    if isinstance(data, pd.DataFrame):
        # An index is data when it is named (a default one, even after filtering, is row numbers).
        return pl.from_pandas(data, include_index=any(name is not None for name in data.index.names))
    return None


def _is_polars(obj) -> bool:
    return type(obj).__module__.startswith("polars")


def frame_snapshot(frame) -> tuple[object, tuple]:
    """An O(1) copy of a frame that later in-place changes cannot reach, and what identifies the
    frame's content while that copy lives: pandas (3, copy-on-write) copies a block when a frame
    that shares it is written to, so the frame's arrays are new objects after any change; polars
    frames share immutable buffers."""
    # The writer thread converts with polars: import it here, on the caller's thread. An import
    # running on another thread leaves a half-made module in sys.modules that the notebook's own
    # code (scikit-learn looks polars up there) would trip on.
    import polars  # noqa: F401

    if not _is_polars(frame):
        return frame.copy(deep=False), frame_identity(frame)
    lazy = type(frame).__name__ == "LazyFrame"
    return (frame if lazy else frame.clone()), frame_identity(frame)


def frame_identity(frame) -> tuple:
    if _is_polars(frame):
        if type(frame).__name__ == "LazyFrame":
            return ("lazy", id(frame))  # a plan over sources that may change: never reused
        return ("polars", frame.height, tuple((c, str(t)) for c, t in frame.schema.items()))
    names = tuple(map(str, frame.columns)) if hasattr(frame, "columns") else (str(frame.name),)
    return ("pandas", tuple(id(array) for array in frame._mgr.arrays), id(frame.index), names)


def frame_job(run_id: str, frame, artifacts: ArtifactStore, *, name, direction, source=None):
    """The job that stores ``frame`` (a snapshot nothing else changes) as Arrow IPC and records its
    version, on the writer thread."""

    def job() -> Batch:
        table = _frame_to_polars(frame)
        buffer = io.BytesIO()
        table.write_ipc(buffer)
        payload = buffer.getvalue()
        digest = artifacts.put_bytes(payload)
        columns = {c: str(t) for c, t in table.schema.items()}
        return _dataset_batch(
            run_id, digest, "arrow", columns, table.height, len(payload), digest, name or f"frame-{digest[:8]}",
            direction, source, preview_json(table),
        )  # fmt: skip

    return job


def is_frame(obj) -> bool:
    module = type(obj).__module__
    return (module.startswith("pandas") and type(obj).__name__ in ("DataFrame", "Series")) or (
        module.startswith("polars") and type(obj).__name__ in ("DataFrame", "LazyFrame")
    )


# Files a cell reads that are credentials, not data: never logged from a cell, never previewed.
# MLOPS_LAB_SECRET_FILES adds glob patterns (comma-separated), matched against the file's name.
SECRET_NAMES = (
    ".env", "*.env", ".env.*", ".netrc", ".pgpass", ".npmrc", ".pypirc", ".git-credentials",
    "*.pem", "*.key", "*.p12", "*.pfx", "*.jks", "*.keystore",
    "id_rsa*", "id_dsa*", "id_ecdsa*", "id_ed25519*",
    "*credential*", "*secret*", "*_token*", "*-token*", "token", "token*.txt", "*.token", "*password*",
    "service-account*.json", "*service_account*.json", "kubeconfig*",
)  # fmt: skip
SECRET_FOLDERS = {".ssh", ".aws", ".gnupg", ".kube", ".docker", ".azure", "gcloud"}
SECRET_KEYS = (b'"private_key"', b'"client_secret"', b'"refresh_token"', b'"aws_secret_access_key"')


def _secret_name_pattern() -> re.Pattern:
    """One expression for every credentials pattern (the defaults and MLOPS_LAB_SECRET_FILES)."""
    extra = tuple(p.strip() for p in os.environ.get("MLOPS_LAB_SECRET_FILES", "").split(",") if p.strip())
    return _compiled_names(SECRET_NAMES + extra)


@functools.cache
def _compiled_names(patterns: tuple[str, ...]) -> re.Pattern:
    return re.compile("|".join(fnmatch.translate(pattern.lower()) for pattern in patterns))


def named_like_credentials(path: str | Path, pattern: re.Pattern | None = None) -> bool:
    """A key, a token or a credentials file by its name or its folder (no reading)."""
    folder, name = os.path.split(os.fspath(path))
    return bool((pattern or _secret_name_pattern()).match(name.lower())) or _secret_folder(folder)


@functools.lru_cache(maxsize=4096)
def _secret_folder(folder: str) -> bool:
    return bool(SECRET_FOLDERS & {part.lower() for part in folder.split(os.sep)})


def looks_like_credentials(path: Path) -> bool:
    """A key, a token or a credentials file by its name, its folder, or (small JSON) its keys."""
    if named_like_credentials(path):
        return True
    name = path.name.lower()
    if name.endswith(".json"):
        try:
            with open(path, "rb") as handle:
                head = handle.read(64 * 1024)
        except OSError:
            return False
        return any(key in head for key in SECRET_KEYS)
    return False


SNAPSHOT_BYTES = 64 * 1024 * 1024  # files up to this size are hashed and stored when logged


def snapshot_now(path: Path) -> bool:
    """Whether a logged file is small enough to be hashed and stored on the caller's thread, so
    that what is recorded is what the file held when it was logged (folders and larger files are
    read by the writer thread)."""
    try:
        return path.is_file() and path.stat().st_size <= SNAPSHOT_BYTES
    except OSError:
        return False


def cached_file_hash(store, path: Path) -> str:
    """sha256 of a file, read only when its inode, mtime or size changed since the last time."""
    return cached_hashes(store, [path])[str(path.resolve())]


def dataset_job(
    run_id: str,
    data,
    artifacts: ArtifactStore,
    *,
    name: str | None,
    direction: str,
    source: str | None = None,
    store=None,
):
    """Snapshot a frame or a path now; return the job that hashes and stores it."""
    if direction not in ("input", "output"):
        raise ValueError(f"direction must be 'input' or 'output', got {direction!r}")
    if is_frame(data):  # what it holds now, whatever happens to it next
        return frame_job(run_id, frame_snapshot(data)[0], artifacts, name=name, direction=direction, source=source)
    if isinstance(data, (str, os.PathLike)):
        path = Path(data).expanduser()
        if not path.exists():
            raise FileNotFoundError(f"dataset path {str(path)!r} does not exist")
        path = path.resolve()

        def path_job() -> Batch:
            if path.is_dir():
                digest, size = artifacts.put_dir(path)
                return _dataset_batch(
                    run_id, digest, "folder", {}, None, size, digest, name or path.name, direction, source or str(path)
                )
            digest = cached_file_hash(store, path) if store is not None else sha256_file(path)
            digest = artifacts.put_file(path, digest)  # the hash of what was stored, should the file change
            fmt = DATA_SUFFIXES.get(path.suffix.lower(), "file")
            columns, rows, preview = _file_schema(path, fmt)
            if looks_like_credentials(path):  # logged because asked for, but its content is not shown
                preview = None
            return _dataset_batch(
                run_id,
                digest,
                fmt,
                columns,
                rows,
                path.stat().st_size,
                digest,
                name or path.name,
                direction,
                source or str(path),
                preview,
            )

        return path_job
    raise TypeError(
        f"log_dataset takes a pandas or polars frame or a file/folder path, got {type(data).__module__}.{type(data).__name__}"
    )


PREVIEW_ROWS = 5


def file_set_batch(run_id: str, folder: str, paths: list[str], artifacts: ArtifactStore, store) -> Batch:
    """One dataset version for many files read under ``folder``: a manifest of what was read
    (relative path → blob), as DVC tracks a directory.  Done now, on the caller's thread, so it
    records what the cell read; unchanged files cost a stat and one cache lookup per few hundred.
    Files named like credentials are left out (their content is not read to decide)."""
    keys = []
    secret = _secret_name_pattern()
    for path in paths:
        try:
            info = os.stat(path)
        except OSError:  # gone since the cell read it
            continue
        if stat.S_ISREG(info.st_mode) and not named_like_credentials(path, secret):
            keys.append((path, info.st_ino, info.st_mtime_ns, info.st_size))
    known = store.file_hashes(keys)
    prefix = len(folder.rstrip(os.sep)) + 1

    def manifest(digests: dict[str, str]) -> bytes:
        return manifest_bytes({key[0][prefix:]: digests[key[0]] for key in keys})

    text = manifest(known) if len(known) == len(keys) else b""
    digest = sha256_bytes(text)
    if not text or artifacts.missing([(digest, len(text))])[0]:  # else: stored whole before, each blob with it
        cached = [key for key in keys if key[0] in known]
        absent = artifacts.missing([(known[key[0]], key[3]) for key in cached])
        missing = [key for key in keys if key[0] not in known] + [k for k, gone in zip(cached, absent) if gone]
        stored = artifacts.put_files([key[0] for key in missing])  # hashed while stored
        new = {key[0]: blob for key, blob in zip(missing, stored)}
        store.remember_file_hashes([(key, new[key[0]]) for key in missing if new[key[0]] != known.get(key[0])])
        digest = artifacts.put_bytes(manifest({**known, **new}))
    total = sum(key[3] for key in keys)
    preview = json.dumps([{"file": key[0][prefix:]} for key in keys[:PREVIEW_ROWS]])
    name = Path(folder).name or "files"
    return _dataset_batch(run_id, digest, "files", {}, len(keys), total, digest, name, "input", folder, preview)


def preview_json(frame, rows: int = PREVIEW_ROWS) -> str:
    """The first rows of a polars frame as JSON, values shortened: enough to recognise the data."""
    head = frame.head(rows)
    rows = [
        {k: (v if isinstance(v, (int, float, bool)) or v is None else str(v)[:100]) for k, v in row.items()}
        for row in head.iter_rows(named=True)
    ]
    return json.dumps(rows, default=str)


def _file_schema(path: Path, fmt: str) -> tuple[dict, int | None, str | None]:
    import polars as pl

    scan = {"parquet": pl.scan_parquet, "csv": pl.scan_csv, "arrow": pl.scan_ipc}.get(fmt)
    try:
        if scan is not None:
            lazy = scan(path, separator="\t") if path.suffix.lower() == ".tsv" else scan(path)
            schema = lazy.collect_schema()
            return (
                {c: str(t) for c, t in schema.items()},
                lazy.select(pl.len()).collect().item(),
                preview_json(lazy.head(PREVIEW_ROWS).collect()),
            )
        if fmt == "json":
            frame = pl.read_ndjson(path) if path.suffix.lower() in (".jsonl", ".ndjson") else pl.read_json(path)
            return {c: str(t) for c, t in frame.schema.items()}, frame.height, preview_json(frame)
    except Exception:  # unreadable as a table: still a versioned file
        pass
    return {}, None, None


def _dataset_batch(run_id, digest, fmt, columns, rows, size, blob, name, direction, source, preview=None) -> Batch:
    return Batch(
        datasets=[
            {
                "hash": digest,
                "format": fmt,
                "columns": json.dumps(columns),
                "num_rows": rows,
                "num_bytes": size,
                "blob_hash": blob,
                "preview": preview,
                "created_at": now_ms(),
            }
        ],
        run_datasets=[
            {"run_id": run_id, "dataset_hash": digest, "direction": direction, "name": name[:250], "source": source}
        ],
    )
