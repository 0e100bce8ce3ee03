"""shared.workflow with requests by resource id and ARM events: end to end over FakeTransport and a queue."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest

from shared.followup import FollowUp, Phase
from shared.workflow import Delivery, handle_follow_up, handle_request
from tests.fakes import FakeCredential, FakeTransport, Reply
from tests.unit.builders import (
    ITEMS,
    NOW,
    OTHER_SUB,
    RG,
    SUB,
    VAULT,
    backup_request,
    backup_status_body,
    by_resource,
    item_id,
    make_settings,
    resource_target,
    result_of,
    services,
    vm_id,
)
from tests.unit.test_armevents import ACTION, OWN_TRIGGER, cloud_event, event_grid
from tests.unit.test_workflow import STATUS_QUEUE, follow_up_of, walk
from tests.unit.test_workflow import script as item_script

VM_BODY = {"id": vm_id(), "name": "v1win2012r", "location": "westeurope"}
NOT_PROTECTED = {"protectionStatus": "NotProtected", "errorCode": "UserErrorVmNotProtected",
                 "errorMessage": "The virtual machine is not protected by any vault."}


def script(
    *,
    vm: list[Reply] | None = None,
    status: list[Reply] | None = None,
    post: list[Reply] | None = None,
    job_lists: list[Reply] | None = None,
) -> FakeTransport:
    """The walk of a request by names, behind the VM's GET and Backup Status - Get."""
    transport = item_script(backup_request(), post=post, job_lists=job_lists)
    transport.on("GET", r"/virtualMachines/", *(vm or [Reply(200, body=VM_BODY)]))
    transport.on("POST", r"/backupStatus\?", *(status or [Reply(200, body=backup_status_body())]))
    return transport


def body_of(**changes: Any) -> bytes:
    return json.dumps(by_resource(**changes)).encode()


def calls(transport: FakeTransport) -> list[str]:
    """Each call as METHOD and the last literal segment of its path."""
    kinds = []
    for sent in transport.sent:
        path = urlsplit(sent.url).path
        kind = next(name for name in ("virtualMachines", "backupStatus", "operationsStatus", "backupJobs", "backup")
                    if f"/{name}" in path)
        kinds.append(f"{sent.method} {kind}")
    return kinds


def rejected_without_a_call(body: bytes, **settings: str) -> dict[str, Any]:
    transport = script()
    credential = FakeCredential()
    svc, sender, _ = services(transport, settings=make_settings(**settings), credential=credential)

    result = result_of(handle_request(body, Delivery("msg-1", 1, NOW), svc) or "")

    assert result["status"] == "Rejected"
    assert result["rawMessage"] == body.decode()
    assert transport.sent == [] and credential.scopes == [] and sender.messages == []
    return result


# --- resolved and triggered ----------------------------------------------------------------


def test_by_resource_id_with_location_asks_backup_status_then_triggers() -> None:
    transport = script()

    walked = walk(body_of(location="westeurope", correlationId="by-id"), transport)

    assert calls(transport) == ["POST backupStatus", "POST backup", "GET operationsStatus", "GET backupJobs"]
    result = walked.result
    assert result["status"] == "Succeeded"
    assert result["correlationId"] == "by-id"
    assert result["resourceId"] == vm_id()
    assert result["protectedItemId"] == item_id("vm")  # Azure's usual spelling, not Backup Status's
    assert result["request"]["containerName"] == ITEMS["vm"][0]
    assert result["request"]["properties"]["objectType"] == "IaasVMBackupRequest"
    # The trigger went to the resolved item, the first follow-up already follows its operation.
    assert urlsplit(transport.sent[1].url).path == (
        f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/{VAULT}"
        f"/backupFabrics/Azure/protectionContainers/{ITEMS['vm'][0]}/protectedItems/{ITEMS['vm'][1]}/backup"
    )
    assert follow_up_of(walked.follow_ups[0]).phase is Phase.OPERATION
    assert all(follow_up_of(message).target == resource_target(location="westeurope", correlationId="by-id")
               for message in walked.follow_ups)


