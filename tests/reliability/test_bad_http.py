"""Hostile HTTP input to the front door: never a 5xx, never internals, never a call to ARM for a bad request.

In-process (generated, ``scale.bad_input_examples`` calls): ``backup_api.main`` over an in-memory
ledger, then every request it queued through trigger_backup against a transport that refuses
every call with a 400. For each call: a status the contract names and never a 5xx; JSON with
``Content-Type: application/json``; no token, function key or stack trace in the answer; a
``Location`` only on a 202, absolute on the call's own origin and naming the call's key; a
refusal records and queues nothing; ARM is called only for a request that was answered 202, and
then only on the ARM host under the allowed subscription.

Over the wire (five times ``scale.wire_sample`` generated calls, sent as raw bytes so that CRLF and
malformed values reach the server): the same promises against the local host, Azurite and the
emulator, whose request log must hold no trigger for an item no 202 named.
"""

from __future__ import annotations

import json
import re
import socket
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings

from devtools.bench.estate import Estate
from devtools.bench.stackrun import base_config, remove_state
from devtools.funchost.processes import wait_until
from tests.fakes import FAKE_TOKEN, Reply
from tests.functions.http_harness import COLLECTION, FrontDoor
from tests.reliability.hostile_http import HostileCall, hostile_calls
from tests.reliability.support import Scale, drained, publish, reliability_stack
from tests.unit.builders import SUB

CONTRACT_STATUSES = {200, 202, 400, 404, 405, 409, 413, 415}
REFUSALS = {400, 405, 413, 415}
ARM_HOST = "management.azure.com"
_RESOLUTION = re.compile(r"/backupStatus\?|/providers/Microsoft\.Compute/virtualMachines/[^/]+\?", re.IGNORECASE)


def _check_answer(call: HostileCall, status: int, headers: dict[str, str], text: str, origin: str) -> Any:
    assert status < 500, (status, text[:300])
    assert status in CONTRACT_STATUSES, (status, text[:300])
    assert headers["content-type"] == "application/json; charset=utf-8"
    document = json.loads(text)
    for secret in (FAKE_TOKEN, "FUNCTION-KEY-SECRET", "Traceback", "AccountKey"):
        assert secret not in text and secret not in json.dumps(headers), secret
    if status == 202:
        location = urlsplit(headers["location"])
        assert location.scheme in {"http", "https"} and location.netloc == urlsplit(origin).netloc, location
        key = dict(parse_qsl(location.query)).get("key") or unquote(location.path.rsplit("/", 1)[1])
        assert key == document["correlationId"]
        assert int(headers["retry-after"]) >= 5
    else:
        assert "location" not in headers
    return document


