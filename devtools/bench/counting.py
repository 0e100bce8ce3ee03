"""A counting ``LedgerStore`` decorator: the ledger's table transactions, as the app spends them.

Wraps the store the app builds (``shared.ledger_table.TableStore``) and counts every call by
kind, failed ones included (a create that finds the key taken or a replace that finds another
ETag is a transaction the Table service bills too). Counts are kept per thread as well, so a
caller that runs one invocation per thread (``devtools.bench.inproc``) can attribute them to the
invocation. The retention sweep (``delete_older_than``) is counted apart: it runs at most every
ten minutes per instance, whatever the traffic, and is no cost of a backup.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime

from shared.ledger_store import Fields, LedgerStore, RecordKey, Stored

__all__ = ["SWEEP", "CountingStore"]

SWEEP = "delete_older_than"


class CountingStore:
    """A ``LedgerStore`` that passes every call to ``inner`` and counts it by kind, in total and per thread."""

    def __init__(self, inner: LedgerStore) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self._totals: Counter[str] = Counter()
        self._per_thread = threading.local()

    def read(self, key: RecordKey) -> Stored | None:
        self._count("read")
        return self._inner.read(key)

    def create(self, key: RecordKey, fields: Fields) -> str:
        self._count("create")
        return self._inner.create(key, fields)

    def replace(self, key: RecordKey, fields: Fields, etag: str, *, patient: bool = False) -> str:
        self._count("replace")
        return self._inner.replace(key, fields, etag, patient=patient)

    def delete_older_than(self, cutoff: datetime, limit: int) -> int:
        self._count(SWEEP)
        return self._inner.delete_older_than(cutoff, limit)

    def read_partition(self, partition: str) -> list[tuple[str, Stored]]:
        self._count("read_partition")  # one query: a transaction per 1,000 rows, counted as one here
        return self._inner.read_partition(partition)

    def totals(self) -> dict[str, int]:
        with self._lock:
            return dict(self._totals)

    def this_thread(self) -> int:
        """Transactions this thread has made so far, the sweep left out."""
        return int(getattr(self._per_thread, "count", 0))

    def _count(self, kind: str) -> None:
        with self._lock:
            self._totals[kind] += 1
        if kind != SWEEP:
            self._per_thread.count = self.this_thread() + 1
