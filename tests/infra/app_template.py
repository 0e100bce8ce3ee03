"""What the tests compare: the app settings the template declares, and the settings the code reads.

Both sides are derived, never listed by hand: the template's settings come from its syntax tree
(``tests.infra.bicep``), the code's from every ``%SETTING%`` in any ``*/function.json`` and
every name ``shared/settings.py`` reads. A setting added to the code without the template
following fails the tests.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tests.infra.bicep import Instance, Template, load

__all__ = [
    "ANNOUNCED_SETTINGS",
    "INFRA",
    "OPTIONAL_OVERRIDES",
    "PLATFORM_SETTINGS",
    "ROOT",
    "app_settings",
    "deployed",
    "function_folders",
    "referenced_settings",
    "settings_read_by_code",
    "trigger_queue_settings",
]

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
MAIN = INFRA / "main.bicep"

# Read by the app, deliberately left unset by the template, each for a reason.
OPTIONAL_OVERRIDES: Mapping[str, str] = {
    "ARM_ENDPOINT": "follows from AZURE_CLOUD; set only to reach another ARM (the local emulator)",
    "ARM_SCOPE": "follows from AZURE_CLOUD, like ARM_ENDPOINT",
    "AzureWebJobsStorage": "the connection-string form: the deployed app is identity-based and holds no key",
    "AzureWebJobsStorage__accountName": "an alternative to the service URIs, which the template sets",
}

# Set by the template for the platform and the SDKs rather than read by shared/settings.py.
PLATFORM_SETTINGS: Mapping[str, str] = {
    "AZURE_CLIENT_ID": "DefaultAzureCredential's managed identity for the ARM calls",
    "APPLICATIONINSIGHTS_CONNECTION_STRING": "where the host sends telemetry",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": "telemetry by Entra ID: Application Insights refuses local auth",
    "AzureWebJobsStorage__credential": "the Functions host's identity-based storage connection",
    "AzureWebJobsStorage__blobServiceUri": "the Functions host keeps leases and keys in blobs",
}

# Named by DESIGN.md ("Next capabilities: contracts") with their defaults and set ahead of the
# code that will read them (the request ledger, daily limits, batches). Once shared/settings.py
# reads one, the entry here is redundant and can go.
ANNOUNCED_SETTINGS: Mapping[str, str] = {
    "AzureWebJobsStorage__tableServiceUri": "the ledger's table endpoint, identity-based",
    "BACKUP_LEDGER_TABLE": "the request ledger",
    "LEDGER_RETENTION_DAYS": "the request ledger",
    "DAILY_TRIGGER_LIMITS": "daily limits",
}

# Example deployment parameters: two vaults in different subscriptions and resource groups.
VAULT_IDS = (
    "/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-vaults-a"
    "/providers/Microsoft.RecoveryServices/vaults/vault-a",
    "/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-vaults-b"
    "/providers/Microsoft.RecoveryServices/vaults/vault-b",
)
PRODUCERS = ("aaaaaaaa-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000002")
CONSUMERS = ("cccccccc-0000-0000-0000-000000000001",)


def deployed(**params: Any) -> Template:
    """main.bicep as ``azd up`` would deploy it with these parameters (others at their defaults)."""
    given = {"environmentName": "dev", "location": "westeurope"} | params
    return load(MAIN, given)


def example() -> Template:
    """A deployment with two vaults, two producers and one consumer (the lists as azd passes them)."""
    return deployed(
        backupVaultIds=", ".join(VAULT_IDS), producerPrincipalIds=",".join(PRODUCERS),
        consumerPrincipalIds=",".join(CONSUMERS),
    )


def of_kind(template: Template, kind: str) -> list[Instance]:
    return [instance for instance in template.resources() if instance.kind == kind]


def function_app(template: Template) -> Instance:
    (app,) = of_kind(template, "Microsoft.Web/sites")
    return app


def app_settings(template: Template) -> dict[str, Any]:
    """The function app's settings by name, values as evaluated (``Ref`` where only Azure knows)."""
    listed = function_app(template).value("properties")["siteConfig"]["appSettings"]
    settings = {entry["name"]: entry["value"] for entry in listed}
    assert len(settings) == len(listed), "an app setting is declared twice"
    return settings


def function_folders() -> list[Path]:
    return sorted(path.parent for path in ROOT.glob("*/function.json"))


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)


def _bindings(folder: Path) -> list[dict[str, Any]]:
    return list(json.loads((folder / "function.json").read_text(encoding="utf-8"))["bindings"])


def referenced_settings() -> set[str]:
    """Every ``%SETTING%`` in any binding of any function."""
    names: set[str] = set()
    for folder in function_folders():
        for text in _strings(_bindings(folder)):
            names.update(re.findall(r"%([^%]+)%", text))
    return names


def trigger_queue_settings() -> set[str]:
    """The settings naming a queue some function is triggered by (those get a ``-poison`` queue)."""
    names: set[str] = set()
    for folder in function_folders():
        for binding in _bindings(folder):
            if binding.get("type") == "queueTrigger":
                names.update(re.findall(r"%([^%]+)%", str(binding.get("queueName", ""))))
    return names


def settings_read_by_code(source: Path = ROOT / "shared" / "settings.py") -> set[str]:
    """Names ``shared/settings.py`` reads: the first string argument of a read on the environment.

    A read is a call of a method on ``env`` / ``environ`` / ``os.environ`` (``env.text("X", …)``,
    ``environ.get("X")``) or a subscript of one; the tests also check this finds every name the
    running code asks for, so a new way of reading cannot slip past.
    """
    names: set[str] = set()
    readers = {"env", "environ", "os.environ", "self._environ", "environment"}
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        target: ast.expr | None = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args:
            target, argument = node.func.value, node.args[0]
        elif isinstance(node, ast.Subscript):
            target, argument = node.value, node.slice
        if target is None or ast.unparse(target) not in readers:
            continue
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            names.add(argument.value)
    return names
