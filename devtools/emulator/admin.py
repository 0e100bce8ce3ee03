"""The introspection and control API under /_emulator on the ARM server (no token needed): see README.md."""

from __future__ import annotations

import json
from typing import Any, Protocol

from .errors import ArmError, bad_request
from .wire import Request, Response, json_response

ADMIN_PREFIX = "/_emulator"


class AdminTarget(Protocol):
    def stats(self) -> dict[str, Any]: ...
    def requests_since(self, since: int, limit: int) -> list[dict[str, Any]]: ...
    def current_config(self) -> dict[str, Any]: ...
    def configure(self, patch: dict[str, Any]) -> dict[str, Any]: ...
    def reset(self) -> None: ...
    def clock(self, advance_seconds: float = 0.0) -> dict[str, Any]: ...


def is_admin(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


def _int(query: dict[str, str], name: str, default: int) -> int:
    try:
        return int(query.get(name, default))
    except ValueError as exc:
        raise bad_request("InvalidParameter", f"{name} must be an integer.", name) from exc


def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request("InvalidRequestContent", f"The body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise bad_request("InvalidRequestContent", "The body must be a JSON object.")
    return body


def handle_admin(request: Request, target: AdminTarget) -> Response:
    try:
        return _dispatch(request, target)
    except ArmError as exc:
        return exc.to_response()


def _dispatch(request: Request, target: AdminTarget) -> Response:
    action = (request.method, request.path[len(ADMIN_PREFIX):].rstrip("/"))
    if action == ("GET", "/stats"):
        return json_response(200, target.stats())
    if action == ("GET", "/requests"):
        query = request.query
        entries = target.requests_since(_int(query, "since", 0), _int(query, "limit", 10000))
        return json_response(200, {"requests": entries, "last_seq": entries[-1]["seq"] if entries else None})
    if action == ("GET", "/config"):
        return json_response(200, target.current_config())
    if action == ("POST", "/config"):
        try:
            return json_response(200, target.configure(_json_body(request)))
        except ValueError as exc:
            raise bad_request("InvalidConfiguration", str(exc)) from exc
    if action == ("POST", "/reset"):
        target.reset()
        return Response(204)
    if action == ("GET", "/clock"):
        return json_response(200, target.clock())
    if action == ("POST", "/clock"):
        seconds = _json_body(request).get("advance_seconds", 0)
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
            raise bad_request("InvalidParameter", "advance_seconds must be a number >= 0.", "advance_seconds")
        return json_response(200, target.clock(float(seconds)))
    raise ArmError(404, "NotFound", f"No admin action {request.method} {request.path}.")
