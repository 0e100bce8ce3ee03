"""What the app costs per backup and how fast it goes, beside baselines.

::

    .venv/bin/python -m devtools.bench [--quick]

One local stack (Azurite, the emulator, the local host) serves every section, one after the
other, so all figures come from the same emulator in the same run:

1. cost per backup through the host (ARM calls by kind against the schedule's minimum, tokens,
   queue messages, invocations, wall time) and wall/CPU per invocation in-process, with the
   request ledger's table transactions against the protocol's minimum;
2. throughput: backups triggered per second by the host with the ledger on and off, against a
   bare loop (``bare.py``), side by side;
3. the alternatives: the Azure SDK's client time per call, fixed 5-second polling's ARM calls,
   and the function-seconds of waiting inside one invocation;
4. cold start: function module import time against the four runtime packages, with and without
   the worker's OpenTelemetry start (the observability choice), host peak memory.

Figures on a shared machine are noisy: read the ratios. Nothing here asserts a time limit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devtools.bench.deps import ensure_installed
from devtools.clihelp import parser as cli_parser
from devtools.stack import REPO_ROOT

FIXED_POLL_SECONDS = 5.0


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = cli_parser("devtools.bench", __doc__)
    parser.add_argument("--requests", type=int, metavar="N", help="throughput requests (default: 2000; --quick 500)")
    parser.add_argument("--quick", action="store_true", help="smaller samples: about two minutes")
    parser.add_argument("--json", type=Path, default=REPO_ROOT / "bench-results" / "latest.json", metavar="FILE",
                        help="where to write the figures")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    return parser.parse_args(argv)


def _sizes(args: argparse.Namespace) -> dict[str, int]:
    if args.quick:
        sizes = {"cost": 12, "inproc": 8, "requests": 500, "rounds": 1, "sdk_pairs": 25, "fixed": 4, "repeats": 3}
    else:
        sizes = {"cost": 40, "inproc": 20, "requests": 2000, "rounds": 2, "sdk_pairs": 100, "fixed": 10, "repeats": 7}
    if args.requests is not None:
        sizes["requests"] = max(10, args.requests)
    return sizes


def _environment() -> dict[str, Any]:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True, timeout=10, check=False).stdout.strip()
    except OSError:
        commit = ""
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "commit": commit,
            "python": platform.python_version(), "cpus": os.cpu_count(), "machine": platform.machine()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    ensure_installed()
    from devtools.bench.admin import EmulatorAdmin
    from devtools.bench.alternatives import FixedPolling, compare_clients
    from devtools.bench.coldstart import BASELINE, OPENTELEMETRY, import_times
    from devtools.bench.cost import cost_in_process, cost_through_host
    from devtools.bench.estate import Estate
    from devtools.bench.schedule import Schedule
    from devtools.bench.stackrun import app_timing, base_config, make_stack, remove_state, use_stack_identity
    from devtools.bench.throughput import throughput
    from shared.settings import Settings

    sizes = _sizes(args)
    schedule = Schedule()
    settings_env = app_timing(schedule.time_scale)
    plan = [("cost", sizes["cost"]), ("inproc", sizes["inproc"]), ("throughput", 3 * sizes["requests"] + 16),
            ("sdk", 2 * sizes["sdk_pairs"]), ("fixed", sizes["fixed"])]
    firsts, total = {}, 0
    for name, count in plan:
        firsts[name] = total
        total += count
    estate = Estate(total)
    results: dict[str, Any] = {"environment": _environment(), "sizes": sizes}
    stack = make_stack(f"bench-{os.getpid()}", estate, base_config(schedule.time_scale), settings_env)
    with stack:
        use_stack_identity(stack)
        admin = EmulatorAdmin(stack.endpoints.arm_endpoint, stack.endpoints.ca_bundle)
        _say(f"1/4 cost: {sizes['cost']} backups through the host ({schedule.describe()})")
        results["cost"] = cost_through_host(stack, admin, estate, schedule, settings_env,
                                            first_item=firsts["cost"], backups=sizes["cost"], timeout=300)
        stack.stop_host()
        _say(f"1/4 cost: {sizes['inproc']} backups with the functions in-process (wall and CPU per call)")
        results["cost_in_process"] = cost_in_process(stack, schedule, estate, admin, settings_env,
                                                     first_item=firsts["inproc"],
                                                     backups=sizes["inproc"], timeout=300)
        _say(f"2/4 throughput: {sizes['requests']} requests each, ledger on, ledger off and the bare loop, "
             f"in {sizes['rounds']} rounds")
        results["throughput"] = throughput(stack, admin, estate, first_item=firsts["throughput"],
                                           requests=sizes["requests"], rounds=sizes["rounds"], timeout=600)
        stack.stop_host()
        _say(f"3/4 alternatives: SDK ({sizes['sdk_pairs']} backups each way), fixed 5 s polling ({sizes['fixed']})")
        admin.configure({"time_scale": 1.0, "defaults": {"operation_seconds": 0, "job_seconds": 600}})
        comparison = compare_clients(Settings.from_environment(stack.host_environment()), estate,
                                     firsts["sdk"], sizes["sdk_pairs"])
        results["sdk"] = comparison.summary()
        admin.configure(schedule.emulator_patch())
        before = admin.stats()
        poller = FixedPolling(stack.endpoints.arm_endpoint, stack.endpoints.ca_bundle,
                              FIXED_POLL_SECONDS / schedule.time_scale)
        polled = poller.run([estate.item(firsts["fixed"] + n) for n in range(sizes["fixed"])], timeout=300)
        counts = admin.counts_since(before)
        results["fixed_polling"] = {
            "backups": polled.backups, "finished": polled.finished, "interval_s": FIXED_POLL_SECONDS,
            "arm_calls_per_backup": round(counts.arm_calls / polled.backups, 2),
            "expected_per_backup": schedule.fixed_polling_calls(FIXED_POLL_SECONDS),
        }
        results["waiting"] = {
            # An invocation that waits holds from the trigger to the job's end: the emulator's schedule.
            "theirs_function_seconds": schedule.job_seconds,
            "ours_function_seconds": results["cost"]["host_wall_ms_per_backup"] / 1000,
            "ours_function_seconds_in_process": results["cost_in_process"]["function_seconds_per_backup"],
            "note": "theirs is a lower bound: a poller also overshoots the end by up to one poll interval",
        }
    remove_state(stack)
    _say(f"4/4 cold start: import times, {sizes['repeats']} fresh interpreters each")
    cold = import_times(["trigger_backup", "poll_status"], sizes["repeats"], opentelemetry=True)
    baseline = cold.pop(BASELINE)
    telemetry = [name for name in cold if name.endswith(OPENTELEMETRY)]
    with_telemetry = {name.removesuffix(OPENTELEMETRY): cold.pop(name) for name in telemetry}
    results["cold_start"] = {"baseline": baseline, "baseline_modules": BASELINE, "modules": cold,
                             "opentelemetry": with_telemetry}
    return results


def _say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    from devtools.bench.report import render, rows

    started = time.monotonic()
    results = run(args)
    results["seconds"] = round(time.monotonic() - started, 1)
    table = rows(results)
    print(render(table, markdown=args.markdown))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    print(f"\nfigures written to {args.json} ({results['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
