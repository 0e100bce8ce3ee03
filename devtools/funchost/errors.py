"""Why the local host refuses to start: the app is not something the Functions host would run.

::

    HostError               never raised itself
    ├── ConfigError         host.json, a function.json, local.settings.json or an app setting is wrong
    └── FunctionLoadError   a function's Python code does not match its function.json

Both are raised before anything touches storage, so a broken app fails at once with the reason,
instead of starting and then never invoking the function.
"""

from __future__ import annotations

__all__ = ["ConfigError", "FunctionLoadError", "HostError"]


class HostError(Exception):
    """Base of the errors that stop the host from starting; never raised itself."""


class ConfigError(HostError):
    """A configuration file or app setting is missing or malformed."""


class FunctionLoadError(HostError):
    """A function cannot be loaded, in the worker's words: 'cannot load the X function: …'."""

    def __init__(self, function_name: str, reason: str) -> None:
        super().__init__(f"cannot load the {function_name} function: {reason}")
        self.function_name = function_name
        self.reason = reason
