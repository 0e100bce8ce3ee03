"""The poll loop of one queue trigger, after the queue extension's ``QueueListener``.

Fetch up to ``batchSize`` messages (leased for ten minutes) whenever no more than
``newBatchThreshold`` of this function's messages are still in progress. After a fetch that
found messages, poll again at once; after an empty one, wait with a randomized exponential
back-off from 100 ms up to ``maxPollingInterval``. A message written by this host to the queue
wakes the listener early, as the host's shared queue watcher does.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable

from azure.core.exceptions import AzureError
from azure.storage.queue import QueueClient
from azure.storage.queue import QueueMessage as StorageMessage

from devtools.funchost.hostconfig import QueueOptions
from devtools.funchost.queueops import ensure_queue, is_queue_missing

__all__ = ["Backoff", "QueueListener"]

logger = logging.getLogger(__name__)

_MIN_POLL_SECONDS = 0.1
_MAX_MESSAGES_PER_GET = 32  # the service's limit for one Get Messages call


class Backoff:
    """Randomized exponential delays between empty polls."""

    def __init__(self, maximum: float, minimum: float = _MIN_POLL_SECONDS) -> None:
        self._minimum = minimum
        self._maximum = max(maximum, minimum)
        self._next = minimum

    def reset(self) -> None:
        self._next = self._minimum

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self._maximum)
        # Jitter keeps many idle listeners from polling in lock-step.
        return min(self._maximum, delay * random.uniform(0.8, 1.2))


class QueueListener:
    def __init__(
        self,
        function_name: str,
        queue: QueueClient,
        options: QueueOptions,
        lease_seconds: float,
        dispatch: Callable[[StorageMessage], None],
    ) -> None:
        self.function_name = function_name
        self.queue = queue
        self._options = options
        self._lease_seconds = int(lease_seconds)
        self._dispatch = dispatch
        self._running = 0
        self._slots = threading.Condition()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._backoff = Backoff(options.max_polling_interval)
        self._failing = False
        self._thread = threading.Thread(target=self._run, name=f"funchost-listen-{function_name}", daemon=True)

    @property
    def running(self) -> int:
        with self._slots:
            return self._running

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        with self._slots:
            self._slots.notify_all()

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def wake(self) -> None:
        self._wake.set()

    def finished_one(self) -> None:
        with self._slots:
            self._running -= 1
            self._slots.notify_all()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wait_for_capacity()
            if self._stopping.is_set():
                return
            batch = self._fetch()
            if batch:
                self._backoff.reset()
                for message in batch:
                    with self._slots:
                        self._running += 1
                    self._dispatch(message)
                continue
            self._wake.wait(self._backoff.next_delay())
            if self._wake.is_set():
                self._wake.clear()
                self._backoff.reset()

    def _wait_for_capacity(self) -> None:
        with self._slots:
            while self._running > self._options.new_batch_threshold and not self._stopping.is_set():
                self._slots.wait()

    def _fetch(self) -> list[StorageMessage]:
        count = min(self._options.batch_size, _MAX_MESSAGES_PER_GET)
        try:
            pages = self.queue.receive_messages(
                messages_per_page=count, max_messages=count, visibility_timeout=self._lease_seconds
            ).by_page()
            batch = list(next(pages, []))
        except AzureError as exc:
            self._report_failure(exc)
            return []
        if self._failing:
            logger.info("%s: queue %s is reachable again", self.function_name, self.queue.queue_name)
            self._failing = False
        return batch

    def _report_failure(self, exc: AzureError) -> None:
        if is_queue_missing(exc):
            try:
                ensure_queue(self.queue)
                return
            except AzureError as create_exc:
                exc = create_exc
        # Once per outage, not once per poll: an Azurite restart would otherwise flood the log.
        if not self._failing:
            logger.warning("%s: polling queue %s failed: %s", self.function_name, self.queue.queue_name, exc)
            self._failing = True
        else:
            logger.debug("%s: polling queue %s still failing: %s", self.function_name, self.queue.queue_name, exc)
