"""The ARM client: the only code that speaks HTTP to Azure.

It adds the bearer token (only after ``ensure_followable`` approved the URL), a client request
id, a User-Agent and timeouts; it never follows redirects and never retries: whether and when
to try again is the caller's decision, made from the typed errors raised here. requests and
azure-core exceptions are translated to this app's errors in this one place.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError
from urllib3.exceptions import NewConnectionError

from shared.armid import VaultRef, encode_segment, ensure_followable
from shared.errors import (
    ArmProtocolError,
    ArmRejected,
    ArmThrottled,
    ArmUnavailable,
    ArmUnreachable,
    ErrorInfo,
    TokenUnavailable,
    json_objects,
)
from shared.logs import for_request
from shared.messages import BackupRequest, parse_instant
from shared.settings import Settings
from shared.statuses import JobSnapshot, OperationSnapshot, read_job, read_operation
from shared.timing import retry_after_seconds
from shared.vaultitems import ItemsPage, read_items_page
from shared.workloads import Workload

__all__ = ["USER_AGENT", "Accepted", "ArmClient", "CallScope", "LocationSnapshot"]

logger = logging.getLogger(__name__)

USER_AGENT = "backup-trigger-functions/1.0"
_TRANSIENT_STATUSES = {401, 408, 429} | set(range(500, 600))
# 401 is transient: a token can expire between issue and use, and the next try fetches a new one.
_JOB_LIST_PAGES = 5
_JOB_FILTER_TIME = "%Y-%m-%d %I:%M:%S %p"  # the format the az CLI and the REST examples use


@dataclass(frozen=True)
class Accepted:
    """ARM took the trigger: where to follow it and how soon."""

    async_operation_url: str | None
    location_url: str | None
    retry_after: float | None
    request_id: str | None


@dataclass(frozen=True)
class CallScope:
    """Whom a call is for: the subscription its URL must stay under, and what its log line names."""

    subscription_id: str
    correlation_id: str
    label: str

    @classmethod
    def of(cls, request: BackupRequest) -> CallScope:
        return cls(request.item.subscription_id, request.correlation_id, request.item.label)


@dataclass(frozen=True)
class LocationSnapshot:
    done: bool
    retry_after: float | None


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes
    retry_after: float | None

    def json(self) -> dict[str, Any]:
        try:
            document = json.loads(self.body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            # A GET may be tried again; a garbled body is most likely a passing fault.
            raise ArmUnavailable(
                ErrorInfo(code="MalformedResponse", message=f"expected a JSON object, got {self.body[:120]!r}",
                          http_status=self.status, request_id=self.headers.get("x-ms-request-id")),
                retry_after=self.retry_after,
            )
        return document


class ArmClient:
    """Backups - Trigger, its async operation, and backup jobs, for one ARM endpoint."""

    def __init__(
        self,
        settings: Settings,
        credential: TokenCredential,
        session: requests.Session,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._credential = credential
        self._session = session
        self._clock = clock
        self._timeout = (settings.http_connect_timeout_seconds, settings.http_read_timeout_seconds)
        self._token_lock = threading.Lock()

    def trigger(self, request: BackupRequest) -> Accepted:
        url = self._url(f"{request.item.item_path}/backup")
        answer = self._call("POST", url, CallScope.of(request), body=request.body())
        if answer.status not in {200, 201, 202}:
            raise self._error(answer, "POST backup")
        async_url = answer.headers.get("Azure-AsyncOperation")
        location_url = answer.headers.get("Location")
        if not async_url and not location_url:
            raise ArmProtocolError(ErrorInfo(
                code="MissingOperationHeaders",
                message="ARM accepted the backup but named no operation to follow; the backup may be running",
                http_status=answer.status, request_id=answer.headers.get("x-ms-request-id"),
            ))
        return Accepted(async_url or None, location_url or None, answer.retry_after,
                        answer.headers.get("x-ms-request-id"))

    def operation_status(self, url: str, request: BackupRequest) -> tuple[OperationSnapshot, float | None]:
        answer = self._call("GET", url, CallScope.of(request))
        if answer.status not in {200, 202}:
            raise self._error(answer, "GET operationsStatus")
        return read_operation(answer.json()), answer.retry_after

    def operation_result(self, url: str, request: BackupRequest) -> LocationSnapshot:
        answer = self._call("GET", url, CallScope.of(request))
        if answer.status == 202:
            return LocationSnapshot(done=False, retry_after=answer.retry_after)
        if answer.status in {200, 204}:
            return LocationSnapshot(done=True, retry_after=answer.retry_after)
        raise self._error(answer, "GET operationResults")

    def job(self, request: BackupRequest, job_id: str) -> tuple[JobSnapshot, float | None]:
        url = self._url(f"{request.item.vault_path}/backupJobs/{encode_segment(job_id)}")
        answer = self._call("GET", url, CallScope.of(request))
        if answer.status != 200:
            raise self._error(answer, "GET backupJobs")
        return read_job(job_id, answer.json()), answer.retry_after

    def find_backup_job(self, request: BackupRequest, since: datetime, *, running: bool = False) -> str | None:
        """The id of a backup job of this item that started at or after ``since``, if ARM lists one.

        Used before a trigger is sent again when an earlier POST may have reached ARM unseen:
        a second trigger would cost one of the item's few on-demand backups of the day; and,
        with ``running``, to find the backup Azure says is in progress, to wait for its end.
        """
        window_start = since - timedelta(minutes=5)  # allow for clock skew between us and the service
        # The end of the window only has to lie past any job started so far; a day leaves room for
        # a service clock far ahead of ours (an emulator's scaled time) and costs nothing.
        window_end = self._clock() + timedelta(days=1)
        query = {
            "api-version": self._settings.api_version,
            "$filter": (
                f"operation eq 'Backup' and startTime eq '{window_start.strftime(_JOB_FILTER_TIME)}'"
                f" and endTime eq '{window_end.strftime(_JOB_FILTER_TIME)}'"
                + (" and status eq 'InProgress'" if running else "")
            ),
        }
        url: str | None = f"{self._settings.arm_endpoint}{request.item.vault_path}/backupJobs?{urlencode(query)}"
        for _ in range(_JOB_LIST_PAGES):
            if url is None:
                break
            answer = self._call("GET", url, CallScope.of(request))
            if answer.status != 200:
                raise self._error(answer, "GET backupJobs list")
            page = answer.json()
            for job in json_objects(page.get("value")):
                job_id = _matching_job_id(job, request, window_start)
                if job_id:
                    return job_id
            next_link = page.get("nextLink")
            url = next_link if isinstance(next_link, str) and next_link else None
        return None

    def list_protected_items(self, vault: VaultRef, scope: CallScope, odata_filter: str | None,
                             next_link: str | None = None) -> ItemsPage:
        """One page of Backup Protected Items - List: the first (filtered), or the one ``next_link`` names.

        ``next_link`` is followed exactly as ARM gave it, once the same checks as every URL passed.
        """
        url = next_link
        if url is None:
            query = {"api-version": self._settings.api_version}
            if odata_filter is not None:
                query["$filter"] = odata_filter
            url = f"{self._settings.arm_endpoint}{vault.path}/backupProtectedItems?{urlencode(query)}"
        answer = self._call("GET", url, scope)
        if answer.status != 200:
            raise self._error(answer, "GET backupProtectedItems")
        return read_items_page(answer.json())

    def _url(self, path: str) -> str:
        return f"{self._settings.arm_endpoint}{path}?{urlencode({'api-version': self._settings.api_version})}"

    def _call(
        self, method: str, url: str, scope: CallScope, body: Mapping[str, Any] | None = None
    ) -> _Answer:
        ensure_followable(url, arm_endpoint=self._settings.arm_endpoint, subscription_id=scope.subscription_id)
        client_request_id = str(uuid.uuid4())
        headers = {
            "Authorization": f"Bearer {self._token()}",
            "x-ms-client-request-id": client_request_id,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        started = time.perf_counter()
        try:
            response = self._session.request(
                method, url, headers=headers, json=body, timeout=self._timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise _unreachable(exc, method) from exc
        elapsed_ms = (time.perf_counter() - started) * 1000
        for_request(logger, scope.correlation_id, scope.label).info(
            "ARM %s %s -> %s in %.0f ms (client request %s, ARM request %s)",
            method, url.split("?", 1)[0], response.status_code, elapsed_ms, client_request_id,
            response.headers.get("x-ms-request-id"),
        )
        return _Answer(
            status=response.status_code,
            headers=response.headers,
            body=response.content,
            retry_after=retry_after_seconds(response.headers, self._clock()),
        )

    def _token(self) -> str:
        # One caller at a time: the credential caches, but concurrent first calls would each fetch
        # a token of their own (seen: 14 fetches for 16 cold invocations). The cached path is fast.
        try:
            with self._token_lock:
                return self._credential.get_token(self._settings.arm_scope).token
        except AzureError as exc:
            # The credential's own message may name endpoints but never holds a token.
            raise TokenUnavailable(ErrorInfo(code="TokenUnavailable", message=str(exc)[:500])) from exc

    @staticmethod
    def _error(answer: _Answer, what: str) -> ArmUnavailable | ArmRejected:
        info = _cloud_error(answer, what)
        if answer.status == 429:
            return ArmThrottled(info, retry_after=answer.retry_after)
        if answer.status in _TRANSIENT_STATUSES:
            return ArmUnavailable(info, retry_after=answer.retry_after)
        return ArmRejected(info)


def _cloud_error(answer: _Answer, what: str) -> ErrorInfo:
    try:
        document = json.loads(answer.body) if answer.body else {}
    except ValueError:
        document = {}
    error = document.get("error", document) if isinstance(document, dict) else {}
    if not isinstance(error, dict):
        error = {}
    return ErrorInfo.from_cloud_error(
        error,
        default_code=f"Http{answer.status}",
        default_message=f"{what} answered HTTP {answer.status}",
        http_status=answer.status,
        request_id=answer.headers.get("x-ms-request-id"),
        correlation_request_id=answer.headers.get("x-ms-correlation-request-id"),
    )


def _unreachable(exc: requests.RequestException, method: str) -> ArmUnreachable:
    # A request that never connected cannot have triggered anything; one that was sent and then
    # lost its answer may have.
    never_sent = isinstance(exc, requests.ConnectTimeout) or _is_connect_failure(exc)
    code = "ArmTimeout" if isinstance(exc, requests.Timeout) else "ArmConnectionFailed"
    return ArmUnreachable(
        ErrorInfo(code=code, message=f"{method} failed: {type(exc).__name__}: {str(exc)[:300]}"),
        request_may_have_arrived=not never_sent,
    )


def _is_connect_failure(exc: requests.RequestException) -> bool:
    reason = exc.args[0] if exc.args else None
    return isinstance(getattr(reason, "reason", None), NewConnectionError)


def _matching_job_id(job: object, request: BackupRequest, window_start: datetime) -> str | None:
    if not isinstance(job, dict) or not isinstance(job.get("properties"), dict):
        return None
    properties = job["properties"]
    if str(properties.get("entityFriendlyName", "")).lower() != request.item.friendly_name.lower():
        return None
    if str(properties.get("operation", "")).lower() != "backup":
        return None
    # Friendly names repeat across kinds (a database "master" on two instances, a share and a VM
    # of the same name); the management type tells at least the kinds apart.
    workload = Workload.of_item(request.item.item)
    kind = properties.get("backupManagementType")
    if workload is not None and isinstance(kind, str) and kind.lower() != workload.backup_management_type.lower():
        return None
    # Where the job names its container (VM jobs print it without the "IaasVMContainer;" type
    # prefix), it must be the item's own.
    container = properties.get("containerName")
    if isinstance(container, str) and container and not request.item.container.lower().endswith(container.lower()):
        return None
    try:
        started = parse_instant(str(properties.get("startTime")))
    except ValueError:
        return None
    name = job.get("name")
    return name if started >= window_start and isinstance(name, str) and name else None
