"""shared.ledger: fingerprints, the two records through a store and back, keys, conflicts, the sweep."""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from shared.ledger import (
    EXPIRY_TOLERANCE,
    SWEEP_BATCH,
    SWEEP_INTERVAL,
    Fingerprint,
    ItemRecord,
    Ledger,
    RequestRecord,
    item_key,
    request_key,
)
from shared.ledger_store import (
    Fields,
    LedgerConflict,
    LedgerUnavailable,
    MemoryStore,
    RecordChanged,
    RecordExists,
    RecordKey,
    Stored,
)
from tests.fakes import Clock
from tests.unit.builders import NOW, RG, VAULT, backup_request, item_id

ITEM = item_id("vm")
RESULT_BYTES = 60 * 1024


def full_request_record(key: str = "change-4711") -> RequestRecord:
    """Every field set, with a result as large as a queue message may carry (not all ASCII)."""
    chunk = '{"status":"Succeeded","note":"sauvegardé ✓"}'
    result = (chunk * (RESULT_BYTES // len(chunk.encode()) + 1)).encode()[:RESULT_BYTES].decode("utf-8", "ignore")
    return RequestRecord(
        key=key, item_id=ITEM, fingerprint=Fingerprint.of(backup_request()), step=5, written_by=4,
        holder="message-0", phase="job", created_at=NOW, posting_since=NOW + timedelta(seconds=1, microseconds=7),
        pending='{"phase":"job","step":5}', pending_delay=120, next_look_at=NOW + timedelta(minutes=2),
        job_id="6f4b3c1e-0000-4000-8000-000000000001", status="Succeeded", result=result, result_sent=True,
    )


def minimal_request_record(key: str = "corr-min") -> RequestRecord:
    return RequestRecord(
        key=key, item_id=ITEM, fingerprint=Fingerprint("a" * 64, None), step=0, written_by=-1, holder=None,
        phase="trigger", created_at=NOW,
    )


def full_item_record() -> ItemRecord:
    return ItemRecord(
        item_id=ITEM, active_key="change-4711", active_since=NOW - timedelta(minutes=3),
        active_fingerprint=Fingerprint.of(backup_request()), day="2026-11-26", day_count=3,
    )


def ledger_at(clock: Clock | None = None) -> tuple[Ledger, MemoryStore]:
    store = MemoryStore(clock or Clock(NOW))
    return Ledger(store), store


# --- Fingerprint -----------------------------------------------------------------------------


def test_the_expiry_is_kept_beside_the_digest_not_in_it() -> None:
    first = Fingerprint.of(backup_request(properties={"recoveryPointExpiryTimeInUTC": "2026-12-31T00:00:00Z"}))
    later = Fingerprint.of(backup_request(properties={"recoveryPointExpiryTimeInUTC": "2027-03-01T00:00:00Z"}))

    assert first.digest == later.digest
    assert first.expiry == datetime(2026, 12, 31, tzinfo=UTC)
    assert later.expiry == datetime(2027, 3, 1, tzinfo=UTC)
    assert not first.matches(later)


def test_a_default_expiry_resolved_a_little_later_is_the_same_request() -> None:
    now = Fingerprint.of(backup_request(now=NOW))
    later = Fingerprint.of(backup_request(now=NOW + timedelta(hours=3)))

    assert now.expiry is not None and later.expiry is not None and now.expiry != later.expiry
    assert now.matches(later)


def test_the_item_id_is_compared_without_case() -> None:
    upper = backup_request(resourceGroupName=RG.upper(), vaultName=VAULT.upper())
    lower = backup_request()

    assert upper.item.id != lower.item.id
    assert Fingerprint.of(upper) == Fingerprint.of(lower)


def test_the_correlation_id_is_not_part_of_the_request() -> None:
    assert Fingerprint.of(backup_request(correlationId="a")) == Fingerprint.of(backup_request(correlationId="b"))


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (backup_request("vm"), backup_request("fileshare")),
        (backup_request("sql"), backup_request("hana")),
        (backup_request("sql", properties={"backupType": "Full"}),
         backup_request("sql", properties={"backupType": "Differential"})),
        (backup_request("sql", properties={"backupType": "Log"}),
         backup_request("sql", properties={"backupType": "Differential"})),
    ],
)
def test_another_item_or_other_properties_is_another_digest(first: Any, second: Any) -> None:
    assert Fingerprint.of(first).digest != Fingerprint.of(second).digest
    assert not Fingerprint.of(first).matches(Fingerprint.of(second))


