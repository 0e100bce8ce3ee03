"""The admin API: counters, the request log, runtime configuration, reset and the clock."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from .conftest import VAULT, VM1, VM2, Client


def test_stats_count_each_kind_and_status(arm: Client) -> None:
    accepted = arm.trigger(VM1)
    arm.trigger(VM1)
    arm.get(accepted.headers["Azure-AsyncOperation"])
    arm.get(accepted.headers["Location"])
    arm.get(f"{VAULT}/backupJobs")
    arm.get(f"{VAULT}/backupJobs/nope")
    arm.get(f"{VAULT}/backupProtectedItems")
    arm.get(f"{VAULT}/backupProtectedItems", token="bogus")

    stats = arm.stats()

    assert {k: stats[k] for k in ("trigger", "operation_status", "operation_results", "job_get", "job_list",
                                  "items_list", "token_issued", "unauthorized", "throttled", "faults")} == {
        "trigger": 2, "operation_status": 1, "operation_results": 1, "job_get": 1, "job_list": 1,
        "items_list": 2, "token_issued": 1, "unauthorized": 1, "throttled": 0, "faults": 0,
    }
    assert stats["status_codes"] == {"200": 4, "202": 2, "400": 1, "401": 1, "404": 1}
    assert stats["distinct_tokens"] == 1


def test_triggers_by_item_reveal_duplicates(arm: Client) -> None:
    arm.trigger(VM1)
    arm.advance(600)
    arm.trigger(VM1)
    arm.trigger(VM2)

    by_item = arm.stats()["triggers_by_item"]

    assert sorted(by_item.values()) == [1, 2]
    assert any(key.endswith("/protectedItems/VM;iaasvmcontainerv2;rg-app;vm1") for key in by_item)


def test_distinct_tokens_counts_tokens_used_on_arm(arm: Client) -> None:
    second = arm.fetch_token()
    arm.get(f"{VAULT}/backupJobs")
    arm.get(f"{VAULT}/backupJobs", token=second)
    arm.get(f"{VAULT}/backupJobs", token=second)

    assert arm.stats()["distinct_tokens"] == 2


def test_request_log_has_token_hashes_never_tokens(arm: Client) -> None:
    arm.get(f"{VAULT}/backupJobs")
    arm.trigger(VM1)

    log = arm.admin("GET", "requests").json()
    later = arm.admin("GET", "requests?since=1").json()

    entries = log["requests"]
    assert [e["seq"] for e in entries] == [1, 2, 3]
    assert entries[0]["kind"] == "token" and entries[0]["token"] is None
    assert entries[1]["method"] == "GET" and entries[1]["status"] == 200
    assert entries[2]["path"].startswith("/subscriptions/") and entries[2]["status"] == 202
    assert entries[2]["token"] == hashlib.sha256(arm.token.encode()).hexdigest()[:12]
    assert arm.token not in str(log)
    assert [e["seq"] for e in later["requests"]] == [2, 3] and later["last_seq"] == 3


def test_config_merges_and_reads_back(arm: Client) -> None:
    merged = arm.configure({"defaults": {"job_seconds": 30}, "items": {VM1[1]: {"job_outcome": "Failed"}}})

    assert merged["defaults"]["job_seconds"] == 30
    assert merged["defaults"]["operation_seconds"] == 120
    assert merged["items"] == {VM1[1]: {"job_outcome": "Failed"}}
    assert arm.admin("GET", "config").json() == merged
    removed = arm.configure({"items": {VM1[1]: None}})
    assert removed["items"] == {}


@pytest.mark.parametrize(
    "patch",
    [
        {"no_such_setting": 1},
        {"defaults": {"job_outcome": "Exploded"}},
        {"throttle": {"writes": {"capacity": 0, "refill_per_second": 1}}},
        {"faults": {"rates": [{"request": "trigger", "probability": 2, "fault": "500"}]}},
        {"faults": {"script": [{"path": "(", "fault": "500"}]}},
        {"faults": {"script": [{"path": "x", "fault": "slow", "seconds": 100000}]}},
        {"arm_port": 1234},
        {"items": {"x": {"job_seconds": -1}}},
    ],
)
def test_invalid_config_is_refused_and_changes_nothing(arm: Client, patch: dict[str, object]) -> None:
    before = arm.admin("GET", "config").json()

    response = arm.admin("POST", "config", patch)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "InvalidConfiguration"
    assert arm.admin("GET", "config").json() == before


def test_reset_forgets_operations_jobs_counters_and_log(arm: Client) -> None:
    arm.configure({"faults": {"script": [{"method": "GET", "path": "backupJobs", "fault": "500"}]}})
    status_url = arm.trigger(VM1).headers["Azure-AsyncOperation"]
    assert arm.get(f"{VAULT}/backupJobs").status_code == 500

    assert arm.admin("POST", "reset").status_code == 204

    stats = arm.stats()
    assert stats["trigger"] == 0 and stats["triggers_by_item"] == {} and stats["status_codes"] == {}
    assert arm.admin("GET", "requests").json()["requests"] == []
    assert arm.get(status_url).status_code == 404
    assert stats["script_remaining"] == 1
    assert arm.trigger(VM1).status_code == 202


def test_clock_reads_and_advances(arm: Client) -> None:
    before = arm.admin("GET", "clock").json()

    after = arm.admin("POST", "clock", {"advance_seconds": 86400}).json()

    assert before["now"].startswith("2026-01-01T00:")
    assert after["now"].startswith("2026-01-02T00:")
    assert arm.admin("POST", "clock", {"advance_seconds": -5}).status_code == 400


def test_time_scale_changes_at_runtime_without_jumping(make_arm: Callable[..., Client]) -> None:
    arm = make_arm(time_scale=1)
    status_url = arm.trigger(VM1).headers["Azure-AsyncOperation"]

    arm.configure({"time_scale": 1000000})

    assert arm.admin("GET", "clock").json()["now"].startswith("2026-01-0")
    assert arm.get(status_url).json()["status"] == "Succeeded"


def test_unknown_admin_action_is_404(arm: Client) -> None:
    assert arm.admin("GET", "nothing").status_code == 404
    assert arm.admin("POST", "config", None).status_code == 200
