"""Batches, as pure rules: one request for many items of a vault, resolved before the usual rules run.

A batch names a vault and a ``select`` (``backupManagementType``, ``friendlyNames``,
``friendlyNamePattern``, ``policyName``, all optional, combined with AND). The app lists the
vault's protected items, keeps those the selection matches, and starts one ordinary request
per item under the key ``{batch key}/{protectedItemName}``, released at
``BATCH_TRIGGERS_PER_MINUTE``. This module holds the request form and its checks, the matching,
the children's keys and messages, the release times, and the summary; ``shared.batchflow``
does the I/O.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from shared.armid import VaultRef
from shared.errors import ErrorInfo, RequestRejected
from shared.ledger import Fingerprint
from shared.messages import BackupRequest, check_allowed, format_instant, is_correlation_id, parse_request
from shared.results import RESULT_SCHEMA_VERSION, ResultStatus
from shared.settings import Settings
from shared.timing import MAX_QUEUE_DELAY_SECONDS
from shared.vaultitems import ListedItem
from shared.workloads import MAX_RETENTION_DAYS, Workload

__all__ = [
    "MANAGEMENT_TYPES",
    "MAX_BATCH_KEY_LENGTH",
    "BatchRequest",
    "ChildOutcome",
    "Selection",
    "batch_status",
    "child_document",
    "child_key",
    "child_message",
    "child_request",
    "count_by_status",
    "is_batch_form",
    "outcome_of",
    "parse_batch",
    "release_at",
    "release_delay",
    "summary",
]

MANAGEMENT_TYPES = {name.lower(): name for name in ("AzureIaasVM", "AzureStorage", "AzureWorkload")}
MAX_BATCH_KEY_LENGTH = 100
"""A child's key is the batch key, ``/`` and an item name, and a key holds 200 characters."""
MAX_SELECT_BYTES = 32 * 1024
"""The batch request travels in every follow-up of the batch, which holds 64 KiB."""
MAX_PATTERN_LENGTH = 256
NOT_FOUND = "NotFound"
"""The status of a name in ``friendlyNames`` that the vault does not hold."""
SUCCESSFUL = frozenset({ResultStatus.SUCCEEDED.value, ResultStatus.COMPLETED_WITH_WARNINGS.value,
                        ResultStatus.TRIGGERED.value})
_BATCH_FIELDS = frozenset({
    "subscriptionId", "resourceGroupName", "vaultName", "select", "properties", "retentionDays", "correlationId",
})
_SELECT_FIELDS = frozenset({"backupManagementType", "friendlyNames", "friendlyNamePattern", "policyName"})
# Database properties that a batch may give for its database items; other items leave them out.
_DATABASE_ONLY = frozenset({"backupType", "enableCompression"})
_MAX_SUMMARY_BYTES = 60 * 1024  # a queue message holds 64 KiB
_KEY_SAFE = "".join(chr(code) for code in range(0x21, 0x7F) if chr(code) != "%")


def is_batch_form(document: Mapping[str, Any]) -> bool:
    """Whether a request document asks for a batch (it has a ``select``)."""
    return "select" in document


