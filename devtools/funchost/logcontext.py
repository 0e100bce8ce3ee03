"""Which invocation a log record belongs to, as the worker tags the logs it forwards to the host.

``invocation_scope`` marks the current thread while a function runs; ``InvocationFilter`` copies
that mark onto every record (``%(invocation)s``), so a function's own ``logging.info`` lines can
be told apart when sixteen run at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["LOG_FORMAT", "InvocationFilter", "invocation_scope"]

LOG_FORMAT = "%(asctime)s %(levelname)-7s [%(invocation)s] %(name)s: %(message)s"

_current = threading.local()


@contextmanager
def invocation_scope(function_name: str, invocation_id: str) -> Iterator[None]:
    previous = getattr(_current, "label", None)
    _current.label = f"{function_name} {invocation_id[:8]}"
    try:
        yield
    finally:
        _current.label = previous


class InvocationFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.invocation = getattr(_current, "label", None) or "host"
        return True
