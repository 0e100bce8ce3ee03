"""A throttled burst: 200 requests at once against a write budget far below that; every one ends once."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from tests.integration.conftest import BURST_ITEMS, MAIN_QUEUES, Suite, item_id, request_text, unique, vm_names

pytestmark = pytest.mark.integration

DEADLINE_SECONDS = 180
# ARM's write bucket shrunk so far (10 at once, 4 a second) that even a slow host meets 429s with Retry-After.
THROTTLE = {"writes": {"capacity": 10, "refill_per_second": 4}}


def test_a_throttled_burst_of_200_requests_all_succeed_exactly_once(suite: Suite) -> None:
    suite.admin.configure({"throttle": THROTTLE})
    run = unique("burst")
    names = {f"{run}-{n:03d}": vm_names("vault-burst", f"burst-{n:03d}") for n in range(BURST_ITEMS)}
    started = time.monotonic()
    for correlation_id, item in names.items():
        suite.send(request_text(item, correlation_id))

    collector = suite.results()
    results = collector.wait_for(names, timeout=DEADLINE_SECONDS - (time.monotonic() - started))
    suite.wait_until_idle(MAIN_QUEUES, timeout=max(1.0, DEADLINE_SECONDS - (time.monotonic() - started)))
    collector.poll()  # whatever landed meanwhile: a duplicate would show here

    statuses = Counter(result["status"] for result in results.values())
    assert statuses == {"Succeeded": BURST_ITEMS}, statuses
    duplicates = {cid: len(found) for cid, found in collector.by_id.items() if cid in names and len(found) > 1}
    assert not duplicates
    assert set(collector.by_id) == set(names), "results for requests nobody sent"
    for correlation_id, result in results.items():
        suite.check_schema(result)
        assert result["protectedItemId"] == item_id(names[correlation_id])
    for name in MAIN_QUEUES.all:
        if name.endswith("-poison"):
            assert suite.queue(name).peek_messages(max_messages=1) == [], name

    stats = suite.admin.stats()
    assert stats["status_codes"].get("429", 0) >= 20, stats["status_codes"]
    assert stats["throttled"] == stats["status_codes"]["429"]
    # Exactly one accepted POST per request: a throttled POST is sent again, an accepted one never.
    accepted = {item: count for item, count in stats["triggers_by_item"].items() if "vault-burst" in item}
    assert accepted == {item_id(item): 1 for item in names.values()}
    throttled_posts = [
        entry for entry in suite.admin.requests() if entry["kind"] == "trigger" and entry["status"] == 429
    ]
    assert throttled_posts, "no POST was throttled: the burst did not test throttling"
    assert stats["trigger"] == BURST_ITEMS + len(throttled_posts)
