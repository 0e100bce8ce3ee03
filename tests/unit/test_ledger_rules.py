"""shared.ledger_rules: which copy of a message acts (on_delivery), and whether a key may trigger (on_item)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from shared.ledger import EXPIRY_TOLERANCE, Fingerprint, ItemRecord, RequestRecord
from shared.ledger_rules import (
    Carry,
    Claim,
    DeliveryVerdict,
    Drop,
    Join,
    OverLimit,
    Recover,
    Reused,
    Start,
    TakeOver,
    WaitFor,
    on_delivery,
    on_item,
)
from tests.unit.builders import NOW, backup_request, item_id

KEY = "corr-1"
OTHER_KEY = "corr-2"
ITEM = item_id("vm")
EXPIRY = NOW + timedelta(days=30)
FINGERPRINT = Fingerprint("a" * 64, EXPIRY)
HOLDER = "message-0"
RESULT = '{"schemaVersion":1,"status":"Succeeded"}'


def record(**changes: Any) -> RequestRecord:
    """A record of a request in flight: the message of step 3 holds the baton, step 2 wrote it."""
    base = RequestRecord(
        key=KEY, item_id=ITEM, fingerprint=FINGERPRINT, step=3, written_by=2, holder=HOLDER, phase="operation",
        created_at=NOW, etag='W/"7"',
    )
    return replace(base, **changes)


def finished_record(*, sent: bool, **changes: Any) -> RequestRecord:
    return record(**{"phase": "finished", "status": "Succeeded", "result": RESULT, "result_sent": sent, **changes})


def deliver(
    found: RequestRecord | None,
    step: int,
    *,
    message_id: str | None = HOLDER,
    redelivered: bool = False,
    fingerprint: Fingerprint = FINGERPRINT,
) -> DeliveryVerdict:
    return on_delivery(found, step=step, message_id=message_id, redelivered=redelivered, fingerprint=fingerprint)


def dropped(verdict: DeliveryVerdict) -> Drop:
    assert isinstance(verdict, Drop), verdict
    return verdict


# --- on_delivery: no record, a reused key ----------------------------------------------------


@pytest.mark.parametrize("step", [0, 1, 7])
@pytest.mark.parametrize("redelivered", [False, True])
@pytest.mark.parametrize("message_id", [None, HOLDER, "another"])
def test_no_record_starts_one(step: int, redelivered: bool, message_id: str | None) -> None:
    assert deliver(None, step, message_id=message_id, redelivered=redelivered) == Start()


def test_a_key_used_for_another_item_is_reused() -> None:
    first = record(fingerprint=Fingerprint.of(backup_request("vm")))
    other_item = Fingerprint.of(backup_request("fileshare"))

    assert deliver(first, 3, fingerprint=other_item) == Reused(first)


def test_a_key_used_with_other_properties_is_reused() -> None:
    expiry = "2026-12-31T00:00:00Z"
    full = backup_request("sql", properties={"backupType": "Full", "recoveryPointExpiryTimeInUTC": expiry})
    copy_only = backup_request("sql", properties={"backupType": "CopyOnlyFull", "recoveryPointExpiryTimeInUTC": expiry})
    first = record(fingerprint=Fingerprint.of(full))

    assert deliver(first, 3, fingerprint=Fingerprint.of(copy_only)) == Reused(first)
    assert isinstance(deliver(first, 3, fingerprint=Fingerprint.of(full)), Carry)


@pytest.mark.parametrize(
    ("apart", "reused"),
    [
        (timedelta(0), False),
        (timedelta(hours=23, minutes=59), False),
        (EXPIRY_TOLERANCE, False),
        (EXPIRY_TOLERANCE + timedelta(seconds=1), True),
        (timedelta(days=2), True),
    ],
)
@pytest.mark.parametrize("direction", [1, -1])
def test_expiries_within_24_hours_are_the_same_request(apart: timedelta, reused: bool, direction: int) -> None:
    first = record(fingerprint=Fingerprint("a" * 64, EXPIRY))
    again = Fingerprint("a" * 64, EXPIRY + direction * apart)

    assert isinstance(deliver(first, 3, fingerprint=again), Reused) is reused


@pytest.mark.parametrize(
    ("stored", "given", "reused"),
    [(None, None, False), (EXPIRY, None, True), (None, EXPIRY, True)],
)
def test_an_absent_expiry_matches_only_an_absent_one(
    stored: datetime | None, given: datetime | None, reused: bool
) -> None:
    first = record(fingerprint=Fingerprint("a" * 64, stored))

    assert isinstance(deliver(first, 3, fingerprint=Fingerprint("a" * 64, given)), Reused) is reused


@pytest.mark.parametrize(
    "found",
    [record(), record(step=0, written_by=-1, holder=None), finished_record(sent=True),
     finished_record(sent=False), record(pending="{}", written_by=3, step=4)],
)
@pytest.mark.parametrize("redelivered", [False, True])
def test_a_reused_key_is_refused_whatever_state_the_first_request_is_in(
    found: RequestRecord, redelivered: bool
) -> None:
    other = Fingerprint("b" * 64, EXPIRY)
    for step in range(6):
        assert deliver(found, step, redelivered=redelivered, fingerprint=other) == Reused(found)


# --- on_delivery: the message holding the baton -----------------------------------------------


@pytest.mark.parametrize("holder", [None, HOLDER, "another"])
@pytest.mark.parametrize("message_id", [None, HOLDER, "message-9"])
@pytest.mark.parametrize("redelivered", [False, True])
def test_a_follow_up_at_the_records_step_carries(holder: str | None, message_id: str | None, redelivered: bool) -> None:
    found = record(holder=holder)

    assert deliver(found, 3, message_id=message_id, redelivered=redelivered) == Carry(found)


@pytest.mark.parametrize("redelivered", [False, True])
def test_the_request_message_takes_over_what_the_front_door_recorded(redelivered: bool) -> None:
    recorded = record(step=0, written_by=-1, holder=None, phase="trigger")

    assert deliver(recorded, 0, message_id="m-1", redelivered=redelivered) == TakeOver(recorded)


@pytest.mark.parametrize("redelivered", [False, True])
def test_the_request_message_that_holds_step_0_carries(redelivered: bool) -> None:
    held = record(step=0, written_by=-1, holder=HOLDER, phase="trigger")

    assert deliver(held, 0, message_id=HOLDER, redelivered=redelivered) == Carry(held)


@pytest.mark.parametrize("message_id", ["a-producer-duplicate", None])
@pytest.mark.parametrize("redelivered", [False, True])
def test_another_message_of_step_0_is_a_producers_duplicate(message_id: str | None, redelivered: bool) -> None:
    held = record(step=0, written_by=-1, holder=HOLDER, phase="trigger")

    reason = dropped(deliver(held, 0, message_id=message_id, redelivered=redelivered)).reason
    assert "another message carries" in reason


# --- on_delivery: finished, behind, and recovering --------------------------------------------


@pytest.mark.parametrize("step", range(8))
@pytest.mark.parametrize("redelivered", [False, True])
@pytest.mark.parametrize("message_id", [HOLDER, "another"])
def test_a_finished_and_sent_request_drops_every_message(step: int, redelivered: bool, message_id: str) -> None:
    done = finished_record(sent=True, step=4, written_by=3)

    reason = dropped(deliver(done, step, message_id=message_id, redelivered=redelivered)).reason
    assert "has its result" in reason


@pytest.mark.parametrize("step", [s for s in range(8) if s != 3])
@pytest.mark.parametrize("redelivered", [False, True])
def test_a_finished_request_whose_result_is_unsent_drops_all_but_its_writer(step: int, redelivered: bool) -> None:
    done = finished_record(sent=False, step=4, written_by=3)

    assert isinstance(deliver(done, step, redelivered=redelivered), Drop)


def test_a_finished_request_drops_a_message_at_its_step_too() -> None:
    # No message is sent with the step after a result; one that claims it must not act.
    done = finished_record(sent=False, step=4, written_by=3)

    assert isinstance(deliver(done, 4), Drop)
    assert isinstance(deliver(done, 4, redelivered=True), Drop)


@pytest.mark.parametrize("step", [0, 1, 2])
@pytest.mark.parametrize("redelivered", [False, True])
def test_a_step_behind_the_ledger_is_dropped(step: int, redelivered: bool) -> None:
    settled = record(step=3, written_by=2)

    reason = dropped(deliver(settled, step, redelivered=redelivered)).reason
    assert f"step {step} is behind the ledger's step 3" in reason


@pytest.mark.parametrize("step", [4, 5, 9])
@pytest.mark.parametrize("redelivered", [False, True])
def test_a_step_the_ledger_never_sent_is_dropped(step: int, redelivered: bool) -> None:
    assert isinstance(deliver(record(step=3, written_by=2, pending="{}"), step, redelivered=redelivered), Drop)


# Each kind of work a writer may have died before finishing, as the record shows it.
UNFINISHED: dict[str, dict[str, Any]] = {
    "pending follow-up": {"pending": '{"phase":"job"}', "pending_delay": 60},
    "posting": {"posting_since": NOW - timedelta(seconds=5)},
    "result not sent": {"phase": "finished", "status": "Failed", "result": RESULT, "result_sent": False},
}


@pytest.mark.parametrize("business", sorted(UNFINISHED))
@pytest.mark.parametrize("step", [0, 2, 5])
def test_the_writers_redelivered_message_recovers_its_unfinished_business(business: str, step: int) -> None:
    written = record(step=step + 1, written_by=step, **UNFINISHED[business])

    assert deliver(written, step, redelivered=True) == Recover(written)


@pytest.mark.parametrize("business", sorted(UNFINISHED))
def test_the_writers_message_not_redelivered_is_a_duplicate(business: str) -> None:
    # A copy of the writer's message that the queue did not redeliver: another sender's duplicate.
    written = record(step=3, written_by=2, **UNFINISHED[business])

    assert isinstance(deliver(written, 2, redelivered=False), Drop)


def test_nothing_to_recover_once_the_result_is_sent() -> None:
    done = finished_record(sent=True, step=3, written_by=2)

    assert isinstance(deliver(done, 2, redelivered=True), Drop)


def test_nothing_to_recover_once_the_follow_up_is_settled() -> None:
    settled = record(step=3, written_by=2)  # no pending, no POST under way, no result

    assert isinstance(deliver(settled, 2, redelivered=True), Drop)


@pytest.mark.parametrize("business", sorted(UNFINISHED))
def test_recovering_step_0_needs_the_same_request_message(business: str) -> None:
    written = record(step=1, written_by=0, holder=HOLDER, **UNFINISHED[business])

    assert deliver(written, 0, message_id=HOLDER, redelivered=True) == Recover(written)
    assert isinstance(deliver(written, 0, message_id="a-producer-duplicate", redelivered=True), Drop)
    assert isinstance(deliver(written, 0, message_id=None, redelivered=True), Drop)


@pytest.mark.parametrize("business", sorted(UNFINISHED))
@pytest.mark.parametrize("step", [0, 2])
def test_only_the_writers_own_message_recovers_a_redelivered_copy_of_another_drops(business: str, step: int) -> None:
    # Two copies of one step exist after a follow-up was sent again from the ledger; if both come
    # back redelivered, only the one that wrote the record may finish its work.
    writer = HOLDER if step == 0 else "status-7"
    written = record(step=step + 1, written_by=step, writer=writer, **UNFINISHED[business])

    assert deliver(written, step, message_id=writer, redelivered=True) == Recover(written)
    assert isinstance(deliver(written, step, message_id="status-8", redelivered=True), Drop)


@pytest.mark.parametrize("business", sorted(UNFINISHED))
def test_only_the_writers_step_recovers(business: str) -> None:
    written = record(step=4, written_by=3, **UNFINISHED[business])

    verdicts = {step: deliver(written, step, redelivered=True) for step in range(8)}

    assert [step for step, verdict in verdicts.items() if isinstance(verdict, Recover)] == [3]


# --- on_delivery: the cross product, against the protocol's invariants --------------------------

STATES: dict[str, dict[str, Any]] = {
    "in flight": {},
    **UNFINISHED,
    "finished and sent": {"phase": "finished", "status": "Succeeded", "result": RESULT, "result_sent": True},
}


CROSS_PRODUCT = list(itertools.product(
    sorted(STATES), [0, 1, 3], [-1, 0, 1, 2, 3], [None, HOLDER], [None, HOLDER, "other"], [False, True], range(5),
))


def test_every_delivery_obeys_the_protocol() -> None:
    """Each state x record step x writer x holder x message x redelivery x message step (4,500 cases)."""
    for case in CROSS_PRODUCT:
        state, record_step, written_by, holder, message_id, redelivered, step = case
        found = record(step=record_step, written_by=written_by, holder=holder, **STATES[state])
        verdict = deliver(found, step, message_id=message_id, redelivered=redelivered)
        may_carry_step_0 = holder in {None, message_id}
        carrier = step != 0 or may_carry_step_0
        business = state not in {"in flight", "finished and sent"}

        # Acting on the baton: exactly the message at the record's step, while the request has no result.
        holds_baton = step == record_step and not found.finished and carrier
        assert isinstance(verdict, Carry | TakeOver) is holds_baton, (case, verdict)
        assert not isinstance(verdict, TakeOver) or (step == 0 and holder is None), (case, verdict)
        assert not (isinstance(verdict, Carry) and step == 0) or holder == message_id, (case, verdict)
        # Recovering: exactly the writer's own message, redelivered, with something left to do.
        recovers = not holds_baton and written_by == step and redelivered and business and carrier
        assert isinstance(verdict, Recover) is recovers, (case, verdict)
        # Everything else sends nothing; whatever acts acts on this very record.
        if isinstance(verdict, Carry | TakeOver | Recover):
            assert verdict.record is found, (case, verdict)
        else:
            assert isinstance(verdict, Drop), (case, verdict)


# --- on_item --------------------------------------------------------------------------------

OWN_FINGERPRINT = Fingerprint("c" * 64, EXPIRY)


def owner_record(*, finished: bool = False, fingerprint: Fingerprint = OWN_FINGERPRINT) -> RequestRecord:
    owner = record(key=OTHER_KEY, fingerprint=fingerprint, holder="owner-message", job_id="owner-job")
    return replace(owner, status="Succeeded", result=RESULT, result_sent=True) if finished else owner


def item(**changes: Any) -> ItemRecord:
    base = ItemRecord(
        item_id=ITEM, active_key=OTHER_KEY, active_since=NOW - timedelta(minutes=20),
        active_fingerprint=OWN_FINGERPRINT, day=NOW.date().isoformat(), day_count=1, etag='W/"3"',
    )
    return replace(base, **changes)


def check_item(
    found: ItemRecord | None,
    owner: RequestRecord | None = None,
    *,
    key: str = KEY,
    fingerprint: Fingerprint = OWN_FINGERPRINT,
    daily_limit: int | None = None,
    now: datetime = NOW,
) -> Any:
    return on_item(found, owner, item_id=ITEM, key=key, fingerprint=fingerprint, daily_limit=daily_limit, now=now)


def claimed(verdict: Any) -> ItemRecord:
    assert isinstance(verdict, Claim), verdict
    claim: ItemRecord = verdict.item
    return claim


def test_an_item_never_seen_is_claimed_with_a_first_trigger_today() -> None:
    claim = claimed(check_item(None))

    assert claim == ItemRecord(
        item_id=ITEM, active_key=KEY, active_since=NOW, active_fingerprint=OWN_FINGERPRINT, day="2026-11-26",
        day_count=1, etag=None,
    )


def test_an_item_active_for_the_own_key_is_claimed_again() -> None:
    mine = item(active_key=KEY, day_count=1)

    claim = claimed(check_item(mine, owner_record()))  # an owner is ignored when the item is ours

    assert (claim.active_key, claim.day_count, claim.etag) == (KEY, 2, 'W/"3"')


@pytest.mark.parametrize(
    "expiry",
    [EXPIRY, EXPIRY + timedelta(hours=23), EXPIRY - EXPIRY_TOLERANCE],
)
def test_the_same_backup_running_under_another_key_is_joined(expiry: datetime) -> None:
    verdict = check_item(item(), owner_record(), fingerprint=Fingerprint("c" * 64, expiry))

    assert verdict == Join(OTHER_KEY)


@pytest.mark.parametrize(
    "fingerprint",
    [
        Fingerprint("c" * 64, EXPIRY + EXPIRY_TOLERANCE + timedelta(seconds=1)),
        Fingerprint("c" * 64, None),
        Fingerprint("d" * 64, EXPIRY),
    ],
)
def test_another_backup_running_under_another_key_is_waited_for(fingerprint: Fingerprint) -> None:
    assert check_item(item(), owner_record(), fingerprint=fingerprint) == WaitFor(OTHER_KEY)


def test_a_running_owner_without_a_recorded_fingerprint_is_waited_for() -> None:
    assert check_item(item(active_fingerprint=None), owner_record()) == WaitFor(OTHER_KEY)


def test_join_and_wait_name_the_owners_key() -> None:
    owner = replace(owner_record(), key="the-owner")

    assert check_item(item(active_key="the-owner"), owner) == Join("the-owner")
    assert check_item(item(active_key="the-owner"), owner, fingerprint=Fingerprint("d" * 64, EXPIRY)) == WaitFor(
        "the-owner")


@pytest.mark.parametrize("owner", [owner_record(finished=True), None], ids=["owner finished", "owner gone"])
def test_an_item_whose_owner_no_longer_runs_is_claimed(owner: RequestRecord | None) -> None:
    claim = claimed(check_item(item(), owner))

    assert (claim.active_key, claim.active_since, claim.active_fingerprint) == (KEY, NOW, OWN_FINGERPRINT)


def test_an_item_with_no_active_key_is_claimed() -> None:
    assert claimed(check_item(item(active_key=None), None)).active_key == KEY


def test_a_running_owner_is_joined_even_when_the_item_is_over_its_limit() -> None:
    # Joining sends nothing to Azure: the limit is about triggers.
    assert check_item(item(day_count=9), owner_record(), daily_limit=3) == Join(OTHER_KEY)


@pytest.mark.parametrize("count", [0, 1, 2, 8])
def test_triggers_the_same_utc_day_are_counted(count: int) -> None:
    claim = claimed(check_item(item(active_key=KEY, day_count=count), now=NOW.replace(hour=23, minute=59)))

    assert (claim.day, claim.day_count) == ("2026-11-26", count + 1)


@pytest.mark.parametrize("previous_day", ["2026-11-25", "2026-11-20", "2025-11-26", None])
def test_a_new_utc_day_counts_afresh(previous_day: str | None) -> None:
    claim = claimed(check_item(item(active_key=KEY, day=previous_day, day_count=9), daily_limit=3))

    assert (claim.day, claim.day_count) == ("2026-11-26", 1)


def test_the_count_resets_at_midnight_utc() -> None:
    late = claimed(check_item(item(active_key=KEY, day_count=2), now=NOW.replace(hour=23, minute=59, second=59)))
    early = claimed(check_item(late, now=NOW.replace(hour=0) + timedelta(days=1)))

    assert (late.day, late.day_count) == ("2026-11-26", 3)
    assert (early.day, early.day_count) == ("2026-11-27", 1)


@pytest.mark.parametrize(("limit", "count"), [(1, 1), (3, 3), (3, 4), (9, 9)])
@pytest.mark.parametrize("active_key", [KEY, OTHER_KEY, None])
def test_an_item_at_its_daily_limit_is_over_it_until_utc_midnight(limit: int, count: int, active_key: str) -> None:
    verdict = check_item(item(active_key=active_key, day_count=count), None, daily_limit=limit)

    assert verdict == OverLimit(limit, datetime(2026, 11, 27, tzinfo=NOW.tzinfo))


@pytest.mark.parametrize(("limit", "count"), [(1, 0), (3, 2), (9, 8)])
def test_the_last_trigger_under_the_limit_is_claimed(limit: int, count: int) -> None:
    assert claimed(check_item(item(active_key=KEY, day_count=count), daily_limit=limit)).day_count == limit


def test_the_limit_allows_exactly_its_count_per_day() -> None:
    current: ItemRecord | None = None
    claims = 0
    for _ in range(10):
        verdict = check_item(current, daily_limit=3)
        if isinstance(verdict, OverLimit):
            break
        current = replace(claimed(verdict), etag=f'W/"{claims}"')
        claims += 1

    assert claims == 3


@pytest.mark.parametrize("count", [0, 3, 1000])
def test_no_limit_is_never_over_it(count: int) -> None:
    assert claimed(check_item(item(active_key=KEY, day_count=count), daily_limit=None)).day_count == count + 1


def test_a_claim_keeps_the_etag_it_read_so_the_write_is_guarded() -> None:
    assert claimed(check_item(item(active_key=KEY, etag='W/"41"'))).etag == 'W/"41"'
    assert claimed(check_item(item(etag='W/"42"'), owner_record(finished=True))).etag == 'W/"42"'
    assert claimed(check_item(None)).etag is None


def test_the_day_is_the_utc_day_whatever_zone_now_is_in() -> None:
    # 23:30 in New York on the 26th is 04:30 UTC on the 27th: a new UTC day.
    evening = datetime(2026, 11, 26, 23, 30, tzinfo=timezone(timedelta(hours=-5)))
    claim = claimed(check_item(item(active_key=KEY, day="2026-11-26", day_count=3), now=evening))

    assert (claim.day, claim.day_count) == ("2026-11-27", 1)
