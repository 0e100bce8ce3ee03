"""Root conftest: the app root on sys.path (as the Functions host puts it) and the suite-wide options."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_addoption(parser: pytest.Parser) -> None:
    # Here rather than in tests/reliability: pytest reads options only from the root conftest.
    parser.addoption(
        "--reliability-full", action="store_true", default=False,
        help="run tests/reliability at full size (same as RELIABILITY_SCALE=full)",
    )
