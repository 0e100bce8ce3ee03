"""shared.armid: name rules, one encoded segment per name, protectedItemId parsing, followable URLs."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from shared.armid import ProtectedItemRef, encode_segment, ensure_followable, validate_name
from shared.errors import RequestRejected, UntrustedUrl
from tests.fakes import ARM, headers_of, load_example, rebase
from tests.unit.builders import ITEMS, OTHER_SUB, RG, SUB, VAULT, item_id

# --- name rules ----------------------------------------------------------------------------

VALID_NAMES: list[tuple[str, str]] = [
    ("subscriptionId", SUB),
    ("subscriptionId", "9A3E0C55-AAAA-bbbb-CCCC-444444444444"),
    ("resourceGroupName", "rg"),
    ("resourceGroupName", "r"),
    ("resourceGroupName", "My-RG_01.(prod)"),
    ("resourceGroupName", "groupe-de-ressources-été"),
    ("resourceGroupName", "a" * 90),
    ("vaultName", "ab"),
    ("vaultName", "Vault-01"),
    ("vaultName", "v" + "1" * 49),
    ("fabricName", "Azure"),
    ("fabricName", "azure"),
    ("fabricName", "Fabric_1.a-b"),
    ("fabricName", "a" * 100),
    ("containerName", "IaasVMContainer;iaasvmcontainerv2;rg;vm"),
    ("containerName", "StorageContainer;Storage;rg;account"),
    ("containerName", "c" * 260),
    ("protectedItemName", "VM;iaasvmcontainerv2;rg;vm"),
    ("protectedItemName", "VM;iaasvmcontainerv2;rg;vm (1)"),
    ("protectedItemName", "AzureFileShare;share'name"),
    ("protectedItemName", "SQLDataBase;mssqlserver;db=1,2"),
    ("protectedItemName", "SAPHanaDatabase;h22;h22$!~"),
    ("protectedItemName", "VM;...;vm"),
    ("protectedItemName", "VM;rg;vm.."),
    ("protectedItemName", "VM;rg;vm-é-ü"),
]


@pytest.mark.parametrize(("field", "value"), VALID_NAMES)
def test_valid_names_are_kept_as_given(field: str, value: str) -> None:
    assert validate_name(field, value) == value


INVALID_NAMES: list[tuple[str, object]] = [
    *[(field, bad) for field in ("subscriptionId", "resourceGroupName", "vaultName", "fabricName",
                                 "containerName", "protectedItemName")
      for bad in ("", "   ", None, 42, ["x"], {"a": 1}, " leading", "trailing ", "tab\t", "newline\n")],
    ("subscriptionId", "not-a-guid"),
    ("subscriptionId", "{00000000-0000-0000-0000-000000000000}"),
    ("subscriptionId", "00000000000000000000000000000000"),
    ("subscriptionId", "00000000-0000-0000-0000-00000000000g"),
    ("subscriptionId", "../00000000-0000-0000-0000-000000000000"),
    ("resourceGroupName", "a" * 91),
    ("resourceGroupName", "rg."),
    ("resourceGroupName", "."),
    ("resourceGroupName", ".."),
    ("resourceGroupName", "rg/x"),
    ("resourceGroupName", "rg x"),
    ("resourceGroupName", "rg;x"),
    ("resourceGroupName", "rg?x"),
    ("resourceGroupName", "rg#x"),
    ("resourceGroupName", "rg%2Fx"),
    ("vaultName", "a"),
    ("vaultName", "1vault"),
    ("vaultName", "-vault"),
    ("vaultName", "vault_1"),
    ("vaultName", "vault.1"),
    ("vaultName", "vault;1"),
    ("vaultName", "v" * 51),
    ("vaultName", "vault/x"),
    ("fabricName", ".Azure"),
    ("fabricName", "Az/ure"),
    ("fabricName", "Az ure"),
    ("fabricName", "Az;ure"),
    ("fabricName", ".."),
    ("fabricName", "a" * 101),
    ("containerName", "c" * 261),
    ("containerName", "."),
    ("containerName", ".."),
    ("containerName", "IaasVMContainer;..;vm"),
    ("containerName", "a;."),
    ("protectedItemName", ".;VM"),
    *[("protectedItemName", f"VM;rg;a{char}b") for char in '/\\?#%"<>|*&:@+'],
    *[("containerName", f"c;{char}") for char in ("\x00", "\x01", "\x1f", "\x7f", "\r")],
]


@pytest.mark.parametrize(("field", "value"), INVALID_NAMES)
def test_invalid_names_are_rejected_naming_the_field(field: str, value: object) -> None:
    with pytest.raises(RequestRejected) as caught:
        validate_name(field, value)

    assert caught.value.field_name == field
    assert caught.value.reason
    assert caught.value.info.code == "InvalidRequest"
    assert caught.value.info.target == field
    assert caught.value.info.message.startswith(f"{field}: ")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("VM;rg;a/b", "'/'"),
        ("VM;rg;a%2Fb", "'%'"),
        ("..", "'.' or '..'"),
        ("x" * 261, "at most 260"),
        (" VM", "white space"),
        ("", "non-empty"),
    ],
)
def test_item_name_rejection_says_why(value: str, reason: str) -> None:
    with pytest.raises(RequestRejected) as caught:
        validate_name("protectedItemName", value)

    assert reason in caught.value.reason


@pytest.mark.parametrize("field", ["containerName", "protectedItemName"])
@pytest.mark.parametrize("value", ["VM;rg;vm\ud800x", "\udfff", "VM;\udc80"])
def test_names_that_cannot_be_encoded_are_rejected(field: str, value: str) -> None:
    with pytest.raises(RequestRejected) as caught:
        validate_name(field, value)

    assert caught.value.field_name == field
    assert "surrogate" in caught.value.reason


# --- encoding ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        ("VM;iaasvmcontainerv2;rg;vm", "VM;iaasvmcontainerv2;rg;vm"),
        ("vm (1)", "vm%20%281%29"),
        ("vm'1", "vm%271"),
        ("db=1,2", "db%3D1%2C2"),
        ("h22$!~", "h22%24%21~"),
        ("a_b-c.d~e", "a_b-c.d~e"),
        ("été", "%C3%A9t%C3%A9"),
        ("a/b", "a%2Fb"),
        ("a?b", "a%3Fb"),
        ("a#b", "a%23b"),
        ("a%2Fb", "a%252Fb"),
        ("a\\b", "a%5Cb"),
        ("a b+c", "a%20b%2Bc"),
        ("a&b=c", "a%26b%3Dc"),
    ],
)
def test_encode_segment(name: str, encoded: str) -> None:
    assert encode_segment(name) == encoded


NAME_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=80)


@hypothesis_settings(max_examples=200)
@given(NAME_TEXT)
def test_encode_segment_never_yields_a_separator_and_round_trips(name: str) -> None:
    encoded = encode_segment(name)

    assert not {"/", "?", "#"} & set(encoded)
    assert unquote(encoded) == name


@hypothesis_settings(max_examples=200)
@given(st.sampled_from(["containerName", "protectedItemName"]), NAME_TEXT)
def test_an_accepted_name_is_exactly_one_segment_that_cannot_climb(field: str, name: str) -> None:
    try:
        validate_name(field, name)
    except RequestRejected:
        return
    encoded = encode_segment(name)

    assert "/" not in encoded
    assert encoded not in {".", ".."}
    assert unquote(encoded) == name


# --- ProtectedItemRef ----------------------------------------------------------------------

VM_CONTAINER, VM_ITEM = ITEMS["vm"]


def vm_ref() -> ProtectedItemRef:
    return ProtectedItemRef.of(SUB, RG, VAULT, "Azure", VM_CONTAINER, VM_ITEM)


def test_of_builds_paths_ids_and_labels() -> None:
    ref = vm_ref()
    vault_path = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/{VAULT}"

    assert ref.vault_id == vault_path
    assert ref.vault_path == vault_path
    assert ref.id == f"{vault_path}/backupFabrics/Azure/protectionContainers/{VM_CONTAINER}/protectedItems/{VM_ITEM}"
    assert ref.item_path == ref.id  # nothing to encode in these names; ';' is kept
    assert ref.label == f"{VAULT}/{VM_ITEM}"
    assert ref.friendly_name == "v1win2012r"
    assert ref.to_json() == {
        "subscriptionId": SUB, "resourceGroupName": RG, "vaultName": VAULT, "fabricName": "Azure",
        "containerName": VM_CONTAINER, "protectedItemName": VM_ITEM,
    }


def test_subscription_is_lower_cased() -> None:
    ref = ProtectedItemRef.of(SUB.upper().replace("0", "A"), RG, VAULT, "Azure", VM_CONTAINER, VM_ITEM)
    assert ref.subscription_id == SUB.replace("0", "a")


def test_each_name_becomes_one_encoded_segment() -> None:
    ref = ProtectedItemRef.of(SUB, "rg(1)", VAULT, "Azure", "IaasVMContainer;v2;rg;vm (1)", "VM;v2;rg;vm (1)")
    segments = ref.item_path.split("/")

    assert len(segments) == 15
    assert segments[4] == "rg%281%29"
    assert segments[12] == "IaasVMContainer;v2;rg;vm%20%281%29"
    assert segments[14] == "VM;v2;rg;vm%20%281%29"
    assert ref.id.endswith("/protectedItems/VM;v2;rg;vm (1)")  # ids are shown unencoded


@pytest.mark.parametrize(
    ("item", "friendly"),
    [("VM;iaasvmcontainerv2;rg;vm01", "vm01"), ("AzureFileShare;share01", "share01"),
     ("SQLDataBase;mssqlserver;sales", "sales"), ("plainname", "plainname")],
)
def test_friendly_name_is_the_last_part(item: str, friendly: str) -> None:
    ref = ProtectedItemRef.of(SUB, RG, VAULT, "Azure", VM_CONTAINER, item)
    assert ref.friendly_name == friendly


@pytest.mark.parametrize("kind", sorted(ITEMS))
def test_parse_round_trips_every_workload(kind: str) -> None:
    ref = ProtectedItemRef.parse(item_id(kind))
    container, item = ITEMS[kind]

    assert (ref.subscription_id, ref.resource_group, ref.vault, ref.fabric, ref.container, ref.item) == (
        SUB, RG, VAULT, "Azure", container, item,
    )
    assert ref.id == item_id(kind)
    assert ProtectedItemRef.parse(ref.id) == ref


@pytest.mark.parametrize(
    "variant",
    [
        item_id("vm") + "/",
        "  " + item_id("vm") + "\n",
        item_id("vm").replace("/subscriptions/", "/Subscriptions/"),
        item_id("vm").replace("/resourceGroups/", "/resourcegroups/").replace("/vaults/", "/VAULTS/"),
        item_id("vm").replace("Microsoft.RecoveryServices", "microsoft.recoveryservices"),
        item_id("vm").replace("/backupFabrics/", "/BackupFabrics/").replace("/protectionContainers/",
                                                                           "/PROTECTIONCONTAINERS/"),
        item_id("vm").replace("/protectedItems/", "/protecteditems/"),
        item_id("vm", sub=SUB.upper()),
    ],
)
def test_parse_accepts_case_variants_of_the_literals_and_a_trailing_slash(variant: str) -> None:
    ref = ProtectedItemRef.parse(variant)

    assert ref == vm_ref()


WRONG_SHAPES = [
    "",
    "not an id",
    item_id("vm").lstrip("/"),
    item_id("vm") + "/backup",
    item_id("vm") + "//",
    item_id("vm").replace("/protectedItems/", "/items/"),
    item_id("vm").replace("Microsoft.RecoveryServices", "Microsoft.Compute"),
    item_id("vm").replace("Microsoft.RecoveryServices", "MicrosoftXRecoveryServices"),
    item_id("vm").replace("/backupFabrics/Azure", "/backupFabrics/"),
    item_id("vm").replace("/resourceGroups/", "//resourceGroups/"),
    item_id("vm").rsplit("/protectedItems/", 1)[0],
    f"https://management.azure.com{item_id('vm')}",
]


@pytest.mark.parametrize("value", WRONG_SHAPES)
def test_parse_rejects_wrong_shapes(value: str) -> None:
    with pytest.raises(RequestRejected) as caught:
        ProtectedItemRef.parse(value)

    assert caught.value.field_name == "protectedItemId"
    assert "must look like" in caught.value.reason


@pytest.mark.parametrize("value", [None, 42, ["x"], {"id": "x"}, b"/subscriptions/x"])
def test_parse_rejects_non_strings(value: Any) -> None:
    with pytest.raises(RequestRejected) as caught:
        ProtectedItemRef.parse(value)

    assert caught.value.field_name == "protectedItemId"


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (item_id("vm", sub="not-a-guid"), "subscriptionId"),
        (item_id("vm").replace(f"/vaults/{VAULT}", "/vaults/1vault"), "vaultName"),
        (item_id("vm").replace(f"/resourceGroups/{RG}", "/resourceGroups/rg."), "resourceGroupName"),
        (item_id("vm").replace("/backupFabrics/Azure", "/backupFabrics/.."), "fabricName"),
        (item_id("vm").replace(VM_CONTAINER, ".."), "containerName"),
        (item_id("vm").replace(f"/protectedItems/{VM_ITEM}", "/protectedItems/VM;a%2Fb"), "protectedItemName"),
        (item_id("vm") + "?api-version=2024-04-01", "protectedItemName"),
    ],
)
def test_parse_checks_each_name_by_its_rule(value: str, field: str) -> None:
    with pytest.raises(RequestRejected) as caught:
        ProtectedItemRef.parse(value)

    assert caught.value.field_name == field


# --- ensure_followable ---------------------------------------------------------------------

TRIGGER = load_example("TriggerBackup_Post.json")
EXAMPLE_URLS = [headers_of(TRIGGER, "202")["Location"], headers_of(TRIGGER, "202")["Azure-AsyncOperation"]]
EMULATOR = "https://localhost:8443"
VALID_URL = f"{ARM}/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.RecoveryServices/vaults/{VAULT}"


@pytest.mark.parametrize("url", EXAMPLE_URLS)
def test_the_official_example_urls_are_followable(url: str) -> None:
    assert "/Subscriptions/" in url  # the service answers with a capital S
    assert ensure_followable(url, arm_endpoint=ARM, subscription_id=SUB) == url


@pytest.mark.parametrize("url", EXAMPLE_URLS)
def test_the_official_example_urls_are_followable_once_rebased(url: str) -> None:
    rebased = rebase(url, EMULATOR)

    assert ensure_followable(rebased, arm_endpoint=EMULATOR, subscription_id=SUB) == rebased
    with pytest.raises(UntrustedUrl):
        ensure_followable(url, arm_endpoint=EMULATOR, subscription_id=SUB)


@pytest.mark.parametrize(
    "url",
    [
        VALID_URL,
        VALID_URL.replace("https://", "HTTPS://"),
        VALID_URL.replace("management.azure.com", "MANAGEMENT.Azure.com"),
        VALID_URL.replace("management.azure.com", "management.azure.com:443"),
        VALID_URL.replace(SUB, SUB.upper()),
        f"{ARM}/subscriptions/{SUB}",
        f"{VALID_URL}/backupJobs?api-version=2024-04-01&$filter=operation%20eq%20%27Backup%27",
        f"{VALID_URL}/backupJobs/a.b..c",
        f"{VALID_URL}#fragment",
    ],
)
def test_followable_urls(url: str) -> None:
    assert ensure_followable(url, arm_endpoint=ARM, subscription_id=SUB) == url


def test_the_configured_port_is_part_of_the_origin() -> None:
    url = rebase(VALID_URL, EMULATOR)

    assert ensure_followable(url, arm_endpoint=EMULATOR, subscription_id=SUB) == url
    for other in ("https://localhost:9443", "https://localhost", "https://127.0.0.1:8443"):
        with pytest.raises(UntrustedUrl):
            ensure_followable(rebase(VALID_URL, other), arm_endpoint=EMULATOR, subscription_id=SUB)


UNTRUSTED = [
    VALID_URL.replace("https://", "http://"),
    VALID_URL.replace("https://", "ftp://"),
    VALID_URL.replace("https://", "//"),
    VALID_URL.replace("https://management.azure.com", ""),
    VALID_URL.replace("management.azure.com", "evil.example"),
    VALID_URL.replace("management.azure.com", "management.azure.com.evil.example"),
    VALID_URL.replace("management.azure.com", "evilmanagement.azure.com"),
    VALID_URL.replace("management.azure.com", "management.azure.com:8443"),
    VALID_URL.replace("management.azure.com", "management.azure.com:notaport"),
    VALID_URL.replace("management.azure.com", "user@management.azure.com"),
    VALID_URL.replace("management.azure.com", "user:secret@management.azure.com"),
    VALID_URL.replace("management.azure.com", "management.azure.com@evil.example"),
    VALID_URL.replace("management.azure.com", "management.azure.com\\@evil.example"),
    VALID_URL.replace(SUB, OTHER_SUB),
    VALID_URL.replace(f"/subscriptions/{SUB}", f"/subscriptions/{SUB}0"),
    f"{ARM}/providers/Microsoft.RecoveryServices/operations",
    f"{ARM}/",
    ARM,
    f"{ARM}/tenants/{SUB}/x",
    f"{ARM}/x/subscriptions/{SUB}",
    f"{ARM}//subscriptions/{SUB}",
    f"{ARM}/subscriptions/{SUB}/../{OTHER_SUB}/x",
    f"{ARM}/subscriptions/{SUB}/resourceGroups/../../{OTHER_SUB}",
    f"{ARM}/subscriptions/{SUB}/./resourceGroups/x",
    f"{ARM}/subscriptions/{SUB}/%2e%2e/{OTHER_SUB}",
    f"{ARM}/subscriptions/{SUB}/%2E%2E/{OTHER_SUB}",
    f"{ARM}/subscriptions/{SUB}/.%2e/{OTHER_SUB}",
    f"{ARM}/subscriptions/{SUB}/%2e/x",
    f"{ARM}/subscriptions/{SUB}/x/..",
]


@pytest.mark.parametrize("url", UNTRUSTED)
def test_untrusted_urls_are_refused(url: str) -> None:
    with pytest.raises(UntrustedUrl) as caught:
        ensure_followable(url, arm_endpoint=ARM, subscription_id=SUB)

    assert caught.value.info.code == "UntrustedFollowUpUrl"
    assert "refused" in caught.value.info.message


def test_port_zero_is_not_the_default_port() -> None:
    with pytest.raises(UntrustedUrl):
        ensure_followable(VALID_URL.replace("management.azure.com", "management.azure.com:0"), arm_endpoint=ARM,
                          subscription_id=SUB)


@pytest.mark.parametrize("url", [None, "", 42, ["https://management.azure.com"], b"https://management.azure.com"])
def test_missing_or_non_string_urls_are_refused(url: object) -> None:
    with pytest.raises(UntrustedUrl) as caught:
        ensure_followable(url, arm_endpoint=ARM, subscription_id=SUB)

    assert caught.value.info.code == "UntrustedFollowUpUrl"


def test_refusal_message_is_bounded() -> None:
    with pytest.raises(UntrustedUrl) as caught:
        ensure_followable("http://evil.example/" + "x" * 5000, arm_endpoint=ARM, subscription_id=SUB)

    assert len(caught.value.info.message) < 500


@pytest.mark.parametrize(
    "url",
    [
        f"{ARM}/subscriptions/{SUB}/..%2F..%2Fsubscriptions%2F{OTHER_SUB}/x",
        f"{ARM}/subscriptions/{SUB}/x%2F..%2F..%2F{OTHER_SUB}",
        f"{ARM}/subscriptions/{SUB}/..%5C..%5C{OTHER_SUB}",
        f"{ARM}/subscriptions/{SUB}/..\\..\\{OTHER_SUB}",
        f"{ARM}/subscriptions/{SUB}/backupJobs/a%2Fb",
        f"{ARM}/subscriptions/{SUB}%2F..%2F{OTHER_SUB}/x",
    ],
)
def test_encoded_separators_cannot_hide_dot_segments(url: str) -> None:
    with pytest.raises(UntrustedUrl) as caught:
        ensure_followable(url, arm_endpoint=ARM, subscription_id=SUB)

    assert caught.value.info.code == "UntrustedFollowUpUrl"


@pytest.mark.parametrize("endpoint", ["https://management.azure.com:99999", "https://user@management.azure.com"])
def test_an_unreadable_origin_never_matches(endpoint: str) -> None:
    with pytest.raises(UntrustedUrl):
        ensure_followable(f"https://x@evil.example/subscriptions/{SUB}/x", arm_endpoint=endpoint, subscription_id=SUB)
