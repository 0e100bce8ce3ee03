"""The alternatives users weigh, run against the same emulator: the Azure SDK, fixed 5-second polling.

* ``compare_clients``: the app's ``ArmClient`` and ``azure-mgmt-recoveryservicesbackup`` make the
  same three calls (trigger, operation status, job), alternately on fresh items, timed at the client.
* ``FixedPolling``: what the az CLI / PowerShell loops do: trigger, then GET the operation every
  5 s until it ends, then GET the job every 5 s until it ends (5 emulated seconds, scaled).

"Waiting inside one invocation" (an SDK poller or a sleeping loop in a function) needs no run: it
holds an invocation from the trigger until the job ends, which the emulator's schedule fixes.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import requests
from azure.identity import DefaultAzureCredential

from devtools.bench.estate import Estate, ItemName
from shared.arm import ArmClient
from shared.messages import parse_request
from shared.settings import Settings

__all__ = ["ClientComparison", "FixedPolling", "compare_clients", "percentile"]

_API = "2024-04-01"
_SCOPE = "https://management.azure.com/.default"


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (share in 0..1); 0.0 for no values."""
    if not values:
        return 0.0
    ranked = sorted(values)
    return ranked[min(len(ranked) - 1, max(0, round(share * len(ranked) + 0.5) - 1))]


@dataclass(frozen=True)
class ClientComparison:
    calls: int
    ours_ms: dict[str, list[float]]
    sdk_ms: dict[str, list[float]]

    def summary(self) -> dict[str, dict[str, float]]:
        table: dict[str, dict[str, float]] = {}
        for call in self.ours_ms:
            ours, sdk = statistics.median(self.ours_ms[call]), statistics.median(self.sdk_ms[call])
            table[call] = {
                "ours_p50_ms": round(ours, 2), "sdk_p50_ms": round(sdk, 2),
                "ours_p95_ms": round(percentile(self.ours_ms[call], 0.95), 2),
                "sdk_p95_ms": round(percentile(self.sdk_ms[call], 0.95), 2),
                "ours_over_sdk": round(ours / sdk, 3) if sdk else 0.0,
            }
        return table


def _timed(into: list[float], call: Callable[[], Any]) -> Any:
    started = time.perf_counter()
    value = call()
    into.append((time.perf_counter() - started) * 1000)
    return value


def _ours_once(ours: ArmClient, settings: Settings, estate: Estate, n: int, into: dict[str, list[float]]) -> None:
    """The three calls as trigger_backup and poll_status make them."""
    request = parse_request(estate.request(n, f"cmp-{n}"), settings=settings, now=datetime.now(UTC),
                            fallback_correlation_id=f"cmp-{n}")
    accepted = _timed(into["trigger"], lambda: ours.trigger(request))
    operation, _ = _timed(into["operation_status"],
                          lambda: ours.operation_status(accepted.async_operation_url, request))
    job_id = operation.job_id
    if job_id is None:
        raise RuntimeError("the comparison needs operations that end at once (operation_seconds 0)")
    _timed(into["job_get"], lambda: ours.job(request, job_id))


def _sdk_once(sdk: Any, item: ItemName, into: dict[str, list[float]], body: Any) -> None:
    """The same calls as the SDK's documentation shows them (trigger returns None; headers come through ``cls``)."""
    headers = _timed(into["trigger"], lambda: sdk.backups.trigger(
        item.vault, item.resource_group, "Azure", item.container, item.item, body,
        cls=lambda response, _deserialized, _headers: response.http_response.headers,
    ))
    operation_id = str(headers["Azure-AsyncOperation"]).split("?", 1)[0].rsplit("/", 1)[-1]
    status = _timed(into["operation_status"], lambda: sdk.protected_item_operation_statuses.get(
        item.vault, item.resource_group, "Azure", item.container, item.item, operation_id))
    job_id = status.properties.job_id if status.properties is not None else None
    _timed(into["job_get"], lambda: sdk.job_details.get(item.vault, item.resource_group, job_id))


