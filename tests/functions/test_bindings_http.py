"""The binding contract of backup_api, as the Python worker itself decides it (see test_bindings.py).

``backup_api`` is loaded through the worker's ``function_load_request``: an ``httpTrigger`` in
parameter ``req`` typed ``func.HttpRequest`` and an ``http`` ``$return`` typed ``func.HttpResponse``.
Broken copies are refused by the same loader. Two invocations through ``invocation_request`` send
an RpcHttp in, as the host does, and read the RpcHttp the worker sends back.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import azure.functions as func
import pytest
from azure_functions_runtime_v1 import handle_event

from shared import runtime
from shared.ledger import Ledger
from shared.ledger_store import MemoryStore
from tests.functions.harness import VM_NAMES, App
from tests.functions.test_bindings import (
    HTTP_FUNCTION,
    ROOT,
    _copy_function,
    _json,
    _Message,
    _ParameterBinding,
    _StatusResult,
    _TypedData,
    check_refused,
    load,
    worker,
)

__all__ = ["worker"]  # the worker fixture, initialised as the host does it

pytestmark = pytest.mark.usefixtures("worker")


def test_worker_loads_backup_api_with_an_http_trigger_and_an_http_return() -> None:
    response, info = load(ROOT / HTTP_FUNCTION)

    assert response.result.status == _StatusResult.Success, getattr(response.result, "exception", None)
    assert info is not None
    assert info.func.__module__ == f"__app__.{HTTP_FUNCTION}"
    assert not info.is_async and not info.requires_context
    assert set(info.input_types) == {"req"}
    assert info.input_types["req"].binding_name == "httpTrigger"
    assert info.input_types["req"].pytype is func.HttpRequest
    assert info.output_types == {}
    assert info.has_return
    assert info.return_type.binding_name == "http"
    assert info.return_type.pytype is func.HttpResponse


def _invoke_http(function_id: str, method: str, url: str, body: bytes, *, route_id: str | None = None) -> Any:
    """An InvocationRequest whose input is the RpcHttp the host builds from the HTTP request."""
    rpc_http = _Message(
        method=method, url=url, headers={"content-type": "application/json"},
        body=_TypedData(bytes=body), params={"id": route_id} if route_id else {}, query={},
    )
    invocation = _Message(
        invocation_id=str(uuid.uuid4()), function_id=function_id,
        input_data=[_ParameterBinding(name="req", data=_TypedData(http=rpc_http))], trigger_metadata={},
        trace_context=_Message(trace_parent="", trace_state="", attributes={}),
        retry_context=_Message(retry_count=0, max_retry_count=0, exception=None),
    )
    return asyncio.run(handle_event.invocation_request(_Message(request=_Message(invocation_request=invocation))))


def _loaded_id() -> str:
    response, info = load(ROOT / HTTP_FUNCTION)
    assert response.result.status == _StatusResult.Success
    assert info is not None
    return str(info.function_id)


def test_worker_invocation_answers_a_post_with_202_and_a_location_as_rpc_http() -> None:
    app = App()
    services = replace(app.services, ledger=Ledger(MemoryStore(app.clock)))
    function_id = _loaded_id()
    body = json.dumps({**VM_NAMES, "correlationId": "worker-http-1"}).encode()

    with runtime.override(services):
        response = _invoke_http(function_id, "POST", "https://app.azurewebsites.net/api/backups", body)

    assert response.result.status == _StatusResult.Success, getattr(response.result, "exception", None)
    answer = response.return_value.http
    assert answer.status_code == "202"
    assert answer.headers["Location"] == "https://app.azurewebsites.net/api/backups/worker-http-1"
    assert answer.headers["Retry-After"] == "5"
    assert answer.headers["Content-Type"] == "application/json; charset=utf-8"
    assert json.loads(answer.body.bytes)["correlationId"] == "worker-http-1"
    assert [json.loads(m.text)["correlationId"] for m in app.sender.messages] == ["worker-http-1"]


def test_worker_invocation_routes_the_path_parameter_to_a_404_for_an_unknown_key() -> None:
    app = App()
    services = replace(app.services, ledger=Ledger(MemoryStore(app.clock)))

    with runtime.override(services):
        response = _invoke_http(_loaded_id(), "GET", "https://app.azurewebsites.net/api/backups/nope", b"",
                                route_id="nope")

    answer = response.return_value.http
    assert answer.status_code == "404"
    assert json.loads(answer.body.bytes)["error"]["code"] == "NotFound"


BROKEN_HTTP: dict[str, tuple[str, str, str, str]] = {
    "trigger-renamed-in-json": ("function.json", '"name": "req"', '"name": "request"',
                                "declared in Python but not in function.json"),
    "parameter-renamed-in-python": ("__init__.py", "def main(req: func.HttpRequest)",
                                    "def main(request: func.HttpRequest)",
                                    "declared in Python but not in function.json"),
    "extra-binding-in-json": ("function.json", '"bindings": [',
                              '"bindings": [{"name": "extra", "type": "queue", "direction": "out", '
                              '"queueName": "x", "connection": "AzureWebJobsStorage"},',
                              "declared in function.json but not in Python"),
    "trigger-annotated-queue-message": ("__init__.py", "req: func.HttpRequest", "req: func.QueueMessage",
                                        "does not match its Python annotation"),
    "trigger-wrong-binding-type": ("function.json", '"type": "httpTrigger"', '"type": "queueTrigger"',
                                   "does not match its Python annotation"),
    "return-annotated-int": ("__init__.py", "-> func.HttpResponse:", "-> int:", "does not match binding type"),
    "return-annotated-out": ("__init__.py", "-> func.HttpResponse:", "-> func.Out[func.HttpResponse]:",
                             "should not be azure.functions.Out"),
}


def test_unchanged_copy_of_backup_api_loads(tmp_path: Path) -> None:
    copy_dir = _copy_function(HTTP_FUNCTION, tmp_path / f"copy_api_{uuid.uuid4().hex[:8]}", None)

    response, info = load(copy_dir)

    assert response.result.status == _StatusResult.Success, getattr(response.result, "exception", None)
    assert info is not None


@pytest.mark.parametrize("case", sorted(BROKEN_HTTP))
def test_loader_refuses_a_broken_copy_of_backup_api(case: str, tmp_path: Path) -> None:
    check_refused(HTTP_FUNCTION, case, BROKEN_HTTP[case], tmp_path)


def test_backup_api_function_json_is_the_contract() -> None:
    config = _json(ROOT / HTTP_FUNCTION / "function.json")
    bindings = {binding["name"]: binding for binding in config["bindings"]}

    assert set(bindings) == {"req", "$return"}
    trigger = bindings["req"]
    assert (trigger["type"], trigger["direction"], trigger["authLevel"]) == ("httpTrigger", "in", "function")
    assert sorted(trigger["methods"]) == ["get", "post"]
    assert trigger["route"] == "backups/{id?}"
    assert (bindings["$return"]["type"], bindings["$return"]["direction"]) == ("http", "out")
