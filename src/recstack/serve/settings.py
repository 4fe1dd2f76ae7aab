"""Limits and batching settings of the HTTP service."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from recstack.errors import ArgumentError


@dataclass(frozen=True)
class ServeSettings:
    """Settings of one service.

    ``admin_token``: turns ``POST /admin/reload`` on (None: the endpoint does not exist, 404).
    ``max_batch_rows``: most users (or predict rows) one request may send (more: 413).
    ``max_body_bytes``: largest request body (larger: 413). ``max_k``: largest ``k`` (larger: 422).
    ``batch_interval_ms``: how long the batching queue waits for more requests after the first of a batch.
    ``max_batch``: most rows one model batch runs. ``queue_timeout_ms``: a request still queued after this
    long is answered 503. ``graceful_timeout_s``: on SIGTERM, how long in-flight requests get to finish.
    ``workers``: uvicorn worker processes, each with its own copy of the bundle. ``threads``: torch's and FAISS's
    threads in each worker process (1 leaves the other cores to the event loop and to other workers).
    """

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    admin_token: str | None = None
    max_batch_rows: int = 1024
    max_body_bytes: int = 4 * 1024 * 1024
    max_k: int = 1000
    batch_interval_ms: float = 1.0
    max_batch: int = 256
    queue_timeout_ms: float = 5000.0
    graceful_timeout_s: float = 30.0
    threads: int = 1

    def __post_init__(self) -> None:
        positive = {
            "port": self.port,
            "workers": self.workers,
            "max_batch_rows": self.max_batch_rows,
            "max_body_bytes": self.max_body_bytes,
            "max_k": self.max_k,
            "max_batch": self.max_batch,
            "threads": self.threads,
        }
        for name, value in positive.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ArgumentError(f"ServeSettings.{name} must be an integer >= 1, got {value!r}")
        non_negative = {
            "batch_interval_ms": self.batch_interval_ms,
            "queue_timeout_ms": self.queue_timeout_ms,
            "graceful_timeout_s": self.graceful_timeout_s,
        }
        for name, value in non_negative.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ArgumentError(f"ServeSettings.{name} must be a finite number >= 0, got {value!r}")
        if self.queue_timeout_ms <= 0:
            raise ArgumentError(f"ServeSettings.queue_timeout_ms must be > 0, got {self.queue_timeout_ms!r}")
        if self.admin_token is not None and not self.admin_token.strip():
            raise ArgumentError("ServeSettings.admin_token must not be empty (leave it unset to turn admin off)")

    def public(self) -> dict[str, Any]:
        """The settings a client may see (everything but the admin token)."""
        out = asdict(self)
        out["admin"] = out.pop("admin_token") is not None
        return out
