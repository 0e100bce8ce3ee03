"""The request ledger's records: one per request key, one per protected item.

``RequestRecord`` is a request's state in the exactly-once protocol of ``shared.ledger_rules``:
the step the next message must carry, the step of the message that wrote it, a POST under
way, the follow-up sent, the result and whether it went out. ``ItemRecord`` says which key's
backup of an item is running and counts the item's triggers per UTC day. ``Ledger`` reads
and writes both over a ``LedgerStore`` with the ETags it read; it decides nothing.

Keys become SHA-256 digests: a correlation id may hold ``/``, ``#`` or ``?``, which Table keys
cannot, and digests spread the records over partitions.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from shared.ledger_store import Fields, LedgerStore, LedgerUnavailable, RecordKey, Stored
from shared.messages import BackupRequest, parse_instant

_T = TypeVar("_T")

__all__ = [
    "EXPIRY_TOLERANCE", "SWEEP_BATCH", "SWEEP_INTERVAL", "Fingerprint", "ItemRecord", "Ledger", "RequestRecord",
    "etag_of",
]

logger = logging.getLogger(__name__)

SWEEP_INTERVAL = timedelta(minutes=10)
SWEEP_BATCH = 100

EXPIRY_TOLERANCE = timedelta(hours=24)
"""Expiries this close count as the same request (a retention in days resolved a little later)."""


@dataclass(frozen=True)
class Fingerprint:
    """What makes two requests the same: the item, the properties but the expiry, and the expiry."""

    digest: str
    expiry: datetime | None

    @classmethod
    def of(cls, request: BackupRequest) -> Fingerprint:
        properties = {key: value for key, value in request.properties.items() if key != "recoveryPointExpiryTimeInUTC"}
        canonical = json.dumps([request.item.id.lower(), properties], sort_keys=True, separators=(",", ":"))
        expiry = request.properties.get("recoveryPointExpiryTimeInUTC")
        return cls(hashlib.sha256(canonical.encode()).hexdigest(), _instant(expiry) if expiry else None)

    def matches(self, other: Fingerprint) -> bool:
        if self.digest != other.digest:
            return False
        if self.expiry is None or other.expiry is None:
            return self.expiry is other.expiry
        return abs(self.expiry - other.expiry) <= EXPIRY_TOLERANCE


@dataclass(frozen=True)
class RequestRecord:
    key: str
    item_id: str
    fingerprint: Fingerprint
    step: int
    """The step the message that may carry the request on must hold."""
    written_by: int
    """The step of the message whose processing wrote this version (-1: created, not yet moved on)."""
    holder: str | None
    """Step 0's queue message id: producer duplicates of the request are other messages."""
    phase: str
    created_at: datetime
    posting_since: datetime | None = None
    """A trigger POST may be on its way since then; the next step must look before posting."""
    pending: str | None = None
    """The follow-up sent with this version, sent again if its sender died before sending it."""
    pending_delay: int = 0
    next_look_at: datetime | None = None
    job_id: str | None = None
    status: str | None = None
    """The result's status once there is one."""
    result: str | None = None
    result_sent: bool = False
    writer: str | None = None
    """The queue message whose processing wrote this version: only its redelivery may finish its work."""
    batch: str | None = None
    """The key of the batch this request is an item of: its outcome is recorded for the batch too."""
    etag: str | None = None

    @property
    def finished(self) -> bool:
        return self.result is not None

    def to_fields(self) -> Fields:
        return {
            "Key": self.key, "ItemId": self.item_id, "RequestHash": self.fingerprint.digest,
            "Expiry": self.fingerprint.expiry, "Step": self.step, "WrittenBy": self.written_by,
            "Holder": self.holder, "Phase": self.phase, "CreatedAt": self.created_at,
            "PostingSince": self.posting_since, "Pending": _bytes(self.pending), "PendingDelay": self.pending_delay,
            "NextLookAt": self.next_look_at, "JobId": self.job_id, "Status": self.status,
            "Result": _bytes(self.result), "ResultSent": self.result_sent, "Writer": self.writer,
            "Batch": self.batch,
        }

    @classmethod
    def from_stored(cls, stored: Stored) -> RequestRecord:
        f = stored.fields
        return cls(
            key=str(f["Key"]), item_id=str(f["ItemId"]),
            fingerprint=Fingerprint(str(f["RequestHash"]), _optional(f, "Expiry", datetime)),
            step=int(_number(f, "Step")), written_by=int(_number(f, "WrittenBy")),
            holder=_optional(f, "Holder", str), phase=str(f.get("Phase", "")), created_at=_required_instant(f),
            posting_since=_optional(f, "PostingSince", datetime), pending=_text(f, "Pending"),
            pending_delay=int(_number(f, "PendingDelay")), next_look_at=_optional(f, "NextLookAt", datetime),
            job_id=_optional(f, "JobId", str), status=_optional(f, "Status", str), result=_text(f, "Result"),
            result_sent=f.get("ResultSent") is True, writer=_optional(f, "Writer", str),
            batch=_optional(f, "Batch", str), etag=stored.etag,
        )

    def moved_on(self, by: int, writer: str | None = None, **changes: Any) -> RequestRecord:
        """The next version, written by the message ``writer`` of step ``by``: what it sent before is settled."""
        reset: dict[str, Any] = {"posting_since": None, "pending": None, "pending_delay": 0}
        return replace(self, step=self.step + 1, written_by=by, writer=writer, **(reset | changes))


