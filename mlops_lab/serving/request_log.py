"""What a deployment was asked and what it answered, in rotating parquet files.

Rows are kept in memory as the arrays the model saw and written by a background thread every
``flush_seconds`` (or sooner when ``rows_per_file`` are waiting) to a new file named by time;
only the newest ``max_files`` are kept.  Each input or output column of a table model becomes a
column: the registered input columns when known, ``name_0 … name_k`` otherwise (up to
``MAX_SPLIT_COLUMNS``; a wider tensor is one list column, never a column per element); an output
with one value per row keeps its own name.  What the log adds is under ``@`` names
(``@timestamp``, ``@request_id``, ``@model_version``, ``@role``, ``@latency_us``), so a feature
called ``timestamp`` or ``role`` keeps its values.  A request whose tensors hold more than
``MAX_LOGGED_BYTES`` is logged without them (``@tensors_logged`` false): the log never holds a
request's data many times over.  :func:`read_request_log` reads the files back as one polars
frame, which the drift service takes as its "current" data.

Where the workspace keeps its artifacts elsewhere (S3, a team server), each file written is also
stored there as a blob and recorded as a ``request_log`` event of the deployment (hash, rows), so
that the log outlives the serving host and any lab reads it: :func:`read_stored_request_log`.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

if TYPE_CHECKING:
    from ..workspace import Workspace

log = logging.getLogger("mlops_lab.serving")
META_COLUMNS = ("@timestamp", "@request_id", "@model_version", "@role", "@latency_us", "@tensors_logged")
MAX_SPLIT_COLUMNS = 1024  # a table this wide or narrower is logged a column per feature
MAX_LOGGED_BYTES = 1 << 20  # tensors of one request beyond this are not logged


class RequestLog:
    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        sample: float = 1.0,
        flush_seconds: float = 5.0,
        rows_per_file: int = 100_000,
        max_files: int = 1000,
        on_file=None,
    ):
        """``on_file(path, rows)`` is called on the writer thread after each file is written."""
        if not 0.0 <= sample <= 1.0:
            raise ValueError(f"the request log's sample rate must be between 0 and 1, got {sample}")
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.sample, self.flush_seconds = sample, flush_seconds
        self.rows_per_file, self.max_files = rows_per_file, max_files
        self.on_file = on_file
        self._records: list[tuple] = []
        self._rows = 0
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = False
        self._sequence = 0
        self._thread = threading.Thread(target=self._run, name="request-log", daemon=True)
        self._thread.start()

    def wanted(self) -> bool:
        return self.sample >= 1.0 or random.random() < self.sample

    def record(
        self,
        version: str,
        role: str,
        request_id: str | None,
        latency_us: int,
        inputs: dict[str, np.ndarray],
        outputs: dict[str, np.ndarray],
        input_columns: list[str] | None,
    ) -> None:
        rows = next(iter(inputs.values())).shape[0] if inputs else 0
        with self._lock:
            self._records.append(
                (time.time(), request_id, version, role, latency_us, rows, inputs, outputs, input_columns)
            )
            self._rows += rows
        if self._rows >= self.rows_per_file:
            self._wake.set()

    def close(self) -> None:
        self._stopped = True
        self._wake.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            self.flush()
        self.flush()

    def flush(self) -> Path | None:
        with self._lock:
            records, self._records, self._rows = self._records, [], 0
        if not records:
            return None
        try:
            frame = pl.concat([_frame(r) for r in records], how="diagonal_relaxed")
            self._sequence += 1
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
            path = self.folder / f"requests-{stamp}-{os.getpid()}-{self._sequence:06d}.parquet"
            frame.write_parquet(path.with_suffix(".tmp"))
            path.with_suffix(".tmp").replace(path)  # readers never see half a file
            for old in sorted(self.folder.glob("requests-*.parquet"))[: -self.max_files]:
                old.unlink(missing_ok=True)
        except Exception:  # the log must never take the server down
            log.exception("could not write %d request log records", len(records))
            return None
        if self.on_file is not None:
            try:
                self.on_file(path, frame.height)
            except Exception:  # kept on this host's disk meanwhile
                log.exception("could not keep request log file %s in the artifact store", path.name)
        return path


def columns_of(name: str, array: np.ndarray, names: list[str] | None) -> dict[str, object]:
    """The log's columns for one tensor: one per feature of a table, else one list column."""
    if array.ndim <= 1:
        return {name: array}
    if array.ndim == 2 and array.shape[1] <= MAX_SPLIT_COLUMNS:
        if names is None or len(names) != array.shape[1]:
            names = [name] if array.shape[1] == 1 else [f"{name}_{j}" for j in range(array.shape[1])]
        return {column: array[:, j] for j, column in enumerate(names)}
    flat = array.reshape(array.shape[0], -1)
    return {name: pl.Series(name, flat.tolist() if flat.dtype == object else flat)}  # an Array column


