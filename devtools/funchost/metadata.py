"""Function discovery: every folder with a function.json, read and resolved like the host indexes it.

Queue- and HTTP-triggered functions can run here; a function with another trigger is reported
as unsupported and left out. ``%NAME%`` in binding properties is resolved against the app settings,
and queue names are lower-cased and validated as the queue extension does.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.funchost.appsettings import AppSettings, read_json_object
from devtools.funchost.errors import ConfigError

__all__ = [
    "HTTP", "HTTP_TRIGGER", "QUEUE", "QUEUE_TRIGGER", "Binding", "FunctionMetadata", "discover", "read_function",
]

logger = logging.getLogger(__name__)

QUEUE_TRIGGER = "queueTrigger"
QUEUE = "queue"
HTTP_TRIGGER = "httpTrigger"
HTTP = "http"
RETURN = "$return"
_QUEUE_NAME = re.compile(r"^(?=.{3,63}$)[a-z0-9](?:[a-z0-9]|-(?!-))*[a-z0-9]$")
# Properties that name the binding rather than configure it are never %-resolved.
_STRUCTURAL = frozenset({"name", "type", "direction"})


@dataclass(frozen=True)
class Binding:
    name: str
    type: str
    direction: str
    data_type: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_trigger(self) -> bool:
        return self.type.lower().endswith("trigger")

    @property
    def queue_name(self) -> str:
        return str(self.properties["queueName"])

    @property
    def connection(self) -> str:
        return str(self.properties.get("connection") or "")


@dataclass(frozen=True)
class FunctionMetadata:
    name: str
    directory: Path
    script_file: Path
    entry_point: str
    bindings: tuple[Binding, ...]

    @property
    def trigger(self) -> Binding:
        return next(binding for binding in self.bindings if binding.is_trigger)

    @property
    def outputs(self) -> tuple[Binding, ...]:
        return tuple(binding for binding in self.bindings if binding.direction == "out")

    @property
    def runnable(self) -> bool:
        """Whether this host can run its trigger: a queue or an HTTP trigger."""
        return self.trigger.type in {QUEUE_TRIGGER, HTTP_TRIGGER}

    @property
    def is_http(self) -> bool:
        return self.trigger.type == HTTP_TRIGGER


def discover(app_root: Path, settings: AppSettings, only: Iterable[str] | None = None) -> list[FunctionMetadata]:
    """The enabled functions of the app, optionally limited to the names in ``only``."""
    folders = {path.parent.name: path.parent for path in sorted(app_root.glob("*/function.json"))}
    wanted = set(folders) if only is None else set(only)
    unknown = sorted(wanted - set(folders))
    if unknown:
        raise ConfigError(f"no function folder named {', '.join(unknown)} in {app_root}")
    functions = []
    for name in sorted(wanted):
        document = read_json_object(folders[name] / "function.json")
        if document.get("disabled") is True or settings.flag(f"AzureWebJobs.{name}.Disabled"):
            logger.info("function %s is disabled; not loading it", name)
            continue
        functions.append(read_function(folders[name], document, settings))
    return functions


def read_function(directory: Path, document: Mapping[str, Any], settings: AppSettings) -> FunctionMetadata:
    name = directory.name
    raw_bindings = document.get("bindings")
    if not isinstance(raw_bindings, list) or not raw_bindings:
        raise ConfigError(f"{name}/function.json: bindings must be a non-empty list")
    bindings = tuple(_binding(name, raw, settings) for raw in raw_bindings)
    names = [binding.name.lower() for binding in bindings]
    duplicates = sorted({binding for binding in names if names.count(binding) > 1})
    if duplicates:
        raise ConfigError(f"{name}/function.json: binding names must be unique: {', '.join(duplicates)}")
    triggers = [binding for binding in bindings if binding.is_trigger]
    if len(triggers) != 1:
        raise ConfigError(f"{name}/function.json: exactly one trigger binding is required, found {len(triggers)}")
    script = directory / str(document.get("scriptFile") or "__init__.py")
    if script.suffix != ".py" or not script.is_file():
        raise ConfigError(f"{name}/function.json: scriptFile {script} is not a Python file that exists")
    entry_point = str(document.get("entryPoint") or "main")
    return FunctionMetadata(name, directory, script.resolve(), entry_point, bindings)


def _binding(function: str, raw: object, settings: AppSettings) -> Binding:
    where = f"{function}/function.json"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: each binding must be an object")
    missing = [key for key in ("name", "type", "direction") if not isinstance(raw.get(key), str)]
    if missing:
        raise ConfigError(f"{where}: a binding lacks {', '.join(missing)}")
    name, kind, direction = raw["name"], raw["type"], raw["direction"].lower()
    if direction not in {"in", "out"}:
        raise ConfigError(f"{where}: binding {name}: direction {direction!r} is not supported (in or out)")
    if name != RETURN and not name.isidentifier():
        raise ConfigError(f"{where}: binding name {name!r} is not a valid Python identifier")
    if name == RETURN and direction != "out":
        raise ConfigError(f'{where}: "$return" binding must have direction set to "out"')
    properties = {
        key: settings.resolve(value, f"{where} binding {name} {key}") if isinstance(value, str) else value
        for key, value in raw.items()
        if key not in _STRUCTURAL
    }
    if kind in {QUEUE, QUEUE_TRIGGER}:
        properties["queueName"] = _queue_name(
            properties.get("queueName"), f"{where} binding {name}", kind == QUEUE_TRIGGER
        )
    data_type = properties.get("dataType")
    return Binding(name, kind, direction, data_type if isinstance(data_type, str) else None, properties)


def _queue_name(raw: object, where: str, trigger: bool) -> str:
    if not isinstance(raw, str) or not raw:
        raise ConfigError(f"{where}: queueName is required")
    # The queue extension lower-cases the name before validating it ("coerce here to be nice").
    name = raw.lower()
    if not _QUEUE_NAME.match(name):
        raise ConfigError(
            f"{where}: {name!r} is not a valid queue name (3-63 characters: lower-case letters, digits, "
            "single hyphens; starting and ending with a letter or digit)"
        )
    if trigger and len(name) > 63 - len("-poison"):
        raise ConfigError(f"{where}: {name!r} is too long to have a poison queue ({name}-poison)")
    return name
