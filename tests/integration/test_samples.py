"""Every bundled sample in devtools/samples/ ends as its name says, in a result the schema accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devtools.funchost.processes import wait_until
from devtools.quickstart import DEMO_ALLOWED, SAMPLES
from tests.integration.conftest import APP_TIMING, FAST_POLLING, AppQueues, Suite, unique

pytestmark = pytest.mark.integration

SUCCEEDED = {  # sample file -> the job type of its backup
    "fileshare-by-id.json": "AzureStorageJob",
    "sql-full.json": "AzureWorkloadJob",
    "vm-by-names.json": "AzureIaaSVMJob",
    "vm-eventgrid.json": "AzureIaaSVMJob",
    "vm-by-resource-id.json": "AzureIaaSVMJob",
    "vm-arm-event.json": "AzureIaaSVMJob",
}
REFUSED = {  # sample file -> status, error code, target, the start of the message
    "rejected-path-traversal.json": ("Rejected", "InvalidRequest", "protectedItemName", "protectedItemName: must not "
                                     "contain '/'"),
    "rejected-missing-backup-type.json": ("Rejected", "InvalidRequest", "properties.backupType",
                                          "properties.backupType: is required for database workloads"),
    "rejected-not-json.json": ("Rejected", "InvalidRequest", "message", "message: is not valid JSON"),
    "rejected-other-subscription.json": ("Rejected", "NotAllowed", "subscriptionId",
                                         "subscriptionId: is not in ALLOWED_SUBSCRIPTIONS"),
    "failed-vm-not-ready.json": ("Failed", "UserErrorVmNotInDesirableState", None,
                                 "VM is not in a state that allows backups."),
}
BATCH = {  # sample file -> the friendly names of the items it selects, all backed up
    "vm-batch.json": ("batch-a", "batch-b", "batch-c"),
}
SAMPLE_SETTINGS = {**APP_TIMING, **FAST_POLLING, **DEMO_ALLOWED}  # the allow-list as devtools/up sets it


def test_the_bundled_samples_are_the_ones_expected() -> None:
    assert sorted(path.name for path in SAMPLES.glob("*.json")) == sorted({**SUCCEEDED, **REFUSED, **BATCH})


def test_each_sample_named_for_a_refusal_is_refused_for_that_reason_alone() -> None:
    traversal = json.loads((SAMPLES / "rejected-path-traversal.json").read_text(encoding="utf-8"))
    assert "/../" in traversal["protectedItemName"]
    with pytest.raises(ValueError):
        json.loads((SAMPLES / "rejected-not-json.json").read_text(encoding="utf-8"))
    other = json.loads((SAMPLES / "rejected-other-subscription.json").read_text(encoding="utf-8"))
    assert SAMPLE_SETTINGS["ALLOWED_SUBSCRIPTIONS"] not in other["protectedItemId"]


def _key(text: str) -> tuple[str, str]:
    """How its result is found: by the sample's key, or by its raw text when it is not JSON."""
    try:
        document = json.loads(text)
    except ValueError:
        return "rawMessage", text
    if str(document.get("eventType", "")).startswith("Microsoft.Resources."):
        return "correlationId", str(document["id"])  # an ARM event is keyed by its id; data.correlationId is ARM's
    return "correlationId", str(document.get("data", document)["correlationId"])


def test_every_sample_reaches_the_result_its_name_promises(suite: Suite) -> None:
    samples = sorted(SAMPLES.glob("*.json"))
    texts = {path.name: path.read_text(encoding="utf-8") for path in samples}
    keys = {name: _key(text) for name, text in texts.items()}
    queues = AppQueues.with_prefix(unique("it-samples"))
    collector = suite.results(queues)

    def found() -> dict[str, list[dict[str, Any]]]:
        collector.poll()
        received = [result for results in collector.by_id.values() for result in results]
        return {name: [r for r in received if r.get(field) == value] for name, (field, value) in keys.items()}

    with suite.extra_host("samples", queues, env=SAMPLE_SETTINGS):
        for path in samples:
            suite.send(texts[path.name], queues)  # verbatim, as `devtools/up` sends them
        wait_until(lambda: all(found().values()) or None, timeout=45, what="a result for every sample", interval=0.2)
        suite.wait_until_idle(queues)
        by_name = found()

    # One result per sample, counted over what actually arrived after the queues went idle.
    assert {name: len(results) for name, results in by_name.items()} == dict.fromkeys(texts, 1)
    for name, job_type in SUCCEEDED.items():
        [result] = by_name[name]
        suite.check_schema(result)
        assert result["status"] == "Succeeded", (name, result)
        job = result["job"]
        assert result["jobId"]
        assert (job["status"], job["operation"], job["jobType"]) == ("Completed", "Backup", job_type)
        assert job["startTime"] and job["endTime"] and job["duration"]
        assert result["timings"]["triggeredAt"] and result["timings"]["completedAt"]
    for name, (status, code, target, message) in REFUSED.items():
        [result] = by_name[name]
        suite.check_schema(result)
        assert (result["status"], result["error"]["code"], result["error"].get("target")) == (status, code, target)
        assert result["error"]["message"].startswith(message), result["error"]
        if status == "Rejected":
            assert result["rawMessage"] == texts[name]
            assert "jobId" not in result
    for name, vms in BATCH.items():  # the summary: its items each ran under a key of their own
        [summary] = by_name[name]
        suite.check_schema(summary)
        assert (summary["kind"], summary["status"], summary["selected"]) == ("batch", "Succeeded", len(vms))
        assert summary["counts"] == {"Succeeded": len(vms)}
        assert sorted(item["protectedItemId"].rsplit(";", 1)[1] for item in summary["items"]) == sorted(vms)
    assert "/protectedItems/AzureFileShare;share1" in by_name["fileshare-by-id.json"][0]["protectedItemId"]
    assert by_name["vm-eventgrid.json"][0]["request"]["protectedItemName"] == "VM;iaasvmcontainerv2;rg-app;vm2"
    for name, vm in (("vm-by-resource-id.json", "web1"), ("vm-arm-event.json", "web2")):
        [result] = by_name[name]
        assert result["resourceId"].endswith(f"/resourceGroups/rg-web/providers/Microsoft.Compute/virtualMachines/{vm}")
        assert result["protectedItemId"].endswith(f"/vaults/vault2/backupFabrics/Azure/protectionContainers/"
                                                  f"IaasVMContainer;iaasvmcontainerv2;rg-web;{vm}"
                                                  f"/protectedItems/VM;iaasvmcontainerv2;rg-web;{vm}")

    # One backup per sample that reached Azure; nothing sent for the rejected ones.
    stats = suite.admin.stats()
    batched = sum(len(vms) for vms in BATCH.values())
    assert sum(stats["triggers_by_item"].values()) == len(SUCCEEDED) + 1 + batched  # + the VM whose job fails
    # The sample by resource id named its region; only the ARM event's VM had to be read.
    assert (stats["backup_status"], stats["vm_get"]) == (2, 1)
    paths = [entry["path"] for entry in suite.admin.requests()]
    assert not any("secrets" in path or ".." in path or "11111111" in path for path in paths)
