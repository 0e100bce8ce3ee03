"""Exactly once, as pure rules: a ledger record and a delivery in, what to do out.

The protocol. A request's record holds ``step``: the version a message must carry to move the
request on. Every message of the request carries the step it was sent with (the request
message itself carries 0); a message whose step is the record's holds the baton, and its
processing ends in one ETag-guarded write that moves the step on and records what it sends
next. Whoever loses a write re-reads and decides again, so of any number of copies of a
message, delivered at once to several instances or one after another, exactly one acts.

What the ledger cannot make atomic is a write and the send that follows it. So each version
also says which step and which queue message wrote it (``written_by``, ``writer``) and what that
writer was about to do: a follow-up to send (``pending``), a POST under way (``posting_since``),
a result not yet marked sent. When the writer's own message comes back (the queue redelivers it,
same message id, because the writer died), it finishes that work; every other copy drops. The
only duplicate left is a result sent by a writer that died before marking it sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from shared.errors import ErrorInfo
from shared.ledger import Fingerprint, ItemRecord, RequestRecord
from shared.timing import next_utc_midnight

__all__ = [
    "Carry",
    "Claim",
    "DeliveryVerdict",
    "Drop",
    "ItemVerdict",
    "Join",
    "OverLimit",
    "Recover",
    "Reused",
    "Start",
    "TakeOver",
    "WaitFor",
    "key_reused",
    "on_delivery",
    "on_item",
]


@dataclass(frozen=True)
class Start:
    """No record yet: create one at this message's step (a request, or work in flight when the ledger came)."""


@dataclass(frozen=True)
class TakeOver:
    """The front door recorded the request; this request message becomes its carrier."""

    record: RequestRecord


@dataclass(frozen=True)
class Carry:
    """This message holds the baton: act, then move the record on."""

    record: RequestRecord


@dataclass(frozen=True)
class Recover:
    """This message's earlier delivery wrote the record and died: finish what it was doing."""

    record: RequestRecord


@dataclass(frozen=True)
class Drop:
    """A copy of work another message carries, or work already done: send nothing."""

    reason: str


@dataclass(frozen=True)
class Reused:
    """The key names another request: refuse it, never answer with the other's outcome."""

    record: RequestRecord


DeliveryVerdict = Start | TakeOver | Carry | Recover | Drop | Reused


def key_reused(key: str, first: RequestRecord) -> ErrorInfo:
    """The error of a request whose key the ledger holds for another: on the queue and over HTTP alike."""
    return ErrorInfo(
        "KeyReused", f"correlationId {key!r} was used for another request "
        f"(protected item {first.item_id}); give each request its own", target="correlationId",
    )


def on_delivery(
    record: RequestRecord | None,
    *,
    step: int,
    message_id: str | None,
    redelivered: bool,
    fingerprint: Fingerprint,
) -> DeliveryVerdict:
    if record is None:
        return Start()
    if not record.fingerprint.matches(fingerprint):
        return Reused(record)
    carrier = step != 0 or record.holder in {None, message_id}
    if record.step == step and not record.finished:
        if not carrier:
            return Drop("a copy of a request that another message carries")
        return TakeOver(record) if step == 0 and record.holder is None else Carry(record)
    unfinished_business = record.pending is not None or record.posting_since is not None or (
        record.finished and not record.result_sent
    )
    writer = record.writer in {None, message_id}  # None: written before writers were recorded
    if record.written_by == step and redelivered and carrier and writer and unfinished_business:
        return Recover(record)
    if record.finished:
        return Drop("the request has its result already")
    return Drop(f"step {step} is behind the ledger's step {record.step}")


@dataclass(frozen=True)
class Claim:
    """The item is free: take it (write ``item``) and trigger."""

    item: ItemRecord


@dataclass(frozen=True)
class Join:
    """The same backup of the item is running under ``key``: report its job."""

    key: str


@dataclass(frozen=True)
class WaitFor:
    """A different backup of the item is running under ``key``: trigger after it ends."""

    key: str


@dataclass(frozen=True)
class OverLimit:
    """``DAILY_TRIGGER_LIMITS`` allows the item no more triggers today."""

    limit: int
    retry_at: datetime


ItemVerdict = Claim | Join | WaitFor | OverLimit


def on_item(
    item: ItemRecord | None,
    owner: RequestRecord | None,
    *,
    item_id: str,
    key: str,
    fingerprint: Fingerprint,
    daily_limit: int | None,
    now: datetime,
) -> ItemVerdict:
    """Whether ``key`` may trigger a backup of the item now.

    ``owner`` is the record of the item's active key when that is another key. An owner that
    has its result, or whose record is gone, no longer holds the item: nothing releases an
    item, so no crash can leave one held.
    """
    if item is not None and item.active_key not in {None, key} and owner is not None and not owner.finished:
        running = item.active_fingerprint
        if running is not None and running.matches(fingerprint):
            return Join(owner.key)
        return WaitFor(owner.key)
    day = now.astimezone(UTC).date().isoformat()
    count = item.day_count if item is not None and item.day == day else 0
    if daily_limit is not None and count >= daily_limit:
        return OverLimit(daily_limit, next_utc_midnight(now))
    return Claim(ItemRecord(
        item_id=item_id, active_key=key, active_since=now, active_fingerprint=fingerprint, day=day,
        day_count=count + 1, etag=item.etag if item is not None else None,
    ))
