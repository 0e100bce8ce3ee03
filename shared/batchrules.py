"""What a batch does next, as pure rules: after a page is listed, a page released, a look taken.

Plain values in (the follow-up, what the step read, the time), a ``Continue`` (the next
follow-up and its delay) or a ``Finish`` (the summary's outcomes) out; no I/O, no clock reads.

- **LIST**, a page per step. More than ``BATCH_MAX_ITEMS`` selected ends ``Rejected``
  (``BatchTooLarge``) and nothing selected ends ``Failed`` (``NothingSelected``), both before
  any item's request is sent: listing ends before releasing begins.
- **RELEASE**, a page per step: item *i* is released at ``release_from + 60·i / rate``. Should
  the steps fall behind that schedule (storage retried, a host restarted), the rest of the
  schedule moves later rather than releasing the late items at once.
- **COLLECT**, on the job-poll schedule: done when every item has an outcome. A backstop
  deadline (the last release plus twice the operation and job timeouts, longer than any item
  can run) reports items that never ended (a poisoned message) as ``TimedOut``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from shared.backup import job_poll_interval
from shared.batches import (
    NOT_FOUND,
    ChildOutcome,
    child_key,
    child_request,
    count_by_status,
    release_at,
    release_delay,
)
from shared.batchrows import BatchContents, ListedPage, PageEntry
from shared.batchstate import BatchFollowUp, BatchPhase
from shared.errors import ArmThrottled, ErrorInfo, PermanentError, RequestRejected, TransientError
from shared.results import ResultStatus
from shared.settings import Settings
from shared.timing import backoff_seconds, delay_within
from shared.vaultitems import ItemsPage

__all__ = [
    "UNFINISHED",
    "Continue",
    "Decision",
    "Finish",
    "after_look",
    "after_page",
    "after_permanent",
    "after_release",
    "after_transient",
    "first_follow_up",
    "select_page",
]

UNFINISHED = "BatchItemUnfinished"
"""The error code of an item that had no outcome when the batch's backstop deadline passed."""


@dataclass(frozen=True)
class Continue:
    follow_up: BatchFollowUp
    delay_seconds: int


@dataclass(frozen=True)
class Finish:
    follow_up: BatchFollowUp
    outcomes: tuple[ChildOutcome, ...] = field(default=())
    status: ResultStatus | None = None
    """None: as the outcomes say (``shared.batches.batch_status``)."""
    error: ErrorInfo | None = None


Decision = Continue | Finish


def first_follow_up(follow_up: BatchFollowUp, settings: Settings) -> BatchFollowUp:
    """The batch's first step, listing from the first page, with the listing's deadline."""
    listing_for = timedelta(seconds=settings.operation_timeout_seconds)
    return follow_up.advance(deadline=follow_up.phase_started_at + listing_for)


def select_page(follow_up: BatchFollowUp, listed: ItemsPage, settings: Settings) -> ListedPage:
    """What a listed page selects, numbered on from the items selected before it.

    Each item's request is built now, as trigger_backup will build it, so that an item whose
    request cannot be made (names, or the properties for its workload) is known at once and
    reported ``Rejected`` in the summary instead of being sent.
    """
    batch, entries = follow_up.batch, list[PageEntry]()
    for item in listed.items:
        if not batch.select.matches(item):
            continue
        refused: ErrorInfo | None = None
        try:
            child_request(batch, item, settings=settings, requested_at=follow_up.requested_at)
        except RequestRejected as exc:
            refused = exc.info
        entries.append(PageEntry(follow_up.selected + len(entries), item.fabric, item.container, item.name,
                                 item.friendly_name, refused))
    return ListedPage(follow_up.page, tuple(entries), listed.next_link)


def after_page(follow_up: BatchFollowUp, page: ListedPage, now: datetime, settings: Settings) -> Decision:
    selected = follow_up.selected + len(page.entries)
    if selected > settings.batch_max_items:
        error = ErrorInfo("BatchTooLarge", (
            f"the selection holds more than BATCH_MAX_ITEMS ({settings.batch_max_items}) items: {selected} in the "
            f"first {page.number + 1} page(s) of the vault's list; nothing was started"
        ), target="select")
        return Finish(follow_up.advance(selected=selected), status=ResultStatus.REJECTED, error=error)
    if page.next_link is not None:
        following = follow_up.advance(page=page.number + 1, next_link=page.next_link, selected=selected, attempt=0,
                                      throttled=0, last_error=None)
        return Continue(following, 0)
    listed = follow_up.advance(selected=selected, pages=page.number + 1, next_link=None)
    if selected == 0:
        names = follow_up.batch.select.friendly_names
        error = ErrorInfo(
            "NothingSelected", "no protected item of the vault matches the selection; nothing was started",
            target="select",
        )
        not_found = tuple(ChildOutcome(NOT_FOUND, friendly_name=name) for name in names)
        return Finish(listed, not_found, status=ResultStatus.FAILED, error=error)
    return Continue(listed.enter(BatchPhase.RELEASE, now, page=0, release_from=now, released=0), 0)


