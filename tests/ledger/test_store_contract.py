"""The ``LedgerStore`` contract, run against ``MemoryStore`` and against ``TableStore`` on Azurite.

Both must behave alike, so that what the workflow's unit tests prove on the memory store holds
on the table: the same values come back, the same conflicts are raised, no update is lost.
"""

from __future__ import annotations

import hashlib
import threading
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.ledger_store import Fields, RecordChanged, RecordExists, RecordKey, Stored
from tests.ledger.conftest import Subject

THREADS = 8
INCREMENTS_PER_THREAD = 10
MAX_TRIES_PER_INCREMENT = 500


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# The shapes of key the ledger uses: hex digests, joined by '-' to a day or a kind.
KEY = RecordKey(f"{digest('item')[:32]}-2026-11-27", f"{digest('request')}-state")

EVERY_TYPE: Fields = {
    "text": "vm-web01 ✓ ünïcode 𝄞",
    "empty": "",
    "big_text": "x" * 32_000,
    "count": 7,
    "negative": -(2**31),
    "int32_max": 2**31 - 1,
    "int64": 2**31,
    "int64_max": 2**63 - 1,
    "int64_min": -(2**63),
    "flag_true": True,
    "flag_false": False,
    "blob": bytes(range(256)) * 240,  # 60 KiB
    "empty_blob": b"",
    "when_utc": datetime(2026, 11, 27, 12, 30, 15, 123456, tzinfo=UTC),
    "when_offset": datetime(2026, 11, 27, 14, 30, 15, tzinfo=timezone(timedelta(hours=2))),
}


def test_every_field_type_comes_back_as_written(subject: Subject) -> None:
    etag = subject.store.create(KEY, EVERY_TYPE)

    stored = subject.store.read(KEY)

    assert stored is not None
    assert stored.etag == etag
    assert dict(stored.fields) == EVERY_TYPE
    for name, value in stored.fields.items():
        assert type(value) is type(EVERY_TYPE[name]), name


def test_an_unknown_key_reads_as_none(subject: Subject) -> None:
    subject.store.create(KEY, {"n": 1})

    assert subject.store.read(RecordKey(KEY.partition, "other")) is None
    assert subject.store.read(RecordKey("other", KEY.row)) is None


def test_none_fields_are_not_stored(subject: Subject) -> None:
    subject.store.create(KEY, {"kept": "yes", "dropped": None})

    stored = subject.store.read(KEY)

    assert stored is not None
    assert dict(stored.fields) == {"kept": "yes"}


def test_a_create_on_a_taken_key_is_refused_and_changes_nothing(subject: Subject) -> None:
    etag = subject.store.create(KEY, {"owner": "first"})

    with pytest.raises(RecordExists):
        subject.store.create(KEY, {"owner": "second"})

    assert subject.store.read(KEY) == Stored({"owner": "first"}, etag)


def test_a_replace_returns_a_new_etag_that_the_next_replace_can_use(subject: Subject) -> None:
    first = subject.store.create(KEY, {"step": 1, "extra": "gone after replace"})

    second = subject.store.replace(KEY, {"step": 2}, first)
    third = subject.store.replace(KEY, {"step": 3}, second)

    assert len({first, second, third}) == 3
    stored = subject.store.read(KEY)
    assert stored is not None
    assert (dict(stored.fields), stored.etag) == ({"step": 3}, third)


def test_a_replace_with_a_stale_etag_is_refused_and_changes_nothing(subject: Subject) -> None:
    stale = subject.store.create(KEY, {"step": 1})
    current = subject.store.replace(KEY, {"step": 2}, stale)

    with pytest.raises(RecordChanged):
        subject.store.replace(KEY, {"step": 99}, stale)

    stored = subject.store.read(KEY)
    assert stored is not None
    assert (dict(stored.fields), stored.etag) == ({"step": 2}, current)


def test_a_replace_of_a_missing_record_is_refused_and_creates_nothing(subject: Subject) -> None:
    etag = subject.store.create(KEY, {"n": 1})
    missing = RecordKey(KEY.partition, f"{digest('never')}-state")

    with pytest.raises(RecordChanged):
        subject.store.replace(missing, {"n": 2}, etag)

    assert subject.store.read(missing) is None


