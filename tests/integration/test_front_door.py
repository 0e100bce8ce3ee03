"""The HTTP front door over real sockets: a Logic-Apps-like client against the local host, Azurite and the emulator.

The client POSTs, then follows ``Location`` honouring ``Retry-After`` until a non-202, exactly as
a Logic Apps HTTP action does; its final body must be the document the results queue got.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote, unquote

import pytest
import requests

from tests.integration.conftest import MAIN_QUEUES, Suite, item_id, unique, vm_names, vm_resource_id
from tests.integration.logicapps import Exchange, LogicAppsHttpAction

pytestmark = pytest.mark.integration

FILE_SHARE = {
    "protectedItemId": "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-backup/providers"
    "/Microsoft.RecoveryServices/vaults/vault1/backupFabrics/Azure/protectionContainers"
    "/StorageContainer;Storage;rg-data;stdata01/protectedItems/AzureFileShare;share1",
}
SQL = {
    **vm_names("vault1", "unused"),
    "containerName": "VMAppContainer;Compute;rg-db;sqlvm",
    "protectedItemName": "SQLDataBase;mssqlserver;db1",
    "properties": {"backupType": "Full"},
}


def _run(suite: Suite, body: dict[str, Any]) -> tuple[LogicAppsHttpAction, Exchange]:
    action = LogicAppsHttpAction()
    return action, action.run(suite.api_url, body)


def test_a_logic_apps_http_action_ends_with_the_result_the_results_queue_got(suite: Suite) -> None:
    cases: dict[str, tuple[dict[str, Any], int, str]] = {
        "vm": ({**vm_names("vault-it", "front-vm")}, 200, "Succeeded"),
        "fileshare": (dict(FILE_SHARE), 200, "Succeeded"),
        "sql": (dict(SQL), 200, "Succeeded"),
        "failed-job": ({**vm_names("vault-it", "front-broken")}, 200, "Failed"),
        "bad-request": ({**vm_names("vault-it", "front-vm"), "vmName": "x"}, 400, "Rejected"),
        "by-resource-id": ({"resourceId": vm_resource_id("target-4")}, 200, "Succeeded"),
        "not-protected": ({"resourceId": vm_resource_id("vm-unprotected", "rg-app")}, 200, "Failed"),
    }
    keys = {name: unique(f"http-{name}") for name in cases}
    bodies = {name: {**body, "correlationId": keys[name]} for name, (body, _, _) in cases.items()}

    with ThreadPoolExecutor(len(cases)) as pool:  # each action waits Retry-After between looks
        runs = dict(zip(cases, pool.map(lambda name: _run(suite, bodies[name]), cases), strict=True))
    finished = [name for name, (_, status, _) in cases.items() if status == 200]
    results = suite.results().wait_for([keys[name] for name in finished], timeout=30)

    for name, (_, status, outcome) in cases.items():
        action, final = runs[name]
        assert final.status == status, (name, final.body)
        assert final.headers["content-type"] == "application/json; charset=utf-8"
        assert final.json["status"] == outcome, (name, final.body)
        if status == 200:
            assert final.json == results[keys[name]], f"{name}: the action's output is the queue's result"
            suite.check_schema(final.json)
            first = action.exchanges[0]
            assert first.status == 202 and int(first.headers["retry-after"]) >= 5
            assert first.headers["location"] == f"{suite.api_url}/{keys[name]}"
    assert runs["failed-job"][1].json["error"]["code"] == "UserErrorVmNotInDesirableState"
    assert runs["by-resource-id"][1].json["resourceId"] == vm_resource_id("target-4")
    assert runs["not-protected"][1].json["error"]["code"] == "NotProtected"


def test_a_bad_request_answers_400_with_the_error_the_queue_rejects_it_with(suite: Suite) -> None:
    key = unique("http-bad")
    body = {**vm_names("vault-it", "front-vm"), "properties": {"recoveryPointExpiryTimeInUTC": "tomorrow"},
            "correlationId": key}

    answer = requests.post(suite.api_url, json=body, timeout=10)
    suite.send(json.dumps(body))
    rejected = suite.results().one(key)

    assert answer.status_code == 400
    assert answer.json() == {"status": "Rejected", "error": rejected["error"]}
    assert not any(entry["kind"] == "trigger" for entry in suite.admin.requests()), "nothing reached ARM"


def test_the_same_key_posted_twice_gives_one_post_in_the_emulators_log(suite: Suite) -> None:
    names = vm_names("vault-it", "front-dup")
    body = {**names, "correlationId": unique("http-dup")}

    first = requests.post(suite.api_url, json=body, timeout=10)
    second = requests.post(suite.api_url, json=body, timeout=10)
    final = LogicAppsHttpAction().run(suite.api_url, body)
    suite.wait_until_idle(MAIN_QUEUES)

    assert (first.status_code, second.status_code) == (202, 202)
    assert first.headers["Location"] == second.headers["Location"]
    assert final.status == 200 and final.json["status"] == "Succeeded"
    posts = [entry for entry in suite.admin.requests()
             if entry["kind"] == "trigger" and names["protectedItemName"] in unquote(entry["path"])]
    assert len(posts) == 1, posts
    assert len(suite.results().wait_for([body["correlationId"]], timeout=10)) == 1


def test_keys_with_reserved_characters_round_trip_over_the_wire(suite: Suite) -> None:
    keys = [f"{prefix}-{unique('k')}" for prefix in ("a/b;c%d:e", "x%2Fy?z#w")]
    names = {key: vm_names("vault-it", item) for key, item in zip(keys, ("front-keys", "front-path"), strict=True)}

    with ThreadPoolExecutor(len(keys)) as pool:
        finals = dict(zip(keys, pool.map(
            lambda key: LogicAppsHttpAction().run(suite.api_url, {**names[key], "correlationId": key}), keys
        ), strict=True))

    for key, final in finals.items():
        by_path = requests.get(f"{suite.api_url}/{quote(key, safe='')}", timeout=10)
        assert final.status == 200, final.body
        assert final.json["correlationId"] == key
        assert final.json["protectedItemId"] == item_id(names[key])
        assert by_path.status_code == 200, "one percent-encoded path segment works on the local host too"
        assert by_path.json() == final.json


def test_unknown_keys_and_other_methods_over_the_wire(suite: Suite) -> None:
    unknown = requests.get(f"{suite.api_url}/{unique('never')}", timeout=10)
    put = requests.put(suite.api_url, json={}, timeout=10)
    plain_text = requests.post(suite.api_url, data="hello", headers={"Content-Type": "text/plain"}, timeout=10)

    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "NotFound"
    assert put.status_code == 404, "as on the real host: a method the route does not list finds no function"
    assert plain_text.status_code == 415
    assert all(r.headers["Content-Type"].startswith("application/json") for r in (unknown, put, plain_text))