def after_release(
    follow_up: BatchFollowUp, next_page: int, released: int, now: datetime, settings: Settings
) -> Decision:
    """``next_page`` pages and ``released`` items are out; release the next page, or start collecting."""
    rate, release_from = settings.batch_triggers_per_minute, follow_up.release_from or now
    if next_page < follow_up.pages:
        behind = now - release_at(released, release_from, rate)
        if behind > timedelta(0):
            release_from += behind
        return Continue(follow_up.advance(page=next_page, released=released, release_from=release_from), 0)
    last_release = release_at(max(follow_up.selected - 1, 0), release_from, rate)
    backstop = timedelta(seconds=2 * (settings.operation_timeout_seconds + settings.job_timeout_seconds))
    collecting = follow_up.enter(
        BatchPhase.COLLECT, now, page=0, released=released, release_from=release_from, deadline=last_release + backstop,
    )
    first_look = release_delay(last_release, now) + settings.job_poll_initial_seconds
    return Continue(collecting, delay_within(first_look, floor=settings.min_delay_seconds))


def after_look(follow_up: BatchFollowUp, contents: BatchContents, now: datetime, settings: Settings) -> Decision:
    batch = follow_up.batch
    outcomes: list[ChildOutcome] = []
    unfinished: list[PageEntry] = []
    seen: set[str] = set()
    entries = [entry for page in contents.pages for entry in page.entries]
    for entry in entries:
        key = child_key(batch.key, entry.name)
        if key in seen:
            continue  # listed twice (the list shifted between pages): one request ran for it
        seen.add(key)
        if entry.refused is not None:
            outcomes.append(ChildOutcome(ResultStatus.REJECTED.value, _item_id(follow_up, entry),
                                         error_code=entry.refused.code))
        elif key in contents.outcomes:
            outcomes.append(contents.outcomes[key])
        else:
            unfinished.append(entry)
    not_found = [ChildOutcome(NOT_FOUND, friendly_name=name)
                 for name in batch.select.not_found(entry.friendly_name for entry in entries)]
    looked = follow_up.advance(polls=follow_up.polls + 1, counts=count_by_status(outcomes), selected=len(seen))
    deadline_in = ((follow_up.deadline or now) - now).total_seconds()
    if unfinished and deadline_in > 0:
        wait = job_poll_interval(looked.polls, settings)
        return Continue(looked, delay_within(wait, floor=settings.min_delay_seconds, deadline_in=deadline_in))
    timed_out = [ChildOutcome(ResultStatus.TIMED_OUT.value, _item_id(follow_up, entry), error_code=UNFINISHED)
                 for entry in unfinished]
    return Finish(looked, (*outcomes, *timed_out, *not_found))


def after_transient(
    follow_up: BatchFollowUp, error: TransientError, now: datetime, settings: Settings, rng: random.Random
) -> Decision:
    """Listing failed for now: the same page again later; a 429 is pacing, bounded by the deadline only."""
    throttled = isinstance(error, ArmThrottled)
    attempt = follow_up.attempt + (0 if throttled else 1)
    throttles = follow_up.throttled + 1 if throttled else 0
    failed = follow_up.advance(attempt=attempt, throttled=throttles, last_error=error.info)
    deadline_in = ((follow_up.deadline or now) - now).total_seconds()
    if attempt >= settings.retry_max_attempts or deadline_in <= 0:
        return Finish(failed, status=ResultStatus.FAILED, error=error.info)
    wait = error.retry_after
    if wait is None:
        wait = backoff_seconds(attempt + throttles, base=settings.retry_base_seconds, cap=settings.retry_max_seconds,
                               rng=rng)
    return Continue(failed, delay_within(wait, floor=settings.min_delay_seconds, deadline_in=deadline_in))


def after_permanent(follow_up: BatchFollowUp, error: PermanentError) -> Decision:
    """ARM refused the listing (no such vault, no permission, a link not to follow): nothing was started."""
    return Finish(follow_up.advance(last_error=error.info), status=ResultStatus.FAILED, error=error.info)


def _item_id(follow_up: BatchFollowUp, entry: PageEntry) -> str:
    return (f"{follow_up.batch.vault.id}/backupFabrics/{entry.fabric}/protectionContainers/{entry.container}"
            f"/protectedItems/{entry.name}")
