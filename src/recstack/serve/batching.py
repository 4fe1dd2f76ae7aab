"""Dynamic batching: requests that arrive within a short window run through the model as one batch."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("recstack.serve")


class QueueTimeout(Exception):
    """A request waited in the batching queue longer than the queue timeout."""


class QueueClosed(Exception):
    """The batching queue stopped before the request ran."""


@dataclass
class _Job:
    key: Hashable
    rows: int
    payload: Any
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


BatchRunner = Callable[[Hashable, Sequence[Any]], Sequence[Any]]


class BatchQueue:
    """Groups submitted jobs into batches and runs each batch in one worker thread.

    ``run(key, payloads)`` runs one batch of jobs that share ``key`` and returns one result per payload (an
    `Exception` instance in place of a result fails only that job). After the first job of a batch arrives, the
    queue waits up to ``interval_s`` for more (less once ``max_rows`` rows are waiting; not at all when the
    job found the queue idle, no batch having finished within ``interval_s`` before it: a lone request does
    not wait for company that is not coming, and under load batches form while the previous one runs), then
    runs the oldest
    job's key with every waiting job of that key, oldest first, up to ``max_rows`` rows (a single larger job
    runs alone). Jobs that waited longer than ``timeout_s`` fail with `QueueTimeout`. While a batch runs, new
    jobs wait for the next one, so the event loop keeps accepting requests.

    ``on_batch(key, jobs, rows, waits)`` is called after each batch with the seconds each job waited.
    """

    def __init__(
        self,
        run: BatchRunner,
        *,
        interval_s: float = 0.001,
        max_rows: int = 256,
        timeout_s: float = 5.0,
        on_batch: Callable[[Hashable, int, int, list[float]], None] | None = None,
    ) -> None:
        if interval_s < 0 or max_rows < 1 or timeout_s <= 0:
            raise ValueError(
                f"BatchQueue needs interval_s >= 0, max_rows >= 1 and timeout_s > 0, got {interval_s}, {max_rows}, "
                f"{timeout_s}"
            )
        self._run = run
        self.interval_s = interval_s
        self.max_rows = max_rows
        self.timeout_s = timeout_s
        self._on_batch = on_batch
        self._pending: deque[_Job] = deque()
        self._arrived = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._last_done = -math.inf  # when the last batch finished (perf_counter)

    @property
    def depth(self) -> int:
        """Jobs waiting for a batch."""
        return len(self._pending)

    def start(self) -> None:
        """Start the batching loop on the running event loop."""
        if self._task is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="recstack-model")
            self._task = asyncio.get_running_loop().create_task(self._loop(), name="recstack-batching")

    async def stop(self) -> None:
        """Stop the loop; jobs still waiting fail with `QueueClosed`."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        while self._pending:
            job = self._pending.popleft()
            if not job.future.done():
                job.future.set_exception(QueueClosed("the service is shutting down"))
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def submit(self, key: Hashable, rows: int, payload: Any) -> Any:  # noqa: ANN401
        """Queue one job of ``rows`` rows and wait for its result."""
        if self._task is None:
            raise QueueClosed("the batching queue is not running")
        job = _Job(key, rows, payload, asyncio.get_running_loop().create_future())
        self._pending.append(job)
        self._arrived.set()
        return await job.future

    async def _loop(self) -> None:
        while True:
            batch: list[_Job] = []
            try:
                batch = await self._next_batch()
                if batch:
                    await self._run_batch(batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the loop must outlive any one batch
                log.exception("the batching loop failed on a batch of %d jobs", len(batch))
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)

    async def _next_batch(self) -> list[_Job]:
        """Wait for a job, then wait out the batching interval (less once ``max_rows`` rows wait); take the batch."""
        while not self._pending:
            self._arrived.clear()
            await self._arrived.wait()
        first = self._pending[0]
        if first.enqueued - self._last_done > self.interval_s:
            return self._take(first.key)  # it found the queue idle
        wait = first.enqueued + self.interval_s - time.perf_counter()
        while wait > 0 and self._rows_waiting(first.key) < self.max_rows:
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), wait)
            except asyncio.TimeoutError:
                break
            wait = first.enqueued + self.interval_s - time.perf_counter()
        return self._take(first.key)

    async def _run_batch(self, batch: list[_Job]) -> None:
        key = batch[0].key
        now = time.perf_counter()
        waits = [now - job.enqueued for job in batch]
        try:
            results = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._run, key, [j.payload for j in batch]
            )
            if len(results) != len(batch):
                raise RuntimeError(f"the batch runner returned {len(results)} results for {len(batch)} jobs")
        except Exception as exc:  # noqa: BLE001 - the failure goes to every job of the batch
            results = [exc] * len(batch)
        self._last_done = time.perf_counter()
        for job, result in zip(batch, results):
            if job.future.done():
                continue
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)
        if self._on_batch is not None:
            try:
                self._on_batch(key, len(batch), sum(j.rows for j in batch), waits)
            except Exception:  # noqa: BLE001 - metrics must not stop the queue
                log.exception("recording batch metrics failed")

    def _rows_waiting(self, key: Hashable) -> int:
        return sum(job.rows for job in self._pending if job.key == key)

    def _take(self, key: Hashable) -> list[_Job]:
        """Remove and return the waiting jobs of ``key`` for one batch; expire those that waited too long."""
        now = time.perf_counter()
        batch: list[_Job] = []
        rest: deque[_Job] = deque()
        rows = 0
        for job in self._pending:
            if job.future.done():
                continue
            if now - job.enqueued > self.timeout_s:
                job.future.set_exception(
                    QueueTimeout(f"the request waited {now - job.enqueued:.3f} s in the batching queue, longer than "
                                 f"the queue timeout of {self.timeout_s:.3f} s: the service is overloaded")
                )
                continue
            if job.key == key and (not batch or rows + job.rows <= self.max_rows):
                batch.append(job)
                rows += job.rows
            else:
                rest.append(job)
        self._pending = rest
        return batch
