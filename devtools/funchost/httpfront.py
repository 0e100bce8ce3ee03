"""HTTP triggers on loopback: ``http://127.0.0.1:{port}/{routePrefix}/{route}``, as Core Tools serves them.

Each request is matched against every HTTP function's route template and methods (no match:
404), turned into an ``azure.functions.HttpRequest`` by the library's own ``HttpRequestConverter``
from the fields the host sends the worker (method, URL, headers, query, route parameters, body),
and the function's answer back into status, headers and body by ``HttpResponseConverter``, so a
function sees here what it sees in Azure. An exception in the function answers 500 with no body,
as the host does.

Keys are not enforced: like Core Tools, this host serves ``authLevel: function`` and ``admin``
routes to anyone on loopback, and says so at start. Repeated query parameters and headers are
joined with ``,`` as the host's ``StringValues`` are. Bodies need a ``Content-Length`` (no chunked
uploads: 411) and are limited to the host's default 100 MiB (413).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from azure.functions import meta
from azure.functions.http import HttpRequestConverter, HttpResponseConverter

from devtools.funchost.loader import LoadedFunction
from devtools.funchost.logcontext import invocation_scope
from devtools.funchost.routes import NoMatch, Route, match_route

__all__ = ["MAX_REQUEST_BYTES", "HttpFront"]

Reply = tuple[int, dict[str, str], bytes]
"""Status, headers and body of an answer."""

logger = logging.getLogger("devtools.funchost.http")
invocations = logging.getLogger("devtools.funchost.invocations")

MAX_REQUEST_BYTES = 100 * 1024 * 1024
"""The Functions host's default request body limit (FUNCTIONS_REQUEST_BODY_SIZE_LIMIT)."""
_HOST_HEADER = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")


