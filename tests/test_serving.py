"""The serving kernel on real server processes over loopback, with real HTTP clients (tritonclient too)."""

from __future__ import annotations

import gzip
import http.client
import json
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnxruntime as ort
import polars as pl
import pytest

import mlops_lab as ml
from mlops_lab.serving.protocol import ProtocolError, TensorSpec, decode_infer, encode_infer

from .onnx_models import lookup, mlp

pytestmark = pytest.mark.timeout(180)


# ---- helpers ---------------------------------------------------------------------------------


class Server:
    """``python -m mlops_lab.serving …`` on a free port; its log goes to a file."""

    def __init__(self, tmp_path: Path, *args: str, env: dict | None = None):
        import os

        self.log = tmp_path / f"server-{time.monotonic_ns()}.log"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "mlops_lab.serving", *args],
            stdout=subprocess.PIPE,
            stderr=self.log.open("wb"),
            text=True,
            env={**os.environ, **(env or {})},
        )
        line = self.process.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        assert match, f"no address in {line!r}; log: {self.log.read_text()}"
        self.port = int(match.group(1))

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body, headers or {})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()

    def infer(self, model: str, payload: dict, path_suffix: str = "", headers: dict | None = None):
        status, _, body = self.request(
            "POST", f"/v2/models/{model}{path_suffix}/infer", json.dumps(payload).encode(), headers
        )
        return status, json.loads(body)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)


def row_request(x: np.ndarray, name: str = "x", datatype: str = "FP32") -> dict:
    return {"inputs": [{"name": name, "shape": list(x.shape), "datatype": datatype, "data": x.ravel().tolist()}]}


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "small.onnx"
    path.write_bytes(mlp([16, 32, 4]))
    return path


