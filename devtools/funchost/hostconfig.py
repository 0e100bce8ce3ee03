"""host.json as the Functions host reads it: queue trigger options, the HTTP route prefix, the function timeout.

Defaults are the host's own (azure-sdk-for-net ``QueuesOptions``), not the JSON schema's
(schemastore says maxPollingInterval defaults to 2 s; the extension uses one minute).

App settings named ``AzureFunctionsJobHost__<path>`` override the host.json value at ``<path>``
(``__`` or ``:`` between the parts, names matched case-insensitively), as the Functions host
lets them: e.g. ``AzureFunctionsJobHost__extensions__queues__maxPollingInterval=00:00:00.5``.
Only this local host reads them (the app never does); the integration tests use them to poll
idle queues faster and to retry failed messages at once, without editing host.json.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from devtools.funchost.errors import ConfigError

__all__ = [
    "OVERRIDE_PREFIX",
    "HostConfig",
    "MessageEncoding",
    "QueueOptions",
    "apply_overrides",
    "load_host_config",
    "parse_timespan",
]

OVERRIDE_PREFIX = "AzureFunctionsJobHost"
"""App settings ``AzureFunctionsJobHost__a__b`` override host.json's ``a.b``."""
# host.json's own spelling of the names an override may reach (overrides arrive lower-cased).
_CANONICAL = {
    name.lower(): name
    for name in (
        "version", "functionTimeout", "functions", "extensions", "queues", "batchSize", "newBatchThreshold",
        "maxDequeueCount", "visibilityTimeout", "maxPollingInterval", "messageEncoding", "http", "routePrefix",
    )
}
_OVERRIDE_SEPARATOR = re.compile(r"__|:")
_WHOLE_NUMBER = re.compile(r"^-?\d+$")

# .NET TimeSpan text: [d.]hh:mm[:ss[.fffffff]]
_TIMESPAN = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?$")
_SEVEN_DAYS = 7 * 24 * 3600.0
# No functionTimeout in host.json: the host's default outside the Consumption plan.
_DEFAULT_FUNCTION_TIMEOUT = 30 * 60.0


class MessageEncoding(Enum):
    BASE64 = "base64"
    NONE = "none"


@dataclass(frozen=True)
class QueueOptions:
    batch_size: int = 16
    new_batch_threshold: int = 8
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    """Seconds a failed message stays invisible before it is tried again."""
    max_polling_interval: float = 60.0
    message_encoding: MessageEncoding = MessageEncoding.BASE64


@dataclass(frozen=True)
class HostConfig:
    queues: QueueOptions
    function_timeout: float | None
    """Seconds; None when host.json says -1 (no limit)."""
    functions: tuple[str, ...] | None
    """host.json's ``functions`` list: the only functions to load, when given."""
    http_route_prefix: str = "api"
    """``extensions.http.routePrefix``: what every HTTP route starts with (empty: nothing)."""


def parse_timespan(text: str, where: str) -> float:
    """Seconds in a .NET TimeSpan string such as ``00:00:30`` or ``1.00:00:00``."""
    match = _TIMESPAN.match(text.strip())
    if match is None:
        raise ConfigError(f"{where}: {text!r} is not a time span like 00:00:30")
    days, hours, minutes, seconds, fraction = match.groups()
    if int(hours) > 23 or int(minutes) > 59 or int(seconds or 0) > 59:
        raise ConfigError(f"{where}: {text!r} is out of range")
    total = int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + int(seconds or 0)
    return total + (float("0." + fraction) if fraction else 0.0)


def load_host_config(
    app_root: Path, processor_count: int | None = None, overrides: Mapping[str, str] | None = None
) -> HostConfig:
    """host.json of ``app_root``; ``overrides`` maps ``a__b`` paths (the prefix taken off) to values."""
    path = app_root / "host.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist: is {app_root} a function app?") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if isinstance(document, dict) and overrides:
        document = apply_overrides(document, overrides)
    if not isinstance(document, dict) or document.get("version") != "2.0":
        raise ConfigError(f'{path}: "version": "2.0" is required (the v1 host is not supported)')
    extensions = _object(document.get("extensions", {}), "extensions")
    queues = _queue_options(_object(extensions.get("queues", {}), "extensions.queues"), processor_count)
    prefix = _object(extensions.get("http", {}), "extensions.http").get("routePrefix", "api")
    if not isinstance(prefix, str):
        raise ConfigError(f"extensions.http.routePrefix must be a string, not {prefix!r}")
    return HostConfig(
        queues=queues,
        function_timeout=_function_timeout(document.get("functionTimeout")),
        functions=_function_list(document.get("functions")),
        http_route_prefix=prefix.strip("/"),
    )


