"""The emulator's answers against the official x-ms-examples, field by field: names, shapes, value types."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from .conftest import VAULT, VM1, VM2, Client, example

ISO_DURATION = re.compile(r"^PT(\d+H)?(\d+M)?(\d+(\.\d+)?S)?$")


def keys_of_path(url: str) -> list[str]:
    """The literal half of an ARM path (/key/value/key/value…): what must match, names aside."""
    return urlsplit(url).path.split("/")[1::2]


def assert_timestamp(value: str) -> None:
    assert value.endswith("Z")
    datetime.fromisoformat(value)


def types_of(body: dict[str, Any]) -> dict[str, type]:
    return {key: type(value) for key, value in body.items()}


def test_trigger_202_matches_the_example(arm: Client) -> None:
    expected = example("TriggerBackup_Post.json")["responses"]["202"]["headers"]

    response = arm.trigger(VM1)

    assert response.status_code == 202
    assert response.content == b""
    for name in expected:
        assert name in response.headers
    for name in ("Location", "Azure-AsyncOperation"):
        ours, theirs = response.headers[name], expected[name]
        assert ours.startswith(arm.base + "/Subscriptions/")
        assert keys_of_path(ours) == keys_of_path(theirs)
        assert urlsplit(ours).query == urlsplit(theirs).query == "api-version=2016-12-01"
    assert int(response.headers["Retry-After"]) >= 1
    assert response.headers["x-ms-request-id"]
    assert response.headers["x-ms-correlation-request-id"]
    assert int(response.headers["x-ms-ratelimit-remaining-subscription-writes"]) >= 0


def test_operation_urls_may_spell_the_item_differently_and_still_work(arm: Client) -> None:
    response = arm.trigger(VM2)

    status_url = response.headers["Azure-AsyncOperation"]
    assert ";iaasvmcontainer;" in status_url and ";iaasvmcontainerv2;" not in status_url
    assert arm.get(status_url).status_code == 200
    assert arm.get(response.headers["Location"]).status_code == 202


def test_operation_status_matches_the_examples_while_running_and_when_done(arm: Client) -> None:
    running_example = example("ProtectedItem_Delete_OperationStatus.json")["responses"]["200"]["body"]
    done_example = example("ProtectedItemOperationStatus.json")["responses"]["200"]["body"]
    status_url = arm.trigger(VM1).headers["Azure-AsyncOperation"]

    running = arm.get(status_url)
    arm.advance(120)
    done = arm.get(status_url)

    assert running.status_code == 200 and int(running.headers["Retry-After"]) >= 1
    assert types_of(running.json()) == types_of(running_example)
    assert running.json()["status"] == "InProgress"
    assert done.status_code == 200 and "Retry-After" not in done.headers
    body = done.json()
    assert types_of(body) == types_of(done_example)
    assert body["status"] == "Succeeded"
    assert body["properties"].keys() == done_example["properties"].keys()
    assert body["properties"]["objectType"] == done_example["properties"]["objectType"]
    assert body["id"] == body["name"] == urlsplit(status_url).path.rsplit("/", 1)[-1]
    assert_timestamp(body["startTime"])
    assert_timestamp(body["endTime"])


def test_operation_results_follow_the_example_codes(arm: Client) -> None:
    expected = example("ProtectedItemOperationResults.json")["responses"]
    location = arm.trigger(VM1).headers["Location"]

    running = arm.get(location)
    arm.advance(120)
    done = arm.get(location)

    assert running.status_code == 202
    assert set(expected["202"]["headers"]) <= set(running.headers)
    assert keys_of_path(running.headers["Location"]) == keys_of_path(expected["202"]["headers"]["Location"])
    assert done.status_code == 204 and "204" in expected
    assert done.content == b""


def _job_id(arm: Client) -> str:
    status_url = arm.trigger(VM1, headers={"x-ms-client-request-id": "req-42"}).headers["Azure-AsyncOperation"]
    arm.advance(120)
    return str(arm.get(status_url).json()["properties"]["jobId"])


def test_job_details_match_the_example(arm: Client) -> None:
    expected = example("GetJobDetails.json")["responses"]["200"]["body"]
    job_id = _job_id(arm)

    body = arm.get(f"{VAULT}/backupJobs/{job_id}").json()

    assert body.keys() == expected.keys()
    assert body["type"] == expected["type"]
    assert keys_of_path(arm.base + body["id"]) == keys_of_path("https://h" + expected["id"])
    props, their_props = body["properties"], expected["properties"]
    assert props.keys() == their_props.keys()
    assert types_of(props) == types_of(their_props)
    for field in ("jobType", "backupManagementType", "operation", "status", "virtualMachineVersion"):
        assert props[field] == their_props[field]
    assert props["activityId"] == "req-42"
    assert props["entityFriendlyName"] == "vm1"
    assert ISO_DURATION.match(props["duration"])
    assert props["extendedInfo"].keys() == their_props["extendedInfo"].keys()
    tasks, their_tasks = props["extendedInfo"]["tasksList"], their_props["extendedInfo"]["tasksList"]
    for task, their_task in zip(tasks, their_tasks, strict=True):
        assert task.keys() == their_task.keys()
        assert task["taskId"] == their_task["taskId"]


def test_job_list_entries_match_the_example_running_and_completed(arm: Client) -> None:
    running_example, completed_example = example("ListJobs.json")["responses"]["200"]["body"]["value"]
    _job_id(arm)
    arm.advance(600)
    _job_id(arm)

    body = arm.get(f"{VAULT}/backupJobs").json()

    assert set(body) == {"value"}
    running, completed = body["value"]
    assert running["properties"].keys() == running_example["properties"].keys()
    assert completed["properties"].keys() == completed_example["properties"].keys()
    assert (running["properties"]["status"], completed["properties"]["status"]) == ("InProgress", "Completed")
    assert types_of(completed["properties"]) == types_of(completed_example["properties"])


def test_job_list_accepts_the_example_filter_verbatim(arm: Client) -> None:
    params = example("ListJobsWithAllSupportedFilters.json")["parameters"]
    _job_id(arm)

    wide = params["$filter"].replace("2017-11-29", "2030-01-01")
    matching = arm.get(arm.url(f"{VAULT}/backupJobs", params["api-version"], **{"$filter": wide}))
    verbatim = arm.get(arm.url(f"{VAULT}/backupJobs", params["api-version"], **{"$filter": params["$filter"]}))

    assert matching.status_code == 200 and len(matching.json()["value"]) == 1
    assert verbatim.status_code == 200 and verbatim.json()["value"] == []


def test_protected_items_match_the_example(arm: Client) -> None:
    params = example("BackupProtectedItems_List.json")["parameters"]
    expected = example("BackupProtectedItems_List.json")["responses"]["200"]["body"]["value"][0]

    url = arm.url(f"{VAULT}/backupProtectedItems", params["api-version"], **{"$filter": params["$filter"]})
    response = arm.get(url)

    assert response.status_code == 200
    items = response.json()["value"]
    assert {i["properties"]["friendlyName"] for i in items} == {"vm1", "vm2", "vm-slow", "vm-broken"}
    first = items[0]
    assert first.keys() == expected.keys()
    assert first["type"] == expected["type"]
    assert first["properties"].keys() == expected["properties"].keys()
    assert types_of(first["properties"]) == types_of(expected["properties"])
    for field in ("protectionStatus", "protectionState", "healthStatus", "backupManagementType", "workloadType"):
        assert first["properties"][field] == expected["properties"][field]
