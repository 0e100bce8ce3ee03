"""Managed identity (App Service protocol) and ARM's bearer-token checks, including the real azure-identity client."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

import pytest
import requests
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

from .conftest import VAULT, VM1, Client

ITEMS = f"{VAULT}/backupProtectedItems"


def _assert_401(response: requests.Response, code: str) -> None:
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")
    assert response.headers["x-ms-request-id"]


def test_missing_or_unknown_token_is_refused(arm: Client) -> None:
    _assert_401(arm.get(ITEMS, token=None), "InvalidAuthenticationToken")
    _assert_401(arm.get(ITEMS, token="not-a-token-we-issued"), "InvalidAuthenticationToken")
    _assert_401(arm.request("POST", arm.url(ITEMS), token=None, headers={"Authorization": "Basic eDp5"}),
                "InvalidAuthenticationToken")
    assert arm.stats()["unauthorized"] == 3


def test_refused_trigger_does_not_take_effect(arm: Client) -> None:
    _assert_401(arm.trigger(VM1, token="forged"), "InvalidAuthenticationToken")

    assert arm.stats()["triggers_by_item"] == {}


def test_expired_token_is_refused(make_arm: Callable[..., Client]) -> None:
    arm = make_arm(token_lifetime_seconds=0)

    _assert_401(arm.get(ITEMS), "ExpiredAuthenticationToken")


def test_token_for_another_audience_is_refused(arm: Client) -> None:
    storage_token = arm.fetch_token("https://storage.azure.com/")

    _assert_401(arm.get(ITEMS, token=storage_token), "InvalidAuthenticationTokenAudience")
    assert arm.get(ITEMS, token=arm.fetch_token("https://management.azure.com")).status_code == 200


def test_accepted_audiences_are_configurable(arm: Client) -> None:
    arm.configure({"token_audiences": ["https://management.core.usgovcloudapi.net/"]})

    _assert_401(arm.get(ITEMS), "InvalidAuthenticationTokenAudience")
    assert arm.get(ITEMS, token=arm.fetch_token("https://management.core.usgovcloudapi.net/")).status_code == 200


def test_admin_needs_no_token(arm: Client) -> None:
    assert arm.admin("GET", "stats").status_code == 200


def _identity(arm: Client, headers: dict[str, str], **params: str) -> requests.Response:
    query = {"api-version": "2019-08-01", "resource": "https://management.azure.com/", **params}
    return requests.get(arm.endpoints["identity_endpoint"], params=query, headers=headers, timeout=10)


def test_identity_endpoint_answers_like_app_service(arm: Client) -> None:
    before = time.time()
    response = _identity(arm, {"X-IDENTITY-HEADER": arm.endpoints["identity_header"]})

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert isinstance(body["expires_on"], str)
    assert before + 3600 - 5 <= int(body["expires_on"]) <= time.time() + 3600
    assert body["token_type"] == "Bearer"
    assert body["resource"] == "https://management.azure.com/"
    assert arm.endpoints["identity_endpoint"].startswith("http://127.0.0.1:")


def _claims(token: str) -> dict[str, object]:
    header, payload, signature = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))) == {"alg": "HS256", "typ": "JWT"}
    assert signature
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def test_tokens_carry_the_claims_azurite_checks(arm: Client) -> None:
    # Azurite's --oauth basic reads aud, iss, nbf, iat and exp (not the signature).
    secret = {"X-IDENTITY-HEADER": arm.endpoints["identity_header"]}
    body = _identity(arm, secret, resource="https://storage.azure.com", client_id="c1").json()
    claims = _claims(body["access_token"])

    assert claims["aud"] == "https://storage.azure.com"
    assert str(claims["iss"]).startswith("https://sts.windows.net/")
    assert claims["appid"] == "c1"
    assert isinstance(claims["nbf"], int) and isinstance(claims["iat"], int)
    assert claims["nbf"] <= claims["iat"] <= time.time()
    assert claims["exp"] == int(body["expires_on"])
    again = _identity(arm, secret, resource="https://storage.azure.com", client_id="c1").json()["access_token"]
    assert again != body["access_token"]


def test_identity_endpoint_refuses_bad_requests(arm: Client) -> None:
    secret = {"X-IDENTITY-HEADER": arm.endpoints["identity_header"]}

    assert _identity(arm, {}).status_code == 400
    assert _identity(arm, {"X-IDENTITY-HEADER": "wrong"}).status_code == 401
    assert _identity(arm, secret, **{"api-version": "2017-09-01"}).status_code == 400
    assert _identity(arm, secret, resource="").status_code == 400
    assert arm.stats()["token_issued"] == 1


def test_token_lifetime_is_configurable(arm: Client) -> None:
    arm.configure({"token_lifetime_seconds": 120})

    body = _identity(arm, {"X-IDENTITY-HEADER": arm.endpoints["identity_header"]}).json()

    assert int(body["expires_on"]) <= time.time() + 121


@pytest.fixture
def identity_env(arm: Client, monkeypatch: pytest.MonkeyPatch) -> Client:
    for name in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_CLIENT_SECRET", "AZURE_FEDERATED_TOKEN_FILE",
                 "AZURE_USERNAME", "MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT", "IMDS_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("IDENTITY_ENDPOINT", arm.endpoints["identity_endpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", arm.endpoints["identity_header"])
    return arm


def test_azure_identity_managed_identity_credential_gets_a_token_arm_accepts(identity_env: Client) -> None:
    with ManagedIdentityCredential() as credential:
        token = credential.get_token("https://management.azure.com/.default")

    assert token.expires_on > time.time() + 3000
    assert identity_env.get(ITEMS, token=token.token).status_code == 200


def test_azure_identity_user_assigned_client_id_is_passed_through(identity_env: Client) -> None:
    client_id = "99999999-8888-7777-6666-555555555555"
    with ManagedIdentityCredential(client_id=client_id) as credential:
        token = credential.get_token("https://management.azure.com/.default")

    assert identity_env.get(ITEMS, token=token.token).status_code == 200


def test_azure_identity_default_credential_gets_a_token_arm_accepts(identity_env: Client) -> None:
    credential = DefaultAzureCredential()
    try:
        token = credential.get_token("https://management.azure.com/.default")
    finally:
        credential.close()

    assert identity_env.get(ITEMS, token=token.token).status_code == 200
    assert identity_env.stats()["token_issued"] == 2
