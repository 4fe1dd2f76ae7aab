"""ASGI middleware of the service: request metrics, and the request body size limit."""

from __future__ import annotations

import json
import time
from typing import Any

from recstack.serve.metrics import ServiceMetrics

Scope = dict[str, Any]
Message = dict[str, Any]


class RequestMetrics:
    """Counts every HTTP request by endpoint and status, and times it."""

    def __init__(self, app: Any, metrics: ServiceMetrics) -> None:  # noqa: ANN401
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:  # noqa: ANN401
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.observe_request(scope["path"], status, time.perf_counter() - started)


class BodyLimit:
    """Answers 413 to a request whose body is larger than ``max_bytes``: by its Content-Length before reading
    anything, and by the bytes actually received otherwise. Smaller bodies are read whole and passed on."""

    def __init__(self, app: Any, max_bytes: int) -> None:  # noqa: ANN401
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:  # noqa: ANN401
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        length = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    await _answer(send, 400, "the Content-Length header is not a number", None)
                    return
        if length is not None and length > self.max_bytes:
            await _answer(send, 413, self._too_large(f"{length} bytes (Content-Length)"), None)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _answer(send, 413, self._too_large(f"more than {self.max_bytes} bytes"), None)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _too_large(self, what: str) -> str:
        return f"the request body is {what}, larger than this service's limit of {self.max_bytes} bytes " \
               "(--max-body-bytes): split the request"


async def _answer(send: Any, status: int, message: str, field: str | None) -> None:  # noqa: ANN401
    body = json.dumps({"error": message, "field": field}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