@dataclass(frozen=True)
class Selection:
    """Which of a vault's items a batch backs up; every criterion given must hold."""

    backup_management_type: str | None = None
    friendly_names: tuple[str, ...] = ()
    pattern: str | None = None
    policy_name: str | None = None

    @classmethod
    def parse(cls, value: object, max_items: int) -> Selection:
        if not isinstance(value, dict):
            raise RequestRejected("select", "must be a JSON object")
        unknown = sorted(set(value) - _SELECT_FIELDS)
        if unknown:
            fields = ", ".join(sorted(_SELECT_FIELDS))
            raise RequestRejected(f"select.{unknown[0]}", f"is not a field of select ({fields})")
        return cls(
            backup_management_type=_management_type(value.get("backupManagementType")),
            friendly_names=_friendly_names(value.get("friendlyNames"), max_items),
            pattern=_text_field("select.friendlyNamePattern", value.get("friendlyNamePattern"), MAX_PATTERN_LENGTH),
            policy_name=_text_field("select.policyName", value.get("policyName"), 150),
        )

    def odata_filter(self) -> str | None:
        """The list call's ``$filter``: only the management type is filtered by the service."""
        if self.backup_management_type is None:
            return None
        return f"backupManagementType eq '{self.backup_management_type}'"

    def matches(self, item: ListedItem) -> bool:
        if Workload.of_item(item.name) is None:
            return False  # MAB, DPM and other items this app cannot trigger are never selected
        wanted_type = self.backup_management_type
        if wanted_type is not None and (item.backup_management_type or "").lower() != wanted_type.lower():
            return False
        name = item.friendly_name.casefold()
        if self.friendly_names and name not in {given.casefold() for given in self.friendly_names}:
            return False
        if self.pattern is not None and not fnmatch.fnmatchcase(name, self.pattern.casefold()):
            return False
        return self.policy_name is None or (item.policy_name or "").casefold() == self.policy_name.casefold()

    def not_found(self, selected_names: Iterable[str]) -> list[str]:
        """The names in ``friendlyNames`` that no selected item carries, as given."""
        found = {name.casefold() for name in selected_names}
        return [name for name in self.friendly_names if name.casefold() not in found]

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "backupManagementType": self.backup_management_type,
            "friendlyNames": list(self.friendly_names) or None,
            "friendlyNamePattern": self.pattern,
            "policyName": self.policy_name,
        }
        return {key: value for key, value in document.items() if value is not None}


@dataclass(frozen=True)
class BatchRequest:
    vault: VaultRef
    select: Selection
    properties: Mapping[str, Any] | None
    """As given; completed per item (its workload's defaults) when the item's request is built."""
    retention_days: int | None
    correlation_id: str

    @property
    def key(self) -> str:
        return self.correlation_id

    @property
    def label(self) -> str:
        return f"{self.vault.vault}/batch"

    def fingerprint(self) -> Fingerprint:
        """What makes two batch requests the same batch (see ``shared.ledger.Fingerprint``)."""
        canonical = json.dumps(
            ["batch", self.vault.id.lower(), self.select.to_json(), self.properties, self.retention_days],
            sort_keys=True, separators=(",", ":"),
        )
        return Fingerprint(hashlib.sha256(canonical.encode()).hexdigest(), None)

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            **self.vault.to_json(), "select": self.select.to_json(), "properties": self.properties,
            "retentionDays": self.retention_days, "correlationId": self.correlation_id,
        }
        return {key: value for key, value in document.items() if value is not None}

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> BatchRequest:
        """A batch this app wrote into a follow-up: checked again, the queue is not trusted."""
        return _parse(document, max_items=None, correlation_id=document.get("correlationId"))


def parse_batch(
    document: Mapping[str, Any], *, settings: Settings, fallback_correlation_id: str
) -> BatchRequest:
    """The batch in ``document``, checked; ``RequestRejected`` names what is wrong."""
    batch = _parse(
        document, max_items=settings.batch_max_items,
        correlation_id=document.get("correlationId", fallback_correlation_id),
    )
    check_allowed(batch.vault, settings)
    return batch


def _parse(document: Mapping[str, Any], *, max_items: int | None, correlation_id: object) -> BatchRequest:
    unknown = sorted(set(document) - _BATCH_FIELDS)
    if unknown:
        raise RequestRejected(unknown[0], f"is not a field of a batch request ({', '.join(sorted(_BATCH_FIELDS))})")
    missing = [name for name in ("subscriptionId", "resourceGroupName", "vaultName") if name not in document]
    if missing:
        raise RequestRejected(missing[0], "is required in a batch request")
    vault = VaultRef.of(document["subscriptionId"], document["resourceGroupName"], document["vaultName"])
    select = Selection.parse(document["select"], max_items if max_items is not None else 10**6)
    if len(json.dumps(select.to_json()).encode()) > MAX_SELECT_BYTES:
        raise RequestRejected("select", f"must be at most {MAX_SELECT_BYTES // 1024} KiB as JSON: use a pattern")
    properties = document.get("properties")
    if properties is not None and not isinstance(properties, dict):
        raise RequestRejected("properties", "must be a JSON object")
    if properties is not None and "objectType" in properties:
        raise RequestRejected("properties.objectType", "follows from each item in a batch; leave it out")
    retention = document.get("retentionDays")
    if retention is not None and (
        isinstance(retention, bool) or not isinstance(retention, int) or not 1 <= retention <= MAX_RETENTION_DAYS
    ):
        raise RequestRejected("retentionDays", f"must be a whole number of days from 1 to {MAX_RETENTION_DAYS}")
    return BatchRequest(vault, select, properties, retention, _batch_key(correlation_id))