def test_a_backup_that_keeps_the_policys_retention_has_no_expiry() -> None:
    fingerprint = Fingerprint.of(backup_request("sql", properties={"backupType": "Differential"}))

    assert fingerprint.expiry is None
    assert len(fingerprint.digest) == 64
    assert fingerprint.matches(Fingerprint.of(backup_request("sql", properties={"backupType": "Differential"})))


@pytest.mark.parametrize(
    ("apart", "same"),
    [(timedelta(0), True), (EXPIRY_TOLERANCE, True), (EXPIRY_TOLERANCE + timedelta(microseconds=1), False)],
)
def test_matches_is_symmetric_within_the_tolerance(apart: timedelta, same: bool) -> None:
    first, second = Fingerprint("d" * 64, NOW), Fingerprint("d" * 64, NOW + apart)

    assert first.matches(second) is same
    assert second.matches(first) is same


def test_matches_needs_the_same_digest_and_both_or_neither_expiry() -> None:
    assert Fingerprint("d" * 64, None).matches(Fingerprint("d" * 64, None))
    assert not Fingerprint("d" * 64, None).matches(Fingerprint("d" * 64, NOW))
    assert not Fingerprint("d" * 64, NOW).matches(Fingerprint("d" * 64, None))
    assert not Fingerprint("d" * 64, NOW).matches(Fingerprint("e" * 64, NOW))


# --- records through a store and back ------------------------------------------------------


def through_store(fields: Fields) -> Stored:
    store = MemoryStore(Clock(NOW))
    key = RecordKey("p", "r")
    store.create(key, fields)
    stored = store.read(key)
    assert stored is not None
    return stored


def test_a_request_record_round_trips_every_field() -> None:
    original = full_request_record()
    stored = through_store(original.to_fields())

    assert RequestRecord.from_stored(stored) == replace(original, etag=stored.etag)
    assert len(stored.fields["Result"]) == RESULT_BYTES  # type: ignore[arg-type]


def test_a_request_record_round_trips_through_the_ledger() -> None:
    ledger, _ = ledger_at()
    created = ledger.create_request(full_request_record())

    assert created.etag is not None
    assert ledger.request("change-4711") == created


def test_a_minimal_request_record_leaves_no_empty_fields_behind() -> None:
    ledger, store = ledger_at()
    created = ledger.create_request(minimal_request_record())

    stored = store.read(request_key("corr-min"))
    assert stored is not None
    assert None not in stored.fields.values()
    assert not {"Holder", "Expiry", "PostingSince", "Pending", "NextLookAt", "JobId", "Status", "Result"} & set(
        stored.fields)
    assert ledger.request("corr-min") == created
    assert (created.written_by, created.result_sent, created.pending_delay) == (-1, False, 0)


def test_texts_that_may_outgrow_a_table_string_are_stored_as_bytes() -> None:
    # A Table string property holds 32 K UTF-16 characters; a result may need all of 60 KiB.
    fields = full_request_record().to_fields()

    assert isinstance(fields["Result"], bytes)
    assert isinstance(fields["Pending"], bytes)


@pytest.mark.parametrize(
    "original",
    [
        full_item_record(),
        ItemRecord(item_id=ITEM),
        replace(full_item_record(), active_fingerprint=Fingerprint("f" * 64, None)),
        replace(full_item_record(), active_key=None, active_since=None, active_fingerprint=None),
    ],
    ids=["full", "minimal", "fingerprint without expiry", "idle with a count"],
)
def test_an_item_record_round_trips_every_field(original: ItemRecord) -> None:
    ledger, store = ledger_at()
    saved = ledger.save_item(original)

    stored = store.read(item_key(ITEM))
    assert stored is not None
    assert None not in stored.fields.values()
    assert ItemRecord.from_stored(stored) == saved == replace(original, etag=saved.etag)
    assert ledger.item(ITEM) == saved


def test_nothing_is_read_where_nothing_was_written() -> None:
    ledger, _ = ledger_at()

    assert ledger.request("never") is None
    assert ledger.item(ITEM) is None


def test_a_record_without_its_creation_time_is_refused_not_guessed() -> None:
    fields = dict(minimal_request_record().to_fields())
    del fields["CreatedAt"]

    with pytest.raises(ValueError, match="CreatedAt"):
        RequestRecord.from_stored(Stored(fields, 'W/"1"'))


# --- moved_on --------------------------------------------------------------------------------


def in_flight() -> RequestRecord:
    return replace(
        full_request_record(), step=3, written_by=2, posting_since=NOW, pending='{"p":1}', pending_delay=60,
        result=None, status=None, result_sent=False, etag='W/"9"',
    )


