"""Log lines that carry the request's correlation id and protected item.

Every line about a request goes through ``for_request`` so that one search for a correlation
id finds the whole story across invocations. Nothing here ever formats a header or a token.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

__all__ = ["RequestLog", "for_request"]


class RequestLog(logging.LoggerAdapter[logging.Logger]):
    """Prefixes messages with ``[correlation id]`` and puts both ids into the record's extras."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        extra = dict(self.extra or {})
        kwargs["extra"] = {**extra, **kwargs.get("extra", {})}
        # The ids come from producers and are put around a %-format string: a '%' in them is text.
        correlation_id = str(extra.get("correlation_id")).replace("%", "%%")
        item = str(extra.get("protected_item")).replace("%", "%%")
        return f"[{correlation_id}] {msg} (item {item})", kwargs


def for_request(logger: logging.Logger, correlation_id: str, protected_item: str | None) -> RequestLog:
    return RequestLog(logger, {"correlation_id": correlation_id, "protected_item": protected_item or "-"})
