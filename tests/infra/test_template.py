"""infra/*.bicep read from pycep-parser's syntax tree: settings, keys, roles, names, versions.

No Bicep compiler can run offline; these tests evaluate the template as far as it can be without
Azure (see tests.infra.bicep) and check what a deployment would get. The settings the app needs
are derived from the code (tests.infra.app_template), so the template must follow the code.
"""

from __future__ import annotations

import json
import re
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest

from shared.settings import Settings
from tests.fakes import RecordingEnvironment
from tests.infra.app_template import (
    ANNOUNCED_SETTINGS,
    CONSUMERS,
    INFRA,
    OPTIONAL_OVERRIDES,
    PLATFORM_SETTINGS,
    PRODUCERS,
    ROOT,
    VAULT_IDS,
    app_settings,
    deployed,
    example,
    function_app,
    function_folders,
    of_kind,
    referenced_settings,
    settings_read_by_code,
    trigger_queue_settings,
)
from tests.infra.bicep import Concat, Instance, Ref, concrete, parsed

ROLES = {
    "Backup Operator": "00c29273-979b-4161-815c-10b084fb9324",
    "Storage Blob Data Owner": "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
    "Storage Queue Data Contributor": "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
    "Storage Table Data Contributor": "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
    "Monitoring Metrics Publisher": "3913510d-42f4-4e42-8a64-420c390055eb",
    "Storage Queue Data Message Sender": "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
    "Storage Queue Data Message Processor": "8a0f0c08-91a1-4084-bc3d-661d67233fed",
}
IDENTITY = ("app.bicep", "identity")


def _placeholder(ref: Ref) -> str:
    if ref.path[-2:] == ("primaryEndpoints", "queue"):
        return "https://stbackupexample.queue.core.windows.net/"
    return f"placeholder-{ref.symbol}-{'-'.join(ref.path)}"


def _settings_values() -> dict[str, str]:
    return {name: concrete(value, _placeholder) for name, value in app_settings(deployed()).items()}


# -- the settings --------------------------------------------------------------------------------


def test_the_settings_scan_finds_every_name_the_running_code_asks_for() -> None:
    for storage in ({"AzureWebJobsStorage": "UseDevelopmentStorage=true"},
                    {"AzureWebJobsStorage__queueServiceUri": "https://a.queue.core.windows.net"},
                    {"AzureWebJobsStorage__accountName": "a"}):
        environment = RecordingEnvironment(storage)
        Settings.from_environment(environment)
        assert environment.asked <= settings_read_by_code(), environment.asked - settings_read_by_code()
    assert referenced_settings() >= {"BACKUP_REQUESTS_QUEUE", "BACKUP_STATUS_QUEUE", "BACKUP_RESULTS_QUEUE"}


def test_every_setting_the_code_reads_or_a_function_json_references_is_set() -> None:
    needed = (settings_read_by_code() | referenced_settings()) - OPTIONAL_OVERRIDES.keys()
    missing = needed - app_settings(deployed()).keys()
    assert not missing, f"the template does not set {sorted(missing)} (infra/app.bicep, var appSettings)"


def test_each_optional_override_is_read_by_the_code_and_left_unset() -> None:
    read = settings_read_by_code()
    settings = app_settings(deployed())
    for name, reason in OPTIONAL_OVERRIDES.items():
        assert name in read, f"{name} is no longer read by the app; drop it from OPTIONAL_OVERRIDES ({reason})"
        assert name not in settings, f"{name} is set by the template, yet documented as optional: {reason}"


def test_the_template_sets_nothing_the_app_does_not_read() -> None:
    unread = (app_settings(deployed()).keys() - settings_read_by_code() - referenced_settings()
              - PLATFORM_SETTINGS.keys() - ANNOUNCED_SETTINGS.keys())
    assert not unread, f"{sorted(unread)} are set but read by nothing; a typo, or a setting that was renamed?"


