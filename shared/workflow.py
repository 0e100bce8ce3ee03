"""One step of a request's life: the I/O around the pure rules in ``shared.backup``.

``handle_request`` serves trigger_backup, ``handle_follow_up`` serves poll_status. Each returns
the result text to write (the function's output binding) or None when it sent what follows
itself. Bad input becomes a result; only storage failures raise, so the host retries those.

With the request ledger on, every step is carried through ``shared.carry`` (exactly once);
with it off, a step runs as is and delivery is at least once (README, "Delivery").
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from shared import backup, batchflow, resolution, waiting
from shared.arm import ArmClient
from shared.armevents import ArmEvent
from shared.batches import BatchRequest, is_batch_form, parse_batch
from shared.batchstate import is_batch_follow_up
from shared.carry import carry
from shared.envelopes import unwrap
from shared.errors import ErrorInfo, PermanentError, RequestRejected, TransientError
from shared.followup import FollowUp, Phase
from shared.ledger import Ledger
from shared.logs import for_request
from shared.messages import check_allowed, is_correlation_id, parse_request
from shared.queues import MessageSender
from shared.results import finished, rejected, unreadable_follow_up
from shared.settings import Settings
from shared.targeting import check_subscription_allowed, is_resource_form, parse_target

__all__ = ["Delivery", "Services", "first_follow_up", "handle_follow_up", "handle_request", "resolve_step", "take_step"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Services:
    """What a step needs from the world; built once per process (see ``shared.runtime``)."""

    settings: Settings
    arm: ArmClient
    sender: MessageSender
    clock: Callable[[], datetime]
    rng: random.Random
    ledger: Ledger | None = None
    """None when ``BACKUP_LEDGER_TABLE`` is empty: at-least-once delivery, no joining."""


class QueueDeliveryInfo(Protocol):
    """The parts of ``azure.functions.QueueMessage`` a step uses."""

    @property
    def id(self) -> str | None: ...
    @property
    def dequeue_count(self) -> int | None: ...
    @property
    def insertion_time(self) -> datetime | None: ...


@dataclass(frozen=True)
class Delivery:
    """How the queue delivered the message being handled."""

    message_id: str | None
    dequeue_count: int
    insertion_time: datetime | None

    @classmethod
    def of(cls, message: QueueDeliveryInfo) -> Delivery:
        inserted = message.insertion_time
        if inserted is not None and inserted.tzinfo is None:
            inserted = inserted.replace(tzinfo=UTC)  # the queue service speaks UTC
        return cls(message.id, message.dequeue_count or 1, inserted)

    @property
    def redelivered(self) -> bool:
        """An earlier invocation took this message and did not finish: it may have acted."""
        return self.dequeue_count > 1


def handle_request(body: bytes, delivery: Delivery, services: Services) -> str | None:
    now = services.clock()
    document: dict[str, Any] | None = None
    transport: str | None = None
    fallback_id = delivery.message_id or str(uuid.uuid4())
    batch: BatchRequest | None = None
    try:
        envelope = unwrap(body)
        document, transport = envelope.document, envelope.transport
        # An event id keys the request only if it could be a correlation id: it travels in headers and logs.
        if envelope.event_id and is_correlation_id(envelope.event_id):
            fallback_id = envelope.event_id
        event = ArmEvent.of(envelope)
        if event is not None:
            document = event.summary()  # what the result of an ignored event echoes: never its claims
            document = event.backup_request()
        if is_batch_form(document):  # resolved into its items' requests, each an ordinary one
            batch = parse_batch(document, settings=services.settings, fallback_correlation_id=fallback_id)
        else:
            follow_up = first_follow_up(document, body, now, fallback_id, services.settings)
    except RequestRejected as exc:
        correlation_id = _given_correlation_id(document) or fallback_id
        for_request(logger, correlation_id, None).warning("request rejected: %s", exc.info.message)
        return rejected(
            body, exc.info, now, correlation_id=correlation_id, message_id=delivery.message_id,
            request=document, transport=transport, kind="batch" if document and is_batch_form(document) else None,
        )
    if batch is not None:
        return batchflow.start(batch, body, delivery, services)
    for_request(logger, follow_up.correlation_id, follow_up.label).info(
        "request accepted (%s, %s)", transport, follow_up.phase.value
    )
    outcome = _go_on(follow_up, delivery, services, raw=body)
    if services.ledger is not None:
        services.ledger.sweep_if_due(services.clock(), services.settings.ledger_retention_days)
    return outcome


def first_follow_up(
    document: dict[str, Any], body: bytes, now: datetime, fallback_id: str, settings: Settings
) -> FollowUp:
    """A valid request's first step: the trigger, or for a request by resource id, finding its item."""
    if is_resource_form(document):
        target = parse_target(document, settings=settings, now=now, fallback_correlation_id=fallback_id)
        follow_up = FollowUp(request=None, phase=Phase.RESOLVE, requested_at=now, phase_started_at=now, target=target)
        return follow_up.keeping_raw_message(body.decode("utf-8", "replace"))
    request = parse_request(document, settings=settings, now=now, fallback_correlation_id=fallback_id)
    return FollowUp(request=request, phase=Phase.TRIGGER, requested_at=now, phase_started_at=now)