def test_without_location_the_vm_is_read_first() -> None:
    transport = script(vm=[Reply(200, body={**VM_BODY, "location": "NorthEurope"})])

    walked = walk(body_of(), transport)

    assert calls(transport)[:3] == ["GET virtualMachines", "POST backupStatus", "POST backup"]
    assert "/locations/northeurope/backupStatus" in transport.sent[1].url
    assert walked.result["status"] == "Succeeded"


def test_the_resolution_costs_no_queue_message() -> None:
    svc, sender, _ = services(script())

    assert handle_request(body_of(location="westeurope"), Delivery("msg-1", 1, NOW), svc) is None

    [message] = sender.messages
    assert (message.queue, follow_up_of(message).phase) == (STATUS_QUEUE, Phase.OPERATION)


# --- resolved but not triggered ------------------------------------------------------------


def test_not_protected_fails_with_the_services_message_and_no_trigger() -> None:
    transport = script(status=[Reply(200, body=NOT_PROTECTED)])
    svc, sender, _ = services(transport)

    result = result_of(handle_request(body_of(location="westeurope", correlationId="np"), Delivery("m", 1, NOW), svc)
                       or "")

    assert result["status"] == "Failed"
    assert result["error"]["code"] == "NotProtected"
    assert result["error"]["message"] == NOT_PROTECTED["errorMessage"]
    assert (result["resourceId"], result["correlationId"]) == (vm_id(), "np")
    assert "protectedItemId" not in result
    assert result["request"] == resource_target(location="westeurope", correlationId="np").to_json()
    assert calls(transport) == ["POST backupStatus"]
    assert sender.messages == []


@pytest.mark.parametrize("code", ["ResourceNotFound", "ResourceGroupNotFound", "SubscriptionNotFound"])
def test_a_vm_that_does_not_exist_fails_with_arms_code(code: str) -> None:
    missing = Reply(404, body={"error": {"code": code, "message": "not found"}}, headers={"x-ms-request-id": "r-1"})
    transport = script(vm=[missing])
    svc, _, _ = services(transport)

    result = result_of(handle_request(body_of(), Delivery("m", 1, NOW), svc) or "")

    assert (result["status"], result["error"]["code"], result["error"]["httpStatus"]) == ("Failed", code, 404)
    assert result["error"]["requestId"] == "r-1"
    assert calls(transport) == ["GET virtualMachines"]


@pytest.mark.parametrize(
    ("settings", "target"),
    [({"ALLOWED_VAULTS": "vault-prod"}, "vaultName"), ({"ALLOWED_VAULTS": f"other-rg/{VAULT}"}, "vaultName")],
)
def test_a_resolved_vault_outside_the_allow_list_is_rejected_before_the_trigger(
    settings: dict[str, str], target: str
) -> None:
    transport = script()
    svc, sender, _ = services(transport, settings=make_settings(**settings))
    body = body_of(location="westeurope")

    result = result_of(handle_request(body, Delivery("m", 1, NOW), svc) or "")

    assert (result["status"], result["error"]["code"], result["error"]["target"]) == ("Rejected", "NotAllowed", target)
    assert result["protectedItemId"] == item_id("vm")
    assert result["resourceId"] == vm_id()
    assert result["rawMessage"] == body.decode()
    assert calls(transport) == ["POST backupStatus"]
    assert sender.messages == []


# --- refused before any call ---------------------------------------------------------------


@pytest.mark.parametrize(
    "resource_id",
    [
        f"{vm_id()}/../../../providers/Microsoft.RecoveryServices/vaults/{VAULT}",
        vm_id(name="vm%2F..%2F..%2Fx"),
        vm_id(name="vm?api-version=1"),
        vm_id(name="vm\r\nx"),
        vm_id(name="vmé"),
        item_id("vm"),
        f"https://evil.example{vm_id()}",
        f"{vm_id()}/extensions/x",
    ],
)
def test_a_hostile_resource_id_is_rejected_with_nothing_sent(resource_id: str) -> None:
    result = rejected_without_a_call(body_of(resourceId=resource_id))

    assert (result["error"]["code"], result["error"]["target"]) == ("InvalidRequest", "resourceId")
    assert result["request"]["resourceId"] == resource_id


