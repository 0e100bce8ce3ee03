"""The request model: a decoded document checked into a ``BackupRequest``, and back to JSON.

``parse_request`` is the single gate: names, allow-lists, properties and defaults are all
settled here, so everything after it holds a request that can be sent as is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from shared.armid import ProtectedItemRef, VaultRef
from shared.errors import RequestRejected
from shared.settings import Settings
from shared.workloads import MAX_RETENTION_DAYS, Expiry, build_properties

__all__ = [
    "BackupRequest", "check_allowed", "correlation_id_of", "format_instant", "is_correlation_id", "parse_instant",
    "parse_request", "request_properties",
]

_NAME_FIELDS = (
    "subscriptionId", "resourceGroupName", "vaultName", "fabricName", "containerName", "protectedItemName",
)
_TOP_LEVEL_KEYS = {*_NAME_FIELDS, "protectedItemId", "properties", "correlationId", "retentionDays", "batch"}
_CORRELATION_ID = re.compile(r"[\x21-\x7e]{1,200}")  # printable ASCII: it travels in headers and logs
DEFAULT_FABRIC = "Azure"


@dataclass(frozen=True)
class BackupRequest:
    item: ProtectedItemRef
    properties: Mapping[str, Any] = field(hash=False)
    correlation_id: str
    batch: str | None = None
    """The key of the batch that started this request (``shared.batches``); its result names it."""

    def body(self) -> dict[str, Any]:
        """The REST body of Backups - Trigger."""
        return {"properties": dict(self.properties)}

    def to_json(self) -> dict[str, Any]:
        document = {
            **self.item.to_json(),
            "protectedItemId": self.item.id,
            "properties": dict(self.properties),
            "correlationId": self.correlation_id,
        }
        return document if self.batch is None else {**document, "batch": self.batch}

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> BackupRequest:
        """A request this app wrote earlier (names are checked again: the queue is not trusted)."""
        item = ProtectedItemRef.of(*(document.get(name) for name in _NAME_FIELDS))
        properties = document.get("properties")
        correlation_id = document.get("correlationId")
        if not isinstance(properties, dict) or not isinstance(correlation_id, str):
            raise RequestRejected("request", "properties and correlationId are required")
        return cls(item=item, properties=properties, correlation_id=correlation_id, batch=_batch(document))


def parse_request(
    document: Mapping[str, Any], *, settings: Settings, now: datetime, fallback_correlation_id: str
) -> BackupRequest:
    """The request in ``document``, checked and completed; ``RequestRejected`` names what is wrong."""
    unknown = sorted(set(document) - _TOP_LEVEL_KEYS)
    if unknown:
        raise RequestRejected(unknown[0], f"is not a field of a backup request ({', '.join(sorted(_TOP_LEVEL_KEYS))})")
    item = _item(document)
    check_allowed(item, settings)
    properties = request_properties(item.item, document, now)
    correlation_id = correlation_id_of(document, fallback_correlation_id)
    return BackupRequest(item=item, properties=properties, correlation_id=correlation_id, batch=_batch(document))


def request_properties(item_name: str, document: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The trigger body's properties from a request's ``properties`` and ``retentionDays``, for the item's workload."""
    given = document.get("properties", {})
    if not isinstance(given, dict):
        raise RequestRejected("properties", "must be a JSON object")
    expiry = Expiry(
        instant=_optional_instant(given.get("recoveryPointExpiryTimeInUTC")),
        retention_days=_retention_days(document.get("retentionDays")),
    )
    if expiry.instant is not None and expiry.retention_days is not None:
        raise RequestRejected("retentionDays", "give either retentionDays or properties.recoveryPointExpiryTimeInUTC")
    without_expiry = {key: value for key, value in given.items() if key != "recoveryPointExpiryTimeInUTC"}
    return build_properties(item_name, without_expiry, expiry, now)


def parse_instant(value: str) -> datetime:
    """An ISO 8601 instant as aware UTC; a time without offset is taken as UTC, as the REST API does."""
    parsed = datetime.fromisoformat(value.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 lies before datetime.min in UTC
        raise ValueError(f"{value!r} is out of range") from None


def format_instant(value: datetime | None) -> str | None:
    """An instant as this app writes it: ISO 8601 UTC with a ``Z``."""
    return None if value is None else value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _item(document: Mapping[str, Any]) -> ProtectedItemRef:
    named = [name for name in _NAME_FIELDS if name in document]
    if "protectedItemId" in document:
        if named:
            raise RequestRejected(named[0], "give either protectedItemId or the names, not both")
        return ProtectedItemRef.parse(document["protectedItemId"])
    missing = [name for name in _NAME_FIELDS if name not in document and name != "fabricName"]
    if missing:
        raise RequestRejected(missing[0], "is required (or give protectedItemId)")
    return ProtectedItemRef.of(
        document["subscriptionId"],
        document["resourceGroupName"],
        document["vaultName"],
        document.get("fabricName", DEFAULT_FABRIC),
        document["containerName"],
        document["protectedItemName"],
    )


def check_allowed(item: ProtectedItemRef | VaultRef, settings: Settings) -> None:
    """``RequestRejected`` (code NotAllowed) unless the allow-lists admit the subscription and vault."""
    if settings.allowed_subscriptions and item.subscription_id.lower() not in settings.allowed_subscriptions:
        raise RequestRejected("subscriptionId", "is not in ALLOWED_SUBSCRIPTIONS", code="NotAllowed")
    vault_keys = {item.vault.lower(), f"{item.resource_group}/{item.vault}".lower()}
    if settings.allowed_vaults and not vault_keys & settings.allowed_vaults:
        raise RequestRejected("vaultName", "is not in ALLOWED_VAULTS", code="NotAllowed")


def _optional_instant(value: object) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise RequestRejected("properties.recoveryPointExpiryTimeInUTC", "must be an ISO 8601 string")
    try:
        return parse_instant(value)
    except ValueError:
        raise RequestRejected(
            "properties.recoveryPointExpiryTimeInUTC", f"is not an ISO 8601 instant: {value[:64]!r}"
        ) from None


def _retention_days(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RETENTION_DAYS:
        raise RequestRejected("retentionDays", f"must be a whole number of days from 1 to {MAX_RETENTION_DAYS}")
    return value


def is_correlation_id(value: str) -> bool:
    """1-200 printable ASCII characters, no spaces: safe in a header and on a log line."""
    return _CORRELATION_ID.fullmatch(value) is not None


def correlation_id_of(document: Mapping[str, Any], fallback: str) -> str:
    """The request's ``correlationId``, or ``fallback`` when it gives none."""
    key = _key_field(document, "correlationId", "must be 1-200 printable ASCII characters without spaces")
    return fallback if key is None else key


def _batch(document: Mapping[str, Any]) -> str | None:
    return _key_field(document, "batch", "must be a batch key: 1-200 printable ASCII characters without spaces")


def _key_field(document: Mapping[str, Any], name: str, problem: str) -> str | None:
    """An optional field holding a ledger key (``is_correlation_id``); ``problem`` says why another value is refused."""
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not is_correlation_id(value):
        raise RequestRejected(name, problem)
    return value