def compare_clients(settings: Settings, estate: Estate, first_item: int, pairs: int) -> ClientComparison:
    """``pairs`` items each way: ours and the SDK alternate, each on an item of its own."""
    from azure.mgmt.recoveryservicesbackup import RecoveryServicesBackupClient  # type: ignore[import-not-found, import-untyped, unused-ignore]
    from azure.mgmt.recoveryservicesbackup.models import (  # type: ignore[import-not-found, import-untyped, unused-ignore]
        BackupRequestResource,
        IaasVMBackupRequest,
    )

    credential = DefaultAzureCredential()
    session = requests.Session()
    ours = ArmClient(settings, credential, session, lambda: datetime.now(UTC))
    sdk = RecoveryServicesBackupClient(credential, estate.subscription, base_url=settings.arm_endpoint,
                                       api_version=_API)
    ours_ms: dict[str, list[float]] = {"trigger": [], "operation_status": [], "job_get": []}
    sdk_ms: dict[str, list[float]] = {"trigger": [], "operation_status": [], "job_get": []}
    for n in range(pairs):
        _ours_once(ours, settings, estate, first_item + 2 * n, ours_ms)
        _sdk_once(sdk, estate.item(first_item + 2 * n + 1), sdk_ms, BackupRequestResource(
            properties=IaasVMBackupRequest()))
    sdk.close()
    session.close()
    return ClientComparison(pairs, ours_ms, sdk_ms)


@dataclass(frozen=True)
class FixedPollingRun:
    backups: int
    finished: int
    seconds: float


class FixedPolling:
    """Trigger, then poll operation and job at a fixed interval, one thread per backup, as a CLI loop does."""

    def __init__(self, arm_endpoint: str, ca_bundle: str, interval_seconds: float) -> None:
        self._arm = arm_endpoint
        self._verify = ca_bundle
        self._interval = interval_seconds
        self._credential = DefaultAzureCredential()
        self._session = requests.Session()
        self._stop = threading.Event()

    def run(self, items: list[ItemName], timeout: float) -> FixedPollingRun:
        started = time.perf_counter()
        deadline = time.monotonic() + timeout
        with ThreadPoolExecutor(len(items), thread_name_prefix="fixed-poll") as pool:
            finished = sum(pool.map(lambda item: self._one(item, deadline), items))
        return FixedPollingRun(len(items), finished, time.perf_counter() - started)

    def _one(self, item: ItemName, deadline: float) -> bool:
        path = "/".join(["", "subscriptions", item.subscription, "resourceGroups", item.resource_group,
                         "providers", "Microsoft.RecoveryServices", "vaults", item.vault])
        item_path = (f"{path}/backupFabrics/Azure/protectionContainers/{quote(item.container, safe=';')}"
                     f"/protectedItems/{quote(item.item, safe=';')}")
        posted = self._call("POST", f"{self._arm}{item_path}/backup?api-version={_API}",
                            {"properties": {"objectType": "IaasVMBackupRequest"}})
        status_url = posted.headers["Azure-AsyncOperation"]
        job_id = None
        while job_id is None and time.monotonic() < deadline:
            self._stop.wait(self._interval)  # the loop being measured sleeps; that is its design
            document = self._call("GET", status_url).json()
            if document.get("status") != "InProgress":
                job_id = (document.get("properties") or {}).get("jobId")
                if job_id is None:
                    return False
        while time.monotonic() < deadline:
            self._stop.wait(self._interval)
            job = self._call("GET", f"{self._arm}{path}/backupJobs/{job_id}?api-version={_API}").json()
            if job["properties"]["status"] not in {"InProgress", "Cancelling"}:
                return True
        return False

    def _call(self, method: str, url: str, body: dict[str, Any] | None = None) -> requests.Response:
        token = self._credential.get_token(_SCOPE).token
        return self._session.request(method, url, json=body, headers={"Authorization": f"Bearer {token}"},
                                     timeout=(10, 60), verify=self._verify)
