"""The rules a generated message can break, as the app publishes them, and the draw that says which one.

A message that breaks one must be refused with nothing sent, whatever the parser's details: the
README promises it (names with path syntax or control characters, the allow-list, a queue
message's 64 KiB, printable-ASCII URLs on the ARM host, the ARM events acted on), or the published
request schema does (types, patterns, lengths, enums), ``null`` read as "absent", as the README's
defaults do. A message that breaks none may be valid. The rules are written from those texts,
not from the parser, so that the parser is tested against them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from tests.unit.builders import NOW, SUB

__all__ = [
    "QUEUE_MESSAGE_LIMIT", "Hostile", "correlation_rule", "event_rule", "location_rule", "name_rule",
    "property_rule", "resource_id_rule", "splice_rule",
]

QUEUE_MESSAGE_LIMIT = 64 * 1024

_SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "backup-request.schema.json").read_text(encoding="utf-8")
)
_FIELDS = _SCHEMA["properties"]
_BACKUP_NAME = _SCHEMA["$defs"]["backupName"]
_PROPERTY_ENUMS = {key: set(_FIELDS["properties"]["properties"][key]["enum"]) for key in ("objectType", "backupType")}
_CORRELATION_ID = re.compile(_FIELDS["correlationId"]["pattern"])


@dataclass(frozen=True)
class Hostile:
    body: bytes
    refuse: str | None
    """The rule the body breaks, so that it must be refused with nothing sent; None when it may be valid."""


# --- the rules ------------------------------------------------------------------------------------


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def name_rule(field: str, value: Any) -> str | None:
    """The rule a value of a name field breaks, if any (README "Security", the schema's name patterns)."""
    if value is None and field == "fabricName":
        return None  # absent: the default fabric
    if not isinstance(value, str):
        return f"{field} is not a string"
    if not _encodable(value):
        return f"{field} holds a lone surrogate (no URL can carry it)"
    if value in {".", ".."}:
        return f"{field} is a dot segment"
    if field == "subscriptionId":
        return None if value.lower() == SUB else "subscriptionId is outside ALLOWED_SUBSCRIPTIONS"
    schema = _FIELDS[field] if field in {"resourceGroupName", "vaultName", "fabricName"} else _BACKUP_NAME
    if not schema.get("minLength", 1) <= len(value) <= schema.get("maxLength", len(value)):
        return f"{field} has a length outside the schema's"
    if re.search(schema["pattern"], value) is None:
        return f"{field} breaks the schema's pattern (path syntax, control characters)"
    return None


def property_rule(key: str, value: Any) -> str | None:
    if value is None or key == "unknown":
        return None  # absent, or a member the schema refuses but the README does not promise to refuse
    if key in _PROPERTY_ENUMS:
        known = isinstance(value, str) and value in _PROPERTY_ENUMS[key]
        return None if known else f"properties.{key} is not one of the schema's values"
    if key == "enableCompression":
        return None if isinstance(value, bool) else "properties.enableCompression is not a boolean"
    if key == "retentionDays":
        limits = _FIELDS["retentionDays"]
        in_range = isinstance(value, int) and not isinstance(value, bool) and (
            limits["minimum"] <= value <= limits["maximum"])
        return None if in_range else "retentionDays is not a whole number of days in range"
    return None if _future_instant(value) else "properties.recoveryPointExpiryTimeInUTC is not a future instant"


def _future_instant(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return False
    return moment.tzinfo is None or moment > NOW  # a time without a zone: taken as UTC by the API, let it be


def correlation_rule(value: Any) -> str | None:
    if value is None:
        return None
    ok = isinstance(value, str) and _CORRELATION_ID.search(value) is not None and "\n" not in value
    return None if ok else "correlationId is not 1-200 printable ASCII characters"


# The segments of an item id that are names (split on "/"; segment 0 is the empty one before the first "/").
_ID_NAMES = {4: "resourceGroupName", 8: "vaultName", 10: "fabricName", 12: "containerName", 14: "protectedItemName"}


def splice_rule(good: str, cut: int, syntax: str) -> str | None:
    """The rule broken by ``syntax`` inserted into the item id ``good`` at ``cut``."""
    if cut == len(good) and syntax == "/":
        return None  # a trailing slash: Azure prints ids without one, and accepts one
    if any(char in syntax for char in "/\\?#%") or not all(" " <= char != "\x7f" for char in syntax):
        return "protectedItemId holds path syntax or control characters"
    segment = good.count("/", 0, cut)  # the segment the text joins (it holds no "/")
    if segment not in _ID_NAMES:
        return "protectedItemId's fixed segments or subscription are altered"
    return name_rule(_ID_NAMES[segment], (good[:cut] + syntax + good[cut:]).split("/")[segment])


_RESOURCE_ID = re.compile(_FIELDS["resourceId"]["pattern"])
_LOCATION = re.compile(_FIELDS["location"]["pattern"])


def resource_id_rule(value: Any) -> str | None:
    """The rule a resourceId breaks: a VM's id (the schema's pattern), in the allowed subscription."""
    if not isinstance(value, str):
        return "resourceId is not a string"
    if not _encodable(value) or "\n" in value:
        return "resourceId holds a lone surrogate or a line break"
    trimmed = value[:-1] if value.endswith("/") else value  # a trailing slash: let it be, as for item ids
    if _RESOURCE_ID.search(trimmed) is None:
        return "resourceId is not a virtual machine's id"
    return None if trimmed.split("/")[2].lower() == SUB else "resourceId is outside ALLOWED_SUBSCRIPTIONS"


def location_rule(value: Any) -> str | None:
    if value is None:
        return None
    ok = isinstance(value, str) and _LOCATION.search(value) is not None and "\n" not in value
    return None if ok else "location is not a region name"


_ACTED_ON = {"Microsoft.Resources.ResourceWriteSuccess", "Microsoft.Resources.ResourceActionSuccess"}


def event_rule(event_type: str, operation: Any) -> str | None:
    """README "ARM events": only writes and actions that succeeded, never this app's own kind of operation."""
    if event_type not in _ACTED_ON:
        return "an ARM event of a type never acted on"
    if isinstance(operation, str) and operation.lower().startswith("microsoft.recoveryservices/"):
        return "an ARM event of a Recovery Services operation"
    return None
