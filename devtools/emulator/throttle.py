"""ARM's request throttling: a token bucket per subscription and per kind (writes, reads), in real time."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from .config import Bucket, ThrottleConfig


@dataclass
class _State:
    tokens: float
    updated: float


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    remaining: int
    retry_after: int


class Throttle:
    """Not thread-safe on its own: the emulator calls it under its state lock."""

    def __init__(self, config: ThrottleConfig, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._monotonic = monotonic
        self._buckets: dict[tuple[str, str], _State] = {}

    def configure(self, config: ThrottleConfig) -> None:
        self._config = config

    def reset(self) -> None:
        self._buckets.clear()

    def take(self, subscription: str, kind: str) -> Verdict:
        """Spend one token of the subscription's `kind` ("writes" or "reads") bucket, if there is one."""
        bucket: Bucket = getattr(self._config, kind)
        now = self._monotonic()
        state = self._buckets.setdefault((subscription.lower(), kind), _State(bucket.capacity, now))
        state.tokens = min(bucket.capacity, state.tokens + (now - state.updated) * bucket.refill_per_second)
        state.updated = now
        if state.tokens >= 1:
            state.tokens -= 1
            return Verdict(True, int(state.tokens), 0)
        wait = (1 - state.tokens) / bucket.refill_per_second
        return Verdict(False, 0, max(1, math.ceil(wait)))
