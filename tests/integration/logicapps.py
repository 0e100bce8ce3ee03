"""A client that behaves as a Logic Apps HTTP action does with an asynchronous endpoint.

What the action does (Logic Apps docs, "asynchronous request-response pattern"): it sends its
request; an answer other than 202 ends it at once. After a 202 it waits ``Retry-After`` seconds
(20 when absent), then GETs the absolute ``Location`` of the latest 202, again and again, until
an answer is not 202; that answer's status and body are the action's outputs. It sends no
headers of its own with the polls, so the ``Location`` must carry whatever it needs.

The waits are the protocol's own (Retry-After), not synchronisation; the number of looks and
the total time are bounded so that a server that never finishes fails the test instead of
hanging it.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import requests

__all__ = ["DEFAULT_RETRY_AFTER", "Exchange", "LogicAppsHttpAction"]

DEFAULT_RETRY_AFTER = 20
"""What Logic Apps waits when a 202 names no Retry-After."""


@dataclass(frozen=True)
class Exchange:
    method: str
    url: str
    status: int
    headers: dict[str, str]
    body: str

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class LogicAppsHttpAction:
    max_looks: int = 30
    deadline_seconds: float = 120.0
    session: requests.Session = field(default_factory=requests.Session)
    exchanges: list[Exchange] = field(default_factory=list)

    def run(self, uri: str, body: Any, *, method: str = "POST") -> Exchange:
        """The action's final answer: its status and body are what the workflow sees."""
        started = time.monotonic()
        answer = self._send(method, uri, json.dumps(body).encode())
        while answer.status == 202:
            if len(self.exchanges) > self.max_looks or time.monotonic() - started > self.deadline_seconds:
                raise TimeoutError(f"still 202 after {len(self.exchanges)} looks: {answer.body[:300]}")
            location = answer.headers["location"]
            assert location.startswith(("http://", "https://")), f"Location must be absolute, not {location!r}"
            time.sleep(int(answer.headers.get("retry-after", DEFAULT_RETRY_AFTER)))  # the protocol's own wait
            answer = self._send("GET", location, None)
        return answer

    def _send(self, method: str, url: str, body: bytes | None) -> Exchange:
        headers = {"Content-Type": "application/json; charset=utf-8"} if body is not None else {}
        response = self.session.request(method, url, data=body, headers=headers, timeout=30, allow_redirects=False)
        exchange = Exchange(method, url, response.status_code, {k.lower(): v for k, v in response.headers.items()},
                            response.text)
        self.exchanges.append(exchange)
        return exchange
