"""Plain builders shared by the unit tests: settings, requests, follow-ups, ARM clients."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

from shared.arm import ArmClient
from shared.followup import FollowUp, Phase
from shared.messages import BackupRequest, parse_request
from shared.settings import Settings
from shared.targeting import ResourceTarget, parse_target
from shared.workflow import Services
from tests.fakes import ARM, Clock, FakeCredential, FakeTransport, RecordingSender, env, load_example, session_with

SUB = "00000000-0000-0000-0000-000000000000"
"""The subscription of the official REST examples."""
OTHER_SUB = "11111111-2222-3333-4444-555555555555"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
RG = "linuxRsVaultRG"
VAULT = "linuxRsVault"

# (containerName, protectedItemName) per workload, as Azure spells them.
ITEMS: dict[str, tuple[str, str]] = {
    "vm": ("IaasVMContainer;iaasvmcontainerv2;testrg;v1win2012r", "VM;iaasvmcontainerv2;testrg;v1win2012r"),
    "fileshare": ("StorageContainer;Storage;testrg;stacct01", "AzureFileShare;share01"),
    "sql": ("VMAppContainer;Compute;testrg;sqlvm01", "SQLDataBase;mssqlserver;sales"),
    "hana": ("VMAppContainer;Compute;testrg;hanavm01", "SAPHanaDatabase;h22;h22"),
    "ase": ("VMAppContainer;Compute;testrg;asevm01", "SAPAseDatabase;ase01;db01"),
}
DATABASES = {"sql", "hana", "ase"}


VM_GROUP, VM_NAME = "testrg", "v1win2012r"
"""The VM behind ``ITEMS["vm"]``."""


def make_settings(**overrides: str) -> Settings:
    return Settings.from_environment(env(**overrides))


def names(kind: str = "vm", **changes: Any) -> dict[str, Any]:
    """A request document naming one item by its six names."""
    container, item = ITEMS[kind]
    document: dict[str, Any] = {
        "subscriptionId": SUB,
        "resourceGroupName": RG,
        "vaultName": VAULT,
        "fabricName": "Azure",
        "containerName": container,
        "protectedItemName": item,
    }
    if kind in DATABASES:
        document["properties"] = {"backupType": "Full"}
    document.update(changes)
    return document


def item_id(kind: str = "vm", sub: str = SUB) -> str:
    container, item = ITEMS[kind]
    return (
        f"/subscriptions/{sub}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/{VAULT}"
        f"/backupFabrics/Azure/protectionContainers/{container}/protectedItems/{item}"
    )


def backup_request(
    kind: str = "vm", *, settings: Settings | None = None, now: datetime = NOW, **changes: Any
) -> BackupRequest:
    return parse_request(
        names(kind, **changes), settings=settings or make_settings(), now=now, fallback_correlation_id="corr-1"
    )


def follow_up(
    phase: Phase = Phase.TRIGGER, *, request: BackupRequest | None = None, started: datetime = NOW, **changes: Any
) -> FollowUp:
    base = FollowUp(
        request=request or backup_request(), phase=phase, requested_at=started, phase_started_at=started
    )
    return base.advance(**changes) if changes else base


def vm_id(sub: str = SUB, group: str = VM_GROUP, name: str = VM_NAME) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/Microsoft.Compute/virtualMachines/{name}"


def by_resource(**changes: Any) -> dict[str, Any]:
    """A request document naming the VM by its resource id."""
    return {"resourceId": vm_id(), **changes}


def resource_target(*, settings: Settings | None = None, now: datetime = NOW, **changes: Any) -> ResourceTarget:
    return parse_target(
        by_resource(**changes), settings=settings or make_settings(), now=now, fallback_correlation_id="corr-1"
    )


def backup_status_body(**changes: Any) -> dict[str, Any]:
    """The official GetBackupStatus example's answer, about our VM and vault (its spelling kept)."""
    body: dict[str, Any] = {
        **load_example("2024-10-01/GetBackupStatus.json")["responses"]["200"]["body"],
        "vaultId": f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/Vaults/{VAULT}",
        "containerName": f"iaasvmcontainer;iaasvmcontainerv2;{VM_GROUP};{VM_NAME}",
        "protectedItemName": f"vm;iaasvmcontainerv2;{VM_GROUP};{VM_NAME}",
    }
    body.update(changes)
    return {key: value for key, value in body.items() if value is not None}


def operation_url(request: BackupRequest, endpoint: str = ARM, operation: str = "op-1") -> str:
    return f"{endpoint}{request.item.item_path}/operationsStatus/{operation}?api-version=2016-12-01"


def location_url(request: BackupRequest, endpoint: str = ARM, operation: str = "op-1") -> str:
    return f"{endpoint}{request.item.item_path}/operationResults/{operation}?api-version=2016-12-01"


def arm_client(
    transport: FakeTransport,
    *,
    settings: Settings | None = None,
    credential: FakeCredential | None = None,
    clock: Clock | None = None,
) -> ArmClient:
    return ArmClient(
        settings or make_settings(), credential or FakeCredential(), session_with(transport), clock or Clock(NOW)
    )


def services(
    transport: FakeTransport,
    *,
    settings: Settings | None = None,
    credential: FakeCredential | None = None,
    clock: Clock | None = None,
    seed: int = 7,
) -> tuple[Services, RecordingSender, Clock]:
    settings = settings or make_settings()
    clock = clock or Clock(NOW)
    sender = RecordingSender()
    arm = arm_client(transport, settings=settings, credential=credential, clock=clock)
    return Services(settings, arm, sender, clock, random.Random(seed)), sender, clock


def _result_validator() -> Any:
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    from tests.conftest import ROOT

    schema = json.loads((ROOT / "schemas" / "backup-result.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


RESULT_VALIDATOR = _result_validator()


def result_of(text: str) -> dict[str, Any]:
    """A result message read back, after checking it against the published JSON Schema."""
    document: dict[str, Any] = json.loads(text)
    errors = sorted(RESULT_VALIDATOR.iter_errors(document), key=str)
    assert not errors, [f"{list(error.absolute_path)}: {error.message}" for error in errors]
    return document