def test_hostile_calls_in_process_never_5xx_and_never_reach_arm_when_refused(scale: Scale) -> None:
    counted: Counter[str] = Counter()

    @settings(max_examples=scale.bad_input_examples, deadline=None, database=None, derandomize=scale.name == "ci",
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(call=hostile_calls())
    def check(call: HostileCall) -> None:
        door = FrontDoor(settings={"ALLOWED_SUBSCRIPTIONS": SUB})
        refusal = Reply(400, {"error": {"code": "HostileInputSeen", "message": "refused by the test transport"}})
        door.app.transport.on("POST", "", refusal).on("GET", "", refusal)
        answer = door.call(call.method, f"{COLLECTION.removesuffix('/api/backups')}{call.path()}", body=call.body,
                           headers=call.headers, route_id=call.route_id)
        document = _check_answer(call, answer.status, answer.headers, answer.text,
                                 "https://backup-func.azurewebsites.net")
        queued = len(door.queued_requests)
        if answer.status in REFUSALS or answer.status == 404:
            assert queued == 0 and door.store.keys() == [], "a refusal records and queues nothing"
        door.run_queues()
        # Finding the item of a request by resource id reads ARM before it can be accepted or refused.
        resolving = [sent for sent in door.app.transport.sent if _RESOLUTION.search(sent.url)]
        acting = [sent for sent in door.app.transport.sent if not _RESOLUTION.search(sent.url)]
        if answer.status != 202 or call.method != "POST":
            assert acting == [], "ARM was called for a request that was not accepted"
        for sent in door.app.transport.sent:
            parts = urlsplit(sent.url)
            assert (parts.scheme, parts.netloc) == ("https", ARM_HOST), sent.url
            assert parts.path.lower().startswith(f"/subscriptions/{SUB}/"), sent.url
        for sent in acting:
            assert document["protectedItemId"].lower() in unquote(urlsplit(sent.url).path).lower(), sent.url
        counted["resolution_reads"] += len(resolving)
        counted[f"{call.method} {answer.status}"] += 1
        counted["arm_calls"] += len(door.app.transport.sent)
        counted["examples"] += 1

    check()
    publish("bad-http-in-process", scale, f"{scale.bad_input_examples} generated HTTP calls (methods, keys in path "
            "and query, hostile headers, every hostile queue body, huge and deep bodies)", dict(counted.most_common()))
    assert counted["examples"] > 0


# -- over the wire ---------------------------------------------------------------------------------------


def _raw_request(call: HostileCall, port: int) -> bytes:
    lines = [f"{call.method} {call.path()} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in call.headers.items()]
    lines.append(f"Content-Length: {len(call.body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogatepass") + call.body


def _exchange(port: int, request: bytes) -> tuple[int, dict[str, str], str]:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(request)
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split(" ", 2)[1]), headers, body.decode("utf-8")


@pytest.mark.integration
def test_hostile_calls_over_the_wire_never_5xx_and_trigger_nothing_unaccepted(scale: Scale) -> None:
    estate = Estate(2)
    app_settings = {"ALLOWED_SUBSCRIPTIONS": SUB, "MIN_DELAY_SECONDS": "1", "RETRY_BASE_SECONDS": "1"}
    config = base_config(1.0, defaults={"operation_seconds": 0, "operation_retry_after": 1, "job_seconds": 0})
    counted: Counter[str] = Counter()
    accepted_items: set[str] = set()
    with reliability_stack("http", estate, config, app_settings) as (stack, admin, service):
        port = stack.http_port
        assert port is not None
        since = admin.last_seq()

        @settings(max_examples=scale.wire_sample * 5, deadline=None, database=None, derandomize=scale.name == "ci",
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(call=hostile_calls())
        def check(call: HostileCall) -> None:
            status, headers, text = _exchange(port, _raw_request(call, port))
            if status == 400 and "LocalHost" in text:
                counted["refused by the host"] += 1  # a path the host cannot read never reaches the function
                return
            if status == 404 and call.method not in {"GET", "POST"}:
                counted["method not routed"] += 1
                return
            document = _check_answer(call, status, headers, text, f"http://127.0.0.1:{port}")
            if status == 202 and "protectedItemId" in document:
                accepted_items.add(document["protectedItemId"].rsplit("/", 1)[1].lower())
            counted[f"{call.method} {status}"] += 1

        check()
        wait_until(lambda: drained(service) or None, timeout=scale.timeout, what="the accepted requests to settle")
        triggered = {unquote(entry.path.split("/protectedItems/", 1)[1].split("/", 1)[0]).lower()
                     for entry in admin.requests_since(since) if entry.kind == "trigger"}
        foreign = [entry.path for entry in admin.requests_since(since)
                   if entry.kind != "token" and f"/subscriptions/{SUB}/" not in entry.path.lower()]
    counted["items triggered"] = len(triggered)
    publish("bad-http-wire", scale, f"{scale.wire_sample * 5} generated HTTP calls as raw bytes to the local host",
            dict(counted.most_common()))
    assert triggered <= accepted_items, f"ARM saw triggers no 202 accepted: {triggered - accepted_items}"
    assert foreign == []
    remove_state(stack)
