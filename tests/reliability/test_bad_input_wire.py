"""Bad input over the wire: a sample of hostile requests and follow-ups through Azurite, the host and the emulator.

The generated suite (test_bad_input.py) runs in-process; this checks the same promise end to end:
each message gives exactly one Rejected or Failed result, nothing is poisoned or left behind, and
ARM saw nothing outside the allowed subscription.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from devtools.bench.estate import OTHER_SUBSCRIPTION, Estate
from devtools.bench.stackrun import base_config, remove_state
from devtools.bench.traffic import ResultCollector
from devtools.funchost.processes import wait_until
from devtools.stack import DEFAULT_QUEUES
from shared.followup import FollowUp, Phase
from shared.messages import parse_request
from shared.settings import Settings
from tests.reliability.support import Scale, drained, leftovers, publish, reliability_stack

pytestmark = pytest.mark.integration

ESTATE = Estate(4)
SUB = ESTATE.subscription
APP_SETTINGS = {"ALLOWED_SUBSCRIPTIONS": SUB, "MIN_DELAY_SECONDS": "1", "RETRY_BASE_SECONDS": "1"}


def _names(tag: str, **changes: Any) -> bytes:
    document = {**ESTATE.request(0, tag), **changes}
    return json.dumps(document).encode()


def _item_id(subscription: str) -> str:
    return ESTATE.item(1).id.replace(SUB, subscription)


REQUESTS: list[Callable[[str], bytes]] = [
    lambda tag: b"not json at all",
    lambda tag: b"\xff\xfe garbage \xc3",  # not UTF-8 (sent as replacement characters: queues carry XML text)
    lambda tag: base64.b64encode(b"[1, 2, 3]"),
    lambda tag: ('{"correlationId": "' + tag + '", "properties": ' + '{"a":' * 40 + "1" + "}" * 41).encode(),
    lambda tag: _names(tag, vaultName="v" * 60_000),
    lambda tag: _names(tag, containerName="IaasVMContainer;iaasvmcontainerv2;rg/../../x"),
    lambda tag: _names(tag, protectedItemName="VM;iaasvmcontainerv2;rg-bench;vm?x=1#y"),
    lambda tag: _names(tag, protectedItemName="VM;iaasvmcontainerv2;rg-bench;vm%2F..%2Fx"),
    lambda tag: _names(tag, correlationId=tag + "\r\nx-evil: 1"),
    lambda tag: _names(tag, subscriptionId=OTHER_SUBSCRIPTION),
    lambda tag: json.dumps({"protectedItemId": _item_id(OTHER_SUBSCRIPTION), "correlationId": tag}).encode(),
    lambda tag: _names(tag, resourceGroupName="rg-\u00fcn\u00efc\u00f6de"),  # a valid name ARM does not know: 404
    lambda tag: _names(tag, vaultName=42),
    lambda tag: json.dumps([{"id": tag, "eventType": "X", "data": {"vaultName": ".."}}]).encode(),
    lambda tag: json.dumps({"specversion": "1.0", "id": tag, "data_base64": "%%%"}).encode(),
    lambda tag: _names(tag, containerName="IaasVMContainer;iaasvmcontainerv2;rg-bench;vm-000-000 "),
    lambda tag: _names(tag, protectedItemName="VM;iaasvmcontainerv2;rg-bench;no-such-vm"),  # 404 from ARM
    lambda tag: _names(tag, retentionDays="30"),
]


def _follow_ups(settings: Settings) -> list[Callable[[str], bytes]]:
    def follow_up(tag: str, url: str) -> bytes:
        request = parse_request(ESTATE.request(2, tag), settings=settings, now=datetime.now(UTC),
                                fallback_correlation_id=tag)
        now = datetime.now(UTC)
        return FollowUp(request, Phase.OPERATION, now, now, async_operation_url=url).to_text().encode()

    arm = settings.arm_endpoint
    path = ESTATE.item(2).id + "/operationsStatus/op-1?api-version=2016-12-01"
    return [
        lambda tag: follow_up(tag, "https://evil.example" + path),
        lambda tag: follow_up(tag, arm.replace("https://", "http://") + path),
        lambda tag: follow_up(tag, arm + path.replace(SUB, OTHER_SUBSCRIPTION)),
        lambda tag: follow_up(tag, arm + path.replace("/resourceGroups", "/x/../../resourceGroups")),
        lambda tag: follow_up(tag, arm.replace("https://", "https://user@") + path),
        lambda tag: b'{"schemaVersion": 1, "phase": "warp", "correlationId": "' + tag.encode() + b'"}',
    ]


def test_hostile_messages_over_the_wire_each_end_in_one_result(scale: Scale) -> None:
    config = base_config(1.0, defaults={"operation_seconds": 0, "operation_retry_after": 1, "job_seconds": 0})
    with reliability_stack("wire", ESTATE, config, APP_SETTINGS) as (stack, admin, service):
        settings = Settings.from_environment(stack.host_environment())
        since = admin.last_seq()
        sent: dict[str, str] = {}  # message id or correlation id -> the message's tag
        plan = [(DEFAULT_QUEUES["BACKUP_REQUESTS_QUEUE"], make) for make in REQUESTS]
        plan += [(DEFAULT_QUEUES["BACKUP_STATUS_QUEUE"], make) for make in _follow_ups(settings)]
        with ResultCollector(service.get_queue_client(DEFAULT_QUEUES["BACKUP_RESULTS_QUEUE"])) as collector:
            for n in range(scale.wire_sample):
                queue, make = plan[n % len(plan)]
                tag = f"wire-{n}"
                message = service.get_queue_client(queue).send_message(make(tag).decode("utf-8", "replace"))
                sent[message.id] = sent[tag] = tag
            expected = set(sent.values())

            def all_answered() -> bool | None:
                answered = {_owner(result, sent) for result in _all(collector)}
                return (expected <= answered and drained(service)) or None

            with contextlib.suppress(TimeoutError):  # what is missing is counted below
                wait_until(all_answered, timeout=scale.timeout, what="a result for every hostile message")
        missing = sorted(expected - {_owner(result, sent) for result in _all(collector)})
        per_message = Counter(_owner(result, sent) for result in _all(collector))
        statuses = Counter(f"{result.get('status')}:{(result.get('error') or {}).get('code')}"
                           for result in _all(collector))
        seen_paths = [entry.path for entry in admin.requests_since(since) if entry.kind != "token"]
        left = leftovers(service)
    counted = {
        "messages": len(expected), "results": sum(per_message.values()),
        "without_result": len(missing), "missing": missing[:20],
        "with_several_results": sum(1 for count in per_message.values() if count > 1),
        "arm_requests": len(seen_paths), "statuses": dict(statuses.most_common()), "queues": left,
    }
    publish("bad-input-wire", scale, f"{len(expected)} hostile requests and follow-ups through the local stack",
            counted)

    assert counted["without_result"] == 0 and counted["with_several_results"] == 0, counted
    assert {status.split(":")[0] for status in statuses} <= {"Rejected", "Failed"}, statuses
    assert sum(left.values()) == 0, left
    assert all(f"/subscriptions/{SUB}/".lower() in path.lower() for path in seen_paths), seen_paths
    remove_state(stack)  # only once it passed: a failure keeps Azurite's data and the logs to look at


def _all(collector: ResultCollector) -> list[dict[str, Any]]:
    return [result for found in collector.snapshot().by_correlation.values() for result in found]


def _owner(result: dict[str, Any], sent: dict[str, str]) -> str | None:
    for key in (result.get("messageId"), result.get("correlationId")):
        if isinstance(key, str) and key in sent:
            return sent[key]
    return None
