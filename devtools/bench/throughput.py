"""Section 2: backups triggered per second by the local host, ledger on and off, against a bare loop.

Three variants side by side in the same run: the host as deployed (the request ledger on), the
host with ``BACKUP_LEDGER_TABLE`` empty (at least once, no table calls), and the bare loop
(``bare.py``). Rounds rotate the variants' order (on, off, bare; then off, bare, on; …) so that
whatever else the machine does hits all alike. Each variant's round preloads its requests, then
starts its consumer; the rate is measured by the emulator: accepted POSTs between the first and
the last one of the round (startup is not in the window). The follow-ups are made invisible for
longer than a round's trigger burst (Retry-After), so the window holds trigger work only; a host
round then runs to its results (end to end) before the next.

Where the time goes: the machine's cores are shared by the consumer (host or bare loop), Azurite
(queues and the ledger's table) and the emulator, so each round also records the CPU seconds
each of them spent on the burst (from the consumer's start until every POST was accepted), per
backup triggered.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from azure.storage.queue import QueueServiceClient

from devtools.bench.admin import EmulatorAdmin
from devtools.bench.bare import BareLoop
from devtools.bench.estate import Estate
from devtools.bench.stackrun import peak_rss_mb, process_cpu_seconds
from devtools.bench.traffic import ResultCollector, ensure_queues, send_all
from devtools.funchost.hostconfig import QueueOptions, load_host_config
from devtools.funchost.processes import wait_until
from devtools.queuectl import message_count
from devtools.stack import DEFAULT_QUEUES, REPO_ROOT, LocalStack
from shared.queues import queue_service
from shared.settings import Settings

__all__ = ["TARGETS", "VARIANTS", "throughput"]

_BARE_REQUESTS = "bench-bare-requests"
_BARE_STATUS = "bench-bare-status"

VARIANTS = ("ledger_on", "ledger_off", "bare")
TARGETS = {"ledger_on": 0.6, "ledger_off": 0.8}
"""Each host variant's rate over the bare loop's should reach at least this."""
_HOST_SETTINGS: dict[str, dict[str, str]] = {"ledger_on": {}, "ledger_off": {"BACKUP_LEDGER_TABLE": ""}}


def _trigger_window(admin: EmulatorAdmin, since: int) -> dict[str, Any]:
    """Accepted POSTs after log seq ``since`` until the first follow-up GET, and the seconds they took.

    A slow variant's burst can outlast the follow-ups' Retry-After: from the first GET on, its
    POSTs share the machine with poll work, so only the POSTs before it are timed (``clean``
    says which share of the round's POSTs that was).
    """
    posts, gets = [], []
    for entry in admin.requests_since(since):
        at = datetime.fromisoformat(entry.time.replace("Z", "+00:00")).timestamp()
        if entry.kind == "trigger" and entry.status == 202:
            posts.append(at)
        elif entry.method == "GET" and entry.kind != "token":
            gets.append(at)
    posts.sort()
    if len(posts) < 2:
        return {"triggered": len(posts), "timed": len(posts), "window_s": 0.0, "per_second": 0.0, "clean": 1.0}
    cutoff = min((at for at in gets if at > posts[0]), default=None)
    timed = [at for at in posts if cutoff is None or at < cutoff]
    window = timed[-1] - timed[0]
    return {"triggered": len(posts), "timed": len(timed), "window_s": round(window, 3),
            "per_second": (len(timed) - 1) / window if window else 0.0, "clean": round(len(timed) / len(posts), 3)}


class _Rounds:
    """One stack, one estate: runs a round of any variant on items not used before."""

    def __init__(self, stack: LocalStack, admin: EmulatorAdmin, estate: Estate, first_item: int, per_round: int,
                 timeout: float) -> None:
        self.stack, self.admin, self.estate = stack, admin, estate
        self.service: QueueServiceClient = stack.queue_service()
        self.queues: QueueOptions = load_host_config(REPO_ROOT).queues
        self.next_item = first_item
        self.per_round = per_round
        self.timeout = timeout
        ensure_queues(self.service, [_BARE_REQUESTS, _BARE_STATUS])

    def _items(self) -> range:
        first = self.next_item
        self.next_item += self.per_round
        return range(first, first + self.per_round)

    def _cpu(self, consumer: int | None) -> dict[str, float]:
        """CPU seconds so far of the consumer (a pid; None: this process), Azurite and the emulator."""
        pids = {"azurite": self.stack.azurite.pid, "emulator": self.stack.emulator.pid}
        spent = {name: process_cpu_seconds(pid) or 0.0 if pid else 0.0 for name, pid in pids.items()}
        spent["consumer"] = process_cpu_seconds(consumer) or 0.0 if consumer else _own_cpu()
        return spent

    def _burst_cpu(self, before: dict[str, float], consumer: int | None, triggered: int) -> dict[str, float]:
        after = self._cpu(consumer)
        return {name: round((after[name] - before[name]) * 1000 / max(1, triggered), 2) for name in after}

    def host(self, label: str, round_number: int, settings: Mapping[str, str]) -> dict[str, Any]:
        """The local host from a fresh process, with ``settings`` added to its app settings, to its results."""
        self.stack.stop_host()
        ids = [f"tp-{label}-{round_number}-{n}" for n in range(self.per_round)]
        send_all(self.service, DEFAULT_QUEUES["BACKUP_REQUESTS_QUEUE"],
                 [json.dumps(self.estate.request(item, ids[n])) for n, item in enumerate(self._items())])
        since = self.admin.last_seq()
        accepted_before = int(self.admin.stats()["trigger"])
        with ResultCollector(self.service.get_queue_client(DEFAULT_QUEUES["BACKUP_RESULTS_QUEUE"])) as collector:
            started = time.perf_counter()
            cpu_before = self._cpu(None)
            self.stack.start_host(settings)
            pid = self.stack.host_pid
            assert pid is not None
            cpu_before["consumer"] = 0.0  # the host process is new: all its CPU is this round's
            wait_until(lambda: int(self.admin.stats()["trigger"]) - accepted_before >= self.per_round or None,
                       timeout=self.timeout, what=f"{self.per_round} POSTs", interval=0.2)
            burst_cpu = self._burst_cpu(cpu_before, pid, self.per_round)
            results = collector.wait_for(set(ids), self.timeout)
            end_to_end = time.perf_counter() - started
            peak = peak_rss_mb(pid)
            cpu = process_cpu_seconds(pid)
        self.stack.stop_host()
        return {**_trigger_window(self.admin, since), "results": results.unique(set(ids)),
                "duplicate_results": results.duplicates(), "statuses": results.statuses(),
                "end_to_end_s": round(end_to_end, 1), "host_peak_rss_mb": peak, "host_cpu_s": cpu,
                "burst_cpu_ms_per_backup": burst_cpu}

    def bare(self) -> dict[str, Any]:
        """The bare loop in this process, same libraries and concurrency, with the host stopped."""
        self.stack.stop_host()
        send_all(self.service, _BARE_REQUESTS,
                 [json.dumps(self.estate.request(item, f"bare-{item}")) for item in self._items()])
        since = self.admin.last_seq()
        # Its queue clients built as the app builds its own (shared.queues: the same transport).
        app_queues = queue_service(Settings.from_environment(self.stack.host_environment()))
        loop = BareLoop(app_queues, self.stack.endpoints.arm_endpoint, self.stack.endpoints.ca_bundle,
                        requests_queue=_BARE_REQUESTS, status_queue=_BARE_STATUS, threads=self.queues.batch_size,
                        batch_size=self.queues.batch_size, new_batch_threshold=self.queues.new_batch_threshold)
        cpu_before = self._cpu(None)
        run = loop.run(self.per_round, self.timeout)
        burst_cpu = self._burst_cpu(cpu_before, None, run.triggered)
        measured = {**_trigger_window(self.admin, since), "errors": run.errors, "burst_cpu_ms_per_backup": burst_cpu,
                    "left_in_queue": message_count(self.service.get_queue_client(_BARE_REQUESTS))}
        self.service.get_queue_client(_BARE_STATUS).clear_messages()
        return measured


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _mean_cpu(rounds: list[dict[str, Any]]) -> dict[str, float]:
    names = rounds[0]["burst_cpu_ms_per_backup"].keys()
    return {name: round(sum(r["burst_cpu_ms_per_backup"][name] for r in rounds) / len(rounds), 2) for name in names}


def _rate(rounds: list[dict[str, Any]]) -> float:
    """POSTs per second over the rounds' timed windows (n POSTs span n - 1 intervals)."""
    window = sum(r["window_s"] for r in rounds)
    return sum(r["timed"] - 1 for r in rounds) / window if window else 0.0


def throughput(
    stack: LocalStack, admin: EmulatorAdmin, estate: Estate, *, first_item: int, requests: int, rounds: int,
    timeout: float,
) -> dict[str, Any]:
    """``requests`` per variant in ``rounds`` rounds, on items from ``first_item`` on (3 * ``requests`` of them)."""
    per_round = math.ceil(requests / rounds)
    # Follow-ups invisible past the trigger burst at 10/s, plus margin (a slower burst is timed until the first GET).
    retry_after = max(10, math.ceil(per_round / 10) + 5)
    admin.configure({"time_scale": 1.0, "defaults": {"operation_seconds": 0, "operation_retry_after": retry_after,
                                                     "job_seconds": 0}})
    runner = _Rounds(stack, admin, estate, first_item, per_round, timeout)
    detail: dict[str, list[dict[str, Any]]] = {variant: [] for variant in VARIANTS}
    for round_number in range(rounds):
        shift = round_number % len(VARIANTS)
        for variant in VARIANTS[shift:] + VARIANTS[:shift]:
            if variant == "bare":
                detail[variant].append(runner.bare())
            else:
                detail[variant].append(runner.host(variant, round_number, _HOST_SETTINGS[variant]))
    rates = {variant: round(_rate(detail[variant]), 1) for variant in VARIANTS}
    bare_rate = rates["bare"]
    host_rounds = detail["ledger_on"] + detail["ledger_off"]
    return {
        "requests": per_round * rounds, "rounds": rounds, "retry_after_s": retry_after,
        "concurrency": {"threads": runner.queues.batch_size, "batch_size": runner.queues.batch_size,
                        "new_batch_threshold": runner.queues.new_batch_threshold},
        "per_second": rates,
        "ratios": {variant: round(rates[variant] / bare_rate, 3) if bare_rate else 0.0 for variant in TARGETS},
        "timed_share": {variant: round(sum(r["timed"] for r in detail[variant])
                                       / max(1, sum(r["triggered"] for r in detail[variant])), 3)
                        for variant in VARIANTS},
        "ledger_on_over_off": round(rates["ledger_on"] / rates["ledger_off"], 3) if rates["ledger_off"] else 0.0,
        "targets": TARGETS,
        "results": {variant: sum(r["results"] for r in detail[variant]) for variant in TARGETS},
        "duplicate_results": {variant: sum(r["duplicate_results"] for r in detail[variant]) for variant in TARGETS},
        "host_peak_rss_mb": max((r["host_peak_rss_mb"] or 0.0) for r in host_rounds),
        "burst_cpu_ms_per_backup": {variant: _mean_cpu(detail[variant]) for variant in VARIANTS},
        "rounds_detail": detail,
    }
