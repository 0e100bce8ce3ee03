"""Queue trigger semantics against a real Azurite, with throwaway apps run by an in-process host.

Each test's function keeps what it saw in module globals; the test reads them through
``sys.modules`` (the host imports a function folder as a package named after it).
"""

from __future__ import annotations

import base64
import itertools
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import ModuleType

import pytest
from azure.storage.queue import QueueServiceClient

from devtools.azurite import Azurite
from devtools.funchost import FunctionHost
from tests.funchost.support import App, collect, drain, queue_function, wait_for

pytestmark = pytest.mark.integration

ECHO = """
import json
import azure.functions as func

CALLS = []

def main(msg: func.QueueMessage, out: func.Out[str]) -> None:
    CALLS.append(msg.dequeue_count)
    out.set(json.dumps({
        "id": msg.id,
        "body": msg.get_body().decode("utf-8"),
        "dequeue_count": msg.dequeue_count,
        "pop_receipt": msg.pop_receipt,
        "times": [str(t) for t in (msg.insertion_time, msg.expiration_time, msg.time_next_visible) if t],
    }))
"""

FAILING = """
import time
import azure.functions as func

CALLS = []

def main(msg: func.QueueMessage) -> None:
    CALLS.append((msg.dequeue_count, time.monotonic()))
    raise RuntimeError("this function always fails")
"""

GATED = """
import threading
import azure.functions as func

GATE = threading.Event()
LOCK = threading.Lock()
CALLS = []
FINISHED = []
RUNNING = 0
PEAK = 0

def main(msg: func.QueueMessage, out: func.Out[str]) -> None:
    global RUNNING, PEAK
    with LOCK:
        CALLS.append(msg.dequeue_count)
        RUNNING += 1
        PEAK = max(PEAK, RUNNING)
    try:
        if msg.dequeue_count <= WAIT_UNTIL_DEQUEUE:
            GATE.wait(30)
    finally:
        with LOCK:
            RUNNING -= 1
            FINISHED.append(msg.dequeue_count)
    out.set(f"{msg.dequeue_count}:{msg.get_body().decode()}")
"""


def gated(wait_until_dequeue: int = 99) -> str:
    return GATED + f"\nWAIT_UNTIL_DEQUEUE = {wait_until_dequeue}\n"


@contextmanager
def run_host(app: App, azurite: Azurite, *, lease_seconds: float = 600, **settings: str) -> Iterator[FunctionHost]:
    environ = app.settings(azurite.connection_string, **settings)
    host = FunctionHost(app.root, environ, load_local_settings=False, lease_seconds=lease_seconds, drain_seconds=5)
    host.start()
    try:
        yield host
    finally:
        for module in list(sys.modules.values()):
            gate = getattr(module, "GATE", None)
            if gate is not None and str(getattr(module, "__file__", "")).startswith(str(app.root)):
                gate.set()  # never leave a worker thread parked on a test's gate
        host.stop()


def function_module(name: str) -> ModuleType:
    return sys.modules[name]


def wait_empty(service: QueueServiceClient, queue: str) -> None:
    client = service.get_queue_client(queue)
    wait_for(lambda: client.get_queue_properties().approximate_message_count == 0 or None, f"{queue} to empty")


def test_message_and_output_binding_with_encoding_none(
    make_app: Callable[..., App], azurite: Azurite, service: QueueServiceClient
) -> None:
    app = make_app({"echo": (queue_function(), ECHO)}, messageEncoding="none")
    with run_host(app, azurite):
        requests = service.get_queue_client(app.in_queue)
        sent = requests.send_message('{"plain": "json"}')
        requests.send_message("aGVsbG8=")  # looks like base64, but under "none" it is just text
        outputs = [json.loads(text) for text in collect(service.get_queue_client(app.out_queue), 2)]
        wait_empty(service, app.in_queue)  # completed messages are deleted
    by_body = {seen["body"]: seen for seen in outputs}
    assert set(by_body) == {'{"plain": "json"}', "aGVsbG8="}
    first = by_body['{"plain": "json"}']
    assert first["id"] == sent.id
    assert first["dequeue_count"] == 1
    assert first["pop_receipt"]
    assert len(first["times"]) == 3  # insertion, expiration and next-visible times reach the function


def test_encoding_base64_decodes_input_and_encodes_output(
    make_app: Callable[..., App], azurite: Azurite, service: QueueServiceClient
) -> None:
    app = make_app({"echo": (queue_function(), ECHO)}, messageEncoding="base64")
    with run_host(app, azurite):
        service.get_queue_client(app.in_queue).send_message(base64.b64encode("héllo wörld".encode()).decode())
        (text,) = collect(service.get_queue_client(app.out_queue), 1)
    assert json.loads(base64.b64decode(text, validate=True))["body"] == "héllo wörld"


def test_invalid_base64_goes_to_poison_without_invocation(
    make_app: Callable[..., App], azurite: Azurite, service: QueueServiceClient
) -> None:
    app = make_app({"echo": (queue_function(), ECHO)}, messageEncoding="base64")
    with run_host(app, azurite):
        service.get_queue_client(app.in_queue).send_message('{"not": "base64"}')
        poisoned = collect(service.get_queue_client(f"{app.in_queue}-poison"), 1)
        wait_empty(service, app.in_queue)
    assert poisoned == ['{"not": "base64"}']
    assert function_module("echo").CALLS == []


