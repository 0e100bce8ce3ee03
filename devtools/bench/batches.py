"""``python -m devtools.bench.batches``: a 1,000-item batch against the emulator's ARM write budget.

One local stack (Azurite, the emulator, the local host). The emulator's write budget is a token
bucket (``--burst``, ``--refill`` per second: ARM's 200 and 10/s halved by default, so that the
local stack, slower than Azure, could outrun it). Two runs over the same vault of ``--items`` VMs:

1. **the batch**: one request selecting every VM, released at ``BATCH_TRIGGERS_PER_MINUTE``
   (``--pace``, below the refill). Its floor is what the pace allows: the last item is released
   (N - 1) · 60 / pace seconds after the first and then takes one backup's time;
2. **the baseline**: the same items as N separate requests sent at once, as a hand-written loop
   does: what the write budget meets without pacing.

Printed: completion time against the floor, ARM calls per item by kind, 429s per item (target
under 0.1 for the batch: pacing should keep it under the limit, not lean on 429s), the most POSTs
in any minute. Figures on a shared machine are noisy; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from devtools.bench.admin import EmulatorAdmin
from devtools.bench.estate import RESOURCE_GROUP, SUBSCRIPTION, Estate, ItemName
from devtools.bench.schedule import Schedule
from devtools.bench.stackrun import app_timing, base_config, make_stack, remove_state
from devtools.bench.traffic import ResultCollector, ensure_queues, send_all
from devtools.queuectl import message_count
from devtools.stack import DEFAULT_QUEUES, REPO_ROOT

VAULT = "vault-batch"
SCHEDULE = Schedule(time_scale=60.0)
"""A backup: 120 s operation and a 600 s job, emulated; 12 s real."""


@dataclass(frozen=True)
class BatchEstate(Estate):
    """One vault holding every VM, as a batch needs (a plain Estate spreads them over vaults of 100)."""

    def item(self, n: int) -> ItemName:
        name = f"bvm-{n:04d}"
        return ItemName(self.subscription, RESOURCE_GROUP, VAULT,
                        f"IaasVMContainer;iaasvmcontainerv2;{RESOURCE_GROUP};{name}",
                        f"VM;iaasvmcontainerv2;{RESOURCE_GROUP};{name}")

    def inventory(self) -> dict[str, Any]:
        items = [{"container": self.item(n).container, "item": self.item(n).item} for n in range(self.items)]
        return {"subscriptions": {self.subscription: {"resource_groups": {RESOURCE_GROUP: {"vaults": {
            VAULT: {"items": items}}}}}}}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.bench.batches", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1000, help="VMs in the vault, all selected (default 1000)")
    parser.add_argument("--pace", type=int, default=240, help="BATCH_TRIGGERS_PER_MINUTE (default 240)")
    parser.add_argument("--burst", type=int, default=100, help="the write budget's bucket (default 100)")
    parser.add_argument("--refill", type=float, default=5.0, help="the write budget's refill per second (default 5)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the N-requests-at-once run")
    parser.add_argument("--json", type=Path, default=REPO_ROOT / "bench-results" / "batches.json")
    return parser.parse_args(argv)


def _say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _drained(stack: Any) -> bool:
    service = stack.queue_service()
    return all(message_count(service.get_queue_client(DEFAULT_QUEUES[name])) == 0
               for name in ("BACKUP_REQUESTS_QUEUE", "BACKUP_STATUS_QUEUE"))


def _figures(admin: EmulatorAdmin, before: dict[str, Any], since: int, items: int, seconds: float) -> dict[str, Any]:
    counts = admin.counts_since(before)
    lists = int(admin.stats().get("items_list", 0)) - int(before.get("items_list", 0))
    posts = sorted(datetime.fromisoformat(entry.time) for entry in admin.requests_since(since)
                   if entry.kind == "trigger" and entry.method == "POST")
    most, start = 0, 0
    for end, moment in enumerate(posts):
        while (moment - posts[start]).total_seconds() >= 60:
            start += 1
        most = max(most, end - start + 1)
    calls = counts.arm_calls + lists
    return {
        "completion_s": round(seconds, 1), "items": items, "accepted_triggers": counts.accepted_triggers,
        "arm_calls_per_item": round(calls / items, 3),
        "by_kind_per_item": {
            "POST": round(counts.trigger / items, 3), "operation GET": round(counts.operation_gets / items, 3),
            "job GET": round(counts.job_get / items, 3), "job list GET": round(counts.job_list / items, 3),
            "protected items list GET": round(lists / items, 3),
        },
        "throttled_per_item": round(counts.throttled / items, 3), "throttled": counts.throttled,
        "most_posts_in_a_minute": most,
        "posts_span_s": round((posts[-1] - posts[0]).total_seconds(), 1) if posts else 0.0,
    }


def _wait(collector: ResultCollector, keys: set[str], stack: Any, started: float, timeout: float) -> float:
    """Seconds from ``started`` until every key had a result; then until the queues are empty (a deadline)."""
    deadline, pause = started + timeout, threading.Event()
    while collector.snapshot().unique(keys) < len(keys):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(keys) - collector.snapshot().unique(keys)} of {len(keys)} results missing")
        pause.wait(0.2)
    done = time.monotonic() - started
    while not _drained(stack) and time.monotonic() < deadline:
        pause.wait(0.2)
    return done


def run(args: argparse.Namespace) -> dict[str, Any]:
    estate = BatchEstate(args.items)
    settings = {**app_timing(SCHEDULE.time_scale), "BATCH_TRIGGERS_PER_MINUTE": str(args.pace),
                "BATCH_MAX_ITEMS": str(max(1000, args.items))}
    budget = {"capacity": args.burst, "refill_per_second": args.refill}
    config = base_config(SCHEDULE.time_scale, defaults=SCHEDULE.emulator_patch()["defaults"],
                         throttle={"writes": budget, "reads": {"capacity": 1_000_000, "refill_per_second": 1_000_000}})
    backup_seconds = (SCHEDULE.operation_seconds + SCHEDULE.job_seconds) / SCHEDULE.time_scale
    floor = (args.items - 1) * 60 / args.pace + backup_seconds
    timeout = 3 * floor + 600
    results: dict[str, Any] = {"items": args.items, "pace_per_minute": args.pace, "write_budget": budget,
                               "schedule": SCHEDULE.describe(), "floor_s": round(floor, 1)}
    stack = make_stack(f"bench-batches-{os.getpid()}", estate, config, settings)
    with stack:
        admin = EmulatorAdmin(stack.endpoints.arm_endpoint, stack.endpoints.ca_bundle)
        service = stack.queue_service()
        queues = DEFAULT_QUEUES
        ensure_queues(service, [queues["BACKUP_REQUESTS_QUEUE"], queues["BACKUP_RESULTS_QUEUE"]])
        with ResultCollector(service.get_queue_client(queues["BACKUP_RESULTS_QUEUE"])) as collector:
            _say(f"batch: {args.items} VMs at {args.pace}/min, write budget {args.burst} + {args.refill:g}/s "
                 f"(floor {floor:.0f} s)")
            before, since, started = admin.stats(), admin.last_seq(), time.monotonic()
            batch = {"subscriptionId": SUBSCRIPTION, "resourceGroupName": RESOURCE_GROUP, "vaultName": VAULT,
                     "select": {"backupManagementType": "AzureIaasVM"}, "correlationId": "bench-batch"}
            send_all(service, queues["BACKUP_REQUESTS_QUEUE"], [json.dumps(batch)], threads=1)
            seconds = _wait(collector, {"bench-batch"}, stack, started, timeout)
            results["batch"] = _figures(admin, before, since, args.items, seconds)
            gathered = collector.snapshot().by_correlation
            summary = gathered["bench-batch"][0]
            last_item = max(found[0]["timings"]["completedAt"] for key, found in gathered.items()
                            if key.startswith("bench-batch/"))
            results["batch"].update(
                status=summary.get("status"), counts=summary.get("counts"),
                completion_over_floor=round(seconds / floor, 3),
                summary_after_last_item_s=round((_instant(summary["timings"]["completedAt"])
                                                 - _instant(last_item)).total_seconds(), 1),
            )
            if not args.no_baseline:
                admin.reset()  # a full bucket again, as the batch had
                _say(f"baseline: the same {args.items} VMs as separate requests, sent at once")
                before, since = admin.stats(), admin.last_seq()
                keys = {f"bench-loop-{n}" for n in range(args.items)}
                texts = [json.dumps(estate.request(n, f"bench-loop-{n}")) for n in range(args.items)]
                started = time.monotonic()
                send_all(service, queues["BACKUP_REQUESTS_QUEUE"], texts)
                seconds = _wait(collector, keys, stack, started, timeout)
                results["baseline"] = _figures(admin, before, since, args.items, seconds)
        admin.close()
    remove_state(stack)
    return results


def _table(results: dict[str, Any]) -> str:
    batch, base = results["batch"], results.get("baseline")
    rows = [
        ("completion s", batch["completion_s"], base and base["completion_s"]),
        ("floor s: (N - 1) x 60 / pace + one backup", results["floor_s"], None),
        ("completion / floor", batch["completion_over_floor"], None),
        ("summary after the last item's result, s", batch["summary_after_last_item_s"], None),
        ("ARM calls per item", batch["arm_calls_per_item"], base and base["arm_calls_per_item"]),
        *((f"  {kind} per item", value, base and base["by_kind_per_item"][kind])
          for kind, value in batch["by_kind_per_item"].items()),
        ("429s per item (target < 0.1)", batch["throttled_per_item"], base and base["throttled_per_item"]),
        ("most POSTs in any minute", batch["most_posts_in_a_minute"], base and base["most_posts_in_a_minute"]),
        ("accepted triggers", batch["accepted_triggers"], base and base["accepted_triggers"]),
    ]
    lines = [f"{results['items']} VMs, pace {results['pace_per_minute']}/min, write budget "
             f"{results['write_budget']['capacity']} + {results['write_budget']['refill_per_second']:g}/s; "
             f"{results['schedule']}; batch ended {batch['status']} {batch['counts']}",
             f"| {'':44} | {'batch':>10} | {'N at once':>10} |", f"|{'-' * 46}|{'-' * 12}|{'-' * 12}|"]
    for label, ours, theirs in rows:
        lines.append(f"| {label:44} | {ours!s:>10} | {'' if theirs is None else theirs!s:>10} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    results = run(args)
    print(_table(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
