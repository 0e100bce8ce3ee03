"""Chaos: requests while ARM fails in every way the emulator can, hosts are SIGKILLed and Azurite restarts.

Three local hosts take from the same queues, as instances of a scaled-out app; each is SIGKILLed
in turn while the others work, and Azurite (queues and the ledger's table) restarts once. Every
request must end with its expected status; nothing may be lost, left in a queue or poisoned.
With the request ledger on: each request's item accepted exactly one POST (a duplicate spends one
of the item's few on-demand backups a day), and each key got exactly one result. The one
duplicate the ledger leaves possible (a host dying between sending a result and marking it sent)
is counted in ``duplicate_results``; the full size reports it in the README.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.bench.admin import EmulatorAdmin
from devtools.bench.estate import Estate
from devtools.bench.stackrun import base_config, remove_state
from devtools.bench.traffic import ResultCollector, send_all
from devtools.funchost.processes import wait_until
from devtools.stack import DEFAULT_QUEUES
from tests.reliability.hosts import host_group
from tests.reliability.support import Scale, drained, publish, reliability_stack, tally, trigger_history

pytestmark = pytest.mark.integration

# Emulated durations stay short and the time scale low: the app looks for a lost trigger's job by
# listing jobs in a window of its own (real) clock, which an emulated clock must not outrun.
TIME_SCALE = 5.0
SCHEDULE = {"operation_seconds": 10, "operation_retry_after": 5, "job_seconds": 25}
FAULTS: list[dict[str, Any]] = [
    {"request": "trigger", "probability": 0.04, "fault": "503", "retry_after": 1},
    {"request": "trigger", "probability": 0.04, "fault": "500"},
    {"request": "trigger", "probability": 0.05, "fault": "drop", "when": "after"},
    {"request": "trigger", "probability": 0.04, "fault": "slow", "seconds": 4},  # beyond the read timeout
    {"request": "operation_status", "probability": 0.05, "fault": "500"},
    {"request": "operation_status", "probability": 0.04, "fault": "drop"},
    {"request": "job_get", "probability": 0.05, "fault": "503", "retry_after": 1},
    {"request": "job_get", "probability": 0.04, "fault": "slow", "seconds": 1},
    {"request": "job_list", "probability": 0.05, "fault": "500"},
    {"request": "token", "probability": 0.03, "fault": "500"},
    {"request": "*", "probability": 0.02, "fault": "429", "retry_after": 1},
]
# A killed host's messages come back once their lease runs out. The Functions host holds them for ten
# minutes (renewed), far longer than a storage blip; a lease shorter than the Azurite restart here would
# expire under living invocations, which is another scenario (a stalled instance), not a crash.
LEASE_SECONDS = 12
APP_SETTINGS = {
    "MIN_DELAY_SECONDS": "1", "POLL_INTERVAL_SECONDS": "1", "JOB_POLL_INITIAL_SECONDS": "1",
    "JOB_POLL_MAX_SECONDS": "2", "RETRY_BASE_SECONDS": "1", "RETRY_MAX_SECONDS": "4",
    "HTTP_CONNECT_TIMEOUT_SECONDS": "2", "HTTP_READ_TIMEOUT_SECONDS": "2",
}


def _events(scale: Scale) -> list[str]:
    """Host kills, each of the next host in turn, with the Azurite restart(s) between them: kill-0, azurite, kill-1 …"""
    events = [f"kill-{n % scale.chaos_hosts}" for n in range(scale.host_kills)]
    for n in range(scale.azurite_restarts):
        events.insert(min(len(events), 1 + 2 * n), "azurite")
    return events


def _answered_202(entry: str) -> bool:
    """A POST the log shows accepted (on time or late); a drop hides its answer, which may have been a 429."""
    return entry.partition("/")[0] == "202"


def _triggers_reach(admin: EmulatorAdmin, floor: int) -> Callable[[], bool | None]:
    return lambda: admin.stats()["trigger"] >= floor or None


def test_chaos_loses_nothing_and_triggers_nothing_twice(scale: Scale) -> None:
    count = scale.chaos_requests
    estate = Estate(count)
    start = (datetime.now(UTC) - timedelta(minutes=4)).isoformat()
    config = base_config(
        TIME_SCALE, clock_start=start, defaults=SCHEDULE,
        throttle={"writes": {"capacity": 30, "refill_per_second": 40},
                  "reads": {"capacity": 1_000_000, "refill_per_second": 1_000_000}},
        faults={"seed": 20261126, "max_slow_seconds": 10, "rates": FAULTS},
    )
    events = _events(scale)
    ids = [f"chaos-{n}" for n in range(count)]
    items = {f"{estate.item(n).vault}/{estate.item(n).item}".lower(): estate.item(n).id.lower() for n in range(count)}
    chunks = [ids[n::len(events) + 1] for n in range(len(events) + 1)]
    done_events: list[str] = []
    outages: list[tuple[float, float]] = []
    with (
        reliability_stack("chaos", estate, config, APP_SETTINGS, lease_seconds=LEASE_SECONDS) as (
            stack, admin, service,
        ),
        host_group(stack, scale.chaos_hosts) as hosts,
    ):
        since = admin.last_seq()
        before = admin.stats()
        started = time.monotonic()
        with ResultCollector(service.get_queue_client(DEFAULT_QUEUES["BACKUP_RESULTS_QUEUE"])) as collector:
            sent = 0
            for n, chunk in enumerate(chunks):
                send_all(service, DEFAULT_QUEUES["BACKUP_REQUESTS_QUEUE"],
                         [json.dumps(estate.request(int(i.split("-")[1]), i)) for i in chunk])
                sent += len(chunk)
                if n == len(events):
                    break
                # Strike while this chunk is being worked on: some of its invocations are in flight.
                wait_until(_triggers_reach(admin, sent - len(chunk) // 2), timeout=60, what="the chunk's POSTs")
                if events[n] == "azurite":
                    began = time.time()
                    stack.restart_azurite()
                    outages.append((began, time.time()))
                else:
                    hosts.kill_and_restart(int(events[n].split("-")[1]))
                done_events.append(events[n])

            results = collector.wait_for(set(ids), scale.timeout, settle=lambda: drained(service))
        elapsed = time.monotonic() - started
        counts = admin.counts_since(before)
        accepted = {k.lower(): v - before["triggers_by_item"].get(k, 0)
                    for k, v in admin.stats()["triggers_by_item"].items()}
        history = trigger_history(admin, since)
        counted = tally(set(ids), results, service, history, {k: v for k, v in accepted.items() if v > 0})
        outcomes = hosts.outcomes()
        window = sorted(hosts.result_window_ms())
        copies = {key: len(found) for key, found in results.by_correlation.items() if len(found) > 1}
        # Each copy beyond the first needs a sender that did not live to mark the result sent.
        senders = hosts.failed_senders(list(copies), outages)
        unexplained = {key: n for key, n in copies.items() if n - 1 > sum(senders[key].values())}
    logged = {key: sum(map(_answered_202, entries)) for key, entries in history.items()}
    counted.update({
        "seconds": round(elapsed, 1), "hosts": len(hosts), "events": done_events, "arm": counts.as_dict(),
        "invocations": outcomes, "collector_errors": collector.errors,
        # Every fault here is transient and every item is a request's own: each must end Succeeded.
        "not_succeeded": {key: [str(r.get("status")) for r in found] for key, found in results.by_correlation.items()
                          if any(r.get("status") != "Succeeded" for r in found)},
        # Per item of a request: the POSTs the emulator accepted (its counter) and those its log shows answered 202.
        "items_not_accepted_once": {key: accepted.get(item_id, 0) for key, item_id in items.items()
                                    if accepted.get(item_id, 0) != 1},
        "items_with_two_202s_logged": {key: history[key] for key, n in logged.items() if n > 1},
        # A result sent again from the ledger's record is the same text; one computed twice would not be.
        "keys_with_different_results": sorted(key for key, found in results.by_correlation.items()
                                              if any(r != found[0] for r in found)),
        "unexplained_duplicates": unexplained,
        "duplicates_after": {cause: sum(1 for found in senders.values() if found[cause])
                             for cause in ("killed", "failed", "outage")},
        "result_to_settled_ms": {"p50": window[len(window) // 2], "p95": window[len(window) * 95 // 100]}
        if window else {},
    })
    faults = ", ".join(sorted({f["fault"] for f in FAULTS}))
    publish("chaos", scale, f"{count} requests over {len(hosts)} hosts; faults {faults}; write budget 30 + 40/s; "
            f"events {' '.join(done_events)}", counted)

    assert counted["lost"] == 0, f"requests without a result: {counted}"
    assert counted["left_behind"] == 0, f"messages left in the queues: {counted['queues']}"
    assert counted["poisoned"] == 0, f"poison messages: {counted['queues']}"
    assert counted["unexpected_results"] == 0
    assert counted["not_succeeded"] == {}, f"requests that did not end Succeeded: {counted['not_succeeded']}"
    # The collector's client retries for about a minute before an error counts: one means results went unread.
    assert counted["collector_errors"] == 0, f"the results queue could not be read: {counted}"
    # Exactly once, with the ledger on: one accepted POST per item-request, one result per key.
    assert counted["items_not_accepted_once"] == {}, f"items not triggered exactly once: {counted}"
    assert counted["items_with_two_202s_logged"] == {}, f"items answered 202 twice: {counted}"
    assert counted["duplicate_posts"] == 0, f"POSTs after one took effect: {counted['duplicate_post_histories']}"
    # One result per key: a copy may only be the recorded result sent again, after its sender died or lost
    # storage between sending it and marking it sent (the redelivery, or the storage client's retry of a send
    # whose answer was lost, sends it again); those copies are counted and published.
    assert counted["keys_with_different_results"] == [], f"keys with two different results: {counted}"
    assert counted["unexplained_duplicates"] == {}, f"copies no dead or failed sender explains: {counted}"
    remove_state(stack)  # only once the invariants held: a failure keeps Azurite's data and the logs to look at
    hosts.remove_logs()
