"""The serving process: ``mlops-lab serve MODEL …`` (also ``python -m mlops_lab.serving``).

It loads every version first, then binds (127.0.0.1 and a free port unless told otherwise) and
prints one line with its address.  SIGTERM or SIGINT: stop accepting, answer what is in flight,
flush the request log, exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys

from .manager import ADMIN_TOKEN_ENV, TOKEN_ENV
from .options import add_arguments
from .runtime import CPU, GPU, ModelLoadError


def _event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:  # uvloop has no Windows build
        return asyncio.new_event_loop()


def run_server(args: argparse.Namespace) -> int:
    from ..config import resolve
    from .deployment import Deployment, ServeOptions
    from .httpserver import Connection, InferenceServer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    options = ServeOptions(
        max_batch_size=args.max_batch_size,
        max_queue_delay_us=args.max_queue_delay_us,
        max_queue_size=args.max_queue_size,
        request_timeout_us=args.timeout_us,
        intra_op_threads=args.threads,
        providers=[CPU] if args.cpu else [GPU, CPU],
        log_sample=args.log_sample,
        log_dir=args.log_dir,
        watch_seconds=args.watch_seconds,
    )
    loop = _event_loop()
    asyncio.set_event_loop(loop)
    workspace = None
    if not all(spec.endswith(".onnx") for spec in filter(None, (args.model, args.canary, args.shadow))):
        from ..workspace import Workspace

        workspace = Workspace(resolve(args.db_url, args.artifacts))
    try:
        deployment = Deployment(
            args.model,
            loop=loop,
            options=options,
            canary=args.canary,
            canary_share=args.canary_share,
            shadow=args.shadow,
            workspace=workspace,
            name=args.name,
        )
        deployment.load()
    except (ModelLoadError, ValueError, LookupError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    app = InferenceServer(
        deployment,
        token=args.token or os.environ.get(TOKEN_ENV),
        admin_token=os.environ.get(ADMIN_TOKEN_ENV),
        max_body_bytes=int(args.max_body_mb * (1 << 20)),
        request_timeout=args.request_timeout,
        idle_timeout=args.idle_timeout,
        max_connections=args.max_connections,
    )
    try:
        server = loop.run_until_complete(
            loop.create_server(lambda: Connection(app), args.host, args.port, backlog=2048, reuse_address=True)
        )
    except OSError as exc:
        print(f"error: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        deployment.close()
        return 2
    port = server.sockets[0].getsockname()[1]
    app.ready = True

    def sweep():
        app.sweep()
        loop.call_later(1.0, sweep)

    loop.call_later(1.0, sweep)
    roles = ", ".join(
        f"{role} {deployment.name}/{s.runtime.version} on {s.runtime.provider}" for role, s in deployment.served.items()
    )
    print(f"serving {deployment.name} at http://{args.host}:{port} ({roles})", flush=True)

    stopping = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda s=signum: stopping.done() or stopping.set_result(s))
    if args.parent_pid:

        def check_parent():
            if os.getppid() != args.parent_pid and not stopping.done():
                stopping.set_result(signal.SIGTERM)
            loop.call_later(1.0, check_parent)

        check_parent()
    received = loop.run_until_complete(stopping)
    logging.getLogger("mlops_lab.serving").info("%s: draining requests in flight", signal.Signals(received).name)
    server.close()
    loop.run_until_complete(app.drain(args.grace_seconds))
    deployment.close()
    loop.close()
    print("stopped", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mlops_lab.serving", description=__doc__.splitlines()[0])
    add_arguments(parser)
    parser.add_argument("--db-url", help="the store's database URL")
    parser.add_argument("--artifacts", help="the store's artifact location")
    return run_server(parser.parse_args(argv))