@pytest.fixture(scope="module")
def server(small_model, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("server")
    s = Server(tmp, str(small_model), "--log-dir", str(tmp / "requests"), "--max-body-mb", "1")
    yield s
    s.stop()


def expected(model_path: Path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


# ---- the protocol, without a server --------------------------------------------------------------

SPECS = [TensorSpec("x", "FP32", (-1, 3))]
OUTS = [TensorSpec("y", "FP32", (-1, 2))]


def test_binary_and_json_inputs_decode_to_the_same_tensor():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    as_json = json.dumps(row_request(x)).encode()
    header = json.dumps(
        {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP32", "parameters": {"binary_data_size": 24}}]}
    ).encode()
    decoded_json = decode_infer(as_json, None, SPECS, OUTS, 64)
    decoded_binary = decode_infer(header + x.tobytes(), str(len(header)), SPECS, OUTS, 64)
    assert decoded_json.rows == decoded_binary.rows == 2
    np.testing.assert_array_equal(decoded_json.inputs["x"], decoded_binary.inputs["x"])
    body, length = encode_infer("m", "1", decoded_json, {"y": np.ones((2, 2), np.float32)})
    assert length is None and json.loads(body)["outputs"][0] == {
        "name": "y",
        "datatype": "FP32",
        "shape": [2, 2],
        "data": [1.0, 1.0, 1.0, 1.0],
    }


def binary_body(declared: int, sent: int, width: int = 3) -> tuple[bytes, str]:
    header = json.dumps(
        {
            "inputs": [
                {"name": "x", "shape": [1, width], "datatype": "FP32", "parameters": {"binary_data_size": declared}}
            ]
        }
    ).encode()
    return header + b"\0" * sent, str(len(header))


@pytest.mark.parametrize(
    "body, header_length, message",
    [
        (b"{not json", None, "not valid JSON"),
        (b"[]", None, "JSON object"),
        (b'{"inputs": []}', None, "non-empty"),
        (
            b'{"inputs": [{"name": "z", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}',
            None,
            "unknown input 'z'",
        ),
        (b'{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]}', None, "expects FP32"),
        (
            b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]}',
            None,
            "does not fit",
        ),
        (b'{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2]}]}', None, "data has 2"),
        (
            b'{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": ["a", "b", "c"]}]}',
            None,
            "not FP32",
        ),
        (b'{"inputs": [{"name": "x", "shape": [1, -3], "datatype": "FP32", "data": [1]}]}', None, "non-negative"),
        (b'{"inputs": [{"name": "x", "shape": [100, 3], "datatype": "FP32", "data": []}]}', None, "max_batch_size"),
        (b'{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32"}]}', None, "neither"),
        (
            b'{"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}], "outputs": [{"name": "q"}]}',
            None,
            "unknown output 'q'",
        ),
        (*binary_body(12, 8), "runs past the end"),
        (*binary_body(8, 8), "needs 12 bytes"),
        (*binary_body(12, 16), "4 bytes after"),
        (b'{"inputs": []}', "9999", "Inference-Header-Content-Length is 9999"),
        (b'{"inputs": []}', "abc", "must be an integer"),
    ],
)
def test_malformed_requests_are_refused_with_the_reason(body, header_length, message):
    with pytest.raises(ProtocolError, match=re.escape(message)) as error:
        decode_infer(body, header_length, SPECS, OUTS, 64)
    assert error.value.status == 400


# ---- a real server process -------------------------------------------------------------------------


def test_answers_match_onnxruntime_and_describe_the_model(server, small_model):
    x = np.random.default_rng(1).standard_normal((3, 16)).astype(np.float32)
    status, answer = server.infer("small", row_request(x) | {"id": "r-1"})
    assert status == 200 and answer["id"] == "r-1" and answer["model_name"] == "small"
    np.testing.assert_allclose(
        np.array(answer["outputs"][0]["data"]).reshape(3, 4), expected(small_model, x), rtol=1e-5, atol=1e-6
    )
    for path in ("/v2/health/live", "/v2/health/ready", "/v2", "/v2/models/small", "/v2/models/small/ready"):
        assert server.request("GET", path)[0] == 200, path
    metadata = json.loads(server.request("GET", "/v2/models/small")[2])
    assert metadata["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 16]}]
    assert metadata["platform"] == "onnxruntime_onnx"
    deployment = json.loads(server.request("GET", "/v2/deployment")[2])
    assert deployment["roles"]["primary"]["provider"] == "CPUExecutionProvider"  # what onnxruntime really uses


def test_standard_triton_client_works_unchanged(server, small_model):
    import tritonclient.http as triton

    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}")
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("small")
    assert client.get_model_config("small")["max_batch_size"] == 64
    x = np.random.default_rng(2).standard_normal((5, 16)).astype(np.float32)
    for binary in (True, False):
        tensor = triton.InferInput("x", list(x.shape), "FP32")
        tensor.set_data_from_numpy(x, binary_data=binary)
        result = client.infer(
            "small",
            [tensor],
            outputs=[triton.InferRequestedOutput("y", binary_data=binary)],
            request_compression_algorithm="gzip" if binary else None,
        )
        np.testing.assert_allclose(result.as_numpy("y"), expected(small_model, x), rtol=1e-5, atol=1e-6)
    stats = client.get_inference_statistics("small")["model_stats"][0]
    assert stats["inference_stats"]["success"]["count"] >= 2 and stats["inference_count"] >= 10
    with pytest.raises(Exception, match="unknown input"):
        bad = triton.InferInput("nope", [1, 16], "FP32")
        bad.set_data_from_numpy(x[:1])
        client.infer("small", [bad])


@pytest.mark.parametrize(
    "method, path, body, headers, status, message",
    [
        ("POST", "/v2/models/small/infer", b"{oops", {}, 400, "not valid JSON"),
        (
            "POST",
            "/v2/models/small/infer",
            json.dumps(row_request(np.zeros((1, 15), np.float32))).encode(),
            {},
            400,
            "does not fit",
        ),
        (
            "POST",
            "/v2/models/small/infer",
            json.dumps(row_request(np.zeros((1, 16)), datatype="INT32")).encode(),
            {},
            400,
            "expects FP32",
        ),
        (
            "POST",
            "/v2/models/small/infer",
            binary_body(64, 10, 16)[0],
            {"Inference-Header-Content-Length": binary_body(64, 10, 16)[1]},
            400,
            "runs past the end",
        ),
        (
            "POST",
            "/v2/models/small/infer",
            b'{"inputs": []}',
            {"Inference-Header-Content-Length": "500"},
            400,
            "but the body has",
        ),
        ("POST", "/v2/models/other/infer", b"{}", {}, 404, "unknown model 'other'"),
        ("POST", "/v2/models/small/versions/99/infer", b"{}", {}, 404, "version '99'"),
        ("GET", "/v2/models/small/infer", None, {}, 405, "POST"),
        ("GET", "/nowhere", None, {}, 404, "no such endpoint"),
        ("POST", "/v2/models/small/infer", b"x" * (2 << 20), {}, 413, "larger than"),
        (
            "POST",
            "/v2/models/small/infer",
            gzip.compress(b" " * (2 << 20)),
            {"Content-Encoding": "gzip"},
            413,
            "decompressed body",
        ),
        ("POST", "/v2/models/small/infer", b"not gzip", {"Content-Encoding": "gzip"}, 400, "cannot be decompressed"),
    ],
)
def test_bad_requests_get_a_clear_4xx_and_the_server_keeps_serving(
    server, method, path, body, headers, status, message
):
    got, _, answer = server.request(method, path, body, headers)
    assert got == status and message in json.loads(answer)["error"]
    x = np.ones((1, 16), np.float32)
    assert server.infer("small", row_request(x))[0] == 200


def test_malformed_http_is_answered_and_does_not_hurt_others(server):
    import socket

    with socket.create_connection(("127.0.0.1", server.port)) as raw:
        raw.sendall(b"BLAH /v2 HTTP/1.1\r\nContent-Length: zz\r\n\r\n")
        assert raw.recv(1000).startswith(b"HTTP/1.1 400")
    with socket.create_connection(("127.0.0.1", server.port)) as raw:  # a body cut short, then a hang-up
        raw.sendall(b'POST /v2/models/small/infer HTTP/1.1\r\nContent-Length: 500\r\n\r\n{"inputs"')
    assert server.request("GET", "/v2/health/ready")[0] == 200


def test_concurrent_rows_are_batched_and_each_gets_its_own_answer(server, small_model):
    rng = np.random.default_rng(3)
    rows = rng.standard_normal((256, 16)).astype(np.float32)
    before = json.loads(server.request("GET", "/v2/models/small/stats")[2])["model_stats"][0]

    def one(i):
        status, answer = server.infer("small", row_request(rows[i : i + 1]))
        assert status == 200
        return np.array(answer["outputs"][0]["data"], dtype=np.float32)

    with ThreadPoolExecutor(32) as pool:
        answers = np.stack(list(pool.map(one, range(len(rows)))))
    np.testing.assert_allclose(answers, expected(small_model, rows), rtol=1e-5, atol=1e-6)
    after = json.loads(server.request("GET", "/v2/models/small/stats")[2])["model_stats"][0]
    executions = after["execution_count"] - before["execution_count"]
    assert after["inference_count"] - before["inference_count"] == 256 and executions < 256  # batches formed
    metrics = server.request("GET", "/metrics")[2].decode()
    for name in (
        "nv_inference_request_success",
        "nv_inference_request_failure",
        "nv_inference_count",
        "nv_inference_exec_count",
        "nv_inference_queue_duration_us",
        "nv_inference_compute_infer_duration_us",
    ):
        assert f'{name}{{model="small"' in metrics


def test_a_request_the_model_fails_on_does_not_fail_its_batch(tmp_path):
    model = tmp_path / "lookup.onnx"
    model.write_bytes(lookup())
    server = Server(tmp_path, str(model), "--log-sample", "0", "--max-queue-delay-us", "20000")
    try:

        def one(i):
            index = 30 if i % 7 == 0 else i % 10  # 30 is out of the table: onnxruntime fails on it
            status, answer = server.infer("lookup", row_request(np.array([[index]]), "idx", "INT64"))
            return i, index, status, answer

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(one, range(64)))
        for _, index, status, answer in results:
            if index == 30:
                assert status == 400 and "model failed on this request" in answer["error"]
            else:
                assert status == 200 and answer["outputs"][0]["data"] == [index * 10.0]
        stats = json.loads(server.request("GET", "/v2/models/lookup/stats")[2])["model_stats"][0]
        assert stats["retried_batches"] >= 1  # bad and good requests really were in one batch
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("models") / "slow.onnx"
    path.write_bytes(mlp([512, 2048, 2048, 2048, 10]))
    return path


