"""The HTTP front door's I/O: record a request in the ledger and queue it, or read its state.

``handle_http`` serves ``backup_api``. A POST is read by the queue's own code (``unwrap``, ARM
events, ``shared.workflow.first_follow_up``), recorded as a ledger record at step 0 with no
holder (``shared.ledger_rules.on_delivery``: the first request message delivered for it takes it
over), then put on ``BACKUP_REQUESTS_QUEUE``. The same key again finds the record: the same
request is answered with the same ``Location`` and starts nothing; another request under that
key is refused (409 ``KeyReused``). A GET reads the record.

A batch (a request with ``select``) is checked as the queue checks it and recorded under its key
the same way, then queued; its GET shows the batch's progress (``shared.batchstate.progress_of``).

A request by resource id is resolved at the POST (``shared.workflow.resolve_step``: reads only),
because the ledger records a request by its protected item: found, it is recorded under that
item and queued as posted (trigger_backup resolves it again, to the same item, and its result
names the resource as the queue's would); not protected, it ends at once, its result recorded and
sent as the queue would; refused by the allow-lists, it answers 400; ARM unreachable, 503.

Storage that cannot be reached answers 503 with Retry-After; nothing else that goes wrong
answers with more than a generic 500.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import uuid
from datetime import datetime
from typing import Any

from shared import backup, frontdoor, ledger_rules
from shared.armevents import ArmEvent
from shared.batches import BatchRequest, is_batch_form, parse_batch
from shared.envelopes import Envelope, unwrap
from shared.errors import ErrorInfo, QueueUnavailable, RequestRejected
from shared.followup import FollowUp, Phase
from shared.httpcall import HttpCall, body_problem, requested_key, status_location
from shared.ledger import Fingerprint, Ledger, RequestRecord
from shared.ledger_store import LedgerConflict, LedgerUnavailable, RecordExists
from shared.logs import for_request
from shared.messages import BackupRequest, is_correlation_id
from shared.results import ResultStatus, finished
from shared.workflow import Services, first_follow_up, resolve_step

__all__ = ["ACCEPTED_PHASE", "handle_http", "queued_text"]

logger = logging.getLogger(__name__)

ACCEPTED_PHASE = "accepted"
"""The phase of a record the front door wrote and no request message has taken over yet."""
_METHODS = ("GET", "POST")
_EXPIRY = "recoveryPointExpiryTimeInUTC"


def handle_http(call: HttpCall, services: Services) -> frontdoor.Answer:
    ledger = services.ledger
    if ledger is None:
        return frontdoor.ledger_off()
    try:
        if call.method == "POST" and call.route_key is None:
            return _post(call, services, ledger)
        if call.method == "GET":
            return _get(call, services, ledger)
        return frontdoor.method_not_allowed(call.method, ("GET",) if call.method == "POST" else _METHODS)
    except LedgerUnavailable as exc:
        logger.error("front door: the request ledger is unavailable: %s", exc)
        return frontdoor.unavailable("The request ledger")
    except QueueUnavailable as exc:
        logger.error("front door: a queue is unavailable: %s", exc)
        return frontdoor.unavailable("The app's queues")
    except Exception:  # a caller must see JSON, not a stack trace; the log keeps the trace
        logger.exception("front door: %s failed unexpectedly", call.method)
        return frontdoor.internal_error()


def _post(call: HttpCall, services: Services, ledger: Ledger) -> frontdoor.Answer:
    refusal = body_problem(call)
    if refusal is not None:
        return frontdoor.refused(refusal.status, refusal.error)
    now = services.clock()
    try:
        envelope = unwrap(call.body)
        document = _request_document(envelope)
        fallback = envelope.event_id if envelope.event_id and is_correlation_id(envelope.event_id) else None
        if is_batch_form(document):
            batch = parse_batch(document, settings=services.settings, fallback_correlation_id=fallback or _new_key())
            return _accept_batch(batch, document, status_location(call, batch.key), services, ledger, now)
        follow_up = first_follow_up(document, call.body, now, fallback or _new_key(), services.settings)
    except RequestRejected as exc:
        logger.warning("front door: request rejected: %s", exc.info.message)
        return frontdoor.invalid(exc.info)
    location = status_location(call, follow_up.correlation_id)
    if follow_up.phase is Phase.RESOLVE:
        decision = resolve_step(follow_up, services)
        if isinstance(decision, backup.Continue):
            return frontdoor.unavailable("Azure Resource Manager", decision.delay_seconds)
        if isinstance(decision, backup.Finish):
            return _settled_at_once(decision, location, services, ledger, now)
        follow_up = decision.follow_up  # queued as posted: trigger_backup resolves it again, to the same item
    return _accept(follow_up.backup_request, document, location, services, ledger, now)


def _request_document(envelope: Envelope) -> dict[str, Any]:
    """The request an envelope carries: an ARM event about a VM is a request by its resource id."""
    event = ArmEvent.of(envelope)
    return event.backup_request() if event is not None else envelope.document


def _new_key() -> str:
    return str(uuid.uuid4())


def _accept_batch(
    batch: BatchRequest, document: dict[str, Any], location: str, services: Services, ledger: Ledger, now: datetime
) -> frontdoor.Answer:
    new = RequestRecord(
        key=batch.key, item_id=batch.vault.id, fingerprint=batch.fingerprint(), step=0, written_by=-1, holder=None,
        phase=ACCEPTED_PHASE, created_at=now,
    )
    text = json.dumps({**document, "correlationId": batch.key}, separators=(",", ":"))
    return _recorded_and_queued(new, text, batch.label, location, services, ledger, now)


def _accept(
    request: BackupRequest, document: dict[str, Any], location: str, services: Services, ledger: Ledger,
    now: datetime,
) -> frontdoor.Answer:
    text = queued_text(document, request)
    return _recorded_and_queued(_new_record(request, now), text, request.item.label, location, services, ledger, now)


def _recorded_and_queued(
    new: RequestRecord, text: str, label: str, location: str, services: Services, ledger: Ledger, now: datetime
) -> frontdoor.Answer:
    key = new.key
    log = for_request(logger, key, label)
    record, created = _record(new, ledger)
    if isinstance(record, ErrorInfo):
        log.warning("front door: correlation id reused for another request")
        return frontdoor.reused(record)
    if created or _not_taken_over(record):
        # A repeated POST of a request no message has picked up yet sends it again: the first
        # send may have failed, and the ledger lets only one copy carry the request on.
        services.sender.send(services.settings.requests_queue, text)
        log.info("front door: request queued (%s)", "new" if created else "sent again")
    else:
        log.info("front door: request known already (phase %s)", record.phase)
    return frontdoor.accepted(record, location, now)


def _settled_at_once(
    decision: backup.Finish, location: str, services: Services, ledger: Ledger, now: datetime
) -> frontdoor.Answer:
    """A request by resource id that its resolution ended: refused like bad input, or recorded and sent."""
    if decision.status is ResultStatus.REJECTED and decision.error is not None:
        return frontdoor.invalid(decision.error)
    follow_up = decision.follow_up
    text = finished(follow_up, decision.status, now, error=decision.error)
    target = follow_up.target
    item = target.resource.id if target is not None else ""
    new = RequestRecord(
        key=follow_up.correlation_id, item_id=item, fingerprint=_fingerprint(item, follow_up), step=0,
        written_by=-1, holder=None, phase="finished", created_at=now, status=decision.status.value, result=text,
    )
    record, created = _record(new, ledger)
    if isinstance(record, ErrorInfo):
        return frontdoor.reused(record)
    if created:
        # As the queue would: the result is recorded, sent, then marked sent.
        services.sender.send(services.settings.results_queue, text)
        with contextlib.suppress(LedgerConflict):
            ledger.mark_result_sent(record)
    return frontdoor.accepted(record, location, now)


def _fingerprint(resource_id: str, follow_up: FollowUp) -> Fingerprint:
    """What a request by resource id that never found its item is compared by: the resource and properties."""
    target = follow_up.target
    properties = {k: v for k, v in (target.properties if target else {}).items() if k != _EXPIRY}
    canonical = json.dumps([resource_id.lower(), properties], sort_keys=True, separators=(",", ":"))
    return Fingerprint(hashlib.sha256(canonical.encode()).hexdigest(), None)


def _new_record(request: BackupRequest, now: datetime) -> RequestRecord:
    return RequestRecord(
        key=request.correlation_id, item_id=request.item.id, fingerprint=Fingerprint.of(request), step=0,
        written_by=-1, holder=None, phase=ACCEPTED_PHASE, created_at=now,
    )


def _record(new: RequestRecord, ledger: Ledger) -> tuple[RequestRecord | ErrorInfo, bool]:
    """The key's ledger record, created as ``new`` if there is none; an error when it names another request."""
    for _ in range(3):
        try:
            return ledger.create_request(new), True
        except RecordExists:
            pass
        found = ledger.request(new.key)
        if found is None:
            continue  # deleted by the retention sweep between the two calls: create it again
        if not found.fingerprint.matches(new.fingerprint):
            return ledger_rules.key_reused(new.key, found), False
        return found, False
    raise LedgerConflict(f"the ledger record of {new.key!r} kept appearing and vanishing")


def _not_taken_over(record: RequestRecord) -> bool:
    return record.step == 0 and record.holder is None and not record.finished


def _get(call: HttpCall, services: Services, ledger: Ledger) -> frontdoor.Answer:
    key = requested_key(call)
    if isinstance(key, ErrorInfo):
        return frontdoor.invalid(key)
    record = ledger.request(key)
    if record is None:
        return frontdoor.not_found(key)
    return frontdoor.state(record, status_location(call, key), services.clock())


def queued_text(document: dict[str, Any], request: BackupRequest) -> str:
    """The request message: the document as posted, under its key, with its expiry fixed now.

    A default or ``retentionDays`` expiry is resolved against the clock; fixed here, the request
    trigger_backup reads later is the one the ledger recorded, however long it waited in the queue.
    """
    queued: dict[str, Any] = {**document, "correlationId": request.correlation_id}
    expiry = request.properties.get(_EXPIRY)
    if expiry is not None:
        given = queued.get("properties")
        queued["properties"] = {**(given if isinstance(given, dict) else {}), _EXPIRY: expiry}
        queued.pop("retentionDays", None)
    return json.dumps(queued, separators=(",", ":"))
