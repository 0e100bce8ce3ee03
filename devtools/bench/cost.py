"""Section 1: what one backup costs, through the local host and the emulator, against the minimum.

Backups arrive staggered (a steady trickle, as producers send them), each on an item of its own,
and run to their end on the ``Schedule``. ARM calls come from the emulator's counters, invocations
and their wall times from the host's "Executed …" log lines, CPU from an in-process run of the
same functions (``devtools.bench.inproc``), which the host process cannot attribute per call; the
ledger's table transactions from the same run, counted by wrapping the app's own store
(``devtools.bench.counting``), against the protocol's minimum (``Schedule.ledger_minimum``).
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from devtools.bench.admin import EmulatorAdmin
from devtools.bench.alternatives import percentile
from devtools.bench.counting import SWEEP, CountingStore
from devtools.bench.estate import Estate
from devtools.bench.inproc import InProcessRun
from devtools.bench.schedule import Schedule
from devtools.bench.stackrun import HostLog, process_cpu_seconds
from devtools.bench.traffic import ResultCollector
from devtools.stack import DEFAULT_QUEUES, LocalStack
from shared import runtime
from shared.ledger import Ledger
from shared.settings import Settings

__all__ = ["cost_in_process", "cost_through_host"]

_STAGGER_SECONDS = 0.25


def cost_through_host(
    stack: LocalStack, admin: EmulatorAdmin, estate: Estate, schedule: Schedule, app_settings: dict[str, str],
    *, first_item: int, backups: int, timeout: float,
) -> dict[str, Any]:
    admin.configure(schedule.emulator_patch())
    service = stack.queue_service()
    requests_queue = service.get_queue_client(DEFAULT_QUEUES["BACKUP_REQUESTS_QUEUE"])
    log = HostLog(stack.log_path("host"))
    if not stack.host.alive:
        stack.start_host()
    pid = stack.host_pid
    assert pid is not None
    cpu_before = process_cpu_seconds(pid) or 0.0
    before = admin.stats()
    expected = {f"cost-{n}" for n in range(backups)}
    pause = _Pause()
    with ResultCollector(service.get_queue_client(DEFAULT_QUEUES["BACKUP_RESULTS_QUEUE"])) as collector:
        started = time.perf_counter()
        for n in range(backups):
            requests_queue.send_message(json.dumps(estate.request(first_item + n, f"cost-{n}")))
            pause.wait(_STAGGER_SECONDS)  # a steady trickle of producers, not a burst
        results = collector.wait_for(expected, timeout)
        elapsed = time.perf_counter() - started
    cpu = (process_cpu_seconds(pid) or 0.0) - cpu_before
    counts = admin.counts_since(before)
    invocations = log.invocations()
    by_function: dict[str, list[float]] = {}
    for invocation in invocations:
        by_function.setdefault(invocation.function, []).append(float(invocation.duration_ms))
    polls = len(by_function.get("poll_status", []))
    minimum = schedule.minimum(app_settings)
    measured = {
        "post": counts.trigger / backups,
        "operation_get": counts.operation_gets / backups,
        "job_get": counts.job_get / backups,
        "job_list": counts.job_list / backups,
        "total": counts.arm_calls / backups,
    }
    all_durations = [d for durations in by_function.values() for d in durations]
    return {
        "backups": backups,
        "completed": results.unique(expected),
        "statuses": results.statuses(),
        "duplicate_results": results.duplicates(),
        "seconds": round(elapsed, 1),
        "schedule": schedule.describe(),
        "arm_calls_per_backup": {key: round(value, 2) for key, value in measured.items()},
        "arm_minimum_per_backup": minimum,
        "arm_calls_over_minimum": round(measured["total"] / minimum["total"], 3),
        "token_requests": counts.token_issued,
        "distinct_tokens_seen": int(admin.stats().get("distinct_tokens", 0)),
        "invocations_per_backup": round(len(invocations) / backups, 2),
        "invocation_outcomes": dict(Counter(f"{i.function}:{i.outcome}" for i in invocations)),
        # The producer's request, the app's follow-ups (one per poll_status run) and the result.
        "queue_messages_per_backup": {
            "request": 1.0, "follow_ups": round(polls / backups, 2), "result": round(results.total / backups, 2),
        },
        "host_wall_ms": {
            name: {"p50": statistics.median(values), "p95": percentile(values, 0.95), "count": len(values)}
            for name, values in sorted(by_function.items())
        },
        "host_wall_ms_per_backup": round(sum(all_durations) / backups, 1),
        "host_cpu_ms_per_backup": round(cpu * 1000 / backups, 1),
    }


def cost_in_process(
    stack: LocalStack, schedule: Schedule, estate: Estate, admin: EmulatorAdmin, app_settings: dict[str, str],
    *, first_item: int, backups: int, timeout: float,
) -> dict[str, Any]:
    """The same backups with the functions called in this process: wall, CPU and table transactions per invocation."""
    admin.configure(schedule.emulator_patch())
    service = stack.queue_service()
    environment = stack.host_environment()
    settings = Settings.from_environment(environment)
    requests_queue = service.get_queue_client(settings.requests_queue)
    services = runtime._build(settings)  # the process-wide wiring, exactly as in the host
    if services.ledger is None:
        raise RuntimeError("the benchmark's stack runs with the ledger on (BACKUP_LEDGER_TABLE unset)")
    store = CountingStore(services.ledger.store)
    with runtime.override(dataclasses.replace(services, ledger=Ledger(store))):
        run = InProcessRun(service, dict(DEFAULT_QUEUES), transactions=store.this_thread)
        pause = _Pause()
        with ThreadPoolExecutor(1, thread_name_prefix="inproc-run") as runner:
            serving = runner.submit(run.run, backups, timeout)  # serving before the first arrival, as the host is
            for n in range(backups):
                requests_queue.send_message(json.dumps(estate.request(first_item + n, f"inproc-{n}")))
                pause.wait(_STAGGER_SECONDS)  # as through the host: one arrival at a time
            serving.result()
    service.get_queue_client(settings.results_queue).clear_messages()
    table: dict[str, Any] = {}
    for name in ("trigger_backup", "poll_status"):
        calls = [t for t in run.timings if t.function == name]
        walls, cpus = [t.wall_ms for t in calls], [t.cpu_ms for t in calls]
        table[name] = {
            "count": len(calls),
            "wall_ms_p50": round(statistics.median(walls), 2), "wall_ms_p95": round(percentile(walls, 0.95), 2),
            "cpu_ms_p50": round(statistics.median(cpus), 2), "cpu_ms_p95": round(percentile(cpus, 0.95), 2),
            "table_transactions_mean": round(sum(t.transactions for t in calls) / len(calls), 2),
            "table_transactions_per_backup": round(sum(t.transactions for t in calls) / backups, 2),
        }
    totals = store.totals()
    sweeps = totals.pop(SWEEP, 0)
    minimum = schedule.ledger_minimum(app_settings)
    per_backup = sum(totals.values()) / backups
    walls = [t.wall_ms for t in run.timings]
    cpus = [t.cpu_ms for t in run.timings]
    return {
        "backups": backups, "results": len(run.results), "failures": run.failures, "per_function": table,
        "all": {
            "wall_ms_p50": round(statistics.median(walls), 2), "wall_ms_p95": round(percentile(walls, 0.95), 2),
            "cpu_ms_p50": round(statistics.median(cpus), 2), "cpu_ms_p95": round(percentile(cpus, 0.95), 2),
        },
        "function_seconds_per_backup": round(sum(walls) / 1000 / backups, 4),
        "table_transactions": {
            "per_backup": round(per_backup, 2),
            "by_kind_per_backup": {kind: round(count / backups, 2) for kind, count in sorted(totals.items())},
            "minimum_per_backup": minimum,
            "over_minimum": round(per_backup / minimum["total"], 3),
            "retention_sweeps": sweeps,
        },
    }


class _Pause:
    """Paces a producer loop (not synchronisation: nothing waits on anything here)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def wait(self, seconds: float) -> None:
        self._event.wait(seconds)
