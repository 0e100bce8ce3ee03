"""Typed reads of the fields of a document this app wrote earlier (a follow-up), refusing what it never writes.

Each raises ``RequestRejected`` naming the field, so a tampered or garbled follow-up becomes an
``UnreadableFollowUp`` result rather than an exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.errors import RequestRejected
from shared.messages import parse_instant

__all__ = ["count_field", "instant_field", "optional_instant_field", "text_field"]


def instant_field(document: Mapping[str, Any], key: str) -> datetime:
    value = document.get(key)
    if not isinstance(value, str):
        raise RequestRejected(key, "must be an ISO 8601 instant")
    try:
        return parse_instant(value)
    except ValueError:
        raise RequestRejected(key, "must be an ISO 8601 instant") from None


def optional_instant_field(document: Mapping[str, Any], key: str) -> datetime | None:
    return None if document.get(key) is None else instant_field(document, key)


def count_field(document: Mapping[str, Any], key: str) -> int:
    """A whole number of at least 0; absent is 0."""
    value = document.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise RequestRejected(key, "must be a whole number")
    return value


def text_field(document: Mapping[str, Any], key: str) -> str | None:
    value = document.get(key)
    if value is not None and not isinstance(value, str):
        raise RequestRejected(key, "must be a string")
    return value
