"""backup_api with batches: recorded under the batch key and queued; the GET shows progress, then the summary."""

from __future__ import annotations

import json
from typing import Any

from tests.functions.http_harness import COLLECTION, FrontDoor
from tests.unit.builders import RG, SUB, VAULT
from tests.unit.test_batchflow import MIXED, FakeVault

VAULT_ID = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/{VAULT}"


def batch(key: str = "http-batch", **select: Any) -> dict[str, Any]:
    return {"subscriptionId": SUB, "resourceGroupName": RG, "vaultName": VAULT,
            "select": select or {"backupManagementType": "AzureIaasVM"}, "correlationId": key}


def door() -> FrontDoor:
    front = FrontDoor(settings={"BATCH_TRIGGERS_PER_MINUTE": "60"})
    FakeVault(MIXED, transport=front.app.transport)
    return front


def test_a_batch_is_recorded_queued_followed_while_it_runs_and_answered_with_its_summary() -> None:
    front = door()

    posted = front.post(batch())

    assert (posted.status, posted.location) == (202, f"{COLLECTION}/http-batch")
    assert posted.json["vaultId"] == VAULT_ID and posted.json["status"] == "Running"
    [queued] = (json.loads(text) for text in front.queued_requests)
    assert queued["select"] == {"backupManagementType": "AzureIaasVM"} and queued["correlationId"] == "http-batch"
    record = front.record("http-batch")
    assert record is not None and record.item_id == VAULT_ID
    # Listed and released: the GET counts what is selected and sent, and what has ended.
    while front.step():
        running = front.follow(posted.location)
        if running.status == 202 and running.json.get("ended"):
            break
    assert running.status == 202
    assert (running.json["kind"], running.json["selected"], running.json["released"]) == ("batch", 6, 6)
    assert 0 < running.json["ended"] == sum(running.json["counts"].values()) <= 6
    front.run_queues(limit=500)
    final = front.follow(posted.location)
    assert final.status == 200
    assert final.json["kind"] == "batch" and final.json["counts"] == {"Succeeded": 6}
    assert final.text in front.results, "the answer is the summary the results queue got"


def test_the_same_batch_posted_again_starts_nothing_new() -> None:
    front = door()
    first = front.post(batch())
    front.step()  # trigger_backup took it over and listed its first page

    again = front.post(batch())

    assert (again.status, again.location) == (202, first.location)
    assert not any('"select"' in text for text in front.queued_requests)
    front.run_queues(limit=500)
    assert len(front.app.posts) == 6
    assert sum('"kind":"batch"' in text for text in front.results) == 1


def test_a_batch_key_reused_for_another_selection_is_refused() -> None:
    front = door()
    front.post(batch())

    reused = front.post(batch(policyName="Gold"))

    assert (reused.status, reused.json["error"]["code"]) == (409, "KeyReused")


def test_a_malformed_batch_is_refused_naming_the_field() -> None:
    front = door()

    refused = front.post(batch(policyName=""))

    assert (refused.status, refused.json["error"]["target"]) == (400, "select.policyName")
    assert front.queued_requests == []
