"""What happens to one received message, in the queue extension's order.

1. dequeue count above ``maxDequeueCount`` (a host died while it ran): to ``<queue>-poison``, unread;
2. not base64 under ``messageEncoding: base64``: to ``<queue>-poison``, unread;
3. invoke; on success write the outputs, then delete the message;
4. on failure: if this was the last allowed attempt, to ``<queue>-poison``; otherwise make it
   visible again after ``visibilityTimeout``.

The poison queue receives the original message text. One log line per message tells the
function, message id, dequeue count, outcome and duration.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping

from azure.core.exceptions import AzureError
from azure.storage.queue import QueueClient

from devtools.funchost.hostconfig import QueueOptions
from devtools.funchost.inflight import InFlight
from devtools.funchost.invocation import Delivery, InvalidEncoding, decode_body, encode_text, invoke
from devtools.funchost.loader import LoadedFunction
from devtools.funchost.logcontext import invocation_scope
from devtools.funchost.queueops import LeaseLost, send_creating

__all__ = ["MessageProcessor"]

logger = logging.getLogger("devtools.funchost.invocations")


class MessageProcessor:
    """Runs one function for the messages of its trigger queue."""

    def __init__(
        self,
        function: LoadedFunction,
        options: QueueOptions,
        poison_queue: QueueClient,
        output_queues: Mapping[str, QueueClient],
        wake: Callable[[str], None],
        function_timeout: float | None = None,
    ) -> None:
        self.function = function
        self._function_timeout = function_timeout
        self._options = options
        self._poison = poison_queue
        self._outputs = output_queues
        self._wake = wake

    def process(self, item: InFlight) -> None:
        """Settle ``item`` one way or another; never raises."""
        try:
            self._process(item)
        except LeaseLost as exc:
            logger.warning(
                "%s: message %s: lease lost (%s); it may run again", self.function.name, item.message.id, exc
            )
            item.abandon()
        except AzureError as exc:
            # Storage is down beyond the retries: the lease will lapse and the message come back.
            logger.error("%s: message %s could not be settled: %s", self.function.name, item.message.id, exc)
            item.abandon()
        finally:
            item.finish()

    def time_out(self, item: InFlight) -> None:
        """The function ran past functionTimeout: fail this attempt (its late result is dropped)."""
        logger.error(
            "%s: timeout value of %ss exceeded by invocation %s",
            self.function.name,
            self._function_timeout,
            item.invocation_id,
        )
        try:
            self._settle_failure(item, "TimedOut")
        finally:
            item.finish()

    def release_unstarted(self, item: InFlight) -> None:
        """Shutdown: hand a message back at once, for this or another host to pick up."""
        if not item.claim():
            return
        try:
            item.release(0)
        except LeaseLost:
            item.abandon()
            return
        self._log(item, "Released")

    def _process(self, item: InFlight) -> None:
        if item.dequeue_count > self._options.max_dequeue_count:
            if item.claim():
                self._poison_message(item, f"dequeue count {item.dequeue_count} exceeds maxDequeueCount")
            return
        try:
            body = decode_body(item.text, self._options.message_encoding)
        except InvalidEncoding as exc:
            if item.claim():
                self._poison_message(item, str(exc))
            return
        if not item.begin():
            return
        delivery = Delivery(
            id=item.message.id,
            body=body,
            pop_receipt=item.message.pop_receipt,
            dequeue_count=item.dequeue_count,
            insertion_time=item.message.inserted_on,
            expiration_time=item.message.expires_on,
            next_visible=item.message.next_visible_on,
        )
        with invocation_scope(self.function.name, item.invocation_id):
            try:
                emitted = invoke(self.function, delivery, item.invocation_id, self._options.max_dequeue_count)
            except Exception:  # the function's own failure: this is what the host reports and retries
                logger.exception("%s: invocation %s failed", self.function.name, item.invocation_id)
                if item.claim():
                    self._settle_failure(item, "Failed")
                return
        if not item.claim():  # the lease keeper timed it out meanwhile
            logger.warning(
                "%s: invocation %s finished after its timeout; result dropped", self.function.name, item.invocation_id
            )
            return
        try:
            self._write_outputs(emitted)
        except (AzureError, TypeError, UnicodeDecodeError) as exc:
            logger.error(
                "%s: writing the outputs of invocation %s failed: %s", self.function.name, item.invocation_id, exc
            )
            self._settle_failure(item, "Failed")
            return
        item.delete()
        self._log(item, "Succeeded")

    def _write_outputs(self, emitted: Mapping[str, list[str | bytes]]) -> None:
        encoding = self._options.message_encoding
        for binding_name, bodies in emitted.items():
            queue = self._outputs[binding_name]
            for body in bodies:
                send_creating(queue, encode_text(body, encoding))
            if bodies:
                self._wake(queue.queue_name)

    def _settle_failure(self, item: InFlight, outcome: str) -> None:
        if item.dequeue_count >= self._options.max_dequeue_count:
            self._poison_message(item, f"{outcome} on its last allowed attempt ({item.dequeue_count})")
            return
        item.release(self._options.visibility_timeout)
        self._log(item, outcome)

    def _poison_message(self, item: InFlight, reason: str) -> None:
        logger.warning(
            "%s: moving message %s to queue %s: %s",
            self.function.name,
            item.message.id,
            self._poison.queue_name,
            reason,
        )
        send_creating(self._poison, item.text)
        item.delete()
        self._log(item, "Poisoned")

    def _log(self, item: InFlight, outcome: str) -> None:
        started = item.started_at if item.started_at is not None else time.monotonic()
        duration_ms = round((time.monotonic() - started) * 1000)
        logger.info(
            "Executed %s message=%s dequeue=%d outcome=%s duration_ms=%d invocation=%s",
            self.function.name,
            item.message.id,
            item.dequeue_count,
            outcome,
            duration_ms,
            item.invocation_id,
        )
