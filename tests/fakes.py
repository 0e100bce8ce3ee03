"""Test doubles at the edges: an HTTP transport for requests, a credential, a queue, a clock, an environment.

The transport is mounted on a real ``requests.Session``, so everything above the socket (URL
building, headers, status handling, JSON) runs for real. Responses are scripted per route and
consumed in order; every request is recorded for assertions.
"""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from azure.core.credentials import AccessToken
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

FAKE_TOKEN = "fake-token-SECRET-5f1c"
ARM = "https://management.azure.com"
EXAMPLES = Path(__file__).resolve().parent / "fixtures" / "azure-rest-api-examples"


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raise_exc: BaseException | None = None


@dataclass
class SentRequest:
    method: str
    url: str
    headers: CaseInsensitiveDict[str]
    body: Any


class FakeTransport(BaseAdapter):
    """Answers requests from scripted replies: ``on("POST", r"/backup\\?", Reply(202, ...))``."""

    def __init__(self) -> None:
        super().__init__()
        self.routes: list[tuple[str, re.Pattern[str], deque[Reply | Callable[[SentRequest], Reply]]]] = []
        self.sent: list[SentRequest] = []

    def on(self, method: str, pattern: str, *replies: Reply | Callable[[SentRequest], Reply]) -> FakeTransport:
        self.routes.append((method, re.compile(pattern), deque(replies)))
        return self

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        body = json.loads(request.body) if request.body else None
        sent = SentRequest(str(request.method), str(request.url), CaseInsensitiveDict(request.headers), body)
        self.sent.append(sent)
        for method, pattern, replies in self.routes:
            if method == request.method and pattern.search(sent.url) and replies:
                reply = replies.popleft() if len(replies) > 1 else replies[0]
                if callable(reply):
                    reply = reply(sent)
                if reply.raise_exc is not None:
                    raise reply.raise_exc
                return _response(request, reply)
        raise AssertionError(f"no scripted reply for {request.method} {sent.url}")

    def close(self) -> None:
        pass

    def calls(self, method: str, pattern: str = "") -> list[SentRequest]:
        return [sent for sent in self.sent if sent.method == method and re.search(pattern, sent.url)]


def _response(request: requests.PreparedRequest, reply: Reply) -> requests.Response:
    response = requests.Response()
    response.status_code = reply.status
    response.headers = CaseInsensitiveDict(reply.headers)
    if reply.body is None:
        response._content = b""
    elif isinstance(reply.body, bytes):
        response._content = reply.body
    else:
        response._content = json.dumps(reply.body).encode()
    response.request = request
    response.url = str(request.url)
    return response


def session_with(transport: FakeTransport) -> requests.Session:
    session = requests.Session()
    session.mount("https://", transport)
    session.mount("http://", transport)
    return session


class FakeCredential:
    def __init__(self, *failures: BaseException) -> None:
        self.scopes: list[str] = []
        self._failures = list(failures)

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.extend(scopes)
        if self._failures:
            raise self._failures.pop(0)
        return AccessToken(FAKE_TOKEN, int(datetime.now(UTC).timestamp()) + 3600)


@dataclass
class SentMessage:
    queue: str
    text: str
    delay_seconds: int


class RecordingSender:
    def __init__(self) -> None:
        self.messages: list[SentMessage] = []

    def send(self, queue_name: str, text: str, delay_seconds: int = 0) -> None:
        self.messages.append(SentMessage(queue_name, text, delay_seconds))

    def take(self) -> SentMessage:
        return self.messages.pop(0)


class RecordingEnvironment(dict[str, str]):
    """An environment that remembers every name looked up in it."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]
        self.asked.add(key)
        return super().get(key, default)


class Clock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def load_example(name: str) -> dict[str, Any]:
    with (EXAMPLES / name).open(encoding="utf-8") as handle:
        document: dict[str, Any] = json.load(handle)
    return document


def headers_of(example: dict[str, Any], status: str) -> dict[str, str]:
    return {key: str(value) for key, value in example["responses"][status].get("headers", {}).items()}


def rebase(url: str, endpoint: str) -> str:
    """An example's URL moved onto another ARM endpoint (the examples name management.azure.com)."""
    return url.replace(ARM, endpoint)


def env(**overrides: str) -> dict[str, str]:
    base = {"AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    base.update(overrides)
    return base


def texts(messages: Iterable[SentMessage]) -> list[dict[str, Any]]:
    return [json.loads(message.text) for message in messages]
