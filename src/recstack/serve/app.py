"""The FastAPI application: /recommend, /predict, /embed, /health, /metadata, /metrics and /admin/reload."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

from recstack.errors import require

require("fastapi", "serve", "the HTTP service")
require("prometheus_client", "serve", "the HTTP service's metrics")
require("orjson", "serve", "the HTTP service's JSON answers")

import orjson  # noqa: E402
from fastapi import FastAPI, Request  # noqa: E402
from fastapi.exceptions import RequestValidationError  # noqa: E402
from fastapi.responses import JSONResponse, Response  # noqa: E402
from starlette.exceptions import HTTPException as StarletteHTTPException  # noqa: E402

from recstack.errors import RecstackError  # noqa: E402
from recstack.serve.admin import add_admin_routes  # noqa: E402
from recstack.serve.batching import BatchQueue, QueueClosed, QueueTimeout  # noqa: E402
from recstack.serve.engine import BatchKey, LoadedBundle, RecommendJob, RowsJob, error_field, run_batch  # noqa: E402
from recstack.serve.metrics import ServiceMetrics  # noqa: E402
from recstack.serve.middleware import BodyLimit, RequestMetrics  # noqa: E402
from recstack.serve.rows import RequestError, check_exclude  # noqa: E402
from recstack.serve.schemas import (  # noqa: E402
    EmbedRequest,
    EmbedResponse,
    ErrorResponse,
    PredictRequest,
    PredictResponse,
    RecommendRequest,
    RecommendResponse,
)
from recstack.serve.settings import ServeSettings  # noqa: E402

log = logging.getLogger("recstack.serve")

IGNORED_HEADER = "X-Recstack-Ignored-Fields"
MAX_IGNORED_SHOWN = 50
DEFAULT_K = 100
ERRORS = {code: {"model": ErrorResponse} for code in (400, 413, 415, 422, 500, 503)}


class Service:
    """The state of one running service: the bundle being served, the batching queue, metrics and reloads.

    ``on_fatal(exc)`` is called when the bundle given at start cannot be loaded (the process entry point stops
    the server then); without it the service keeps answering 503 with the reason. ``on_loaded()`` is called
    after each bundle is swapped in (the process entry point freezes the garbage collector's view of it).
    """

    def __init__(self, bundle_path: str | Path, name: str, settings: ServeSettings) -> None:
        self.name = name
        self.path = Path(bundle_path)
        self.settings = settings
        self.current: LoadedBundle | None = None
        self.load_error: str | None = None
        self.on_fatal: Callable[[BaseException], None] | None = None
        self.on_loaded: Callable[[], None] | None = None
        self.metrics = ServiceMetrics(name, imputed=self._imputed)
        self.queue = BatchQueue(
            self._run_batch,
            interval_s=settings.batch_interval_ms / 1000,
            max_rows=settings.max_batch,
            timeout_s=settings.queue_timeout_ms / 1000,
            on_batch=self._observe_batch,
        )
        self._reload_lock: asyncio.Lock | None = None
        self._background: set[asyncio.Task] = set()

    def _imputed(self) -> dict[str, int] | None:
        current = self.current
        return None if current is None else current.imputed_counts()

    def _run_batch(self, key: BatchKey, payloads: list[Any]) -> list[Any]:
        return run_batch(key, payloads, stages=self.metrics.observe_stages)

    def _observe_batch(self, key: BatchKey, requests: int, rows: int, waits: list[float]) -> None:
        self.metrics.observe_batch(key.kind, requests, rows, waits)

    def ready(self) -> LoadedBundle:
        """The bundle being served; `RequestError` 503 while none is loaded yet."""
        current = self.current
        if current is None:
            reason = f": loading it failed: {self.load_error}" if self.load_error else ""
            raise RequestError(None, f"the service has no bundle ready yet{reason}", 503)
        return current

    async def start(self) -> None:
        """Start the batching queue and load the first bundle in the background."""
        self._reload_lock = asyncio.Lock()
        self.queue.start()
        self._spawn(self._first_load())

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        await self.queue.stop()

    def _spawn(self, coro: Any) -> asyncio.Task:  # noqa: ANN401
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    async def _first_load(self) -> None:
        started = time.perf_counter()
        async with self._reload_lock:
            try:
                loaded = await asyncio.to_thread(LoadedBundle.open, self.path)
            except Exception as exc:  # noqa: BLE001 - reported through /health and on_fatal
                self.load_error = f"{type(exc).__name__}: {exc}"
                log.error("cannot serve bundle %s: %s", self.path, self.load_error)
                if self.on_fatal is not None:
                    self.on_fatal(exc)
                return
            self.current = loaded
        if self.on_loaded is not None:
            self.on_loaded()
        self.metrics.set_bundle(loaded.version)
        log.info("serving bundle %s (version %s), ready in %.2f s", self.path, loaded.version,
                 time.perf_counter() - started)

    @property
    def reloading(self) -> bool:
        return self._reload_lock is not None and self._reload_lock.locked()

    async def reload(self, path: str | Path | None = None) -> tuple[LoadedBundle, LoadedBundle | None, float]:
        """Load, verify and warm the bundle at ``path`` (default: the current path) in a thread, then serve it.
        Requests accepted before the swap finish on the old bundle. Returns ``(new, old, seconds)``; a bundle
        that fails raises `RequestError` with the reason and the old one keeps serving."""
        if self._reload_lock is None:
            raise RequestError(None, "the service is not running", 503)
        if self._reload_lock.locked():
            raise RequestError("path", "the bundle is being loaded or reloaded; try again when that has finished", 409)
        async with self._reload_lock:
            target = Path(path) if path is not None else self.path
            started = time.perf_counter()
            try:
                loaded = await asyncio.to_thread(LoadedBundle.open, target)
            except RecstackError as exc:
                self.metrics.reloads.labels("refused").inc()
                log.warning("reload of %s refused: %s", target, exc)
                raise RequestError("path", f"bundle {target} refused, still serving the old one: {exc}") from exc
            except Exception as exc:  # noqa: BLE001 - a bundle that fails in any way must not replace the old one
                self.metrics.reloads.labels("refused").inc()
                log.exception("reload of %s failed", target)
                raise RequestError(
                    "path", f"bundle {target} refused, still serving the old one: {type(exc).__name__}: {exc}", 500
                ) from exc
            old, self.current, self.path = self.current, loaded, target
            if self.on_loaded is not None:
                self.on_loaded()
            self.metrics.set_bundle(loaded.version)
            self.metrics.reloads.labels("ok").inc()
            seconds = time.perf_counter() - started
            log.info("reloaded: serving %s (version %s) after %.2f s", target, loaded.version, seconds)
            return loaded, old, seconds

    def reload_in_background(self) -> None:
        """Reload the current path without waiting (what SIGHUP does); the outcome goes to the log."""

        async def reload() -> None:
            try:
                await self.reload()
            except RequestError as exc:
                log.error("reload on signal failed: %s", exc.message)

        self._spawn(reload())

    def check_rows(self, n: int, where: str) -> None:
        if n == 0:
            raise RequestError(where, f"{where} is empty: send at least one")
        if n > self.settings.max_batch_rows:
            raise RequestError(
                where, f"{where} holds {n} entries, more than this service's limit of "
                f"{self.settings.max_batch_rows} per request (--max-batch-rows): split the request", 413
            )

    async def submit(self, key: BatchKey, rows: int, job: Any, where: str) -> Any:  # noqa: ANN401
        try:
            return await self.queue.submit(key, rows, job)
        except (QueueTimeout, QueueClosed) as exc:
            raise RequestError(None, str(exc), 503) from exc
        except RequestError:
            raise
        except RecstackError as exc:
            raise RequestError(error_field(exc, key.bundle, where), str(exc)) from exc


class FastJSONResponse(JSONResponse):
    """JSON rendered by orjson (several times faster than the standard library on lists of numbers); NaN and
    inf become null."""

    def render(self, content: Any) -> bytes:  # noqa: ANN401
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def _json(content: Any, ignored: list[str] | None = None, status: int = 200) -> JSONResponse:  # noqa: ANN401
    headers = None
    if ignored:
        # percent-encoded, as a header carries only ASCII; at most MAX_IGNORED_SHOWN names, then "..."
        shown = [quote(name, safe="") for name in ignored[:MAX_IGNORED_SHOWN]]
        headers = {IGNORED_HEADER: ",".join(shown + (["..."] if len(ignored) > MAX_IGNORED_SHOWN else []))}
    return FastJSONResponse(content, status_code=status, headers=headers)


def _error(status: int, message: str, field: str | None = None, headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status, headers=headers)


def _field_path(loc: tuple) -> str | None:
    parts = [p for p in loc if p != "body"]
    if not parts:
        return None
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def create_app(bundle_path: str | Path, name: str, settings: ServeSettings | None = None) -> FastAPI:
    """The service for the bundle at ``bundle_path``: it starts answering at once, /health says 503 until
    the bundle is loaded, verified and warmed, then 200. ``name`` labels the service in metrics and metadata."""
    settings = settings or ServeSettings()
    service = Service(bundle_path, name, settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPI(title=f"recstack: {name}", lifespan=lifespan, responses=ERRORS)
    app.state.service = service
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=service.metrics)

    @app.exception_handler(RequestError)
    async def request_error(request: Request, exc: RequestError) -> JSONResponse:
        return _error(exc.status, exc.message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
        field = _field_path(tuple(first.get("loc", ())))
        if first.get("type") == "json_invalid":
            return _error(400, f"the request body is not valid JSON: {first.get('msg')}", None)
        if field is None:
            content_type = request.headers.get("content-type", "")
            if "json" not in content_type.lower():
                shown = repr(content_type) if content_type else "no Content-Type"
                return _error(415, f"the request body must be JSON sent with 'Content-Type: application/json', "
                              f"got {shown}", None)
            return _error(422, "the request body must be a JSON object", None)
        value = first.get("input")
        shown = "" if first.get("type") == "missing" else f" (got {_shown(value)})"
        return _error(422, f"{field}: {first.get('msg')}{shown}", field)

    @app.exception_handler(RecstackError)
    async def recstack_error(request: Request, exc: RecstackError) -> JSONResponse:
        return _error(422, str(exc), error_field(exc, service.current, "users"))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail), None, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        # the server logs the traceback after this answer has gone out
        log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__)
        return _error(500, "internal error while answering this request; the server log has the details", None)

    @app.post("/recommend", response_model=RecommendResponse)
    async def recommend(body: RecommendRequest) -> Response:
        """Top-k items per user: features → user tower → index (→ ranker → blend) → top-k."""
        loaded = service.ready()
        n = len(body.users)
        service.check_rows(n, "users")
        k = min(DEFAULT_K, settings.max_k) if body.k is None else body.k
        if k < 1 or k > settings.max_k:
            raise RequestError("k", f"k is {k}; expected an integer from 1 to {settings.max_k} (--max-k)")
        if body.exclude is not None:
            check_exclude(body.exclude, n)
        blend = None
        if body.blend is not None:
            if not body.blend.weights:
                raise RequestError("blend.weights", f"blend.weights is empty: give a weight to one or more of the "
                                   f"tasks {loaded.task_names}")
            for task, w in body.blend.weights.items():
                if task not in loaded.task_names:
                    raise RequestError(
                        f"blend.weights.{task}", f"blend.weights names task {task!r}, which this bundle does not "
                        f"have; its tasks are {loaded.task_names}"
                    )
                if not math.isfinite(w):
                    raise RequestError(f"blend.weights.{task}", f"blend.weights.{task} is {w}; expected a finite "
                                       "number")
            blend = (tuple(sorted(body.blend.weights.items())), body.blend.transform)
        if body.rank and not loaded.has_ranker:
            raise RequestError("rank", f"rank needs a ranker, and bundle {loaded.version} has none")
        if blend is not None and not body.rank:
            raise RequestError("blend", "blend orders the ranker's task scores: send it with \"rank\": true")
        candidates = None
        if body.candidates is not None:
            if not body.rank:
                raise RequestError("candidates", "candidates is the number of items the ranker re-scores: send it "
                                   "with \"rank\": true")
            if not k <= body.candidates <= settings.max_k:
                raise RequestError("candidates", f"candidates is {body.candidates}; expected an integer from k "
                                   f"({k}) to {settings.max_k} (--max-k)")
            candidates = body.candidates
        columns, ignored = loaded.user_rows.columns(body.users, "users")
        job = RecommendJob(columns, n, k, body.exclude)
        key = BatchKey("recommend", loaded, body.rank, blend, k if body.rank else None, candidates)
        results = await service.submit(key, n, job, "users")
        return _json({"results": results, "bundle": loaded.version}, ignored)

    @app.post("/predict", response_model=PredictResponse)
    async def predict(body: PredictRequest) -> Response:
        """Per-task scores of raw (user, item) rows through the bundle's ranker."""
        loaded = service.ready()
        service.check_rows(len(body.rows), "rows")
        if not loaded.has_ranker:
            raise RequestError("rows", f"bundle {loaded.version} has no ranker, so /predict has nothing to run")
        columns, ignored = loaded.predict_rows.columns(body.rows, "rows")
        scores = await service.submit(BatchKey("predict", loaded), len(body.rows), RowsJob(columns, len(body.rows)),
                                      "rows")
        return _json({"scores": scores, "bundle": loaded.version}, ignored)

    @app.post("/embed", response_model=EmbedResponse)
    async def embed(body: EmbedRequest) -> Response:
        """User vectors from raw user features."""
        loaded = service.ready()
        service.check_rows(len(body.users), "users")
        columns, ignored = loaded.user_rows.columns(body.users, "users")
        vectors = await service.submit(BatchKey("embed", loaded), len(body.users), RowsJob(columns, len(body.users)),
                                       "users")
        return _json({"vectors": vectors, "bundle": loaded.version}, ignored)

    @app.get("/health")
    async def health() -> Response:
        """200 once a bundle is loaded and warmed, 503 before (or when loading it failed)."""
        current = service.current
        if current is None:
            reason = f"loading the bundle failed: {service.load_error}" if service.load_error else "loading the bundle"
            return JSONResponse({"status": "unavailable", "error": reason, "field": None}, status_code=503)
        return JSONResponse({"status": "ok", "bundle": current.version, "reloading": service.reloading})

    @app.get("/metadata")
    async def metadata() -> Response:
        """The service's name, limits and the manifest of the bundle it serves."""
        loaded = service.ready()
        return JSONResponse({
            "name": service.name,
            "bundle": loaded.version,
            "loaded_at": loaded.loaded_at,
            "user_features": sorted(loaded.user_rows.kinds),
            "required": loaded.user_rows.required,
            "tasks": loaded.task_names,
            "ranker": loaded.has_ranker,
            "settings": settings.public(),
            "manifest": loaded.manifest,
        })

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus metrics (text exposition format)."""
        return Response(service.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")

    if settings.admin_token is not None:
        add_admin_routes(app, service, settings.admin_token)
    return app


def _shown(value: Any) -> str:  # noqa: ANN401
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