def test_moved_on_is_the_next_step_written_by_the_mover_with_its_sends_settled() -> None:
    before = in_flight()

    after = before.moved_on(by=3)

    assert (after.step, after.written_by) == (4, 3)
    assert (after.pending, after.posting_since, after.pending_delay) == (None, None, 0)
    unchanged = {"key", "item_id", "fingerprint", "holder", "phase", "created_at", "job_id", "etag", "next_look_at"}
    assert {name: getattr(after, name) for name in unchanged} == {name: getattr(before, name) for name in unchanged}
    assert (before.step, before.pending) == (3, '{"p":1}')  # the version read is left as it was


def test_moved_on_takes_what_the_mover_sends_next() -> None:
    after = in_flight().moved_on(by=3, pending='{"p":2}', pending_delay=30, posting_since=NOW, phase="job")

    assert (after.step, after.pending, after.pending_delay, after.posting_since, after.phase) == (
        4, '{"p":2}', 30, NOW, "job")


@pytest.mark.parametrize("by", [0, 3, 7])
def test_moved_on_records_the_writers_step_not_the_records(by: int) -> None:
    assert in_flight().moved_on(by=by).written_by == by


# --- conflicts ------------------------------------------------------------------------------


def test_creating_a_request_twice_is_a_conflict() -> None:
    ledger, _ = ledger_at()
    ledger.create_request(minimal_request_record())

    with pytest.raises(RecordExists):
        ledger.create_request(minimal_request_record())


def test_saving_over_a_version_someone_else_wrote_is_a_conflict() -> None:
    ledger, _ = ledger_at()
    read = ledger.create_request(minimal_request_record())
    assert read.etag is not None
    winner = ledger.save_request(read.moved_on(by=0), read.etag)

    with pytest.raises(RecordChanged):
        ledger.save_request(read.moved_on(by=0, phase="operation"), read.etag)
    assert ledger.request("corr-min") == winner
    assert winner.etag != read.etag


def test_saving_with_the_etag_read_replaces_the_record() -> None:
    ledger, _ = ledger_at()
    read = ledger.create_request(minimal_request_record())
    assert read.etag is not None

    saved = ledger.save_request(read.moved_on(by=0, phase="operation"), read.etag)
    assert saved.etag is not None
    again = ledger.save_request(saved.moved_on(by=1, phase="job"), saved.etag)

    assert ledger.request("corr-min") == again
    assert (again.step, again.phase) == (2, "job")


def test_saving_a_record_that_is_gone_is_a_conflict() -> None:
    ledger, _ = ledger_at()

    with pytest.raises(RecordChanged):
        ledger.save_request(minimal_request_record(), 'W/"1"')


def test_item_records_are_created_once_then_replaced_by_etag() -> None:
    ledger, _ = ledger_at()
    first = ledger.save_item(full_item_record())

    with pytest.raises(RecordExists):
        ledger.save_item(full_item_record())  # no etag: a create, and the item is taken
    second = ledger.save_item(replace(first, day_count=4))
    with pytest.raises(RecordChanged):
        ledger.save_item(replace(first, day_count=5))  # the version before second
    assert ledger.item(ITEM) == second


@pytest.mark.parametrize("conflict", [RecordExists, RecordChanged])
def test_both_conflicts_mean_read_again(conflict: type[Exception]) -> None:
    assert issubclass(conflict, LedgerConflict)
    assert not issubclass(LedgerUnavailable, LedgerConflict)


# --- record keys ------------------------------------------------------------------------------

HOSTILE_KEYS = [
    "a/b", "a\\b", "#frag", "?q=1", "%2F", "../..", ".", "", " ", "\t", "\x00", "\x1f", "\x7f", "\x85", "\u2028",
    "ü", "🦆", "x" * 10_000, "'; DROP TABLE ledger; --", "PartitionKey eq 'x'",
]


def assert_table_safe(key: RecordKey) -> None:
    for part in (key.partition, key.row):
        assert part, key
        assert len(part.encode()) <= 1024, key
        assert not set(part) & set("/\\#?"), key
        assert all(unicodedata.category(character) != "Cc" for character in part), key


@pytest.mark.parametrize("key", HOSTILE_KEYS)
def test_request_and_item_keys_are_table_safe(key: str) -> None:
    assert_table_safe(request_key(key))
    assert_table_safe(item_key(key))


@hypothesis_settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_key_is_table_safe(key: str) -> None:
    assert_table_safe(request_key(key))
    assert_table_safe(item_key(key))