def test_overload_is_refused_quickly_and_timeouts_are_kept(slow_model, tmp_path):
    server = Server(tmp_path, str(slow_model), "--log-sample", "0", "--max-queue-size", "2", "--max-batch-size", "1")
    x = np.zeros((1, 512), np.float32)
    try:

        def one(_):
            started = time.perf_counter()
            status, answer = server.infer("slow", row_request(x))
            return status, time.perf_counter() - started, answer

        with ThreadPoolExecutor(24) as pool:
            results = list(pool.map(one, range(48)))
        refused = [r for r in results if r[0] == 503]
        assert refused and all("overloaded" in r[2]["error"] for r in refused)
        assert {r[0] for r in results} <= {200, 503}
        # a refusal does not wait for the queue: typically faster than an answer (medians: with 24
        # client threads on two cores, one refusal can be scheduled late, so not the slowest of each)
        answered = [r[1] for r in results if r[0] == 200]
        assert statistics.median(r[1] for r in refused) < statistics.median(answered)
        # per-request timeouts (Triton's parameters.timeout, microseconds)
        with ThreadPoolExecutor(8) as pool:
            timed = list(
                pool.map(lambda _: server.infer("slow", row_request(x) | {"parameters": {"timeout": 1000}}), range(8))
            )
        assert any(status == 503 and "time" in answer["error"] for status, answer in timed)
        assert server.infer("slow", row_request(x))[0] == 200  # still serving
    finally:
        assert server.stop() == 0


def test_sigterm_drains_requests_in_flight(slow_model, tmp_path):
    server = Server(tmp_path, str(slow_model), "--log-sample", "0", "--max-batch-size", "64")
    body = json.dumps(row_request(np.zeros((64, 512), np.float32))).encode()  # ~15 ms each: a queue builds

    def one(_):
        status, _, _ = server.request("POST", "/v2/models/slow/infer", body)
        return status, time.monotonic()

    def arrived() -> int:  # answered, queued or running
        state = json.loads(server.request("GET", "/v2/deployment")[2])
        role = state["roles"]["primary"]
        return state["stats"][0]["inference_stats"]["success"]["count"] + role["pending"] + role["running"]

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(one, i) for i in range(16)]
        deadline = time.monotonic() + 20
        while arrived() < 16 and time.monotonic() < deadline:
            time.sleep(0.002)
        signalled = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        results = [f.result() for f in futures]
    assert [status for status, _ in results] == [200] * 16
    assert any(done > signalled for _, done in results)  # some were still in flight at the signal
    assert server.process.wait(30) == 0
    with pytest.raises(ConnectionRefusedError):
        server.request("GET", "/v2/health/live")


def test_a_token_is_required_when_set(small_model, tmp_path):
    server = Server(tmp_path, str(small_model), "--log-sample", "0", env={"MLOPS_LAB_SERVE_TOKEN": "s3cret-token"})
    try:
        payload = json.dumps(row_request(np.zeros((1, 16), np.float32))).encode()
        assert server.request("POST", "/v2/models/small/infer", payload)[0] == 401
        assert server.request("POST", "/v2/models/small/infer", payload, {"Authorization": "Bearer wrong"})[0] == 401
        assert server.request("GET", "/metrics")[0] == 401
        assert server.request("GET", "/v2/health/ready")[0] == 200  # probes stay open
        ok = server.request("POST", "/v2/models/small/infer", payload, {"Authorization": "Bearer s3cret-token"})
        assert ok[0] == 200
    finally:
        server.stop()


def test_request_log_feeds_the_drift_service(small_model, tmp_path):
    folder = tmp_path / "requests"
    server = Server(tmp_path, str(small_model), "--log-dir", str(folder))
    rng = np.random.default_rng(4)
    shifted = rng.standard_normal((300, 16)).astype(np.float32) + 2.0
    for start in range(0, 300, 30):
        assert server.infer("small", row_request(shifted[start : start + 30]))[0] == 200
    assert server.stop() == 0  # the log is flushed on the way out
    from mlops_lab.serving.request_log import read_request_log

    logged = read_request_log(folder)
    assert logged.height == 300 and set(logged["@role"]) == {"primary"}
    assert {"@timestamp", "@model_version", "@latency_us", "x_0", "x_15", "y_0", "y_3"} <= set(logged.columns)
    np.testing.assert_allclose(logged.select([f"x_{j}" for j in range(16)]).to_numpy(), shifted)
    reference = pl.DataFrame({f"x_{j}": rng.standard_normal(300) for j in range(16)})
    report = ml.drift(reference, logged, columns=[f"x_{j}" for j in range(16)])
    assert report.dataset_drift


# ---- the registry: versions, canary, shadow, hot swap ----------------------------------------------


