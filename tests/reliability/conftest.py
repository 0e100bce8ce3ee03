"""Scale of the fault, load and bad-input suite, and the report each scenario leaves behind.

The suite runs in CI at a reduced size. The full size (chaos 1,000 requests over three hosts with
three kills, load 10,000 requests, bad input 10,000 generated cases each) is chosen by
``RELIABILITY_SCALE=full``, or by ``--reliability-full`` when this folder (or a file in it) is
named on the command line:
pytest only reads options from conftest files it loads before parsing the command line, which
a sub-folder's conftest is not when pytest collects from ``testpaths``::

    RELIABILITY_SCALE=full .venv/bin/python -m pytest tests/reliability -s
    .venv/bin/python -m pytest tests/reliability --reliability-full -s

Each scenario prints what it tried and what it counted (also in pytest's terminal summary, with
or without ``-s``) and writes the same as JSON to ``bench-results/reliability-<scenario>.json``.
"""

from __future__ import annotations

import os

import pytest

from tests.reliability.support import SCALES, Scale, reported

SCALE_VARIABLE = "RELIABILITY_SCALE"


@pytest.fixture(scope="session")
def scale(request: pytest.FixtureRequest) -> Scale:
    name = os.environ.get(SCALE_VARIABLE, "ci").strip().lower() or "ci"
    if request.config.getoption("--reliability-full", default=False):
        name = "full"
    if name not in SCALES:
        raise pytest.UsageError(f"{SCALE_VARIABLE} must be one of {', '.join(SCALES)}, not {name!r}")
    return SCALES[name]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not reported:
        return
    terminalreporter.section("reliability")
    for line in reported:
        terminalreporter.write_line(line)
