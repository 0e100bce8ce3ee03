"""Carrying a step through the request ledger: exactly one trigger and one result per key.

The I/O half of ``shared.ledger_rules`` (read the record, ask the rules, act, write the record,
then send what the write promised) and of the item check before a POST (join, wait, daily
limits). ``shared.workflow`` calls ``carry`` for every message when the ledger is on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from shared import backup, ledger_rules, waiting
from shared.batches import outcome_of
from shared.batchrows import BatchRows
from shared.errors import ErrorInfo
from shared.followup import FollowUp, Phase
from shared.ledger import Fingerprint, Ledger, RequestRecord, etag_of
from shared.ledger_store import LedgerConflict, LedgerUnavailable
from shared.logs import for_request
from shared.results import ResultStatus, finished, rejected

if TYPE_CHECKING:
    from shared.workflow import Delivery, Services

__all__ = ["carry", "resend_pending", "send_result"]

logger = logging.getLogger(__name__)

Step = Callable[[FollowUp, "Services"], backup.Decision]

_MAX_CONFLICTS = 8
"""Re-reads after lost writes before the host is asked to retry; each loss means another copy won."""
_GETS_FIRST = frozenset({Phase.OPERATION, Phase.JOB})
"""Phases whose ARM call is a GET: with the ETag in hand it may go before the (guarded) write."""


@dataclass(frozen=True)
class _Carrier:
    """This invocation: what it works with, and the queue message it carries (recorded with each write)."""

    services: Services
    ledger: Ledger
    step: Step
    message_id: str | None


def carry(
    follow_up: FollowUp, delivery: Delivery, services: Services, ledger: Ledger, step: Step, raw: bytes | None = None
) -> str | None:
    """Move the request on if this message holds it; the text is a result for the output binding.

    ``raw``, the request message as received, is given for step 0 and serves a ``KeyReused`` result.
    """
    hint = follow_up.ledger_etag if follow_up.phase in _GETS_FIRST else None
    carrier = _Carrier(services, ledger, step, delivery.message_id)
    # A request's first delivery almost always finds no record: its first try creates one without
    # reading first; a key taken (a producer's duplicate, the front door) is a conflict like any other.
    create_first = follow_up.step == 0 and not delivery.redelivered
    for _ in range(_MAX_CONFLICTS):
        try:
            return _carry_once(follow_up, delivery, carrier, hint, raw, create_first=create_first)
        except LedgerConflict:
            hint, create_first = None, False  # someone else wrote: read, then decide again
    raise LedgerUnavailable(f"the ledger record of {follow_up.backup_request.correlation_id!r} kept changing")


def _carry_once(
    follow_up: FollowUp, delivery: Delivery, carrier: _Carrier, hint: str | None, raw: bytes | None, *,
    create_first: bool,
) -> str | None:
    request, services, ledger = follow_up.backup_request, carrier.services, carrier.ledger
    fingerprint = Fingerprint.of(request)
    if hint is not None:
        return _advance(follow_up, _record_of(follow_up, fingerprint, hint), carrier)
    if create_first:
        return _advance_started(follow_up, _start(follow_up, carrier), carrier)
    record = ledger.request(request.correlation_id)
    verdict = ledger_rules.on_delivery(
        record, step=follow_up.step, message_id=delivery.message_id, redelivered=delivery.redelivered,
        fingerprint=fingerprint,
    )
    log = for_request(logger, request.correlation_id, request.item.label)
    match verdict:
        case ledger_rules.Start():
            return _advance_started(follow_up, _start(follow_up, carrier), carrier)
        case ledger_rules.TakeOver(record=found):
            taken = replace(found, holder=delivery.message_id)
            if follow_up.phase is Phase.TRIGGER:
                return _trigger(follow_up, taken, carrier)  # the request and the baton in one write
            return _advance(follow_up, ledger.save_request(taken, etag_of(found)), carrier)
        case ledger_rules.Carry(record=found):
            return _advance(follow_up, found, carrier)
        case ledger_rules.Recover(record=found):
            log.warning("finishing what an earlier delivery of step %d left undone", follow_up.step)
            return _recover(follow_up, found, carrier)
        case ledger_rules.Drop(reason=reason):
            log.info("nothing to do: %s", reason)
            return None
        case ledger_rules.Reused(record=found):
            log.warning("correlation id reused for another request (first: %s)", found.item_id)
            if raw is None:
                return None
            error = ledger_rules.key_reused(request.correlation_id, found)
            return rejected(raw, error, services.clock(), correlation_id=request.correlation_id,
                            message_id=delivery.message_id, request=request.to_json())
    raise AssertionError(f"unhandled verdict {verdict}")  # pragma: no cover - match is exhaustive


@dataclass(frozen=True)
class _Started:
    """A record this message created: as a reader would have found it absent, and as written."""

    fresh: RequestRecord
    written: RequestRecord
    at: datetime


def _start(follow_up: FollowUp, carrier: _Carrier) -> _Started:
    """Create the request's record at this message's step; ``RecordExists`` if the key is taken.

    A trigger's record is created holding the posting baton, so no write of its own precedes the POST.
    """
    now = carrier.services.clock()
    fresh = replace(_record_of(follow_up, Fingerprint.of(follow_up.backup_request), None), holder=carrier.message_id)
    posting = follow_up.phase is Phase.TRIGGER
    written = carrier.ledger.create_request(_holding_post(fresh, follow_up, carrier, now) if posting else fresh)
    return _Started(fresh, written, now)


def _advance_started(follow_up: FollowUp, started: _Started, carrier: _Carrier) -> str | None:
    if follow_up.phase is Phase.TRIGGER:
        return _post(follow_up, started.fresh, started.written, carrier, started.at)
    return _advance(follow_up, started.written, carrier)


def _advance(follow_up: FollowUp, record: RequestRecord, carrier: _Carrier) -> str | None:
    services = carrier.services
    if follow_up.phase is Phase.TRIGGER:
        return _trigger(follow_up, record, carrier)
    if follow_up.phase is Phase.WAIT and follow_up.waiting_for_key is not None:
        owner = carrier.ledger.request(follow_up.waiting_for_key)
        decision = waiting.after_watched_request(follow_up, owner, services.clock(), services.settings)
    else:
        decision = carrier.step(follow_up, services)
    _settle(decision, follow_up, record, carrier)
    return None


def _trigger(follow_up: FollowUp, record: RequestRecord, carrier: _Carrier) -> str | None:
    """Take the baton in a write of its own before anything can POST, then check the item and post."""
    now = carrier.services.clock()
    posting = carrier.ledger.save_request(_holding_post(record, follow_up, carrier, now), etag_of(record))
    return _post(follow_up, record, posting, carrier, now)


def _holding_post(record: RequestRecord, follow_up: FollowUp, carrier: _Carrier, now: datetime) -> RequestRecord:
    """The next version of ``record``: this message holds the baton and a POST may go out from ``now``."""
    return record.moved_on(
        by=follow_up.step, writer=carrier.message_id, phase=Phase.TRIGGER.value,
        posting_since=record.posting_since or now,
    )


def _post(
    follow_up: FollowUp, record: RequestRecord, posting: RequestRecord, carrier: _Carrier, now: datetime
) -> str | None:
    """``record`` as read (did an earlier delivery post?), ``posting`` as written holding the baton."""
    try:
        decision = _check_item_and_post(follow_up, record, carrier, now)
        _settle(decision, follow_up, posting, carrier)
    except LedgerConflict as exc:
        # Not decided again here: a POST may be out. The host's redelivery recovers, looking first.
        raise LedgerUnavailable(f"the ledger record changed while posting: {exc}") from exc
    return None


def _check_item_and_post(
    follow_up: FollowUp, record: RequestRecord, carrier: _Carrier, now: datetime
) -> backup.Decision:
    services, ledger, step = carrier.services, carrier.ledger, carrier.step
    request, settings = follow_up.backup_request, services.settings
    key, item_id = request.correlation_id, request.item.id
    for _ in range(_MAX_CONFLICTS):
        item = ledger.item(item_id)
        if item is not None and item.active_key == key and record.posting_since is not None:
            # An earlier delivery claimed the item and may have posted: look before posting again.
            return step(follow_up.advance(trigger_uncertain_since=record.posting_since), services)
        owner = ledger.request(item.active_key) if item is not None and item.active_key not in {None, key} else None
        verdict = ledger_rules.on_item(
            item, owner, item_id=item_id, key=key, fingerprint=Fingerprint.of(request),
            daily_limit=settings.daily_trigger_limits.get(request.item.item.split(";", 1)[0].lower()), now=now,
        )
        match verdict:
            case ledger_rules.Join(key=running) | ledger_rules.WaitFor(key=running):
                joining = isinstance(verdict, ledger_rules.Join)
                waiting_phase = follow_up.enter(Phase.WAIT, now, waiting_for_key=running, joining=joining)
                return backup.Continue(waiting_phase, settings.min_delay_seconds)
            case ledger_rules.OverLimit(limit=limit):
                error = ErrorInfo(
                    "CloudDosAbsoluteLimitReached",
                    f"DAILY_TRIGGER_LIMITS allows {limit} on-demand backups of this item per UTC day; none were sent",
                )
                return backup.Finish(ResultStatus.FAILED, follow_up, error=error)
            case ledger_rules.Claim(item=claim):
                try:
                    ledger.save_item(claim)
                except LedgerConflict:
                    continue  # another request took the item meanwhile: look again
                return step(follow_up, services)
    raise LedgerUnavailable(f"the ledger record of item {item_id!r} kept changing")


def _settle(decision: backup.Decision, follow_up: FollowUp, record: RequestRecord, carrier: _Carrier) -> None:
    """Record what the step decided, then send it: the next follow-up, or the result."""
    services, ledger = carrier.services, carrier.ledger
    settings, now = services.settings, services.clock()
    request = decision.follow_up.backup_request
    log = for_request(logger, request.correlation_id, request.item.label)
    if isinstance(decision, backup.Continue):
        following = backup.stamp_deadline(decision.follow_up, settings).advance(step=record.step + 1, ledger_etag=None)
        saved = ledger.save_request(record.moved_on(
            by=follow_up.step, writer=carrier.message_id, phase=following.phase.value, pending=following.to_text(),
            pending_delay=decision.delay_seconds, next_look_at=now + timedelta(seconds=decision.delay_seconds),
            job_id=following.job_id,
        ), etag_of(record))
        services.sender.send(
            settings.status_queue, following.advance(ledger_etag=saved.etag).to_text(), decision.delay_seconds
        )
        log.info("%s phase: next look in %d s (step %d)", following.phase.value, decision.delay_seconds, saved.step)
        return
    text = finished(
        decision.follow_up, decision.status, now, error=decision.error, job=decision.job, joined=decision.joined
    )
    ended = record.moved_on(
        by=follow_up.step, writer=carrier.message_id, phase="finished", status=decision.status.value, result=text,
        job_id=decision.follow_up.job_id,
    )
    saved = ledger.save_request(ended, etag_of(record))
    log.info("finished %s%s", decision.status.value, f" ({decision.error.code})" if decision.error else "")
    send_result(saved, services, ledger)


def _recover(follow_up: FollowUp, record: RequestRecord, carrier: _Carrier) -> str | None:
    services, ledger = carrier.services, carrier.ledger
    if record.result is not None:
        send_result(record, services, ledger)
        return None
    if record.pending is not None:
        resend_pending(record, services)
        return None
    return _trigger(follow_up, record, carrier)


def resend_pending(record: RequestRecord, services: Services) -> None:
    """Send the follow-up the record promised, due when it would have been had its writer lived."""
    if record.pending is None:
        raise ValueError("a record without a pending follow-up has nothing to resend")
    now = services.clock()
    delay = 0 if record.next_look_at is None else max(0, int((record.next_look_at - now).total_seconds()))
    services.sender.send(services.settings.status_queue, record.pending, delay)


def send_result(record: RequestRecord, services: Services, ledger: Ledger) -> None:
    """Send the recorded result, then mark it sent; an item of a batch records its outcome for the batch first."""
    if record.result is None:
        raise ValueError("a record without a result has nothing to send")
    if record.batch is not None:
        BatchRows(ledger.store).record_outcome(record.batch, record.key, outcome_of(record.result))
    services.sender.send(services.settings.results_queue, record.result)
    try:
        ledger.mark_result_sent(record)
    except LedgerConflict:
        # A redelivered copy that sent the result too, or our own retried mark whose answer was lost.
        logger.warning("[%s] result sent; its sent mark was written meanwhile", record.key)


def _record_of(follow_up: FollowUp, fingerprint: Fingerprint, etag: str | None) -> RequestRecord:
    """The record as this follow-up's sender wrote it, as far as the next write needs it."""
    request = follow_up.backup_request
    return RequestRecord(
        key=request.correlation_id, item_id=request.item.id, fingerprint=fingerprint, step=follow_up.step,
        written_by=-1, holder=None, phase=follow_up.phase.value, created_at=follow_up.requested_at,
        batch=request.batch, etag=etag,
    )
