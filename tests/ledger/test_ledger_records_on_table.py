"""The ledger's own records, at their fullest, stored in a table and read back unchanged."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.ledger import Fingerprint, ItemRecord, Ledger, RequestRecord
from shared.ledger_table import TableStore

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 27, 12, 0, 0, 123456, tzinfo=UTC)
ITEM = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-backup/providers/"
    "Microsoft.RecoveryServices/vaults/vault-prod/backupFabrics/Azure/protectionContainers/"
    "IaasVMContainer;iaasvmcontainerv2;rg-app;vm-web01/protectedItems/VM;iaasvmcontainerv2;rg-app;vm-web01"
)
FINGERPRINT = Fingerprint("ab" * 32, NOW + timedelta(days=30))


def test_a_finished_request_record_with_a_large_result_round_trips(table_store: TableStore) -> None:
    ledger = Ledger(table_store)
    result = json.dumps({"status": "Succeeded", "padding": "x" * 60_000})
    record = RequestRecord(
        key="change/4711#a?b", item_id=ITEM, fingerprint=FINGERPRINT, step=7, written_by=6, holder="msg-1",
        phase="job", created_at=NOW, posting_since=NOW + timedelta(seconds=1), pending='{"phase": "job"}',
        pending_delay=60, next_look_at=NOW + timedelta(minutes=5), job_id="6f4b3c1e", status="Succeeded",
        result=result, result_sent=True,
    )

    created = ledger.create_request(record)
    read = ledger.request(record.key)

    assert read == replace(record, etag=created.etag)


def test_an_item_record_round_trips_and_its_next_version_replaces_it(table_store: TableStore) -> None:
    ledger = Ledger(table_store)
    first = ledger.save_item(ItemRecord(ITEM, "change-4711", NOW, FINGERPRINT, "2026-11-27", 1))

    second = ledger.save_item(replace(first, active_key=None, active_since=None, active_fingerprint=None, day_count=2))

    assert ledger.item(ITEM) == second
    assert second.etag != first.etag
