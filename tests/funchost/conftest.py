"""Fixtures for the local host's tests: one real Azurite per session, throwaway apps in tmp_path.

Integration tests talk to Azurite over sockets. Without Azurite installed they are skipped with
the reason, unless ``REQUIRE_INTEGRATION=1`` (CI), where a missing Azurite is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.queue import QueueServiceClient

from devtools.azurite import Azurite
from tests.funchost.support import REPO_ROOT, App

AZURITE_QUEUE = REPO_ROOT / "devtools" / "node_modules" / ".bin" / "azurite-queue"


@pytest.fixture(autouse=True)
def _isolated_imports() -> Iterator[None]:
    """Forget each throwaway app's modules and sys.path entry, which the host put there."""
    path, modules = list(sys.path), set(sys.modules)
    yield
    sys.path[:] = path
    for name in set(sys.modules) - modules:
        location = getattr(sys.modules[name], "__file__", None) or ""
        if location.startswith(tempfile.gettempdir()):
            del sys.modules[name]


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    if not AZURITE_QUEUE.exists():
        reason = f"Azurite is not installed ({AZURITE_QUEUE} is missing): run devtools/bootstrap.sh"
        if os.environ.get("REQUIRE_INTEGRATION") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    # Per process: two test runs at once (a developer's and CI's) must not share a data folder.
    log = REPO_ROOT / ".local" / "logs" / "pytest-funchost-azurite.log"
    server = Azurite(f"pytest-funchost-{os.getpid()}", fresh=True, log_path=log)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.data_dir, ignore_errors=True)


@pytest.fixture
def service(azurite: Azurite) -> QueueServiceClient:
    return QueueServiceClient.from_connection_string(azurite.connection_string)


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., App]:
    def make(
        functions: dict[str, tuple[dict[str, Any], str]], *, function_timeout: str | None = None, **queues: Any
    ) -> App:
        root = tmp_path / "app"
        root.mkdir(exist_ok=True)
        options = {"maxPollingInterval": "00:00:01", **queues}
        host: dict[str, Any] = {"version": "2.0", "extensions": {"queues": options}}
        if function_timeout is not None:
            host["functionTimeout"] = function_timeout
        (root / "host.json").write_text(json.dumps(host), encoding="utf-8")
        for name, (function_json, source) in functions.items():
            folder = root / name
            folder.mkdir()
            (folder / "function.json").write_text(json.dumps(function_json), encoding="utf-8")
            (folder / "__init__.py").write_text(source, encoding="utf-8")
        return App(root, f"t{uuid.uuid4().hex[:12]}")

    return make
