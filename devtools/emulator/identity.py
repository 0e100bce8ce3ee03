"""The App Service managed identity endpoint (api-version 2019-08-01) and the store of the tokens it issued."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
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
TENANT_ID = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
# Azurite's --oauth basic accepts a token from these issuers (it checks issuer, audience and times,
# not the signature): with it, identity-based storage works locally as in Azure.
ISSUER = f"https://sts.windows.net/{TENANT_ID}/"
# Azurite compares nbf with its own clock; a little slack keeps a token issued this second valid there.
_NOT_BEFORE_SLACK_SECONDS = 60


@dataclass(frozen=True)
class IssuedToken:
    resource: str
    client_id: str
    expires_at: float


def _segment(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class TokenStore:
    """Tokens and what they were issued for; not thread-safe, the emulator locks around it.

    Each token is a JWT shaped as Entra ID issues them (``aud``, ``iss``, ``iat``, ``nbf``, ``exp``,
    ``appid``/``oid``, a random ``jti``), signed with a key that never leaves the process. The ARM side
    accepts only tokens found in this store; Azurite reads the claims.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tokens: dict[str, IssuedToken] = {}
        self._key = secrets.token_bytes(32)

    def _jwt(self, resource: str, client_id: str, now: float, expires_at: float) -> str:
        header = {"alg": "HS256", "typ": "JWT"}
        claims = {
            "aud": resource, "iss": ISSUER, "tid": TENANT_ID, "appid": client_id, "oid": client_id,
            "iat": int(now), "nbf": int(now) - _NOT_BEFORE_SLACK_SECONDS, "exp": int(expires_at),
            "jti": secrets.token_urlsafe(16),
        }
        signing_input = ".".join(
            _segment(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = hmac.new(self._key, signing_input.encode("ascii"), hashlib.sha256).digest()
        return f"{signing_input}.{_segment(signature)}"

    def issue(self, resource: str, client_id: str, lifetime: float) -> tuple[str, IssuedToken]:
        now = self._clock()
        if len(self._tokens) >= _PURGE_AT:
            self._tokens = {t: i for t, i in self._tokens.items() if i.expires_at > now}
        issued = IssuedToken(resource, client_id, now + lifetime)
        token = self._jwt(resource, client_id, now, issued.expires_at)
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
