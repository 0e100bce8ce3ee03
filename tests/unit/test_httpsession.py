"""shared.httpsession: the same settings as requests.Session, with the proxy lookup done once per origin."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import requests
import requests.sessions

from shared.httpsession import POOL_SIZE, EnvironmentOnceSession, pooled_session, sdk_transport

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                   "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
ENVIRONMENTS: list[dict[str, str]] = [
    {},
    {"HTTPS_PROXY": "http://proxy.corp:3128"},
    {"HTTPS_PROXY": "http://proxy.corp:3128", "NO_PROXY": "127.0.0.1,localhost"},
    {"HTTP_PROXY": "http://proxy.corp:3128", "HTTPS_PROXY": "http://proxy.corp:3129", "NO_PROXY": ".windows.net"},
    {"ALL_PROXY": "socks5://proxy.corp:1080", "no_proxy": "management.azure.com"},
    {"REQUESTS_CA_BUNDLE": "/etc/ssl/emulator.pem"},
    {"CURL_CA_BUNDLE": "/etc/ssl/curl.pem", "https_proxy": "http://lower.corp:8080"},
]
URLS = [
    "https://management.azure.com/subscriptions/s/providers?api-version=2024-04-01",
    "http://127.0.0.1:10001/devstoreaccount1/backup-requests/messages",
    "https://acct.table.core.windows.net/backupledger(PartitionKey='p',RowKey='r')",
]
PROXY_ARGUMENTS: list[dict[str, str] | None] = [None, {}, {"no_proxy": "acct.table.core.windows.net"},
                                                {"https": "http://explicit.corp:1"}]
VERIFY: list[Any] = [True, None, False, "/tmp/bundle.pem"]


def use_environment(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)


def merged(session: requests.Session, url: str, proxies: dict[str, str] | None, verify: Any) -> Any:
    return session.merge_environment_settings(url, None if proxies is None else dict(proxies), None, verify, None)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_settings_are_those_requests_would_merge(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> None:
    use_environment(monkeypatch, environment)
    ours, theirs = EnvironmentOnceSession(), requests.Session()

    for url, proxies, verify in itertools.product(URLS, PROXY_ARGUMENTS, VERIFY):
        for _ in range(2):  # the second time from what was remembered
            assert merged(ours, url, proxies, verify) == merged(theirs, url, proxies, verify), (url, proxies, verify)


def test_a_session_that_does_not_trust_the_environment_ignores_it(monkeypatch: pytest.MonkeyPatch) -> None:
    use_environment(monkeypatch, ENVIRONMENTS[3])
    ours, theirs = EnvironmentOnceSession(), requests.Session()
    ours.trust_env = theirs.trust_env = False

    for url in URLS:
        assert merged(ours, url, {}, True) == merged(theirs, url, {}, True)


def test_the_environment_is_looked_up_once_per_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    use_environment(monkeypatch, ENVIRONMENTS[2])
    lookups: list[str] = []
    real = requests.sessions.get_environ_proxies

    def counted(url: str, no_proxy: str | None = None) -> dict[str, str]:
        lookups.append(url)
        return real(url, no_proxy=no_proxy)

    monkeypatch.setattr("shared.httpsession.get_environ_proxies", counted)
    session = EnvironmentOnceSession()

    for n in range(50):
        merged(session, f"https://acct.table.core.windows.net/backupledger(PartitionKey='{n}',RowKey='r')", {}, True)
        merged(session, f"http://127.0.0.1:10001/devstoreaccount1/q{n}/messages", {}, True)

    assert len(lookups) == 2


def test_a_pooled_session_keeps_enough_connections_and_never_retries() -> None:
    session = pooled_session()

    for scheme in ("https://", "http://"):
        adapter = session.get_adapter(f"{scheme}example.invalid/")
        assert isinstance(adapter, requests.adapters.HTTPAdapter)
        assert adapter.poolmanager.connection_pool_kw["maxsize"] == POOL_SIZE
        assert adapter.max_retries.total == 0


def test_an_sdk_transport_carries_the_timeouts_its_client_no_longer_applies() -> None:
    transport = sdk_transport(connection_timeout=3.0, read_timeout=10.0)

    assert (transport.connection_config.timeout, transport.connection_config.read_timeout) == (3.0, 10.0)
    assert isinstance(transport.session, EnvironmentOnceSession)
