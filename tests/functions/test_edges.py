"""Edges of delivery and of the wire: redelivered follow-ups, queue metadata, URL encoding, wait bounds."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

import poll_status
import trigger_backup
from tests.fakes import ARM, Reply
from tests.functions.harness import (
    JOB_GET,
    JOB_LIST,
    OPERATION_STATUS,
    POST_BACKUP,
    SUBSCRIPTION,
    VM_NAMES,
    App,
    accepted,
    cloud_error,
    job,
    job_list,
    listed_job,
    operation,
    script_success,
)

VM_REQUEST = json.dumps({**VM_NAMES, "correlationId": "edge-1"})


def test_redelivered_trigger_follow_up_looks_for_the_job_before_posting_again() -> None:
    app = App()
    app.transport.on("POST", POST_BACKUP, cloud_error(503, "ServiceUnavailable", "busy", retry_after="10"))
    assert app.deliver(trigger_backup.main, VM_REQUEST) is None
    follow_up = app.sender.take()
    assert json.loads(follow_up.text)["phase"] == "trigger"
    app.transport.on("GET", JOB_LIST, job_list(
        listed_job("found-job", friendly_name="v1win2012r", start_time="2026-11-26T12:00:05Z"),
    ))
    app.clock.advance(follow_up.delay_seconds)

    # The first delivery of this follow-up died mid-way (it may have POSTed): the host delivers it again.
    result = app.deliver(poll_status.main, follow_up.text, dequeue_count=2, insertion_time=app.clock())

    assert result is None
    assert len(app.posts) == 1, "only the first, refused POST"
    next_step = json.loads(app.sender.take().text)
    assert next_step["phase"] == "job"
    assert next_step["jobId"] == "found-job"
    assert next_step["correlationId"] == "edge-1"


def test_redelivered_request_with_a_naive_insertion_time_still_finds_its_job() -> None:
    app = App()
    script_success(app.transport)
    app.transport.on("GET", JOB_LIST, job_list(
        listed_job("the-job", friendly_name="v1win2012r", start_time="2026-11-26T11:59:00Z"),
    ))

    result = app.run(VM_REQUEST, dequeue_count=2, insertion_time=datetime(2026, 11, 26, 11, 58))

    assert result["status"] == "Succeeded"
    assert app.posts == []


def test_names_become_single_percent_encoded_segments() -> None:
    app = App()
    script_success(app.transport)
    names = {
        "subscriptionId": SUBSCRIPTION.upper(), "resourceGroupName": "rg-ü(prod).eu", "vaultName": "vault-01",
        "containerName": "IaasVMContainer;iaasvmcontainerv2;rg-ü(prod).eu;web vm",
        "protectedItemName": "VM;iaasvmcontainerv2;rg-ü(prod).eu;web vm",
    }

    result = app.run(json.dumps(names))

    assert result["status"] == "Succeeded"
    rg = "rg-%C3%BC%28prod%29.eu"
    assert app.posts == [
        f"{ARM}/subscriptions/{SUBSCRIPTION}/resourceGroups/{rg}/providers/Microsoft.RecoveryServices/vaults/vault-01"
        f"/backupFabrics/Azure/protectionContainers/IaasVMContainer;iaasvmcontainerv2;{rg};web%20vm"
        f"/protectedItems/VM;iaasvmcontainerv2;{rg};web%20vm/backup?api-version=2024-04-01"
    ]
    assert result["protectedItemId"].startswith(f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-ü(prod).eu/")


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        pytest.param("0", 5, id="floor"),
        pytest.param("2", 5, id="below-floor"),
        pytest.param("soon", 30, id="unreadable-means-absent"),
        pytest.param("-3", 30, id="negative-means-absent"),
        pytest.param("59.2", 60, id="fractions-round-up"),
    ],
)
def test_retry_after_on_the_202_is_clamped_to_a_floor(retry_after: str, expected: int) -> None:
    app = App()
    script_success(app.transport)
    app.transport.routes.clear()
    app.transport.on("POST", POST_BACKUP, Reply(202, headers={**accepted().headers, "Retry-After": retry_after}))
    app.transport.on("GET", OPERATION_STATUS, operation("Succeeded"))
    app.transport.on("GET", JOB_GET, job("Completed"))

    app.run(VM_REQUEST)

    assert app.delays[0] == expected


def test_a_wait_never_exceeds_the_queues_seven_days() -> None:
    app = App(JOB_TIMEOUT_SECONDS=str(30 * 24 * 3600))
    app.transport.on("POST", POST_BACKUP, accepted())
    app.transport.on("GET", OPERATION_STATUS, operation("Succeeded"))
    app.transport.on("GET", JOB_GET, job("InProgress", headers={"Retry-After": str(10 * 24 * 3600)}),
                     job("Completed"))

    result = app.run(VM_REQUEST)

    assert result["status"] == "Succeeded"
    assert app.delays[2] == 7 * 24 * 3600


def test_trigger_retry_wait_never_passes_the_deadline() -> None:
    app = App(OPERATION_TIMEOUT_SECONDS="100")
    app.transport.on("POST", POST_BACKUP, cloud_error(503, "ServiceUnavailable", "busy", retry_after="3600"))
    app.transport.on("GET", JOB_LIST, Reply(200, {"value": []}))

    result = app.run(VM_REQUEST)

    assert result["status"] == "Failed"
    assert app.delays == [100]
    assert len(app.posts) == 2


def test_messages_from_the_host_keep_their_delivery_metadata() -> None:
    app = App()
    script_success(app.transport)
    inserted = app.clock() - timedelta(seconds=42)

    app.run(VM_REQUEST, insertion_time=inserted)

    first = app.invocations[0].message
    assert first.dequeue_count == 1
    assert first.insertion_time == inserted
    assert app.transport.calls("GET", JOB_LIST) == [], "a first delivery never lists jobs"