class HttpFront:
    """One loopback HTTP server for all HTTP-triggered functions of the app."""

    def __init__(self, functions: Sequence[tuple[LoadedFunction, Route]], port: int = 0,
                 address: str = "127.0.0.1") -> None:
        self._functions = {route.function: function for function, route in functions}
        self._routes = [route for _, route in functions]
        self._server = ThreadingHTTPServer((address, port), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-front", daemon=True)
        self._thread.start()
        for route in self._routes:
            logger.info("%s: %s %s/%s (authLevel %s: keys are not enforced locally)", route.function,
                        ",".join(route.methods), self.base_url, route.path, route.auth_level)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def answer(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        """Route one request to its function; status, headers and body of the answer."""
        if not target.startswith("/"):
            return _host_error(400, "the request target must be a path")
        parts = urlsplit(target)
        try:
            matches = match_route(self._routes, parts.path)
        except NoMatch as exc:
            return _host_error(400, f"the path cannot be read: {exc}")
        allowed = [(route, values) for route, values in matches if route.allows(method)]
        if not allowed:
            return _host_error(404, f"no function answers {method} {parts.path[:200]}")
        route, values = allowed[0]
        function = self._functions[route.function]
        host = headers.get("host") or f"127.0.0.1:{self.port}"
        datum = meta.Datum(type="http", value={  # what the worker builds from the host's RpcHttp
            "method": meta.Datum(method, "string"),
            "url": meta.Datum(f"http://{host}{target}", "string"),
            "headers": {name: meta.Datum(value, "string") for name, value in headers.items()},
            "query": {name: meta.Datum(value, "string") for name, value in _query(parts.query).items()},
            "params": {name: meta.Datum(value, "string") for name, value in values.items()},
            "body": meta.Datum(body, "bytes"),
        })
        request = HttpRequestConverter.decode(datum, trigger_metadata=None)
        return _invoke(function, request)


def _query(text: str) -> dict[str, str]:
    joined: dict[str, list[str]] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        joined.setdefault(name, []).append(value)
    return {name: ",".join(values) for name, values in joined.items()}


def _invoke(function: LoadedFunction, request: Any) -> Reply:
    invocation_id = str(uuid.uuid4())
    trigger = function.metadata.trigger.name
    started = time.monotonic()
    with invocation_scope(function.name, invocation_id):
        try:
            outs = {binding.name: _HttpOut() for binding in function.out_bindings}
            call = function.func(**{trigger: request}, **outs)
            result = asyncio.run(call) if function.is_async else call
            answer = result if function.return_binding is not None else next(
                (out.value for out in outs.values() if out.was_set), None
            )
            status, headers, body = _encoded(answer)
        except Exception:  # the function's own failure: the host answers 500 and logs it
            invocations.exception("%s: invocation %s failed", function.name, invocation_id)
            status, headers, body = 500, {}, b""
    invocations.info("Executed %s method=%s status=%d duration_ms=%d", function.name, request.method, status,
                     round((time.monotonic() - started) * 1000))
    return status, headers, body


class _HttpOut:
    def __init__(self) -> None:
        self.value: Any = None
        self.was_set = False

    def set(self, value: Any) -> None:
        self.value, self.was_set = value, True

    def get(self) -> Any:
        return self.value


def _encoded(answer: Any) -> Reply:
    if answer is None:
        return 204, {}, b""
    datum = HttpResponseConverter.encode(answer, expected_type=None)
    if datum.type == "string":
        return 200, {"Content-Type": "text/plain; charset=utf-8"}, str(datum.value).encode("utf-8")
    value = datum.value
    headers = {name: str(header.value) for name, header in value["headers"].items()}
    return int(value["status_code"].value), headers, bytes(value["body"].value or b"")


def _host_error(status: int, message: str) -> Reply:
    body = json.dumps({"error": {"code": "LocalHost", "message": message}}).encode()
    return status, {"Content-Type": "application/json; charset=utf-8"}, body


def _handler(front: HttpFront) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Kestrel: every answer says its length
        server_version = "funchost"
        timeout = 30  # seconds a client may stay silent mid-request before the connection is dropped
        # Headers and body go out in two writes: with Nagle on, the second waits for the client's
        # delayed ACK (40 ms on Linux) on every kept-alive request.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            self._serve()

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = do_GET

        def _serve(self) -> None:
            headers = _joined_headers(self.headers.items())
            status, answer_headers, body = self._read_and_answer(headers)
            self.send_response(status)
            for name, value in answer_headers.items():
                if name.lower() not in {"content-length", "connection", "transfer-encoding"}:
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _read_and_answer(self, headers: dict[str, str]) -> Reply:
            host = headers.get("host")
            if (host is None and self.request_version == "HTTP/1.1") or (host and not _HOST_HEADER.fullmatch(host)):
                self.close_connection = True
                return _host_error(400, "the Host header is missing or malformed")
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self.close_connection = True
                return _host_error(411, "send a Content-Length; this host reads no chunked bodies")
            try:
                length = int(headers.get("content-length", "0"))
            except ValueError:
                length = -1
            if length < 0:
                self.close_connection = True
                return _host_error(400, "the Content-Length header is malformed")
            if length > MAX_REQUEST_BYTES:
                self.close_connection = True
                return _host_error(413, f"the body is over {MAX_REQUEST_BYTES} bytes")
            body = self.rfile.read(length) if length else b""
            if len(body) < length:
                self.close_connection = True
                return _host_error(400, "the body ended before its Content-Length")
            return front.answer(self.command, self.path, headers, body)

        def log_message(self, format: str, *args: Any) -> None:
            logger.debug("%s " + format, self.address_string(), *args)

    return Handler


def _joined_headers(items: Sequence[tuple[str, str]] | Any) -> dict[str, str]:
    joined: dict[str, list[str]] = {}
    for name, value in items:
        joined.setdefault(name.lower(), []).append(value)
    return {lowered: ", ".join(values) for lowered, values in joined.items()}
