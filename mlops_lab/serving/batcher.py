"""Dynamic batching: requests that arrive together run as one model call.

The event loop parses and checks each request, then :meth:`Batcher.submit` puts it in a bounded
queue (full → 503 at once, never unbounded latency).  One thread per model version takes what is
waiting — up to ``max_batch_size`` rows, waiting at most ``max_queue_delay_us`` after the oldest
request for more (0: take whatever is there) — joins the inputs along the first axis, runs the
model with the GIL released, splits the outputs and hands them back to the loop in one call.

A request is checked before it is queued, so it cannot break a batch by its shape or type; if
the model still fails on a joined batch, each request is run alone so that only the one at fault
gets the error.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .metrics import VersionStats
from .protocol import ProtocolError
from .runtime import ModelRuntime


@dataclass(slots=True, eq=False)
class Job:
    """One request's inputs for one model version; ``done`` runs on the loop."""

    inputs: dict[str, np.ndarray]
    rows: int
    done: Callable[[dict | None, ProtocolError | None], None]
    arrived_ns: int
    deadline_ns: int | None = None
    finished: bool = False  # answered already (timed out): skip it

    def key(self) -> tuple:
        # Only requests whose inputs agree beyond the first axis can be joined.
        return tuple((name, a.shape[1:]) for name, a in self.inputs.items())


class Batcher:
    def __init__(
        self,
        runtime: ModelRuntime,
        stats: VersionStats,
        loop: asyncio.AbstractEventLoop,
        *,
        max_queue_delay_us: int = 0,
        max_queue_size: int = 1024,
    ):
        self.runtime, self.stats, self.loop = runtime, stats, loop
        self.max_batch_size = runtime.max_batch_size
        self.max_delay_ns = max_queue_delay_us * 1000
        self.max_queue_size = max_queue_size
        self._queue: deque[Job] = deque()
        self._queued_rows = 0
        self._running = 0  # jobs taken by the thread and not yet handed back
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(
            target=self._work, name=f"batcher-{runtime.name}-{runtime.version}", daemon=True
        )
        self._thread.start()

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def running(self) -> int:
        return self._running

    @property
    def busy(self) -> bool:
        return bool(self._queue) or self._running > 0

    def submit(self, job: Job) -> None:
        """Queue ``job`` (on the loop); a full queue or a closed batcher answers 503 now."""
        if self._closed:
            raise ProtocolError(503, f"{self.runtime.name}/{self.runtime.version} is shutting down")
        if len(self._queue) >= self.max_queue_size:
            raise ProtocolError(
                503,
                f"{self.runtime.name}/{self.runtime.version} is overloaded: "
                f"{len(self._queue)} requests waiting (max_queue_size)",
            )
        with self._cond:
            self._queue.append(job)
            self._queued_rows += job.rows
            self._cond.notify()

    def close(self) -> None:
        """Take no more requests; those queued are still run, then the thread ends."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # ---- the batcher's thread ---------------------------------------------------------------

    def _take(self) -> list[Job] | None:
        with self._cond:
            while not self._queue:
                if self._closed:
                    return None
                self._cond.wait()
            limit = self.max_batch_size or 1
            if self.max_delay_ns and self._queued_rows < limit:
                deadline = self._queue[0].arrived_ns + self.max_delay_ns
                while self._queued_rows < limit and not self._closed:
                    remaining = deadline - time.perf_counter_ns()
                    if remaining <= 0:
                        break
                    self._cond.wait(remaining / 1e9)
            jobs, skipped, rows, key = [], [], 0, None
            while self._queue:
                job = self._queue.popleft()
                if key is None:
                    key = job.key()
                if job.key() != key or (jobs and rows + job.rows > limit):
                    skipped.append(job)
                    if rows >= limit:
                        break
                    continue
                jobs.append(job)
                rows += job.rows
                if not self.max_batch_size:
                    break
            self._queue.extendleft(reversed(skipped))
            self._queued_rows -= rows
            self._running += len(jobs)
            return jobs

    def _work(self) -> None:
        while (jobs := self._take()) is not None:
            start = time.perf_counter_ns()
            live, results = [], []
            for job in jobs:
                if job.deadline_ns is not None and job.deadline_ns <= start:
                    waited = (start - job.arrived_ns) // 1000
                    results.append((job, None, ProtocolError(503, f"timed out after {waited} µs in the queue")))
                elif not job.finished:
                    live.append(job)
            if live:
                results += self._execute(live, start)
            self.loop.call_soon_threadsafe(self._deliver, results, len(jobs))

    def _execute(self, jobs: list[Job], start: int) -> list[tuple]:
        runtime = self.runtime
        try:
            if len(jobs) == 1:
                feeds = jobs[0].inputs
            else:
                feeds = {name: np.concatenate([j.inputs[name] for j in jobs]) for name in jobs[0].inputs}
            joined = time.perf_counter_ns()
            outputs = runtime.run(feeds)
            ran = time.perf_counter_ns()
        except Exception as exc:
            if len(jobs) > 1:  # find the request at fault; the others still get answers
                self.stats.retried_batches += 1
                return [result for job in jobs for result in self._execute([job], time.perf_counter_ns())]
            return [(jobs[0], None, ProtocolError(400, f"the model failed on this request: {exc}"))]
        rows = sum(j.rows for j in jobs)
        results, offset = [], 0
        for job in jobs:
            part = {
                name: (out[offset : offset + job.rows] if out.ndim and out.shape[0] == rows else out)
                for name, out in outputs.items()
            }
            offset += job.rows
            results.append((job, part, None))
        done = time.perf_counter_ns()
        self.stats.batch_done(
            len(jobs), rows, sum(start - j.arrived_ns for j in jobs), joined - start, ran - joined, done - ran
        )
        return results

    def _deliver(self, results: list[tuple], taken: int) -> None:
        with self._cond:
            self._running -= taken
        for job, outputs, error in results:
            if job.finished:
                continue
            job.finished = True
            job.done(outputs, error)
