"""HTTP values the emulator's logic works on, independent of the socket server that carries them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import parse_qs

JSON_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True)
class Request:
    """One request as received: the raw request-target is kept so routing can split it before decoding."""

    method: str
    target: str
    headers: Mapping[str, str]
    body: bytes = b""

    @classmethod
    def build(cls, method: str, target: str, headers: Mapping[str, str], body: bytes = b"") -> Request:
        return cls(method.upper(), target, {k.lower(): v for k, v in headers.items()}, body)

    @cached_property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @cached_property
    def query(self) -> dict[str, str]:
        raw = self.target.split("?", 1)[1] if "?" in self.target else ""
        # ARM reads the first occurrence of a repeated parameter.
        return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    """What to send back; `drop` closes the connection unanswered, `delay` holds the answer back."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    drop: bool = False
    delay: float = 0.0


def json_response(status: int, payload: object, headers: Mapping[str, str] | None = None) -> Response:
    all_headers = {"Content-Type": JSON_TYPE}
    all_headers.update(headers or {})
    return Response(status, all_headers, json.dumps(payload, separators=(",", ":")).encode())
