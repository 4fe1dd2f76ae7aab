"""Command-line flags of the HTTP service, and running it under uvicorn."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from recstack.errors import require
from recstack.serve.settings import ServeSettings

TOKEN_ENV = "RECSTACK_ADMIN_TOKEN"
_WORKER_ENV = "RECSTACK_SERVE_WORKER_CONFIG"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The service's flags (shared by ``python -m recstack.serve`` and ``recstack serve``)."""
    d = ServeSettings()
    parser.add_argument("--name", required=True, help="service name (metrics label, /metadata)")
    parser.add_argument("--path", required=True, help="bundle directory (written by export_bundle)")
    parser.add_argument("--host", default=d.host, help=f"address to listen on (default {d.host})")
    parser.add_argument("--port", type=int, default=d.port, help=f"port (default {d.port})")
    parser.add_argument(
        "--workers", type=int, default=d.workers,
        help="worker processes, each with its own copy of the bundle (default 1; with more, reload by SIGHUP)",
    )
    parser.add_argument(
        "--admin-token", default=None,
        help=f"turns POST /admin/reload on, for requests with 'Authorization: Bearer TOKEN' (default: ${TOKEN_ENV}; "
        "unset: no admin endpoint)",
    )
    parser.add_argument("--max-batch-rows", type=int, default=d.max_batch_rows,
                        help=f"most users or rows per request, more is 413 (default {d.max_batch_rows})")
    parser.add_argument("--max-body-bytes", type=int, default=d.max_body_bytes,
                        help=f"largest request body, larger is 413 (default {d.max_body_bytes})")
    parser.add_argument("--max-k", type=int, default=d.max_k, help=f"largest k, larger is 422 (default {d.max_k})")
    parser.add_argument("--batch-interval-ms", type=float, default=d.batch_interval_ms,
                        help=f"how long a batch waits for more requests (default {d.batch_interval_ms})")
    parser.add_argument("--max-batch", type=int, default=d.max_batch,
                        help=f"most rows in one model batch (default {d.max_batch})")
    parser.add_argument("--queue-timeout-ms", type=float, default=d.queue_timeout_ms,
                        help=f"a request queued longer than this is answered 503 (default {d.queue_timeout_ms:g})")
    parser.add_argument("--graceful-timeout-s", type=float, default=d.graceful_timeout_s,
                        help=f"on SIGTERM, time for in-flight requests to finish (default {d.graceful_timeout_s:g})")
    parser.add_argument("--threads", type=int, default=d.threads,
                        help=f"torch and FAISS threads per worker process (default {d.threads})")
    parser.add_argument("--access-log", action="store_true", help="log every request (uvicorn's access log)")
    parser.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])


def settings_from_args(args: argparse.Namespace) -> ServeSettings:
    """`ServeSettings` from parsed flags (the admin token falls back to ``$RECSTACK_ADMIN_TOKEN``)."""
    return ServeSettings(
        host=args.host,
        port=args.port,
        workers=args.workers,
        admin_token=args.admin_token or os.environ.get(TOKEN_ENV) or None,
        max_batch_rows=args.max_batch_rows,
        max_body_bytes=args.max_body_bytes,
        max_k=args.max_k,
        batch_interval_ms=args.batch_interval_ms,
        max_batch=args.max_batch,
        queue_timeout_ms=args.queue_timeout_ms,
        graceful_timeout_s=args.graceful_timeout_s,
        threads=args.threads,
    )


def run_from_args(args: argparse.Namespace) -> int:
    """Serve with parsed flags until SIGTERM or SIGINT; the exit status (1 when the bundle cannot be loaded)."""
    settings = settings_from_args(args)
    return serve(args.path, args.name, settings, access_log=args.access_log, log_level=args.log_level)


def serve(
    bundle_path: str, name: str, settings: ServeSettings, *, access_log: bool = False, log_level: str = "info"
) -> int:
    """Run the service in this process until SIGTERM or SIGINT (in-flight requests finish first).

    SIGHUP reloads the bundle from its current path. With ``settings.workers > 1`` uvicorn's supervisor runs
    the workers and SIGHUP restarts each of them on ``bundle_path``. Returns the exit status: 1 when the bundle
    cannot be loaded at start."""
    uvicorn = require("uvicorn", "serve", "the HTTP service")
    from recstack.serve.app import create_app

    _log_to_stderr(log_level)
    common: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "timeout_graceful_shutdown": settings.graceful_timeout_s,
        "access_log": access_log,
        "log_level": log_level,
    }
    if settings.workers > 1:
        os.environ[_WORKER_ENV] = json.dumps(
            {"path": str(bundle_path), "name": name, "settings": _fields(settings), "log_level": log_level}
        )
        uvicorn.run("recstack.serve.runner:worker_app", factory=True, workers=settings.workers, **common)
        return 0
    _set_threads(settings.threads)
    app = create_app(bundle_path, name, settings)
    server = uvicorn.Server(uvicorn.Config(app, **common))
    status = 0

    def fatal(exc: BaseException) -> None:
        nonlocal status
        status = 1
        server.should_exit = True

    service = app.state.service
    service.on_fatal = fatal
    service.on_loaded = _freeze_loaded_objects

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGHUP, service.reload_in_background)
        try:
            await server.serve()
        finally:
            loop.remove_signal_handler(signal.SIGHUP)

    _run(main(), server.config.get_loop_factory())
    if status:
        logging.getLogger("recstack.serve").error("stopped: the bundle at %s could not be loaded", bundle_path)
    return status


def _log_to_stderr(level: str) -> None:
    """Send the service's own log lines to stderr, as uvicorn does with its own."""
    logger = logging.getLogger("recstack.serve")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


def worker_app() -> Any:  # noqa: ANN401
    """The app of one uvicorn worker process (``--workers`` > 1), from the settings its supervisor passed on."""
    from recstack.serve.app import create_app

    config = json.loads(os.environ[_WORKER_ENV])
    _log_to_stderr(config.get("log_level", "info"))
    settings = ServeSettings(**config["settings"])
    _set_threads(settings.threads)
    app = create_app(config["path"], config["name"], settings)
    app.state.service.on_loaded = _freeze_loaded_objects
    return app


def _freeze_loaded_objects() -> None:
    """Move every object alive now (the loaded bundle's among them) out of the cyclic garbage collector's
    generations, so that its full collections, which otherwise walk the bundle's objects, stay short."""
    gc.freeze()


def _set_threads(threads: int) -> None:
    """The service process's torch threads (FAISS searches follow them): the service owns its process."""
    import torch

    torch.set_num_threads(threads)


def _fields(settings: ServeSettings) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(settings)


def _run(coro: Coroutine, loop_factory: Any) -> None:  # noqa: ANN401
    if sys.version_info >= (3, 11) and loop_factory is not None:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(coro)
    else:
        asyncio.run(coro)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m recstack.serve``."""
    parser = argparse.ArgumentParser(prog="python -m recstack.serve", description="Serve a recstack bundle over HTTP.")
    add_arguments(parser)
    args = parser.parse_args(argv)
    return run_from_args(args)
