"""shared.batches: the batch form, selection, the children's keys and requests, pacing, the summary."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any

import pytest

from shared.batches import (
    BatchRequest,
    ChildOutcome,
    Selection,
    batch_status,
    child_document,
    child_key,
    child_message,
    child_request,
    is_batch_form,
    parse_batch,
    release_at,
    release_delay,
    summary,
)
from shared.errors import ErrorInfo, RequestRejected
from shared.messages import is_correlation_id, parse_request
from shared.results import ResultStatus
from shared.vaultitems import ListedItem
from tests.unit.builders import NOW, RG, SUB, VAULT, make_settings, result_of

SETTINGS = make_settings()


def batch_document(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "subscriptionId": SUB, "resourceGroupName": RG, "vaultName": VAULT, "select": {}, "correlationId": "b-1",
    }
    document.update(changes)
    return {key: value for key, value in document.items() if value is not None}


def batch(**changes: Any) -> BatchRequest:
    return parse_batch(batch_document(**changes), settings=SETTINGS, fallback_correlation_id="msg-1")


def rejected_target(document: dict[str, Any], **settings: str) -> str | None:
    with pytest.raises(RequestRejected) as caught:
        parse_batch(document, settings=make_settings(**settings), fallback_correlation_id="msg-1")
    return caught.value.info.target


def vm(name: str, *, policy: str | None = "DefaultPolicy", friendly: str | None = None) -> ListedItem:
    return ListedItem(
        name=f"VM;iaasvmcontainerv2;rg-app;{name}", container=f"IaasVMContainer;iaasvmcontainerv2;rg-app;{name}",
        fabric="Azure", friendly_name=friendly or name, backup_management_type="AzureIaasVM", policy_name=policy,
    )


SHARE = ListedItem("AzureFileShare;share1", "StorageContainer;Storage;rg;acct", "Azure", "share1", "AzureStorage",
                   "FileSharePolicy")
SQL = ListedItem("SQLDataBase;mssqlserver;sales", "VMAppContainer;Compute;rg;sqlvm", "Azure", "sales",
                 "AzureWorkload", "SqlPolicy")
AGENT = ListedItem("MABFileFolderProtectedItem;server1", "Windows;server1", "Azure", "server1", "MAB", None)


# --- the form ----------------------------------------------------------------------------------------


def test_a_document_with_select_is_a_batch() -> None:
    assert is_batch_form(batch_document())
    assert not is_batch_form({"protectedItemId": "x"})


def test_a_batch_reads_its_vault_selection_properties_and_key() -> None:
    parsed = batch(
        select={"backupManagementType": "azureiaasvm", "friendlyNames": ["vm1", "VM1", "vm2"],
                "friendlyNamePattern": "web-*", "policyName": "Gold"},
        retentionDays=10,
    )

    assert parsed.vault.id == f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices" \
        f"/vaults/{VAULT}"
    assert parsed.select == Selection("AzureIaasVM", ("vm1", "vm2"), "web-*", "Gold")
    assert (parsed.retention_days, parsed.properties, parsed.key) == (10, None, "b-1")


def test_without_a_correlation_id_the_batch_key_is_the_fallback() -> None:
    parsed = parse_batch(batch_document(correlationId=None), settings=SETTINGS, fallback_correlation_id="m-9")

    assert parsed.key == "m-9"


def test_a_batch_survives_its_round_trip_through_a_follow_up() -> None:
    parsed = batch(select={"friendlyNames": ["a", "b"], "policyName": "p"}, properties={"backupType": "Full"})

    again = BatchRequest.from_json(json.loads(json.dumps(parsed.to_json())))

    assert again == parsed
    assert again.fingerprint() == parsed.fingerprint()


def test_the_fingerprint_tells_different_batches_apart() -> None:
    base = batch().fingerprint()

    assert batch(select={"policyName": "Gold"}).fingerprint() != base
    assert batch(vaultName="other-vault").fingerprint() != base
    assert batch(retentionDays=3).fingerprint() != base
    assert batch(correlationId="b-2").fingerprint() == base  # the key is not part of what was asked


@pytest.mark.parametrize(
    ("changes", "target"),
    [
        ({"select": []}, "select"),
        ({"select": {"name": "x"}}, "select.name"),
        ({"select": {"backupManagementType": "MAB"}}, "select.backupManagementType"),
        ({"select": {"backupManagementType": 3}}, "select.backupManagementType"),
        ({"select": {"friendlyNames": []}}, "select.friendlyNames"),
        ({"select": {"friendlyNames": "vm1"}}, "select.friendlyNames"),
        ({"select": {"friendlyNames": ["vm1", 7]}}, "select.friendlyNames[1]"),
        ({"select": {"friendlyNames": ["vm\n1"]}}, "select.friendlyNames[0]"),
        ({"select": {"friendlyNamePattern": ""}}, "select.friendlyNamePattern"),
        ({"select": {"friendlyNamePattern": "x" * 257}}, "select.friendlyNamePattern"),
        ({"select": {"policyName": None, "friendlyNamePattern": 5}}, "select.friendlyNamePattern"),
        ({"vaultName": "no/slash"}, "vaultName"),
        ({"subscriptionId": "not-a-guid"}, "subscriptionId"),
        ({"resourceGroupName": None}, "resourceGroupName"),
        ({"properties": []}, "properties"),
        ({"properties": {"objectType": "IaasVMBackupRequest"}}, "properties.objectType"),
        ({"retentionDays": 0}, "retentionDays"),
        ({"retentionDays": True}, "retentionDays"),
        ({"correlationId": "x" * 101}, "correlationId"),
        ({"correlationId": "has space"}, "correlationId"),
        ({"protectedItemName": "VM;x"}, "protectedItemName"),
    ],
)
def test_a_malformed_batch_is_rejected_naming_the_field(changes: dict[str, Any], target: str) -> None:
    document = batch_document()
    document.update(changes)
    document = {key: value for key, value in document.items() if value is not None}

    assert rejected_target(document) == target


def test_more_names_than_the_maximum_are_rejected_before_listing() -> None:
    names = [f"vm{n}" for n in range(4)]

    target = rejected_target(batch_document(select={"friendlyNames": names}), BATCH_MAX_ITEMS="3")

    assert target == "select.friendlyNames"
    assert parse_batch(batch_document(select={"friendlyNames": names}), settings=make_settings(BATCH_MAX_ITEMS="4"),
                       fallback_correlation_id="m").select.friendly_names == tuple(names)


def test_a_selection_too_big_to_travel_is_rejected() -> None:
    names = [f"{n:0>250}" for n in range(140)]  # 140 names of 250 characters: 35 KiB

    assert rejected_target(batch_document(select={"friendlyNames": names})) == "select"


def test_a_vault_outside_the_allow_lists_is_not_allowed() -> None:
    with pytest.raises(RequestRejected) as caught:
        parse_batch(batch_document(), settings=make_settings(ALLOWED_VAULTS="other"), fallback_correlation_id="m")

    assert caught.value.info.code == "NotAllowed"
    assert parse_batch(batch_document(), settings=make_settings(ALLOWED_VAULTS=f"{RG}/{VAULT}"),
                       fallback_correlation_id="m").key == "b-1"


# --- selection -------------------------------------------------------------------------------------


def selected(select: dict[str, Any], items: list[ListedItem]) -> list[str]:
    selection = Selection.parse(select, 1000)
    return [item.friendly_name for item in items if selection.matches(item)]


def test_an_empty_selection_takes_every_item_the_app_can_back_up() -> None:
    assert selected({}, [vm("a"), SHARE, SQL, AGENT]) == ["a", "share1", "sales"]


def test_the_management_type_is_matched_whatever_its_case() -> None:
    items = [vm("a"), SHARE, SQL]

    assert selected({"backupManagementType": "AzureStorage"}, items) == ["share1"]
    assert selected({"backupManagementType": "AZUREWORKLOAD"}, items) == ["sales"]


def test_friendly_names_are_exact_and_case_insensitive() -> None:
    items = [vm("web01"), vm("web011"), vm("WEB02"), vm("db01")]

    assert selected({"friendlyNames": ["web01", "web02"]}, items) == ["web01", "WEB02"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("web-*", ["web-01", "web-02", "WEB-03"]),
        ("web-0?", ["web-01", "web-02", "WEB-03"]),
        ("*-0[12]", ["web-01", "web-02", "db-01"]),
        ("*-0[!12]", ["WEB-03"]),
        ("db-01", ["db-01"]),
        ("*", ["web-01", "web-02", "WEB-03", "db-01", "web"]),
        ("web", ["web"]),
        ("x*", []),
    ],
)
def test_the_pattern_is_an_fnmatch_glob_on_the_friendly_name(pattern: str, expected: list[str]) -> None:
    items = [vm(name) for name in ("web-01", "web-02", "WEB-03", "db-01", "web")]

    assert selected({"friendlyNamePattern": pattern}, items) == expected


def test_the_policy_is_matched_by_name_and_an_item_without_one_never_matches() -> None:
    items = [vm("a", policy="Gold"), vm("b", policy="gold"), vm("c", policy="Silver"), vm("d", policy=None)]

    assert selected({"policyName": "GOLD"}, items) == ["a", "b"]


def test_the_criteria_combine_with_and() -> None:
    items = [vm("web-01", policy="Gold"), vm("web-02", policy="Silver"), vm("db-01", policy="Gold"), SHARE]
    select = {"backupManagementType": "AzureIaasVM", "friendlyNamePattern": "web-*", "policyName": "Gold"}

    assert selected(select, items) == ["web-01"]


def test_the_service_filters_on_the_management_type_only() -> None:
    assert Selection.parse({"backupManagementType": "azurestorage", "policyName": "p"}, 10).odata_filter() == (
        "backupManagementType eq 'AzureStorage'"
    )
    assert Selection.parse({"friendlyNames": ["a"]}, 10).odata_filter() is None


def test_names_not_found_are_reported_as_given() -> None:
    selection = Selection.parse({"friendlyNames": ["Web01", "ghost", "db01", "GHOST-2"]}, 10)

    assert selection.not_found(["web01", "DB01"]) == ["ghost", "GHOST-2"]
    assert Selection.parse({}, 10).not_found(["x"]) == []


# --- the children ------------------------------------------------------------------------------------


def test_a_child_key_is_the_batch_key_and_the_item_name() -> None:
    assert child_key("patch-night", "VM;iaasvmcontainerv2;rg-app;vm1") == "patch-night/VM;iaasvmcontainerv2;rg-app;vm1"


def test_a_name_that_cannot_travel_in_a_key_is_percent_encoded() -> None:
    key = child_key("b", "SQLDataBase;mssqlserver;sales db ✓")

    assert key == "b/SQLDataBase;mssqlserver;sales%20db%20%E2%9C%93"
    assert is_correlation_id(key)


def test_a_key_too_long_carries_a_digest_of_the_name_and_stays_distinct() -> None:
    long_names = [f"VM;iaasvmcontainerv2;{'r' * 90};{n}{'v' * 60}" for n in range(2)]
    keys = [child_key("k" * 100, name) for name in long_names]

    assert all(is_correlation_id(key) and key.startswith("k" * 100 + "/~") for key in keys)
    assert keys[0] != keys[1]
    assert keys[0] == child_key("k" * 100, long_names[0])


def test_a_child_is_an_ordinary_request_naming_its_item_and_its_batch() -> None:
    parent = batch(correlationId="night-1", retentionDays=7)
    document = child_document(parent, vm("vm1"))

    request = parse_request(document, settings=SETTINGS, now=NOW, fallback_correlation_id="unused")

    assert request.correlation_id == "night-1/VM;iaasvmcontainerv2;rg-app;vm1"
    assert request.batch == "night-1"
    assert request.item.id.endswith("/backupFabrics/Azure/protectionContainers/"
                                    "IaasVMContainer;iaasvmcontainerv2;rg-app;vm1/protectedItems/VM;iaasvmcontainerv2;rg-app;vm1")
    expiry = (NOW + timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert request.properties == {"objectType": "IaasVMBackupRequest", "recoveryPointExpiryTimeInUTC": expiry}


def test_database_properties_reach_database_items_only() -> None:
    parent = batch(properties={"backupType": "Full", "enableCompression": True})

    database = parse_request(child_document(parent, SQL), settings=SETTINGS, now=NOW, fallback_correlation_id="x")
    machine = parse_request(child_document(parent, vm("a")), settings=SETTINGS, now=NOW, fallback_correlation_id="x")

    assert database.properties["backupType"] == "Full" and database.properties["enableCompression"] is True
    assert machine.properties["objectType"] == "IaasVMBackupRequest" and "backupType" not in machine.properties


def test_a_child_whose_workload_refuses_the_properties_is_rejected_like_its_own_request() -> None:
    parent = batch(properties={"backupType": "Log"}, retentionDays=3)

    with pytest.raises(RequestRejected):
        parse_request(child_document(parent, SQL), settings=SETTINGS, now=NOW, fallback_correlation_id="x")


# --- pacing --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "per_minute"), [(1, 60), (7, 60), (300, 600), (1000, 60), (50, 7), (90, 90)])
def test_release_times_are_evenly_spaced_at_the_pace(count: int, per_minute: int) -> None:
    times = [release_at(index, NOW, per_minute) for index in range(count)]

    assert times[0] == NOW
    assert times == sorted(times)
    gaps = [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]
    assert all(abs(gap - 60 / per_minute) <= 1e-6 for gap in gaps)  # timedelta keeps microseconds
    assert times[-1] - NOW == timedelta(seconds=60 * (count - 1) / per_minute)
    # No minute holds more than the pace: a window [t, t + 60 s) starting at any release.
    for start in times:
        assert sum(start <= moment < start + timedelta(minutes=1) for moment in times) <= per_minute


def test_a_release_time_depends_only_on_the_index() -> None:
    assert release_at(123, NOW, 60) == release_at(123, NOW, 60) == NOW + timedelta(seconds=123)


def test_the_delay_never_releases_early() -> None:
    for offset in (0.0, 0.2, 0.5, 0.999, 1.0, 59.5):
        at = NOW + timedelta(seconds=offset)
        delay = release_delay(at, NOW)
        assert NOW + timedelta(seconds=delay) >= at
        assert delay - offset < 1


def test_a_release_time_already_past_goes_at_once_and_the_queue_bounds_the_delay() -> None:
    assert release_delay(NOW - timedelta(minutes=5), NOW) == 0
    assert release_delay(NOW + timedelta(days=30), NOW) == 7 * 24 * 3600


# --- the summary -------------------------------------------------------------------------------------


def outcome(status: str, n: int = 0, **changes: Any) -> ChildOutcome:
    item = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/{VAULT}" \
           f"/backupFabrics/Azure/protectionContainers/IaasVMContainer;iaasvmcontainerv2;rg-app;vm{n:04d}" \
           f"/protectedItems/VM;iaasvmcontainerv2;rg-app;vm{n:04d}"
    return ChildOutcome(status=status, protected_item_id=item, **changes)


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (["Succeeded", "Succeeded"], ResultStatus.SUCCEEDED),
        (["Succeeded", "CompletedWithWarnings", "Triggered"], ResultStatus.SUCCEEDED),
        (["Succeeded", "Failed"], ResultStatus.PARTIALLY_SUCCEEDED),
        (["Succeeded", "NotFound"], ResultStatus.PARTIALLY_SUCCEEDED),
        (["Failed", "TimedOut", "Cancelled", "Rejected"], ResultStatus.FAILED),
        (["NotFound"], ResultStatus.FAILED),
        ([], ResultStatus.FAILED),
    ],
)
def test_the_batch_status_follows_its_items(statuses: list[str], expected: ResultStatus) -> None:
    assert batch_status([outcome(status) for status in statuses]) is expected


def test_the_summary_counts_and_lists_every_item_failures_first() -> None:
    outcomes = [
        outcome("Succeeded", 1, job_id="j1"),
        outcome("Failed", 2, job_id="j2", error_code="UserErrorVmNotInDesirableState"),
        ChildOutcome(status="NotFound", friendly_name="ghost"),
        outcome("Succeeded", 3, job_id="j3"),
    ]

    document = result_of(summary(batch(), outcomes, selected=3, requested_at=NOW, now=NOW + timedelta(minutes=5)))

    assert document["kind"] == "batch" and document["status"] == "PartiallySucceeded"
    assert document["correlationId"] == "b-1" and document["selected"] == 3
    assert document["counts"] == {"Succeeded": 2, "Failed": 1, "NotFound": 1}
    assert [item["status"] for item in document["items"]] == ["Failed", "NotFound", "Succeeded", "Succeeded"]
    assert document["items"][0]["errorCode"] == "UserErrorVmNotInDesirableState"
    assert document["items"][1] == {"friendlyName": "ghost", "status": "NotFound"}
    assert "itemsOmitted" not in document
    assert document["timings"]["elapsedSeconds"] == 300


def test_an_empty_selection_summary_carries_its_error() -> None:
    error = ErrorInfo("NothingSelected", "no item matched")

    document = result_of(summary(batch(), [], selected=0, requested_at=NOW, now=NOW, error=error))

    assert (document["status"], document["error"]["code"], document["items"]) == ("Failed", "NothingSelected", [])


def test_a_thousand_items_fit_in_a_queue_message_with_every_failure_listed() -> None:
    outcomes = [outcome("Failed" if n % 10 == 0 else "Succeeded", n, job_id=f"{n:08d}-0000-0000-0000-000000000000",
                        error_code="UserErrorVmNotInDesirableState" if n % 10 == 0 else None) for n in range(1000)]

    text = summary(batch(), outcomes, selected=1000, requested_at=NOW, now=NOW)
    document = result_of(text)

    assert len(text.encode()) <= 60 * 1024
    assert document["counts"] == {"Failed": 100, "Succeeded": 900}
    assert [item["status"] for item in document["items"][:100]] == ["Failed"] * 100
    listed = len(document["items"])
    assert document["itemsOmitted"] == 1000 - listed > 0
    # The most that fit: one more would not have.
    assert listed > 150


def test_the_status_may_be_given_for_an_early_end() -> None:
    error = ErrorInfo("BatchTooLarge", "too many")

    document = result_of(summary(batch(), [], selected=1001, requested_at=NOW, now=NOW, status=ResultStatus.REJECTED,
                                 error=error))

    assert (document["status"], document["selected"]) == ("Rejected", 1001)


# --- the published request schema -------------------------------------------------------------------


def request_schema_errors(document: dict[str, Any]) -> list[str]:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    from tests.conftest import ROOT

    schema = json.loads((ROOT / "schemas" / "backup-request.schema.json").read_text(encoding="utf-8"))
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return [error.message for error in validator.iter_errors(document)]


@pytest.mark.parametrize(
    "select",
    [{}, {"backupManagementType": "AzureIaasVM"}, {"friendlyNames": ["a", "b"], "policyName": "Gold"},
     {"friendlyNamePattern": "web-*"}],
)
def test_the_request_schema_takes_the_batch_forms_the_app_takes(select: dict[str, Any]) -> None:
    document = batch_document(select=select, retentionDays=5, properties={"backupType": "Full"})

    parse_batch(document, settings=SETTINGS, fallback_correlation_id="m")
    assert request_schema_errors(document) == []


@pytest.mark.parametrize(
    "changes",
    [
        {"select": {"backupManagementType": "MAB"}},
        {"select": {"friendlyNames": []}},
        {"select": {"name": "x"}},
        {"properties": {"objectType": "IaasVMBackupRequest"}},
        {"correlationId": "x" * 101},
        {"containerName": "IaasVMContainer;x"},
        {"batch": "other"},
    ],
)
def test_the_request_schema_refuses_what_the_app_refuses(changes: dict[str, Any]) -> None:
    document = batch_document(**changes)

    with pytest.raises(RequestRejected):
        parse_batch(document, settings=SETTINGS, fallback_correlation_id="m")
    assert request_schema_errors(document) != []


def test_an_item_s_request_message_is_a_request_the_schema_takes() -> None:
    parent = batch(retentionDays=3)
    request = child_request(parent, vm("vm1"), settings=SETTINGS, requested_at=NOW)

    document = json.loads(child_message(request))

    assert request_schema_errors(document) == []
    assert parse_request(document, settings=SETTINGS, now=NOW + timedelta(hours=5),
                         fallback_correlation_id="x") == request  # the same request however late it runs
