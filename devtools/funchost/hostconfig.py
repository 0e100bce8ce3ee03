"""host.json as the Functions host reads it: queue trigger options and the function timeout.

Defaults are the host's own (azure-sdk-for-net ``QueuesOptions``), not the JSON schema's
(schemastore says maxPollingInterval defaults to 2 s; the extension uses one minute).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from devtools.funchost.errors import ConfigError

__all__ = ["HostConfig", "MessageEncoding", "QueueOptions", "load_host_config", "parse_timespan"]

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


def load_host_config(app_root: Path, processor_count: int | None = None) -> HostConfig:
    path = app_root / "host.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} does not exist: is {app_root} a function app?") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(document, dict) or document.get("version") != "2.0":
        raise ConfigError(f'{path}: "version": "2.0" is required (the v1 host is not supported)')
    extensions = _object(document.get("extensions", {}), "extensions")
    queues = _queue_options(_object(extensions.get("queues", {}), "extensions.queues"), processor_count)
    return HostConfig(
        queues=queues,
        function_timeout=_function_timeout(document.get("functionTimeout")),
        functions=_function_list(document.get("functions")),
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
