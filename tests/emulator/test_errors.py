"""CloudErrors: not found, api-version, body validation, and how names in the path are decoded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import requests

from .conftest import ASE, HANA, SHARE, SHARE_BODY, SQL, SQL_BODY, SUB, VAULT, VM1, VM_BODY, Client, item_path


def _error(response: requests.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    error: dict[str, str] = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert response.headers["x-ms-request-id"] and response.headers["x-ms-correlation-request-id"]
    return error


@pytest.mark.parametrize(
    ("vault", "code"),
    [
        (VAULT.replace(SUB, "22222222-2222-2222-2222-222222222222"), "SubscriptionNotFound"),
        (VAULT.replace("rg-backup", "rg-nope"), "ResourceGroupNotFound"),
        (VAULT.replace("vault1", "vault9"), "ResourceNotFound"),
    ],
)
def test_unknown_scope_is_404(arm: Client, vault: str, code: str) -> None:
    _error(arm.trigger(VM1, vault=vault), 404, code)
    _error(arm.get(f"{vault}/backupJobs"), 404, code)


def test_unknown_item_operation_and_job_are_404(arm: Client) -> None:
    status_url = arm.trigger(VM1).headers["Azure-AsyncOperation"]
    other_item = status_url.replace("vm1", "vm2")

    _error(arm.trigger(("IaasVMContainer;iaasvmcontainerv2;rg-app;vm7", "VM;iaasvmcontainerv2;rg-app;vm7")), 404,
           "ResourceNotFound")
    _error(arm.get(status_url.replace(status_url.split("/")[-1].split("?")[0], "0" * 8)), 404, "ResourceNotFound")
    _error(arm.get(other_item), 404, "ResourceNotFound")
    _error(arm.get(f"{VAULT}/backupJobs/00000000-0000-0000-0000-000000000000"), 404, "ResourceNotFound")
    _error(arm.get(f"{VAULT}/backupNothing"), 404, "InvalidResourceType")


def test_a_job_is_only_found_in_its_own_vault(arm: Client) -> None:
    status_url = arm.trigger(VM1).headers["Azure-AsyncOperation"]
    arm.advance(120)
    job_id = arm.get(status_url).json()["properties"]["jobId"]

    assert arm.get(f"{VAULT}/backupJobs/{job_id}").status_code == 200
    _error(arm.get(f"{VAULT.replace('vault1', 'vault2')}/backupJobs/{job_id}"), 404, "ResourceNotFound")


def test_literal_segments_and_names_are_case_insensitive(arm: Client) -> None:
    path = item_path(VM1[0].upper(), VM1[1].lower()).replace("/subscriptions/", "/SUBSCRIPTIONS/")
    path = path.replace("/providers/Microsoft.RecoveryServices/", "/PROVIDERS/microsoft.recoveryservices/")

    response = arm.request("POST", arm.url(path + "/BACKUP"), json=VM_BODY)

    assert response.status_code == 202


def test_semicolons_may_arrive_encoded(arm: Client) -> None:
    path = item_path(*VM1).replace(";", "%3B")

    assert arm.request("POST", arm.url(path + "/backup"), json=VM_BODY).status_code == 202


def test_an_encoded_slash_is_part_of_a_name_not_a_separator(arm: Client) -> None:
    # "rg-app;vm1" with the ";" written as an encoded "/" would name vm1's container if decoded before splitting.
    encoded = item_path(*VM1).replace(";rg-app;vm1/protectedItems", ";rg-app%2Fvm1/protectedItems")
    raw = item_path(*VM1).replace(";rg-app;vm1/protectedItems", ";rg-app/vm1/protectedItems")

    _error(arm.request("POST", arm.url(encoded + "/backup"), json=VM_BODY), 404, "ResourceNotFound")
    _error(arm.request("POST", arm.url(raw + "/backup"), json=VM_BODY), 404, "InvalidResourceType")
    assert arm.stats()["triggers_by_item"] == {}


def test_api_version_is_required_and_must_be_known(arm: Client) -> None:
    path = item_path(*VM1) + "/backup"

    error = _error(arm.request("POST", arm.url(path, "2099-01-01"), json=VM_BODY), 400, "InvalidApiVersionParameter")
    assert "2024-04-01" in error["message"]
    _error(arm.request("POST", arm.url(path, None), json=VM_BODY), 400, "MissingApiVersionParameter")
    assert arm.request("POST", arm.url(path, "2016-12-01"), json=VM_BODY).status_code == 202


def test_wrong_method_on_a_known_path_is_refused(arm: Client) -> None:
    assert arm.get(item_path(*VM1) + "/backup").status_code == 405


def _in(days: int) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize(
    ("target", "body", "code", "error_target"),
    [
        (VM1, b"{not json", "InvalidRequestContent", None),
        (VM1, [], "InvalidRequestContent", None),
        (VM1, {}, "BMSUserErrorInvalidInput", "properties"),
        (VM1, {"properties": {}}, "InvalidRequestContent", "properties.objectType"),
        (VM1, {"properties": {"objectType": "NoSuchRequest"}}, "InvalidRequestContent", "properties.objectType"),
        (VM1, SHARE_BODY, "BMSUserErrorInvalidInput", "properties.objectType"),
        (SHARE, VM_BODY, "BMSUserErrorInvalidInput", "properties.objectType"),
        (SQL, VM_BODY, "BMSUserErrorInvalidInput", "properties.objectType"),
        (VM1, {"properties": {"objectType": "IaasVMBackupRequest", "retentionDays": 3}}, "InvalidRequestContent",
         "properties.retentionDays"),
        (VM1, {"properties": VM_BODY["properties"], "extra": 1}, "InvalidRequestContent", "extra"),
        (VM1, {"properties": {"objectType": "IaasVMBackupRequest", "backupType": "Full"}}, "InvalidRequestContent",
         "properties.backupType"),
        (VM1, {"properties": {"objectType": "IaasVMBackupRequest", "recoveryPointExpiryTimeInUTC": "soon"}},
         "InvalidRequestContent", "properties.recoveryPointExpiryTimeInUTC"),
        (VM1, {"properties": {"objectType": "IaasVMBackupRequest", "recoveryPointExpiryTimeInUTC": _in(-1)}},
         "UserErrorInvalidRecoveryPointExpiryTime", "properties.recoveryPointExpiryTimeInUTC"),
        (SQL, {"properties": {"objectType": "AzureWorkloadBackupRequest"}}, "BMSUserErrorInvalidInput",
         "properties.backupType"),
        (SQL, {"properties": {"objectType": "AzureWorkloadBackupRequest", "backupType": "Weekly"}},
         "InvalidRequestContent", "properties.backupType"),
        (SQL, {"properties": {**SQL_BODY["properties"], "enableCompression": "yes"}}, "InvalidRequestContent",
         "properties.enableCompression"),
        (HANA, {"properties": {"objectType": "AzureWorkloadBackupRequest", "backupType": "Log"}},
         "BMSUserErrorInvalidInput", "properties.backupType"),
        (HANA, {"properties": {"objectType": "AzureWorkloadBackupRequest", "backupType": "CopyOnlyFull"}},
         "BMSUserErrorInvalidInput", "properties.backupType"),
        (HANA, {"properties": {"objectType": "AzureWorkloadBackupRequest", "backupType": "Incremental"}},
         "BMSUserErrorInvalidInput", "properties.backupType"),
    ],
)
def test_invalid_bodies_are_400_with_target(
    arm: Client, target: tuple[str, str], body: object, code: str, error_target: str | None
) -> None:
    kw = {"data": body} if isinstance(body, bytes) else {"json": body}

    error = _error(arm.request("POST", arm.url(item_path(*target) + "/backup"), **kw), 400, code)

    assert error.get("target") == error_target
    assert arm.stats()["triggers_by_item"] == {}


@pytest.mark.parametrize(
    ("target", "body"),
    [
        (VM1, {"properties": {"objectType": "IaasVMBackupRequest", "recoveryPointExpiryTimeInUTC": _in(30)}}),
        (VM1, {"properties": {"objecttype": "iaasvmbackuprequest"}}),
        (VM1, {"properties": VM_BODY["properties"], "location": "westeurope", "tags": {}}),
        (SHARE, {"properties": {"objectType": "AzureFileShareBackupRequest",
                                "recoveryPointExpiryTimeInUTC": _in(10)[:-1]}}),
        (SQL, {"properties": {**SQL_BODY["properties"], "backupType": "CopyOnlyFull", "enableCompression": True}}),
        (HANA, {"properties": {"objectType": "AzureWorkloadBackupRequest", "backupType": "Differential"}}),
        (ASE, {"properties": {"objectType": "AzureWorkloadBackupRequest", "backupType": "Log"}}),
    ],
)
def test_valid_bodies_are_accepted(arm: Client, target: tuple[str, str], body: object) -> None:
    assert arm.trigger(target, body).status_code == 202
