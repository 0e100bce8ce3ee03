"""Injected faults: each kind, before or after the request took effect, by script and by rate."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests

from .conftest import VAULT, VM1, VM2, Client

STATUS = r"/operationsStatus/"
BACKUP = r"/backup\?"


def _script(*steps: dict[str, object]) -> dict[str, object]:
    return {"faults": {"script": list(steps)}}


def _accepted(arm: Client) -> int:
    return sum(arm.stats()["triggers_by_item"].values())


@pytest.mark.parametrize(("kind", "status", "code"), [("500", 500, "InternalServerError"),
                                                      ("503", 503, "ServiceUnavailable"),
                                                      ("429", 429, "TooManyRequests")])
def test_error_faults_answer_a_cloud_error_and_take_no_effect(arm: Client, kind: str, status: int, code: str) -> None:
    arm.configure(_script({"method": "POST", "path": BACKUP, "fault": kind, "retry_after": 7}))

    response = arm.trigger(VM1)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.headers["x-ms-request-id"]
    if kind != "500":
        assert response.headers["Retry-After"] == "7"
    assert _accepted(arm) == 0
    assert arm.stats()["faults"] == 1


@pytest.mark.parametrize(("when", "took_effect"), [("before", 0), ("after", 1)])
def test_drop_closes_the_connection_before_or_after_the_effect(arm: Client, when: str, took_effect: int) -> None:
    arm.configure(_script({"method": "POST", "path": BACKUP, "fault": "drop", "when": when}))

    with pytest.raises(requests.ConnectionError):
        arm.trigger(VM1)
    retry = arm.trigger(VM1)

    assert _accepted(arm) == took_effect + (retry.status_code == 202)
    assert retry.status_code == (400 if took_effect else 202)
    log = arm.admin("GET", "requests").json()["requests"]
    assert next((e["status"], e["fault"]) for e in log if e["kind"] == "trigger") == (None, "drop")


def _logged_delays(arm: Client, kind: str) -> list[tuple[str | None, float]]:
    log = arm.admin("GET", "requests").json()["requests"]
    return [(entry["fault"], entry["delay"]) for entry in log if entry["kind"] == kind]


def test_slow_answers_late_after_taking_effect(arm: Client) -> None:
    arm.configure(_script({"method": "POST", "path": BACKUP, "fault": "slow", "seconds": 0.4},
                          {"method": "POST", "path": BACKUP, "fault": "slow", "seconds": 5}))

    response = arm.trigger(VM1)
    with pytest.raises(requests.ReadTimeout):  # the answer is held back past the client's patience
        arm.trigger(VM2, timeout=0.3)

    assert response.status_code == 202
    assert _accepted(arm) == 2  # both took effect: slowness is not failure
    assert _logged_delays(arm, "trigger") == [("slow", 0.4), ("slow", 5.0)]


def test_slow_is_bounded(arm: Client) -> None:
    arm.configure({"faults": {"max_slow_seconds": 0.2,
                              "script": [{"method": "GET", "path": "backupJobs", "fault": "slow", "seconds": 300}]}})

    response = arm.get(f"{VAULT}/backupJobs")

    assert response.status_code == 200
    assert _logged_delays(arm, "job_list") == [("slow", 0.2)]


def test_malformed_answers_are_not_json(arm: Client) -> None:
    arm.configure(_script({"method": "POST", "path": BACKUP, "fault": "malformed"},
                          {"method": "GET", "path": STATUS, "fault": "malformed"}))

    accepted = arm.trigger(VM1)
    status = arm.get(accepted.headers["Azure-AsyncOperation"])

    assert accepted.status_code == 202
    assert status.status_code == 200
    for response in (accepted, status):
        with pytest.raises(ValueError):
            response.json()
    assert _accepted(arm) == 1


def test_missing_headers_leaves_a_202_without_its_urls(arm: Client) -> None:
    arm.configure(_script({"method": "POST", "path": BACKUP, "fault": "missing_headers"}))

    response = arm.trigger(VM1)

    assert response.status_code == 202
    assert "Location" not in response.headers and "Azure-AsyncOperation" not in response.headers
    assert _accepted(arm) == 1


def test_a_script_is_consumed_in_order_with_skips(arm: Client) -> None:
    arm.configure(_script(
        {"method": "POST", "path": BACKUP, "fault": "drop", "when": "after"},
        {"method": "GET", "path": STATUS, "fault": "503", "skip": 1, "retry_after": 3},
        {"method": "GET", "path": "backupJobs", "fault": "500", "times": 2},
    ))

    with pytest.raises(requests.ConnectionError):
        arm.trigger(VM1)
    arm.configure({"in_progress": "operation"})
    status_url = arm.trigger(VM1).headers["Azure-AsyncOperation"]
    statuses = [arm.get(status_url).status_code for _ in range(3)]
    jobs = [arm.get(f"{VAULT}/backupJobs").status_code for _ in range(3)]

    assert statuses == [200, 503, 200]
    assert jobs == [500, 500, 200]
    assert arm.stats()["script_remaining"] == 0
    assert arm.stats()["faults"] == 4


def test_a_script_step_waits_for_its_match(arm: Client) -> None:
    arm.configure(_script({"method": "GET", "path": STATUS, "fault": "500"}))

    assert arm.get(f"{VAULT}/backupJobs").status_code == 200
    assert arm.stats()["script_remaining"] == 1


def test_rates_fault_a_share_of_one_kind(arm: Client) -> None:
    arm.configure({"faults": {"seed": 7, "rates": [{"request": "job_list", "probability": 0.5, "fault": "503"}]}})

    codes = [arm.get(f"{VAULT}/backupJobs").status_code for _ in range(100)]
    other = [arm.get(f"{VAULT}/backupProtectedItems").status_code for _ in range(20)]

    assert 25 <= codes.count(503) <= 75
    assert set(codes) == {200, 503}
    assert set(other) == {200}


def test_rate_one_faults_every_request_and_zero_none(arm: Client) -> None:
    arm.configure({"faults": {"rates": [{"request": "*", "probability": 1.0, "fault": "500"}]}})
    assert arm.get(f"{VAULT}/backupJobs").status_code == 500

    arm.configure({"faults": {"rates": [{"request": "*", "probability": 0.0, "fault": "500"}]}})
    assert arm.get(f"{VAULT}/backupJobs").status_code == 200


def test_faults_configured_at_start_apply_to_the_identity_endpoint(make_arm: Callable[..., Client]) -> None:
    # The fixture's client fetches one token first; the script lets that one through.
    arm = make_arm(faults={"script": [{"method": "GET", "path": "/msi/token", "fault": "503", "skip": 1}]})

    response = requests.get(
        arm.endpoints["identity_endpoint"],
        params={"api-version": "2019-08-01", "resource": "https://management.azure.com/"},
        headers={"X-IDENTITY-HEADER": arm.endpoints["identity_header"]},
        timeout=10,
    )

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert arm.stats()["token_issued"] == 1