def test_a_subscription_outside_the_allow_list_is_rejected_with_nothing_sent() -> None:
    result = rejected_without_a_call(body_of(), ALLOWED_SUBSCRIPTIONS=OTHER_SUB)

    assert result["error"]["code"] == "NotAllowed"


def test_a_bad_location_is_rejected_with_nothing_sent() -> None:
    result = rejected_without_a_call(body_of(location="westeurope/../../x"))

    assert result["error"]["target"] == "location"


# --- transient failures while resolving ----------------------------------------------------


def test_a_transient_failure_while_resolving_is_queued_again_with_the_producers_text() -> None:
    transport = script(status=[Reply(503, headers={"Retry-After": "20"}), Reply(200, body=backup_status_body())])
    svc, sender, clock = services(transport)
    body = body_of(location="westeurope")

    assert handle_request(body, Delivery("m", 1, NOW), svc) is None

    first = sender.take()
    value = follow_up_of(first)
    assert (value.phase, value.attempt, value.request) == (Phase.RESOLVE, 1, None)
    assert value.raw_message == body.decode()
    assert value.last_error is not None and value.last_error.code == "Http503"
    assert first.delay_seconds == 20
    clock.advance(first.delay_seconds)
    assert handle_follow_up(first.text.encode(), Delivery("f-1", 1, clock.now), svc) is None
    assert calls(transport) == ["POST backupStatus", "POST backupStatus", "POST backup"]
    assert follow_up_of(sender.take()).phase is Phase.OPERATION


def test_a_vault_refused_after_retries_still_carries_the_producers_text() -> None:
    transport = script(status=[Reply(500), Reply(200, body=backup_status_body())])
    svc = services(transport, settings=make_settings(ALLOWED_VAULTS="vault-prod"))
    body = body_of(location="westeurope")

    walked = walk(body, transport, services_=svc)

    assert walked.result["status"] == "Rejected"
    assert walked.result["rawMessage"] == body.decode()
    assert calls(transport) == ["POST backupStatus", "POST backupStatus"]


def test_transient_failures_while_resolving_end_failed_after_the_attempts() -> None:
    transport = script(vm=[Reply(503, body=b"busy")])
    svc = services(transport, settings=make_settings(RETRY_MAX_ATTEMPTS="3"))

    walked = walk(body_of(correlationId="flaky"), transport, services_=svc)

    assert calls(transport) == ["GET virtualMachines"] * 3
    result = walked.result
    assert (result["status"], result["error"]["code"], result["resourceId"]) == ("Failed", "Http503", vm_id())
    assert all(follow_up_of(message).phase is Phase.RESOLVE for message in walked.follow_ups)


def test_a_throttled_resolution_waits_retry_after() -> None:
    transport = script(status=[Reply(429, headers={"Retry-After": "30"}), Reply(200, body=backup_status_body())])
    svc, sender, _ = services(transport)

    handle_request(body_of(location="westeurope"), Delivery("m", 1, NOW), svc)

    message = sender.take()
    assert follow_up_of(message).throttled == 1
    assert 30 <= message.delay_seconds <= 45


# --- redelivery: never trigger twice blindly ------------------------------------------------


def test_a_redelivered_request_by_resource_id_looks_for_the_job_before_posting() -> None:
    transport = script()
    svc, _, _ = services(transport)

    handle_request(body_of(location="westeurope"), Delivery("m", 2, NOW - timedelta(minutes=1)), svc)

    assert calls(transport) == ["POST backupStatus", "GET backupJobs", "POST backup"]


def test_a_redelivered_resolving_follow_up_looks_before_posting() -> None:
    transport = script()
    svc, _, _ = services(transport)
    text = FollowUp(None, Phase.RESOLVE, NOW, NOW, target=resource_target(location="westeurope")).to_text()

    handle_follow_up(text.encode(), Delivery("f-1", 2, NOW), svc)

    assert calls(transport) == ["POST backupStatus", "GET backupJobs", "POST backup"]


