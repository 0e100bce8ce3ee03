"""Exceptions, sorted by what the caller must do about them.

::

    BackupAppError                  never raised itself
    ├── RequestRejected             bad input: settle with a ``Rejected`` result, send nothing to Azure
    ├── TransientError              try the same work again later (Retry-After, else backoff)
    │   ├── ArmUnavailable          ARM answered 401, 408 or 5xx, or a garbled body to a GET
    │   │   └── ArmThrottled        ARM answered 429: it is pacing us, bounded by deadline not attempts
    │   ├── ArmUnreachable          no answer: connection refused or dropped, timeout
    │   └── TokenUnavailable        the credential could not produce a token
    ├── PermanentError              settle with a ``Failed`` result carrying the error
    │   ├── ArmRejected             ARM answered another 4xx (its CloudError is kept)
    │   ├── ArmProtocolError        ARM answered something this app cannot read
    │   ├── ResourceNotProtected    Backup Status - Get names no vault that protects the resource
    │   └── UntrustedUrl            a URL to follow is not https on the ARM host under the subscription
    └── QueueUnavailable            storage failed: let the host retry the message, then poison it

Errors carry their data as attributes (``ErrorInfo``); nobody parses message text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DAILY_LIMIT_CODES",
    "IN_PROGRESS_CODES",
    "ArmProtocolError",
    "ArmRejected",
    "ArmThrottled",
    "ArmUnavailable",
    "ArmUnreachable",
    "BackupAppError",
    "ErrorInfo",
    "PermanentError",
    "QueueUnavailable",
    "RequestRejected",
    "ResourceNotProtected",
    "TokenUnavailable",
    "TransientError",
    "UntrustedUrl",
    "json_objects",
]


_MAX_FIELD_CHARS = 100

IN_PROGRESS_CODES = frozenset({"UserErrorBackupOperationInProgress", "SystemBackupOperationInProgress"})
"""Another backup of the item is running: wait for it or join it, never fail for it."""
DAILY_LIMIT_CODES = frozenset({"CloudDosAbsoluteLimitReached", "CloudDosAbsoluteLimitReachedWithRetry"})
"""The item's on-demand backups for the UTC day are used up: try again after midnight UTC."""


@dataclass(frozen=True)
class ErrorInfo:
    """An error as a result message carries it: ARM's CloudError fields plus request ids."""

    code: str
    message: str
    target: str | None = None
    details: tuple[dict[str, Any], ...] = ()
    http_status: int | None = None
    request_id: str | None = None
    correlation_request_id: str | None = None
    additional_info: tuple[dict[str, Any], ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"code": self.code, "message": self.message}
        optional: dict[str, Any] = {
            "target": self.target,
            "details": list(self.details) or None,
            "additionalInfo": list(self.additional_info) or None,
            "httpStatus": self.http_status,
            "requestId": self.request_id,
            "correlationRequestId": self.correlation_request_id,
        }
        document.update({key: value for key, value in optional.items() if value is not None})
        return document

    @classmethod
    def from_cloud_error(
        cls,
        error: dict[str, Any],
        *,
        default_code: str,
        default_message: str = "",
        http_status: int | None = None,
        request_id: str | None = None,
        correlation_request_id: str | None = None,
    ) -> ErrorInfo:
        """The body of an ARM CloudError (``{"error": {…}}``'s inside), whatever shape it arrived in."""
        target = error.get("target")
        return cls(
            code=str(error.get("code") or default_code),
            message=str(error.get("message") or default_message),
            target=target if isinstance(target, str) else None,
            details=tuple(json_objects(error.get("details"))),
            additional_info=tuple(json_objects(error.get("additionalInfo"))),
            http_status=http_status,
            request_id=request_id,
            correlation_request_id=correlation_request_id,
        )

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> ErrorInfo:
        return cls(
            code=str(document.get("code", "Unknown")),
            message=str(document.get("message", "")),
            target=document.get("target"),
            details=tuple(json_objects(document.get("details"))),
            http_status=document.get("httpStatus"),
            request_id=document.get("requestId"),
            correlation_request_id=document.get("correlationRequestId"),
            additional_info=tuple(json_objects(document.get("additionalInfo"))),
        )


def json_objects(value: object) -> list[dict[str, Any]]:
    """The objects of a JSON array from outside; anything else is nothing, never an exception."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


class BackupAppError(Exception):
    """Base of this app's errors; never raised itself."""

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(f"{info.code}: {info.message}")
        self.info = info


class RequestRejected(BackupAppError):
    """The request is invalid or not allowed; nothing was sent to Azure."""

    def __init__(self, field_name: str, reason: str, code: str = "InvalidRequest") -> None:
        # Field names can come from the message itself (an unknown key): keep them short.
        field_name = field_name if len(field_name) <= _MAX_FIELD_CHARS else field_name[:_MAX_FIELD_CHARS] + "…"
        super().__init__(ErrorInfo(code=code, message=f"{field_name}: {reason}", target=field_name))
        self.field_name = field_name
        self.reason = reason


class TransientError(BackupAppError):
    """The same call may succeed later; ``retry_after`` is the server's wish in seconds, if any."""

    def __init__(self, info: ErrorInfo, retry_after: float | None = None) -> None:
        super().__init__(info)
        self.retry_after = retry_after


class ArmUnavailable(TransientError):
    """ARM answered 408, 429 or a 5xx."""


class ArmThrottled(ArmUnavailable):
    """ARM answered 429: the caller is over its request budget and must wait Retry-After."""


class ArmUnreachable(TransientError):
    """No answer from ARM: the connection failed or timed out."""

    def __init__(self, info: ErrorInfo, *, request_may_have_arrived: bool) -> None:
        super().__init__(info)
        self.request_may_have_arrived = request_may_have_arrived


class TokenUnavailable(TransientError):
    """The credential could not produce a token for ARM."""


class PermanentError(BackupAppError):
    """Trying again will not help; the request ends ``Failed``."""


class ArmRejected(PermanentError):
    """ARM answered a 4xx other than 408 and 429."""


class ArmProtocolError(PermanentError):
    """ARM's answer lacks what the protocol promises (a header, a JSON body)."""


class ResourceNotProtected(PermanentError):
    """No Recovery Services vault protects the resource a request names (code ``NotProtected``)."""


class UntrustedUrl(PermanentError):
    """A URL to follow is not https on the ARM host under the request's subscription."""


class QueueUnavailable(Exception):
    """Storage could not be reached; the host retries the message and finally poisons it."""
