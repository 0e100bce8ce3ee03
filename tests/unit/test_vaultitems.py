"""shared.vaultitems: reading Backup Protected Items - List pages, the official example first."""

from __future__ import annotations

import copy
from typing import Any

from shared.vaultitems import ListedItem, read_items_page
from tests.fakes import load_example

EXAMPLE = load_example("BackupProtectedItems_List.json")
EXAMPLE_BODY: dict[str, Any] = EXAMPLE["responses"]["200"]["body"]
VAULT_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.RecoveryServices"
    "/vaults/v"
)


def entry(name: str, container: str, *, fabric: str | None = "Azure", **properties: Any) -> dict[str, Any]:
    fabric_part = f"/backupFabrics/{fabric}" if fabric else ""
    return {
        "id": f"{VAULT_ID}{fabric_part}/protectionContainers/{container}/protectedItems/{name}",
        "name": name,
        "properties": properties,
    }


def test_the_official_example_reads_into_its_item() -> None:
    page = read_items_page(EXAMPLE_BODY)

    # The example's id has no backupFabrics segment: the fabric is then Azure, as in the trigger's URI.
    assert page.items == (ListedItem(
        name="VM;iaasvmcontainer;iaasvm-rg;iaasvm-1",
        container="IaasVMContainer;iaasvmcontainer;iaasvm-rg;iaasvm-1",
        fabric="Azure",
        friendly_name="iaasvm-1",
        backup_management_type="AzureIaasVM",
        policy_name="testPolicy1",
    ),)
    assert page.next_link is None
    assert page.unreadable == 0


def test_the_next_link_is_kept_exactly_as_given() -> None:
    link = "https://management.azure.com/Subscriptions/x/backupProtectedItems?api-version=2016-12-01&$skipToken=a%3D"
    body = {**copy.deepcopy(EXAMPLE_BODY), "nextLink": link}

    assert read_items_page(body).next_link == link


def test_an_empty_next_link_ends_the_list() -> None:
    assert read_items_page({"value": [], "nextLink": ""}).next_link is None
    assert read_items_page({"value": [], "nextLink": 7}).next_link is None


def test_the_fabric_and_container_come_from_the_id_segments_whatever_their_case() -> None:
    raw = entry("AzureFileShare;share1", "StorageContainer;Storage;rg;acct", fabric="Other")
    raw["id"] = raw["id"].replace("backupFabrics", "BACKUPFABRICS")
    raw["id"] = raw["id"].replace("protectionContainers", "ProtectionContainers")

    [item] = read_items_page({"value": [raw]}).items

    assert (item.fabric, item.container) == ("Other", "StorageContainer;Storage;rg;acct")


def test_policy_name_wins_over_policy_id_and_no_policy_is_none() -> None:
    silver = f"{VAULT_ID}/backupPolicies/Silver"
    named = entry("VM;c;rg;a", "IaasVMContainer;c;rg;a", policyName="Gold", policyId=silver)
    by_id = entry("VM;c;rg;b", "IaasVMContainer;c;rg;b", policyId=f"{VAULT_ID}/backupPolicies/Silver")
    stopped = entry("VM;c;rg;c", "IaasVMContainer;c;rg;c", policyId="")

    items = read_items_page({"value": [named, by_id, stopped]}).items

    assert [item.policy_name for item in items] == ["Gold", "Silver", None]


def test_a_missing_friendly_name_is_the_last_part_of_the_item_name() -> None:
    [item] = read_items_page({"value": [entry("SQLDataBase;mssqlserver;sales", "VMAppContainer;Compute;rg;sql")]}).items

    assert item.friendly_name == "sales"


def test_entries_that_cannot_be_addressed_are_counted_not_read() -> None:
    no_container = {"id": f"{VAULT_ID}/protectedItems/VM;x", "name": "VM;x", "properties": {}}
    no_name = {"id": entry("VM;c;rg;a", "IaasVMContainer;c;rg;a")["id"], "properties": {}}
    body = {"value": [no_container, no_name, "not an object", entry("VM;c;rg;b", "IaasVMContainer;c;rg;b")]}

    page = read_items_page(body)

    assert [item.name for item in page.items] == ["VM;c;rg;b"]
    assert page.unreadable == 2


def test_a_page_without_value_is_empty() -> None:
    assert read_items_page({}).items == ()
