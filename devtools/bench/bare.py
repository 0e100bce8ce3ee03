"""The throughput baseline: a bare loop making only the unavoidable calls of a trigger.

Receive a request, POST the trigger, send the follow-up (invisible for Retry-After), delete the
request: with the app's own libraries and clients (azure-storage-queue through
``shared.queues``, requests with one ``shared.httpsession`` pooled session, azure-identity's
DefaultAzureCredential) and the local host's concurrency (one receiver fetching
``batch_size`` messages whenever no more than ``new_batch_threshold`` are in flight, ``threads``
workers). It reads nothing but the six names, validates nothing and handles no error beyond
counting it: what any app must spend per backup, and nothing else.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote

import requests
from azure.identity import DefaultAzureCredential
from azure.storage.queue import QueueClient, QueueMessage, QueueServiceClient

from shared.httpsession import pooled_session

__all__ = ["BareLoop", "BareRun"]

_SCOPE = "https://management.azure.com/.default"
_API = "2024-04-01"
_IDLE_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class BareRun:
    triggered: int
    errors: int
    seconds: float


class BareLoop:
    def __init__(
        self,
        service: QueueServiceClient,
        arm_endpoint: str,
        ca_bundle: str,
        *,
        requests_queue: str,
        status_queue: str,
        threads: int = 16,
        batch_size: int = 16,
        new_batch_threshold: int = 8,
    ) -> None:
        self._requests = service.get_queue_client(requests_queue)
        self._status = service.get_queue_client(status_queue)
        self._arm = arm_endpoint
        self._verify = ca_bundle
        self._credential = DefaultAzureCredential()  # the stack's managed identity (see devtools.bench.stackrun)
        self._session = pooled_session()
        self._threads = threads
        self._batch = batch_size
        self._threshold = new_batch_threshold
        self._in_flight = 0
        self._slots = threading.Condition()
        self._lock = threading.Lock()
        self._done = 0
        self._errors = 0
        self._idle = threading.Event()

    def run(self, expected: int, timeout: float) -> BareRun:
        started = time.perf_counter()
        deadline = time.monotonic() + timeout
        with ThreadPoolExecutor(self._threads, thread_name_prefix="bare") as pool:
            while time.monotonic() < deadline:
                with self._lock:
                    if self._done + self._errors >= expected:
                        break
                with self._slots:
                    while self._in_flight > self._threshold:
                        self._slots.wait(0.5)
                batch = list(next(self._requests.receive_messages(
                    messages_per_page=self._batch, max_messages=self._batch, visibility_timeout=600).by_page(), []))
                if not batch:
                    self._idle.wait(_IDLE_POLL_SECONDS)  # nothing visible: ask again shortly (the deadline bounds it)
                    continue
                with self._slots:
                    self._in_flight += len(batch)
                for message in batch:
                    pool.submit(self._one, message)
        return BareRun(self._done, self._errors, time.perf_counter() - started)

    def _one(self, message: QueueMessage) -> None:
        try:
            ok = self._trigger(self._requests, self._status, message)
        except (requests.RequestException, ValueError, KeyError):
            ok = False
        with self._lock:
            if ok:
                self._done += 1
            else:
                self._errors += 1
        with self._slots:
            self._in_flight -= 1
            self._slots.notify_all()

    def _trigger(self, requests_queue: QueueClient, status_queue: QueueClient, message: QueueMessage) -> bool:
        names = json.loads(str(message.content))
        path = "/".join(
            ["", "subscriptions", names["subscriptionId"], "resourceGroups", names["resourceGroupName"],
             "providers", "Microsoft.RecoveryServices", "vaults", names["vaultName"], "backupFabrics", "Azure",
             "protectionContainers", quote(names["containerName"], safe=";"), "protectedItems",
             quote(names["protectedItemName"], safe=";"), "backup"]
        )
        token = self._credential.get_token(_SCOPE).token
        response = self._session.post(
            f"{self._arm}{path}?api-version={_API}",
            json={"properties": {"objectType": "IaasVMBackupRequest"}},
            headers={"Authorization": f"Bearer {token}", "x-ms-client-request-id": str(uuid.uuid4())},
            timeout=(10, 60), verify=self._verify, allow_redirects=False,
        )
        if response.status_code != 202:
            return False
        follow_up = json.dumps({"asyncOperationUrl": response.headers.get("Azure-AsyncOperation"), "names": names})
        status_queue.send_message(follow_up, visibility_timeout=int(response.headers.get("Retry-After", "60")))
        requests_queue.delete_message(message)
        return True
