"""shared.arm: Backup Protected Items - List, the call a batch lists its vault with."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from shared.armid import VaultRef
from shared.armtransport import CallScope
from shared.errors import ArmRejected, ArmThrottled, UntrustedUrl
from tests.fakes import ARM, FAKE_TOKEN, FakeTransport, Reply, load_example
from tests.unit.builders import OTHER_SUB, RG, SUB, VAULT, arm_client

EXAMPLE = load_example("BackupProtectedItems_List.json")["responses"]["200"]["body"]
VAULT_REF = VaultRef.of(SUB, RG, VAULT)
SCOPE = CallScope(SUB, "batch-1", f"{VAULT}/batch")
LIST = r"/backupProtectedItems\?"


def test_the_first_page_is_filtered_on_the_management_type() -> None:
    transport = FakeTransport().on("GET", LIST, Reply(200, EXAMPLE))

    page = arm_client(transport).list_protected_items(VAULT_REF, SCOPE, "backupManagementType eq 'AzureIaasVM'")

    [sent] = transport.sent
    parts = urlsplit(sent.url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{ARM}{VAULT_REF.path}/backupProtectedItems"
    assert parse_qs(parts.query) == {
        "api-version": ["2024-04-01"], "$filter": ["backupManagementType eq 'AzureIaasVM'"],
    }
    assert sent.headers["Authorization"] == f"Bearer {FAKE_TOKEN}"
    assert [item.friendly_name for item in page.items] == ["iaasvm-1"]


def test_without_a_filter_the_query_has_none() -> None:
    transport = FakeTransport().on("GET", LIST, Reply(200, {"value": []}))

    arm_client(transport).list_protected_items(VAULT_REF, SCOPE, None)

    assert parse_qs(urlsplit(transport.sent[0].url).query) == {"api-version": ["2024-04-01"]}


def test_the_next_link_is_followed_exactly_as_given() -> None:
    link = f"{ARM}/Subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/{VAULT}" \
           "/backupProtectedItems?api-version=2016-12-01&%24filter=x&%24skipToken=b2Zmc2V0OjUw"
    transport = FakeTransport().on("GET", LIST, Reply(200, {"value": [], "nextLink": "https://next"}))

    page = arm_client(transport).list_protected_items(VAULT_REF, SCOPE, "ignored", next_link=link)

    assert transport.sent[0].url == link
    assert page.next_link == "https://next"


@pytest.mark.parametrize(
    "link",
    [
        f"https://evil.example.com/subscriptions/{SUB}/backupProtectedItems?x=1",
        f"http://management.azure.com/subscriptions/{SUB}/backupProtectedItems",
        f"{ARM}/subscriptions/{OTHER_SUB}/backupProtectedItems",
        f"{ARM}/subscriptions/{SUB}/../{OTHER_SUB}/backupProtectedItems",
    ],
)
def test_a_next_link_that_is_not_trusted_gets_no_token(link: str) -> None:
    transport = FakeTransport()

    with pytest.raises(UntrustedUrl):
        arm_client(transport).list_protected_items(VAULT_REF, SCOPE, None, next_link=link)

    assert transport.sent == []


def test_throttling_and_refusals_are_typed() -> None:
    throttled = Reply(429, {"error": {"code": "SubscriptionRequestsThrottled", "message": "slow"}},
                      headers={"Retry-After": "17"})
    missing = Reply(404, {"error": {"code": "ResourceNotFound", "message": "no vault"}})
    transport = FakeTransport().on("GET", LIST, throttled, missing)
    client = arm_client(transport)

    with pytest.raises(ArmThrottled) as caught:
        client.list_protected_items(VAULT_REF, SCOPE, None)
    assert caught.value.retry_after == 17
    with pytest.raises(ArmRejected) as refused:
        client.list_protected_items(VAULT_REF, SCOPE, None)
    assert refused.value.info.code == "ResourceNotFound"