@pytest.fixture
def two_versions(tracker):
    """``churn`` v1 and v2: logistic regressions that disagree on some rows."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    X = rng.standard_normal((400, 4)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
    with ml.start_run("v1") as run1:
        ml.log_model(LogisticRegression(C=0.001).fit(X, y), "model", input_example=pl.DataFrame(X, schema=list("abcd")))
    with ml.start_run("v2") as run2:
        ml.log_model(
            LogisticRegression(C=100).fit(X, 1 - y), "model", input_example=pl.DataFrame(X, schema=list("abcd"))
        )
    ml.flush()
    ml.register("churn", run1.id)
    ml.register("churn", run2.id)
    ml.set_alias("churn", "live", 1)
    ml.set_alias("churn", "candidate", 2)
    return X


def registry_args(tracker) -> list[str]:
    return ["--db-url", tracker.location.db_url, "--artifacts", tracker.location.artifacts]


def test_alias_change_hot_swaps_without_dropping_requests(workspace, tracker, two_versions, tmp_path):
    X = two_versions
    server = Server(tmp_path, "churn@live", "--watch-seconds", "0.2", *registry_args(tracker))
    payload = row_request(X[:2], "input")
    versions, failures, stop = [], [], threading.Event()

    def load():
        while not stop.is_set():
            status, answer = server.infer("churn", payload)
            (versions if status == 200 else failures).append(answer.get("model_version", answer))

    try:
        threads = [threading.Thread(target=load) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        ml.set_alias("churn", "live", 2, comment="promote v2")
        deadline = time.time() + 20
        while time.time() < deadline and (not versions or versions[-1] != "2"):
            time.sleep(0.1)
        time.sleep(0.3)
        stop.set()
        for t in threads:
            t.join()
        assert not failures and versions[0] == "1" and versions[-1] == "2"
        described = json.loads(server.request("GET", "/v2/deployment")[2])
        assert any(e["event"] == "swapped" and "1 → 2" in e["detail"] for e in described["events"])
        swaps = [e["payload"] for e in workspace.store.events.events("deployment", "churn") if e["kind"] == "swapped"]
        assert [(s["previous"], s["version"]) for s in swaps] == [("1", "2")]  # recorded once, in the store
    finally:
        assert server.stop() == 0


def test_canary_gets_its_share_and_shadow_is_compared_not_returned(tracker, two_versions, tmp_path):
    X = two_versions
    folder = tmp_path / "requests"
    server = Server(
        tmp_path,
        "churn@live",
        "--canary",
        "churn/2",
        "--canary-share",
        "0.3",
        "--shadow",
        "churn@candidate",
        "--log-dir",
        str(folder),
        *registry_args(tracker),
    )
    answered = []
    for i in range(200):
        status, answer = server.infer("churn", row_request(X[i : i + 1], "input"))
        assert status == 200
        answered.append(answer["model_version"])
    share = answered.count("2") / len(answered)
    assert 0.15 < share < 0.45  # 30 % ± noise of 200 draws
    pinned = server.infer("churn", row_request(X[:1], "input"), "/versions/1")[1]
    assert pinned["model_version"] == "1"
    time.sleep(0.3)
    shadow = json.loads(server.request("GET", "/v2/deployment")[2])["shadow"]
    assert shadow["compared"] >= 190 and shadow["disagreed"] > 0  # v2 learned the opposite labels
    assert (shadow["rows_compared"], shadow["rows_disagreed"]) == (shadow["compared"], shadow["disagreed"])
    sent = 0  # requests of ten rows until one reaches the primary (a canary's answer agrees with the shadow's)
    while sent < 30:
        sent += 1
        if server.infer("churn", row_request(X[:10], "input"))[1]["model_version"] == "1":
            break
    time.sleep(0.3)
    after = json.loads(server.request("GET", "/v2/deployment")[2])["shadow"]
    assert after["compared"] == shadow["compared"] + sent
    assert after["rows_compared"] == shadow["rows_compared"] + 10 * sent  # counted by request and by row
    assert 1 <= after["rows_disagreed"] - shadow["rows_disagreed"] <= 10 * sent
    assert "mlops_lab_shadow_disagreed_total" in server.request("GET", "/metrics")[2].decode()
    assert server.stop() == 0
    from mlops_lab.serving.request_log import read_request_log

    served, mirrored = read_request_log(folder), read_request_log(folder, shadow=True)
    assert served.height == 201 + 10 * sent and set(served["@role"]) == {"primary", "canary"}  # a line per row
    assert mirrored.height >= 200 and set(mirrored["@model_version"]) == {"2"}
    assert {"a", "b", "c", "d", "label"} <= set(served.columns)  # registered input columns name the features


def test_a_version_that_cannot_be_served_is_refused_at_start(tracker, two_versions, tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "mlops_lab.serving", "churn@nowhere", *registry_args(tracker)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "no alias 'nowhere'" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "mlops_lab.serving", str(tmp_path / "missing.onnx")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and "no such model file" in result.stderr


# ---- batch inference ------------------------------------------------------------------------------


def test_predict_scores_files_in_chunks(small_model, tmp_path):
    rng = np.random.default_rng(6)
    frame = pl.DataFrame({"id": np.arange(2500), **{f"f{i}": rng.standard_normal(2500) for i in range(16)}})
    frame.write_parquet(tmp_path / "rows.parquet")
    frame.write_csv(tmp_path / "rows.csv")
    truth = expected(small_model, frame.drop("id").to_numpy().astype(np.float32))
    for source, target in (("rows.parquet", "out.parquet"), ("rows.csv", "out.csv")):
        result = ml.predict(str(small_model), tmp_path / source, tmp_path / target, chunk_rows=1000, keep=["id"])
        assert result["rows"] == 2500 and result["chunks"] >= 3
        out = pl.read_parquet(tmp_path / target) if target.endswith(".parquet") else pl.read_csv(tmp_path / target)
        assert out["id"].to_list() == list(range(2500))
        np.testing.assert_allclose(out.select([f"y_{j}" for j in range(4)]).to_numpy(), truth, rtol=1e-4, atol=1e-5)


def test_predict_refuses_bad_input_and_leaves_outputs_alone(small_model, tmp_path):
    from mlops_lab.serving.predict import PredictError

    pl.DataFrame({"a": [1.0, 2.0]}).write_parquet(tmp_path / "narrow.parquet")
    (tmp_path / "kept.parquet").write_bytes(b"previous results")
    cases = [
        (tmp_path / "narrow.parquet", tmp_path / "kept.parquet", "takes 16 columns"),
        (tmp_path / "missing.parquet", tmp_path / "kept.parquet", "no such file"),
        (tmp_path / "narrow.parquet", tmp_path / "out.txt", "use a .parquet or .csv"),
    ]
    for source, target, message in cases:
        with pytest.raises(PredictError, match=message):
            ml.predict(str(small_model), source, target)
    assert (tmp_path / "kept.parquet").read_bytes() == b"previous results"
    assert not list(tmp_path.glob(".*partial"))


def test_cli_predict(small_model, tmp_path):
    pl.DataFrame({f"f{i}": np.ones(10) for i in range(16)}).write_parquet(tmp_path / "in.parquet")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops_lab.cli",
            "predict",
            str(small_model),
            str(tmp_path / "in.parquet"),
            str(tmp_path / "out.parquet"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and "10 rows scored" in result.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlops_lab.cli",
            "predict",
            str(small_model),
            str(tmp_path / "nope.parquet"),
            str(tmp_path / "out.parquet"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "no such file" in bad.stderr


# ---- the manager the lab runs ----------------------------------------------------------------------


def test_manager_restarts_a_crashed_server_and_stops_it(small_model, tmp_path):
    from mlops_lab.serving.manager import ServingError, ServingManager
    from mlops_lab.workspace import default_workspace

    manager = ServingManager(default_workspace(), check_seconds=0.1)
    try:
        manager.start(str(small_model), name="small", log_sample=0.0)
        first = manager.wait_ready("small")
        with pytest.raises(ServingError, match="already being served"):
            manager.start(str(small_model), name="small")
        first_pid = first["pid"]
        import os

        os.kill(first_pid, signal.SIGKILL)
        deadline = time.time() + 30
        while time.time() < deadline:
            summary = manager.list()[0]
            if summary["state"] == "ready" and summary["pid"] != first_pid:
                break
            time.sleep(0.1)
        assert summary["restarts"] == 1 and summary["port"] == first["port"]  # same URL after the restart
        events = [e["event"] for e in summary["events"]]
        assert events.index("crashed") < len(events) - 1 and events[-1] == "ready"
        assert "serving small" in manager.log("small")
        detail = manager.get("small")
        assert detail["server"]["roles"]["primary"]["provider"] == "CPUExecutionProvider"
        stopped = manager.stop("small")
        assert stopped["state"] == "stopped" and stopped["last_exit"] == 0
        recorded = [(e["kind"], e["user"]) for e in manager.history("small")]  # in the store, with who
        assert recorded == [
            ("requested", "tester"),
            ("started", "watcher"),
            ("ready", "watcher"),
            ("crashed", "watcher"),
            ("started", "watcher"),
            ("ready", "watcher"),
            ("stop", "tester"),
            ("stopped", "watcher"),
        ]
    finally:
        manager.shutdown()


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m: m.start(""), "model must be"),
        (lambda m: m.start("--help"), "model must be"),
        (lambda m: m.start("x.onnx", name="../evil"), "deployment name"),
        (lambda m: m.start("x.onnx", canary_share=2.0), "between 0 and 1"),
        (lambda m: m.start("x.onnx", max_batch_size="lots"), "must be a number"),
        (lambda m: m.start("x.onnx", rm_rf=True), "unknown serving option"),
        (lambda m: m.start("x.onnx", canary="--cpu"), "model reference"),
        (lambda m: m.stop("never-started"), "no deployment named"),
    ],
)
def test_manager_refuses_bad_requests(call, message):
    from mlops_lab.serving.manager import ServingManager
    from mlops_lab.workspace import default_workspace

    manager = ServingManager(default_workspace())
    try:
        with pytest.raises((ValueError, LookupError), match=message):
            call(manager)
        assert manager.list() == []
    finally:
        manager.shutdown()


def test_a_server_that_fails_to_start_is_not_restarted(tmp_path):
    from mlops_lab.serving.manager import ServingError, ServingManager
    from mlops_lab.workspace import default_workspace

    manager = ServingManager(default_workspace(), check_seconds=0.1)
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    try:
        manager.start(str(broken), name="broken")
        with pytest.raises(ServingError, match="failed"):
            manager.wait_ready("broken", timeout=60)
        time.sleep(0.5)
        summary = manager.list()[0]
        assert summary["state"] == "failed" and summary["restarts"] == 0
        manager.remove("broken")  # a failed deployment can be removed; its history stays
        assert manager.list() == [] and manager.history("broken")[-1]["kind"] == "removed"
    finally:
        manager.shutdown()


def test_an_unknown_model_fails_before_a_process_starts(small_model, tmp_path, tracker):
    from mlops_lab.errors import NotFoundError
    from mlops_lab.serving.manager import ServingError, ServingManager
    from mlops_lab.workspace import default_workspace

    manager = ServingManager(default_workspace(), check_seconds=0.1)
    try:
        for model, options, message in [
            ("churn@production", {}, "no registered model|no model|not found|has no"),
            (str(tmp_path / "missing.onnx"), {}, "no such model file"),
            (str(small_model), {"canary": "churn/7"}, "churn"),
            (str(small_model), {"shadow": str(tmp_path / "gone.onnx")}, "no such model file"),
        ]:
            with pytest.raises(NotFoundError, match=message):
                manager.start(model, name="nothing", **options)
            assert manager.list() == [] and not (manager.root / "nothing").exists()  # no process, no folder
        manager.start(str(small_model), name="running")
        manager.wait_ready("running")
        with pytest.raises(ServingError, match="stop it before removing it"):
            manager.remove("running")
        manager.stop("running")
        manager.remove("running")
        assert manager.list() == []
        with pytest.raises(NotFoundError):
            manager.remove("running")
    finally:
        manager.shutdown()


def test_serve_magic_says_an_unknown_model_in_one_line(tracker, capsys):
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "mlops_lab")
    with pytest.raises(UsageError, match=r"^%serve: .*churn") as info:
        shell.run_line_magic("serve", "churn@production")
    assert "\n" not in str(info.value) and info.value.__cause__ is None


def test_serve_magic_and_api_outside_a_lab(small_model):
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "mlops_lab")
    served = shell.run_line_magic("serve", f"{small_model} --name magic --max-batch-size 8")
    try:
        assert served.status()["state"] == "ready"
        x = np.random.default_rng(7).standard_normal((3, 16)).astype(np.float32)
        np.testing.assert_allclose(served.predict(x), expected(small_model, x), rtol=1e-5, atol=1e-6)
        listing = shell.run_line_magic("serve", "--list")
        assert listing.loc[listing["name"] == "magic", "state"].item() == "ready"
        assert "ready" in served._repr_html_()
        served.rollout(shadow=str(small_model))
        assert set(served.status()["server"]["roles"]) == {"primary", "shadow"}
    finally:
        assert shell.run_line_magic("serve", "--stop magic") == "stopped"


def test_request_log_rotates_samples_and_refuses_bad_rates(tmp_path):
    from mlops_lab.serving.request_log import RequestLog, read_request_log

    log = RequestLog(tmp_path, flush_seconds=3600, max_files=2)
    try:
        for i in range(3):
            log.record(
                "1",
                "primary",
                f"r{i}",
                100,
                {"x": np.full((2, 3), i, np.float32)},
                {"label": np.array([i, i])},
                ["a", "b", "c"],
            )
            assert log.flush() is not None
        assert len(list(tmp_path.glob("requests-*.parquet"))) == 2  # the oldest file rotated away
        frame = read_request_log(tmp_path)
        assert frame["@request_id"].to_list() == ["r1", "r1", "r2", "r2"] and frame["a"].to_list() == [1, 1, 2, 2]
    finally:
        log.close()
    never = RequestLog(tmp_path / "none", sample=0.0)
    assert not any(never.wanted() for _ in range(100))
    never.close()
    with pytest.raises(ValueError, match="between 0 and 1"):
        RequestLog(tmp_path, sample=1.5)
    with pytest.raises(FileNotFoundError):
        read_request_log(tmp_path / "none")


def test_client_orders_a_frames_columns_as_registered(tracker, two_versions, tmp_path):
    from mlops_lab.serving.client import ServingClient

    X = two_versions
    server = Server(tmp_path, "churn/1", "--log-sample", "0", *registry_args(tracker))
    try:
        client = ServingClient(f"http://127.0.0.1:{server.port}", "churn")
        assert client.metadata()["parameters"]["input_columns"] == list("abcd")
        frame = pl.DataFrame(X[:50], schema=list("abcd"))
        in_order = client.predict(frame)
        np.testing.assert_array_equal(client.predict(frame.select(list("dcba"))), in_order)
        np.testing.assert_array_equal(in_order, ml.load_model("churn/1").predict(X[:50]))
        with pytest.raises(ValueError, match=r"needs columns \['d'\]"):
            client.predict(frame.drop("d"))
    finally:
        server.stop()


def test_rollout_changes_canary_and_shadow_while_serving(tracker, two_versions, tmp_path):
    X = two_versions
    server = Server(
        tmp_path,
        "churn@live",
        "--log-sample",
        "0",
        *registry_args(tracker),
        env={"MLOPS_LAB_SERVE_ADMIN_TOKEN": "admin-secret"},
    )
    admin = {"Authorization": "Bearer admin-secret"}

    def rollout(body, headers=admin):
        status, _, answer = server.request("POST", "/v2/deployment/rollout", json.dumps(body).encode(), headers)
        return status, json.loads(answer)

    def answered_by() -> set[str]:
        return {server.infer("churn", row_request(X[i : i + 1], "input"))[1]["model_version"] for i in range(20)}

    try:
        assert rollout({"canary": "churn/2", "canary_share": 1.0}, {})[0] == 403
        assert rollout({"canary": "churn/2", "canary_share": 1.0}, {"Authorization": "Bearer guess"})[0] == 403
        for body, message in [
            ({"canary": "churn/2", "canary_share": 2}, "between 0 and 1"),
            ({"canary_share": 0.5}, "needs a canary"),
            ({"canary": "churn/9", "canary_share": 0.5}, "9"),
            ({"canary": 5}, "model reference"),
            ({"replicas": 3}, "a rollout is"),
        ]:
            status, answer = rollout(body)
            assert status == 400 and message in answer["error"], body
        assert answered_by() == {"1"}  # the refused changes changed nothing
        assert rollout({"canary": "churn/2", "canary_share": 1.0, "shadow": "churn@candidate"})[0] == 200
        assert answered_by() == {"2"}
        roles = json.loads(server.request("GET", "/v2/deployment")[2])["roles"]
        assert set(roles) == {"primary", "canary", "shadow"}
        assert rollout({"canary": None, "canary_share": 0, "shadow": None})[0] == 200
        assert answered_by() == {"1"}
        assert set(json.loads(server.request("GET", "/v2/deployment")[2])["roles"]) == {"primary"}
    finally:
        assert server.stop() == 0


def test_manager_rollout_is_recorded_and_survives_a_restart(small_model, tmp_path):
    from mlops_lab.serving.manager import ServingError, ServingManager
    from mlops_lab.workspace import default_workspace

    other = tmp_path / "other.onnx"
    other.write_bytes(mlp([16, 8, 4], seed=1))
    manager = ServingManager(default_workspace(), check_seconds=0.1)
    try:
        manager.start(str(small_model), name="small", log_sample=0.0)
        first = manager.wait_ready("small")
        with pytest.raises(ServingError, match="between 0 and 1"):
            manager.rollout("small", canary=str(other), canary_share=3)
        manager.rollout("small", canary=str(other), canary_share=0.25)
        assert manager.get("small")["server"]["roles"]["canary"]["spec"] == str(other)
        import os

        os.kill(first["pid"], signal.SIGKILL)  # a restart keeps the rollout
        deadline = time.time() + 30
        while time.time() < deadline and not (manager.list()[0]["state"] == "ready" and manager.list()[0]["restarts"]):
            time.sleep(0.1)
        server = manager.get("small")["server"]
        assert server["canary_share"] == 0.25 and server["roles"]["canary"]["spec"] == str(other)
        (rollout,) = [e for e in manager.history("small") if e["kind"] == "rollout"]
        assert rollout["user"] == "tester" and rollout["payload"]["canary_share"] == 0.25
    finally:
        manager.shutdown()


def test_the_store_password_is_not_on_a_serving_process_command_line(small_model, tmp_path, pg_url):
    """`ps` shows every user a process's arguments; the store's location goes by environment."""
    from mlops_lab.config import StoreLocation
    from mlops_lab.serving.manager import ServingManager
    from mlops_lab.workspace import Workspace

    secret_url = pg_url.replace("postgres@", "postgres:hunter2@")  # trust auth takes any password
    workspace = Workspace(StoreLocation(secret_url, str(tmp_path / "artifacts"), "test"))
    manager = ServingManager(workspace, check_seconds=0.1)
    try:
        summary = manager.start(str(small_model), name="quiet", log_sample=0.0)
        manager.wait_ready("quiet")
        pid = manager.get("quiet")["pid"] or summary["pid"]
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        environment = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        assert "hunter2" not in command_line and "--db-url" not in command_line
        assert f"MLOPS_LAB_DB_URL={secret_url}".encode() in environment
        assert all("hunter2" not in e["payload"].get("detail", "") for e in manager.history("quiet"))
    finally:
        manager.shutdown()


def test_the_request_log_keeps_features_named_like_its_own_columns_and_stays_small(tmp_path):
    """A feature called timestamp or role keeps its values; a wide tensor is one column; a huge one is not logged."""
    from mlops_lab.serving.request_log import MAX_LOGGED_BYTES, RequestLog, read_request_log

    log = RequestLog(tmp_path / "requests", flush_seconds=3600)
    table = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32)
    log.record("1", "primary", "a", 10, {"input": table}, {"y": np.array([0, 1])}, ["timestamp", "role"])
    wide = np.zeros((1, 100_000), dtype=np.float32)  # 391 KiB: once a 100,006-column file
    log.record("1", "primary", "b", 10, {"x": wide}, {"y": np.array([1])}, None)
    huge = np.empty(2_000_000, dtype=object)  # 2 million empty strings
    huge[:] = b""
    assert huge.nbytes > MAX_LOGGED_BYTES
    log.record("1", "primary", "c", 10, {"text": huge.reshape(1, -1)}, {"y": np.array([1])}, None)
    log.close()
    [path] = list((tmp_path / "requests").glob("*.parquet"))
    frame = read_request_log(tmp_path / "requests")
    assert frame.height == 4 and len(frame.columns) < 20
    first = frame.filter(pl.col("@request_id") == "a")
    assert first["timestamp"].to_list() == [1.0, 3.0] and first["role"].to_list() == [2.0, 4.0]
    assert set(first["@role"]) == {"primary"}
    assert frame.filter(pl.col("@request_id") == "b")["x"].dtype == pl.Array(pl.Float32, (100_000,))
    skipped = frame.filter(pl.col("@request_id") == "c")
    assert skipped["@tensors_logged"].to_list() == [False] and "text" not in frame.columns
    assert path.stat().st_size < 2 * MAX_LOGGED_BYTES


def _rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))


def _read_answer(raw: socket.socket, timeout: float = 10.0) -> bytes:
    raw.settimeout(timeout)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = raw.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_oversized_urls_and_headers_are_refused_and_not_kept(small_model, tmp_path):
    server = Server(tmp_path, str(small_model), "--log-sample", "0")
    try:
        before = _rss_kb(server.process.pid)
        status, _, body = server.request("GET", "/v2/health/ready?" + "a" * 20_000)
        assert status == 414 and "URL is longer" in json.loads(body)["error"]
        for _ in range(8):  # 64 MB of headers in all: each request refused at 16 KiB
            with socket.create_connection(("127.0.0.1", server.port)) as raw:
                raw.sendall(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (8 << 20) + b"\r\n\r\n")
                assert _read_answer(raw).startswith(b"HTTP/1.1 431")
        many = {f"X-{i}": "1" for i in range(150)}
        assert server.request("GET", "/v2/health/live", headers=many)[0] == 431
        assert _rss_kb(server.process.pid) - before < 64 << 10  # well under the 64 MB sent
        assert server.request("GET", "/v2/health/live")[0] == 200  # and still serving
        status, _, body = server.request("GET", "/v2/models/small", headers={"Authorization": "Bearer ä"})
        assert status == 200  # no token required here: the non-ASCII header is just a header
    finally:
        assert server.stop() == 0


def test_slow_and_idle_clients_do_not_hold_sockets_and_connections_are_capped(small_model, tmp_path):
    server = Server(
        tmp_path, str(small_model), "--log-sample", "0", "--request-timeout", "1", "--idle-timeout", "2",
        "--max-connections", "4",
    )  # fmt: skip
    try:
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n")  # slowloris: the headers never end
        assert _read_answer(slow).startswith(b"HTTP/1.1 408")
        assert slow.recv(1) == b""  # and closed
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(4)]
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", server.port)) as fifth:
            assert _read_answer(fifth).startswith(b"HTTP/1.1 503")  # over the cap: refused at once
        started = time.monotonic()
        for sock in idle:  # idle keep-alive connections are closed after the idle timeout
            sock.settimeout(10)
            assert sock.recv(1) == b""
        assert time.monotonic() - started < 5
        assert server.request("GET", "/v2/health/live")[0] == 200  # room again
    finally:
        assert server.stop() == 0


@pytest.fixture(scope="module")
def echo_model(tmp_path_factory) -> Path:
    """A model that gives back its text input: what goes in is what the model saw."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["text"], ["same"])],
        "echo",
        [helper.make_tensor_value_info("text", TensorProto.STRING, [None, None])],
        [helper.make_tensor_value_info("same", TensorProto.STRING, [None, None])],
    )
    model = tmp_path_factory.mktemp("models") / "echo.onnx"
    model.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    onnx.checker.check_model(str(model))
    return model


