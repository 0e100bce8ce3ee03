"""Messages the host holds: their visibility lease, its renewal, and the function timeout.

Like the queue extension, the host receives messages invisible for ten minutes and renews that
lease at half-time while the function runs, so a long invocation is never seen twice. Exactly
one party settles a message (the invocation when it ends, the timeout, or shutdown): whoever
claims it first; the others leave it alone.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from enum import Enum

from azure.core.exceptions import AzureError
from azure.storage.queue import QueueClient
from azure.storage.queue import QueueMessage as StorageMessage

from devtools.funchost.queueops import LeaseLost, retrying

__all__ = ["DEFAULT_LEASE_SECONDS", "InFlight", "LeaseKeeper"]

logger = logging.getLogger(__name__)

DEFAULT_LEASE_SECONDS = 600.0


class _State(Enum):
    WAITING = "waiting"
    RUNNING = "running"
    SETTLING = "settling"
    SETTLED = "settled"


class InFlight:
    """One received message: its current pop receipt, its lease, and who may settle it."""

    def __init__(self, function_name: str, queue: QueueClient, message: StorageMessage, lease_seconds: float) -> None:
        self.function_name = function_name
        self.queue = queue
        self.message = message
        self.invocation_id = str(uuid.uuid4())
        self.received_at = time.monotonic()
        self.started_at: float | None = None
        self._lease_seconds = lease_seconds
        self._lease_until = self.received_at + lease_seconds
        self._pop_receipt = message.pop_receipt
        self._state = _State.WAITING
        self._lock = threading.Lock()
        self._finished = False
        self.on_finished: Callable[[InFlight], None] = lambda _item: None

    @property
    def text(self) -> str:
        # The service returns an empty message's text as nothing at all.
        return str(self.message.content or "")

    @property
    def dequeue_count(self) -> int:
        return int(self.message.dequeue_count or 0)

    def begin(self) -> bool:
        """Mark the invocation as started; False when it was settled before it could start."""
        with self._lock:
            if self._state is not _State.WAITING:
                return False
            self._state = _State.RUNNING
            self.started_at = time.monotonic()
            return True

    def claim(self) -> bool:
        """Take the sole right to settle this message."""
        with self._lock:
            if self._state in (_State.SETTLING, _State.SETTLED):
                return False
            self._state = _State.SETTLING
            return True

    def running_longer_than(self, seconds: float, now: float) -> bool:
        with self._lock:
            return self._state is _State.RUNNING and self.started_at is not None and now - self.started_at > seconds

    def renew_if_due(self, now: float) -> None:
        with self._lock:
            if self._state is _State.SETTLED or now < self._lease_until - self._lease_seconds / 2:
                return
            try:
                updated = self.queue.update_message(
                    self.message.id, self._pop_receipt, visibility_timeout=int(self._lease_seconds)
                )
            except AzureError as exc:
                logger.warning(
                    "%s: renewing the lease of message %s failed: %s", self.function_name, self.message.id, exc
                )
                return
            self._pop_receipt = updated.pop_receipt
            self._lease_until = now + self._lease_seconds

    def delete(self) -> None:
        """Settle by deleting: the message is done."""
        with self._lock:
            receipt = self._pop_receipt
            retrying(lambda: self.queue.delete_message(self.message.id, receipt), f"deleting message {self.message.id}")
            self._state = _State.SETTLED

    def release(self, visibility_seconds: float) -> None:
        """Settle by making the message visible again after ``visibility_seconds``."""
        with self._lock:
            receipt = self._pop_receipt
            retrying(
                lambda: self.queue.update_message(self.message.id, receipt, visibility_timeout=int(visibility_seconds)),
                f"releasing message {self.message.id}",
            )
            self._state = _State.SETTLED

    def finish(self) -> None:
        """Report the message as no longer held, once (a timed-out invocation ends twice)."""
        with self._lock:
            if self._finished:
                return
            self._finished = True
        self.on_finished(self)

    def abandon(self) -> None:
        """Give up the message without a storage call (its lease is already lost)."""
        with self._lock:
            self._state = _State.SETTLED


class LeaseKeeper:
    """Renews the leases of held messages and times out invocations that run too long."""

    def __init__(
        self, lease_seconds: float, function_timeout: float | None, on_timeout: Callable[[InFlight], None]
    ) -> None:
        self._tick = min(1.0, lease_seconds / 4)
        self._function_timeout = function_timeout
        self._on_timeout = on_timeout
        self._items: set[InFlight] = set()
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="funchost-leases", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)

    def add(self, item: InFlight) -> None:
        with self._changed:
            self._items.add(item)

    def discard(self, item: InFlight) -> None:
        with self._changed:
            self._items.discard(item)
            self._changed.notify_all()

    def held(self) -> list[InFlight]:
        with self._changed:
            return list(self._items)

    def wait_until_empty(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._items:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    def _run(self) -> None:
        while not self._stopping.wait(self._tick):
            now = time.monotonic()
            for item in self.held():
                if (
                    self._function_timeout is not None
                    and item.running_longer_than(self._function_timeout, now)
                    and item.claim()
                ):
                    self._time_out(item)
                else:
                    item.renew_if_due(now)

    def _time_out(self, item: InFlight) -> None:
        try:
            self._on_timeout(item)
        except (AzureError, LeaseLost) as exc:
            logger.error("%s: settling timed-out message %s failed: %s", item.function_name, item.message.id, exc)
            item.abandon()
            item.finish()