def handle_follow_up(body: bytes, delivery: Delivery, services: Services) -> str | None:
    now = services.clock()
    document: dict[str, Any] | None = None
    try:
        document = unwrap(body).document
        if is_batch_follow_up(document):
            return batchflow.follow(document, body, delivery, services)
        follow_up = FollowUp.from_document(document)
        # The status queue is not trusted either: a forged follow-up must not reach other vaults.
        if follow_up.request is not None:
            check_allowed(follow_up.request.item, services.settings)
        if follow_up.target is not None:
            check_subscription_allowed(follow_up.target.resource, services.settings)
    except RequestRejected as exc:
        correlation_id = _given_correlation_id(document)
        logger.error("[%s] unreadable follow-up %s: %s", correlation_id, delivery.message_id, exc.info.message)
        return unreadable_follow_up(
            body, exc.info, now, correlation_id=correlation_id, message_id=delivery.message_id
        )
    return _go_on(follow_up, delivery, services)


def _go_on(follow_up: FollowUp, delivery: Delivery, services: Services, raw: bytes | None = None) -> str | None:
    """The step, carried through the ledger when there is one; a request by resource id finds its item first.

    ``raw``, the request message as received, serves a ``KeyReused`` result (see ``shared.carry``).
    """
    if follow_up.phase is Phase.RESOLVE:
        return _resolve_then_go_on(follow_up, delivery, services, raw)
    if services.ledger is not None:
        return carry(follow_up, delivery, services, services.ledger, take_step, raw=raw)
    if follow_up.phase is Phase.TRIGGER and delivery.redelivered and follow_up.trigger_uncertain_since is None:
        follow_up = follow_up.advance(trigger_uncertain_since=delivery.insertion_time or follow_up.requested_at)
    return _run(follow_up, services)


def _resolve_then_go_on(follow_up: FollowUp, delivery: Delivery, services: Services, raw: bytes | None) -> str | None:
    """Phase.RESOLVE, outside the ledger: a read, for a request that has no item (so no ledger record) yet.

    Found, the request goes on at once as one by names would, at the same step: through the ledger,
    which lets one of several deliveries that resolve it trigger; or, without it, looking before
    posting when redelivered. Not found, or to be tried again, its result or its next follow-up is
    sent as without the ledger.
    """
    decision = resolve_step(follow_up, services)
    if isinstance(decision, resolution.Proceed):
        kept = raw if raw is not None else (follow_up.raw_message or "").encode()
        return _go_on(decision.follow_up, delivery, services, raw=kept)
    return _settled(decision, services)


def _run(follow_up: FollowUp, services: Services) -> str | None:
    return _settled(take_step(follow_up, services), services)


def _settled(decision: backup.Decision, services: Services) -> str | None:
    """Without the ledger: send the next follow-up, or give the result to the output binding."""
    log = for_request(logger, decision.follow_up.correlation_id, decision.follow_up.label)
    if isinstance(decision, backup.Continue):
        next_step = backup.stamp_deadline(decision.follow_up, services.settings)
        services.sender.send(services.settings.status_queue, next_step.to_text(), decision.delay_seconds)
        log.info(
            "%s phase: next look in %d s (attempt %d, poll %d)",
            decision.follow_up.phase.value, decision.delay_seconds, decision.follow_up.attempt,
            decision.follow_up.polls,
        )
        return None
    log.info(
        "finished %s%s", decision.status.value, f" ({decision.error.code})" if decision.error else ""
    )
    return finished(
        decision.follow_up, decision.status, services.clock(), error=decision.error, job=decision.job,
        joined=decision.joined,
    )


