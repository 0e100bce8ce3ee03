"""Storage calls the host makes outside polling: create-if-missing, sends, bounded retries.

Settling a message (delete, release, poison) must survive a storage hiccup such as an Azurite
restart, so those calls retry transient failures for a bounded time; a message whose lease is
gone (deleted, or its pop receipt superseded) is not retried: it will simply be seen again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.queue import QueueClient

__all__ = ["LeaseLost", "ensure_queue", "is_queue_missing", "retrying", "send_creating"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
_DELAYS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 8.0)
_LEASE_GONE_CODES = frozenset({"MessageNotFound", "PopReceiptMismatch"})


class LeaseLost(Exception):
    """The message is no longer ours: deleted, or leased again by someone else."""


def is_queue_missing(exc: BaseException) -> bool:
    return isinstance(exc, HttpResponseError) and getattr(exc, "error_code", None) == "QueueNotFound"


def ensure_queue(client: QueueClient) -> None:
    try:
        client.create_queue()
        logger.info("created queue %s", client.queue_name)
    except ResourceExistsError:
        pass


def send_creating(client: QueueClient, text: str) -> None:
    """Send, creating the queue on first use as the host's output binding does."""
    try:
        client.send_message(text)
    except HttpResponseError as exc:
        if not is_queue_missing(exc):
            raise
        ensure_queue(client)
        client.send_message(text)


def retrying(operation: Callable[[], T], what: str) -> T:
    """Run a storage call, retrying transient failures for about half a minute."""
    for attempt, delay in enumerate((*_DELAYS, None)):
        try:
            return operation()
        except ResourceNotFoundError as exc:
            code = getattr(exc, "error_code", None)
            if code in _LEASE_GONE_CODES:
                raise LeaseLost(f"{what}: {code}") from exc
            raise
        except HttpResponseError as exc:
            code = getattr(exc, "error_code", None)
            if code in _LEASE_GONE_CODES:
                raise LeaseLost(f"{what}: {code}") from exc
            status = exc.status_code
            if delay is None or status is None or (status < 500 and status not in (408, 429)):
                raise
            logger.warning("%s failed (attempt %d, HTTP %s); retrying", what, attempt + 1, exc.status_code)
        except (ServiceRequestError, ServiceResponseError) as exc:
            if delay is None:
                raise
            logger.warning("%s failed (attempt %d: %s); retrying", what, attempt + 1, type(exc).__name__)
        time.sleep(delay)
    raise AzureError(f"{what}: retries exhausted")  # unreachable: the last attempt re-raises