def test_a_key_with_a_lone_surrogate_is_table_safe() -> None:
    assert_table_safe(request_key("event-\ud800"))


def test_request_keys_are_case_sensitive_and_item_keys_are_not() -> None:
    assert request_key("Change-1") != request_key("change-1")
    assert item_key(ITEM.upper()) == item_key(ITEM)
    assert item_key(ITEM) != item_key(item_id("fileshare"))


@pytest.mark.parametrize("key", [ITEM, ITEM.lower()])
def test_a_request_and_an_item_never_share_a_record(key: str) -> None:
    # A correlation id spelled like an item id must not land on the item's record.
    assert request_key(key) != item_key(key)
    assert request_key(key).partition != item_key(key).partition


# --- the retention sweep -------------------------------------------------------------------


def aged_ledger(old: int, recent: int, *, age: timedelta = timedelta(days=31)) -> tuple[Ledger, MemoryStore, Clock]:
    clock = Clock(NOW - age)
    ledger, store = ledger_at(clock)
    for index in range(old):
        ledger.create_request(minimal_request_record(f"old-{index}"))
    clock.now = NOW - timedelta(days=1)
    for index in range(recent):
        ledger.create_request(minimal_request_record(f"recent-{index}"))
    clock.now = NOW
    return ledger, store, clock


def test_the_sweep_deletes_old_records_in_bounded_batches_at_most_once_per_interval() -> None:
    ledger, store, _ = aged_ledger(2 * SWEEP_BATCH + 50, 5)

    deleted = [ledger.sweep_if_due(NOW, 30)]
    before = store.transactions
    deleted.append(ledger.sweep_if_due(NOW + SWEEP_INTERVAL - timedelta(seconds=1), 30))
    assert store.transactions == before  # not due: the store is not even asked
    for turn in range(1, 4):
        deleted.append(ledger.sweep_if_due(NOW + turn * SWEEP_INTERVAL, 30))

    assert deleted == [SWEEP_BATCH, 0, SWEEP_BATCH, 50, 0]
    assert sorted(store.keys(), key=str) == sorted((request_key(f"recent-{i}") for i in range(5)), key=str)


@pytest.mark.parametrize(
    ("age", "kept"),
    [(timedelta(days=30, seconds=1), False), (timedelta(days=30, seconds=-1), True), (timedelta(days=1), True)],
)
def test_the_sweep_keeps_what_changed_within_the_retention(age: timedelta, kept: bool) -> None:
    ledger, store, _ = aged_ledger(1, 0, age=age)

    assert ledger.sweep_if_due(NOW, 30) == (0 if kept else 1)
    assert (request_key("old-0") in set(store.keys())) is kept


def test_a_record_changed_recently_is_not_swept_however_old_it_is() -> None:
    ledger, store, clock = aged_ledger(1, 0)
    clock.now = NOW - timedelta(hours=1)
    read = ledger.request("old-0")
    assert read is not None and read.etag is not None
    ledger.save_request(read.moved_on(by=0), read.etag)

    assert ledger.sweep_if_due(NOW, 30) == 0
    assert store.keys() == [request_key("old-0")]


class FailingStore(MemoryStore):
    """A store whose deletes fail while ``down``; counts the deletes asked for."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.down = True
        self.delete_calls = 0

    def delete_older_than(self, cutoff: datetime, limit: int) -> int:
        self.delete_calls += 1
        if self.down:
            raise LedgerUnavailable("table service unreachable")
        return super().delete_older_than(cutoff, limit)


def test_a_failed_sweep_returns_nothing_and_tries_again_after_the_interval() -> None:
    clock = Clock(NOW - timedelta(days=40))
    store = FailingStore(clock)
    ledger = Ledger(store)
    ledger.create_request(minimal_request_record("old"))

    assert ledger.sweep_if_due(NOW, 30) == 0
    assert ledger.sweep_if_due(NOW + timedelta(minutes=1), 30) == 0
    assert store.delete_calls == 1  # a failure waits for the next interval, it does not retry at once
    store.down = False
    assert ledger.sweep_if_due(NOW + SWEEP_INTERVAL, 30) == 1
    assert store.delete_calls == 2
    assert store.keys() == []


def test_concurrent_invocations_sweep_once() -> None:
    clock = Clock(NOW)
    store = FailingStore(clock)
    store.down = False
    ledger = Ledger(store)
    start = threading.Barrier(8)
    results: list[int] = []

    def sweep() -> None:
        start.wait()
        results.append(ledger.sweep_if_due(NOW, 30))

    threads = [threading.Thread(target=sweep) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert store.delete_calls == 1
    assert results == [0] * 8
