"""Strategies for malformed and hostile queue messages: requests on the requests queue, follow-ups on the status queue.

Each strategy draws the raw body a producer (or an attacker with access to the queue) could write:
not JSON, wrong types, huge and deeply nested documents, unicode, names carrying path syntax
(``/``, ``..``, ``?``, ``#``, ``%2F``, CRLF), ids of other subscriptions, ARM events about other
resources or with bent subjects, and follow-ups pointing the app at other hosts, plain http or
other subscriptions.
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

from hypothesis import strategies as st

from shared.followup import FollowUp, Phase
from tests.unit.builders import ITEMS, NOW, OTHER_SUB, SUB, backup_request, item_id, names, resource_target, vm_id

__all__ = ["follow_up_messages", "request_messages"]

ARM_HOST = "management.azure.com"
NAME_FIELDS = ("subscriptionId", "resourceGroupName", "vaultName", "fabricName", "containerName", "protectedItemName")
PATH_SYNTAX = (
    "/", "..", ".", "?", "#", "%2F", "%2f", "%2e%2e", "%2E%2E/", "\r\n", "\n", "\r", "\\", "@", ":", "&", "%", "+",
    "\x00", "\x7f", " ", "\t", "\u202e", "\ufeff", "\u2215", "\uff0f", "\ud800", "?api-version=2016-12-01", "#top",
    "/../../subscriptions/" + OTHER_SUB, "..%2F..%2F", "https://evil.example/", ";", ";;", "VM;",
)

URL_SYNTAX = PATH_SYNTAX

hostile_text: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(PATH_SYNTAX),
    st.text(max_size=40),
    st.builds(lambda head, syntax, tail: head + syntax + tail,
              st.text(max_size=8), st.sampled_from(PATH_SYNTAX), st.text(max_size=8)),
)
job_ids: st.SearchStrategy[str] = hostile_text
wrong_types: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)


def _names_with(field: str, value: Any, kind: str = "vm") -> dict[str, Any]:
    document = names(kind)
    document[field] = value
    return document


@st.composite
def _hostile_item_names(draw: st.DrawFn) -> dict[str, Any]:
    """Path syntax inside a container or item name that still announces a workload."""
    kind = draw(st.sampled_from(sorted(ITEMS)))
    field = draw(st.sampled_from(["containerName", "protectedItemName"]))
    prefix = ITEMS[kind][0 if field == "containerName" else 1].rsplit(";", 1)[0] + ";"
    return _names_with(field, prefix + draw(hostile_text), kind)


@st.composite
def _hostile_ids(draw: st.DrawFn) -> dict[str, Any]:
    """protectedItemId: another subscription, path syntax spliced in, or a URL instead of an id."""
    good = item_id(draw(st.sampled_from(sorted(ITEMS))))
    choice = draw(st.integers(0, 4))
    if choice == 0:
        value: Any = good.replace(SUB, OTHER_SUB)
    elif choice == 1:
        cut = draw(st.integers(0, len(good)))
        value = good[:cut] + draw(st.sampled_from(PATH_SYNTAX)) + good[cut:]
    elif choice == 2:
        value = f"https://{ARM_HOST}{good}?api-version=2024-04-01"
    elif choice == 3:
        value = good + draw(st.sampled_from(["/", "/backup", "/../x", "?x=1", "#f", "/%2e%2e"]))
    else:
        value = draw(wrong_types)
    document: dict[str, Any] = {"protectedItemId": value}
    if draw(st.booleans()):
        document["subscriptionId"] = draw(st.sampled_from([SUB, OTHER_SUB]))
    return document


@st.composite
def _hostile_properties(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(sorted(ITEMS)))
    key = draw(st.sampled_from(["objectType", "recoveryPointExpiryTimeInUTC", "backupType", "enableCompression",
                                "unknown", "retentionDays"]))
    value = draw(st.one_of(hostile_text, wrong_types, st.just("1999-01-01T00:00:00Z"), st.just("9999-12-31T23:59:59Z")))
    document = names(kind)
    if key == "retentionDays":
        document["retentionDays"] = value
    else:
        document["properties"] = {**document.get("properties", {}), key: value}
    return document


@st.composite
def _hostile_resource_ids(draw: st.DrawFn) -> dict[str, Any]:
    """resourceId: path syntax spliced into a VM id, another subscription, not a VM, a URL; a bent location."""
    good = vm_id()
    choice = draw(st.integers(0, 5))
    if choice == 0:
        cut = draw(st.integers(0, len(good)))
        value: Any = good[:cut] + draw(st.sampled_from(PATH_SYNTAX)) + good[cut:]
    elif choice == 1:
        value = draw(st.sampled_from([good.replace(SUB, OTHER_SUB), good.upper(), good.lower(), good]))
    elif choice == 2:
        value = draw(st.sampled_from([item_id("vm"), good + "/extensions/x", good.rsplit("/", 2)[0],
                                      f"https://{ARM_HOST}{good}", good[1:], good + "/"]))
    elif choice == 3:
        value = good.rsplit("/", 1)[0] + "/" + draw(hostile_text)
    elif choice == 4:
        value = draw(wrong_types)
    else:
        value = good
    document: dict[str, Any] = {"resourceId": value}
    if draw(st.booleans()):
        document["location"] = draw(st.one_of(st.just("westeurope"), hostile_text, wrong_types))
    if draw(st.integers(0, 3)) == 0:
        document[draw(st.sampled_from([*NAME_FIELDS, "protectedItemId", "properties", "retentionDays"]))] = draw(
            st.one_of(hostile_text, wrong_types))
    return document


_ARM_EVENT_TYPES = tuple(f"Microsoft.Resources.Resource{what}" for what in (
    "WriteSuccess", "ActionSuccess", "DeleteSuccess", "WriteFailure", "ActionCancel", "DeleteFailure"))
_OPERATIONS = ("Microsoft.Compute/virtualMachines/write", "Microsoft.Compute/virtualMachines/delete",
               "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems/backup/action",
               "Microsoft.RecoveryServices/locations/backupStatus/action", "Microsoft.Compute/disks/write")


@st.composite
def _hostile_arm_events(draw: st.DrawFn) -> bytes:
    """ARM events with bent types, subjects, resource URIs and operations, in either event schema."""
    resource = draw(st.one_of(st.sampled_from([vm_id(), vm_id().lower(), item_id("vm"), vm_id() + "/extensions/x"]),
                              _hostile_resource_ids().map(lambda document: document["resourceId"])))
    data: dict[str, Any] = {"resourceUri": resource, "operationName": draw(st.one_of(
        st.sampled_from(_OPERATIONS), hostile_text, wrong_types)), "claims": {"name": "x"}, "correlationId": "c"}
    if draw(st.booleans()):
        data["resourceUri"] = draw(st.one_of(hostile_text, wrong_types, st.just(vm_id(name="other"))))
    if draw(st.integers(0, 4)) == 0:
        del data["resourceUri"]
    event_type = draw(st.one_of(st.sampled_from(_ARM_EVENT_TYPES), st.builds(
        lambda tail: "Microsoft.Resources." + tail, hostile_text)))
    subject = draw(st.one_of(st.just(resource), hostile_text))
    if draw(st.booleans()):
        event: dict[str, Any] = {"id": draw(st.one_of(st.just("evt-1"), hostile_text)), "eventType": event_type,
                                 "subject": subject, "data": data}
    else:
        event = {"specversion": "1.0", "id": "ce-1", "source": "/s", "type": event_type, "subject": subject,
                 "data": data}
    return json.dumps(event).encode("utf-8", "surrogatepass")


def _deeply_nested(depth: int) -> bytes:
    inner = '{"a":' * depth + "1" + "}" * depth
    return ('{"subscriptionId":"' + SUB + '","properties":' + inner + "}").encode()


def _huge(size: int, field: str) -> bytes:
    document = names("vm")
    document[field] = "x" * size
    return json.dumps(document).encode()


documents: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.builds(_names_with, st.sampled_from(NAME_FIELDS), hostile_text),
    st.builds(_names_with, st.sampled_from([*NAME_FIELDS, "properties", "correlationId", "retentionDays"]),
              wrong_types),
    _hostile_item_names(),
    _hostile_ids(),
    _hostile_resource_ids(),
    _hostile_properties(),
    st.builds(_names_with, st.just("correlationId"), hostile_text),
    st.builds(_names_with, st.sampled_from(["subscriptionId"]), st.sampled_from([OTHER_SUB, OTHER_SUB.upper()])),
    st.builds(lambda key, value: {**names("vm"), key: value}, st.text(max_size=20), st.integers()),
    st.dictionaries(st.text(max_size=10), wrong_types, max_size=5),
)


def _encoded(document: dict[str, Any], how: str) -> bytes:
    text = json.dumps(document)
    if how == "base64":
        return base64.b64encode(text.encode()).decode().encode()
    if how == "eventgrid":
        return json.dumps([{"id": "e-1", "eventType": "X", "subject": "s", "data": document}]).encode()
    if how == "cloudevents":
        return json.dumps({"specversion": "1.0", "id": "c-1", "source": "/s", "type": "X", "data": document}).encode()
    return text.encode()


not_json: st.SearchStrategy[bytes] = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda text: text.encode("utf-8", "surrogatepass")),
    st.binary(max_size=200).map(base64.b64encode),
    st.builds(lambda text: base64.b64encode(text.encode("utf-8", "surrogatepass")), st.text(max_size=100)),
    st.sampled_from([b"{", b"[", b"[]", b"[{}, {}]", b"null", b"\"x\"", b"{\"a\": NaN}", b"{\"a\": Infinity}",
                     b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", json.dumps(names("vm")).encode()[:-1]]),
    st.builds(lambda data: json.dumps({"specversion": "1.0", "id": "c", "data_base64": data}).encode(),
              st.one_of(st.text(max_size=40), st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()))),
    st.builds(lambda version: json.dumps({"specversion": version, "data": names("vm")}).encode(),
              st.one_of(st.text(max_size=5), wrong_types)),
)

_BRANCHES: dict[str, st.SearchStrategy[bytes]] = {
    "not json": not_json,
    "document": st.builds(_encoded, documents, st.sampled_from(["json", "json", "base64", "eventgrid", "cloudevents"])),
    "nested": st.builds(_deeply_nested, st.one_of(st.integers(30, 2000), st.integers(2000, 40_000))),
    "arm event": _hostile_arm_events(),
    "huge": st.builds(_huge, st.one_of(st.integers(60_000, 66_000), st.integers(66_000, 200_000)),
                      st.sampled_from(["correlationId", "containerName", "unknownField", "vaultName"])),
}
# Weighted by hand (one_of flattens nested one_ofs, so the many kinds of garbage would crowd out documents).
request_messages: st.SearchStrategy[bytes] = st.sampled_from(
    ["not json"] * 3 + ["document"] * 5 + ["arm event", "nested", "huge"]
).flatmap(lambda kind: _BRANCHES[kind])

# --- follow-ups -----------------------------------------------------------------------------------

_HOSTS = (
    "evil.example", f"{ARM_HOST}.evil.example", f"{ARM_HOST}.", f"evil.example@{ARM_HOST}", f"{ARM_HOST}@evil.example",
    f"user:pw@{ARM_HOST}", f"{ARM_HOST}:444", f"{ARM_HOST}:80", "127.0.0.1", "[::1]", "xn--mnagement-4za.azure.com",
    "m\u00e4nagement.azure.com", f"{ARM_HOST}%2F@evil.example", f"{ARM_HOST}\\@evil.example", "",
)
_SCHEMES = ("https", "http", "HTTPS", "ftp", "javascript", "file", "")


@st.composite
def hostile_urls(draw: st.DrawFn, path: str) -> Any:
    """A URL to follow: the real one bent by scheme, host, subscription or path, or no URL at all."""
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return f"{draw(st.sampled_from(_SCHEMES))}://{draw(st.sampled_from(_HOSTS))}{path}"
    if choice == 1:
        return f"https://{ARM_HOST}{path.replace(SUB, draw(st.sampled_from([OTHER_SUB, '', '..', '%2e%2e'])))}"
    if choice == 2:
        cut = draw(st.integers(0, len(path)))
        return f"https://{ARM_HOST}{path[:cut]}{draw(st.sampled_from(URL_SYNTAX))}{path[cut:]}"
    if choice == 3:
        return draw(st.sampled_from([f"//{ARM_HOST}{path}", path, f"https:{path}", f"https:/{ARM_HOST}{path}"]))
    if choice == 4:
        return draw(wrong_types)
    return f"https://{ARM_HOST}{path}"  # the real URL: followed, answered 400


@st.composite
def follow_up_messages(draw: st.DrawFn) -> bytes:
    """Follow-ups as this app writes them, then tampered with; or no follow-up at all."""
    if draw(st.integers(0, 5)) == 0:
        return draw(not_json)
    phase = draw(st.sampled_from(list(Phase)))
    if phase is Phase.RESOLVE:
        return draw(_resolving_follow_ups())
    request = backup_request(draw(st.sampled_from(sorted(ITEMS))))
    base_path = request.item.item_path
    follow_up = FollowUp(request, phase, NOW - timedelta(minutes=5), NOW - timedelta(minutes=1),
                         triggered_at=NOW - timedelta(minutes=4))
    document: dict[str, Any] = json.loads(follow_up.to_text())
    document["asyncOperationUrl"] = draw(hostile_urls(f"{base_path}/operationsStatus/op-1?api-version=2016-12-01"))
    if draw(st.booleans()):
        document["locationUrl"] = draw(hostile_urls(f"{base_path}/operationResults/op-1?api-version=2016-12-01"))
    if draw(st.booleans()):
        document["jobId"] = draw(st.one_of(job_ids, wrong_types))
    tamper = draw(st.integers(0, 6))
    if tamper == 1:
        document["request"][draw(st.sampled_from(NAME_FIELDS))] = draw(st.one_of(hostile_text, wrong_types))
    elif tamper == 2:
        document[draw(st.sampled_from(["phase", "schemaVersion", "attempt", "polls", "requestedAt",
                                       "phaseStartedAt", "triggerUncertainSince", "lastError", "request"]))] = draw(
            st.one_of(hostile_text, wrong_types))
    elif tamper == 3:
        document["request"]["properties"] = draw(st.one_of(wrong_types, st.dictionaries(hostile_text, hostile_text)))
    return json.dumps(document).encode("utf-8", "surrogatepass")


@st.composite
def _resolving_follow_ups(draw: st.DrawFn) -> bytes:
    """A follow-up still resolving its VM, its target bent, or a request smuggled in beside it."""
    target = resource_target(location=draw(st.sampled_from([None, "westeurope"])))
    follow_up = FollowUp(None, Phase.RESOLVE, NOW - timedelta(minutes=5), NOW - timedelta(minutes=1), target=target)
    document: dict[str, Any] = json.loads(follow_up.to_text())
    tamper = draw(st.integers(0, 4))
    if tamper == 1:
        document["target"]["resourceId"] = draw(_hostile_resource_ids())["resourceId"]
    elif tamper == 2:
        document["target"][draw(st.sampled_from(["location", "properties", "correlationId"]))] = draw(
            st.one_of(hostile_text, wrong_types))
    elif tamper == 3:
        document[draw(st.sampled_from(["target", "request", "rawMessage", "attempt"]))] = draw(
            st.one_of(hostile_text, wrong_types, st.just(backup_request().to_json())))
    return json.dumps(document).encode("utf-8", "surrogatepass")
