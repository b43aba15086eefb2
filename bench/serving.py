"""Serving throughput and latency: our server against a plain server and against its own HTTP ceiling.

    python bench/serving.py                      # small and large MLP, 64 single-row clients
    python bench/serving.py --clients 256 --rows 64 --gpu   # on a lent GPU

Servers, each its own process, one at a time, on loopback:
- plain:   the usual aiohttp recipe — parse the v2 JSON, ``session.run`` once per request, answer
           (same onnxruntime session settings as ours, so only the serving differs);
- ceiling: our server with the model call replaced by ready-made outputs (HTTP + batching path);
- uvicorn: the same routes, batcher and ready-made outputs behind uvicorn (a raw ASGI app on
           httptools and uvloop, no framework): is a well-kept HTTP server as fast as our front?
- ours:    ``python -m mlops_lab.serving`` as shipped (JSON requests, then binary tensors).
The load generator is another process (uvloop, keep-alive, one request at a time per client),
bounded in requests and seconds.  Printed: req/s, rows/s, p50, p99, mean batch, and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mlops_lab.net import free_port

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # the models the tests use
PYTHON = sys.executable


# ---- load generator (its own process) ---------------------------------------------------------


class _Client(asyncio.Protocol):
    def __init__(self, request: bytes, shared: dict):
        self.request, self.shared = request, shared
        self.buffer = bytearray()
        self.started = 0.0

    def connection_made(self, transport):
        self.transport = transport
        self._send()

    def _send(self):
        shared = self.shared
        if shared["sent"] >= shared["limit"] or time.perf_counter() > shared["deadline"]:
            self.transport.close()
            return
        shared["sent"] += 1
        self.started = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data):
        self.buffer += data
        end = self.buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        length = int(re.search(rb"(?i)content-length:\s*(\d+)", self.buffer[:end]).group(1))
        if len(self.buffer) < end + 4 + length:
            return
        status = int(self.buffer[9:12])
        self.shared["latencies"].append(time.perf_counter() - self.started)
        if status != 200:
            self.shared["errors"] += 1
        del self.buffer[: end + 4 + length]
        self._send()

    def connection_lost(self, exc):
        self.shared["open"] -= 1
        if self.shared["open"] == 0:
            self.shared["done"].set_result(None)


async def _load(port: int, request: bytes, clients: int, limit: int, seconds: float) -> dict:
    loop = asyncio.get_running_loop()
    shared = {
        "sent": 0,
        "limit": limit,
        "deadline": time.perf_counter() + seconds,
        "latencies": [],
        "errors": 0,
        "open": clients,
        "done": loop.create_future(),
    }
    start = time.perf_counter()
    for _ in range(clients):
        await loop.create_connection(lambda: _Client(request, shared), "127.0.0.1", port)
    await shared["done"]
    elapsed = time.perf_counter() - start
    lat = np.array(shared["latencies"]) * 1000
    return {
        "requests": len(lat),
        "errors": shared["errors"],
        "seconds": elapsed,
        "rps": len(lat) / elapsed,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
    }


def load_main(args) -> None:
    import uvloop

    request = Path(args.request).read_bytes()
    result = uvloop.run(_load(args.port, request, args.clients, args.limit, args.seconds))
    print(json.dumps(result))


def run_load(port: int, request_file: str, clients: int, limit: int, seconds: float) -> dict:
    out = subprocess.run(
        [
            PYTHON,
            __file__,
            "load",
            "--port",
            str(port),
            "--request",
            request_file,
            "--clients",
            str(clients),
            "--limit",
            str(limit),
            "--seconds",
            str(seconds),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


# ---- requests --------------------------------------------------------------------------------


def http_request(path: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def json_request(model: str, x: np.ndarray) -> bytes:
    body = json.dumps(
        {"inputs": [{"name": "x", "shape": list(x.shape), "datatype": "FP32", "data": x.ravel().tolist()}]}
    ).encode()
    return http_request(f"/v2/models/{model}/infer", body)


def binary_request(model: str, x: np.ndarray) -> bytes:
    raw = x.astype(np.float32).tobytes()
    header = json.dumps(
        {
            "inputs": [
                {"name": "x", "shape": list(x.shape), "datatype": "FP32", "parameters": {"binary_data_size": len(raw)}}
            ],
            "outputs": [{"name": "y", "parameters": {"binary_data": True}}],
        }
    ).encode()
    return http_request(
        f"/v2/models/{model}/infer", header + raw, f"Inference-Header-Content-Length: {len(header)}\r\n"
    )


# ---- servers (each its own process) ------------------------------------------------------------


def session(model_path: str, threads: int, gpu: bool):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if gpu else ["CPUExecutionProvider"]
    return ort.InferenceSession(model_path, options, providers=providers)


def plain_main(args) -> None:
    from aiohttp import web

    sess = session(args.model, args.threads, args.gpu)
    name = Path(args.model).stem

    async def infer(request):
        body = await request.json()
        outputs = []
        feeds = {t["name"]: np.asarray(t["data"], dtype=np.float32).reshape(t["shape"]) for t in body["inputs"]}
        for out, value in zip(sess.get_outputs(), sess.run(None, feeds)):
            outputs.append(
                {"name": out.name, "datatype": "FP32", "shape": list(value.shape), "data": value.ravel().tolist()}
            )
        return web.json_response({"model_name": name, "outputs": outputs})

    app = web.Application(client_max_size=64 << 20)
    app.router.add_post(f"/v2/models/{name}/infer", infer)
    web.run_app(app, host="127.0.0.1", port=args.port, print=lambda *a: print("ready", flush=True), access_log=None)


def ceiling_main(args) -> None:
    """Our server as shipped, except that the model call returns ready-made outputs."""
    from mlops_lab.serving.process import main

    _ready_made_outputs()
    sys.exit(main(sys.argv[2:]))


def _ready_made_outputs() -> None:
    """Make the model call return outputs computed once: what is left is HTTP, JSON and batching."""
    from mlops_lab.serving import runtime

    real_init = runtime.ModelRuntime.__init__

    def init(self, *a, **kw):
        real_init(self, *a, **kw)
        answers = self.run(self.example(max(1, self.max_batch_size) * 4))
        self.run = lambda feeds: {k: v[: len(next(iter(feeds.values())))] for k, v in answers.items()}

    runtime.ModelRuntime.__init__ = init


def uvicorn_main(args) -> None:
    """The ceiling's routes and batcher as a raw ASGI app under uvicorn (httptools, uvloop)."""
    import uvicorn

    from mlops_lab.serving.deployment import Deployment, ServeOptions
    from mlops_lab.serving.httpserver import InferenceServer, Reply
    from mlops_lab.serving.protocol import ProtocolError
    from mlops_lab.serving.runtime import CPU

    _ready_made_outputs()
    state: dict = {}

    class Answer(Reply):
        def __init__(self, future):
            self.future, self.keep_alive, self.data = future, True, None

        def send(self, status, body, content_type=b"application/json", headers=b""):
            if not self.future.done():
                self.future.set_result((status, content_type, body))

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    options = ServeOptions(max_batch_size=args.max_batch_size, intra_op_threads=args.threads,
                                           providers=[CPU], log_sample=0.0)  # fmt: skip
                    deployment = Deployment(args.model, loop=asyncio.get_running_loop(), options=options)
                    deployment.load()
                    state["server"] = InferenceServer(deployment)
                    state["server"].ready = True
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        future = asyncio.get_running_loop().create_future()
        reply = Answer(future)
        try:
            state["server"].handle(scope["method"].encode(), scope["raw_path"], headers, body, reply)
        except ProtocolError as exc:
            reply.error(exc.status, exc.message)
        status, content_type, data = await future
        head = [(b"content-type", content_type), (b"content-length", str(len(data)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": head})
        await send({"type": "http.response.body", "body": data})

    uvicorn.run(app, host="127.0.0.1", port=args.port, http="httptools", loop="uvloop", log_level="warning",
                access_log=False, lifespan="on")  # fmt: skip


def start(command: list[str], port: int) -> subprocess.Popen:
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"server exited: {' '.join(command)}") from None
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def stats_of(port: int, model: str) -> dict:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/{model}/stats") as response:
        return json.loads(response.read())["model_stats"][0]


def measure(kind: str, model_path: str, requests: dict[str, bytes], args, tmp: Path) -> dict:
    port = free_port()
    name = Path(model_path).stem
    ours = [
        "--port",
        str(port),
        "--threads",
        str(args.threads),
        "--log-sample",
        "0",
        "--max-batch-size",
        str(args.max_batch_size),
    ] + ([] if args.gpu else ["--cpu"])
    command = {
        "plain": [PYTHON, __file__, "plain", "--model", model_path, "--port", str(port), "--threads", str(args.threads)]
        + (["--gpu"] if args.gpu else []),
        "ceiling": [PYTHON, __file__, "ceiling", model_path, *ours],
        "uvicorn": [
            PYTHON,
            __file__,
            "uvicorn",
            "--model",
            model_path,
            "--port",
            str(port),
            "--threads",
            str(args.threads),
            "--max-batch-size",
            str(args.max_batch_size),
        ],  # fmt: skip
        "ours": [PYTHON, "-m", "mlops_lab.serving", model_path, *ours],
    }[kind]
    process = start(command, port)
    results = {}
    try:
        for encoding, request in requests.items():
            if kind == "plain" and encoding == "binary":
                continue
            path = tmp / f"{name}-{encoding}.http"
            path.write_bytes(request)
            run_load(port, str(path), args.clients, 2000, 2)  # warm up
            before = stats_of(port, name) if kind != "plain" else None
            result = run_load(port, str(path), args.clients, args.requests, args.seconds)
            if before is not None:
                after = stats_of(port, name)
                executions = after["execution_count"] - before["execution_count"]
                result["mean_batch"] = (after["inference_count"] - before["inference_count"]) / max(1, executions)
            results[encoding] = result
    finally:
        process.terminate()
        process.wait(30)
    return results


def in_process_rows_per_s(
    model_path: str, width: int, batch: int, threads: int, gpu: bool, seconds: float = 2.0
) -> float:
    """onnxruntime alone, in this process, at ``batch`` rows a call: the most any server could give."""
    sess = session(model_path, threads, gpu)
    x = np.random.default_rng(1).standard_normal((batch, width)).astype(np.float32)
    for _ in range(3):
        sess.run(None, {"x": x})
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        sess.run(None, {"x": x})
        calls += 1
    return calls * batch / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--rows", type=int, default=1, help="rows per request")
    parser.add_argument("--requests", type=int, default=60_000, help="bound on requests per measurement")
    parser.add_argument("--seconds", type=float, default=8.0, help="bound on seconds per measurement")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads, same for all")
    parser.add_argument("--max-batch-size", type=int, default=64)
    parser.add_argument("--gpu", action="store_true")
    parser.add_argument("--models", default="small,large")
    parser.add_argument("--uvicorn", action="store_true", help="also the ceiling behind uvicorn (bench extra)")
    args = parser.parse_args()

    from onnx_models import mlp

    shapes = {"small": [16, 64, 64, 4], "large": [512, 2048, 2048, 10]}
    rng = np.random.default_rng(0)
    print(
        f"{args.clients} clients × {args.rows} row(s) per request, loopback, {os.cpu_count()} cores; "
        f"onnxruntime threads {args.threads}; {'GPU' if args.gpu else 'CPU'}"
    )
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for model in args.models.split(","):
            path = tmp / f"{model}.onnx"
            path.write_bytes(mlp(shapes[model]))
            x = rng.standard_normal((args.rows, shapes[model][0])).astype(np.float32)
            requests = {"json": json_request(model, x), "binary": binary_request(model, x)}
            kinds = ("plain", "ceiling", *(["uvicorn"] if args.uvicorn else []), "ours")
            table = {kind: measure(kind, str(path), requests, args, tmp) for kind in kinds}
            print(f"\n{model} MLP {shapes[model]}")
            print(f"  {'server':18} {'req/s':>9} {'rows/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'batch':>6} {'errors':>6}")
            for kind, by_encoding in table.items():
                for encoding, r in by_encoding.items():
                    print(
                        f"  {kind + ' ' + encoding:18} {r['rps']:9.0f} {r['rps'] * args.rows:10.0f} {r['p50_ms']:8.2f} "
                        f"{r['p99_ms']:8.2f} {r.get('mean_batch', 1.0):6.1f} {r['errors']:6d}"
                    )
            plain = table["plain"]["json"]
            for encoding in ("json", "binary"):
                ours, ceiling = table["ours"][encoding], table["ceiling"][encoding]
                batch = max(1, round(ours["mean_batch"] * args.rows))
                compute = in_process_rows_per_s(str(path), shapes[model][0], batch, args.threads, args.gpu)
                print(
                    f"  ours {encoding}: {ours['rps'] / plain['rps']:.2f}× plain req/s (goal ≥ 2×), "
                    f"p99 {ours['p99_ms']:.2f} vs {plain['p99_ms']:.2f} ms; "
                    f"{100 * ours['rps'] / ceiling['rps']:.0f}% of its HTTP ceiling (goal ≥ 80%); "
                    f"rows/s {100 * ours['rps'] * args.rows / compute:.0f}% of in-process onnxruntime at "
                    f"batch {batch} ({compute:,.0f} rows/s)"
                )
                if args.uvicorn:
                    print(f"  uvicorn {encoding}: {100 * table['uvicorn'][encoding]['rps'] / ceiling['rps']:.0f}% "
                          "of our front's ceiling (same routes, batcher and ready-made outputs)")  # fmt: skip


if __name__ == "__main__":
    modes = {"load": load_main, "plain": plain_main, "uvicorn": uvicorn_main}
    if len(sys.argv) > 1 and sys.argv[1] == "ceiling":
        ceiling_main(None)
    elif len(sys.argv) > 1 and sys.argv[1] in modes:
        sub = argparse.ArgumentParser()
        sub.add_argument("mode")
        for flag in ("--port", "--clients", "--limit", "--threads", "--max-batch-size"):
            sub.add_argument(flag, type=int, default=1)
        sub.add_argument("--seconds", type=float)
        sub.add_argument("--request")
        sub.add_argument("--model")
        sub.add_argument("--gpu", action="store_true")
        modes[sys.argv[1]](sub.parse_args())
    else:
        main()