def _binary_bytes(items: list[bytes]) -> bytes:
    return b"".join(len(item).to_bytes(4, "little") + item for item in items)


def test_text_reaches_the_model_as_text_in_json_and_binary(echo_model, tmp_path):
    words = ["a", "héllo", "", "日本語", "x" * 300, "tab\tand\nnewline", "trailing nul\x00"]
    server = Server(tmp_path, str(echo_model))
    try:
        status, answer = server.infer("echo", {"inputs": [{"name": "text", "shape": [1, 7], "datatype": "BYTES",
                                                            "data": words}]})  # fmt: skip
        assert status == 200, answer
        assert answer["outputs"][0]["data"] == words  # was: "b'h\\xc3\\xa9llo'", the repr of bytes
        for items in ([w.encode() for w in words], [b"ab"] * 5 + [b"cd"] * 2, [b"\xc3\xa9"] * 7):
            blob = _binary_bytes(items)  # the second: equal lengths, the vectorised path
            header = json.dumps({"inputs": [{"name": "text", "shape": [1, 7], "datatype": "BYTES",
                                             "parameters": {"binary_data_size": len(blob)}}],
                                 "outputs": [{"name": "same", "parameters": {"binary_data": True}}]}).encode()  # fmt: skip
            status, headers, body = server.request(
                "POST", "/v2/models/echo/infer", header + blob, {"Inference-Header-Content-Length": str(len(header))}
            )
            assert status == 200, body
            size = int(headers["Inference-Header-Content-Length"])
            assert body[size:] == blob  # byte for byte what was sent
        bad = _binary_bytes([b"ok", b"\xff\xfe"])  # not UTF-8: ONNX strings are text
        header = json.dumps({"inputs": [{"name": "text", "shape": [1, 2], "datatype": "BYTES",
                                         "parameters": {"binary_data_size": len(bad)}}]}).encode()  # fmt: skip
        status, _, body = server.request(
            "POST", "/v2/models/echo/infer", header + bad, {"Inference-Header-Content-Length": str(len(header))}
        )
        assert status == 400 and "UTF-8" in json.loads(body)["error"]
    finally:
        assert server.stop() == 0


