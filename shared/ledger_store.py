"""The ledger's persistence seam: records by key with ETags, in a table or in memory.

A store knows nothing of requests. It keeps flat records (``Fields``: text, whole numbers,
flags, bytes, instants) under a ``RecordKey`` and guards every change with the ETag the
caller read, as idempotency layers do: a create fails when the key exists, a replace fails
when the record changed since it was read. Callers re-read and decide again; nothing is
ever overwritten blindly. ``shared.ledger_table`` is the Azure Table store; ``MemoryStore``
serves the unit tests.

::

    LedgerConflict          the record is not as the caller last saw it: re-read, decide again
    ├── RecordExists        create: a record with that key exists
    └── RecordChanged       replace: the ETag no longer matches (or the record is gone)
    LedgerUnavailable       the store cannot be reached: an infrastructure failure, let the host retry
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

__all__ = [
    "FieldValue",
    "Fields",
    "LedgerConflict",
    "LedgerStore",
    "LedgerUnavailable",
    "MemoryStore",
    "RecordChanged",
    "RecordExists",
    "RecordKey",
    "Stored",
]

FieldValue = str | int | bool | bytes | datetime
Fields = Mapping[str, FieldValue | None]
"""A record's content. Absent and None are the same: stores drop None values."""


@dataclass(frozen=True)
class RecordKey:
    """Where a record lives: the Table's PartitionKey and RowKey (both free of ``/\\#?`` and controls)."""

    partition: str
    row: str


@dataclass(frozen=True)
class Stored:
    fields: Fields
    etag: str


class LedgerConflict(Exception):
    """The record is not as the caller last saw it; re-read and decide again."""


class RecordExists(LedgerConflict):
    """A create found the key taken."""


class RecordChanged(LedgerConflict):
    """A replace found another ETag, or no record."""


class LedgerUnavailable(Exception):
    """The ledger is configured but cannot be reached; the host retries the message, then poisons it."""


class LedgerStore(Protocol):
    def read(self, key: RecordKey) -> Stored | None: ...

    def create(self, key: RecordKey, fields: Fields) -> str:
        """Insert a new record and return its ETag; ``RecordExists`` if the key is taken."""
        ...

    def replace(self, key: RecordKey, fields: Fields, etag: str, *, patient: bool = False) -> str:
        """Replace the record read with ``etag`` and return the new ETag; ``RecordChanged`` otherwise.

        ``patient``: a write whose repetition is harmless, worth waiting for across a brief outage
        (the sent mark: a result is out, and a mark that fails makes the redelivery send it again).
        A repeated write that had landed meets its own ETag change: ``RecordChanged``.
        """
        ...

    def delete_older_than(self, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` records last changed before ``cutoff``; how many were deleted."""
        ...

    def read_partition(self, partition: str) -> list[tuple[str, Stored]]:
        """Every record of one partition, with its row key, in row key order (a batch's rows)."""
        ...


class MemoryStore:
    """A ``LedgerStore`` in a dict, with the Table store's conflict behaviour, for tests.

    ``clock`` stamps each change, standing in for the Table's own ``Timestamp``.
    """

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._records: dict[RecordKey, tuple[dict[str, FieldValue], str, datetime]] = {}
        self._etags = itertools.count(1)
        self._lock = threading.Lock()
        self.transactions = 0
        """Every call counts one, as the Table service bills them."""

    def read(self, key: RecordKey) -> Stored | None:
        with self._lock:
            self.transactions += 1
            found = self._records.get(key)
            return None if found is None else Stored(dict(found[0]), found[1])

    def create(self, key: RecordKey, fields: Fields) -> str:
        with self._lock:
            self.transactions += 1
            if key in self._records:
                raise RecordExists(f"{key} exists")
            return self._put(key, fields)

    def replace(self, key: RecordKey, fields: Fields, etag: str, *, patient: bool = False) -> str:
        with self._lock:
            self.transactions += 1
            found = self._records.get(key)
            if found is None or found[1] != etag:
                raise RecordChanged(f"{key} changed since it was read")
            return self._put(key, fields)

    def delete_older_than(self, cutoff: datetime, limit: int) -> int:
        with self._lock:
            self.transactions += 1
            old = [key for key, (_, _, changed) in self._records.items() if changed < cutoff][:limit]
            for key in old:
                del self._records[key]
            return len(old)

    def read_partition(self, partition: str) -> list[tuple[str, Stored]]:
        with self._lock:
            self.transactions += 1
            found = [(key.row, Stored(dict(fields), etag))
                     for key, (fields, etag, _) in self._records.items() if key.partition == partition]
        return sorted(found, key=lambda pair: pair[0])

    def keys(self) -> list[RecordKey]:
        with self._lock:
            return list(self._records)

    def _put(self, key: RecordKey, fields: Fields) -> str:
        etag = f'W/"{next(self._etags)}"'
        self._records[key] = ({name: value for name, value in fields.items() if value is not None}, etag, self._clock())
        return etag
