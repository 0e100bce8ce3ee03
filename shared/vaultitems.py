"""A vault's protected items as ``Backup Protected Items - List`` returns them, read into typed values.

Pure: a page's JSON in, ``ListedItem`` values and the ``nextLink`` out. What a batch needs of an
item is where it lives (fabric, container, name: the URI names of Backups - Trigger) and what a
selection matches on (friendly name, management type, policy). The id is read once, here: the
container and fabric are its ``protectionContainers`` and ``backupFabrics`` segments (the
official example's id has no fabric segment at all: the fabric is then ``Azure``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.errors import json_objects

__all__ = ["ItemsPage", "ListedItem", "read_items_page"]

DEFAULT_FABRIC = "Azure"


@dataclass(frozen=True)
class ListedItem:
    name: str
    """``protectedItemName`` exactly as listed, e.g. ``VM;iaasvmcontainerv2;rg;vm1``."""
    container: str
    fabric: str
    friendly_name: str
    backup_management_type: str | None
    policy_name: str | None
    """The backup policy's name; None when the item has none (protection stopped)."""


@dataclass(frozen=True)
class ItemsPage:
    items: tuple[ListedItem, ...]
    next_link: str | None
    unreadable: int = 0
    """Entries without an id segment or name to address them by: they cannot be backed up by name."""


def read_items_page(document: Mapping[str, Any]) -> ItemsPage:
    items: list[ListedItem] = []
    unreadable = 0
    for entry in json_objects(document.get("value")):
        item = _listed_item(entry)
        if item is None:
            unreadable += 1
        else:
            items.append(item)
    next_link = document.get("nextLink")
    return ItemsPage(tuple(items), next_link if isinstance(next_link, str) and next_link else None, unreadable)


def _listed_item(entry: Mapping[str, Any]) -> ListedItem | None:
    name, item_id = entry.get("name"), entry.get("id")
    properties = entry.get("properties")
    if not isinstance(name, str) or not name or not isinstance(item_id, str):
        return None
    properties = properties if isinstance(properties, dict) else {}
    container = _segment_after(item_id, "protectionContainers")
    if container is None:
        return None
    friendly = properties.get("friendlyName")
    return ListedItem(
        name=name,
        container=container,
        fabric=_segment_after(item_id, "backupFabrics") or DEFAULT_FABRIC,
        friendly_name=friendly if isinstance(friendly, str) and friendly else name.rsplit(";", 1)[-1],
        backup_management_type=_text(properties.get("backupManagementType")),
        policy_name=_policy_name(properties),
    )


def _segment_after(item_id: str, marker: str) -> str | None:
    segments = item_id.split("/")
    for position, segment in enumerate(segments[:-1]):
        if segment.lower() == marker.lower() and segments[position + 1]:
            return segments[position + 1]
    return None


def _policy_name(properties: Mapping[str, Any]) -> str | None:
    named = _text(properties.get("policyName"))
    if named:
        return named
    policy_id = _text(properties.get("policyId"))
    return _segment_after(policy_id, "backupPolicies") if policy_id else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None