@dataclass(frozen=True)
class ItemRecord:
    item_id: str
    active_key: str | None = None
    """The key whose backup of this item runs (or ran last: its record says whether it ended)."""
    active_since: datetime | None = None
    active_fingerprint: Fingerprint | None = None
    day: str | None = None
    """The UTC day ``day_count`` counts triggers of, as YYYY-MM-DD."""
    day_count: int = 0
    etag: str | None = None

    def to_fields(self) -> Fields:
        fingerprint = self.active_fingerprint
        return {
            "ItemId": self.item_id, "ActiveKey": self.active_key, "ActiveSince": self.active_since,
            "ActiveHash": fingerprint.digest if fingerprint else None,
            "ActiveExpiry": fingerprint.expiry if fingerprint else None,
            "Day": self.day, "DayCount": self.day_count,
        }

    @classmethod
    def from_stored(cls, stored: Stored) -> ItemRecord:
        f = stored.fields
        digest = _optional(f, "ActiveHash", str)
        return cls(
            item_id=str(f["ItemId"]), active_key=_optional(f, "ActiveKey", str),
            active_since=_optional(f, "ActiveSince", datetime),
            active_fingerprint=Fingerprint(digest, _optional(f, "ActiveExpiry", datetime)) if digest else None,
            day=_optional(f, "Day", str), day_count=int(_number(f, "DayCount")), etag=stored.etag,
        )


class Ledger:
    """Typed reads and ETag-guarded writes of the two record kinds, and the retention sweep."""

    def __init__(self, store: LedgerStore) -> None:
        self.store = store
        self._next_sweep: datetime | None = None
        self._sweep_lock = threading.Lock()

    def sweep_if_due(self, now: datetime, retention_days: int) -> int:
        """Delete a bounded batch of records older than the retention, at most every few minutes.

        Piggy-backed on normal work rather than a timer function: no schedule to configure, and
        a busy app sweeps as fast as it writes. A failed sweep only waits for the next one.
        """
        with self._sweep_lock:
            if self._next_sweep is not None and now < self._next_sweep:
                return 0
            self._next_sweep = now + SWEEP_INTERVAL
        try:
            deleted = self.store.delete_older_than(now - timedelta(days=retention_days), SWEEP_BATCH)
        except LedgerUnavailable as exc:
            logger.warning("ledger retention sweep failed, next try in %s: %s", SWEEP_INTERVAL, exc)
            return 0
        if deleted:
            logger.info("ledger retention: deleted %d records older than %d days", deleted, retention_days)
        return deleted

    def request(self, key: str) -> RequestRecord | None:
        stored = self.store.read(request_key(key))
        return None if stored is None else RequestRecord.from_stored(stored)

    def create_request(self, record: RequestRecord) -> RequestRecord:
        return replace(record, etag=self.store.create(request_key(record.key), record.to_fields()))

    def save_request(self, record: RequestRecord, etag: str) -> RequestRecord:
        return replace(record, etag=self.store.replace(request_key(record.key), record.to_fields(), etag))

    def mark_result_sent(self, record: RequestRecord) -> None:
        """Mark the recorded result sent, waiting out a brief outage; ``RecordChanged`` if another copy marked it."""
        self.store.replace(
            request_key(record.key), replace(record, result_sent=True).to_fields(), etag_of(record), patient=True
        )

    def item(self, item_id: str) -> ItemRecord | None:
        stored = self.store.read(item_key(item_id))
        return None if stored is None else ItemRecord.from_stored(stored)

    def save_item(self, record: ItemRecord) -> ItemRecord:
        """Create the item's record (``etag`` None) or replace the version read."""
        key = item_key(record.item_id)
        if record.etag is None:
            return replace(record, etag=self.store.create(key, record.to_fields()))
        return replace(record, etag=self.store.replace(key, record.to_fields(), record.etag))


def etag_of(record: RequestRecord) -> str:
    """The ETag ``record`` was read or written with: what a guarded replace of it needs."""
    if record.etag is None:
        raise ValueError("a record to replace must have been read")
    return record.etag


def request_key(key: str) -> RecordKey:
    # surrogatepass: a key is any JSON string, lone surrogates included; it must still have a record.
    return RecordKey(f"r-{hashlib.sha256(key.encode('utf-8', 'surrogatepass')).hexdigest()}", "request")


def item_key(item_id: str) -> RecordKey:
    return RecordKey(f"i-{hashlib.sha256(item_id.lower().encode('utf-8', 'surrogatepass')).hexdigest()}", "item")


def _bytes(text: str | None) -> bytes | None:
    # Binary holds 64 KiB; a string property only 32 K UTF-16 characters, less than a result may need.
    return None if text is None else text.encode("utf-8")


def _text(fields: Fields, name: str) -> str | None:
    value = fields.get(name)
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value if isinstance(value, str) else None


def _optional(fields: Fields, name: str, kind: type[_T]) -> _T | None:
    value = fields.get(name)
    return value if isinstance(value, kind) else None


def _number(fields: Fields, name: str) -> int:
    value = fields.get(name, 0)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _required_instant(fields: Fields) -> datetime:
    value = fields.get("CreatedAt")
    if not isinstance(value, datetime):
        raise ValueError("a ledger record without CreatedAt")
    return value


def _instant(value: object) -> datetime | None:
    try:
        return parse_instant(str(value))
    except ValueError:
        return None