# --- untrusted resolving follow-ups --------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "settings", "target"),
    [
        ({"resourceId": vm_id(sub=OTHER_SUB)}, {"ALLOWED_SUBSCRIPTIONS": SUB}, "resourceId"),
        ({"resourceId": f"{vm_id()}/../../x"}, {}, "resourceId"),
        ({"location": "x/../y"}, {}, "location"),
    ],
)
def test_a_tampered_resolving_follow_up_is_unreadable_and_sends_nothing(
    change: dict[str, Any], settings: dict[str, str], target: str
) -> None:
    document = json.loads(FollowUp(None, Phase.RESOLVE, NOW, NOW, target=resource_target()).to_text())
    document["target"].update(change)
    transport = script()
    credential = FakeCredential()
    svc, sender, _ = services(transport, settings=make_settings(**settings), credential=credential)

    result = result_of(handle_follow_up(json.dumps(document).encode(), Delivery("f-9", 1, NOW), svc) or "")

    assert (result["status"], result["error"]["code"], result["error"]["target"]) == (
        "Failed", "UnreadableFollowUp", target)
    assert transport.sent == [] and credential.scopes == [] and sender.messages == []


# --- ARM events ----------------------------------------------------------------------------


@pytest.mark.parametrize("schema", [event_grid, cloud_event])
def test_an_arm_event_about_a_vm_backs_it_up_keyed_by_the_event_id(schema: Any) -> None:
    transport = script()
    body = schema()

    walked = walk(body, transport)

    expected_id = json.loads(body)["id"]
    assert walked.result["status"] == "Succeeded"
    assert walked.result["correlationId"] == expected_id  # not data.correlationId, ARM's own
    assert walked.result["resourceId"] == vm_id()
    assert calls(transport)[:3] == ["GET virtualMachines", "POST backupStatus", "POST backup"]


@pytest.mark.parametrize(
    "body",
    [
        event_grid(ACTION, OWN_TRIGGER, operation="Microsoft.RecoveryServices/vaults/backupFabrics/"
                   "protectionContainers/protectedItems/backup/action"),
        event_grid("Microsoft.Resources.ResourceDeleteSuccess", operation="Microsoft.Compute/virtualMachines/delete"),
        cloud_event("Microsoft.Resources.ResourceDeleteSuccess", operation="Microsoft.Compute/virtualMachines/delete"),
        event_grid(subject=f"{vm_id()}/extensions/VMSnapshot",
                   operation="Microsoft.Compute/virtualMachines/extensions/write"),
    ],
)
def test_an_ignored_arm_event_is_rejected_without_a_call_and_without_its_claims(body: bytes) -> None:
    result = rejected_without_a_call(body)

    assert result["error"]["code"] == "EventIgnored"
    assert result["correlationId"] == json.loads(body)["id"]
    assert set(result["request"]) <= {"eventType", "subject", "resourceUri", "operationName"}
    assert result["transport"].endswith(("+eventgrid", "+cloudevents"))


def test_an_arm_event_with_a_hostile_subject_is_rejected_without_a_call() -> None:
    result = rejected_without_a_call(event_grid(subject=f"{vm_id()}/../../../x"))

    assert (result["error"]["code"], result["error"]["target"]) == ("InvalidRequest", "data.resourceUri")
    assert result["correlationId"] == "evt-arm-1"


# --- keys and log lines from outside -------------------------------------------------------


@pytest.mark.parametrize("event_id", ["", "has space", "line\nbreak", "tab\t", "é", "x" * 201, "\u202e"])
def test_an_event_id_unfit_to_be_a_key_leaves_the_key_to_the_message_id(event_id: str) -> None:
    event = json.loads(event_grid())
    event["id"] = event_id

    walked = walk(json.dumps(event).encode(), script(), delivery=Delivery("msg-7", 1, NOW))

    assert (walked.result["status"], walked.result["correlationId"]) == ("Succeeded", "msg-7")


@pytest.mark.parametrize("key", ["%2F", "%s%s%d", "100%", "%(name)s"])
def test_keys_with_percent_signs_are_logged_as_text(key: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    event = json.loads(event_grid())
    event["id"] = key

    walked = walk(json.dumps(event).encode(), script())

    assert walked.result["correlationId"] == key
    assert any(record.getMessage().startswith(f"[{key}] request accepted") for record in caplog.records)