def _batch_key(value: object) -> str:
    if not isinstance(value, str) or not is_correlation_id(value) or len(value) > MAX_BATCH_KEY_LENGTH:
        raise RequestRejected(
            "correlationId",
            f"a batch key must be 1-{MAX_BATCH_KEY_LENGTH} printable ASCII characters without spaces "
            "(its items' keys add '/' and the item name)",
        )
    return value


def _management_type(value: object) -> str | None:
    if value is None:
        return None
    canonical = MANAGEMENT_TYPES.get(value.lower()) if isinstance(value, str) else None
    if canonical is None:
        raise RequestRejected("select.backupManagementType", f"must be one of {', '.join(MANAGEMENT_TYPES.values())}")
    return canonical


def _friendly_names(value: object, max_items: int) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not value:
        raise RequestRejected("select.friendlyNames", "must be a non-empty list of names")
    if len(value) > max_items:
        raise RequestRejected("select.friendlyNames", f"names more than BATCH_MAX_ITEMS ({max_items}) items")
    names: dict[str, str] = {}
    for position, name in enumerate(value):
        checked = _text_field(f"select.friendlyNames[{position}]", name, 260)
        names.setdefault(str(checked).casefold(), str(checked))
    return tuple(names.values())


def _text_field(target: str, value: object, max_length: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise RequestRejected(target, f"must be a non-empty string of at most {max_length} characters")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise RequestRejected(target, "must not contain control characters")
    return value


# --- the children ---------------------------------------------------------------------------------


def child_key(batch_key: str, item_name: str) -> str:
    """``{batch key}/{protectedItemName}``; a name that is not printable ASCII is percent-encoded.

    Item names cannot hold ``%``, so the encoding is unambiguous. Should the key still exceed 200
    characters, the name is replaced by ``~`` and a digest of it.
    """
    key = f"{batch_key}/{quote(item_name, safe=_KEY_SAFE)}"
    if is_correlation_id(key):
        return key
    return f"{batch_key}/~{hashlib.sha256(item_name.encode()).hexdigest()[:40]}"


def child_document(batch: BatchRequest, item: ListedItem) -> dict[str, Any]:
    """The request document of one selected item, as a producer would have written it."""
    document: dict[str, Any] = {
        **batch.vault.to_json(), "fabricName": item.fabric, "containerName": item.container,
        "protectedItemName": item.name, "correlationId": child_key(batch.key, item.name), "batch": batch.key,
    }
    workload = Workload.of_item(item.name)
    if batch.properties is not None:
        keep_all = workload is not None and workload.is_database
        document["properties"] = {
            name: value for name, value in batch.properties.items() if keep_all or name not in _DATABASE_ONLY
        }
    if batch.retention_days is not None:
        document["retentionDays"] = batch.retention_days
    return document


def child_request(
    batch: BatchRequest, item: ListedItem, *, settings: Settings, requested_at: datetime
) -> BackupRequest:
    """The item's request, checked as trigger_backup will check it; ``RequestRejected`` if it cannot be made.

    Its defaults (an expiry in days) count from when the batch was asked, not from when the
    item is released, so that the message is the same however often it is built.
    """
    document = child_document(batch, item)
    key = str(document["correlationId"])
    return parse_request(document, settings=settings, now=requested_at, fallback_correlation_id=key)


def child_message(request: BackupRequest) -> str:
    """The request message of an item of a batch: names, properties completed, its key and the batch's."""
    document = {
        **request.item.to_json(), "properties": dict(request.properties), "correlationId": request.correlation_id,
        "batch": request.batch,
    }
    return json.dumps(document, separators=(",", ":"))


def release_at(index: int, release_from: datetime, per_minute: int) -> datetime:
    """When the batch's ``index``-th request (from 0) may run: evenly spaced at the pace."""
    return release_from + timedelta(seconds=60 * index / per_minute)


def release_delay(at: datetime, now: datetime) -> int:
    """The visibility delay that makes a message sent ``now`` appear at ``at``: never early."""
    return max(0, min(MAX_QUEUE_DELAY_SECONDS, math.ceil((at - now).total_seconds())))


# --- the summary --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChildOutcome:
    """How one item of a batch ended, as its own result says (or why it never started)."""

    status: str
    protected_item_id: str | None = None
    job_id: str | None = None
    error_code: str | None = None
    friendly_name: str | None = None
    """Only for names not found: there is no item id to name them by."""

    def to_json(self) -> dict[str, Any]:
        document = {
            "protectedItemId": self.protected_item_id, "friendlyName": self.friendly_name, "status": self.status,
            "jobId": self.job_id, "errorCode": self.error_code,
        }
        return {key: value for key, value in document.items() if value is not None}


def outcome_of(result: str) -> ChildOutcome:
    """An item's outcome as its own result message tells it."""
    document = json.loads(result)
    error = document.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return ChildOutcome(
        status=str(document.get("status")), protected_item_id=_optional_text(document.get("protectedItemId")),
        job_id=_optional_text(document.get("jobId")), error_code=_optional_text(code),
    )


def _optional_text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def count_by_status(outcomes: Iterable[ChildOutcome]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts


def batch_status(outcomes: Sequence[ChildOutcome]) -> ResultStatus:
    """Succeeded when every item did, Failed when none did, else PartiallySucceeded."""
    succeeded = sum(outcome.status in SUCCESSFUL for outcome in outcomes)
    if outcomes and succeeded == len(outcomes):
        return ResultStatus.SUCCEEDED
    return ResultStatus.FAILED if succeeded == 0 else ResultStatus.PARTIALLY_SUCCEEDED


def summary(
    batch: BatchRequest,
    outcomes: Sequence[ChildOutcome],
    *,
    selected: int,
    requested_at: datetime,
    now: datetime,
    status: ResultStatus | None = None,
    error: ErrorInfo | None = None,
) -> str:
    """The batch's own result: counts by status and every item, or as many as a message holds.

    Items that did not succeed are listed first, so that what needs attention is never cut; when
    the list does not fit, the successful ones at its end are left out (``itemsOmitted``): each
    item's own result, on the results queue and in the ledger under its key, has the detail.
    """
    ordered = sorted(outcomes, key=lambda outcome: outcome.status in SUCCESSFUL)
    document: dict[str, Any] = {
        "schemaVersion": RESULT_SCHEMA_VERSION,
        "kind": "batch",
        "status": (status or batch_status(outcomes)).value,
        "correlationId": batch.key,
        "vaultId": batch.vault.id,
        "selected": selected,
        "counts": count_by_status(outcomes),
        "items": [outcome.to_json() for outcome in ordered],
        "error": error.to_json() if error else None,
        "request": batch.to_json(),
        "timings": {
            "requestedAt": format_instant(requested_at), "completedAt": format_instant(now),
            "elapsedSeconds": round((now - requested_at).total_seconds(), 3),
        },
    }
    return _fitted(document)


def _fitted(document: dict[str, Any]) -> str:
    text = _dump(document)
    if len(text.encode()) <= _MAX_SUMMARY_BYTES:
        return text
    items: list[dict[str, Any]] = document["items"]
    kept_low, kept_high = 0, len(items)  # the most items that fit lies in [low, high)
    while kept_high - kept_low > 1:
        middle = (kept_low + kept_high) // 2
        if len(_dump({**document, "items": items[:middle], "itemsOmitted": len(items)}).encode()) <= _MAX_SUMMARY_BYTES:
            kept_low = middle
        else:
            kept_high = middle
    return _dump({**document, "items": items[:kept_low], "itemsOmitted": len(items) - kept_low})


def _dump(document: dict[str, Any]) -> str:
    return json.dumps({key: value for key, value in document.items() if value is not None}, separators=(",", ":"))
