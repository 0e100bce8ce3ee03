"""A batch's own rows in the ledger: what each listed page selected, and how each item ended.

They live in one partition per batch (``b-`` and a digest of the batch key), apart from the
request records, so that the batch reads all of them with one query and no record is written
by more than one item:

- ``p-{page}``: one per listed page, written once (a create) by the step that listed it. It
  holds the page's selected items in their release order and the page's ``nextLink``, so a
  step that is delivered again reuses what was listed, even if the vault changed meanwhile.
- ``c-{digest of the item's key}``: one per item, written once by that item's own request when
  its result is recorded (``shared.carry``). No row is shared by the items.

A page's entries are zlib-compressed JSON (item names repeat their prefixes), split over
several binary fields when one would exceed the 64 KiB a field holds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.batches import ChildOutcome
from shared.errors import ErrorInfo
from shared.ledger_store import Fields, LedgerStore, RecordExists, RecordKey, Stored
from shared.vaultitems import ListedItem

__all__ = ["BatchContents", "BatchRows", "ListedPage", "PageEntry"]

_PART_BYTES = 60 * 1024
_MAX_PARTS = 15  # a Table entity holds 1 MiB


@dataclass(frozen=True)
class PageEntry:
    """One selected item of a listed page."""

    index: int
    """Its place in the batch, from 0: its release time follows from it."""
    fabric: str
    container: str
    name: str
    friendly_name: str
    refused: ErrorInfo | None = None
    """Why no request could be made for it (its names or the properties for its workload): nothing is sent."""

    def as_item(self) -> ListedItem:
        return ListedItem(self.name, self.container, self.fabric, self.friendly_name, None, None)

    def to_json(self) -> list[Any]:
        values: list[Any] = [self.index, self.fabric, self.container, self.name, self.friendly_name]
        return values if self.refused is None else [*values, self.refused.code, self.refused.message]

    @classmethod
    def from_json(cls, values: list[Any]) -> PageEntry:
        index, fabric, container, name, friendly = values[:5]
        refused = ErrorInfo(str(values[5]), str(values[6])) if len(values) >= 7 else None
        return cls(int(index), str(fabric), str(container), str(name), str(friendly), refused)


@dataclass(frozen=True)
class ListedPage:
    number: int
    entries: tuple[PageEntry, ...]
    next_link: str | None


@dataclass(frozen=True)
class BatchContents:
    pages: tuple[ListedPage, ...]
    outcomes: Mapping[str, ChildOutcome]
    """By the item's request key."""


class BatchRows:
    def __init__(self, store: LedgerStore) -> None:
        self._store = store

    def page(self, batch_key: str, number: int) -> ListedPage | None:
        stored = self._store.read(_page_key(batch_key, number))
        return None if stored is None else _page(stored)

    def save_page(self, batch_key: str, page: ListedPage) -> ListedPage:
        """Record a listed page; if an earlier delivery recorded it already, that one is the page."""
        try:
            self._store.create(_page_key(batch_key, page.number), _page_fields(page))
        except RecordExists:
            stored = self.page(batch_key, page.number)
            if stored is None:  # deleted by the retention sweep in between: nothing else can delete it
                raise
            return stored
        return page

    def record_outcome(self, batch_key: str, child_key: str, outcome: ChildOutcome) -> None:
        """How one item ended; written once (a second writer found the same outcome recorded)."""
        fields: Fields = {
            "Kind": "outcome", "ChildKey": child_key, "Status": outcome.status, "ItemId": outcome.protected_item_id,
            "JobId": outcome.job_id, "ErrorCode": outcome.error_code,
        }
        # Exists: the same item's result, recorded by an earlier delivery of the same step.
        with contextlib.suppress(RecordExists):
            self._store.create(RecordKey(_partition(batch_key), f"c-{_digest(child_key)}"), fields)

    def contents(self, batch_key: str) -> BatchContents:
        """Every page and outcome of the batch: one partition query."""
        pages: list[ListedPage] = []
        outcomes: dict[str, ChildOutcome] = {}
        for row, stored in self._store.read_partition(_partition(batch_key)):
            if row.startswith("p-"):
                pages.append(_page(stored))
            elif row.startswith("c-"):
                fields = stored.fields
                outcomes[str(fields["ChildKey"])] = ChildOutcome(
                    status=str(fields["Status"]), protected_item_id=_text(fields, "ItemId"),
                    job_id=_text(fields, "JobId"), error_code=_text(fields, "ErrorCode"),
                )
        return BatchContents(tuple(sorted(pages, key=lambda page: page.number)), outcomes)


def _partition(batch_key: str) -> str:
    return f"b-{_digest(batch_key)}"


def _page_key(batch_key: str, number: int) -> RecordKey:
    return RecordKey(_partition(batch_key), f"p-{number:06d}")


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _page_fields(page: ListedPage) -> Fields:
    packed = zlib.compress(json.dumps([entry.to_json() for entry in page.entries], separators=(",", ":")).encode())
    parts = [packed[start:start + _PART_BYTES] for start in range(0, len(packed), _PART_BYTES)] or [b""]
    if len(parts) > _MAX_PARTS:
        raise ValueError(f"page {page.number} lists more items than a ledger row holds")
    fields: dict[str, Any] = {"Kind": "page", "Page": page.number, "Count": len(page.entries),
                              "NextLink": page.next_link, "Parts": len(parts)}
    fields.update({f"Entries{n}": part for n, part in enumerate(parts)})
    return fields


def _page(stored: Stored) -> ListedPage:
    fields = stored.fields
    packed = b"".join(_bytes(fields, f"Entries{n}") for n in range(int(_number(fields, "Parts"))))
    entries = json.loads(zlib.decompress(packed)) if packed else []
    return ListedPage(
        number=int(_number(fields, "Page")),
        entries=tuple(PageEntry.from_json(values) for values in entries),
        next_link=_text(fields, "NextLink"),
    )


def _text(fields: Mapping[str, object], name: str) -> str | None:
    value = fields.get(name)
    return value if isinstance(value, str) else None


def _bytes(fields: Mapping[str, object], name: str) -> bytes:
    value = fields.get(name)
    return value if isinstance(value, bytes) else b""


def _number(fields: Mapping[str, object], name: str) -> int:
    value = fields.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
