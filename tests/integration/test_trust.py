"""Trust: the app talks to ARM only over https it can verify, and never sends a token anywhere else.

The emulator's certificate comes from a CA made at its start; the stack hands it to the host as
``REQUESTS_CA_BUNDLE``. Without it the TLS handshake fails before any request (or token) is
sent. An http ``ARM_ENDPOINT`` is refused by the app's settings: every invocation fails before a
token is even fetched, and the message ends in the poison queue, not lost.
"""

from __future__ import annotations

import re

import certifi
import pytest

from tests.integration.conftest import (
    APP_TIMING,
    FAST_POLLING,
    RETRY_AT_ONCE,
    AppQueues,
    Suite,
    receive_all,
    request_text,
    unique,
    vm_names,
)
from tests.integration.test_poison import MAX_DEQUEUE_COUNT, wait_for_messages

pytestmark = pytest.mark.integration

ARM_KINDS = {"trigger", "operation_status", "operation_results", "job_get", "job_list", "items_list", "backup_status",
             "vm_get", "unknown"}


def test_with_the_emulators_ca_trusted_the_app_works_over_https(suite: Suite) -> None:
    environment = suite.stack.host_environment()
    assert environment["ARM_ENDPOINT"].startswith("https://")
    assert environment["REQUESTS_CA_BUNDLE"] == suite.stack.endpoints.ca_bundle
    correlation_id = unique("trusted")

    suite.send(request_text(vm_names("vault-it", "trust"), correlation_id))
    result = suite.results().one(correlation_id)

    assert result["status"] == "Succeeded", result
    assert suite.admin.stats()["distinct_tokens"] == 1


def test_without_the_emulators_ca_no_request_and_no_token_reaches_arm(suite: Suite) -> None:
    queues = AppQueues.with_prefix(unique("it-untrusted"))
    correlation_id = unique("untrusted")
    settings = {
        **APP_TIMING,
        **FAST_POLLING,
        "RETRY_MAX_ATTEMPTS": "2",
        "REQUESTS_CA_BUNDLE": certifi.where(),  # the public CAs only
        "CURL_CA_BUNDLE": None,
    }
    with suite.extra_host("untrusted", queues, env=settings):
        suite.send(request_text(vm_names("vault-it", "trust"), correlation_id), queues)
        result = suite.results(queues).one(correlation_id, timeout=30)

    suite.check_schema(result)
    assert result["status"] == "Failed", result
    assert result["error"]["code"] == "ArmConnectionFailed"
    assert "SSLError" in result["error"]["message"]
    stats = suite.admin.stats()
    assert stats["distinct_tokens"] == 0
    assert [entry for entry in suite.admin.requests() if entry["kind"] in ARM_KINDS] == []


def test_an_http_arm_endpoint_is_refused_before_any_token_is_fetched(suite: Suite) -> None:
    queues = AppQueues.with_prefix(unique("it-http"))
    plain_http = re.sub(r"^https://", "http://", suite.stack.endpoints.arm_endpoint)
    settings = {**APP_TIMING, **FAST_POLLING, **RETRY_AT_ONCE, "ARM_ENDPOINT": plain_http}
    text = request_text(vm_names("vault-it", "http-endpoint"), unique("http"))

    with suite.extra_host("http", queues, env=settings) as host:
        suite.send(text, queues)
        parked = wait_for_messages(suite, f"{queues.requests}-poison")
        log = host.log_path.read_text(encoding="utf-8")

    assert parked == [text]
    assert log.count("SettingsError: ARM_ENDPOINT must be https://host[:port]") == MAX_DEQUEUE_COUNT
    assert receive_all(suite.queue(queues.results)) == []
    assert suite.admin.requests() == []  # neither the identity endpoint nor ARM was called
