"""Section 2: backups triggered per second by the local host, against a bare loop in the same run.

Rounds alternate (ours, bare, ours, bare …) so that whatever else the machine does hits both alike.
Each round preloads its requests, then starts its consumer; the rate is measured by the emulator:
accepted POSTs between the first and the last one of the round (startup is not in the window).
The follow-ups are made invisible for longer than a round's trigger burst (Retry-After), so the
window holds trigger work only; our round then runs to its results (end to end) before the next.
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime
from typing import Any

from devtools.bench.admin import EmulatorAdmin
from devtools.bench.bare import BareLoop
from devtools.bench.estate import Estate
from devtools.bench.stackrun import peak_rss_mb, process_cpu_seconds
from devtools.bench.traffic import ResultCollector, ensure_queues, send_all
from devtools.funchost.hostconfig import load_host_config
from devtools.queuectl import message_count
from devtools.stack import DEFAULT_QUEUES, REPO_ROOT, LocalStack

__all__ = ["throughput"]

_BARE_REQUESTS = "bench-bare-requests"
_BARE_STATUS = "bench-bare-status"


def _trigger_window(admin: EmulatorAdmin, since: int) -> tuple[int, float, bool]:
    """Accepted POSTs after log seq ``since``, the seconds from first to last, and whether a GET fell inside."""
    stamps, gets = [], []
    for entry in admin.requests_since(since):
        at = datetime.fromisoformat(entry.time.replace("Z", "+00:00")).timestamp()
        if entry.kind == "trigger" and entry.status == 202:
            stamps.append(at)
        elif entry.method == "GET":
            gets.append(at)
    if len(stamps) < 2:
        return len(stamps), 0.0, False
    first, last = min(stamps), max(stamps)
    return len(stamps), last - first, any(first <= at <= last for at in gets)


def throughput(
    stack: LocalStack, admin: EmulatorAdmin, estate: Estate, *, first_item: int, requests: int, rounds: int,
    timeout: float,
) -> dict[str, Any]:
    per_round = math.ceil(requests / rounds)
    # Follow-ups invisible past the trigger burst: at a pessimistic 50/s, plus margin.
    retry_after = max(10, math.ceil(per_round / 50) + 5)
    admin.configure({"time_scale": 1.0, "defaults": {"operation_seconds": 0, "operation_retry_after": retry_after,
                                                     "job_seconds": 0}})
    queues = load_host_config(REPO_ROOT).queues
    service = stack.queue_service()
    ensure_queues(service, [_BARE_REQUESTS, _BARE_STATUS])
    ours: list[dict[str, Any]] = []
    bare: list[dict[str, Any]] = []
    item = first_item
    for round_number in range(rounds):
        # Ours: the local host, from a fresh process, to its results.
        stack.stop_host()
        ids = [f"tp{round_number}-{n}" for n in range(per_round)]
        send_all(service, DEFAULT_QUEUES["BACKUP_REQUESTS_QUEUE"],
                 [json.dumps(estate.request(item + n, ids[n])) for n in range(per_round)])
        item += per_round
        since = admin.last_seq()
        with ResultCollector(service.get_queue_client(DEFAULT_QUEUES["BACKUP_RESULTS_QUEUE"])) as collector:
            started = time.perf_counter()
            stack.start_host()
            pid = stack.host_pid
            assert pid is not None
            results = collector.wait_for(set(ids), timeout)
            end_to_end = time.perf_counter() - started
            peak = peak_rss_mb(pid)
            cpu = process_cpu_seconds(pid)
        count, window, overlapped = _trigger_window(admin, since)
        ours.append({"triggered": count, "window_s": round(window, 3), "per_second": count / window if window else 0,
                     "results": results.unique(set(ids)), "end_to_end_s": round(end_to_end, 1),
                     "host_peak_rss_mb": peak, "host_cpu_s": cpu, "gets_inside_window": overlapped})
        # Bare: this process, same libraries and concurrency, with the host stopped.
        stack.stop_host()
        send_all(service, _BARE_REQUESTS, [json.dumps(estate.request(item + n, f"bare-{n}")) for n in range(per_round)])
        item += per_round
        since = admin.last_seq()
        loop = BareLoop(service, stack.endpoints.arm_endpoint, stack.endpoints.ca_bundle,
                        requests_queue=_BARE_REQUESTS, status_queue=_BARE_STATUS, threads=queues.batch_size,
                        batch_size=queues.batch_size, new_batch_threshold=queues.new_batch_threshold)
        run = loop.run(per_round, timeout)
        count, window, overlapped = _trigger_window(admin, since)
        bare.append({"triggered": count, "window_s": round(window, 3), "per_second": count / window if window else 0,
                     "errors": run.errors, "left_in_queue": message_count(service.get_queue_client(_BARE_REQUESTS))})
        service.get_queue_client(_BARE_STATUS).clear_messages()
    ours_rate = sum(r["triggered"] for r in ours) / sum(r["window_s"] for r in ours)
    bare_rate = sum(r["triggered"] for r in bare) / sum(r["window_s"] for r in bare)
    return {
        "requests": per_round * rounds, "rounds": rounds, "retry_after_s": retry_after,
        "concurrency": {"threads": queues.batch_size, "batch_size": queues.batch_size,
                        "new_batch_threshold": queues.new_batch_threshold},
        "ours_per_second": round(ours_rate, 1), "bare_per_second": round(bare_rate, 1),
        "ratio": round(ours_rate / bare_rate, 3) if bare_rate else 0.0,
        "target_ratio": 0.8,
        "ours_results": sum(r["results"] for r in ours),
        "host_peak_rss_mb": max((r["host_peak_rss_mb"] or 0.0) for r in ours),
        "rounds_detail": {"ours": ours, "bare": bare},
    }
