"""Drives backup_api as the worker calls it, with the queue functions behind it, over an in-memory ledger.

``FrontDoor`` wires the harness ``App`` (real ArmClient on a FakeTransport, RecordingSender,
Clock) with ``Ledger(MemoryStore)`` and installs it with ``runtime.override``. ``call`` builds an
``azure.functions.HttpRequest`` as the worker does (absolute URL, headers, query, route
parameters, body) and calls ``backup_api.main``; ``follow`` reads a ``Location`` the way the host
hands it over (the path segment and the query percent-decoded once). ``run_queues`` plays the
queues: request messages to trigger_backup, follow-ups to poll_status with the clock moved by
their delay, results collected as sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import azure.functions as func

import backup_api
import poll_status
import trigger_backup
from shared import runtime
from shared.ledger import Ledger, RequestRecord
from shared.ledger_store import MemoryStore
from tests.functions.harness import App, OutCapture, queue_message

BASE = "https://backup-func.azurewebsites.net"
COLLECTION = f"{BASE}/api/backups"
JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    """Names lower-cased."""
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def location(self) -> str:
        return self.headers["location"]

    @property
    def retry_after(self) -> int:
        return int(self.headers["retry-after"])


class FrontDoor:
    def __init__(self, *, ledger: bool = True, store: MemoryStore | None = None,
                 settings: Mapping[str, str] | None = None) -> None:
        self.app = App(credential=None, **(settings or {}))
        self.store = store or MemoryStore(self.app.clock)
        self.ledger = Ledger(self.store) if ledger else None
        self.services = replace(self.app.services, ledger=self.ledger)
        self.results: list[str] = []
        self.answers: list[Answer] = []
        self._ids = 0

    # -- HTTP ------------------------------------------------------------------------------------

    def call(self, method: str, url: str, *, body: bytes = b"", headers: dict[str, str] | None = None,
             route_id: str | None = None) -> Answer:
        parts = urlsplit(url)
        request = func.HttpRequest(
            method, url, headers=headers or {}, params=dict(parse_qsl(parts.query, keep_blank_values=True)),
            route_params={"id": route_id} if route_id is not None else {}, body=body,
        )
        with runtime.override(self.services):
            response = backup_api.main(request)
        answer = Answer(response.status_code, {k.lower(): v for k, v in response.headers.items()},
                        response.get_body().decode("utf-8"))
        assert answer.headers["content-type"] == "application/json; charset=utf-8"
        json.loads(answer.text)  # every answer is JSON
        self.answers.append(answer)
        return answer

    def post(self, document: dict[str, Any] | bytes, *, url: str = COLLECTION,
             headers: dict[str, str] | None = None) -> Answer:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        return self.call("POST", url, body=body, headers=JSON if headers is None else headers)

    def follow(self, location: str, *, headers: dict[str, str] | None = None) -> Answer:
        """GET a Location as the host would route it: ``backups/{id?}`` against the path."""
        path = urlsplit(location).path
        head, _, last = path.rstrip("/").rpartition("/")
        route_id = unquote(last) if head.lower().endswith("/api/backups") else None
        return self.call("GET", location, headers=headers, route_id=route_id)

    # -- the queues behind it ----------------------------------------------------------------------

    @property
    def queued_requests(self) -> list[str]:
        return [m.text for m in self.app.sender.messages if m.queue == self.app.settings.requests_queue]

    def run_queues(self, limit: int = 60) -> None:
        """Deliver queued messages until nothing is left; AssertionError if that takes over ``limit``."""
        for _ in range(limit):
            if not self.step():
                return
        raise AssertionError("the queues never emptied")

    def step(self) -> bool:
        """Deliver the oldest queued message (results are kept in ``results``); False when there is none."""
        settings = self.app.settings
        if not self.app.sender.messages:
            return False
        message = self.app.sender.take()
        if message.queue == settings.results_queue:
            self.results.append(message.text)
            return True
        main = trigger_backup.main if message.queue == settings.requests_queue else poll_status.main
        self.app.clock.advance(message.delay_seconds)
        self._ids += 1
        out = OutCapture()
        delivered = queue_message(message.text, message_id=f"m-{self._ids}", dequeue_count=1,
                                  insertion_time=self.app.clock())
        with runtime.override(self.services):
            main(delivered, out)
        self.results.extend(out.values)
        return True

    def record(self, key: str) -> RequestRecord | None:
        assert self.ledger is not None
        return self.ledger.request(key)

    @property
    def arm_posts(self) -> int:
        return len(self.app.posts)
