"""``python -m devtools.bench.targeting``: what naming the VM instead of its item costs the first invocation.

The in-process emulator (https, its managed identity) and the app's real ``ArmClient`` and
``handle_request``; follow-ups go to memory, not to a queue, so only the app and ARM are timed.
Three forms in alternating rounds, each request on an item of its own (no conflicts, no daily
limits): by names (the baseline), by resource id with ``location`` (one Backup Status - Get more),
and without it (the VM's GET as well). Prints wall time per first invocation (p50, p95) and ARM
calls per request, with ratios against the baseline measured beside it. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from azure.identity import ManagedIdentityCredential

from devtools.bench.alternatives import percentile
from devtools.emulator import Emulator, EmulatorConfig
from shared.arm import ArmClient
from shared.settings import Settings
from shared.workflow import Delivery, Services, handle_request

SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"
GROUP, VAULT, REGION = "rg-bench", "vault-bench", "westeurope"
FORMS = ("by names", "by resource id + location", "by resource id")


class _Memory:
    """The status queue, in memory: the first follow-up is all a first invocation produces."""

    def __init__(self) -> None:
        self.sent = 0

    def send(self, queue_name: str, text: str, delay_seconds: int = 0) -> None:
        self.sent += 1


def _vm(form: int, n: int) -> str:
    return f"f{form}-vm{n:04d}"


def _inventory(path: Path, per_form: int) -> Path:
    items = [
        {"container": f"IaasVMContainer;iaasvmcontainerv2;rg-vms;{_vm(form, n)}",
         "item": f"VM;iaasvmcontainerv2;rg-vms;{_vm(form, n)}"}
        for form in range(len(FORMS)) for n in range(per_form)
    ]
    document = {"subscriptions": {SUBSCRIPTION: {"resource_groups": {GROUP: {"vaults": {VAULT: {
        "location": REGION, "items": items}}}}}}}
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _request(form: int, n: int) -> dict[str, Any]:
    vm = _vm(form, n)
    vm_id = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-vms/providers/Microsoft.Compute/virtualMachines/{vm}"
    if form == 0:
        return {"subscriptionId": SUBSCRIPTION, "resourceGroupName": GROUP, "vaultName": VAULT,
                "containerName": f"IaasVMContainer;iaasvmcontainerv2;rg-vms;{vm}",
                "protectedItemName": f"VM;iaasvmcontainerv2;rg-vms;{vm}", "correlationId": f"bench-{form}-{n}"}
    document: dict[str, Any] = {"resourceId": vm_id, "correlationId": f"bench-{form}-{n}"}
    if form == 1:
        document["location"] = REGION
    return document


def _arm_calls(emulator: Emulator) -> Counter[str]:
    stats = emulator.stats()
    return Counter({kind: stats[kind] for kind in ("trigger", "backup_status", "vm_get")})


def run(per_form: int, rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-targeting-") as folder:
        config = EmulatorConfig.from_dict({"inventory": str(_inventory(Path(folder) / "inventory.json", per_form)),
                                           "throttle": {"writes": {"capacity": 100000, "refill_per_second": 10000},
                                                        "reads": {"capacity": 100000, "refill_per_second": 10000}}})
        with Emulator(config, Path(folder) / "state") as emulator:
            endpoints = emulator.endpoints
            os.environ.update(IDENTITY_ENDPOINT=endpoints["identity_endpoint"],
                              IDENTITY_HEADER=endpoints["identity_header"], REQUESTS_CA_BUNDLE=endpoints["ca_bundle"])
            settings = Settings.from_environment({"AzureWebJobsStorage": "UseDevelopmentStorage=true",
                                                  "ARM_ENDPOINT": endpoints["arm_endpoint"]})
            sender = _Memory()
            services = Services(settings, ArmClient(settings, ManagedIdentityCredential(), requests.Session(),
                                                    lambda: datetime.now(UTC)), sender,
                                lambda: datetime.now(UTC), random.Random(7))
            wall: dict[str, list[float]] = {form: [] for form in FORMS}
            calls: dict[str, Counter[str]] = {form: Counter() for form in FORMS}
            _invoke(services, _request(0, per_form - 1), lambda _ms: None)  # a token and a connection, untimed
            per_round = (per_form - 1) // rounds
            for round_number in range(rounds):
                for form_index, form in enumerate(FORMS):
                    before = _arm_calls(emulator)
                    for n in range(round_number * per_round, (round_number + 1) * per_round):
                        _invoke(services, _request(form_index, n), wall[form].append)
                    calls[form] += _arm_calls(emulator) - before
            requests_each = per_round * rounds
            return {"requests_per_form": requests_each, "follow_ups_sent": sender.sent,
                    "forms": {form: _summary(wall[form], calls[form], requests_each, wall[FORMS[0]])
                              for form in FORMS}}


def _invoke(services: Services, document: dict[str, Any], record: Callable[[float], None]) -> None:
    started = time.perf_counter()
    outcome = handle_request(json.dumps(document).encode(), Delivery(None, 1, None), services)
    record((time.perf_counter() - started) * 1000)
    if outcome is not None:
        raise RuntimeError(f"a request ended at once instead of queuing its first follow-up: {outcome[:300]}")


def _summary(wall: list[float], calls: Counter[str], requests_each: int, baseline: list[float]) -> dict[str, Any]:
    p50, base = statistics.median(wall), statistics.median(baseline)
    return {"wall_p50_ms": round(p50, 2), "wall_p95_ms": round(percentile(wall, 0.95), 2),
            "p50_over_by_names": round(p50 / base, 2),
            "arm_calls_per_request": {kind: round(count / requests_each, 2) for kind, count in sorted(calls.items())}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.bench.targeting", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-form", type=int, default=201, help="items per form (one request each)")
    parser.add_argument("--rounds", type=int, default=4, help="alternating rounds")
    args = parser.parse_args(argv)
    figures = run(max(args.rounds + 1, args.per_form), max(1, args.rounds))
    print(f"first invocation of trigger_backup, {figures['requests_per_form']} requests per form, in-process emulator")
    print(f"{'form':28} {'p50 ms':>8} {'p95 ms':>8} {'p50 ÷ by names':>15}  ARM calls per request")
    for form, row in figures["forms"].items():
        print(f"{form:28} {row['wall_p50_ms']:>8} {row['wall_p95_ms']:>8} {row['p50_over_by_names']:>15}  "
              f"{row['arm_calls_per_request']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
