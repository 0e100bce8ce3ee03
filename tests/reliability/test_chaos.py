"""Chaos: requests while ARM fails in every way the emulator can, the host is SIGKILLed and Azurite restarts.

Every request must end with a result; nothing may be lost, left in a queue or poisoned. No backup
may be triggered twice (a duplicate spends one of the item's few on-demand backups a day) and a
request run twice (at least once delivery) must say the same twice.
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
from devtools.bench.stackrun import HostLog, base_config, remove_state
from devtools.bench.traffic import ResultCollector, send_all
from devtools.funchost.processes import wait_until
from devtools.stack import DEFAULT_QUEUES
from tests.reliability.support import (
    Scale,
    drained,
    publish,
    reliability_stack,
    tally,
    trigger_history,
    wrong_statuses,
)

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
APP_SETTINGS = {
    "MIN_DELAY_SECONDS": "1", "POLL_INTERVAL_SECONDS": "1", "JOB_POLL_INITIAL_SECONDS": "1",
    "JOB_POLL_MAX_SECONDS": "2", "RETRY_BASE_SECONDS": "1", "RETRY_MAX_SECONDS": "4",
    "HTTP_CONNECT_TIMEOUT_SECONDS": "2", "HTTP_READ_TIMEOUT_SECONDS": "2",
}


def _events(scale: Scale) -> list[str]:
    """Host kills with the Azurite restart(s) between them: kill, azurite, kill, kill …"""
    events = ["kill"] * scale.host_kills
    for n in range(scale.azurite_restarts):
        events.insert(min(len(events), 1 + 2 * n), "azurite")
    return events


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
    chunks = [ids[n::len(events) + 1] for n in range(len(events) + 1)]
    done_events: list[str] = []
    with reliability_stack("chaos", estate, config, APP_SETTINGS) as (stack, admin, service):
        log = HostLog(stack.log_path("host"))
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
                if events[n] == "kill":
                    stack.restart_host(kill=True)
                else:
                    stack.restart_azurite()
                done_events.append(events[n])

            results = collector.wait_for(set(ids), scale.timeout, settle=lambda: drained(service))
        elapsed = time.monotonic() - started
        counts = admin.counts_since(before)
        accepted = {k: v for k, v in admin.stats()["triggers_by_item"].items()
                    if v - before["triggers_by_item"].get(k, 0) > 0}
        counted = tally(set(ids), results, service, trigger_history(admin, since), accepted)
        outcomes = log.outcomes()
    counted.update({
        "seconds": round(elapsed, 1), "events": done_events, "arm": counts.as_dict(),
        "invocations": outcomes, "collector_errors": collector.errors,
        # Every fault here is transient and every item is a request's own: each must end Succeeded.
        "wrong_statuses": wrong_statuses(results, dict.fromkeys(ids, "Succeeded")),
    })
    publish("chaos", scale, f"{count} requests; faults {', '.join(sorted({f['fault'] for f in FAULTS}))}; "
            f"write budget 30 + 40/s; events {' '.join(done_events)}", counted)

    assert counted["lost"] == 0, f"requests without a result: {counted}"
    assert counted["left_behind"] == 0, f"messages left in the queues: {counted['queues']}"
    assert counted["poisoned"] == 0, f"poison messages: {counted['queues']}"
    assert counted["unexpected_results"] == 0
    assert counted["wrong_statuses"] == {}, f"requests that did not end Succeeded: {counted['wrong_statuses']}"
    # The collector's client retries for about a minute before an error counts: one means results went unread.
    assert counted["collector_errors"] == 0, f"the results queue could not be read: {counted}"
    remove_state(stack)  # only once the invariants held: a failure keeps Azurite's data and the logs to look at
    # At least once: a host killed (or storage lost) after an invocation queued its follow-up but before the
    # message was deleted runs the request again. Both runs must then agree and trigger one backup only.
    assert counted["duplicate_accepted_posts"] == 0, f"backups triggered twice: {counted}"
    assert counted["duplicate_posts"] == 0, f"POSTs after one took effect: {counted['duplicate_post_histories']}"
    assert counted["inconsistent_duplicates"] == 0, f"contradictory duplicate results: {counted}"