def _queue_options(raw: dict[str, Any], processor_count: int | None) -> QueueOptions:
    defaults = QueueOptions()
    batch_size = _integer(raw, "batchSize", defaults.batch_size, low=1, high=32)
    # The host scales the default threshold with the machine: batchSize / 2 per processor.
    processors = processor_count or os.cpu_count() or 1
    threshold = _integer(raw, "newBatchThreshold", batch_size // 2 * processors, low=0, high=None)
    encoding_text = raw.get("messageEncoding", defaults.message_encoding.value)
    try:
        encoding = MessageEncoding(str(encoding_text).lower())
    except ValueError:
        raise ConfigError(f"extensions.queues.messageEncoding must be base64 or none, not {encoding_text!r}") from None
    visibility = _timespan(raw, "visibilityTimeout", defaults.visibility_timeout)
    if visibility > _SEVEN_DAYS:
        raise ConfigError("extensions.queues.visibilityTimeout must not exceed 7 days")
    polling = _timespan(raw, "maxPollingInterval", defaults.max_polling_interval)
    if polling < 0.1:
        raise ConfigError("extensions.queues.maxPollingInterval must be at least 00:00:00.1")
    return QueueOptions(
        batch_size=batch_size,
        new_batch_threshold=threshold,
        max_dequeue_count=_integer(raw, "maxDequeueCount", defaults.max_dequeue_count, low=1, high=None),
        visibility_timeout=visibility,
        max_polling_interval=polling,
        message_encoding=encoding,
    )


def apply_overrides(document: dict[str, Any], overrides: Mapping[str, str]) -> dict[str, Any]:
    """A copy of ``document`` with each ``a__b`` (or ``a:b``) path set to its value.

    Settings are strings; a whole number becomes a number, as the host's configuration binder
    converts it. The usual validation then applies to the result.
    """
    merged = copy.deepcopy(document)
    for path, value in sorted(overrides.items()):
        parts = [part for part in _OVERRIDE_SEPARATOR.split(path) if part]
        if not parts:
            continue
        node = merged
        for part in parts[:-1]:
            key = _existing_key(node, part)
            child = node.setdefault(key, {})
            if not isinstance(child, dict):
                raise ConfigError(f"app setting {OVERRIDE_PREFIX}__{path}: host.json {key} is not an object")
            node = child
        node[_existing_key(node, parts[-1])] = int(value) if _WHOLE_NUMBER.match(value) else value
    return merged


def _existing_key(node: dict[str, Any], name: str) -> str:
    for key in node:
        if key.lower() == name.lower():
            return str(key)
    return _CANONICAL.get(name.lower(), name)


def _function_timeout(raw: object) -> float | None:
    if raw is None:
        return _DEFAULT_FUNCTION_TIMEOUT
    if raw in ("-1", -1):
        return None
    if not isinstance(raw, str):
        raise ConfigError(f"functionTimeout must be a time span string, not {raw!r}")
    seconds = parse_timespan(raw, "functionTimeout")
    if seconds <= 0:
        raise ConfigError("functionTimeout must be positive, or -1 for no limit")
    return seconds


def _function_list(raw: object) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(name, str) for name in raw):
        raise ConfigError("host.json functions must be a list of function names")
    return tuple(raw)


def _object(raw: object, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ConfigError(f"host.json {where} must be an object")
    return raw


def _integer(raw: dict[str, Any], key: str, default: int, *, low: int, high: int | None) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"extensions.queues.{key} must be a whole number, not {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"extensions.queues.{key} must be {bounds}, not {value}")
    return value


def _timespan(raw: dict[str, Any], key: str, default: float) -> float:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise ConfigError(f"extensions.queues.{key} must be a time span string like 00:00:30, not {value!r}")
    return parse_timespan(value, f"extensions.queues.{key}")
