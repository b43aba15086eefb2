"""Batch inference: ``mlops-lab predict MODEL INPUT OUTPUT`` scores a parquet or CSV file in chunks.

One chunk of ``chunk_rows`` rows is in memory at a time: read with pyarrow's streaming readers,
scored by the same onnxruntime session the server uses, appended to the output by a streaming
writer.  The output is written beside its final name and moved there at the end, so a failure
leaves no half-written file and never touches an existing one.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import polars as pl

from ..errors import InvalidInputError
from .deployment import resolve_model
from .protocol import DTYPES
from .request_log import columns_of
from .runtime import ModelRuntime

FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv"}


class PredictError(InvalidInputError):
    """Input that cannot be scored by this model; the message says what to change."""


def _format(path: Path) -> str:
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise PredictError(f"{path.name}: use a .parquet or .csv file")
    return kind


def _chunks(path: Path, chunk_rows: int):
    if _format(path) == "parquet":
        import pyarrow.parquet as pq

        yield from pq.ParquetFile(path).iter_batches(batch_size=chunk_rows)
    else:
        import pyarrow.csv as pacsv

        # block_size bounds memory; ~100 bytes a row is a fair guess for numeric CSV
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=max(1 << 20, chunk_rows * 100)))
        for block in reader:  # blocks are sized in bytes: cut them to chunk_rows
            for offset in range(0, block.num_rows, chunk_rows):
                yield block.slice(offset, chunk_rows)


def _feeds(frame: pl.DataFrame, runtime: ModelRuntime, keep: list[str]) -> dict[str, np.ndarray]:
    if len(runtime.inputs) == 1 and len(runtime.inputs[0].shape) == 2:
        spec = runtime.inputs[0]
        width = spec.shape[1]
        columns = runtime.input_columns or [c for c, t in frame.schema.items() if t.is_numeric() and c not in keep]
        missing = [c for c in columns if c not in frame.columns]
        if missing:
            raise PredictError(f"the model's input columns {missing} are not in the file")
        if width != -1 and len(columns) != width:
            raise PredictError(
                f"the model takes {width} columns, the file has {len(columns)} numeric ones: "
                f"{columns}; --keep the others, or register the model with an input example to name its columns"
            )
        return {spec.name: frame.select(columns).to_numpy().astype(DTYPES[spec.datatype], copy=False)}
    feeds = {}
    for spec in runtime.inputs:
        if spec.name not in frame.columns:
            raise PredictError(f"the model takes input {spec.name!r}: the file needs a column of that name")
        values = frame[spec.name].to_numpy()
        feeds[spec.name] = values.reshape(-1, *[1] * (len(spec.shape) - 1)).astype(DTYPES[spec.datatype], copy=False)
    return feeds


def predict_file(
    model: str,
    source: str | os.PathLike,
    destination: str | os.PathLike,
    *,
    chunk_rows: int = 50_000,
    keep: list[str] | None = None,
    workspace=None,
    providers: list[str] | None = None,
) -> dict:
    """Score ``source`` into ``destination``; returns rows, chunks and seconds."""
    source, destination = Path(source), Path(destination)
    if not source.is_file():
        raise PredictError(f"no such file: {source}")
    if chunk_rows < 1:
        raise PredictError("chunk_rows must be at least 1")
    out_format = _format(destination)
    _format(source)
    started = time.perf_counter()
    found = resolve_model(model, workspace)
    runtime = ModelRuntime(
        found.name,
        found.version,
        found.onnx,
        providers=providers,
        max_batch_size=chunk_rows,
        input_columns=found.input_columns,
        warm_up=False,
    )
    partial = destination.with_name(f".{destination.name}.partial")
    writer, rows, chunks = None, 0, 0
    try:
        for batch in _chunks(source, chunk_rows):
            frame = pl.from_arrow(batch)
            if not isinstance(frame, pl.DataFrame) or not frame.height:
                continue
            missing = [c for c in keep or [] if c not in frame.columns]
            if missing:
                raise PredictError(f"columns to keep {missing} are not in {source.name}")
            outputs = runtime.run(_feeds(frame, runtime, keep or []))
            result = {c: frame[c] for c in keep or []}
            for name, array in outputs.items():
                result.update(columns_of(name, array, None))
            table = pl.DataFrame(result).to_arrow()
            if writer is None:
                writer = _writer(partial, out_format, table.schema)
            writer.write_table(table) if out_format == "parquet" else writer.write(table)
            rows += frame.height
            chunks += 1
        if writer is None:
            raise PredictError(f"{source.name} has no rows")
        writer.close()
        writer = None
        partial.replace(destination)
    finally:
        if writer is not None:
            writer.close()
        partial.unlink(missing_ok=True)
    return {
        "model": f"{found.name}/{found.version}",
        "rows": rows,
        "chunks": chunks,
        "provider": runtime.provider,
        "seconds": time.perf_counter() - started,
    }


def _writer(path: Path, kind: str, schema):
    if kind == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetWriter(path, schema)
    import pyarrow.csv as pacsv

    return pacsv.CSVWriter(path, schema)