def take_step(follow_up: FollowUp, services: Services) -> backup.Decision:
    """One look at ARM for the follow-up's phase, and what the rules make of the answer."""
    arm, settings, request = services.arm, services.settings, follow_up.backup_request
    try:
        match follow_up.phase:
            case Phase.TRIGGER:
                since = backup.look_before_posting_since(follow_up)
                if since is not None:
                    job_id = arm.find_backup_job(request, since)
                    if job_id is not None:
                        return backup.after_job_lookup(follow_up, job_id, services.clock(), settings)
                accepted = arm.trigger(request)
                return backup.after_trigger(follow_up, accepted, services.clock(), settings)
            case Phase.OPERATION if follow_up.async_operation_url:
                operation, retry_after = arm.operation_status(follow_up.async_operation_url, request)
                return backup.after_operation(follow_up, operation, retry_after, services.clock(), settings)
            case Phase.OPERATION if follow_up.location_url:
                location = arm.operation_result(follow_up.location_url, request)
                return backup.after_location(follow_up, location, services.clock(), settings)
            case Phase.OPERATION:
                raise _nothing_to_follow()
            case Phase.JOB:
                return _job_step(follow_up, services)
            case Phase.WAIT:
                return _wait_step(follow_up, services)
    except TransientError as exc:
        return backup.after_transient(follow_up, exc, services.clock(), settings, services.rng)
    except PermanentError as exc:
        return backup.after_permanent(follow_up, exc, services.clock(), settings)
    raise AssertionError(f"unhandled phase {follow_up.phase}")  # pragma: no cover - match is exhaustive


def resolve_step(follow_up: FollowUp, services: Services) -> backup.Decision | resolution.Proceed:
    """Which vault and item protect the VM (the VM's GET first when the request gave no location)."""
    target, settings = follow_up.target, services.settings
    try:
        if target is None:
            raise _nothing_to_follow()
        location = target.location or services.arm.vm_location(target)
        status = services.arm.backup_status(target, location)
        return resolution.after_backup_status(follow_up, location, status, services.clock(), settings)
    except TransientError as exc:
        return backup.after_transient(follow_up, exc, services.clock(), settings, services.rng)
    except PermanentError as exc:
        return backup.after_permanent(follow_up, exc, services.clock(), settings)


def _job_step(follow_up: FollowUp, services: Services) -> backup.Decision:
    arm, settings, request = services.arm, services.settings, follow_up.backup_request
    if follow_up.job_id is None:
        found = arm.find_backup_job(request, follow_up.triggered_at or follow_up.requested_at)
        return backup.after_job_lookup(follow_up, found, services.clock(), settings)
    job, retry_after = arm.job(request, follow_up.job_id)
    return backup.after_job(follow_up, job, retry_after, services.clock(), settings)


def _wait_step(follow_up: FollowUp, services: Services) -> backup.Decision:
    arm, settings, request = services.arm, services.settings, follow_up.backup_request
    if follow_up.waiting_for_key is not None:
        # Another key's backup: only the ledger can tell (``shared.carry`` looks there), so with
        # the ledger gone meanwhile, trigger and let Azure say whether a backup still runs.
        return backup.Continue(follow_up.enter(Phase.TRIGGER, services.clock()), settings.min_delay_seconds)
    watched = follow_up.waiting_for_job
    if watched is None:
        running_since = services.clock() - timedelta(seconds=settings.job_timeout_seconds)
        running = arm.find_backup_job(request, running_since, running=True)
        return waiting.after_running_job_lookup(follow_up, running, services.clock(), settings)
    job, retry_after = arm.job(request, watched)
    return waiting.after_watched_job(follow_up, job, retry_after, services.clock(), settings)


def _nothing_to_follow() -> PermanentError:
    return PermanentError(ErrorInfo("NothingToFollow", "the follow-up names neither an operation nor a job"))


def _given_correlation_id(document: dict[str, Any] | None) -> str | None:
    value = document.get("correlationId") if document else None
    return value if isinstance(value, str) and is_correlation_id(value) else None
