"""The emulator's Backup Status - Get and VM GET: shaped like GetBackupStatus.json, failing as ARM does."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import SUB, VAULT, Client, example
from .test_examples import types_of

OTHER_SUB = "11111111-1111-1111-1111-111111111111"
COMPUTE_API = "2024-07-01"


def vm_id(name: str = "vm1", group: str = "rg-app", sub: str = SUB) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{name}"


def status_path(region: str = "westeurope", sub: str = SUB) -> str:
    return f"/subscriptions/{sub}/providers/Microsoft.RecoveryServices/locations/{region}/backupStatus"


def ask(arm: Client, resource_id: str, region: str = "westeurope", *, sub: str = SUB, body: Any = None) -> Any:
    payload = body if body is not None else {"resourceId": resource_id, "resourceType": "VM"}
    return arm.request("POST", arm.url(status_path(region, sub)), json=payload)


def test_a_protected_vm_is_answered_like_the_official_example(arm: Client) -> None:
    expected = example("2024-10-01/GetBackupStatus.json")

    response = ask(arm, vm_id(), expected["parameters"]["azureRegion"].replace("southeastasia", "westeurope"))

    assert response.status_code == 200
    body, theirs = response.json(), expected["responses"]["200"]["body"]
    assert body.keys() == theirs.keys()
    assert types_of(body) == types_of(theirs)
    assert body["protectionStatus"] == theirs["protectionStatus"] == "Protected"
    assert body["vaultId"] == VAULT.replace("/vaults/", "/Vaults/")  # as the example spells it
    assert body["fabricName"] == theirs["fabricName"]
    # The type prefixes in lower case, as in the example ("iaasvmcontainer;…", "vm;…").
    assert body["containerName"] == "iaasvmcontainer;iaasvmcontainerv2;rg-app;vm1"
    assert body["protectedItemName"] == "vm;iaasvmcontainerv2;rg-app;vm1"
    assert theirs["containerName"].startswith("iaasvmcontainer;") and theirs["protectedItemName"].startswith("vm;")
    assert body["errorCode"] == "Success"


def test_the_resource_id_matches_in_any_case(arm: Client) -> None:
    response = ask(arm, vm_id().upper().replace(SUB.upper(), SUB))

    assert response.json()["protectionStatus"] == "Protected"


@pytest.mark.parametrize(
    ("resource_id", "region"),
    [
        (vm_id("vm-unprotected"), "westeurope"),  # a known VM no vault protects
        (vm_id("ghost"), "westeurope"),  # the service looks at registrations, not at the VM
        (vm_id(), "northeurope"),  # protected, but by a vault of another region
        (vm_id("vm9", "rg-other", OTHER_SUB), "westeurope"),  # protected in another subscription
    ],
)
def test_anything_else_is_not_protected(arm: Client, resource_id: str, region: str) -> None:
    response = ask(arm, resource_id, region)

    assert response.status_code == 200
    body = response.json()
    assert body["protectionStatus"] == "NotProtected"
    assert "vaultId" not in body
    assert resource_id in body["errorMessage"]


def test_a_vault_in_another_region_protects_its_own_vms(arm: Client) -> None:
    body = ask(arm, vm_id("web1", "rg-web"), "northeurope").json()

    assert body["protectionStatus"] == "Protected"
    assert body["vaultId"].endswith("/Vaults/vault2")


@pytest.mark.parametrize(
    ("body", "code", "target"),
    [
        ({"resourceId": vm_id(), "resourceType": "AzureFileShare"}, "BMSUserErrorInvalidInput", "resourceType"),
        ({"resourceId": vm_id()}, "BMSUserErrorInvalidInput", "resourceType"),
        ({"resourceType": "VM"}, "BMSUserErrorInvalidInput", "resourceId"),
        ({"resourceId": vm_id(), "resourceType": "VM", "vaultId": "x"}, "InvalidRequestContent", "vaultid"),
        ([], "InvalidRequestContent", None),
    ],
)
def test_a_malformed_body_is_a_400(arm: Client, body: Any, code: str, target: str | None) -> None:
    response = ask(arm, "", body=body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error.get("target")) == (code, target)


def test_an_unknown_subscription_is_a_404(arm: Client) -> None:
    response = ask(arm, vm_id(sub="22222222-2222-2222-2222-222222222222"),
                   sub="22222222-2222-2222-2222-222222222222")

    assert (response.status_code, response.json()["error"]["code"]) == (404, "SubscriptionNotFound")


def test_backup_status_is_a_post_and_counted(arm: Client) -> None:
    assert arm.get(arm.url(status_path())).status_code == 405
    ask(arm, vm_id())

    stats = arm.stats()
    assert stats["backup_status"] == 2
    assert stats["triggers_by_item"] == {}


# --- the VM GET ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource_id", "location"),
    [(vm_id(), "westeurope"), (vm_id("web1", "rg-web"), "northeurope"), (vm_id("vm-unprotected"), "westeurope"),
     (vm_id("VM1", "RG-APP"), "westeurope")],
)
def test_a_known_vm_answers_with_its_location(arm: Client, resource_id: str, location: str) -> None:
    response = arm.get(arm.url(resource_id, COMPUTE_API))

    assert response.status_code == 200
    body = response.json()
    assert body["location"] == location
    assert body["type"] == "Microsoft.Compute/virtualMachines"
    assert body["id"].lower() == resource_id.lower()
    assert body["properties"]["provisioningState"] == "Succeeded"
    assert arm.stats()["vm_get"] == 1


@pytest.mark.parametrize(
    ("resource_id", "code"),
    [
        (vm_id("ghost"), "ResourceNotFound"),
        (vm_id("vm1", "rg-nope"), "ResourceGroupNotFound"),
        (vm_id(sub="22222222-2222-2222-2222-222222222222"), "SubscriptionNotFound"),
        (vm_id("vm%2F..%2Fvm1"), "ResourceNotFound"),
    ],
)
def test_an_unknown_vm_is_a_404_with_arms_code(arm: Client, resource_id: str, code: str) -> None:
    response = arm.get(arm.url(resource_id, COMPUTE_API))

    assert (response.status_code, response.json()["error"]["code"]) == (404, code)


def test_the_vm_get_speaks_compute_api_versions_only(arm: Client) -> None:
    response = arm.get(arm.url(vm_id(), "2024-04-01"))

    assert (response.status_code, response.json()["error"]["code"]) == (400, "InvalidApiVersionParameter")
    assert ask(arm, vm_id()).status_code == 200  # while Backup Status takes the backup api-versions


def test_both_calls_need_a_token(arm: Client) -> None:
    assert arm.get(arm.url(vm_id(), COMPUTE_API), token=None).status_code == 401
    assert arm.request("POST", arm.url(status_path()), token=None, json={}).status_code == 401


def test_faults_can_be_aimed_at_both_calls(arm: Client) -> None:
    arm.configure({"faults": {"script": [{"method": "POST", "path": "/backupStatus\\?", "fault": "503"},
                                         {"method": "GET", "path": "/virtualMachines/", "fault": "500"}]}})

    first = ask(arm, vm_id())
    second = arm.get(arm.url(vm_id(), COMPUTE_API))

    assert (first.status_code, second.status_code) == (503, 500)
    assert ask(arm, vm_id()).status_code == 200


@pytest.mark.parametrize("kind", ["backup_status", "vm_get"])
def test_random_faults_know_both_kinds(arm: Client, kind: str) -> None:
    arm.configure({"faults": {"seed": 1, "rates": [{"request": kind, "probability": 1.0, "fault": "429",
                                                    "retry_after": 2}]}})

    status_answer = ask(arm, vm_id()).status_code
    vm_answer = arm.get(arm.url(vm_id(), COMPUTE_API)).status_code

    assert (status_answer, vm_answer) == ((429, 200) if kind == "backup_status" else (200, 429))
