"""Sizes of the reliability scenarios, their reports, and the local stack they run on."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import unquote

import pytest
from azure.storage.queue import QueueServiceClient

from devtools.bench.admin import EmulatorAdmin
from devtools.bench.estate import Estate
from devtools.bench.stackrun import make_stack
from devtools.bench.traffic import Results
from devtools.queuectl import message_count
from devtools.stack import DEFAULT_QUEUES, REPO_ROOT, LocalStack

__all__ = [
    "SCALES", "Scale", "drained", "duplicate_posts", "leftovers", "publish", "reliability_stack", "reported", "tally",
    "trigger_history", "wrong_statuses",
]

RESULTS_DIR = REPO_ROOT / "bench-results"
AZURITE_QUEUE = REPO_ROOT / "devtools" / "node_modules" / ".bin" / "azurite-queue"


@dataclass(frozen=True)
class Scale:
    name: str
    chaos_requests: int
    chaos_hosts: int
    """Local host processes on the same queues, as instances of a scaled-out app."""
    host_kills: int
    azurite_restarts: int
    load_requests: int
    load_rate: float
    """The emulated ARM write budget's refill, POSTs per second."""
    load_burst: int
    bad_input_examples: int
    wire_sample: int
    timeout: float
    """Seconds a scenario may take to settle before it counts what is missing."""


SCALES = {
    "ci": Scale("ci", chaos_requests=100, chaos_hosts=3, host_kills=3, azurite_restarts=1, load_requests=500,
                load_rate=20.0, load_burst=20, bad_input_examples=300, wire_sample=24, timeout=150.0),
    "full": Scale("full", chaos_requests=1000, chaos_hosts=3, host_kills=3, azurite_restarts=1,
                  load_requests=10_000, load_rate=25.0, load_burst=50, bad_input_examples=10_000, wire_sample=120,
                  timeout=1200.0),
}

reported: list[str] = []
"""Lines for pytest's terminal summary (shown with or without -s)."""