def test_a_large_bytes_request_costs_bounded_memory_and_does_not_stall_others(echo_model, tmp_path):
    """2 million strings in one 9 MB request: decoded on a worker thread, not logged, memory bounded."""
    server = Server(tmp_path, str(echo_model), "--max-batch-size", "0", "--max-body-mb", "16")
    try:
        count = 2_000_000
        blob = b"\x01\x00\x00\x00a" * count  # binary BYTES: each a 4-byte length and one byte
        header = json.dumps(
            {"inputs": [{"name": "text", "shape": [1, count], "datatype": "BYTES",
                         "parameters": {"binary_data_size": len(blob)}}],
             "outputs": [{"name": "same", "parameters": {"binary_data": True}}]}
        ).encode()  # fmt: skip
        before = _rss_kb(server.process.pid)
        peak = [before]
        live = []
        done = threading.Event()

        def watch():
            while not done.is_set():
                peak.append(_rss_kb(server.process.pid))
                live.append(server.request("GET", "/v2/health/live")[0])
                time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()
        status, headers, body = server.request(
            "POST", "/v2/models/echo/infer", header + blob,
            {"Inference-Header-Content-Length": str(len(header)), "Content-Type": "application/octet-stream"},
        )  # fmt: skip
        done.set()
        watcher.join()
        assert status == 200, body[:300]
        grown_mb = (max(peak) - before) / 1024
        body_mb = (len(header) + len(blob)) / 2**20
        print(f"BYTES request of {body_mb:.1f} MB: RSS grew {grown_mb:.0f} MB ({grown_mb / body_mb:.1f}x the body)")
        assert grown_mb < 20 * body_mb  # was: past 5 GB, then 35x; most of it now onnxruntime's own strings
        assert live and all(code == 200 for code in live)  # the event loop kept answering meanwhile
    finally:
        assert server.stop() == 0