def test_the_settings_are_the_apps_defaults() -> None:
    values = _settings_values()
    from_template = Settings.from_environment(values)
    storage_only = {name: values[name] for name in ("AzureWebJobsStorage__queueServiceUri",
                                                     "AzureWebJobsStorage__tableServiceUri",
                                                     "AzureWebJobsStorage__clientId")}
    defaults = Settings.from_environment(storage_only)
    differ = [field.name for field in fields(Settings)
              if getattr(from_template, field.name) != getattr(defaults, field.name)]
    assert not differ, f"the template's values differ from the app's defaults in {differ}"


def test_parameters_reach_their_settings() -> None:
    settings = app_settings(deployed(allowedSubscriptions="sub-a,sub-b", allowedVaults="rg/vault-a",
                                     dailyTriggerLimits="VM=9"))
    assert settings["ALLOWED_SUBSCRIPTIONS"] == "sub-a,sub-b"
    assert settings["ALLOWED_VAULTS"] == "rg/vault-a"
    assert settings["DAILY_TRIGGER_LIMITS"] == "VM=9"


def test_storage_is_identity_based_through_the_identity_holding_the_storage_roles() -> None:
    template = example()
    settings = app_settings(template)
    assert settings["AzureWebJobsStorage__credential"] == "managedidentity"
    assert settings["AzureWebJobsStorage__clientId"] == Ref(*IDENTITY, ("properties", "clientId"))
    assert settings["AZURE_CLIENT_ID"] == settings["AzureWebJobsStorage__clientId"]
    for service in ("blob", "queue", "table"):
        assert settings[f"AzureWebJobsStorage__{service}ServiceUri"] == Ref(
            "storage.bicep", "storage", ("properties", "primaryEndpoints", service))
    holders = {(grant.role, grant.scope): grant.principal for grant in _grants(template)}
    for role in ("Storage Blob Data Owner", "Storage Queue Data Contributor", "Storage Table Data Contributor"):
        assert holders[(ROLES[role], "storage.bicep:storage")] == Ref(*IDENTITY, ("properties", "principalId"))
    app = function_app(template).value("identity")
    assert app["type"] == "UserAssigned"
    assert [concrete(key, str) for key in app["userAssignedIdentities"]] == [str(Ref(*IDENTITY, ("id",)))]


def test_application_insights_takes_the_identity_and_no_key() -> None:
    template = deployed()
    settings = app_settings(template)
    assert settings["APPLICATIONINSIGHTS_AUTHENTICATION_STRING"] == Concat(
        ("ClientId=", Ref(*IDENTITY, ("properties", "clientId")), ";Authorization=AAD"))
    (insights,) = of_kind(template, "Microsoft.Insights/components")
    assert insights.value("properties")["DisableLocalAuth"] is True


# -- no keys -------------------------------------------------------------------------------------

_KEY_TEXT = re.compile(r"listkeys|listaccountsas|listservicesas|listconnectionstrings|accountkey|sharedaccess"
                       r"|primarykey|secondarykey|\.keys\[", re.IGNORECASE)


def _calls(node: Any) -> list[str]:
    found: list[str] = []
    if isinstance(node, dict):
        function = node.get("function")
        if isinstance(function, dict):
            found.append(str(function.get("type")))
        for value in node.values():
            found += _calls(value)
    elif isinstance(node, list):
        for value in node:
            found += _calls(value)
    return found


def test_no_key_or_connection_string_with_a_key_anywhere() -> None:
    for path in sorted(INFRA.glob("*.bicep")):
        text = path.read_text(encoding="utf-8")
        assert not _KEY_TEXT.search(text), f"{path.name}: {_KEY_TEXT.search(text)}"
        calls = _calls(parsed(path))
        assert not [call for call in calls if call.startswith("list")], f"{path.name} calls a list* function"
    settings = app_settings(example())
    assert "AzureWebJobsStorage" not in settings
    # The Application Insights connection string names the resource; with local auth disabled it
    # authorises nothing. Every other value must not be a connection string at all.
    for name, value in settings.items():
        if name != "APPLICATIONINSIGHTS_CONNECTION_STRING":
            assert "=" not in concrete(value, str).replace("ClientId=", "").replace("Authorization=", ""), name


