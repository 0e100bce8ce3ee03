"""A batch's steps through the request ledger: list a page, release a page, look at the outcomes.

The I/O half of ``shared.batchrules``, carried by the ledger's exactly-once protocol
(``shared.ledger_rules``) as a request is: the batch key's record holds the step, and each step
ends in one ETag-guarded write of that record, then the follow-up or the summary it promised.
What a step does before its write is made harmless to repeat, so a redelivery may redo it:

- a listed page is recorded in its own row first; a step delivered again finds the row and
  reuses it (no second GET), so the page is what was listed the first time;
- a page's requests are sent before the write; sent again by a redelivery, each goes to the
  same release time (it follows from the item's index) under the same key with the same
  content, and the ledger lets only one copy of a request act.

``shared.workflow`` hands over every batch request and batch follow-up; batches need the ledger.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared import batchrules, ledger_rules
from shared.armtransport import CallScope
from shared.batches import (
    BatchRequest,
    ChildOutcome,
    batch_status,
    child_key,
    child_message,
    child_request,
    release_at,
    release_delay,
    summary,
)
from shared.batchrows import BatchRows, ListedPage
from shared.batchstate import BatchFollowUp, BatchPhase
from shared.carry import resend_pending, send_result
from shared.errors import ErrorInfo, PermanentError, RequestRejected, TransientError
from shared.ledger import Ledger, RequestRecord, etag_of
from shared.ledger_store import LedgerConflict, LedgerUnavailable
from shared.logs import for_request
from shared.messages import check_allowed
from shared.results import ResultStatus, rejected, unreadable_follow_up

if TYPE_CHECKING:
    from shared.workflow import Delivery, Services

__all__ = ["follow", "start"]

logger = logging.getLogger(__name__)

_MAX_CONFLICTS = 8
_PAGES_PER_RELEASE = 50
"""Page rows one release step reads at most while skipping pages that selected nothing."""


def _needs_ledger() -> ErrorInfo:
    return ErrorInfo(
        "BatchNeedsLedger", "batches need the request ledger: set BACKUP_LEDGER_TABLE (it is on by default)"
    )


def start(batch: BatchRequest, raw: bytes, delivery: Delivery, services: Services) -> str | None:
    """A batch request, checked: list its vault from the first page. The text is a result for the binding."""
    now = services.clock()
    if services.ledger is None:
        return rejected(raw, _needs_ledger(), now, correlation_id=batch.key, message_id=delivery.message_id,
                        request=batch.to_json(), kind="batch")
    for_request(logger, batch.key, batch.label).info("batch accepted: %s", batch.select.to_json())
    first = batchrules.first_follow_up(BatchFollowUp(batch, BatchPhase.LIST, now, now), services.settings)
    return _carry(first, delivery, services, services.ledger, raw)


def follow(document: dict[str, Any], raw: bytes, delivery: Delivery, services: Services) -> str | None:
    """A batch's follow-up from the status queue; not trusted: checked as the request was."""
    now = services.clock()
    try:
        follow_up = BatchFollowUp.from_document(document)
        check_allowed(follow_up.batch.vault, services.settings)
        if services.ledger is None:
            raise RequestRejected("kind", _needs_ledger().message, code=_needs_ledger().code)
    except RequestRejected as exc:
        key = document.get("correlationId")
        logger.error("[%s] unreadable batch follow-up %s: %s", key, delivery.message_id, exc.info.message)
        return unreadable_follow_up(raw, exc.info, now, correlation_id=key if isinstance(key, str) else None,
                                    message_id=delivery.message_id)
    return _carry(follow_up, delivery, services, services.ledger)


def _carry(
    follow_up: BatchFollowUp, delivery: Delivery, services: Services, ledger: Ledger, raw: bytes | None = None
) -> str | None:
    for _ in range(_MAX_CONFLICTS):
        try:
            return _carry_once(follow_up, delivery, services, ledger, raw)
        except LedgerConflict:
            continue  # another copy wrote meanwhile: read, then decide again
    raise LedgerUnavailable(f"the ledger record of batch {follow_up.key!r} kept changing")


def _carry_once(
    follow_up: BatchFollowUp, delivery: Delivery, services: Services, ledger: Ledger, raw: bytes | None
) -> str | None:
    batch = follow_up.batch
    log = for_request(logger, batch.key, batch.label)
    record = ledger.request(batch.key)
    verdict = ledger_rules.on_delivery(
        record, step=follow_up.step, message_id=delivery.message_id, redelivered=delivery.redelivered,
        fingerprint=batch.fingerprint(),
    )
    match verdict:
        case ledger_rules.Start():
            created = ledger.create_request(RequestRecord(
                key=batch.key, item_id=batch.vault.id, fingerprint=batch.fingerprint(), step=follow_up.step,
                written_by=-1, holder=delivery.message_id, phase=follow_up.phase.value,
                created_at=follow_up.requested_at,
            ))
            _advance(follow_up, created, services, ledger, delivery)
        case ledger_rules.TakeOver(record=found):
            taken = ledger.save_request(replace(found, holder=delivery.message_id), etag_of(found))
            _advance(follow_up, taken, services, ledger, delivery)
        case ledger_rules.Carry(record=found):
            _advance(follow_up, found, services, ledger, delivery)
        case ledger_rules.Recover(record=found):
            log.warning("finishing what an earlier delivery of batch step %d left undone", follow_up.step)
            _recover(found, services, ledger)
        case ledger_rules.Drop(reason=reason):
            log.info("nothing to do: %s", reason)
        case ledger_rules.Reused(record=found):
            log.warning("batch key reused for another request (first: %s)", found.item_id)
            if raw is not None:
                error = ledger_rules.key_reused(batch.key, found)
                return rejected(raw, error, services.clock(), correlation_id=batch.key,
                                message_id=delivery.message_id, request=batch.to_json(), kind="batch")
    return None


