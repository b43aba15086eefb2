"""The serving process's HTTP front: a lean asyncio protocol over httptools.

Per request the cost that matters is HTTP parsing and JSON, not the model (the batcher amortises
that), so the front is an ``asyncio.Protocol`` with the C parser of httptools, orjson, keep-alive
and in-order pipelining — no framework between the socket and the route.  Responses to one
connection are written in the order its requests came, whatever order the batches finish in.

Limits, each answered as Triton and Envoy do: a URL over ``max_url_bytes`` (414), headers over
``max_header_bytes`` or ``max_headers`` (431), a body over ``max_body_bytes`` (413), a request not
fully read within ``request_timeout`` seconds (408, then closed), a keep-alive connection idle for
``idle_timeout`` seconds (closed), more than ``max_connections`` at once (503, then closed).  Bodies
over ``OFFLOAD_BYTES`` are decompressed and decoded on a worker thread, so one large request never
holds the event loop that every other client is waiting on.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
import zlib
from collections import deque
from contextlib import contextmanager
from http import HTTPStatus

import httptools
import orjson

from ..version import __version__
from .batcher import Job
from .deployment import Deployment, ServedVersion
from .metrics import label, prometheus_text
from .protocol import HEADER_LENGTH, InferRequest, ProtocolError, decode_infer, encode_infer, error_body

log = logging.getLogger("mlops_lab.serving")
REASONS = {s.value: s.phrase for s in HTTPStatus}
JSON = b"application/json"
OPEN_PATHS = {"/v2/health/live", "/v2/health/ready"}  # probes need no token
FAILURE_REASONS = {400: "invalid", 413: "invalid", 503: "unavailable"}
OFFLOAD_BYTES = 256 << 10  # bodies larger than this are decoded off the event loop


class _Refused(Exception):
    """Raised inside a parser callback to stop reading a request that breaks a limit."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


@contextmanager
def answering(reply: "Reply"):
    """Whatever a request's handling raises becomes its answer: a refusal with its status, a bug of
    ours a 500 (logged) — the server keeps serving either way."""
    try:
        yield
    except ProtocolError as exc:
        reply.error(exc.status, exc.message)
    except Exception as exc:
        log.exception("request failed")
        reply.error(500, f"internal error: {type(exc).__name__}: {exc}")


