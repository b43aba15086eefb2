"""The serving process's command-line options, apart from the process: the CLI reads them without
loading the serving machinery (every ``mlops-lab`` command builds the whole parser)."""

from __future__ import annotations

import argparse

TOKEN_ENV = "MLOPS_LAB_SERVE_TOKEN"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="what to serve: name@alias, name@production, name/3, name, or a .onnx file")
    parser.add_argument("--name", help="the model name clients use (default: the registered name or file stem)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    parser.add_argument("--token", help=f"require Authorization: Bearer TOKEN (default: ${TOKEN_ENV}, else none)")
    parser.add_argument("--canary", help="a second version to send a share of traffic to")
    parser.add_argument("--canary-share", type=float, default=0.0, help="share of traffic for the canary, 0..1")
    parser.add_argument(
        "--shadow", help="a version that gets a copy of traffic; its answers are compared, not returned"
    )
    parser.add_argument("--max-batch-size", type=int, default=64, help="rows per model call (0: no batching)")
    parser.add_argument(
        "--max-queue-delay-us",
        type=int,
        default=0,
        help="how long the oldest request may wait for a fuller batch (0: run what is waiting)",
    )
    parser.add_argument("--max-queue-size", type=int, default=1024, help="requests waiting per version before 503")
    parser.add_argument("--timeout-us", type=int, help="default per-request timeout in microseconds")
    parser.add_argument("--threads", type=int, help="onnxruntime intra-op threads (default: half the cores)")
    parser.add_argument("--cpu", action="store_true", help="use the CPU even when CUDA is available")
    parser.add_argument("--log-sample", type=float, default=1.0, help="share of requests to log (0: no request log)")
    parser.add_argument("--log-dir", help="where the request log goes (default: the store's deployments folder)")
    parser.add_argument("--watch-seconds", type=float, default=2.0, help="how often aliases are re-resolved")
    parser.add_argument("--max-body-mb", type=float, default=64.0, help="largest request body, in MB (413 above)")
    parser.add_argument(
        "--request-timeout", type=float, default=30.0, help="seconds to receive a whole request (408 after)"
    )
    parser.add_argument("--idle-timeout", type=float, default=75.0, help="seconds a keep-alive connection may idle")
    parser.add_argument("--max-connections", type=int, default=1024, help="open connections at most (503 beyond)")
    parser.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)  # exit (draining) when the lab is gone
    parser.add_argument(
        "--grace-seconds", type=float, default=30.0, help="how long SIGTERM waits for requests in flight"
    )
