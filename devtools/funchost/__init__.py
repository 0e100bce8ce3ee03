"""A local host for the queue- and HTTP-triggered functions of a classic (function.json) Python function app.

Azure Functions Core Tools cannot be installed everywhere; this runs an app's queue and HTTP
triggers the way the Functions host and Python worker do, driven only by host.json and each
function.json.
``python -m devtools.funchost --app-root .`` runs it; ``FunctionHost`` embeds it in tests.
"""

from __future__ import annotations

from devtools.funchost.errors import ConfigError, FunctionLoadError, HostError
from devtools.funchost.host import FunctionHost

__all__ = ["ConfigError", "FunctionHost", "FunctionLoadError", "HostError"]
