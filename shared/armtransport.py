"""The HTTP transport to ARM: the only code that sends a request to Azure.

It adds the bearer token (only after ``ensure_followable`` approved the URL), a client request
id, a User-Agent and timeouts; it never follows redirects and never retries: whether and when
to try again is the caller's decision, made from the typed errors raised here. requests and
azure-core exceptions are translated to this app's errors in this one place. The operations
built on it (``shared.arm``) read the answers.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import requests
from azure.core.credentials import TokenCredential
from azure.core.exceptions import AzureError
from urllib3.exceptions import NewConnectionError

from shared.armid import ensure_followable
from shared.errors import (
    ArmRejected,
    ArmThrottled,
    ArmUnavailable,
    ArmUnreachable,
    ErrorInfo,
    TokenUnavailable,
)
from shared.logs import for_request
from shared.settings import Settings
from shared.timing import retry_after_seconds

__all__ = ["USER_AGENT", "Answer", "ArmTransport", "CallScope"]

logger = logging.getLogger(__name__)

USER_AGENT = "backup-trigger-functions/1.0"
_TRANSIENT_STATUSES = {401, 408, 429} | set(range(500, 600))
# 401 is transient: a token can expire between issue and use, and the next try fetches a new one.


@dataclass(frozen=True)
class CallScope:
    """Whom a call is for: the subscription its URL must stay under, and what its log line names."""

    subscription_id: str
    correlation_id: str
    label: str


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes
    retry_after: float | None

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-ms-request-id")

    def json(self) -> dict[str, Any]:
        try:
            document = json.loads(self.body)
        except ValueError:
            document = None
        if not isinstance(document, dict):
            # A GET may be tried again; a garbled body is most likely a passing fault.
            raise ArmUnavailable(
                ErrorInfo(code="MalformedResponse", message=f"expected a JSON object, got {self.body[:120]!r}",
                          http_status=self.status, request_id=self.request_id),
                retry_after=self.retry_after,
            )
        return document


class ArmTransport:
    """Authenticated calls to one ARM endpoint; one instance (and one session) per process."""

    def __init__(
        self,
        settings: Settings,
        credential: TokenCredential,
        session: requests.Session,
        clock: Callable[[], datetime],
    ) -> None:
        self._settings = settings
        self._credential = credential
        self._session = session
        self._clock = clock
        self._timeout = (settings.http_connect_timeout_seconds, settings.http_read_timeout_seconds)
        self._token_lock = threading.Lock()

    def url(self, path: str, api_version: str | None = None) -> str:
        """``path`` (already encoded) on the ARM endpoint, with the backup api-version unless told another."""
        query = urlencode({"api-version": api_version or self._settings.api_version})
        return f"{self._settings.arm_endpoint}{path}?{query}"

    def call(self, method: str, url: str, scope: CallScope, body: Mapping[str, Any] | None = None) -> Answer:
        ensure_followable(url, arm_endpoint=self._settings.arm_endpoint, subscription_id=scope.subscription_id)
        client_request_id = str(uuid.uuid4())
        headers = {
            "Authorization": f"Bearer {self._token()}",
            "x-ms-client-request-id": client_request_id,
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        }
        started = time.perf_counter()
        try:
            response = self._session.request(
                method, url, headers=headers, json=body, timeout=self._timeout, allow_redirects=False
            )
        except requests.RequestException as exc:
            raise _unreachable(exc, method) from exc
        elapsed_ms = (time.perf_counter() - started) * 1000
        for_request(logger, scope.correlation_id, scope.label).info(
            "ARM %s %s -> %s in %.0f ms (client request %s, ARM request %s)",
            method, url.split("?", 1)[0], response.status_code, elapsed_ms, client_request_id,
            response.headers.get("x-ms-request-id"),
        )
        return Answer(
            status=response.status_code,
            headers=response.headers,
            body=response.content,
            retry_after=retry_after_seconds(response.headers, self._clock()),
        )

    def _token(self) -> str:
        # One caller at a time: the credential caches, but concurrent first calls would each fetch
        # a token of their own (seen: 14 fetches for 16 cold invocations). The cached path is fast.
        try:
            with self._token_lock:
                return self._credential.get_token(self._settings.arm_scope).token
        except AzureError as exc:
            # The credential's own message may name endpoints but never holds a token.
            raise TokenUnavailable(ErrorInfo(code="TokenUnavailable", message=str(exc)[:500])) from exc

    @staticmethod
    def error(answer: Answer, what: str) -> ArmUnavailable | ArmRejected:
        """The error an unwanted answer means: throttled, transient, or ARM's refusal."""
        info = _cloud_error(answer, what)
        if answer.status == 429:
            return ArmThrottled(info, retry_after=answer.retry_after)
        if answer.status in _TRANSIENT_STATUSES:
            return ArmUnavailable(info, retry_after=answer.retry_after)
        return ArmRejected(info)


def _cloud_error(answer: Answer, what: str) -> ErrorInfo:
    try:
        document = json.loads(answer.body) if answer.body else {}
    except ValueError:
        document = {}
    error = document.get("error", document) if isinstance(document, dict) else {}
    if not isinstance(error, dict):
        error = {}
    return ErrorInfo.from_cloud_error(
        error,
        default_code=f"Http{answer.status}",
        default_message=f"{what} answered HTTP {answer.status}",
        http_status=answer.status,
        request_id=answer.request_id,
        correlation_request_id=answer.headers.get("x-ms-correlation-request-id"),
    )


def _unreachable(exc: requests.RequestException, method: str) -> ArmUnreachable:
    # A request that never connected cannot have triggered anything; one that was sent and then
    # lost its answer may have.
    never_sent = isinstance(exc, requests.ConnectTimeout) or _is_connect_failure(exc)
    code = "ArmTimeout" if isinstance(exc, requests.Timeout) else "ArmConnectionFailed"
    return ArmUnreachable(
        ErrorInfo(code=code, message=f"{method} failed: {type(exc).__name__}: {str(exc)[:300]}"),
        request_may_have_arrived=not never_sent,
    )


def _is_connect_failure(exc: requests.RequestException) -> bool:
    reason = exc.args[0] if exc.args else None
    return isinstance(getattr(reason, "reason", None), NewConnectionError)
