"""shared.arm: the two calls that find a VM's item (its GET, Backup Status - Get) over a FakeTransport."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from shared.arm import COMPUTE_API_VERSION
from shared.errors import ArmProtocolError, ArmRejected, ArmThrottled, ArmUnavailable, BackupAppError, TokenUnavailable
from shared.targeting import BackupStatus
from tests.fakes import ARM, FAKE_TOKEN, FakeCredential, FakeTransport, Reply
from tests.unit.builders import SUB, VM_GROUP, VM_NAME, arm_client, backup_status_body, make_settings, resource_target

VM_PATH = f"/subscriptions/{SUB}/resourceGroups/{VM_GROUP}/providers/Microsoft.Compute/virtualMachines/{VM_NAME}"
STATUS_PATH = f"/subscriptions/{SUB}/providers/Microsoft.RecoveryServices/locations/westeurope/backupStatus"
VM_BODY = {"id": VM_PATH, "name": VM_NAME, "type": "Microsoft.Compute/virtualMachines", "location": "westeurope",
           "properties": {"provisioningState": "Succeeded"}}


def not_found(code: str) -> Reply:
    return Reply(404, body={"error": {"code": code, "message": f"{code}: gone"}},
                 headers={"x-ms-request-id": "req-404", "x-ms-correlation-request-id": "corr-404"})


def test_the_vm_get_reads_its_location_with_the_compute_api_version() -> None:
    transport = FakeTransport().on("GET", r"/virtualMachines/", Reply(200, body={**VM_BODY, "location": "WestEurope"}))

    location = arm_client(transport).vm_location(resource_target(correlationId="c-loc"))

    assert location == "westeurope"
    [sent] = transport.sent
    parts = urlsplit(sent.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{ARM}{VM_PATH}"
    assert parse_qs(parts.query) == {"api-version": [COMPUTE_API_VERSION]}
    assert sent.headers["Authorization"] == f"Bearer {FAKE_TOKEN}"
    assert sent.headers["x-ms-client-request-id"]
    assert sent.body is None


def test_backup_status_posts_the_resource_and_reads_the_answer() -> None:
    body = backup_status_body()
    transport = FakeTransport().on("POST", r"/backupStatus\?", Reply(200, body=body))
    settings = make_settings(BACKUP_API_VERSION="2024-10-01")

    answer = arm_client(transport, settings=settings).backup_status(resource_target(), "westeurope")

    assert answer == BackupStatus("Protected", body["vaultId"], "Azure", body["containerName"],
                                  body["protectedItemName"], "Success", "ErrorMessage")
    [sent] = transport.sent
    parts = urlsplit(sent.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{ARM}{STATUS_PATH}"
    assert parse_qs(parts.query) == {"api-version": ["2024-10-01"]}
    assert sent.body == {"resourceId": resource_target().resource.id, "resourceType": "VM"}
    assert sent.headers["Authorization"] == f"Bearer {FAKE_TOKEN}"


def test_names_become_encoded_segments_in_both_urls() -> None:
    transport = FakeTransport().on("GET", r"/virtualMachines/", Reply(200, body=VM_BODY))
    transport.on("POST", r"/backupStatus\?", Reply(200, body=backup_status_body()))
    target = resource_target(resourceId=VM_PATH.replace(f"/{VM_GROUP}/", "/rg(ü)/"))
    client = arm_client(transport)

    client.vm_location(target)
    client.backup_status(target, "westeurope")

    assert "/resourceGroups/rg%28%C3%BC%29/providers/" in transport.sent[0].url
    assert transport.sent[1].body["resourceId"].endswith("/resourceGroups/rg(ü)/providers/Microsoft.Compute/"
                                                         f"virtualMachines/{VM_NAME}")


@pytest.mark.parametrize(
    ("reply", "error", "code"),
    [
        (not_found("ResourceNotFound"), ArmRejected, "ResourceNotFound"),
        (not_found("ResourceGroupNotFound"), ArmRejected, "ResourceGroupNotFound"),
        (Reply(403, body={"error": {"code": "AuthorizationFailed", "message": "no read"}}), ArmRejected,
         "AuthorizationFailed"),
        (Reply(429, headers={"Retry-After": "9"}), ArmThrottled, "Http429"),
        (Reply(503, body=b"down"), ArmUnavailable, "Http503"),
        (Reply(200, body=b"<html>"), ArmUnavailable, "MalformedResponse"),
        (Reply(200, body={**VM_BODY, "location": None}), ArmProtocolError, "UnexpectedResource"),
        (Reply(200, body={**VM_BODY, "location": "west europe"}), ArmProtocolError, "UnexpectedResource"),
    ],
)
def test_vm_get_failures_are_typed(reply: Reply, error: type[BackupAppError], code: str) -> None:
    transport = FakeTransport().on("GET", r"/virtualMachines/", reply)

    with pytest.raises(error) as caught:
        arm_client(transport).vm_location(resource_target())

    assert caught.value.info.code == code


def test_a_missing_vm_keeps_arms_request_ids() -> None:
    transport = FakeTransport().on("GET", r"/virtualMachines/", not_found("ResourceNotFound"))

    with pytest.raises(ArmRejected) as caught:
        arm_client(transport).vm_location(resource_target())

    info = caught.value.info
    assert (info.http_status, info.request_id, info.correlation_request_id) == (404, "req-404", "corr-404")


@pytest.mark.parametrize(
    ("reply", "error", "code"),
    [
        (not_found("SubscriptionNotFound"), ArmRejected, "SubscriptionNotFound"),
        (Reply(400, body={"error": {"code": "BMSUserErrorInvalidInput", "message": "bad"}}), ArmRejected,
         "BMSUserErrorInvalidInput"),
        (Reply(429, headers={"Retry-After": "3"}), ArmThrottled, "Http429"),
        (Reply(500), ArmUnavailable, "Http500"),
        (Reply(202), ArmRejected, "Http202"),
        (Reply(200, body=b"[]"), ArmUnavailable, "MalformedResponse"),
    ],
)
def test_backup_status_failures_are_typed(reply: Reply, error: type[BackupAppError], code: str) -> None:
    transport = FakeTransport().on("POST", r"/backupStatus\?", reply)

    with pytest.raises(error) as caught:
        arm_client(transport).backup_status(resource_target(), "westeurope")

    assert caught.value.info.code == code


def test_without_a_token_nothing_is_sent() -> None:
    from azure.core.exceptions import ClientAuthenticationError

    transport = FakeTransport()
    client = arm_client(transport, credential=FakeCredential(ClientAuthenticationError("no identity")))

    with pytest.raises(TokenUnavailable):
        client.backup_status(resource_target(), "westeurope")
    assert transport.sent == []


@pytest.mark.parametrize("endpoint", ["https://management.usgovcloudapi.net", "https://127.0.0.1:8443"])
def test_the_calls_go_to_the_configured_arm_host_only(endpoint: str) -> None:
    transport = FakeTransport().on("GET", r"/virtualMachines/", Reply(200, body=VM_BODY))
    transport.on("POST", r"/backupStatus\?", Reply(200, body=backup_status_body()))
    client = arm_client(transport, settings=make_settings(ARM_ENDPOINT=endpoint))

    client.vm_location(resource_target())
    client.backup_status(resource_target(), "westeurope")

    assert all(sent.url.startswith(f"{endpoint}/subscriptions/{SUB}/") for sent in transport.sent)