def _tensor_bytes(arrays) -> int:
    """What a request's tensors take in memory (object arrays by their pointers: a lower bound)."""
    return sum(array.nbytes for array in arrays)


def _frame(record: tuple) -> pl.DataFrame:
    ts, request_id, version, role, latency_us, rows, inputs, outputs, input_columns = record
    logged = _tensor_bytes([*inputs.values(), *outputs.values()]) <= MAX_LOGGED_BYTES
    data: dict[str, object] = {}
    if logged:
        single_input = len(inputs) == 1
        for name, array in inputs.items():
            data.update(columns_of(name, array, input_columns if single_input else None))
        for name, array in outputs.items():
            data.update(columns_of(name, array, None))
    data.update(
        {  # last: nothing of the model's can overwrite them (and "@" names do not clash)
            "@timestamp": pl.Series([datetime.fromtimestamp(ts, UTC)] * rows, dtype=pl.Datetime("ms", "UTC")),
            "@request_id": pl.Series([request_id] * rows, dtype=pl.String),
            "@model_version": [version] * rows,
            "@role": [role] * rows,
            "@latency_us": [latency_us] * rows,
            "@tensors_logged": [logged] * rows,
        }
    )
    for key, value in data.items():
        if isinstance(value, np.ndarray) and value.dtype == object:
            data[key] = value.tolist()  # text (BYTES tensors arrive decoded): a String column
    return pl.DataFrame(data)


def read_request_log(folder: str | os.PathLike, *, shadow: bool = False, since=None) -> pl.DataFrame:
    """The requests logged under ``folder``, oldest first: those answered (primary and canary), or
    with ``shadow=True`` the shadow version's answers to the same requests."""
    files = sorted(Path(folder).glob("requests-*.parquet"))
    if not files:
        raise FileNotFoundError(f"no request log files in {folder}")
    frame = pl.concat([pl.read_parquet(f) for f in files], how="diagonal_relaxed")
    frame = frame.filter((pl.col("@role") == "shadow") == shadow)
    if since is not None:
        frame = frame.filter(pl.col("@timestamp") >= since)
    return frame


def read_stored_request_log(
    workspace: "Workspace", deployment: str, *, shadow: bool = False, since=None
) -> pl.DataFrame:
    """A deployment's request log from the artifact store (where a serving process on any host put
    it), oldest first; as :func:`read_request_log`."""
    import io

    stored = [e for e in workspace.store.events.events("deployment", deployment) if e["kind"] == "request_log"]
    if not stored:
        raise FileNotFoundError(f"{deployment} has no request log in the artifact store yet")
    frames = [pl.read_parquet(io.BytesIO(workspace.artifacts.get_bytes(e["payload"]["hash"]))) for e in stored]
    frame = pl.concat(frames, how="diagonal_relaxed").filter((pl.col("@role") == "shadow") == shadow)
    if since is not None:
        frame = frame.filter(pl.col("@timestamp") >= since)
    return frame
