"""shared.workloads: objectType per item, backup types, default expiry per workload (az CLI rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.errors import RequestRejected
from shared.workloads import MAX_RETENTION_DAYS, BackupType, Expiry, Workload, build_properties
from tests.unit.builders import ITEMS, NOW

IN_30_DAYS = "2026-12-26T12:00:00Z"
IN_45_DAYS = "2027-01-10T12:00:00Z"
NO_EXPIRY = Expiry()


@pytest.mark.parametrize(
    ("item", "workload"),
    [
        ("VM;iaasvmcontainerv2;rg;vm", Workload.IAAS_VM),
        ("vm;iaasvmcontainerv2;rg;vm", Workload.IAAS_VM),
        ("AzureFileShare;share01", Workload.FILE_SHARE),
        ("azurefileshare;share01", Workload.FILE_SHARE),
        ("SQLDataBase;mssqlserver;sales", Workload.SQL_DATABASE),
        ("SQLDATABASE;mssqlserver;sales", Workload.SQL_DATABASE),
        ("SAPHanaDatabase;h22;h22", Workload.SAP_HANA_DATABASE),
        ("saphanadatabase;h22;h22", Workload.SAP_HANA_DATABASE),
        ("SAPAseDatabase;ase;db", Workload.SAP_ASE_DATABASE),
    ],
)
def test_workload_of_item(item: str, workload: Workload) -> None:
    assert Workload.of_item(item) is workload


@pytest.mark.parametrize(
    "item", ["", "MABFile;x", "VMX;rg;vm", "AzureSqlDb;x", "SAPHanaDBInstance;h22", "FileShare;x", " VM;x", "VM"]
)
def test_unknown_item_prefixes(item: str) -> None:
    # "VM" alone has no ';' part after it but is still the VM prefix; everything else is unknown.
    assert (Workload.of_item(item) is Workload.IAAS_VM) is (item == "VM")


@pytest.mark.parametrize(
    ("workload", "object_type", "is_database"),
    [
        (Workload.IAAS_VM, "IaasVMBackupRequest", False),
        (Workload.FILE_SHARE, "AzureFileShareBackupRequest", False),
        (Workload.SQL_DATABASE, "AzureWorkloadBackupRequest", True),
        (Workload.SAP_HANA_DATABASE, "AzureWorkloadBackupRequest", True),
        (Workload.SAP_ASE_DATABASE, "AzureWorkloadBackupRequest", True),
    ],
)
def test_object_types(workload: Workload, object_type: str, is_database: bool) -> None:
    assert workload.object_type == object_type
    assert workload.is_database is is_database


@pytest.mark.parametrize(
    ("value", "expected"),
    [("Full", BackupType.FULL), ("full", BackupType.FULL), ("FULL", BackupType.FULL),
     ("Differential", BackupType.DIFFERENTIAL), ("log", BackupType.LOG),
     ("copyonlyfull", BackupType.COPY_ONLY_FULL), ("CopyOnlyFull", BackupType.COPY_ONLY_FULL),
     ("Incremental", BackupType.INCREMENTAL)],
)
def test_backup_type_parse_is_case_insensitive(value: str, expected: BackupType) -> None:
    assert BackupType.parse(value) is expected


@pytest.mark.parametrize("value", ["", "Copy Only Full", "Snapshot", None, 1, True, ["Full"]])
def test_backup_type_parse_rejects_others(value: object) -> None:
    with pytest.raises(RequestRejected) as caught:
        BackupType.parse(value)

    assert caught.value.field_name == "properties.backupType"
    assert "must be one of Full, Differential, Log, CopyOnlyFull, Incremental" in caught.value.reason


# --- defaults ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "object_type"), [("vm", "IaasVMBackupRequest"), ("fileshare", "AzureFileShareBackupRequest")]
)
def test_vm_and_file_share_default_to_now_plus_30_days(kind: str, object_type: str) -> None:
    properties = build_properties(ITEMS[kind][1], {}, NO_EXPIRY, NOW)

    assert properties == {"objectType": object_type, "recoveryPointExpiryTimeInUTC": IN_30_DAYS}


WORKLOAD_DEFAULTS = [
    (kind, backup_type, expiry)
    for kind in ("sql", "hana", "ase")
    for backup_type, expiry in [("Full", IN_45_DAYS), ("full", IN_45_DAYS), ("CopyOnlyFull", IN_30_DAYS),
                                ("Differential", None), ("Log", None), ("Incremental", None)]
    if kind != "hana" or backup_type.lower() in {"full", "differential"}  # HANA: see test_hana_refuses
]


@pytest.mark.parametrize(("kind", "backup_type", "expiry"), WORKLOAD_DEFAULTS)
def test_workload_defaults_per_backup_type(kind: str, backup_type: str, expiry: str | None) -> None:
    properties = build_properties(ITEMS[kind][1], {"backupType": backup_type}, NO_EXPIRY, NOW)

    expected: dict[str, Any] = {"objectType": "AzureWorkloadBackupRequest",
                                "backupType": BackupType.parse(backup_type).value}
    if expiry is not None:
        expected["recoveryPointExpiryTimeInUTC"] = expiry
    assert properties == expected


@pytest.mark.parametrize("backup_type", ["Log", "log", "CopyOnlyFull", "Incremental"])
def test_hana_refuses(backup_type: str) -> None:
    with pytest.raises(RequestRejected) as caught:
        build_properties(ITEMS["hana"][1], {"backupType": backup_type}, NO_EXPIRY, NOW)

    assert caught.value.field_name == "properties.backupType"
    assert "SAP HANA" in caught.value.reason


@pytest.mark.parametrize("backup_type", ["Full", "Differential"])
def test_hana_takes_full_and_differential(backup_type: str) -> None:
    properties = build_properties(ITEMS["hana"][1], {"backupType": backup_type}, NO_EXPIRY, NOW)
    assert properties["backupType"] == backup_type


@pytest.mark.parametrize("kind", ["sql", "hana", "ase"])
def test_workloads_require_a_backup_type(kind: str) -> None:
    for given in ({}, {"backupType": None}):
        with pytest.raises(RequestRejected) as caught:
            build_properties(ITEMS[kind][1], given, NO_EXPIRY, NOW)
        assert caught.value.field_name == "properties.backupType"
        assert "required" in caught.value.reason


# --- expiry --------------------------------------------------------------------------------


@pytest.mark.parametrize(("kind", "given"), [("vm", {}), ("fileshare", {}), ("sql", {"backupType": "Full"}),
                                             ("ase", {"backupType": "CopyOnlyFull"})])
def test_given_instant_is_used(kind: str, given: dict[str, Any]) -> None:
    instant = datetime(2027, 3, 1, 8, 30, 15, 999_999, tzinfo=UTC)
    properties = build_properties(ITEMS[kind][1], given, Expiry(instant=instant), NOW)

    assert properties["recoveryPointExpiryTimeInUTC"] == "2027-03-01T08:30:15Z"


@pytest.mark.parametrize(("days", "expected"), [(1, "2026-11-27T12:00:00Z"), (14, "2026-12-10T12:00:00Z"),
                                                (365, "2027-11-26T12:00:00Z")])
def test_retention_days_is_counted_from_now(days: int, expected: str) -> None:
    properties = build_properties(ITEMS["vm"][1], {}, Expiry(retention_days=days), NOW)
    assert properties["recoveryPointExpiryTimeInUTC"] == expected


def test_longest_retention_is_99_years() -> None:
    assert MAX_RETENTION_DAYS == 36135
    properties = build_properties(ITEMS["vm"][1], {}, Expiry(retention_days=MAX_RETENTION_DAYS), NOW)
    assert properties["recoveryPointExpiryTimeInUTC"] == "2125-11-02T12:00:00Z"  # 99 x 365 days


@pytest.mark.parametrize("instant", [NOW, NOW - timedelta(seconds=1), datetime(2000, 1, 1, tzinfo=UTC)])
def test_expiry_in_the_past_or_now_is_rejected(instant: datetime) -> None:
    with pytest.raises(RequestRejected) as caught:
        build_properties(ITEMS["vm"][1], {}, Expiry(instant=instant), NOW)

    assert caught.value.field_name == "properties.recoveryPointExpiryTimeInUTC"
    assert "past" in caught.value.reason


@pytest.mark.parametrize("kind", ["sql", "hana", "ase"])
@pytest.mark.parametrize(
    "expiry", [Expiry(instant=datetime(2027, 1, 1, tzinfo=UTC)), Expiry(retention_days=10)]
)
def test_differential_log_incremental_take_no_expiry(kind: str, expiry: Expiry) -> None:
    for backup_type in ("Differential", "Log", "Incremental"):
        if kind == "hana" and backup_type != "Differential":
            continue
        with pytest.raises(RequestRejected) as caught:
            build_properties(ITEMS[kind][1], {"backupType": backup_type}, expiry, NOW)
        assert caught.value.field_name == "properties.recoveryPointExpiryTimeInUTC"
        assert "policy's retention" in caught.value.reason


# --- objectType and other properties -------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "object_type"),
    [("vm", "IaasVMBackupRequest"), ("vm", "iaasvmbackuprequest"), ("fileshare", "AZUREFILESHAREBACKUPREQUEST"),
     ("sql", "AzureWorkloadBackupRequest"), ("hana", "azureworkloadbackuprequest")],
)
def test_explicit_object_type_is_checked_case_insensitively_and_normalised(kind: str, object_type: str) -> None:
    given: dict[str, Any] = {"objectType": object_type}
    if kind in {"sql", "hana"}:
        given["backupType"] = "Full"
    properties = build_properties(ITEMS[kind][1], given, NO_EXPIRY, NOW)

    assert properties["objectType"] == Workload.of_item(ITEMS[kind][1]).object_type  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("kind", "object_type"),
    [("vm", "AzureWorkloadBackupRequest"), ("vm", "AzureFileShareBackupRequest"),
     ("fileshare", "IaasVMBackupRequest"), ("sql", "IaasVMBackupRequest"), ("vm", "IaasVMBackup"),
     ("vm", "")],
)
def test_object_type_mismatch_is_rejected(kind: str, object_type: str) -> None:
    with pytest.raises(RequestRejected) as caught:
        build_properties(ITEMS[kind][1], {"objectType": object_type, "backupType": "Full"}, NO_EXPIRY, NOW)

    assert caught.value.field_name == "properties.objectType"
    assert "items take" in caught.value.reason


@pytest.mark.parametrize("object_type", [1, True, ["IaasVMBackupRequest"], {"x": 1}])
def test_object_type_must_be_a_string(object_type: object) -> None:
    with pytest.raises(RequestRejected) as caught:
        build_properties(ITEMS["vm"][1], {"objectType": object_type}, NO_EXPIRY, NOW)

    assert caught.value.field_name == "properties.objectType"


@pytest.mark.parametrize("item", ["MABFile;x", "GenericDataSource;x", "x"])
def test_unknown_item_prefix_is_rejected(item: str) -> None:
    with pytest.raises(RequestRejected) as caught:
        build_properties(item, {}, NO_EXPIRY, NOW)

    assert caught.value.field_name == "protectedItemName"
    assert "VM;…" in caught.value.reason


@pytest.mark.parametrize("value", [True, False])
@pytest.mark.parametrize("kind", ["sql", "hana", "ase"])
def test_enable_compression_is_kept_for_workloads(kind: str, value: bool) -> None:
    properties = build_properties(ITEMS[kind][1], {"backupType": "Full", "enableCompression": value}, NO_EXPIRY, NOW)
    assert properties["enableCompression"] is value


@pytest.mark.parametrize("value", ["true", 1, 0, None, "false"])
def test_enable_compression_must_be_a_bool(value: object) -> None:
    with pytest.raises(RequestRejected) as caught:
        build_properties(ITEMS["sql"][1], {"backupType": "Full", "enableCompression": value}, NO_EXPIRY, NOW)

    assert caught.value.field_name == "properties.enableCompression"


@pytest.mark.parametrize("kind", ["vm", "fileshare"])
@pytest.mark.parametrize("key", ["enableCompression", "backupType", "policyId", "recoveryPointExpiryTime"])
def test_workload_only_or_unknown_properties_are_rejected_for_vm_and_file_share(kind: str, key: str) -> None:
    with pytest.raises(RequestRejected) as caught:
        build_properties(ITEMS[kind][1], {key: True}, NO_EXPIRY, NOW)

    assert caught.value.field_name == f"properties.{key}"
    assert "is not a property of" in caught.value.reason


def test_unknown_property_of_a_workload_is_rejected() -> None:
    with pytest.raises(RequestRejected) as caught:
        build_properties(ITEMS["sql"][1], {"backupType": "Full", "zzz": 1, "aaa": 2}, NO_EXPIRY, NOW)

    assert caught.value.field_name == "properties.aaa"  # the first unknown one, in sorted order
