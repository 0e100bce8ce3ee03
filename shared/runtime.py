"""Process-wide wiring: settings, one credential, one HTTP session, one queue sender, the ledger.

Built on first use and kept for the life of the worker process, so warm invocations pay for
none of it and tokens and connections are reused.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from azure.identity import DefaultAzureCredential

from shared.arm import ArmClient
from shared.httpsession import pooled_session
from shared.ledger import Ledger
from shared.ledger_table import ledger_store
from shared.queues import QueueSender, queue_service
from shared.settings import Settings
from shared.workflow import Services

__all__ = ["override", "services", "utc_now"]

_lock = threading.Lock()
_services: Services | None = None


def utc_now() -> datetime:
    return datetime.now(UTC)


def services() -> Services:
    global _services  # noqa: PLW0603 - the one process-wide instance, built lazily under a lock
    if _services is None:
        with _lock:
            if _services is None:
                _services = _build(Settings.from_environment())
    return _services


@contextmanager
def override(replacement: Services) -> Iterator[Services]:
    """Run the functions against ``replacement`` (tests, benchmarks): no patching by name needed."""
    global _services  # noqa: PLW0603
    with _lock:
        previous, _services = _services, replacement
    try:
        yield replacement
    finally:
        with _lock:
            _services = previous


def _build(settings: Settings) -> Services:
    credential = DefaultAzureCredential()
    session = pooled_session()  # no transport retries: a repeated trigger POST would spend the item's quota
    store = ledger_store(settings, credential)
    return Services(
        settings=settings,
        arm=ArmClient(settings, credential, session, utc_now),
        sender=QueueSender(queue_service(settings, credential)),
        clock=utc_now,
        rng=random.Random(),  # noqa: S311 - jitter, not secrets
        ledger=Ledger(store) if store is not None else None,
    )