def _same(given: str, expected: str) -> bool:
    """A constant-time comparison that takes any header value (``hmac`` refuses non-ASCII str)."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape"))


class Reply:
    """A response slot: the connection writes slots in the order their requests arrived."""

    __slots__ = ("connection", "keep_alive", "data")

    def __init__(self, connection: "Connection", keep_alive: bool):
        self.connection, self.keep_alive, self.data = connection, keep_alive, None

    def send(self, status: int, body: bytes, content_type: bytes = JSON, headers: bytes = b"") -> None:
        head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s%s\r\n" % (
            status,
            REASONS.get(status, "Unknown").encode(),
            content_type,
            len(body),
            headers,
            b"" if self.keep_alive else b"Connection: close\r\n",
        )
        self.data = head + body
        self.connection.flush()

    def error(self, status: int, message: str) -> None:
        self.send(status, error_body(message))


class Connection(asyncio.Protocol):
    def __init__(self, app: "InferenceServer"):
        self.app = app
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.replies: deque[Reply] = deque()
        self.paused = False
        self.discarding = False  # after a 413: read and drop the rest of the body, so the client sees the answer
        self.url = b""
        self.headers: dict[str, str] = {}
        self.header_bytes = 0
        self.body: list[bytes] = []
        self.size = 0
        self.last_activity = time.monotonic()
        self.request_started: float | None = None  # while a request is being read
        self.head_bytes = 0  # read since the last boundary of a request while no body was being read
        self.in_body = False
        self.boundary = False

    # asyncio
    def connection_made(self, transport):
        self.transport = transport
        if len(self.app.connections) >= self.app.max_connections:
            transport.write(
                b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(self.app.busy_body), self.app.busy_body)
            )
            transport.close()
            self.transport = None
            return
        self.app.connections.add(self)

    def connection_lost(self, exc):
        self.app.connections.discard(self)
        self.transport = None

    def data_received(self, data: bytes):
        self.last_activity = time.monotonic()
        if self.discarding or self.transport is None:
            return
        try:
            self.boundary = False
            self.parser.feed_data(data)
            # httptools holds a header until it ends: the limit is kept here, on what is read so far
            self.head_bytes = 0 if self.boundary else self.head_bytes + (0 if self.in_body else len(data))
            if self.head_bytes > self.app.max_url_bytes + self.app.max_header_bytes:
                self.discarding = True  # the rest is read and dropped, so the client gets to read the 431
                self._fail(431, f"the headers exceed {self.app.max_header_bytes} bytes")
        except httptools.HttpParserUpgrade:
            self._fail(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            refused = exc.__context__
            if isinstance(refused, _Refused):
                self.discarding = refused.status in (413, 414, 431)  # read and drop the rest: the client sees why
                self._fail(refused.status, refused.message)
            else:
                self._fail(400, f"malformed HTTP request: {exc}")

    def timed_out(self) -> None:
        """The request being read took too long (a slow or stalled client): 408, then close."""
        self.request_started = None
        self._fail(408, f"the request was not received within {self.app.request_timeout:g} s")

    def _fail(self, status: int, message: str) -> None:
        reply = Reply(self, keep_alive=False)
        self.replies.append(reply)
        reply.error(status, message)
        if self.transport is not None and not self.discarding:
            self.transport.pause_reading()

    # httptools callbacks
    def on_message_begin(self):
        self.url, self.headers, self.header_bytes, self.body, self.size = b"", {}, 0, [], 0
        self.request_started = time.monotonic()

    def on_url(self, url: bytes):
        self.url += url
        if len(self.url) > self.app.max_url_bytes:
            raise _Refused(414, f"the URL is longer than {self.app.max_url_bytes} bytes")

    def on_header(self, name: bytes, value: bytes):
        self.header_bytes += len(name) + len(value)
        if self.header_bytes > self.app.max_header_bytes or len(self.headers) >= self.app.max_headers:
            raise _Refused(
                431, f"the headers exceed {self.app.max_header_bytes} bytes or {self.app.max_headers} fields"
            )
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self):
        self.in_body, self.boundary = True, True
        length = self.headers.get("content-length")
        if length and length.isdigit() and int(length) > self.app.max_body_bytes:
            raise _Refused(413, f"the request body is larger than {self.app.max_body_bytes} bytes")
        # 100 Continue only when this request is next to be answered: never before an earlier reply
        if self.headers.get("expect", "").lower() == "100-continue" and not self.replies:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes):
        self.size += len(body)
        if self.size > self.app.max_body_bytes:
            raise _Refused(413, f"the request body is larger than {self.app.max_body_bytes} bytes")
        self.body.append(body)

    def on_message_complete(self):
        self.request_started = None
        self.in_body, self.boundary = False, True
        reply = Reply(self, self.parser.should_keep_alive() and not self.app.draining)
        self.replies.append(reply)
        if len(self.replies) > 32 and not self.paused:  # a client pipelining without reading
            self.paused = True
            self.transport.pause_reading()
        body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
        with answering(reply):
            self.app.handle(self.parser.get_method(), self.url, self.headers, body, reply)

    def flush(self) -> None:
        replies, transport = self.replies, self.transport
        while replies and replies[0].data is not None:
            reply = replies.popleft()
            if transport is None:
                continue
            transport.write(reply.data)
            if not reply.keep_alive:
                if self.discarding:  # the client closes once it has read the answer; if not, we do
                    asyncio.get_running_loop().call_later(10, transport.close)
                else:
                    transport.close()
                self.transport = transport = None
        if self.paused and len(replies) <= 8 and transport is not None:
            self.paused = False
            transport.resume_reading()

    @property
    def idle(self) -> bool:
        return not self.replies


class InferenceServer:
    """Routes of the Open Inference Protocol v2 onto one deployment."""

    def __init__(
        self,
        deployment: Deployment,
        *,
        token: str | None = None,
        admin_token: str | None = None,
        max_body_bytes: int = 64 << 20,
        max_url_bytes: int = 8 << 10,
        max_header_bytes: int = 16 << 10,
        max_headers: int = 100,
        request_timeout: float = 30.0,
        idle_timeout: float = 75.0,
        max_connections: int = 1024,
    ):
        self.deployment = deployment
        self.token = f"Bearer {token}" if token else None
        self.admin_token = f"Bearer {admin_token}" if admin_token else None  # for whoever runs the process
        self.max_body_bytes = max_body_bytes
        self.max_url_bytes, self.max_header_bytes, self.max_headers = max_url_bytes, max_header_bytes, max_headers
        self.request_timeout, self.idle_timeout = request_timeout, idle_timeout
        self.max_connections = max_connections
        self.busy_body = error_body(f"this server holds its limit of {max_connections} connections; retry later")
        self.connections: set[Connection] = set()
        self.draining = False
        self.ready = False

    def sweep(self) -> None:
        """Close what holds a socket for nothing: requests read too slowly, keep-alive connections idle
        too long (a connection waiting for the model's answer is neither).  Run every second."""
        now = time.monotonic()
        for connection in list(self.connections):
            if connection.transport is None or connection.replies:
                continue
            if connection.request_started is not None:
                if now - connection.request_started > self.request_timeout:
                    connection.timed_out()
            elif now - connection.last_activity > self.idle_timeout:
                connection.transport.close()

    def handle(self, method: bytes, url: bytes, headers: dict[str, str], body: bytes, reply: Reply) -> None:
        path = url.split(b"?", 1)[0].decode("latin-1").rstrip("/")
        if path == "/v2/deployment/rollout":
            return self._rollout(method, headers, body, reply)
        if self.token and path not in OPEN_PATHS and not _same(headers.get("authorization", ""), self.token):
            return reply.send(
                401,
                error_body("this server needs Authorization: Bearer <token>"),
                headers=b'WWW-Authenticate: Bearer realm="mlops-lab"\r\n',
            )
        parts = path.split("/")[1:]
        if parts[:1] == ["metrics"] and len(parts) == 1:
            return self._get(method, reply, lambda: self._metrics(), b"text/plain; version=0.0.4")
        if parts[:1] != ["v2"]:
            raise ProtocolError(404, f"no such endpoint: {path or '/'}")
        rest = parts[1:]
        if not rest:
            return self._get(method, reply, self._server_metadata)
        if rest == ["health", "live"]:
            return self._get(method, reply, lambda: {"live": True})
        if rest == ["health", "ready"]:
            if not self.ready or self.draining:
                raise ProtocolError(503, "not ready: " + ("draining" if self.draining else "loading"))
            return self._get(method, reply, lambda: {"ready": True})
        if rest == ["deployment"]:
            return self._get(method, reply, self.deployment.describe)
        if rest == ["models", "stats"]:
            return self._get(method, reply, lambda: self._stats(None, None))
        if rest == ["repository", "index"] and method == b"POST":
            return reply.send(
                200,
                orjson.dumps(
                    [{"name": self.deployment.name, "version": v, "state": "READY"} for v in self.deployment.versions()]
                ),
            )
        if len(rest) >= 2 and rest[0] == "models":
            model, version, action = rest[1], None, rest[2:]
            if action[:1] == ["versions"] and len(action) >= 2:
                version, action = action[1], action[2:]
            if action == ["infer"]:
                if method != b"POST":
                    raise ProtocolError(405, "infer takes POST")
                return self._infer(model, version, headers, body, reply)
            served, _ = self.deployment.route(model, version)
            if not action:
                return self._get(method, reply, lambda: self._model_metadata(served, version))
            if action == ["ready"]:
                return self._get(method, reply, lambda: {"name": model, "ready": self.ready})
            if action == ["config"]:
                return self._get(method, reply, lambda: self._model_config(served))
            if action == ["stats"]:
                return self._get(method, reply, lambda: self._stats(model, version))
        raise ProtocolError(404, f"no such endpoint: {path}")

    def _get(self, method: bytes, reply: Reply, make, content_type: bytes = JSON) -> None:
        if method != b"GET":
            raise ProtocolError(405, f"{method.decode()} is not allowed here; use GET")
        value = make()
        body = value.encode() if isinstance(value, str) else orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
        reply.send(200, body, content_type)

    # ---- metadata ----------------------------------------------------------------------------

    def _server_metadata(self) -> dict:
        return {
            "name": "mlops-lab",
            "version": __version__,
            "extensions": ["binary_tensor_data", "statistics", "model_repository"],
        }

    def _model_metadata(self, served: ServedVersion, version: str | None) -> dict:
        runtime = served.runtime
        metadata = {
            "name": self.deployment.name,
            "versions": [version] if version else self.deployment.versions(),
            "platform": "onnxruntime_onnx",
            "inputs": [s.as_dict() for s in runtime.inputs],
            "outputs": [s.as_dict() for s in runtime.outputs],
        }
        if runtime.input_columns:  # the registered feature names, in the order the model takes them
            metadata["parameters"] = {"input_columns": runtime.input_columns}
        return metadata

    def _model_config(self, served: ServedVersion) -> dict:
        runtime, options = served.runtime, self.deployment.options

        def tensor(spec):
            data_type = "TYPE_STRING" if spec.datatype == "BYTES" else f"TYPE_{spec.datatype}"
            return {
                "name": spec.name,
                "data_type": data_type,
                "dims": list(spec.shape[1:] if runtime.max_batch_size else spec.shape),
            }

        return {
            "name": self.deployment.name,
            "platform": "onnxruntime_onnx",
            "backend": "onnxruntime",
            "max_batch_size": runtime.max_batch_size,
            "dynamic_batching": {
                "max_queue_delay_microseconds": options.max_queue_delay_us,
                "default_queue_policy": {"max_queue_size": options.max_queue_size},
            },
            "input": [tensor(s) for s in runtime.inputs],
            "output": [tensor(s) for s in runtime.outputs],
            "instance_group": [{"kind": "KIND_GPU" if runtime.provider.startswith("CUDA") else "KIND_CPU", "count": 1}],
        }

    def _stats(self, model: str | None, version: str | None) -> dict:
        if model is not None and model != self.deployment.name:
            raise ProtocolError(404, f"unknown model {model!r}")
        chosen = [s for s in self.deployment.stats.values() if version is None or s.version == version]
        if version is not None and not chosen:
            raise ProtocolError(404, f"no statistics for version {version!r} of {model!r}")
        return {"model_stats": [s.as_triton() for s in chosen]}

    def _metrics(self) -> str:
        deployment = self.deployment
        pending = {(deployment.name, s.runtime.version): s.batcher.pending for s in deployment.served.values()}
        shadow = deployment.shadow
        model = label(deployment.name)
        extra = (
            []
            if "shadow" not in deployment.served
            else [
                "# TYPE mlops_lab_shadow_compared_total counter",
                f'mlops_lab_shadow_compared_total{{model="{model}"}} {shadow.compared}',
                "# TYPE mlops_lab_shadow_disagreed_total counter",
                f'mlops_lab_shadow_disagreed_total{{model="{model}"}} {shadow.disagreed}',
                "# TYPE mlops_lab_shadow_max_abs_diff gauge",
                f'mlops_lab_shadow_max_abs_diff{{model="{model}"}} {shadow.max_abs_diff}',
            ]
        )
        return prometheus_text(list(deployment.stats.values()), pending, extra)

    # ---- changes by whoever runs the process -------------------------------------------------

    def _rollout(self, method: bytes, headers: dict[str, str], body: bytes, reply: Reply) -> None:
        """``POST /v2/deployment/rollout {"canary", "canary_share", "shadow"}`` with the admin token."""
        if self.admin_token is None or not _same(headers.get("authorization", ""), self.admin_token):
            raise ProtocolError(403, "changing the rollout needs the admin token of whoever started this server")
        if method != b"POST":
            raise ProtocolError(405, "rollout takes POST")
        try:
            change = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise ProtocolError(400, f"the request body is not valid JSON: {exc}") from None
        if not isinstance(change, dict) or set(change) - {"canary", "canary_share", "shadow"}:
            raise ProtocolError(400, "a rollout is an object with canary, canary_share and shadow")
        for key in ("canary", "shadow"):
            if change.get(key) is not None and not isinstance(change[key], str):
                raise ProtocolError(400, f"{key} must be a model reference or null")

        async def apply():
            try:
                result = await asyncio.get_running_loop().run_in_executor(
                    None,
                    lambda: self.deployment.rollout(
                        canary=change.get("canary"),
                        canary_share=change.get("canary_share", 0.0),
                        shadow=change.get("shadow"),
                    ),
                )
            except (ValueError, LookupError, RuntimeError) as exc:  # nothing was changed
                return reply.error(400, str(exc))
            reply.send(200, orjson.dumps(result))

        asyncio.ensure_future(apply())

    # ---- inference ---------------------------------------------------------------------------

    def _infer(self, model: str, version: str | None, headers: dict[str, str], body: bytes, reply: Reply) -> None:
        arrived = time.perf_counter_ns()
        if self.draining:
            raise ProtocolError(503, "the server is shutting down")
        served, shadow = self.deployment.route(model, version)

        def decoded(request: InferRequest | ProtocolError) -> None:
            # on the event loop: statistics are only ever counted here (metrics.py takes no lock)
            if isinstance(request, ProtocolError):
                served.stats.request_done(time.perf_counter_ns() - arrived, "invalid")
                raise request
            self._submit(model, served, shadow, request, arrived, reply)

        if len(body) <= OFFLOAD_BYTES:
            return decoded(self._decode(served.runtime, headers, body))

        async def decode_aside():  # a large body: decoded on a worker thread while others are served
            with answering(reply):
                loop = asyncio.get_running_loop()
                decoded(await loop.run_in_executor(None, self._decode, served.runtime, headers, body))

        asyncio.ensure_future(decode_aside())

    def _decode(self, runtime, headers: dict[str, str], body: bytes) -> InferRequest | ProtocolError:
        """The request, or why it is refused (returned, not raised: it may run on a worker thread)."""
        try:
            body = self._decompress(body, headers.get("content-encoding"))
            return decode_infer(
                body, headers.get(HEADER_LENGTH), runtime.inputs, runtime.outputs, runtime.max_batch_size
            )
        except ProtocolError as exc:
            return exc

    def _submit(
        self,
        model: str,
        served: ServedVersion,
        shadow: ServedVersion | None,
        request: InferRequest,
        arrived: int,
        reply: Reply,
    ) -> None:
        runtime, stats = served.runtime, served.stats
        timeout_us = request.timeout_us or self.deployment.options.request_timeout_us
        deadline = arrived + timeout_us * 1000 if timeout_us else None
        request_log = self.deployment.request_log
        logged = request_log is not None and request_log.wanted()
        pair = [None, None] if shadow is not None else None  # primary's and shadow's outputs

        def done(outputs, error: ProtocolError | None):
            duration = time.perf_counter_ns() - arrived
            if error is not None:
                stats.request_done(duration, FAILURE_REASONS.get(error.status, "model"))
                return reply.error(error.status, error.message)
            body, header_length = encode_infer(model, runtime.version, request, outputs)
            if header_length is None:
                reply.send(200, body)
            else:
                reply.send(
                    200, body, b"application/octet-stream", b"Inference-Header-Content-Length: %d\r\n" % header_length
                )
            stats.request_done(duration, None)
            if logged:
                request_log.record(
                    runtime.version,
                    served.role,
                    request.id,
                    duration // 1000,
                    request.inputs,
                    outputs,
                    runtime.input_columns,
                )
            if pair is not None:
                self._shadow_result(pair, 0, outputs)

        job = Job(request.inputs, request.rows, done, arrived, deadline)
        try:
            served.batcher.submit(job)
        except ProtocolError as exc:
            stats.request_done(time.perf_counter_ns() - arrived, "rejected")
            raise exc
        if deadline is not None:
            asyncio.get_running_loop().call_later(timeout_us / 1e6, self._expire, job, timeout_us)
        if shadow is not None:
            self._mirror(shadow, request, pair, arrived, logged)

    def _expire(self, job: Job, timeout_us: int) -> None:
        if not job.finished:
            job.finished = True
            job.done(None, ProtocolError(503, f"no answer within the request's timeout of {timeout_us} µs"))

    def _mirror(self, shadow: ServedVersion, request: InferRequest, pair: list, arrived: int, logged: bool) -> None:
        def done(outputs, error):
            shadow.stats.request_done(time.perf_counter_ns() - arrived, None if error is None else "model")
            if error is not None:
                self.deployment.shadow.failed += 1
                return
            if logged:
                self.deployment.request_log.record(
                    shadow.runtime.version,
                    "shadow",
                    request.id,
                    (time.perf_counter_ns() - arrived) // 1000,
                    request.inputs,
                    outputs,
                    shadow.runtime.input_columns,
                )
            self._shadow_result(pair, 1, outputs)

        try:
            shadow.batcher.submit(Job(request.inputs, request.rows, done, arrived))
        except ProtocolError:
            self.deployment.shadow.dropped += 1

    def _shadow_result(self, pair: list, side: int, outputs) -> None:
        pair[side] = outputs
        if pair[0] is not None and pair[1] is not None:
            self.deployment.compare_shadow(pair[0], pair[1])

    def _decompress(self, body: bytes, encoding: str | None) -> bytes:
        if not encoding or encoding == "identity":
            return body
        if encoding not in ("gzip", "deflate"):
            raise ProtocolError(400, f"Content-Encoding {encoding!r} is not supported; use gzip or deflate")
        inflater = zlib.decompressobj(wbits=31 if encoding == "gzip" else 15)
        try:
            data = inflater.decompress(body, self.max_body_bytes + 1)
        except zlib.error as exc:
            raise ProtocolError(400, f"the {encoding} body cannot be decompressed: {exc}") from None
        if len(data) <= self.max_body_bytes and not inflater.eof:
            raise ProtocolError(400, f"the {encoding} body is cut short (no end of stream, or a missing trailer)")
        if len(data) > self.max_body_bytes:
            raise ProtocolError(413, f"the decompressed body is larger than {self.max_body_bytes} bytes")
        return data

    # ---- life cycle --------------------------------------------------------------------------

    async def drain(self, grace_seconds: float = 30.0) -> None:
        """Stop taking requests, answer those in flight, then close every connection."""
        self.draining = True
        deadline = time.monotonic() + grace_seconds
        while time.monotonic() < deadline and (
            any(not c.idle for c in self.connections) or any(s.batcher.busy for s in self.deployment.served.values())
        ):
            await asyncio.sleep(0.01)
        for connection in list(self.connections):
            if connection.transport is not None:
                connection.transport.close()