def publish(scenario: str, scale: Scale, tried: str, counted: dict[str, Any]) -> None:
    """Print what a scenario tried and counted, keep it for the summary, write it as JSON."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    document = {"scenario": scenario, "scale": asdict(scale), "tried": tried, "counted": counted}
    (RESULTS_DIR / f"reliability-{scenario}.json").write_text(json.dumps(document, indent=2, default=str))
    figures = ", ".join(f"{key}={value}" for key, value in counted.items() if not isinstance(value, dict | list))
    line = f"{scenario} [{scale.name}]: tried {tried}; counted {figures}"
    reported.append(line)
    print(line)


def require_azurite() -> None:
    if AZURITE_QUEUE.exists():
        return
    reason = f"Azurite is not installed ({AZURITE_QUEUE} is missing): run devtools/bootstrap.sh"
    if os.environ.get("REQUIRE_INTEGRATION") == "1":
        pytest.fail(reason)
    pytest.skip(reason)


@contextmanager
def reliability_stack(
    scenario: str, estate: Estate, config: dict[str, Any], app_settings: dict[str, str], *, lease_seconds: int = 3,
) -> Iterator[tuple[LocalStack, EmulatorAdmin, QueueServiceClient]]:
    """Azurite, the emulator serving ``estate`` and the local host, as child processes of this test.

    A short lease makes a killed host's messages come back in seconds instead of the host's ten minutes.
    """
    require_azurite()
    stack = make_stack(f"rel-{scenario}-{os.getpid()}", estate, config, app_settings,
                       host_args=["--lease-seconds", str(lease_seconds), "--drain-seconds", "10"])
    with stack:
        admin = EmulatorAdmin(stack.endpoints.arm_endpoint, stack.endpoints.ca_bundle)
        try:
            yield stack, admin, stack.queue_service()
        finally:
            admin.close()


def drained(service: QueueServiceClient) -> bool:
    """No request or follow-up is left in its queue (visible or not)."""
    return all(message_count(service.get_queue_client(DEFAULT_QUEUES[name])) == 0
               for name in ("BACKUP_REQUESTS_QUEUE", "BACKUP_STATUS_QUEUE"))


def leftovers(service: QueueServiceClient) -> dict[str, int]:
    """Messages still in the request and follow-up queues, and in every poison queue."""
    names = [DEFAULT_QUEUES["BACKUP_REQUESTS_QUEUE"], DEFAULT_QUEUES["BACKUP_STATUS_QUEUE"]]
    counts = {name: message_count(service.get_queue_client(name)) for name in names}
    counts.update({f"{name}-poison": message_count(service.get_queue_client(f"{name}-poison")) for name in names})
    return counts


_TRIGGER_PATH = re.compile(
    r"/vaults/([^/?]+)/backupFabrics/[^/?]+/protectionContainers/[^/?]+/protectedItems/([^/?]+)/backup", re.IGNORECASE
)


def trigger_history(admin: EmulatorAdmin, since: int) -> dict[str, list[str]]:
    """Every trigger POST after log seq ``since``, per item (vault/item): "status" or "status/fault"."""
    history: dict[str, list[str]] = {}
    for entry in admin.requests_since(since):
        found = _TRIGGER_PATH.search(entry.path)
        if entry.kind != "trigger" or entry.method != "POST" or found is None:
            continue
        key = f"{unquote(found.group(1))}/{unquote(found.group(2))}".lower()
        history.setdefault(key, []).append(f"{entry.status}/{entry.fault}" if entry.fault else str(entry.status))
    return history


def duplicate_posts(history: dict[str, list[str]]) -> dict[str, list[str]]:
    """Items the app POSTed to again after a POST of theirs had taken effect, with their POST histories.

    Certain: any POST after one answered 202 (on time or late). Also: a POST refused as busy (400)
    after one dropped after it acted (a drop hides the answer, which may have been a 429: a 202 after a
    drop proves nothing, the emulator's count of accepted triggers per item catches that case).
    """
    repeated: dict[str, list[str]] = {}
    for key, entries in history.items():
        statuses = [entry.split("/")[0] for entry in entries]
        after_202 = "202" in statuses and statuses.index("202") < len(statuses) - 1
        dropped = [n for n, entry in enumerate(entries) if entry == "None/drop"]
        busy_after_drop = bool(dropped) and "400" in statuses[dropped[0] + 1:]
        if after_202 or busy_after_drop:
            repeated[key] = entries
    return repeated


def wrong_statuses(results: Results, expected: dict[str, str]) -> dict[str, list[str]]:
    """Requests with a result other than the status expected of them (every result counts, duplicates too)."""
    return {
        key: [str(result.get("status")) for result in found]
        for key, found in sorted(results.by_correlation.items())
        if key in expected and any(result.get("status") != expected[key] for result in found)
    }


def tally(
    expected: set[str], results: Results, service: QueueServiceClient, history: dict[str, list[str]],
    accepted: dict[str, int],
) -> dict[str, Any]:
    """What every reliability scenario counts: lost, duplicated, left behind, poisoned."""
    left = leftovers(service)
    repeated = duplicate_posts(history)
    return {
        "requests": len(expected),
        "results": results.total,
        "lost": len(expected - results.by_correlation.keys()),
        "duplicate_results": results.duplicates(),
        "duplicated_ids": sorted(key for key, found in results.by_correlation.items() if len(found) > 1)[:20],
        # A duplicate is only harmless if it says the same: same outcome, same job (consumers dedupe on these).
        "inconsistent_duplicates": sum(
            1 for found in results.by_correlation.values()
            if len({(result.get("status"), result.get("jobId")) for result in found}) > 1
        ),
        "unexpected_results": len(results.by_correlation.keys() - expected) + len(results.unreadable),
        "statuses": results.statuses(),
        "posts": sum(len(entries) for entries in history.values()),
        "duplicate_accepted_posts": sum(count - 1 for count in accepted.values() if count > 1),
        "duplicate_posts": len(repeated),
        "duplicate_post_histories": repeated,
        "left_behind": left[DEFAULT_QUEUES["BACKUP_REQUESTS_QUEUE"]] + left[DEFAULT_QUEUES["BACKUP_STATUS_QUEUE"]],
        "poisoned": sum(count for name, count in left.items() if name.endswith("-poison")),
        "queues": left,
    }
