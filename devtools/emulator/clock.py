"""The emulated clock: Azure time runs `scale` times faster than real time, so hours of backups pass in seconds.

Two readings: `now()`, the emulated time that decides how far operations and jobs have got, and
`caller_now()`, a clock at real speed that callers' own clocks agree with, by which the service
stamps what it reports.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta


class EmulatedClock:
    """now() = start + real elapsed * scale; rebased on every change so emulated time never jumps backwards."""

    def __init__(
        self,
        scale: float,
        start: datetime | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._monotonic = monotonic
        self._origin = start or datetime.now(UTC)
        self._origin_mono = monotonic()
        self._scale = scale
        self._caller_origin, self._caller_origin_mono = self._origin, self._origin_mono

    @property
    def scale(self) -> float:
        return self._scale

    def now(self) -> datetime:
        return self._origin + timedelta(seconds=(self._monotonic() - self._origin_mono) * self._scale)

    def caller_now(self) -> datetime:
        """The time at real speed from the same start, moved only by `advance` and `restart`.

        Jobs and operations are stamped by this clock (their durations stay emulated), so that a caller
        who filters jobs by times of its own clock finds them, however far `now()` has run ahead.
        """
        return self._caller_origin + timedelta(seconds=self._monotonic() - self._caller_origin_mono)

    def set_scale(self, scale: float) -> None:
        self._rebase(self.now())
        self._scale = scale

    def restart(self, start: datetime | None = None) -> None:
        """Start over from `start` (default: the real time now), as if the emulator had just started."""
        self._rebase(start or datetime.now(UTC))
        self._caller_origin, self._caller_origin_mono = self._origin, self._origin_mono

    def advance(self, seconds: float) -> None:
        """Jump both readings forward: a test that skips a day skips it for callers too."""
        self._rebase(self.now() + timedelta(seconds=seconds))
        self._caller_origin += timedelta(seconds=seconds)

    def retry_after(self, emulated_seconds: float) -> int:
        """Real seconds a client should wait for `emulated_seconds` to pass; whole seconds, at least 1, as ARM sends."""
        return max(1, math.ceil(emulated_seconds / self._scale))

    def _rebase(self, origin: datetime) -> None:
        self._origin = origin
        self._origin_mono = self._monotonic()
