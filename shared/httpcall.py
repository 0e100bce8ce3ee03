"""An HTTP request to the front door as plain values, and what can be read off it before any I/O.

``HttpCall`` is what ``backup_api`` hands to ``shared.frontdoor_flow``: method, URL, headers
(names lower-cased), query, the route's ``{id}`` and the body. Reading it is pure: whether the
body may be a request at all (size, content type), which key a GET asks for, and the absolute
``Location`` where a request's state is read.

The ``Location``. Logic Apps follows it exactly as given, so it must reach this function on the
real host. An encoded ``/`` (``%2F``) in a route segment does not: App Service front ends decode
it before routing and answer 404 (azure-functions-host #3998, #5619, #9290, open since 2019; Core
Tools on a developer machine passes it). So a key made only of URI unreserved characters
(``A-Z a-z 0-9 - . _ ~``) goes in the path, ``…/api/backups/{key}``, and any other key in the
query, ``…/api/backups?key={percent-encoded key}``, whose decoding is the same on every host.
A GET accepts both forms. The function key a POST came with in ``?code=`` is carried into the
``Location``, as Durable Functions' status URLs do, because Logic Apps polls the URL as given and
sends no headers of its own with it; a key sent in the ``x-functions-key`` header is never
copied into an answer.

Scheme and host are the incoming URL's. App Service front ends end TLS and forward plain HTTP
with ``X-Forwarded-Proto: https``; the host restores the scheme on some plans and not on others
(azure-functions-host #6602, PR #2833), so its first value (``http`` or ``https`` only) is
honoured. ``X-Forwarded-Host`` is not: the front end routes by ``Host``, and a proxy in front of
the app (API Management, Front Door) rewrites ``Location`` itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, urlsplit

from shared.errors import ErrorInfo
from shared.messages import is_correlation_id

__all__ = ["MAX_BODY_BYTES", "HttpCall", "HttpRequestLike", "body_problem", "requested_key", "status_location"]

MAX_BODY_BYTES = 64 * 1024
"""A request travels on as one queue message, which holds 64 KiB."""

_PATH_SAFE = re.compile(r"[A-Za-z0-9._~-]+")
_JSON_TYPES = frozenset({"application/json", "text/json"})
_UTF8 = frozenset({"utf-8", "utf8"})
_SHOWN_CHARS = 100


class HttpRequestLike(Protocol):
    """The parts of ``azure.functions.HttpRequest`` the front door reads."""

    @property
    def method(self) -> str: ...
    @property
    def url(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def params(self) -> Mapping[str, str]: ...
    @property
    def route_params(self) -> Mapping[str, str]: ...
    def get_body(self) -> bytes: ...


@dataclass(frozen=True)
class HttpCall:
    method: str
    url: str
    headers: Mapping[str, str]
    """Names lower-cased."""
    query: Mapping[str, str]
    route_key: str | None
    """The route's ``{id}``: the key in the path, as the host decoded it; None when absent or empty."""
    body: bytes

    @classmethod
    def of(cls, request: HttpRequestLike) -> HttpCall:
        return cls(
            method=request.method.upper(),
            url=request.url,
            headers={name.lower(): value for name, value in request.headers.items()},
            query=dict(request.params),
            route_key=request.route_params.get("id") or None,
            body=request.get_body() or b"",
        )


@dataclass(frozen=True)
class Refusal:
    """Why the body cannot be a request, before it is read: the status and the error to answer."""

    status: int
    error: ErrorInfo


def body_problem(call: HttpCall) -> Refusal | None:
    """413 for a body over a queue message's size, 415 for a content type that is not JSON in UTF-8.

    No Content-Type at all is taken as JSON: the body still has to parse as one.
    """
    if len(call.body) > MAX_BODY_BYTES:
        return Refusal(413, ErrorInfo(
            "PayloadTooLarge", f"the body is {len(call.body)} bytes; a request holds at most {MAX_BODY_BYTES}"
        ))
    content_type = call.headers.get("content-type", "").strip()
    if content_type and not _is_json_in_utf8(content_type):
        shown = content_type[:_SHOWN_CHARS]
        return Refusal(415, ErrorInfo(
            "UnsupportedMediaType", f"Content-Type must be application/json in UTF-8, not {shown!r}",
            target="Content-Type",
        ))
    return None


def _is_json_in_utf8(content_type: str) -> bool:
    media, *parameters = (part.strip() for part in content_type.split(";"))
    media = media.lower()
    if media not in _JSON_TYPES and not (media.startswith("application/") and media.endswith("+json")):
        return False
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip().strip('"').lower() not in _UTF8:
            return False
    return True


def requested_key(call: HttpCall) -> str | ErrorInfo:
    """The key a GET asks for, from the path or from ``?key=``; an error when there is none or two."""
    in_query = call.query.get("key") or None
    if call.route_key is not None and in_query is not None and call.route_key != in_query:
        return ErrorInfo("InvalidRequest", "key: the path and ?key= name different requests", target="key")
    key = call.route_key if call.route_key is not None else in_query
    if key is None:
        return ErrorInfo(
            "InvalidRequest", "key: name the request, as the Location of its POST does (/api/backups/{key} or "
            "/api/backups?key={key})", target="key",
        )
    if not is_correlation_id(key):
        return ErrorInfo("InvalidRequest", "key: must be 1-200 printable ASCII characters without spaces",
                         target="key")
    return key


def status_location(call: HttpCall, key: str) -> str:
    """The absolute URL where the request with ``key`` is read (see the module docstring)."""
    parts = urlsplit(call.url)
    scheme = _forwarded_proto(call.headers) or parts.scheme
    collection = parts.path.rstrip("/")
    if call.route_key is not None:
        collection = collection.rsplit("/", 1)[0]
    query = []
    if _PATH_SAFE.fullmatch(key) and key not in {".", ".."}:
        path = f"{collection}/{key}"
    else:
        path = collection
        query.append(f"key={quote(key, safe='')}")
    code = call.query.get("code")
    if code:
        query.append(f"code={quote(code, safe='')}")
    origin = f"{scheme}://{parts.netloc.rpartition('@')[2]}" if parts.netloc else ""
    return origin + path + (f"?{'&'.join(query)}" if query else "")


def _forwarded_proto(headers: Mapping[str, str]) -> str | None:
    # "https, http" names the client's scheme first; anything but the two schemes is ignored.
    first = headers.get("x-forwarded-proto", "").split(",", 1)[0].strip().lower()
    return first if first in {"http", "https"} else None
