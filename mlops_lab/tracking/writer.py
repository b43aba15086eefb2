"""A background thread that gathers what the API logs and writes it in batches.

The caller pays for a dictionary and a list append; the database sees one transaction every
``interval`` seconds (or sooner when much is waiting, or when someone calls ``flush``).  Jobs —
callables that return a ``Batch`` — run on the same thread, in order, so slow capture work (git,
package lists, ONNX conversion, hashing) never runs on the user's path.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable

from sqlalchemy.exc import OperationalError

from ..config import redact
from ..store import Batch, StoreError
from ..store.runs import RunStore

log = logging.getLogger("mlops_lab")

Job = Callable[[], Batch | None]


class BatchWriter:
    def __init__(
        self,
        store: RunStore,
        interval: float = 0.25,
        max_rows: int = 20_000,
        heartbeat: Callable[[], Batch | None] | None = None,
        heartbeat_seconds: float = 15,
    ):
        self.store = store
        self.interval = interval
        self.max_rows = max_rows
        self._heartbeat = heartbeat
        self._heartbeat_seconds = heartbeat_seconds
        self._items: list[tuple[str, list] | Job] = []
        self._rows = 0
        self._added = 0
        self._written = 0
        self._error: BaseException | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="mlops_lab-writer", daemon=True)
            self._thread.start()

    def add(self, kind: str, rows: list) -> None:
        """Queue rows for a ``Batch`` field (``"metrics"``, ``"run_updates"``, …)."""
        with self._cond:
            self._items.append((kind, rows))
            self._added += 1
            self._rows += len(rows)
            if self._rows >= self.max_rows:
                self._cond.notify_all()
        self._ensure_thread()

    def add_batch(self, batch: Batch) -> None:
        """Queue every row of a ``Batch`` made on the caller's thread."""
        for kind in batch.__dataclass_fields__:
            rows = getattr(batch, kind)
            if rows:
                self.add(kind, rows)

    def defer(self, job: Job) -> None:
        """Run ``job`` on the writer thread; the batch it returns is written in order."""
        with self._cond:
            self._items.append(job)
            self._added += 1
        self._ensure_thread()

    def raise_pending_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise StoreError(f"an earlier write to {redact(self.store.url)} failed: {error}") from error

    def flush(self, timeout: float = 120) -> None:
        """Return once everything queued before this call is in the database."""
        with self._cond:
            target = self._added
            if self._written < target:
                self._ensure_thread()
                self._cond.notify_all()
                deadline = time.monotonic() + timeout
                while self._written < target and self._error is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise StoreError(f"writing to {redact(self.store.url)} did not finish within {timeout:.0f} s")
                    self._cond.wait(remaining)
        self.raise_pending_error()

    def _take(self) -> tuple[list, int]:
        with self._cond:
            if not self._items and self._rows < self.max_rows:
                self._cond.wait(self.interval)
            items, self._items, self._rows = self._items, [], 0
            return items, self._added

    def _loop(self) -> None:
        last_heartbeat = time.monotonic()
        while True:
            items, sequence = self._take()
            batch = Batch()
            try:
                for item in items:
                    if callable(item):
                        produced = self._run_job(item)
                        if produced is not None:
                            batch.extend(produced)
                    else:
                        kind, rows = item
                        getattr(batch, kind).extend(rows)
                if self._heartbeat and time.monotonic() - last_heartbeat > self._heartbeat_seconds:
                    last_heartbeat = time.monotonic()
                    beat = self._heartbeat()
                    if beat is not None:
                        batch.extend(beat)
                self._write_with_retry(batch)
            except BaseException as exc:  # surfaced to the caller on its next API call
                log.error("mlops_lab could not write %d rows: %s", len(batch), exc)
                print(
                    f"mlops_lab: could not write {len(batch)} rows to {redact(self.store.url)}: {exc}", file=sys.stderr
                )
                self._error = exc
            with self._cond:
                self._written = max(self._written, sequence)
                self._cond.notify_all()

    @staticmethod
    def _run_job(job: Job) -> Batch | None:
        """A job that fails fails alone: the rest of the batch is still written."""
        try:
            return job()
        except Exception as exc:
            log.error("mlops_lab: a background job failed and was skipped: %s", exc)
            print(f"mlops_lab: a background logging job failed and was skipped: {exc}", file=sys.stderr)
            return None

    def _write_with_retry(self, batch: Batch, attempts: int = 8) -> None:
        delay = 0.05
        for attempt in range(attempts):
            try:
                for conflict in self.store.write(batch) or []:
                    print(
                        f"mlops_lab: param {conflict['key']!r} of run {conflict['run_id']} stays "
                        f"{conflict['kept']!r}; another process logged {conflict['refused']!r} (params cannot change)",
                        file=sys.stderr,
                    )
                return
            except OperationalError as exc:  # locked or a dropped connection: worth another try
                if attempt == attempts - 1:
                    raise
                log.warning("mlops_lab write retry %d after %s", attempt + 1, exc)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