def test_delete_older_than_deletes_only_records_last_changed_before_the_cutoff(subject: Subject) -> None:
    old = [RecordKey("old", f"{digest(str(n))}-{n}") for n in range(3)]
    refreshed = RecordKey("old", "refreshed")
    for key in old:
        subject.store.create(key, {"n": 1})
    refreshed_etag = subject.store.create(refreshed, {"n": 1})
    cutoff = subject.boundary()
    subject.store.replace(refreshed, {"n": 2}, refreshed_etag)
    new = RecordKey("new", "n")
    subject.store.create(new, {"n": 1})

    deleted = subject.store.delete_older_than(cutoff, limit=100)

    assert deleted == len(old)
    assert [subject.store.read(key) for key in old] == [None] * len(old)
    assert subject.store.read(refreshed) is not None
    assert subject.store.read(new) is not None
    assert subject.store.delete_older_than(cutoff, limit=100) == 0


def test_delete_older_than_stops_at_its_limit_and_the_next_sweep_goes_on(subject: Subject) -> None:
    keys = [RecordKey("p", f"{n:02d}") for n in range(5)]
    for key in keys:
        subject.store.create(key, {"n": 1})
    cutoff = subject.boundary()

    first_sweep = subject.store.delete_older_than(cutoff, limit=2)
    left = [key for key in keys if subject.store.read(key) is not None]
    second_sweep = subject.store.delete_older_than(cutoff, limit=10)

    assert (first_sweep, len(left), second_sweep) == (2, 3, 3)
    assert all(subject.store.read(key) is None for key in keys)


def test_a_partition_reads_back_whole_in_row_order_and_alone(subject: Subject) -> None:
    rows = [f"c-{digest(str(n))}" for n in range(30)] + ["p-000000", "p-000001"]
    etags = {row: subject.store.create(RecordKey("batch-a", row), {"row": row, "n": n}) for n, row in enumerate(rows)}
    subject.store.create(RecordKey("batch-b", "p-000000"), {"row": "other"})
    subject.store.create(RecordKey("batch-a-longer", "p-000000"), {"row": "other"})
    etags["p-000001"] = subject.store.replace(RecordKey("batch-a", "p-000001"), {"row": "p-000001", "n": -1},
                                              etags["p-000001"])

    found = subject.store.read_partition("batch-a")

    assert [row for row, _ in found] == sorted(rows)
    assert all(stored.etag == etags[row] and stored.fields["row"] == row for row, stored in found)
    assert dict(found)["p-000001"].fields["n"] == -1


def test_an_empty_partition_reads_as_nothing(subject: Subject) -> None:
    assert subject.store.read_partition("nothing-here") == []
    subject.store.create(RecordKey("elsewhere", "r"), {"n": 1})
    assert subject.store.read_partition("nothing-here") == []


def test_concurrent_read_replace_increments_lose_no_update(subject: Subject) -> None:
    subject.store.create(KEY, {"count": 0})
    conflicts = [0] * THREADS
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def increment(worker: int) -> None:
        try:
            start.wait()
            for _ in range(INCREMENTS_PER_THREAD):
                for _attempt in range(MAX_TRIES_PER_INCREMENT):
                    stored = subject.store.read(KEY)
                    assert stored is not None
                    count = stored.fields["count"]
                    assert isinstance(count, int)
                    try:
                        subject.store.replace(KEY, {"count": count + 1, "by": worker}, stored.etag)
                        break
                    except RecordChanged:
                        conflicts[worker] += 1
                else:
                    raise AssertionError(f"worker {worker} lost {MAX_TRIES_PER_INCREMENT} races in a row")
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=increment, args=(n,)) for n in range(THREADS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert errors == []
    stored = subject.store.read(KEY)
    assert stored is not None
    assert stored.fields["count"] == THREADS * INCREMENTS_PER_THREAD
    print(f"{THREADS * INCREMENTS_PER_THREAD} increments, {sum(conflicts)} conflicts retried")
