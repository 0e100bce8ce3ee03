"""What the emulator saw: counters for the admin API and a bounded log of requests (token hashes, never tokens)."""

from __future__ import annotations

import hashlib
from collections import Counter, deque
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

COUNTED_KINDS = (
    "trigger", "operation_status", "operation_results", "job_get", "job_list", "items_list", "backup_status", "vm_get",
    "token_issued", "throttled", "faults", "unauthorized",
)


def token_fingerprint(token: str) -> str:
    """Enough of the token's sha256 to tell tokens apart in a log; the token itself is never recorded."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class LogEntry:
    seq: int
    time: str
    method: str
    path: str
    kind: str
    status: int | None
    token: str | None
    fault: str | None
    delay: float = 0.0
    """Real seconds the answer was held back (a ``slow`` fault), as applied after ``max_slow_seconds``."""


class Stats:
    """Not thread-safe on its own: the emulator calls it under its state lock."""

    def __init__(self, log_limit: int) -> None:
        self._log: deque[LogEntry] = deque(maxlen=log_limit)
        self._seq = 0
        self.counters: Counter[str] = Counter()
        self.status_codes: Counter[str] = Counter()
        self.triggers_by_item: Counter[str] = Counter()
        self.tokens_used: set[str] = set()

    def reset(self) -> None:
        self._log.clear()
        self.counters.clear()
        self.status_codes.clear()
        self.triggers_by_item.clear()
        self.tokens_used.clear()

    def record(
        self, *, method: str, path: str, kind: str, status: int | None, token: str | None, fault: str | None,
        delay: float = 0.0,
    ) -> None:
        self._seq += 1
        if kind in COUNTED_KINDS:
            self.counters[kind] += 1
        if fault is not None:
            self.counters["faults"] += 1
        elif status == 401:
            self.counters["unauthorized"] += 1
        elif status == 429:
            self.counters["throttled"] += 1
        self.status_codes["dropped" if status is None else str(status)] += 1
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        self._log.append(LogEntry(self._seq, stamp, method, path[:2048], kind, status, token, fault, delay))

    def snapshot(self) -> dict[str, Any]:
        counters = {kind: self.counters[kind] for kind in COUNTED_KINDS}
        return {
            **counters,
            "status_codes": dict(sorted(self.status_codes.items())),
            "triggers_by_item": dict(self.triggers_by_item),
            "distinct_tokens": len(self.tokens_used),
            "requests": self._seq,
        }

    def requests_since(self, since: int, limit: int) -> list[dict[str, Any]]:
        return [asdict(e) for e in self._log if e.seq > since][:limit]
