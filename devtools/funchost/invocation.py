"""One call of a function's entry point with real azure.functions objects, and what it emitted.

The trigger parameter is an ``azure.functions.queue.QueueMessage`` (or the body as ``str`` /
``bytes`` when annotated so); each ``out`` binding is a ``func.Out``. After the call, output
values are turned into message texts with the azure-functions queue converter itself, so a
``QueueMessage`` or a list set on an ``Out`` becomes what the worker would hand the host.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import azure.functions as func
from azure.functions import _abc as functions_abc
from azure.functions.queue import QueueMessage, QueueMessageOutConverter

from devtools.funchost.hostconfig import MessageEncoding
from devtools.funchost.loader import LoadedFunction, TriggerKind

__all__ = ["Delivery", "InvalidEncoding", "decode_body", "encode_text", "invoke"]

T = TypeVar("T")


class InvalidEncoding(ValueError):
    """A message under ``messageEncoding: base64`` is not base64: the host poisons it unread."""


@dataclass(frozen=True)
class Delivery:
    """The received message, as the trigger sees it."""

    id: str
    body: bytes
    pop_receipt: str | None
    dequeue_count: int
    insertion_time: datetime | None
    expiration_time: datetime | None
    next_visible: datetime | None


def decode_body(text: str, encoding: MessageEncoding) -> bytes:
    if encoding is MessageEncoding.NONE:
        return text.encode("utf-8")
    # Like .NET's Convert.FromBase64String: whitespace is ignored, anything else must be base64.
    compact = "".join(text.split())
    try:
        return base64.b64decode(compact, validate=True)
    except ValueError as exc:
        raise InvalidEncoding(f"message is not valid base64: {exc}") from exc


def encode_text(value: str | bytes, encoding: MessageEncoding) -> str:
    raw = value.encode("utf-8") if isinstance(value, str) else value
    if encoding is MessageEncoding.BASE64:
        return base64.b64encode(raw).decode("ascii")
    # Queue messages are text; bytes that are not UTF-8 cannot travel unencoded.
    return raw.decode("utf-8") if isinstance(value, bytes) else value


class _Out(func.Out[T]):
    def __init__(self) -> None:
        self._value: T | None = None
        self.was_set = False

    def set(self, val: T) -> None:
        self._value = val
        self.was_set = True

    def get(self) -> T:
        return self._value  # type: ignore[return-value]  # Out.get before set is None in the worker too


class _TraceContext(functions_abc.TraceContext):
    def __init__(self) -> None:
        self._parent = f"00-{uuid.uuid4().hex}-{uuid.uuid4().hex[:16]}-01"

    @property
    def trace_state(self) -> str:
        return ""

    @property
    def trace_parent(self) -> str:
        return self._parent

    @property
    def attributes(self) -> dict[str, str]:
        return {}


class _NoException(functions_abc.RpcException):
    """What the worker reports when the previous attempt's exception is not known to it."""

    @property
    def source(self) -> str:
        return ""

    @property
    def stack_trace(self) -> str:
        return ""

    @property
    def message(self) -> str:
        return ""


class _RetryContext(functions_abc.RetryContext):
    def __init__(self, retry_count: int, max_retry_count: int) -> None:
        self._count = retry_count
        self._max = max_retry_count

    @property
    def retry_count(self) -> int:
        return self._count

    @property
    def max_retry_count(self) -> int:
        return self._max

    @property
    def exception(self) -> functions_abc.RpcException:
        return _NoException()


class _Context(func.Context):
    def __init__(self, invocation_id: str, function: LoadedFunction, retry: _RetryContext) -> None:
        self._invocation_id = invocation_id
        self._function = function
        self._retry = retry
        self._trace = _TraceContext()
        self._local = threading.local()
        self._local.invocation_id = invocation_id

    @property
    def invocation_id(self) -> str:
        return self._invocation_id

    @property
    def thread_local_storage(self) -> Any:
        return self._local

    @property
    def function_name(self) -> str:
        return self._function.name

    @property
    def function_directory(self) -> str:
        return str(self._function.metadata.directory)

    @property
    def trace_context(self) -> _TraceContext:
        return self._trace

    @property
    def retry_context(self) -> _RetryContext:
        return self._retry


def invoke(
    function: LoadedFunction, delivery: Delivery, invocation_id: str, max_dequeue_count: int
) -> dict[str, list[str | bytes]]:
    """Call the function once; the message bodies it emitted, by output binding name."""
    trigger = function.metadata.trigger
    arguments: dict[str, Any] = {trigger.name: _trigger_value(function.trigger_kind, delivery)}
    outs = {binding.name: _Out[Any]() for binding in function.out_bindings}
    arguments.update(outs)
    if function.wants_context:
        retry = _RetryContext(delivery.dequeue_count - 1, max_dequeue_count)
        arguments["context"] = _Context(invocation_id, function, retry)
    result = asyncio.run(function.func(**arguments)) if function.is_async else function.func(**arguments)
    if result is not None and function.return_binding is None:
        raise TypeError(f"function {function.name!r} without a $return binding returned a non-None value")
    emitted = {name: _messages(out.get()) for name, out in outs.items() if out.was_set}
    if function.return_binding is not None and result is not None:
        emitted[function.return_binding.name] = _messages(result)
    return emitted


def _trigger_value(kind: TriggerKind, delivery: Delivery) -> object:
    if kind is TriggerKind.BYTES:
        return delivery.body
    if kind is TriggerKind.TEXT:
        return delivery.body.decode("utf-8")
    return QueueMessage(  # type: ignore[no-untyped-call]  # untyped in azure-functions
        id=delivery.id,
        body=delivery.body,
        pop_receipt=delivery.pop_receipt,
        dequeue_count=delivery.dequeue_count,
        insertion_time=delivery.insertion_time,
        expiration_time=delivery.expiration_time,
        time_next_visible=delivery.next_visible,
    )


def _messages(value: object) -> list[str | bytes]:
    """The message bodies one output value stands for, as the worker's queue converter encodes it."""
    if value is None:
        return []
    try:
        datum = QueueMessageOutConverter.encode(value, expected_type=None)
    except NotImplementedError:
        raise TypeError(f"a queue output cannot take a {type(value).__name__}") from None
    if datum.type == "string":
        return [str(datum.value)]
    if datum.type == "bytes":
        return [bytes(datum.value)]
    # "json": one QueueMessage, or a collection of str / QueueMessage; the host writes one each.
    decoded = json.loads(datum.value)
    items: Sequence[object] = decoded if isinstance(decoded, list) else [decoded]
    return [item if isinstance(item, str) else json.dumps(item) for item in items]
