"""The HTTP service (``python -m recstack.serve``) in a subprocess on a free local port, and requests to it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import recstack
from recstack.errors import RecstackError, require

HOST = "127.0.0.1"


class ServiceError(RecstackError, RuntimeError):
    """The service did not start, or answered a request with an error."""


def free_port(host: str = HOST) -> int:
    """A TCP port of ``host`` that nothing listens on right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def serve_command(bundle: str | os.PathLike, name: str, port: int, host: str = HOST) -> list[str]:
    """The command line that serves ``bundle`` with this Python."""
    return [
        sys.executable,
        "-m",
        "recstack.serve",
        "--name",
        name,
        "--path",
        str(bundle),
        "--host",
        host,
        "--port",
        str(port),
    ]


class ServiceProcess:
    """``python -m recstack.serve`` on a free port of 127.0.0.1, its output going to ``log``.

    Use it as a context manager: leaving the block stops the service (SIGTERM, then SIGKILL), also on error."""

    def __init__(self, bundle: str | os.PathLike, log: str | os.PathLike, name: str = "recstack-demo") -> None:
        self.bundle = Path(bundle)
        self.log_path = Path(log)
        self.name = name
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> ServiceProcess:
        """Start the service; it is not ready before `wait_ready` returns."""
        self.port = free_port()
        package_root = str(Path(recstack.__file__).resolve().parents[1])
        python_path = os.pathsep.join(p for p in (package_root, os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONPATH": python_path}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                serve_command(self.bundle, self.name, self.port), stdout=log, stderr=subprocess.STDOUT, env=env
            )
        return self

    def wait_ready(self, timeout: float = 120.0) -> float:
        """Wait until ``/health`` answers 200; the seconds waited. `ServiceError` (with the service's log) when
        the process exits first or ``timeout`` passes."""
        httpx = require("httpx", "serve", "the demo's requests to the service")
        if self.proc is None:
            raise ServiceError("the service was not started: call start() first")
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if self.proc.poll() is not None:
                raise ServiceError(
                    f"the service exited with status {self.proc.returncode} before it was ready; its log "
                    f"({self.log_path}) ends with:\n{self.log_tail()}"
                )
            try:
                if httpx.get(self.url + "/health", timeout=2.0).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise ServiceError(
            f"the service was not ready after {timeout:.0f} s; its log ({self.log_path}) ends with:\n{self.log_tail()}"
        )

    def post(self, route: str, body: dict[str, Any], timeout: float = 60.0) -> tuple[dict[str, Any], float]:
        """POST ``body`` as JSON to ``route``; the decoded answer and the request's latency in seconds.
        `ServiceError` naming the status and the service's error message when it is not 200."""
        httpx = require("httpx", "serve", "the demo's requests to the service")
        started = time.perf_counter()
        response = httpx.post(self.url + route, json=body, timeout=timeout)
        latency = time.perf_counter() - started
        if response.status_code != 200:
            raise ServiceError(f"POST {route} answered {response.status_code}: {response.text[:2000]}")
        return response.json(), latency

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except FileNotFoundError:
            return "(no log)"

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL; the exit status (None when it was never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def __enter__(self) -> ServiceProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
