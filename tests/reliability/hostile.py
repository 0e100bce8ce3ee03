"""Strategies for malformed and hostile queue messages: requests on the requests queue, follow-ups on the status queue.

Each strategy draws the raw body a producer (or an attacker with access to the queue) could write:
not JSON, wrong types, huge and deeply nested documents, unicode, names carrying path syntax
(``/``, ``..``, ``?``, ``#``, ``%2F``, CRLF), ids of other subscriptions, ARM events about other
resources or with bent subjects, and follow-ups pointing the app at other hosts, plain http or
other subscriptions.

Each draw is a ``Hostile``: the body and, when it breaks a rule the app publishes, which rule. Such
a body must be refused without a call to Azure whatever the parser's details; a body with no rule
broken may be valid, and only those may reach ARM. The rules come from the README (names with path
syntax or control characters, the allow-list, a queue message's 64 KiB, printable-ASCII URLs on
the ARM host, the ARM events acted on) and from the published request schema (types, patterns,
lengths, enums), with ``null`` read as "absent", as the README's defaults do.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from shared.followup import FollowUp, Phase
from tests.unit.builders import ITEMS, NOW, OTHER_SUB, SUB, backup_request, item_id, names, resource_target, vm_id

__all__ = ["ARM_HOST", "Hostile", "follow_up_messages", "request_messages"]

ARM_HOST = "management.azure.com"
NAME_FIELDS = ("subscriptionId", "resourceGroupName", "vaultName", "fabricName", "containerName", "protectedItemName")
PATH_SYNTAX = (
    "/", "..", ".", "?", "#", "%2F", "%2f", "%2e%2e", "%2E%2E/", "\r\n", "\n", "\r", "\\", "@", ":", "&", "%", "+",
    "\x00", "\x7f", " ", "\t", "\u202e", "\ufeff", "\u2215", "\uff0f", "\ud800", "?api-version=2016-12-01", "#top",
    "/../../subscriptions/" + OTHER_SUB, "..%2F..%2F", "https://evil.example/", ";", ";;", "VM;",
)
URL_SYNTAX = PATH_SYNTAX
QUEUE_MESSAGE_LIMIT = 64 * 1024

_SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "schemas" / "backup-request.schema.json").read_text(encoding="utf-8")
)
_FIELDS = _SCHEMA["properties"]
_BACKUP_NAME = _SCHEMA["$defs"]["backupName"]
_PROPERTY_ENUMS = {key: set(_FIELDS["properties"]["properties"][key]["enum"]) for key in ("objectType", "backupType")}
_CORRELATION_ID = re.compile(_FIELDS["correlationId"]["pattern"])


@dataclass(frozen=True)
class Hostile:
    body: bytes
    refuse: str | None
    """The rule the body breaks, so that it must be refused with nothing sent; None when it may be valid."""


# --- the rules ------------------------------------------------------------------------------------


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def name_rule(field: str, value: Any) -> str | None:
    """The rule a value of a name field breaks, if any (README "Security", the schema's name patterns)."""
    if value is None and field == "fabricName":
        return None  # absent: the default fabric
    if not isinstance(value, str):
        return f"{field} is not a string"
    if not _encodable(value):
        return f"{field} holds a lone surrogate (no URL can carry it)"
    if value in {".", ".."}:
        return f"{field} is a dot segment"
    if field == "subscriptionId":
        return None if value.lower() == SUB else "subscriptionId is outside ALLOWED_SUBSCRIPTIONS"
    schema = _FIELDS[field] if field in {"resourceGroupName", "vaultName", "fabricName"} else _BACKUP_NAME
    if not schema.get("minLength", 1) <= len(value) <= schema.get("maxLength", len(value)):
        return f"{field} has a length outside the schema's"
    if re.search(schema["pattern"], value) is None:
        return f"{field} breaks the schema's pattern (path syntax, control characters)"
    return None


def _property_rule(key: str, value: Any) -> str | None:
    if value is None or key == "unknown":
        return None  # absent, or a member the schema refuses but the README does not promise to refuse
    if key in _PROPERTY_ENUMS:
        known = isinstance(value, str) and value in _PROPERTY_ENUMS[key]
        return None if known else f"properties.{key} is not one of the schema's values"
    if key == "enableCompression":
        return None if isinstance(value, bool) else "properties.enableCompression is not a boolean"
    if key == "retentionDays":
        limits = _FIELDS["retentionDays"]
        in_range = isinstance(value, int) and not isinstance(value, bool) and (
            limits["minimum"] <= value <= limits["maximum"])
        return None if in_range else "retentionDays is not a whole number of days in range"
    return None if _future_instant(value) else "properties.recoveryPointExpiryTimeInUTC is not a future instant"


def _future_instant(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return False
    return moment.tzinfo is None or moment > NOW  # a time without a zone: taken as UTC by the API, let it be


def _correlation_rule(value: Any) -> str | None:
    if value is None:
        return None
    ok = isinstance(value, str) and _CORRELATION_ID.search(value) is not None and "\n" not in value
    return None if ok else "correlationId is not 1-200 printable ASCII characters"


# --- strategies -----------------------------------------------------------------------------------

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

Labelled = tuple[dict[str, Any], str | None]


def _names_with(field: str, value: Any, kind: str = "vm") -> Labelled:
    document = names(kind)
    document[field] = value
    if field in NAME_FIELDS:
        return document, name_rule(field, value)
    if field == "correlationId":
        return document, _correlation_rule(value)
    if field == "retentionDays":
        return document, _property_rule("retentionDays", value)
    refused = value is not None and not isinstance(value, dict)  # properties: an object, or absent
    return document, "properties is not an object" if refused else None


@st.composite
def _hostile_item_names(draw: st.DrawFn) -> Labelled:
    """Path syntax inside a container or item name that still announces a workload."""
    kind = draw(st.sampled_from(sorted(ITEMS)))
    field = draw(st.sampled_from(["containerName", "protectedItemName"]))
    prefix = ITEMS[kind][0 if field == "containerName" else 1].rsplit(";", 1)[0] + ";"
    return _names_with(field, prefix + draw(hostile_text), kind)


# The segments of an item id that are names (split on "/"; segment 0 is the empty one before the first "/").
_ID_NAMES = {4: "resourceGroupName", 8: "vaultName", 10: "fabricName", 12: "containerName", 14: "protectedItemName"}


def _splice_rule(good: str, cut: int, syntax: str) -> str | None:
    """The rule broken by ``syntax`` inserted into the item id ``good`` at ``cut``."""
    if cut == len(good) and syntax == "/":
        return None  # a trailing slash: Azure prints ids without one, and accepts one
    if any(char in syntax for char in "/\\?#%") or not all(" " <= char != "\x7f" for char in syntax):
        return "protectedItemId holds path syntax or control characters"
    segment = good.count("/", 0, cut)  # the segment the text joins (it holds no "/")
    if segment not in _ID_NAMES:
        return "protectedItemId's fixed segments or subscription are altered"
    return name_rule(_ID_NAMES[segment], (good[:cut] + syntax + good[cut:]).split("/")[segment])


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
        value, rule = good[:cut] + syntax + good[cut:], _splice_rule(good, cut, syntax)
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
    return document, _property_rule(key, value)


_RESOURCE_ID = re.compile(_FIELDS["resourceId"]["pattern"])
_LOCATION = re.compile(_FIELDS["location"]["pattern"])


def resource_id_rule(value: Any) -> str | None:
    """The rule a resourceId breaks: a VM's id (the schema's pattern), in the allowed subscription."""
    if not isinstance(value, str):
        return "resourceId is not a string"
    if not _encodable(value) or "\n" in value:
        return "resourceId holds a lone surrogate or a line break"
    trimmed = value[:-1] if value.endswith("/") else value  # a trailing slash: let it be, as for item ids
    if _RESOURCE_ID.search(trimmed) is None:
        return "resourceId is not a virtual machine's id"
    return None if trimmed.split("/")[2].lower() == SUB else "resourceId is outside ALLOWED_SUBSCRIPTIONS"


@st.composite
def _hostile_resource_ids(draw: st.DrawFn) -> Labelled:
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
        if location is not None and not (isinstance(location, str) and _LOCATION.search(location)
                                         and "\n" not in location):
            rule = rule or "location is not a region name"
    if draw(st.integers(0, 3)) == 0:
        field = draw(st.sampled_from([*NAME_FIELDS, "protectedItemId", "properties", "retentionDays"]))
        document[field] = extra = draw(st.one_of(hostile_text, wrong_types))
        if field == "properties":
            rule = rule or (None if extra is None or isinstance(extra, dict) else "properties is not an object")
        elif field == "retentionDays":
            rule = rule or _property_rule("retentionDays", extra)
    return document, rule


_ARM_EVENT_TYPES = tuple(f"Microsoft.Resources.Resource{what}" for what in (
    "WriteSuccess", "ActionSuccess", "DeleteSuccess", "WriteFailure", "ActionCancel", "DeleteFailure"))
_ACTED_ON = {"Microsoft.Resources.ResourceWriteSuccess", "Microsoft.Resources.ResourceActionSuccess"}
_OPERATIONS = ("Microsoft.Compute/virtualMachines/write", "Microsoft.Compute/virtualMachines/delete",
               "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems/backup/action",
               "Microsoft.RecoveryServices/locations/backupStatus/action", "Microsoft.Compute/disks/write")


def _event_rule(event_type: str, operation: Any) -> str | None:
    """README "ARM events": only writes and actions that succeeded, never this app's own kind of operation."""
    if event_type not in _ACTED_ON:
        return "an ARM event of a type never acted on"
    if isinstance(operation, str) and operation.lower().startswith("microsoft.recoveryservices/"):
        return "an ARM event of a Recovery Services operation"
    return None


@st.composite
def _hostile_arm_events(draw: st.DrawFn) -> Hostile:
    """ARM events with bent types, subjects, resource URIs and operations, in either event schema."""
    resource = draw(st.one_of(st.sampled_from([vm_id(), vm_id().lower(), item_id("vm"), vm_id() + "/extensions/x"]),
                              _hostile_resource_ids().map(lambda labelled: labelled[0]["resourceId"])))
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
    return Hostile(json.dumps(event).encode("utf-8", "surrogatepass"), _event_rule(event_type, data["operationName"]))


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
        return Hostile(body, _correlation_rule(document[field]))
    return Hostile(body, name_rule(field, document[field]) if field in NAME_FIELDS else None)


documents: st.SearchStrategy[Labelled] = st.one_of(
    st.builds(_names_with, st.sampled_from(NAME_FIELDS), hostile_text),
    st.builds(_names_with, st.sampled_from([*NAME_FIELDS, "properties", "correlationId", "retentionDays"]),
              wrong_types),
    _hostile_item_names(),
    _hostile_ids(),
    _hostile_resource_ids(),
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

# --- follow-ups -----------------------------------------------------------------------------------

_HOSTS = (
    "evil.example", f"{ARM_HOST}.evil.example", f"{ARM_HOST}.", f"evil.example@{ARM_HOST}", f"{ARM_HOST}@evil.example",
    f"user:pw@{ARM_HOST}", f"{ARM_HOST}:444", f"{ARM_HOST}:80", "127.0.0.1", "[::1]", "xn--mnagement-4za.azure.com",
    "m\u00e4nagement.azure.com", f"{ARM_HOST}%2F@evil.example", f"{ARM_HOST}\\@evil.example", "",
)
_SCHEMES = ("https", "http", "HTTPS", "ftp", "javascript", "file", "")

Url = tuple[Any, str | None]


@st.composite
def hostile_urls(draw: st.DrawFn, path: str) -> Url:
    """A URL to follow: the real one bent by scheme, host, subscription or path, or no URL at all."""
    choice = draw(st.integers(0, 5))
    if choice == 0:
        scheme, host = draw(st.sampled_from(_SCHEMES)), draw(st.sampled_from(_HOSTS))
        on_arm = scheme.lower() == "https" and host == ARM_HOST  # never drawn: _HOSTS holds only other hosts
        return f"{scheme}://{host}{path}", None if on_arm else "not https on the ARM host"
    if choice == 1:
        other = draw(st.sampled_from([OTHER_SUB, "", "..", "%2e%2e"]))
        return f"https://{ARM_HOST}{path.replace(SUB, other)}", "not under the request's subscription"
    if choice == 2:
        cut = draw(st.integers(0, len(path)))
        syntax = draw(st.sampled_from(URL_SYNTAX))
        printable = all("!" <= char <= "~" for char in syntax)
        return f"https://{ARM_HOST}{path[:cut]}{syntax}{path[cut:]}", None if printable else "not printable ASCII"
    if choice == 3:
        url = draw(st.sampled_from([f"//{ARM_HOST}{path}", path, f"https:{path}", f"https:/{ARM_HOST}{path}"]))
        return url, "not an absolute https URL"
    if choice == 4:
        return draw(wrong_types), None  # no URL: the phase may fall back to another one
    return f"https://{ARM_HOST}{path}", None  # the real URL: followed, answered 400


@st.composite
def follow_up_messages(draw: st.DrawFn) -> Hostile:
    """Follow-ups as this app writes them, then tampered with; or no follow-up at all."""
    if draw(st.integers(0, 5)) == 0:
        return Hostile(draw(not_json).body, "not a follow-up")
    phase = draw(st.sampled_from(list(Phase)))
    if phase is Phase.RESOLVE:
        return draw(_resolving_follow_ups())
    request = backup_request(draw(st.sampled_from(sorted(ITEMS))))
    base_path = request.item.item_path
    follow_up = FollowUp(request, phase, NOW - timedelta(minutes=5), NOW - timedelta(minutes=1),
                         triggered_at=NOW - timedelta(minutes=4))
    document: dict[str, Any] = json.loads(follow_up.to_text())
    document["asyncOperationUrl"], url_rule = draw(
        hostile_urls(f"{base_path}/operationsStatus/op-1?api-version=2016-12-01"))
    if draw(st.booleans()):
        document["locationUrl"], _ = draw(hostile_urls(f"{base_path}/operationResults/op-1?api-version=2016-12-01"))
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
    # An operation follow-up goes to its operation URL first: a bent one must be refused, token unsent.
    follows_the_url = document.get("phase") == Phase.OPERATION.value
    body = json.dumps(document).encode("utf-8", "surrogatepass")
    return Hostile(body, url_rule if follows_the_url else None)


@st.composite
def _resolving_follow_ups(draw: st.DrawFn) -> Hostile:
    """A follow-up still resolving its VM, its target bent, or a request smuggled in beside it."""
    target = resource_target(location=draw(st.sampled_from([None, "westeurope"])))
    follow_up = FollowUp(None, Phase.RESOLVE, NOW - timedelta(minutes=5), NOW - timedelta(minutes=1), target=target)
    document: dict[str, Any] = json.loads(follow_up.to_text())
    tamper = draw(st.integers(0, 4))
    if tamper == 1:
        document["target"]["resourceId"] = draw(_hostile_resource_ids())[0]["resourceId"]
    elif tamper == 2:
        document["target"][draw(st.sampled_from(["location", "properties", "correlationId"]))] = draw(
            st.one_of(hostile_text, wrong_types))
    elif tamper == 3:
        document[draw(st.sampled_from(["target", "request", "rawMessage", "attempt"]))] = draw(
            st.one_of(hostile_text, wrong_types, st.just(backup_request().to_json())))
    return Hostile(json.dumps(document).encode("utf-8", "surrogatepass"), None)
