"""How long to wait: Retry-After in all its forms, backoff with jitter, and the queue's bounds.

Pure functions; the clock and the random source are arguments.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from email.utils import parsedate_to_datetime

__all__ = ["backoff_seconds", "delay_within", "next_utc_midnight", "retry_after_seconds"]

MAX_QUEUE_DELAY_SECONDS = 7 * 24 * 3600


def retry_after_seconds(headers: Mapping[str, str], now: datetime) -> float | None:
    """The wait a response asks for, in seconds, or None when it asks for none.

    ``retry-after-ms`` and ``x-ms-retry-after-ms`` are the more precise and win; ``Retry-After``
    is delta-seconds or an HTTP date. ``headers`` must look names up case-insensitively (as
    ``requests``' headers do). Unreadable values count as absent rather than as errors.
    """
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        milliseconds = _number(headers.get(name))
        if milliseconds is not None:
            return milliseconds / 1000.0
    value = headers.get("retry-after")
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    return max(0.0, (when - now).total_seconds())


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def backoff_seconds(attempt: int, *, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with "equal jitter": half the step fixed, half random, never above ``cap``.

    ``attempt`` counts from 1. Equal rather than full jitter keeps a floor under each wait, so a
    burst of failures cannot all come back almost at once.
    """
    step = min(cap, base * 2 ** min(attempt - 1, 32))
    return float(step / 2 + rng.uniform(0, step / 2))


def delay_within(seconds: float, *, floor: int, deadline_in: float | None = None) -> int:
    """Whole seconds to hide a message: at least ``floor``, at most the queue's seven days.

    With ``deadline_in`` the wait ends no later than the deadline (but not below the floor), so
    the last look happens at the deadline rather than long after it.
    """
    if deadline_in is not None:
        seconds = min(seconds, deadline_in)
    return max(floor, min(MAX_QUEUE_DELAY_SECONDS, math.ceil(seconds)))


def next_utc_midnight(now: datetime) -> datetime:
    """When Azure Backup's daily on-demand limits start afresh: they count per UTC day."""
    today = now.astimezone(UTC).date()
    return datetime.combine(today + timedelta(days=1), time(0), tzinfo=UTC)