def test_storage_refuses_shared_keys() -> None:
    (account,) = of_kind(deployed(), "Microsoft.Storage/storageAccounts")
    properties = account.value("properties")
    assert properties["allowSharedKeyAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["allowBlobPublicAccess"] is False


# -- role assignments ----------------------------------------------------------------------------


class _Grant:
    def __init__(self, assignment: Instance) -> None:
        properties = assignment.value("properties")
        definition = properties["roleDefinitionId"]
        assert isinstance(definition, str), definition
        assert definition.startswith("/subscriptions/{subscription}/providers/Microsoft.Authorization/roleDefinitions/")
        self.role = definition.rsplit("/", 1)[1]
        self.principal = properties["principalId"]
        scope = assignment.value("scope")
        assert isinstance(scope, Instance), f"{assignment} has no resource scope"
        self.scope = f"{scope.template.path.name}:{scope.symbol}"
        self.target = scope
        self.assignment = assignment

    def key(self) -> tuple[str, str, str]:
        return self.role, self.scope, str(self.principal)


def _grants(template: Any) -> list[_Grant]:
    return [_Grant(instance) for instance in of_kind(template, "Microsoft.Authorization/roleAssignments")]


def test_role_assignments_are_exactly_the_designed_ones() -> None:
    identity = str(Ref(*IDENTITY, ("properties", "principalId")))
    expected = [
        (ROLES["Storage Blob Data Owner"], "storage.bicep:storage", identity),
        (ROLES["Storage Queue Data Contributor"], "storage.bicep:storage", identity),
        (ROLES["Storage Table Data Contributor"], "storage.bicep:storage", identity),
        (ROLES["Monitoring Metrics Publisher"], "monitoring.bicep:appInsights", identity),
        *((ROLES["Backup Operator"], "vault-access.bicep:vault", identity) for _ in VAULT_IDS),
        *((ROLES["Storage Queue Data Message Sender"], "storage.bicep:requestsQueue", p) for p in PRODUCERS),
        *((ROLES["Storage Queue Data Message Processor"], "storage.bicep:resultsQueue", c) for c in CONSUMERS),
    ]
    grants = _grants(example())
    assert sorted(grant.key() for grant in grants) == sorted(expected)
    assert len({str(grant.assignment.name) for grant in grants if grant.scope != "vault-access.bicep:vault"}) == \
        len(grants) - len(VAULT_IDS), "two role assignments share a name"


def test_backup_operator_is_granted_on_each_vault_in_its_own_group_and_subscription() -> None:
    template = example()
    modules = [module for module in template.modules() if module.symbol == "vaultAccess"]
    placed = []
    for module in modules:
        scope = module.value("scope")
        (vault,) = [r for r in module.child().resources() if r.kind == "Microsoft.RecoveryServices/vaults"]
        assert vault.existing, "the vault is the producer's: referenced, never created"
        placed.append(f"/subscriptions/{scope['subscription']}/resourceGroups/{scope['resourceGroup']}"
                      f"/providers/Microsoft.RecoveryServices/vaults/{vault.name}")
    assert sorted(placed) == sorted(VAULT_IDS)
    assert [module for module in deployed().modules() if module.symbol == "vaultAccess"] == []


def test_without_vaults_the_identity_holds_only_its_storage_and_telemetry_roles() -> None:
    identity = Ref(*IDENTITY, ("properties", "principalId"))
    roles = sorted(grant.role for grant in _grants(deployed()) if grant.principal == identity)
    assert roles == sorted(ROLES[name] for name in ("Storage Blob Data Owner", "Storage Queue Data Contributor",
                                                    "Storage Table Data Contributor", "Monitoring Metrics Publisher"))


# -- names ---------------------------------------------------------------------------------------


def _names(template: Any, kind: str) -> set[Any]:
    return {instance.name for instance in of_kind(template, kind)}


def test_queue_and_table_names_equal_the_settings() -> None:
    template = deployed()
    settings = app_settings(template)
    queues = _names(template, "Microsoft.Storage/storageAccounts/queueServices/queues")
    tables = _names(template, "Microsoft.Storage/storageAccounts/tableServices/tables")
    queue_settings = {name for name in referenced_settings() | settings_read_by_code() if name.endswith("_QUEUE")}
    for name in queue_settings:
        assert settings[name] in queues, f"{name}={settings[name]!r} names no queue the template creates"
    for name in trigger_queue_settings():
        assert f"{settings[name]}-poison" in queues, f"no poison queue for {name}"
    assert settings["BACKUP_LEDGER_TABLE"] in tables
    assert queues == {settings[name] for name in queue_settings} | {
        f"{settings[name]}-poison" for name in trigger_queue_settings()}


def test_every_function_folder_binds_only_to_settings_the_template_sets() -> None:
    settings = app_settings(deployed())
    assert function_folders(), "no function folders found"
    for folder in function_folders():
        text = (folder / "function.json").read_text(encoding="utf-8")
        for name in re.findall(r"%([^%]+)%", text):
            assert name in settings, f"{folder.name}/function.json references %{name}%"


# -- shape ---------------------------------------------------------------------------------------


def test_every_resource_has_a_pinned_api_version_and_modules_are_local() -> None:
    for path in sorted(INFRA.glob("*.bicep")):
        tree = parsed(path)
        for symbol, resource in tree["resources"].items():
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", resource["api_version"]), f"{path.name}:{symbol}"
        for symbol, module in tree.get("modules", {}).items():
            assert module["type"] == "local", f"{path.name}:{symbol} is a registry module"
            assert (path.parent / module["detail"]["path"]).is_file(), f"{path.name}:{symbol}"


def test_a_flex_consumption_linux_python_311_app() -> None:
    template = deployed()
    (plan,) = of_kind(template, "Microsoft.Web/serverfarms")
    assert plan.value("sku") == {"tier": "FlexConsumption", "name": "FC1"}
    assert plan.value("properties")["reserved"] is True
    app = function_app(template)
    assert app.value("kind") == "functionapp,linux"
    config = app.value("properties")["functionAppConfig"]
    assert config["runtime"] == {"name": "python", "version": "3.11"}
    deployment = config["deployment"]["storage"]
    (container,) = of_kind(template, "Microsoft.Storage/storageAccounts/blobServices/containers")
    assert deployment["value"] == Concat((Ref("storage.bicep", "storage", ("properties", "primaryEndpoints", "blob")),
                                          container.name))
    assert deployment["authentication"] == {"type": "UserAssignedIdentity",
                                            "userAssignedIdentityResourceId": Ref(*IDENTITY, ("id",))}
    # Flex Consumption refuses these as app settings: the runtime comes from functionAppConfig.
    assert not {"FUNCTIONS_WORKER_RUNTIME", "FUNCTIONS_EXTENSION_VERSION"} & app_settings(template).keys()
    assert app.value("properties")["httpsOnly"] is True


def test_azd_finds_the_template_and_the_app() -> None:
    text = (ROOT / "azure.yaml").read_text(encoding="utf-8")
    assert re.search(r"^infra:\n(  .*\n)*  path: infra\n", text, re.MULTILINE)
    service = re.search(r"^services:\n  (\w+):\n((    .*\n)*)", text, re.MULTILINE)
    assert service is not None
    assert "host: function" in service.group(2) and "language: python" in service.group(2)
    assert function_app(deployed()).value("tags")["azd-service-name"] == service.group(1)


def test_the_parameters_file_gives_every_required_parameter_and_names_only_declared_ones() -> None:
    parameters = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    declared = parsed(INFRA / "main.bicep")["parameters"]
    assert set(parameters) <= set(declared)
    required = {name for name, parameter in declared.items() if parameter.get("default") is None}
    assert required <= set(parameters)


def test_the_readme_names_every_azd_variable_the_parameters_read() -> None:
    text = (INFRA / "main.parameters.json").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for variable in re.findall(r"\$\{(\w+)", text):
        if variable not in {"AZURE_ENV_NAME", "AZURE_LOCATION"}:  # azd asks for these itself
            assert f"`{variable}`" in readme or f"{variable}=" in readme, f"{variable} is not in the README"


@pytest.mark.parametrize("path", sorted(INFRA.glob("*.bicep")), ids=lambda path: Path(path).name)
def test_each_template_parses(path: Path) -> None:
    tree = parsed(path)
    assert tree["resources"] or tree.get("modules")