def test_a_deployment_log_is_rotated_when_it_grows_large(small_model, tmp_path):
    from mlops_lab.serving.manager import LOG_BYTES, ServingManager
    from mlops_lab.workspace import default_workspace

    manager = ServingManager(default_workspace(), check_seconds=0.1)
    old = manager.root / "rotated" / "server.log"
    old.parent.mkdir(parents=True, exist_ok=True)
    old.write_bytes(b"x" * (LOG_BYTES + 1))  # what a noisy client made an earlier server write
    try:
        manager.start(str(small_model), name="rotated", log_sample=0.0)
        manager.wait_ready("rotated")
        assert old.stat().st_size < LOG_BYTES and old.with_name("server.log.1").stat().st_size == LOG_BYTES + 1
    finally:
        manager.shutdown()


def test_a_large_refused_body_is_answered_and_counted_like_a_small_one(server):
    """Bodies over 256 KiB are decoded on a worker thread; the refusal and its count still arrive."""

    def invalid() -> int:
        status, _, body = server.request("GET", "/v2/models/small/stats")
        return json.loads(body)["model_stats"][0]["failures"].get("invalid", 0)

    before = invalid()
    for size in (1_000, 400_000):  # decoded inline, then aside
        padding = " " * size
        status, _, body = server.request("POST", "/v2/models/small/infer", b'{"inputs": [' + padding.encode() + b"")
        assert status == 400 and "JSON" in json.loads(body)["error"]
    assert invalid() == before + 2
