"""The HTTP front door's I/O: record a request in the ledger and queue it, or read its state.

``handle_http`` serves ``backup_api``. A POST is checked by the queue's own code
(``shared.envelopes.unwrap`` and ``shared.messages.parse_request``), recorded as a ledger
record at step 0 with no holder (``shared.ledger_rules.on_delivery``: the first request message
delivered for it takes it over), then put on ``BACKUP_REQUESTS_QUEUE``. The same key again finds
the record: the same request is answered with the same ``Location`` and starts nothing; another
request under that key is refused (409 ``KeyReused``). A GET reads the record.

Storage that cannot be reached answers 503 with Retry-After; nothing else that goes wrong
answers with more than a generic 500.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Any

from shared import frontdoor, ledger_rules
from shared.envelopes import Envelope, unwrap
from shared.errors import ErrorInfo, QueueUnavailable, RequestRejected
from shared.httpcall import HttpCall, body_problem, requested_key, status_location
from shared.ledger import Fingerprint, Ledger, RequestRecord
from shared.ledger_store import LedgerConflict, LedgerUnavailable, RecordExists
from shared.logs import for_request
from shared.messages import BackupRequest, parse_request
from shared.workflow import Services

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
        logger.error("front door: the requests queue is unavailable: %s", exc)
        return frontdoor.unavailable("The requests queue")
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
        request = parse_request(
            envelope.document, settings=services.settings, now=now,
            fallback_correlation_id=envelope.event_id or str(uuid.uuid4()),
        )
    except RequestRejected as exc:
        logger.warning("front door: request rejected: %s", exc.info.message)
        return frontdoor.invalid(exc.info)
    key = request.correlation_id
    log = for_request(logger, key, request.item.label)
    location = status_location(call, key)
    record, created = _record(request, ledger, now)
    if isinstance(record, ErrorInfo):
        log.warning("front door: correlation id reused for another request")
        return frontdoor.reused(record)
    if created or _not_taken_over(record):
        # A repeated POST of a request no message has picked up yet sends it again: the first
        # send may have failed, and the ledger lets only one copy carry the request on.
        services.sender.send(services.settings.requests_queue, queued_text(envelope, request))
        log.info("front door: request queued (%s)", "new" if created else "sent again")
    else:
        log.info("front door: request known already (phase %s)", record.phase)
    return frontdoor.accepted(record, location, now)


def _record(request: BackupRequest, ledger: Ledger, now: datetime) -> tuple[RequestRecord | ErrorInfo, bool]:
    """The request's ledger record, created if new; an error when the key names another request."""
    new = RequestRecord(
        key=request.correlation_id, item_id=request.item.id, fingerprint=Fingerprint.of(request), step=0,
        written_by=-1, holder=None, phase=ACCEPTED_PHASE, created_at=now,
    )
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


def queued_text(envelope: Envelope, request: BackupRequest) -> str:
    """The request message: the document as posted, under its key, with its expiry fixed now.

    A default or ``retentionDays`` expiry is resolved against the clock; fixed here, the request
    trigger_backup reads later is the one the ledger recorded, however long it waited in the queue.
    """
    document: dict[str, Any] = {**envelope.document, "correlationId": request.correlation_id}
    expiry = request.properties.get(_EXPIRY)
    if expiry is not None:
        given = document.get("properties")
        document["properties"] = {**(given if isinstance(given, dict) else {}), _EXPIRY: expiry}
        document.pop("retentionDays", None)
    return json.dumps(document, separators=(",", ":"))
