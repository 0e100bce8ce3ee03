"""Every bundled sample in devtools/samples/ ends as the quick start promises, in a result the schema accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devtools.stack import SAMPLES
from tests.integration.conftest import MAIN_QUEUES, Suite

pytestmark = pytest.mark.integration

# sample file -> (status, job type); the correlationIds are the samples' own.
EXPECTED = {
    "fileshare-by-id.json": ("Succeeded", "AzureStorageJob"),
    "sql-full.json": ("Succeeded", "AzureWorkloadJob"),
    "vm-by-names.json": ("Succeeded", "AzureIaaSVMJob"),
    "vm-eventgrid.json": ("Succeeded", "AzureIaaSVMJob"),
    "vm-by-resource-id.json": ("Succeeded", "AzureIaaSVMJob"),
    "vm-arm-event.json": ("Succeeded", "AzureIaaSVMJob"),
    "invalid.json": ("Rejected", None),
}


def _correlation_id(path: Path) -> str:
    document = json.loads(path.read_text(encoding="utf-8"))
    if str(document.get("eventType", "")).startswith("Microsoft.Resources."):
        return str(document["id"])  # an ARM event is keyed by its id; its data.correlationId is ARM's own
    return str(document.get("data", document)["correlationId"])


def test_the_bundled_samples_are_the_ones_expected() -> None:
    assert sorted(path.name for path in SAMPLES.glob("*.json")) == sorted(EXPECTED)


def test_every_sample_reaches_its_terminal_result(suite: Suite) -> None:
    samples = sorted(SAMPLES.glob("*.json"))
    texts = {path.name: path.read_text(encoding="utf-8") for path in samples}
    for path in samples:
        suite.send(texts[path.name])  # verbatim, as `devtools/up` sends them
    by_file = {path.name: _correlation_id(path) for path in samples}

    results = suite.results().wait_for(by_file.values(), timeout=30)

    for name, (status, job_type) in EXPECTED.items():
        result = results[by_file[name]]
        suite.check_schema(result)
        assert result["status"] == status, (name, result)
        if status == "Rejected":
            assert result["rawMessage"] == texts[name]
            assert result["error"]["code"] == "InvalidRequest"
            assert result["error"]["target"]
            assert "jobId" not in result
            continue
        job = result["job"]
        assert result["jobId"]
        assert job["status"] == "Completed"
        assert job["operation"] == "Backup"
        assert job["jobType"] == job_type
        assert job["startTime"] and job["endTime"] and job["duration"]
        assert result["timings"]["triggeredAt"] and result["timings"]["completedAt"]
    assert "/protectedItems/AzureFileShare;share1" in results[by_file["fileshare-by-id.json"]]["protectedItemId"]
    assert results[by_file["vm-eventgrid.json"]]["request"]["protectedItemName"] == "VM;iaasvmcontainerv2;rg-app;vm2"
    for name, vm in (("vm-by-resource-id.json", "web1"), ("vm-arm-event.json", "web2")):
        result = results[by_file[name]]
        assert result["resourceId"].endswith(f"/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines/{vm}")
        assert result["protectedItemId"].endswith(f"/vaults/vault2/backupFabrics/Azure/protectionContainers/"
                                                  f"IaasVMContainer;iaasvmcontainerv2;rg-web;{vm}"
                                                  f"/protectedItems/VM;iaasvmcontainerv2;rg-web;{vm}")

    # One backup per accepted sample, and nothing sent to Azure for the invalid one.
    stats = suite.admin.stats()
    assert sum(stats["triggers_by_item"].values()) == 6
    # The sample by resource id named its region; only the ARM event's VM had to be read.
    assert (stats["backup_status"], stats["vm_get"]) == (2, 1)
    assert not any("secrets" in entry["path"] for entry in suite.admin.requests())
    suite.wait_until_idle(MAIN_QUEUES)
    assert all(len(found) == 1 for found in suite.results().by_id.values())
