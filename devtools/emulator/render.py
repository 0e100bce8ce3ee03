"""The JSON bodies the service answers with, shaped like the official x-ms-examples (see tests/emulator)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from .backups import Failure, Job, Operation
from .inventory import Item, Workload

# What operationsStatus shows as endTime while an operation runs (ProtectedItem_Delete_OperationStatus.json).
_NOT_ENDED = "0001-01-01T00:00:00.00000Z"
ITEM_TYPE = "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems"
JOB_TYPE = "Microsoft.RecoveryServices/vaults/backupJobs"


def timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_duration(span: timedelta) -> str:
    """A .NET TimeSpan as XmlConvert writes it, e.g. PT9.8782791S or PT1H2M3.5S."""
    total = max(span, timedelta(0))
    hours, rest = divmod(total, timedelta(hours=1))
    minutes, rest = divmod(rest, timedelta(minutes=1))
    seconds = f"{rest.total_seconds():.7f}".rstrip("0").rstrip(".")
    text = "PT" + (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "")
    return text + (f"{seconds}S" if seconds != "0" or text == "PT" else "")


def operation_status(operation: Operation, now: datetime) -> dict[str, Any]:
    status = operation.status(now)
    body: dict[str, Any] = {
        "id": operation.id,
        "name": operation.id,
        "status": status,
        "startTime": timestamp(operation.stamped),
        "endTime": _NOT_ENDED if status == "InProgress" else timestamp(operation.reported(operation.end)),
    }
    if status == "Succeeded" and operation.job_id:
        body["properties"] = {"objectType": "OperationStatusJobExtendedInfo", "jobId": operation.job_id}
    if status == "Failed" and operation.failure:
        body["error"] = {"code": operation.failure.code, "message": operation.failure.message}
    return body


def _tasks(job: Job, now: datetime) -> list[dict[str, Any]]:
    names = job.item.workload.info.tasks
    span = (job.end - job.start) / len(names)
    final = job.outcome if job.outcome != "CompletedWithWarnings" else "Completed"
    tasks = []
    for index, name in enumerate(names):
        begin, end = job.start + span * index, job.start + span * (index + 1)
        if now < begin:
            status, elapsed = "NotStarted", timedelta(0)
        elif now < end:
            status, elapsed = "InProgress", now - begin
        else:
            last = index == len(names) - 1
            status, elapsed = (final if last else "Completed"), end - begin
        tasks.append({"taskId": name, "duration": iso_duration(elapsed), "status": status})
    return tasks


def job(job: Job, now: datetime, *, detailed: bool = True) -> dict[str, Any]:
    """A job as GET backupJobs/{id} shows it; lists leave out extendedInfo, as in ListJobs.json."""
    item, info = job.item, job.item.workload.info
    status = job.status(now)
    done = job.finished(now)
    props: dict[str, Any] = {"jobType": info.job_type, "duration": iso_duration((job.end if done else now) - job.start)}
    property_bag: dict[str, str] = {}
    if item.workload is Workload.VM:
        props["virtualMachineVersion"] = "Compute"
        property_bag["VM Name"] = item.friendly_name
    elif item.workload is Workload.FILE_SHARE:
        props["storageAccountName"] = item.container.rsplit(";", 1)[-1]
        props["storageAccountVersion"] = "Storage"
    else:
        props["workloadType"] = info.item_prefix
        if job.backup_type:
            property_bag["Backup Type"] = job.backup_type
    if detailed:
        props["extendedInfo"] = {"tasksList": _tasks(job, now), "propertyBag": property_bag}
    props.update(
        {
            "entityFriendlyName": item.friendly_name,
            "backupManagementType": info.backup_management_type,
            "operation": "Backup",
            "status": status,
            "startTime": timestamp(job.stamped),
            "activityId": job.activity_id,
        }
    )
    if done:
        props["endTime"] = timestamp(job.reported(job.end))
    if done and job.failure and status == "Failed":
        props["errorDetails"] = [_error_info(item, job.failure)]
    return {"id": f"{item.vault.path('Subscriptions')}/backupJobs/{job.id}", "name": job.id, "type": JOB_TYPE,
            "properties": props}


def _error_info(item: Item, failure: Failure) -> dict[str, Any]:
    # The spec types errorCode as an int32; the symbolic code goes where the workload's schema has room (errorTitle).
    error: dict[str, Any] = {
        "errorCode": failure.number,
        "errorString": failure.message,
        "recommendations": ["Resolve the issue named by the error and trigger the backup again."],
    }
    if item.workload is not Workload.FILE_SHARE:
        error["errorTitle"] = failure.code
    return error


def protected_item(item: Item, last_job: Job | None, fallback_backup: datetime) -> dict[str, Any]:
    info = item.workload.info
    vault = item.vault
    last_time = last_job.reported(last_job.end) if last_job else fallback_backup
    last_status = last_job.outcome if last_job else "Completed"
    container_parts = item.container.split(";")
    props: dict[str, Any] = {
        "friendlyName": item.friendly_name,
        "protectionStatus": "Healthy",
        "protectionState": "Protected",
        "lastBackupStatus": last_status,
        "lastBackupTime": timestamp(last_time),
        "protectedItemDataId": str(int(hashlib.sha256(item.id.lower().encode()).hexdigest()[:15], 16)),
        "protectedItemType": info.protected_item_type,
        "backupManagementType": info.backup_management_type,
        "workloadType": info.item_prefix,
        "containerName": ";".join(container_parts[1:]),
        "sourceResourceId": _source_resource(item, container_parts),
        "policyId": f"{vault.path()}/backupPolicies/{item.policy}",
        "lastRecoveryPoint": timestamp(last_time),
    }
    if item.workload is Workload.VM:
        props["virtualMachineId"] = props["sourceResourceId"]
        props["healthStatus"] = "Passed"
    elif item.workload is not Workload.FILE_SHARE:
        props["parentName"] = item.name.split(";")[1] if item.name.count(";") >= 2 else ""
        props["serverName"] = container_parts[-1]
    return {"id": item.id, "name": item.name, "type": ITEM_TYPE, "properties": props}


def _source_resource(item: Item, container_parts: list[str]) -> str:
    group, name = (container_parts[-2], container_parts[-1]) if len(container_parts) >= 3 else ("", "")
    provider = "Microsoft.Storage/storageAccounts" if item.workload is Workload.FILE_SHARE else (
        "Microsoft.Compute/virtualMachines"
    )
    return f"/subscriptions/{item.vault.subscription}/resourceGroups/{group}/providers/{provider}/{name}"
