"""The ARM operations this app uses: Backups - Trigger, its async operation, backup jobs, listing items.

Each builds its URL from validated names, sends it through ``shared.armtransport`` (the only
code that speaks HTTP, adds the token and translates errors) and reads the answer into a typed
value; raw dicts and header parsing stay here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

import requests
from azure.core.credentials import TokenCredential

from shared.armid import VaultRef, encode_segment
from shared.armtransport import USER_AGENT, ArmTransport, CallScope
from shared.errors import ArmProtocolError, ErrorInfo, json_objects
from shared.messages import BackupRequest, parse_instant
from shared.settings import Settings
from shared.statuses import JobSnapshot, OperationSnapshot, read_job, read_operation
from shared.targeting import BackupStatus, ResourceTarget, read_backup_status, read_location
from shared.vaultitems import ItemsPage, read_items_page
from shared.workloads import Workload

__all__ = ["COMPUTE_API_VERSION", "USER_AGENT", "Accepted", "ArmClient", "LocationSnapshot"]

_JOB_LIST_PAGES = 5
_JOB_FILTER_TIME = "%Y-%m-%d %I:%M:%S %p"  # the format the az CLI and the REST examples use
# Only the VM's location is read, which every version returns; this one is served in all three clouds.
COMPUTE_API_VERSION = "2024-07-01"


@dataclass(frozen=True)
class Accepted:
    """ARM took the trigger: where to follow it and how soon."""

    async_operation_url: str | None
    location_url: str | None
    retry_after: float | None
    request_id: str | None


@dataclass(frozen=True)
class LocationSnapshot:
    done: bool
    retry_after: float | None


class ArmClient:
    """Backups - Trigger, its async operation, backup jobs, and finding a VM's item, for one ARM endpoint."""

    def __init__(
        self,
        settings: Settings,
        credential: TokenCredential,
        session: requests.Session,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._transport = ArmTransport(settings, credential, session, clock)

    def trigger(self, request: BackupRequest) -> Accepted:
        url = self._transport.url(f"{request.item.item_path}/backup")
        answer = self._transport.call("POST", url, _scope(request), body=request.body())
        if answer.status not in {200, 201, 202}:
            raise self._transport.error(answer, "POST backup")
        async_url = answer.headers.get("Azure-AsyncOperation")
        location_url = answer.headers.get("Location")
        if not async_url and not location_url:
            raise ArmProtocolError(ErrorInfo(
                code="MissingOperationHeaders",
                message="ARM accepted the backup but named no operation to follow; the backup may be running",
                http_status=answer.status, request_id=answer.request_id,
            ))
        return Accepted(async_url or None, location_url or None, answer.retry_after, answer.request_id)

    def operation_status(self, url: str, request: BackupRequest) -> tuple[OperationSnapshot, float | None]:
        answer = self._transport.call("GET", url, _scope(request))
        if answer.status not in {200, 202}:
            raise self._transport.error(answer, "GET operationsStatus")
        return read_operation(answer.json()), answer.retry_after

    def operation_result(self, url: str, request: BackupRequest) -> LocationSnapshot:
        answer = self._transport.call("GET", url, _scope(request))
        if answer.status == 202:
            return LocationSnapshot(done=False, retry_after=answer.retry_after)
        if answer.status in {200, 204}:
            return LocationSnapshot(done=True, retry_after=answer.retry_after)
        raise self._transport.error(answer, "GET operationResults")

    def job(self, request: BackupRequest, job_id: str) -> tuple[JobSnapshot, float | None]:
        url = self._transport.url(f"{request.item.vault_path}/backupJobs/{encode_segment(job_id)}")
        answer = self._transport.call("GET", url, _scope(request))
        if answer.status != 200:
            raise self._transport.error(answer, "GET backupJobs")
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
            answer = self._transport.call("GET", url, _scope(request))
            if answer.status != 200:
                raise self._transport.error(answer, "GET backupJobs list")
            page = answer.json()
            for job in json_objects(page.get("value")):
                job_id = _matching_job_id(job, request, window_start)
                if job_id:
                    return job_id
            next_link = page.get("nextLink")
            url = next_link if isinstance(next_link, str) and next_link else None
        return None

    def vm_location(self, target: ResourceTarget) -> str:
        """The region of the target's VM (Virtual Machines - Get; needs read access to the VM)."""
        url = self._transport.url(target.resource.path, COMPUTE_API_VERSION)
        answer = self._transport.call("GET", url, _target_scope(target))
        if answer.status != 200:
            raise self._transport.error(answer, "GET virtualMachines")
        location = read_location(answer.json())
        if location is None:
            raise ArmProtocolError(ErrorInfo(
                "UnexpectedResource", "the VM's GET named no region in 'location'", http_status=answer.status,
                request_id=answer.request_id,
            ))
        return location

    def backup_status(self, target: ResourceTarget, location: str) -> BackupStatus:
        """Backup Status - Get: which vault and item protect the target's VM, if any."""
        subscription = encode_segment(target.resource.subscription_id)
        path = (
            f"/subscriptions/{subscription}/providers/Microsoft.RecoveryServices"
            f"/locations/{encode_segment(location)}/backupStatus"
        )
        body = {"resourceId": target.resource.id, "resourceType": "VM"}
        answer = self._transport.call("POST", self._transport.url(path), _target_scope(target), body=body)
        if answer.status != 200:
            raise self._transport.error(answer, "POST backupStatus")
        return read_backup_status(answer.json())

    def list_protected_items(
        self, vault: VaultRef, scope: CallScope, odata_filter: str | None, next_link: str | None = None
    ) -> ItemsPage:
        """One page of Backup Protected Items - List: the first (filtered), or the one ``next_link`` names.

        ``next_link`` is followed exactly as ARM gave it, once the same checks as every URL passed.
        """
        url = next_link
        if url is None:
            query = {"api-version": self._settings.api_version}
            if odata_filter is not None:
                query["$filter"] = odata_filter
            url = f"{self._settings.arm_endpoint}{vault.path}/backupProtectedItems?{urlencode(query)}"
        answer = self._transport.call("GET", url, scope)
        if answer.status != 200:
            raise self._transport.error(answer, "GET backupProtectedItems")
        return read_items_page(answer.json())


def _scope(request: BackupRequest) -> CallScope:
    return CallScope(request.item.subscription_id, request.correlation_id, request.item.label)


def _target_scope(target: ResourceTarget) -> CallScope:
    return CallScope(target.resource.subscription_id, target.correlation_id, target.label)


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
