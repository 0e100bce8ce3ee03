"""Strategies for hostile follow-ups on the status queue: this app's own messages, then tampered with.

URLs are bent to other hosts, plain http, other subscriptions, dot segments and control
characters; requests, targets and fields are tampered with; or the message is no follow-up at
all. Each draw is a ``Hostile``: an operation follow-up whose operation URL breaks a rule of the
README ("Security": https on the ARM host, under the request's subscription, printable ASCII)
must be refused with no request and no token.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from hypothesis import strategies as st

from shared.followup import FollowUp, Phase
from tests.reliability.hostile import (
    ARM_HOST,
    NAME_FIELDS,
    PATH_SYNTAX,
    hostile_text,
    not_json,
    resource_id_documents,
    wrong_types,
)
from tests.reliability.published_rules import Hostile
from tests.unit.builders import ITEMS, NOW, OTHER_SUB, SUB, backup_request, resource_target

__all__ = ["follow_up_messages"]

URL_SYNTAX = PATH_SYNTAX
job_ids: st.SearchStrategy[str] = hostile_text

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
        document["target"]["resourceId"] = draw(resource_id_documents())[0]["resourceId"]
    elif tamper == 2:
        document["target"][draw(st.sampled_from(["location", "properties", "correlationId"]))] = draw(
            st.one_of(hostile_text, wrong_types))
    elif tamper == 3:
        document[draw(st.sampled_from(["target", "request", "rawMessage", "attempt"]))] = draw(
            st.one_of(hostile_text, wrong_types, st.just(backup_request().to_json())))
    return Hostile(json.dumps(document).encode("utf-8", "surrogatepass"), None)
