"""The Open Inference Protocol (KServe/Triton v2) over REST: tensors in and out, JSON or binary.

A request body is JSON, or — with the binary tensor extension — a JSON header of
``Inference-Header-Content-Length`` bytes followed by the raw bytes of each input that says
``"parameters": {"binary_data_size": n}``, in the order the inputs are listed.  Outputs come back
as JSON ``data`` or, when asked for (``binary_data`` on an output, ``binary_data_output`` on the
request), as raw bytes after the JSON header in the same way.  Everything a client can get wrong
raises :class:`ProtocolError` with the HTTP status to answer.
"""

from __future__ import annotations

import math
import struct
from array import array
from dataclasses import dataclass, field

import numpy as np
import orjson

from ..errors import MlopsLabError

HEADER_LENGTH = "inference-header-content-length"

DTYPES = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
DATATYPE_OF = {dtype: name for name, dtype in DTYPES.items() if name != "BYTES"}


class ProtocolError(MlopsLabError):
    """A request the server answers with ``{"error": message}`` and ``status``."""

    def __init__(self, status: int, message: str):
        super().__init__(message, status=status)
        self.message = message


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]  # -1 where the model takes any size

    def as_dict(self) -> dict:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


@dataclass
class InferRequest:
    inputs: dict[str, np.ndarray]
    rows: int  # the size of the first (batch) dimension shared by all inputs
    id: str | None = None
    outputs: list[str] | None = None  # None: all of the model's outputs
    binary_outputs: set[str] = field(default_factory=set)
    timeout_us: int | None = None


def _bad(message: str) -> ProtocolError:
    return ProtocolError(400, message)


