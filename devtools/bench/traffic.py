"""Queue traffic for load runs: send many requests quickly, collect results, count what is left behind.

Every loop here is bounded by a count and a deadline; waiting is polling, never a fixed sleep.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from azure.core.exceptions import AzureError, ResourceExistsError
from azure.storage.queue import QueueClient, QueueServiceClient

from devtools.queuectl import message_count

__all__ = ["ResultCollector", "Results", "ensure_queues", "send_all", "send_with_backlog"]

_RECEIVE_PAGE = 32
_IDLE_PAUSE = 0.05


def ensure_queues(service: QueueServiceClient, names: Sequence[str]) -> None:
    for name in names:
        try:
            service.get_queue_client(name).create_queue()
        except ResourceExistsError:
            continue


def send_all(service: QueueServiceClient, queue_name: str, texts: Sequence[str], *, threads: int = 8) -> float:
    """Send every text (plain, as the app expects) with ``threads`` senders; the seconds it took."""
    started = time.perf_counter()
    chunks = [list(texts[n::threads]) for n in range(threads)]

    def send_chunk(chunk: list[str]) -> None:
        client = service.get_queue_client(queue_name)
        for text in chunk:
            client.send_message(text)

    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(send_chunk, chunk) for chunk in chunks if chunk]:
            future.result()
    return time.perf_counter() - started


def send_with_backlog(
    service: QueueServiceClient, queue_name: str, texts: Sequence[str], *, backlog: int, timeout: float,
    watch: Sequence[str] = (), chunk: int = 100,
) -> float:
    """Send every text, keeping at most about ``backlog`` messages waiting in ``queue_name`` and the ``watch``
    queues together (a throttled request waits on the follow-up queue); the seconds it took.

    Azurite slows down as a queue grows (it scans the queue on every receive), unlike the Storage
    service; a bounded backlog keeps the consumer busy without measuring Azurite's scans instead.
    """
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    watched = [service.get_queue_client(name) for name in (queue_name, *watch)]
    pause = threading.Event()
    sent = 0
    while sent < len(texts):
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {sent} of {len(texts)} messages sent within {timeout:.0f}s")
        if sum(message_count(queue) for queue in watched) >= backlog:
            pause.wait(0.1)  # the consumer is behind: look again shortly
            continue
        batch = texts[sent:sent + chunk]
        send_all(service, queue_name, batch, threads=4)
        sent += len(batch)
    return time.perf_counter() - started


@dataclass
class Results:
    """Result messages by correlation id, and the texts that were not JSON."""

    by_correlation: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    unreadable: list[str] = field(default_factory=list)
    first_at: float | None = None
    last_at: float | None = None

    @property
    def total(self) -> int:
        return sum(len(found) for found in self.by_correlation.values()) + len(self.unreadable)

    def unique(self, expected: set[str] | None = None) -> int:
        keys = self.by_correlation.keys() if expected is None else self.by_correlation.keys() & expected
        return len(keys)

    def duplicates(self) -> int:
        return sum(len(found) - 1 for found in self.by_correlation.values() if len(found) > 1)

    def statuses(self) -> dict[str, int]:
        counted: dict[str, int] = defaultdict(int)
        for found in self.by_correlation.values():
            for result in found:
                counted[str(result.get("status"))] += 1
        return dict(sorted(counted.items()))


class ResultCollector:
    """Drains a results queue on a thread of its own; ``wait_for`` polls what it gathered."""

    def __init__(self, queue: QueueClient, *, clock: Callable[[], float] = time.perf_counter) -> None:
        self._queue = queue
        self._clock = clock
        self._lock = threading.Lock()
        self._results = Results()
        self._seen: set[str] = set()  # message ids: a redelivered message (delete lost) is not a new result
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-results", daemon=True)
        self.errors = 0
        self.started_at: float | None = None

    def __enter__(self) -> ResultCollector:
        self.started_at = self._clock()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def snapshot(self) -> Results:
        with self._lock:
            copy = Results(first_at=self._results.first_at, last_at=self._results.last_at)
            copy.by_correlation.update({key: list(value) for key, value in self._results.by_correlation.items()})
            copy.unreadable.extend(self._results.unreadable)
            return copy

    def wait_for(self, expected: set[str], timeout: float, settle: Callable[[], bool] | None = None) -> Results:
        """Until every expected correlation id has a result (and ``settle()`` holds), or the deadline."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            results = self.snapshot()
            if results.unique(expected) >= len(expected) and (settle is None or settle()):
                return results
            self._stop.wait(0.2)
        return self.snapshot()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                got = self._drain_once()
            except AzureError:
                self.errors += 1  # Azurite restarting under a chaos test: try again shortly
                got = 0
            if not got:
                self._stop.wait(_IDLE_PAUSE)

    def _drain_once(self) -> int:
        pages = self._queue.receive_messages(messages_per_page=_RECEIVE_PAGE, max_messages=_RECEIVE_PAGE,
                                             visibility_timeout=60).by_page()
        batch = list(next(pages, []))
        now = self._clock()
        for message in batch:
            if message.id not in self._seen:
                self._seen.add(message.id)
                self._record(str(message.content), now)
            self._queue.delete_message(message)
        return len(batch)

    def _record(self, text: str, now: float) -> None:
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        with self._lock:
            if self._results.first_at is None:
                self._results.first_at = now
            self._results.last_at = now
            if isinstance(document, dict):
                self._results.by_correlation[str(document.get("correlationId"))].append(document)
            else:
                self._results.unreadable.append(text)
