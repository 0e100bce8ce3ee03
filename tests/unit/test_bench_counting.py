"""The benchmark's counting store: every call to the wrapped store counted by kind, per thread, the sweep apart."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from devtools.bench.counting import SWEEP, CountingStore
from shared.ledger_store import MemoryStore, RecordChanged, RecordExists, RecordKey
from tests.fakes import Clock

KEY = RecordKey("p", "r")


def test_every_call_is_counted_by_kind_failed_ones_too() -> None:
    clock = Clock()
    store = CountingStore(MemoryStore(clock))

    assert store.read(KEY) is None
    etag = store.create(KEY, {"n": 1})
    with pytest.raises(RecordExists):
        store.create(KEY, {"n": 2})
    store.replace(KEY, {"n": 3}, etag)
    with pytest.raises(RecordChanged):
        store.replace(KEY, {"n": 4}, etag)
    stored = store.read(KEY)
    [(row, _)] = store.read_partition(KEY.partition)

    assert stored is not None and stored.fields == {"n": 3}
    assert row == KEY.row
    assert store.totals() == {"read": 2, "create": 2, "replace": 2, "read_partition": 1}
    assert store.this_thread() == 7


def test_the_sweep_is_counted_apart_from_a_threads_transactions() -> None:
    clock = Clock()
    store = CountingStore(MemoryStore(clock))
    store.create(KEY, {"n": 1})
    clock.advance(10)

    assert store.delete_older_than(clock.now - timedelta(seconds=1), 100) == 1
    assert store.totals() == {"create": 1, SWEEP: 1}
    assert store.this_thread() == 1


def test_each_thread_sees_only_its_own_transactions() -> None:
    store = CountingStore(MemoryStore(Clock()))
    seen: dict[int, int] = {}

    def work(n: int) -> None:
        for _ in range(n):
            store.read(KEY)
        seen[n] = store.this_thread()

    threads = [threading.Thread(target=work, args=(n,)) for n in (1, 2, 3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert seen == {1: 1, 2: 2, 3: 3}
    assert store.totals() == {"read": 6}
    assert store.this_thread() == 0
