"""Strategies for hostile calls to the HTTP front door: methods, keys, query strings, headers and bodies.

A call draws a method (mostly GET and POST, some the route does not list), where the key goes
(nowhere, the path, ``?key=``, both, twice), keys carrying path and query syntax (``/``, ``..``,
``%2F``, ``?``, ``#``, CRLF, NUL, unicode, 300 characters), extra query parameters (``code``
included), headers that try injection (Content-Type, X-Forwarded-Proto / -Host, Host, a function
key) and a body: every hostile queue message (``hostile.request_messages``), valid requests with
hostile correlation ids, and bodies over the size limit or nested thousands deep.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from hypothesis import strategies as st

from tests.reliability.hostile import PATH_SYNTAX, hostile_text, request_messages
from tests.unit.builders import by_resource, names

__all__ = ["HostileCall", "hostile_calls"]

_JSON = "application/json"
_CONTENT_TYPES = (
    None, None, _JSON, _JSON, _JSON, _JSON, "application/json; charset=utf-8", "text/plain", "application/xml", "",
    "application/json; charset=utf-16", "application/x-www-form-urlencoded", "multipart/form-data; boundary=--x",
    "application/json\r\nX-Injected: 1", "application/json; charset=" + "x" * 300, "*/*",
    "application/cloudevents+json",
)
_FORWARDED = ("https", "http", "https, http", "javascript", "https\r\nLocation: https://evil.example", "", "ftp")
_FORWARDED_HOSTS = ("evil.example", "evil.example:443", "127.0.0.1\r\nX: y", "")


@dataclass(frozen=True)
class HostileCall:
    method: str
    path_key: str | None
    """The key as the host hands it to the function after decoding the path segment."""
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    def query_text(self) -> str:
        # Lone surrogates cannot travel in a URL: the client sends what UTF-8 can say of them.
        return "&".join(f"{_quoted(name)}={_quoted(value)}" for name, value in self.query)

    @property
    def route_id(self) -> str | None:
        """The route parameter as the host decodes it from the path this call sends."""
        return None if self.path_key is None else unquote(_quoted(self.path_key))

    def path(self, collection: str = "/api/backups") -> str:
        segment = "" if self.path_key is None else "/" + _quoted(self.path_key)
        query = self.query_text()
        return collection + segment + (f"?{query}" if query else "")


def _quoted(text: str) -> str:
    return quote(text, safe="", errors="replace")


_keys: st.SearchStrategy[str] = st.one_of(
    hostile_text,
    st.sampled_from([*PATH_SYNTAX, "k" * 300, "a/b;c%d:e", "..%2F..%2Fadmin", "%00", "key\r\nSet-Cookie: x=1"]),
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40),
)


def _valid_with(correlation_id: Any) -> bytes:
    return json.dumps({**names("vm"), "correlationId": correlation_id}).encode("utf-8", "surrogatepass")


_bodies: st.SearchStrategy[bytes] = st.one_of(
    request_messages.map(lambda hostile: hostile.body),  # over HTTP every body is judged by its answer
    st.builds(_valid_with, _keys),
    st.builds(_valid_with, st.sampled_from(["a/b;c%d:e", "plain-key", "..", "%2F", "x?y#z"])),
    st.just(json.dumps(names("vm")).encode()),
    st.builds(lambda key, located: json.dumps(by_resource(correlationId=key, **located)).encode(
        "utf-8", "surrogatepass"), _keys, st.sampled_from([{}, {"location": "westeurope"}])),
    st.builds(lambda size: b'{"pad": "' + b"x" * size + b'"}', st.integers(65_000, 70_000)),
    st.builds(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth, st.integers(30, 5000)),
    st.just(b""),
)


@st.composite
def hostile_calls(draw: st.DrawFn) -> HostileCall:
    method = draw(st.sampled_from(["GET"] * 3 + ["POST"] * 6 + ["PUT", "DELETE", "PATCH"]))
    placements = ["none", "path", "query", "both", "query-twice"]
    placement = draw(st.sampled_from(["none"] * 8 + placements if method == "POST" else placements))
    key, other = draw(_keys), draw(_keys)
    path_key = key if placement in {"path", "both"} else None
    query: list[tuple[str, str]] = []
    if placement in {"query", "both"}:
        query.append(("key", key))
    if placement == "query-twice":
        query += [("key", key), ("key", other)]
    query += draw(st.lists(st.tuples(st.sampled_from(["code", "x", "key ", "KEY", "api-version", "%"]), hostile_text),
                           max_size=3))
    headers: dict[str, str] = {}
    content_type = draw(st.sampled_from(_CONTENT_TYPES))
    if content_type is not None:
        headers["Content-Type"] = content_type
    if draw(st.booleans()):
        headers["X-Forwarded-Proto"] = draw(st.sampled_from(_FORWARDED))
    if draw(st.booleans()):
        headers["X-Forwarded-Host"] = draw(st.sampled_from(_FORWARDED_HOSTS))
    if draw(st.booleans()):
        headers["x-functions-key"] = "FUNCTION-KEY-SECRET"
    body = draw(_bodies) if method in {"POST", "PUT", "PATCH"} else b""
    return HostileCall(method, path_key, tuple(query), headers, body)
