"""Strategies for malformed and hostile queue messages: requests on the requests queue, follow-ups on the status queue.

Each strategy draws the raw body a producer (or an attacker with access to the queue) could write:
not JSON, wrong types, huge and deeply nested documents, unicode, names carrying path syntax
(``/``, ``..``, ``?``, ``#``, ``%2F``, CRLF), ids of other subscriptions, ARM events about other
resources or with bent subjects, and follow-ups pointing the app at other hosts, plain http or
other subscriptions.

Each draw is a ``Hostile``: the body and the published rule it breaks, if any
(``published_rules``). Follow-ups are drawn in ``hostile_follow_ups``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import strategies as st

from tests.reliability.published_rules import (
    QUEUE_MESSAGE_LIMIT,
    Hostile,
    correlation_rule,
    event_rule,
    location_rule,
    name_rule,
    property_rule,
    resource_id_rule,
    splice_rule,
)
from tests.unit.builders import ITEMS, OTHER_SUB, SUB, item_id, names, vm_id

__all__ = ["ARM_HOST", "NAME_FIELDS", "PATH_SYNTAX", "hostile_text", "not_json", "request_messages",
           "resource_id_documents", "wrong_types"]

ARM_HOST = "management.azure.com"
NAME_FIELDS = ("subscriptionId", "resourceGroupName", "vaultName", "fabricName", "containerName", "protectedItemName")
PATH_SYNTAX = (
    "/", "..", ".", "?", "#", "%2F", "%2f", "%2e%2e", "%2E%2E/", "\r\n", "\n", "\r", "\\", "@", ":", "&", "%", "+",
    "\x00", "\x7f", " ", "\t", "\u202e", "\ufeff", "\u2215", "\uff0f", "\ud800", "?api-version=2016-12-01", "#top",
    "/../../subscriptions/" + OTHER_SUB, "..%2F..%2F", "https://evil.example/", ";", ";;", "VM;",
)

# --- strategies -----------------------------------------------------------------------------------

hostile_text: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(PATH_SYNTAX),
    st.text(max_size=40),
    st.builds(lambda head, syntax, tail: head + syntax + tail,
              st.text(max_size=8), st.sampled_from(PATH_SYNTAX), st.text(max_size=8)),
)
wrong_types: st.SearchStrategy[Any] = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)

Labelled = tuple[dict[str, Any], str | None]


def _names_with(field: str, value: Any, kind: str = "vm") -> Labelled:
    document = names(kind)
    document[field] = value
    if field in NAME_FIELDS:
        return document, name_rule(field, value)
    if field == "correlationId":
        return document, correlation_rule(value)
    if field == "retentionDays":
        return document, property_rule("retentionDays", value)
    refused = value is not None and not isinstance(value, dict)  # properties: an object, or absent
    return document, "properties is not an object" if refused else None


@st.composite
def _hostile_item_names(draw: st.DrawFn) -> Labelled:
    """Path syntax inside a container or item name that still announces a workload."""
    kind = draw(st.sampled_from(sorted(ITEMS)))
    field = draw(st.sampled_from(["containerName", "protectedItemName"]))
    prefix = ITEMS[kind][0 if field == "containerName" else 1].rsplit(";", 1)[0] + ";"
    return _names_with(field, prefix + draw(hostile_text), kind)


@st.composite
def _hostile_ids(draw: st.DrawFn) -> Labelled:
    """protectedItemId: another subscription, path syntax spliced in, or a URL instead of an id."""
    good = item_id(draw(st.sampled_from(sorted(ITEMS))))
    choice = draw(st.integers(0, 4))
    rule: str | None
    if choice == 0:
        value: Any = good.replace(SUB, OTHER_SUB)
        rule = "protectedItemId is outside ALLOWED_SUBSCRIPTIONS"
    elif choice == 1:
        cut = draw(st.integers(0, len(good)))
        syntax = draw(st.sampled_from(PATH_SYNTAX))
        value, rule = good[:cut] + syntax + good[cut:], splice_rule(good, cut, syntax)
    elif choice == 2:
        value, rule = f"https://{ARM_HOST}{good}?api-version=2024-04-01", "protectedItemId is a URL, not an id"
    elif choice == 3:
        suffix = draw(st.sampled_from(["/", "/backup", "/../x", "?x=1", "#f", "/%2e%2e"]))
        value, rule = good + suffix, None if suffix == "/" else "protectedItemId names something below the item"
    else:
        value, rule = draw(wrong_types), "protectedItemId is not a string"
    document: dict[str, Any] = {"protectedItemId": value}
    if draw(st.booleans()):
        document["subscriptionId"] = draw(st.sampled_from([SUB, OTHER_SUB]))
        if document["subscriptionId"] != SUB:
            rule = rule or "subscriptionId is outside ALLOWED_SUBSCRIPTIONS"
    return document, rule


@st.composite
def _hostile_properties(draw: st.DrawFn) -> Labelled:
    kind = draw(st.sampled_from(sorted(ITEMS)))
    key = draw(st.sampled_from(["objectType", "recoveryPointExpiryTimeInUTC", "backupType", "enableCompression",
                                "unknown", "retentionDays"]))
    value = draw(st.one_of(hostile_text, wrong_types, st.just("1999-01-01T00:00:00Z"), st.just("9999-12-31T23:59:59Z")))
    document = names(kind)
    if key == "retentionDays":
        document["retentionDays"] = value
    else:
        document["properties"] = {**document.get("properties", {}), key: value}
    return document, property_rule(key, value)


@st.composite
def resource_id_documents(draw: st.DrawFn) -> Labelled:
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
    rule = resource_id_rule(value)
    if draw(st.booleans()):
        document["location"] = location = draw(st.one_of(st.just("westeurope"), hostile_text, wrong_types))
        rule = rule or location_rule(location)
    if draw(st.integers(0, 3)) == 0:
        field = draw(st.sampled_from([*NAME_FIELDS, "protectedItemId", "properties", "retentionDays"]))
        document[field] = extra = draw(st.one_of(hostile_text, wrong_types))
        if field == "properties":
            rule = rule or (None if extra is None or isinstance(extra, dict) else "properties is not an object")
        elif field == "retentionDays":
            rule = rule or property_rule("retentionDays", extra)
    return document, rule


_ARM_EVENT_TYPES = tuple(f"Microsoft.Resources.Resource{what}" for what in (
    "WriteSuccess", "ActionSuccess", "DeleteSuccess", "WriteFailure", "ActionCancel", "DeleteFailure"))
_OPERATIONS = ("Microsoft.Compute/virtualMachines/write", "Microsoft.Compute/virtualMachines/delete",
               "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems/backup/action",
               "Microsoft.RecoveryServices/locations/backupStatus/action", "Microsoft.Compute/disks/write")


@st.composite
def _hostile_arm_events(draw: st.DrawFn) -> Hostile:
    """ARM events with bent types, subjects, resource URIs and operations, in either event schema."""
    resource = draw(st.one_of(st.sampled_from([vm_id(), vm_id().lower(), item_id("vm"), vm_id() + "/extensions/x"]),
                              resource_id_documents().map(lambda labelled: labelled[0]["resourceId"])))
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
    return Hostile(json.dumps(event).encode("utf-8", "surrogatepass"), event_rule(event_type, data["operationName"]))


def _deeply_nested(depth: int) -> Hostile:
    inner = '{"a":' * depth + "1" + "}" * depth
    body = ('{"subscriptionId":"' + SUB + '","properties":' + inner + "}").encode()
    return Hostile(body, "the item's names are missing")


def _huge(size: int, field: str) -> Hostile:
    document = names("vm")
    document[field] = "x" * size
    body = json.dumps(document).encode()
    if len(body) > QUEUE_MESSAGE_LIMIT:
        return Hostile(body, "larger than a queue message")
    if field == "correlationId":
        return Hostile(body, correlation_rule(document[field]))
    return Hostile(body, name_rule(field, document[field]) if field in NAME_FIELDS else None)


documents: st.SearchStrategy[Labelled] = st.one_of(
    st.builds(_names_with, st.sampled_from(NAME_FIELDS), hostile_text),
    st.builds(_names_with, st.sampled_from([*NAME_FIELDS, "properties", "correlationId", "retentionDays"]),
              wrong_types),
    _hostile_item_names(),
    _hostile_ids(),
    resource_id_documents(),
    _hostile_properties(),
    st.builds(_names_with, st.just("correlationId"), hostile_text),
    st.builds(_names_with, st.sampled_from(["subscriptionId"]), st.sampled_from([OTHER_SUB, OTHER_SUB.upper()])),
    # An unknown field: the schema refuses it, the README makes no promise, so it may be valid.
    st.builds(lambda key, value: ({**names("vm"), key: value}, None), st.text(max_size=20), st.integers()),
    # No value is a string, so no name can be given: refused for the missing names.
    st.builds(lambda document: (document, "the item's names are missing"),
              st.dictionaries(st.text(max_size=10), wrong_types, max_size=5)),
)


def _encoded(labelled: Labelled, how: str) -> Hostile:
    document, rule = labelled
    text = json.dumps(document)
    if how == "base64":
        body = base64.b64encode(text.encode()).decode().encode()
    elif how == "eventgrid":
        body = json.dumps([{"id": "e-1", "eventType": "X", "subject": "s", "data": document}]).encode()
    elif how == "cloudevents":
        body = json.dumps({"specversion": "1.0", "id": "c-1", "source": "/s", "type": "X", "data": document}).encode()
    else:
        body = text.encode()
    return Hostile(body, rule)


def _random(body: bytes) -> Hostile:
    # Random bytes hold no JSON request naming the allowed subscription (a request must name it).
    return Hostile(body, None if SUB.encode() in body.lower() else "not a request naming an allowed item")


def _cloud_event_version(version: Any) -> Hostile:
    body = json.dumps({"specversion": version, "data": names("vm")}).encode()
    # The spec says a string; a number 1.0 is let through (the app reads it as "1.0"), which is harmless.
    return Hostile(body, None if version in ("1.0", 1.0) else "an event that is not CloudEvents 1.0")


not_json: st.SearchStrategy[Hostile] = st.one_of(
    st.binary(max_size=300).map(_random),
    st.text(max_size=300).map(lambda text: _random(text.encode("utf-8", "surrogatepass"))),
    st.binary(max_size=200).map(lambda data: Hostile(base64.b64encode(data), _random(data).refuse)),
    st.builds(lambda text: Hostile(base64.b64encode(text.encode("utf-8", "surrogatepass")),
                                   _random(text.encode("utf-8", "surrogatepass")).refuse),
              st.text(max_size=100)),
    st.sampled_from([b"{", b"[", b"[]", b"[{}, {}]", b"null", b"\"x\"", b"{\"a\": NaN}", b"{\"a\": Infinity}",
                     b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00", json.dumps(names("vm")).encode()[:-1]]).map(
        lambda body: Hostile(body, "not a JSON object holding a request")),
    st.builds(lambda data: Hostile(json.dumps({"specversion": "1.0", "id": "c", "data_base64": data}).encode(),
                                   "an event whose data holds no request"),
              st.one_of(st.text(max_size=40), st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()))),
    st.builds(_cloud_event_version, st.one_of(st.text(max_size=5), wrong_types)),
)

_BRANCHES: dict[str, st.SearchStrategy[Hostile]] = {
    "not json": not_json,
    "document": st.builds(_encoded, documents, st.sampled_from(["json", "json", "base64", "eventgrid", "cloudevents"])),
    "nested": st.builds(_deeply_nested, st.one_of(st.integers(30, 2000), st.integers(2000, 40_000))),
    "arm event": _hostile_arm_events(),
    "huge": st.builds(_huge, st.one_of(st.integers(60_000, 66_000), st.integers(66_000, 200_000)),
                      st.sampled_from(["correlationId", "containerName", "unknownField", "vaultName"])),
}
# Weighted by hand (one_of flattens nested one_ofs, so the many kinds of garbage would crowd out documents).
request_messages: st.SearchStrategy[Hostile] = st.sampled_from(
    ["not json"] * 3 + ["document"] * 5 + ["arm event", "nested", "huge"]
).flatmap(lambda kind: _BRANCHES[kind])
