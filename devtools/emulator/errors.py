"""ARM's error envelope (CloudError) as an exception the request handlers raise and the dispatcher renders."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from .wire import Response, json_response


class ArmError(Exception):
    """An answer of the form {"error": {code, message, target?, details?}} with its status and extra headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        details: Sequence[Mapping[str, str]] = (),
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.details = list(details)
        self.headers = dict(headers or {})

    def body(self) -> dict[str, object]:
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.target is not None:
            error["target"] = self.target
        if self.details:
            error["details"] = self.details
        return {"error": error}

    def to_response(self) -> Response:
        return json_response(self.status, self.body(), self.headers)


def not_found(code: str, message: str) -> ArmError:
    return ArmError(404, code, message)


def bad_request(code: str, message: str, target: str | None = None) -> ArmError:
    return ArmError(400, code, message, target=target)