def _advance(
    follow_up: BatchFollowUp, record: RequestRecord, services: Services, ledger: Ledger, delivery: Delivery
) -> None:
    rows, now = BatchRows(ledger.store), services.clock()
    match follow_up.phase:
        case BatchPhase.LIST:
            decision = _list(follow_up, rows, services, now)
        case BatchPhase.RELEASE:
            decision = _release(follow_up, rows, services, now)
        case BatchPhase.COLLECT:
            decision = batchrules.after_look(follow_up, rows.contents(follow_up.key), now, services.settings)
    _settle(decision, follow_up, record, services, ledger, now, delivery.message_id)


def _list(follow_up: BatchFollowUp, rows: BatchRows, services: Services, now: datetime) -> batchrules.Decision:
    batch, settings = follow_up.batch, services.settings
    page = rows.page(batch.key, follow_up.page)
    if page is None:
        scope = CallScope(batch.vault.subscription_id, batch.key, batch.label)
        try:
            listed = services.arm.list_protected_items(
                batch.vault, scope, batch.select.odata_filter(), next_link=follow_up.next_link
            )
        except TransientError as exc:
            return batchrules.after_transient(follow_up, exc, now, settings, services.rng)
        except PermanentError as exc:
            return batchrules.after_permanent(follow_up, exc)
        if listed.unreadable:
            logger.warning("[%s] page %d: %d listed items name no container to address them by",
                           batch.key, follow_up.page, listed.unreadable)
        page = rows.save_page(batch.key, batchrules.select_page(follow_up, listed, settings))
    return batchrules.after_page(follow_up, page, now, settings)


def _release(follow_up: BatchFollowUp, rows: BatchRows, services: Services, now: datetime) -> batchrules.Decision:
    number, released = follow_up.page, follow_up.released
    for _ in range(_PAGES_PER_RELEASE):
        if number >= follow_up.pages:
            break
        page = rows.page(follow_up.key, number)
        if page is None:
            raise LedgerUnavailable(f"page {number} of batch {follow_up.key!r} is missing from the ledger")
        number += 1
        if page.entries:
            released = _send_page(follow_up, page, rows, services, now)
            break
    return batchrules.after_release(follow_up, number, released, now, services.settings)


def _send_page(
    follow_up: BatchFollowUp, page: ListedPage, rows: BatchRows, services: Services, now: datetime
) -> int:
    """Send the page's requests, each hidden until its release time; the index of the next item."""
    batch, settings = follow_up.batch, services.settings
    release_from = follow_up.release_from or now
    for entry in page.entries:
        if entry.refused is not None:
            continue  # reported from its page entry; nothing to send
        try:
            request = child_request(batch, entry.as_item(), settings=settings, requested_at=follow_up.requested_at)
        except RequestRejected as exc:  # the settings changed since the page was listed
            outcome = ChildOutcome(ResultStatus.REJECTED.value, error_code=exc.info.code)
            rows.record_outcome(batch.key, child_key(batch.key, entry.name), outcome)
            continue
        at = release_at(entry.index, release_from, settings.batch_triggers_per_minute)
        services.sender.send(settings.requests_queue, child_message(request), release_delay(at, now))
    for_request(logger, batch.key, batch.label).info(
        "released page %d: items %d-%d", page.number, page.entries[0].index, page.entries[-1].index
    )
    return page.entries[-1].index + 1


def _settle(
    decision: batchrules.Decision, follow_up: BatchFollowUp, record: RequestRecord, services: Services,
    ledger: Ledger, now: datetime, writer: str | None,
) -> None:
    """Record what the step decided, then send it: the next follow-up, or the summary.

    The write names this message (``writer``): only its redelivery may finish what the write promised.
    """
    log = for_request(logger, follow_up.key, follow_up.batch.label)
    if isinstance(decision, batchrules.Continue):
        following = decision.follow_up.advance(step=record.step + 1)
        text, delay = following.to_text(), decision.delay_seconds
        ledger.save_request(record.moved_on(
            by=follow_up.step, writer=writer, phase=following.phase.value, pending=text, pending_delay=delay,
            next_look_at=now + timedelta(seconds=delay),
        ), etag_of(record))
        services.sender.send(services.settings.status_queue, text, delay)
        log.info("%s phase: next step in %d s (page %d, %d selected)", following.phase.value, delay,
                 following.page, following.selected)
        return
    status = decision.status or batch_status(decision.outcomes)
    text = summary(
        follow_up.batch, decision.outcomes, selected=decision.follow_up.selected,
        requested_at=follow_up.requested_at, now=now, status=status, error=decision.error,
    )
    ended = ledger.save_request(
        record.moved_on(by=follow_up.step, writer=writer, phase="finished", status=status.value, result=text),
        etag_of(record),
    )
    log.info("batch finished %s%s", status.value, f" ({decision.error.code})" if decision.error else "")
    send_result(ended, services, ledger)


def _recover(record: RequestRecord, services: Services, ledger: Ledger) -> None:
    if record.result is not None:
        send_result(record, services, ledger)
    elif record.pending is not None:
        resend_pending(record, services)
