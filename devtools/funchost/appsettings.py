"""App settings as the Functions host sees them: local.settings.json ``Values`` under the environment.

The host reads settings case-insensitively and lets a real environment variable win over
local.settings.json (that is how Core Tools behaves, and how tests override one setting).
``%NAME%`` in a binding property is replaced by the setting ``NAME``; an unknown name is an error,
as it is in Azure, where the function would fail to index.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from devtools.funchost.errors import ConfigError

__all__ = ["AppSettings", "apply_to_environ", "read_local_settings"]

_REFERENCE = re.compile(r"%([^%]+)%")


def read_json_object(path: Path) -> dict[str, Any]:
    """A JSON file whose top level is an object, or ConfigError saying what is wrong with it."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object")
    return document


def read_local_settings(path: Path) -> dict[str, str]:
    """The ``Values`` of a local.settings.json file."""
    document = read_json_object(path)
    if document.get("IsEncrypted") is True:
        raise ConfigError(f"{path}: IsEncrypted is true; decrypt it with 'func settings decrypt' first")
    values = document.get("Values", {})
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: Values must be an object of strings")
    bad = sorted(name for name, value in values.items() if not isinstance(value, str))
    if bad:
        # Core Tools refuses these too; silently str()-ing true into "True" would hide the mistake.
        raise ConfigError(f"{path}: Values must be strings; not so for {', '.join(bad)}")
    return {str(name): str(value) for name, value in values.items()}


def apply_to_environ(values: Mapping[str, str], environ: MutableMapping[str, str] | None = None) -> None:
    """Export settings to the process environment, where the function code reads them."""
    target = os.environ if environ is None else environ
    for name, value in values.items():
        target.setdefault(name, value)


class AppSettings:
    """A read-only, case-insensitive view of the app settings."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._exact = dict(values)
        self._folded = {name.lower(): value for name, value in values.items()}

    @classmethod
    def layered(cls, local_values: Mapping[str, str], environ: Mapping[str, str]) -> AppSettings:
        return cls({**local_values, **environ})

    def get(self, name: str) -> str | None:
        """The setting's value, or None when it is unset or empty."""
        value = self._exact.get(name)
        if value is None:
            value = self._folded.get(name.lower())
        return value if value else None

    def section(self, prefix: str) -> dict[str, str]:
        """Settings under ``prefix__`` (or ``prefix:``), keyed by the lower-cased rest of the name."""
        found: dict[str, str] = {}
        for separator in ("__", ":"):
            head = (prefix + separator).lower()
            for name, value in self._folded.items():
                if name.startswith(head) and value:
                    found.setdefault(name[len(head) :], value)
        return found

    def resolve(self, text: str, where: str) -> str:
        """``text`` with every ``%NAME%`` replaced by its setting."""

        def substitute(match: re.Match[str]) -> str:
            value = self.get(match.group(1))
            if value is None:
                raise ConfigError(f"{where}: '{match.group(0)}' does not resolve to a value (app setting not set)")
            return value

        return _REFERENCE.sub(substitute, text)

    def flag(self, name: str) -> bool:
        return (self.get(name) or "").strip().lower() in {"true", "1"}

    def positive_int(self, name: str) -> int | None:
        raw = self.get(name)
        if raw is None:
            return None
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"{name} must be a whole number, not {raw!r}") from None
        if value < 1:
            raise ConfigError(f"{name} must be at least 1, not {value}")
        return value
