"""Job and protected item lists: $filter as the service reads it, and paging through nextLink."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from .conftest import SHARE, SHARE_BODY, SQL, SQL_BODY, VAULT, VM1, VM2, Client, wait_for


def _all_pages(arm: Client, url: str) -> tuple[list[dict[str, Any]], list[str]]:
    values: list[dict[str, Any]] = []
    links: list[str] = []
    next_url: str | None = url
    while next_url:
        response = arm.get(next_url)
        assert response.status_code == 200, response.text
        body = response.json()
        values.extend(body["value"])
        next_url = body.get("nextLink")
        if next_url:
            links.append(next_url)
    return values, links


def _run_jobs(arm: Client) -> None:
    """Five jobs in vault1: vm1 twice (first completed), vm2, the share, the SQL database."""
    arm.trigger(VM1)
    arm.advance(700)
    arm.trigger(VM1)
    arm.trigger(VM2)
    arm.trigger(SHARE, SHARE_BODY)
    arm.trigger(SQL, SQL_BODY)
    arm.advance(1)


def test_jobs_page_through_next_links(arm: Client) -> None:
    arm.configure({"page_size": 2})
    _run_jobs(arm)

    jobs, links = _all_pages(arm, arm.url(f"{VAULT}/backupJobs", **{"$filter": "operation eq 'Backup'"}))

    assert len(jobs) == 5 and len({j["name"] for j in jobs}) == 5
    assert len(links) == 2
    for link in links:
        assert link.startswith(arm.base + VAULT + "/backupJobs?")
        query = parse_qs(urlsplit(link).query)
        assert query["api-version"] == ["2024-04-01"]
        assert query["$filter"] == ["operation eq 'Backup'"]
        assert query["$skipToken"]
    starts = [j["properties"]["startTime"] for j in jobs]
    assert starts == sorted(starts, reverse=True)


def test_protected_items_page_with_a_skip_token(arm: Client) -> None:
    arm.configure({"page_size": 3})

    items, links = _all_pages(arm, arm.url(f"{VAULT}/backupProtectedItems"))

    assert len(items) == 8 and len(links) == 2
    assert "$skipToken=" in links[0]
    assert {i["properties"]["workloadType"] for i in items} == {
        "VM", "AzureFileShare", "SQLDataBase", "SAPHanaDatabase", "SAPAseDatabase"
    }


def test_a_forged_skip_token_is_refused(arm: Client) -> None:
    response = arm.get(arm.url(f"{VAULT}/backupJobs", **{"$skipToken": "garbage!"}))

    assert response.status_code == 400


@pytest.mark.parametrize(
    ("filter_", "expected"),
    [
        ("status eq 'InProgress'", 4),
        ("status eq 'completed'", 1),
        ("backupManagementType eq 'AzureIaasVM'", 3),
        ("backupManagementType eq 'AzureWorkload' and status eq 'InProgress'", 1),
        ("operation eq 'ConfigureBackup'", 0),
        ("startTime eq '2026-01-01 00:05:00 AM' and endTime eq '2026-01-01 12:59:59 PM'", 4),
        ("startTime eq '2026-01-01 12:00:00 AM' and endTime eq '2026-01-01 12:05:00 AM'", 1),
        ("startTime eq '2026-01-01T00:05:00Z'", 4),
    ],
)
def test_job_filters(arm: Client, filter_: str, expected: int) -> None:
    _run_jobs(arm)

    jobs, _ = _all_pages(arm, arm.url(f"{VAULT}/backupJobs", **{"$filter": filter_}))

    assert len(jobs) == expected


def test_job_filter_by_id(arm: Client) -> None:
    _run_jobs(arm)
    some = arm.get(f"{VAULT}/backupJobs").json()["value"][2]

    jobs, _ = _all_pages(arm, arm.url(f"{VAULT}/backupJobs", **{"$filter": f"jobId eq '{some['name']}'"}))

    assert [j["name"] for j in jobs] == [some["name"]]


@pytest.mark.parametrize(
    ("filter_", "names"),
    [
        ("itemType eq 'SAPHanaDatabase'", {"SAPHanaDatabase;h01;systemdb"}),
        ("backupManagementType eq 'AzureStorage'", {"AzureFileShare;share1"}),
        ("friendlyName eq 'VM1'", {"VM;iaasvmcontainerv2;rg-app;vm1"}),
        ("policyName eq 'SqlPolicy'", {"SQLDataBase;mssqlserver;db1"}),
    ],
)
def test_item_filters(arm: Client, filter_: str, names: set[str]) -> None:
    items, _ = _all_pages(arm, arm.url(f"{VAULT}/backupProtectedItems", **{"$filter": filter_}))

    assert {i["name"] for i in items} == names


@pytest.mark.parametrize(
    "filter_",
    ["colour eq 'blue'", "status ne 'Failed'", "status eq Failed", "startTime eq 'yesterday'"],
)
def test_bad_filters_are_400(arm: Client, filter_: str) -> None:
    response = arm.get(arm.url(f"{VAULT}/backupJobs", **{"$filter": filter_}))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BMSUserErrorInvalidFilter"


def test_last_backup_follows_finished_jobs(arm: Client) -> None:
    arm.configure({"items": {VM1[1]: {"job_outcome": "Failed"}}})
    arm.trigger(VM1)
    arm.advance(600)

    items, _ = _all_pages(arm, arm.url(f"{VAULT}/backupProtectedItems", **{"$filter": "friendlyName eq 'vm1'"}))
    job = arm.get(f"{VAULT}/backupJobs").json()["value"][0]["properties"]

    assert items[0]["properties"]["lastBackupStatus"] == job["status"] == "Failed"
    assert items[0]["properties"]["lastBackupTime"] == job["endTime"]


def test_jobs_are_stamped_by_the_callers_clock_however_far_the_emulated_clock_runs_ahead(
    make_arm: Callable[..., Client],
) -> None:
    arm = make_arm(time_scale=86400, clock_start=None)  # a day per real second, from the real time now
    before = datetime.now(UTC)
    arm.trigger(VM1)
    after = datetime.now(UTC)
    wait_for(lambda: datetime.fromisoformat(arm.admin("GET", "clock").json()["now"]) > after + timedelta(days=2))

    # The window a caller writes from its own clock, ending now: no day of slack needed.
    window = {"$filter": f"startTime eq '{_filter_time(before - timedelta(minutes=1))}'"
                         f" and endTime eq '{_filter_time(datetime.now(UTC))}'"}
    jobs, _ = _all_pages(arm, arm.url(f"{VAULT}/backupJobs", **window))

    [job] = [entry["properties"] for entry in jobs]
    started = datetime.fromisoformat(job["startTime"])
    assert before - timedelta(seconds=1) <= started <= after + timedelta(seconds=1)
    # Durations stay emulated: the 10-minute job is over, and ends ten minutes after its start.
    assert job["status"] == "Completed"
    assert datetime.fromisoformat(job["endTime"]) - started == timedelta(minutes=10)


def _filter_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %I:%M:%S %p")
