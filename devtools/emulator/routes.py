"""ARM path routing: split the raw path on `/` first, then percent-decode each segment, then match templates.

Decoding after splitting is what makes a name with an encoded `/` (%2F) one segment that names nothing, and a
name with a raw `/` extra segments that match no route: both end in 404 rather than in another resource.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

_VAULT = ("subscriptions", "{subscription}", "resourcegroups", "{resource_group}",
          "providers", "microsoft.recoveryservices", "vaults", "{vault}")
_ITEM = (*_VAULT, "backupfabrics", "{fabric}", "protectioncontainers", "{container}", "protecteditems", "{item}")

# (kind, method, template); literal segments are compared case-insensitively, as ARM does.
_ROUTES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("trigger", "POST", (*_ITEM, "backup")),
    ("operation_status", "GET", (*_ITEM, "operationsstatus", "{operation}")),
    ("operation_results", "GET", (*_ITEM, "operationresults", "{operation}")),
    ("job_get", "GET", (*_VAULT, "backupjobs", "{job}")),
    ("job_list", "GET", (*_VAULT, "backupjobs")),
    ("items_list", "GET", (*_VAULT, "backupprotecteditems")),
    ("backup_status", "POST", ("subscriptions", "{subscription}", "providers", "microsoft.recoveryservices",
                               "locations", "{location}", "backupstatus")),
    ("vm_get", "GET", ("subscriptions", "{subscription}", "resourcegroups", "{resource_group}", "providers",
                       "microsoft.compute", "virtualmachines", "{vm}")),
)


@dataclass(frozen=True)
class Route:
    kind: str
    method: str
    params: dict[str, str]

    def __getitem__(self, name: str) -> str:
        return self.params[name]


def segments(raw_path: str) -> list[str] | None:
    """The decoded segments of an absolute path, or None when a segment is empty (`//`, trailing `/`)."""
    parts = raw_path.split("/")
    if parts[0] != "" or len(parts) < 2:
        return None
    decoded = [unquote(part, errors="strict") if "%" in part else part for part in parts[1:]]
    return None if "" in decoded else decoded


def match(raw_path: str) -> Route | None:
    try:
        parts = segments(raw_path)
    except UnicodeDecodeError:
        return None
    if parts is None:
        return None
    for kind, method, template in _ROUTES:
        if len(template) != len(parts):
            continue
        params: dict[str, str] = {}
        for pattern, part in zip(template, parts, strict=True):
            if pattern.startswith("{"):
                params[pattern[1:-1]] = part
            elif pattern != part.lower():
                break
        else:
            return Route(kind, method, params)
    return None


def is_under_provider(raw_path: str) -> bool:
    parts = [p.lower() for p in raw_path.split("/")]
    return "providers" in parts and "microsoft.recoveryservices" in parts
