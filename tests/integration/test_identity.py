"""Tokens: a token about to expire is renewed mid-run, and no ARM call goes out unauthorised.

msal treats a managed identity token with less than five minutes left as expired, so with the
emulator issuing 303 s tokens every call made more than 3 s after a token was issued fetches a
new one. The host is started after the lifetime is set: a running host would keep its hour-long
token from before.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import (
    APP_TIMING,
    FAST_POLLING,
    AppQueues,
    Suite,
    request_text,
    unique,
    vm_names,
)

pytestmark = pytest.mark.integration

TOKEN_LIFETIME_SECONDS = 303


def test_tokens_about_to_expire_are_renewed_and_every_call_is_authorised(suite: Suite) -> None:
    suite.admin.configure({"token_lifetime_seconds": TOKEN_LIFETIME_SECONDS})
    queues = AppQueues.with_prefix(unique("it-token"))
    requests = {unique(f"token-{n}"): vm_names("vault-it", f"token-{n}") for n in range(1, 5)}

    with suite.extra_host("token", queues, env={**APP_TIMING, **FAST_POLLING}):
        for correlation_id, names in requests.items():
            suite.send(request_text(names, correlation_id), queues)
        results = suite.results(queues).wait_for(requests, timeout=40)

    for result in results.values():
        suite.check_schema(result)
        assert result["status"] == "Succeeded", result
    stats = suite.admin.stats()
    log = suite.admin.requests()
    arm_calls = [entry for entry in log if entry["kind"] != "token"]
    issued = [entry for entry in log if entry["kind"] == "token" and entry["status"] == 200]
    assert stats["token_issued"] == len(issued) >= 2, stats
    assert stats["distinct_tokens"] >= 2, stats
    assert stats["unauthorized"] == 0
    assert all(entry["status"] != 401 and entry["token"] for entry in arm_calls)
    # A new token was fetched while the backups ran, not only at the start.
    first_arm_call = arm_calls[0]["seq"]
    assert any(entry["seq"] > first_arm_call for entry in issued)
    tokens_in_order = list(dict.fromkeys(entry["token"] for entry in arm_calls))
    assert len(tokens_in_order) == stats["distinct_tokens"]
