"""Load under throttling: many requests against an emulated ARM write budget.

The budget (a token bucket: ``load_burst`` at once, ``load_rate`` POSTs a second) sets a floor
under the completion time: requests ÷ rate. The run reports how close it came (never asserted:
this machine's timings are noise) and how much throttling cost (429s and invocations per backup),
and asserts that nothing was lost, poisoned, left behind or triggered twice.
"""

from __future__ import annotations

import json
import time

import pytest

from devtools.bench.estate import Estate
from devtools.bench.stackrun import HostLog, base_config, remove_state
from devtools.bench.traffic import ResultCollector, send_with_backlog
from devtools.stack import DEFAULT_QUEUES
from tests.reliability.support import Scale, drained, publish, reliability_stack, tally, trigger_history

pytestmark = pytest.mark.integration

# Requests waiting at most: Azurite (not the app, not ARM) slows down as a queue grows past a few thousand.
BACKLOG = 1000
APP_SETTINGS = {
    "MIN_DELAY_SECONDS": "1", "POLL_INTERVAL_SECONDS": "1", "JOB_POLL_INITIAL_SECONDS": "1",
    "JOB_POLL_MAX_SECONDS": "2", "RETRY_BASE_SECONDS": "1", "RETRY_MAX_SECONDS": "4",
}


def test_load_under_a_write_budget_loses_nothing(scale: Scale) -> None:
    count = scale.load_requests
    estate = Estate(count)
    config = base_config(
        1.0, defaults={"operation_seconds": 0, "operation_retry_after": 1, "job_seconds": 0},
        throttle={"writes": {"capacity": scale.load_burst, "refill_per_second": scale.load_rate},
                  "reads": {"capacity": 1_000_000, "refill_per_second": 1_000_000}},
    )
    ids = [f"load-{n}" for n in range(count)]
    texts = [json.dumps(estate.request(n, ids[n])) for n in range(count)]
    with reliability_stack("load", estate, config, APP_SETTINGS) as (stack, admin, service):
        log = HostLog(stack.log_path("host"))
        since = admin.last_seq()
        before = admin.stats()
        with ResultCollector(service.get_queue_client(DEFAULT_QUEUES["BACKUP_RESULTS_QUEUE"])) as collector:
            started = time.monotonic()
            send_seconds = send_with_backlog(service, DEFAULT_QUEUES["BACKUP_REQUESTS_QUEUE"], texts,
                                             backlog=BACKLOG, timeout=scale.timeout,
                                             watch=[DEFAULT_QUEUES["BACKUP_STATUS_QUEUE"]])
            results = collector.wait_for(set(ids), scale.timeout, settle=lambda: drained(service))
            elapsed = (results.last_at or 0.0) - (collector.started_at or 0.0)
        wall = time.monotonic() - started
        counts = admin.counts_since(before)
        accepted = {k: v - before["triggers_by_item"].get(k, 0) for k, v in admin.stats()["triggers_by_item"].items()}
        counted = tally(set(ids), results, service, trigger_history(admin, since), accepted)
        invocations = log.invocations()
    floor = count / scale.load_rate
    counted.update({
        "budget": f"{scale.load_burst} + {scale.load_rate:g}/s",
        "floor_s": round(floor, 1),
        "floor_after_burst_s": round((count - scale.load_burst) / scale.load_rate, 1),
        "completion_s": round(elapsed, 1),
        "completion_over_floor": round(elapsed / floor, 3),
        "send_s": round(send_seconds, 1),
        "max_backlog": BACKLOG,
        "wall_s": round(wall, 1),
        "throttled_429": counts.throttled,
        "throttled_per_backup": round(counts.throttled / count, 2),
        "invocations_per_backup": round(len(invocations) / count, 2),
        "arm": counts.as_dict(),
    })
    publish("load", scale, f"{count} requests against a write budget of {counted['budget']} "
            f"(floor {floor:.0f} s = requests ÷ rate), at most {BACKLOG} waiting", counted)

    assert counted["lost"] == 0, f"requests without a result: {counted}"
    assert counted["statuses"] == {"Succeeded": counted["results"]}, "throttling must delay, not fail"
    assert counted["left_behind"] == 0 and counted["poisoned"] == 0, counted["queues"]
    assert counted["duplicate_accepted_posts"] == 0 and counted["duplicate_posts"] == 0
    assert counted["duplicate_results"] == 0, "no host died here: one result per request"
    remove_state(stack)  # only once it passed: a failure keeps Azurite's data and the logs to look at
