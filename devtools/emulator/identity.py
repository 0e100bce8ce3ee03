"""The App Service managed identity endpoint (api-version 2019-08-01) and the store of the tokens it issued."""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from .wire import Request, Response, json_response

IDENTITY_PATH = "/msi/token"
IDENTITY_API_VERSION = "2019-08-01"
# Purging only when the store grows keeps issuing O(1) in the common case.
_PURGE_AT = 10000


@dataclass(frozen=True)
class IssuedToken:
    resource: str
    client_id: str
    expires_at: float


class TokenStore:
    """Opaque random tokens and what they were issued for; not thread-safe, the emulator locks around it."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tokens: dict[str, IssuedToken] = {}

    def issue(self, resource: str, client_id: str, lifetime: float) -> tuple[str, IssuedToken]:
        if len(self._tokens) >= _PURGE_AT:
            now = self._clock()
            self._tokens = {t: i for t, i in self._tokens.items() if i.expires_at > now}
        token = secrets.token_urlsafe(48)
        issued = IssuedToken(resource, client_id, self._clock() + lifetime)
        self._tokens[token] = issued
        return token, issued

    def lookup(self, token: str) -> IssuedToken | None:
        return self._tokens.get(token)

    def expired(self, issued: IssuedToken) -> bool:
        return issued.expires_at <= self._clock()


def _failure(status: int, message: str) -> Response:
    # The shape App Service's identity endpoint answers errors in; MSAL reads statusCode and message.
    return json_response(status, {"statusCode": status, "message": message, "correlationId": str(uuid.uuid4())})


def answer_token_request(
    request: Request, *, secret: str, store: TokenStore, lifetime: float, default_client_id: str
) -> Response:
    """GET {endpoint}?api-version=2019-08-01&resource=R with X-IDENTITY-HEADER, as App Service serves it."""
    if request.method != "GET":
        return _failure(405, "Only GET is supported.")
    if request.path != IDENTITY_PATH:
        return _failure(404, f"No identity endpoint at {request.path}.")
    header = request.header("X-IDENTITY-HEADER")
    if not header:
        return _failure(400, "The X-IDENTITY-HEADER header is missing.")
    if not hmac.compare_digest(header.encode(), secret.encode()):
        return _failure(401, "The X-IDENTITY-HEADER header does not match.")
    query = request.query
    if query.get("api-version") != IDENTITY_API_VERSION:
        return _failure(400, f"api-version must be {IDENTITY_API_VERSION}.")
    resource = query.get("resource", "")
    if not resource:
        return _failure(400, "The resource parameter is missing.")
    client_id = query.get("client_id") or default_client_id
    token, issued = store.issue(resource, client_id, lifetime)
    return json_response(
        200,
        {
            "access_token": token,
            "expires_on": str(int(issued.expires_at)),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": client_id,
        },
    )