def test_failing_function_is_retried_after_visibility_timeout_then_poisoned(
    make_app: Callable[..., App], azurite: Azurite, service: QueueServiceClient
) -> None:
    app = make_app(
        {"fails": (queue_function(out=False), FAILING)},
        messageEncoding="none",
        maxDequeueCount=3,
        visibilityTimeout="00:00:01",
    )
    with run_host(app, azurite):
        service.get_queue_client(app.in_queue).send_message("original text")
        poisoned = collect(service.get_queue_client(f"{app.in_queue}-poison"), 1, timeout=20)
        wait_empty(service, app.in_queue)
    assert poisoned == ["original text"]
    calls = function_module("fails").CALLS
    assert [dequeue for dequeue, _ in calls] == [1, 2, 3]
    gaps = [later - earlier for (_, earlier), (_, later) in itertools.pairwise(calls)]
    assert all(gap >= 0.9 for gap in gaps), gaps  # each retry waited for visibilityTimeout


def test_message_dequeued_too_often_is_poisoned_before_invoking(
    make_app: Callable[..., App], azurite: Azurite, service: QueueServiceClient
) -> None:
    app = make_app({"echo": (queue_function(), ECHO)}, messageEncoding="none", maxDequeueCount=2)
    requests = service.get_queue_client(app.in_queue)
    requests.create_queue()
    requests.send_message("crashed a host twice")
    for _ in range(2):  # what hosts that died mid-invocation leave behind: a dequeue count, no result
        (message,) = list(requests.receive_messages(max_messages=1, visibility_timeout=30))
        requests.update_message(message, visibility_timeout=0)
    with run_host(app, azurite):
        poisoned = collect(service.get_queue_client(f"{app.in_queue}-poison"), 1)
    assert poisoned == ["crashed a host twice"]
    assert function_module("echo").CALLS == []


def test_concurrency_is_bounded_by_batch_size(
    make_app: Callable[..., App], azurite: Azurite, service: QueueServiceClient
) -> None:
    app = make_app({"gated": (queue_function(), gated())}, messageEncoding="none", batchSize=4, newBatchThreshold=0)
    requests = service.get_queue_client(app.in_queue)
    requests.create_queue()
    for number in range(10):
        requests.send_message(f"m{number}")
    # More threads than the batch, so only the queue options can be what limits concurrency.
    with run_host(app, azurite, PYTHON_THREADPOOL_THREAD_COUNT="16"):
        module = function_module("gated")
        wait_for(lambda: module.RUNNING == 4 or None, "a full batch running")
        window_end = time.monotonic() + 0.5
        while time.monotonic() < window_end:  # no fifth message may start while four are held
            assert len(module.CALLS) == 4
            time.sleep(0.05)
        module.GATE.set()
        outputs = collect(service.get_queue_client(app.out_queue), 10)
    assert sorted(outputs) == sorted(f"1:m{number}" for number in range(10))
    assert module.PEAK == 4


def test_lease_is_renewed_while_the_function_runs(
    make_app: Callable[..., App], azurite: Azurite, service: QueueServiceClient
) -> None:
    app = make_app({"gated": (queue_function(), gated())}, messageEncoding="none")
    requests = service.get_queue_client(app.in_queue)
    with run_host(app, azurite, lease_seconds=1):
        requests.send_message("long")
        module = function_module("gated")
        wait_for(lambda: module.CALLS or None, "the invocation to start")
        window_end = time.monotonic() + 3  # three one-second leases: it would reappear without renewal
        while time.monotonic() < window_end:
            assert list(requests.peek_messages()) == []
            assert module.CALLS == [1]
            time.sleep(0.1)
        module.GATE.set()
        outputs = collect(service.get_queue_client(app.out_queue), 1)
    assert outputs == ["1:long"]
    assert module.CALLS == [1]


def test_function_timeout_fails_the_attempt_and_drops_its_late_result(
    make_app: Callable[..., App], azurite: Azurite, service: QueueServiceClient
) -> None:
    app = make_app(
        {"gated": (queue_function(), gated(wait_until_dequeue=1))}, function_timeout="00:00:01", messageEncoding="none"
    )
    with run_host(app, azurite):
        service.get_queue_client(app.in_queue).send_message("slow")
        outputs = service.get_queue_client(app.out_queue)
        assert collect(outputs, 1) == ["2:slow"]  # the second attempt, after the first timed out
        module = function_module("gated")
        module.GATE.set()
        wait_for(lambda: len(module.FINISHED) == 2 or None, "the timed-out invocation to return")
        assert drain(outputs) == []


def test_return_binding_context_str_trigger_and_named_connection(
    make_app: Callable[..., App], azurite: Azurite, service: QueueServiceClient
) -> None:
    function_json = queue_function(out=False)
    function_json["bindings"][0]["connection"] = "Custom"  # looked up as AzureWebJobsCustom first
    function_json["bindings"].append(
        {"name": "$return", "type": "queue", "direction": "out", "queueName": "%OUT_QUEUE%", "connection": "Custom"}
    )
    source = (
        "import azure.functions as func\n\n"
        "def main(msg: str, context: func.Context):\n"
        "    return [f'{context.function_name}:{msg}', f'retry:{context.retry_context.retry_count}']\n"
    )
    app = make_app({"ret": (function_json, source)}, messageEncoding="none")
    with run_host(app, azurite, AzureWebJobsCustom=azurite.connection_string):
        service.get_queue_client(app.in_queue).send_message("hello")
        outputs = collect(service.get_queue_client(app.out_queue), 2)
    assert sorted(outputs) == ["ret:hello", "retry:0"]
