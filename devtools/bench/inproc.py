"""The two functions run in this process over the stack's queues, each call timed (wall and CPU).

A thin stand-in for the host, used only to measure: one receiver per trigger queue, a pool of
worker threads, each message given to the function's ``main`` exactly as the worker builds it
(``azure.functions.queue.QueueMessage``, a ``func.Out[str]``), the output written to the results
queue and the message deleted. Results are counted off the results queue, where both kinds land:
the output binding's (written here) and those the function sends itself (the ledger on).
Only the call of ``main`` is timed: ``time.perf_counter`` for wall
time and ``time.thread_time`` for the CPU time of the thread that ran it (everything ``main`` does,
HTTP included, runs on that thread). Given ``transactions`` (a per-thread counter such as
``devtools.bench.counting.CountingStore.this_thread``), each call also records how many ledger
table transactions it made.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import azure.functions as func
import azure.functions.queue as func_queue
from azure.storage.queue import QueueClient, QueueMessage, QueueServiceClient

from devtools.stack import REPO_ROOT

__all__ = ["CallTiming", "InProcessRun"]

if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # the function folders import as the host imports them

_BATCH = 16
_IDLE_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class CallTiming:
    function: str
    wall_ms: float
    cpu_ms: float
    transactions: int = 0


class _Out(func.Out[str]):
    def __init__(self) -> None:
        self.value: str | None = None

    def set(self, val: str) -> None:
        self.value = val

    def get(self) -> str:
        return self.value or ""


Main = Callable[[func.QueueMessage, func.Out[str]], None]


class InProcessRun:
    """``run(expected, timeout)``: serve both queues until ``expected`` results were written."""

    def __init__(
        self, service: QueueServiceClient, queues: dict[str, str], *, threads: int = 16,
        transactions: Callable[[], int] = lambda: 0,
    ) -> None:
        import poll_status
        import trigger_backup

        self._functions: list[tuple[str, QueueClient, Main]] = [
            ("trigger_backup", service.get_queue_client(queues["BACKUP_REQUESTS_QUEUE"]), trigger_backup.main),
            ("poll_status", service.get_queue_client(queues["BACKUP_STATUS_QUEUE"]), poll_status.main),
        ]
        self._results = service.get_queue_client(queues["BACKUP_RESULTS_QUEUE"])
        self._threads = threads
        self._transactions = transactions
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self.timings: list[CallTiming] = []
        self.results: list[dict[str, Any]] = []
        self.failures = 0

    def run(self, expected: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with ThreadPoolExecutor(self._threads, thread_name_prefix="inproc") as pool:
            while time.monotonic() < deadline:
                with self._lock:
                    if len(self.results) >= expected:
                        return
                self._collect_results()
                fetched = 0
                for name, queue, main in self._functions:
                    batch = list(next(queue.receive_messages(
                        messages_per_page=_BATCH, max_messages=_BATCH, visibility_timeout=300).by_page(), []))
                    fetched += len(batch)
                    for future in [pool.submit(self._invoke, name, queue, main, message) for message in batch]:
                        future.result()
                if not fetched:
                    self._idle.wait(_IDLE_POLL_SECONDS)  # nothing visible yet: look again shortly
        raise TimeoutError(f"only {len(self.results)} of {expected} results within {timeout:.0f}s")

    def _invoke(self, name: str, queue: QueueClient, main: Main, message: QueueMessage) -> None:
        body = str(message.content).encode("utf-8")
        trigger = func_queue.QueueMessage(  # type: ignore[no-untyped-call]  # untyped in azure-functions
            id=message.id, body=body, pop_receipt=message.pop_receipt, dequeue_count=message.dequeue_count,
            insertion_time=message.inserted_on, expiration_time=message.expires_on,
            time_next_visible=message.next_visible_on,
        )
        out = _Out()
        wall, cpu, spent = time.perf_counter(), time.thread_time(), self._transactions()
        try:
            main(trigger, out)
        except Exception:  # the host would retry it; here it is counted and left to reappear
            with self._lock:
                self.failures += 1
            return
        finally:
            timing = CallTiming(name, (time.perf_counter() - wall) * 1000, (time.thread_time() - cpu) * 1000,
                                self._transactions() - spent)
            with self._lock:
                self.timings.append(timing)
        if out.value is not None:
            self._results.send_message(out.value)
        queue.delete_message(message)

    def _collect_results(self) -> None:
        """Take the results that have landed so far off the results queue."""
        for message in self._results.receive_messages(messages_per_page=32, max_messages=32):
            document = json.loads(str(message.content))
            self._results.delete_message(message)
            with self._lock:
                self.results.append(document)
