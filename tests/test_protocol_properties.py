"""Any request body the v2 decoders are given ends as a decoded request or a 4xx ProtocolError:
never another exception (a 500), and never more memory or time than the body warrants."""

from __future__ import annotations

import json
import struct
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from mlops_lab.serving.protocol import ProtocolError, TensorSpec, decode_infer

INPUTS = [TensorSpec("x", "FP32", (-1, 3)), TensorSpec("s", "BYTES", (-1, 1))]
OUTPUTS = [TensorSpec("y", "FP32", (-1, 2))]


def decodes_or_refuses(body: bytes, header_length: str | None) -> None:
    started = time.perf_counter()
    try:
        request = decode_infer(body, header_length, INPUTS, OUTPUTS, 64)
    except ProtocolError as exc:
        assert 400 <= exc.status < 500, exc
    else:
        assert set(request.inputs) == {"x", "s"} and request.rows <= 64
        assert sum(a.nbytes for a in request.inputs.values()) <= 64 * max(len(body), 1)
    assert time.perf_counter() - started < 1.0


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def tensor(name: str, datatype: str) -> st.SearchStrategy:
    return st.fixed_dictionaries(
        {"name": st.just(name) | st.text(max_size=3), "datatype": st.just(datatype) | st.text(max_size=5)},
        optional={
            "shape": st.lists(st.integers(-3, 70), max_size=3) | JSON_VALUES,
            "data": st.lists(st.floats(allow_nan=False, width=32) | st.text(max_size=3), max_size=9) | JSON_VALUES,
            "parameters": st.fixed_dictionaries({}, optional={"binary_data_size": st.integers(-5, 64)}) | JSON_VALUES,
        },
    )


REQUESTS = st.fixed_dictionaries(
    {"inputs": st.lists(tensor("x", "FP32") | tensor("s", "BYTES"), max_size=3) | JSON_VALUES},
    optional={"outputs": JSON_VALUES | st.just([{"name": "y"}]), "parameters": JSON_VALUES, "id": JSON_VALUES},
)


@settings(max_examples=400, deadline=None)
@given(request=REQUESTS | JSON_VALUES)
def test_any_json_request_decodes_or_is_a_4xx(request):
    decodes_or_refuses(json.dumps(request).encode(), None)


@settings(max_examples=400, deadline=None)
@given(request=REQUESTS, blob=st.binary(max_size=200), declared=st.integers(-3, 300) | st.none())
def test_any_binary_request_decodes_or_is_a_4xx(request, blob, declared):
    header = json.dumps(request).encode()
    length = str(len(header) if declared is None else declared)
    decodes_or_refuses(header + blob, length)


@settings(max_examples=200, deadline=None)
@given(lengths=st.lists(st.integers(0, 2**32 - 1), max_size=6), size=st.integers(0, 64))
def test_bytes_elements_that_lie_about_their_length_are_refused(lengths, size):
    blob = b"".join(struct.pack("<I", n) + b"a" * min(n, 3) for n in lengths)
    header = json.dumps(
        {
            "inputs": [
                {"name": "x", "datatype": "FP32", "shape": [1, 3], "data": [1, 2, 3]},
                {"name": "s", "datatype": "BYTES", "shape": [1, 1], "parameters": {"binary_data_size": size}},
            ]
        }  # fmt: skip
    ).encode()
    decodes_or_refuses(header + blob[:size], str(len(header)))


def test_garbage_is_refused():
    for body, length in [(b"", None), (b"\xff\xfe", None), (b"[]", None), (b"{}", "-1"), (b"{}", "x"),
                         (b'{"inputs": [1]}', "999999999999")]:  # fmt: skip
        decodes_or_refuses(body, length)


@settings(max_examples=300, deadline=None)
@given(elements=st.lists(st.binary(max_size=6) | st.text(max_size=4).map(str.encode), min_size=1, max_size=8))
def test_binary_bytes_are_the_text_they_encode_or_a_4xx(elements):
    """What reaches the model is each element's UTF-8 text, exactly (NULs and empties included)."""
    blob = b"".join(struct.pack("<I", len(e)) + e for e in elements)
    header = json.dumps(
        {
            "inputs": [
                {"name": "x", "datatype": "FP32", "shape": [len(elements), 3], "data": [0.0] * 3 * len(elements)},
                {
                    "name": "s",
                    "datatype": "BYTES",
                    "shape": [len(elements), 1],
                    "parameters": {"binary_data_size": len(blob)},
                },
            ]
        }  # fmt: skip
    ).encode()
    try:
        texts = [e.decode() for e in elements]
    except UnicodeDecodeError:
        texts = None
    try:
        request = decode_infer(header + blob, str(len(header)), INPUTS, OUTPUTS, 64)
    except ProtocolError as exc:
        assert texts is None and exc.status == 400 and "UTF-8" in exc.message
    else:
        assert request.inputs["s"].ravel().tolist() == texts