def _split_body(body: bytes, header_length: str | None) -> tuple[dict, memoryview]:
    if header_length is None:
        json_part, binary = body, memoryview(b"")
    else:
        try:
            size = int(header_length)
        except ValueError:
            raise _bad(f"Inference-Header-Content-Length must be an integer, got {header_length!r}") from None
        if not 0 < size <= len(body):
            raise _bad(f"Inference-Header-Content-Length is {size} but the body has {len(body)} bytes")
        json_part, binary = body[:size], memoryview(body)[size:]
    try:
        header = orjson.loads(json_part)
    except orjson.JSONDecodeError as exc:
        raise _bad(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(header, dict):
        raise _bad('the request must be a JSON object with an "inputs" list')
    return header, binary


def _shape(tensor: dict, name: str) -> tuple[int, ...]:
    shape = tensor.get("shape")
    if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
        raise _bad(f'input {name!r}: "shape" must be a list of non-negative integers, got {shape!r}')
    return tuple(shape)


def tensor_from_bytes(raw, spec: TensorSpec, shape: tuple[int, ...]) -> np.ndarray:
    """A tensor from the binary tensor extension's bytes (requests here, responses in the client)."""
    raw = memoryview(raw)
    count = math.prod(shape)
    if spec.datatype == "BYTES":
        return _bytes_text(raw, count, spec.name).reshape(shape)
    dtype = DTYPES[spec.datatype]
    if len(raw) != count * dtype.itemsize:
        raise _bad(
            f"input {spec.name!r}: shape {list(shape)} of {spec.datatype} needs {count * dtype.itemsize} "
            f"bytes, binary_data_size says {len(raw)}"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape)


def _bytes_text(raw: memoryview, count: int, name: str) -> np.ndarray:
    """Length-prefixed BYTES data as text: ONNX strings are text, and onnxruntime takes ``str``."""
    if count and len(raw) >= 4:  # the common case, one length for all, is decoded with no loop
        width = int.from_bytes(raw[:4], "little")
        if len(raw) == count * (4 + width):
            rows = np.frombuffer(raw, dtype=np.uint8).reshape(count, 4 + width)
            data = rows[:, 4:]
            # ASCII without NUL: a fixed-width S array casts to U in one step (U drops trailing NULs).
            if (rows[:, :4].copy().view("<u4") == width).all() and data.all() and (data < 128).all():
                if not width:
                    return np.zeros(count, dtype="U1")  # all empty
                return np.ascontiguousarray(data).view(f"S{width}").reshape(count).astype(f"U{width}")
    starts, lengths, offset, unpack = array("q"), array("q"), 0, struct.Struct("<I").unpack_from
    for _ in range(count):
        if offset + 4 > len(raw):
            raise _bad(f"input {name!r}: binary BYTES data ends inside an element length")
        (length,) = unpack(raw, offset)
        starts.append(offset + 4)
        lengths.append(length)
        offset += 4 + length
        if offset > len(raw):
            raise _bad(f"input {name!r}: binary BYTES element runs past binary_data_size")
    if offset != len(raw):
        raise _bad(f"input {name!r}: {len(raw) - offset} bytes left after {count} BYTES elements")
    whole = raw.tobytes()
    try:
        texts = [whole[start : start + length].decode() for start, length in zip(starts, lengths)]
    except UnicodeDecodeError as exc:
        raise _bad(f"input {name!r}: a BYTES element is not UTF-8 text ({exc.reason})") from None
    return _text_array(texts, name)


def _text_array(texts: list, name: str) -> np.ndarray:
    """Strings as a fixed-width ``U`` array (4 bytes a character, padded to the widest) where that is
    smaller than an object array (a pointer and a ``str`` of about 50 bytes plus its text each) and
    no element ends in NUL, which ``U`` would drop; else as the object array."""
    if not all(isinstance(text, str) for text in texts):
        raise _bad(f"input {name!r}: BYTES elements must be strings")
    widest = max(map(len, texts), default=0)
    compact = 4 * widest * len(texts) <= sum(map(len, texts)) + 57 * len(texts)
    if compact and widest and not any(text.endswith("\x00") for text in texts):
        return np.array(texts, dtype=f"U{widest}")
    boxed = np.empty(len(texts), dtype=object)
    boxed[:] = texts
    return boxed


def _from_json(data, spec: TensorSpec, shape: tuple[int, ...]) -> np.ndarray:
    if not isinstance(data, list):
        raise _bad(f'input {spec.name!r}: "data" must be a list, got {type(data).__name__}')
    dtype = DTYPES[spec.datatype]
    try:
        if spec.datatype == "BYTES":
            values = _text_array(list(_flatten(data)), spec.name)
        elif spec.datatype == "BOOL":
            values = np.asarray(data)
            if values.dtype != np.bool_:
                raise ValueError("BOOL elements must be true or false")
        else:
            values = np.asarray(data)
            if values.dtype.kind not in "iufb" or (dtype.kind in "iu" and values.dtype.kind == "f"):
                raise ValueError(f"elements must be {'integers' if dtype.kind in 'iu' else 'numbers'}")
            values = values.astype(dtype, copy=False)
    except (ValueError, TypeError, OverflowError) as exc:
        raise _bad(f"input {spec.name!r}: data is not {spec.datatype}: {exc}") from None
    if values.size != math.prod(shape):
        raise _bad(
            f"input {spec.name!r}: shape {list(shape)} holds {math.prod(shape)} elements, data has {values.size}"
        )
    return values.reshape(shape)


def _flatten(data):
    for item in data:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


def _check_shape(spec: TensorSpec, shape: tuple[int, ...], max_batch_size: int) -> None:
    if len(shape) != len(spec.shape) or any(want not in (-1, got) for want, got in zip(spec.shape, shape)):
        raise _bad(f"input {spec.name!r}: shape {list(shape)} does not fit the model's {list(spec.shape)}")
    if max_batch_size and shape[0] > max_batch_size:
        raise _bad(
            f"input {spec.name!r}: {shape[0]} rows is more than max_batch_size {max_batch_size}; split the request"
        )


def decode_infer(
    body: bytes, header_length: str | None, inputs: list[TensorSpec], outputs: list[TensorSpec], max_batch_size: int
) -> InferRequest:
    """Parse and check an infer request against the model's signature."""
    header, binary = _split_body(body, header_length)
    tensors = header.get("inputs")
    if not isinstance(tensors, list) or not tensors:
        raise _bad('the request needs a non-empty "inputs" list')
    by_name = {spec.name: spec for spec in inputs}
    arrays: dict[str, np.ndarray] = {}
    offset = 0
    for tensor in tensors:
        if not isinstance(tensor, dict) or not isinstance(tensor.get("name"), str):
            raise _bad('each input must be an object with a "name"')
        name = tensor["name"]
        spec = by_name.get(name)
        if spec is None:
            raise _bad(f"unknown input {name!r}; the model takes {sorted(by_name)}")
        if name in arrays:
            raise _bad(f"input {name!r} is given twice")
        if tensor.get("datatype") != spec.datatype:
            raise _bad(f"input {name!r}: datatype {tensor.get('datatype')!r}, the model expects {spec.datatype}")
        shape = _shape(tensor, name)
        _check_shape(spec, shape, max_batch_size)
        parameters = tensor.get("parameters") or {}
        if not isinstance(parameters, dict):
            raise _bad(f'input {name!r}: "parameters" must be an object')
        size = parameters.get("binary_data_size")
        if size is not None:
            if type(size) is not int or size < 0:
                raise _bad(f"input {name!r}: binary_data_size must be a non-negative integer")
            if offset + size > len(binary):
                raise _bad(
                    f"input {name!r}: binary_data_size {size} runs past the end of the body "
                    f"({len(binary) - offset} bytes left)"
                )
            arrays[name] = tensor_from_bytes(binary[offset : offset + size], spec, shape)
            offset += size
        elif "data" in tensor:
            arrays[name] = _from_json(tensor["data"], spec, shape)
        else:
            raise _bad(f'input {name!r} has neither "data" nor parameters.binary_data_size')
    if offset != len(binary):
        raise _bad(f"the body has {len(binary) - offset} bytes after the binary inputs it declares")
    missing = [spec.name for spec in inputs if spec.name not in arrays]
    if missing:
        raise _bad(f"missing input(s) {missing}")
    rows = {a.shape[0] if a.ndim else 1 for a in arrays.values()}
    if len(rows) > 1:
        raise _bad(f"inputs disagree on the batch size: {sorted(rows)}")

    parameters = header.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise _bad('"parameters" must be an object')
    known_outputs = {spec.name for spec in outputs}
    wanted, binary_outputs = None, set()
    if parameters.get("binary_data_output") is True:
        binary_outputs = set(known_outputs)
    if header.get("outputs") is not None:
        if not isinstance(header["outputs"], list):
            raise _bad('"outputs" must be a list')
        wanted = []
        for output in header["outputs"]:
            name = output.get("name") if isinstance(output, dict) else None
            if name not in known_outputs:
                raise _bad(f"unknown output {name!r}; the model gives {sorted(known_outputs)}")
            wanted.append(name)
            binary = (output.get("parameters") or {}).get("binary_data")
            if binary is True:
                binary_outputs.add(name)
            elif binary is False:
                binary_outputs.discard(name)
    timeout = parameters.get("timeout")
    if timeout is not None and (type(timeout) is not int or timeout < 0):
        raise _bad("parameters.timeout must be a non-negative integer of microseconds")
    request_id = header.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise _bad('"id" must be a string')
    return InferRequest(arrays, rows.pop(), request_id, wanted, binary_outputs, timeout or None)


def tensor_to_bytes(array: np.ndarray) -> bytes | bytearray:
    """The binary tensor extension's bytes: raw little-endian values, or length-prefixed BYTES."""
    if array.dtype == object or array.dtype.kind in "SU":
        out, pack = bytearray(), struct.Struct("<I").pack
        for item in array.ravel().tolist():  # appended in place: no list of parts beside the result
            raw = item if isinstance(item, bytes) else str(item).encode()
            out += pack(len(raw))
            out += raw
        return out
    return np.ascontiguousarray(array).tobytes()


def datatype_of(array: np.ndarray) -> str:
    return "BYTES" if array.dtype == object or array.dtype.kind in "SU" else DATATYPE_OF[array.dtype]


def encode_infer(
    model: str, version: str, request: InferRequest, outputs: dict[str, np.ndarray]
) -> tuple[bytes, int | None]:
    """The response body, and the JSON header's length when binary outputs follow it."""
    names = request.outputs if request.outputs is not None else list(outputs)
    described, blobs = [], []
    for name in names:
        array = outputs[name]
        entry = {"name": name, "datatype": datatype_of(array), "shape": list(array.shape)}
        if name in request.binary_outputs:
            raw = tensor_to_bytes(array)
            entry["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        elif array.dtype == object or array.dtype.kind in "SU":
            entry["data"] = [v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in array.ravel()]
        else:
            entry["data"] = np.ascontiguousarray(array).ravel()
        described.append(entry)
    response = {"model_name": model, "model_version": version, "outputs": described}
    if request.id is not None:
        response["id"] = request.id
    header = orjson.dumps(response, option=orjson.OPT_SERIALIZE_NUMPY)
    if not blobs:
        return header, None
    return b"".join([header, *blobs]), len(header)


def error_body(message: str) -> bytes:
    return orjson.dumps({"error": message})
