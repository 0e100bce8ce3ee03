"""The local host's HTTP triggers: routes, methods, what a function receives, what the caller gets back.

A throwaway app of HTTP functions runs in a ``FunctionHost`` on a free loopback port; requests go
over real sockets (``requests``, or a raw socket where a client library would not send it).
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from devtools.funchost import FunctionHost, FunctionLoadError
from tests.funchost.support import App

UNREACHABLE = "DefaultEndpointsProtocol=http;AccountName=a;AccountKey=a2V5;QueueEndpoint=http://127.0.0.1:9/a;"

ECHO = '''
import json
import azure.functions as func

def main(req: func.HttpRequest) -> func.HttpResponse:
    seen = {"method": req.method, "url": req.url, "params": dict(req.params),
            "route": dict(req.route_params), "body": req.get_body().decode(),
            "header": req.headers.get("X-Test"), "host": req.headers.get("Host")}
    return func.HttpResponse(json.dumps(seen), status_code=201, mimetype="application/json",
                             headers={"X-Answer": "yes"})
'''
BOOM = ("import azure.functions as func\n\ndef main(req: func.HttpRequest) -> func.HttpResponse:\n"
        "    raise ValueError('boom')\n")
TEXT = "import azure.functions as func\n\ndef main(req: func.HttpRequest) -> str:\n    return 'plain words'\n"
OUT = '''
import azure.functions as func

def main(req: func.HttpRequest, res: func.Out[func.HttpResponse]) -> None:
    res.set(func.HttpResponse(b"{}", status_code=418, mimetype="application/json"))
'''


def http_function(route: str | None, methods: list[str] | None = None, *, auth: str = "function",
                  out: str = "$return") -> dict[str, Any]:
    trigger: dict[str, Any] = {"name": "req", "type": "httpTrigger", "direction": "in", "authLevel": auth}
    if route is not None:
        trigger["route"] = route
    if methods is not None:
        trigger["methods"] = methods
    return {"scriptFile": "__init__.py", "bindings": [trigger, {"name": out, "type": "http", "direction": "out"}]}


@pytest.fixture
def served(make_app: Callable[..., App]) -> Iterator[str]:
    app = make_app({
        "echo": (http_function("items/{id?}", ["get", "post"]), ECHO),
        "boom": (http_function("boom", auth="anonymous"), BOOM),
        "text": (http_function(None, ["get"], auth="admin"), TEXT),
        "teapot": (http_function("teapot", out="res"), OUT),
    })
    host = FunctionHost(app.root, app.settings(UNREACHABLE), load_local_settings=False)
    host.start()
    try:
        assert host.http_port is not None
        yield f"http://127.0.0.1:{host.http_port}"
    finally:
        host.stop()


def test_a_function_receives_method_absolute_url_query_route_headers_and_body(served: str) -> None:
    answer = requests.post(f"{served}/api/items/a%2Fb%3Bc?x=1&x=2&code=whatever", data=b'{"k": 1}',
                           headers={"X-Test": "t", "Content-Type": "application/json"}, timeout=10)

    assert answer.status_code == 201
    assert answer.headers["X-Answer"] == "yes"
    assert answer.headers["Content-Type"] == "application/json"
    seen = answer.json()
    assert seen["method"] == "POST"
    assert seen["url"] == f"{served}/api/items/a%2Fb%3Bc?x=1&x=2&code=whatever"
    assert seen["params"] == {"x": "1,2", "code": "whatever"}
    assert seen["route"] == {"id": "a/b;c"}
    assert seen["body"] == '{"k": 1}'
    assert seen["header"] == "t"
    assert seen["host"] == served.removeprefix("http://")


def test_an_optional_parameter_may_be_absent(served: str) -> None:
    assert requests.get(f"{served}/api/items", timeout=10).json()["route"] == {}


def test_keys_are_not_enforced_locally_at_any_auth_level(served: str) -> None:
    assert requests.get(f"{served}/api/items/x", timeout=10).status_code == 201  # function
    assert requests.get(f"{served}/api/text", timeout=10).status_code == 200  # admin


def test_a_method_the_route_does_not_list_finds_no_function(served: str) -> None:
    answer = requests.put(f"{served}/api/items/x", data=b"", timeout=10)

    assert answer.status_code == 404
    assert requests.get(f"{served}/api/elsewhere", timeout=10).status_code == 404


def test_a_failing_function_answers_500_with_nothing_of_the_exception(served: str) -> None:
    answer = requests.get(f"{served}/api/boom", timeout=10)

    assert answer.status_code == 500
    assert answer.content == b""


def test_a_string_return_is_a_200_text_answer_and_an_out_binding_is_the_answer(served: str) -> None:
    text = requests.get(f"{served}/api/text", timeout=10)
    teapot = requests.get(f"{served}/api/teapot", timeout=10)

    assert (text.status_code, text.text) == (200, "plain words")
    assert text.headers["Content-Type"].startswith("text/plain")
    assert teapot.status_code == 418


def raw(served: str, request: bytes) -> bytes:
    host, port = served.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)  # the client is done: a body cut short ends here
        chunks = []
        while chunk := connection.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"POST /api/items HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n0\r\n\r\n", 411),
    (b"POST /api/items HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999999\r\nConnection: close\r\n\r\n", 413),
    (b"POST /api/items HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\nConnection: close\r\n\r\n", 400),
    (b"POST /api/items HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\nshort", 400),
    (b"GET /api/items HTTP/1.1\r\nConnection: close\r\n\r\n", 400),
    (b"GET /api/items HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n", 400),
    (b"GET /api/items/%FF HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400),
    (b"GET http://evil.example/api/items HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400),
])
def test_the_host_refuses_what_it_cannot_read_with_json(served: str, request_bytes: bytes, status: int) -> None:
    answer = raw(served, request_bytes)

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ", 2)[1] == str(status).encode(), answer[:200]
    assert json.loads(body)["error"]["message"]


def test_an_http_function_with_a_queue_output_is_refused(make_app: Callable[..., App]) -> None:
    function = http_function("x")
    function["bindings"].append({"name": "msg", "type": "queue", "direction": "out", "queueName": "qqq",
                                 "connection": "AzureWebJobsStorage"})
    source = ("import azure.functions as func\n\ndef main(req: func.HttpRequest, msg: func.Out[str])"
              " -> func.HttpResponse:\n    return func.HttpResponse('')\n")
    app = make_app({"web": (function, source)})

    with pytest.raises(FunctionLoadError, match="only http outputs"):
        FunctionHost(app.root, app.settings(UNREACHABLE), load_local_settings=False).start()


@pytest.mark.parametrize(("annotation", "complaint"), [
    ("req: func.QueueMessage", "does not match its Python annotation"),
    ("req: str", "as func.HttpRequest"),
])
def test_an_http_trigger_must_be_an_http_request(make_app: Callable[..., App], annotation: str,
                                                 complaint: str) -> None:
    app = make_app({"web": (http_function("x"), ECHO.replace("req: func.HttpRequest", annotation))})

    with pytest.raises(FunctionLoadError, match=complaint):
        FunctionHost(app.root, app.settings(UNREACHABLE), load_local_settings=False).start()


def test_the_route_prefix_comes_from_host_json(make_app: Callable[..., App]) -> None:
    app = make_app({"echo": (http_function("items/{id?}"), ECHO)})
    host_json = app.root / "host.json"
    document = json.loads(host_json.read_text())
    document["extensions"]["http"] = {"routePrefix": "v2"}
    host_json.write_text(json.dumps(document))
    host = FunctionHost(app.root, app.settings(UNREACHABLE), load_local_settings=False)
    host.start()
    try:
        base = f"http://127.0.0.1:{host.http_port}"
        assert requests.get(f"{base}/v2/items/1", timeout=10).json()["route"] == {"id": "1"}
        assert requests.get(f"{base}/api/items/1", timeout=10).status_code == 404
    finally:
        host.stop()
