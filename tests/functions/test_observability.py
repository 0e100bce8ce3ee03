"""The README's Application Insights queries (KQL) match the log lines the functions really write.

The host's default capture sends each Python log record's message to ``traces.message``; these
tests run a request through both functions, then apply the README's own filters (its
``startswith_cs`` prefix and its ``@"…"`` regexes, which mean the same in RE2 and Python) to the
captured messages. A change of the log format that would blind the queries fails here.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest

from tests.functions.harness import JOB_GET, OPERATION_STATUS, POST_BACKUP, VM_NAMES, App, accepted, job, operation

README = Path(__file__).resolve().parents[2] / "README.md"
CORRELATION_ID = "kql-1"
REQUEST = json.dumps({**VM_NAMES, "correlationId": CORRELATION_ID})
ITEM = f"{VM_NAMES['vaultName']}/{VM_NAMES['protectedItemName']}"  # the vault, then the item


def _queries() -> list[str]:
    section = README.read_text(encoding="utf-8").split("## Observability", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```kusto\n(.*?)```", section, re.DOTALL)


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name.startswith("shared")]


def _failed_backups(messages: list[str]) -> list[dict[str, str]]:
    """The README's "yesterday's failed backups" query, time filter aside."""
    query = _queries()[1]
    regexes = re.findall(r'@"((?:[^"\\]|\\.)*)"', query)
    selector, *extractors = regexes
    names = re.findall(r"(\w+) = extract\(", query)
    assert len(names) == len(extractors)
    rows = []
    for message in messages:
        if re.search(selector, message):
            rows.append({name: (m.group(1) if (m := re.search(pattern, message)) else "")
                         for name, pattern in zip(names, extractors, strict=True)})
    return rows


def test_the_readme_has_both_queries() -> None:
    by_id, failed = _queries()
    assert 'startswith_cs strcat("[", correlationId, "] ")' in by_id
    assert "finished (Failed|TimedOut)" in failed


def test_every_line_about_a_request_starts_with_its_correlation_id(caplog: pytest.LogCaptureFixture) -> None:
    app = App()
    app.transport.on("POST", POST_BACKUP, accepted())
    app.transport.on("GET", OPERATION_STATUS, operation("InProgress"), operation("Succeeded"))
    app.transport.on("GET", JOB_GET, job("InProgress"), job("Completed"))
    with caplog.at_level(logging.INFO):
        result = app.run(REQUEST)

    assert result["status"] == "Succeeded"
    messages = _messages(caplog)
    assert len(messages) >= 4  # accepted, next looks, finished
    assert all(message.startswith(f"[{CORRELATION_ID}] ") for message in messages), messages
    assert any("finished Succeeded" in message for message in messages)
    assert _failed_backups(messages) == []


def test_a_failed_backup_is_listed_with_its_code_and_item(caplog: pytest.LogCaptureFixture) -> None:
    app = App()
    app.transport.on("POST", POST_BACKUP, accepted())
    error = {"code": "UserErrorVmNotInDesirableState", "message": "VM is not in a state that allows backups."}
    app.transport.on("GET", OPERATION_STATUS, operation("Failed", error=error))
    with caplog.at_level(logging.INFO):
        result = app.run(REQUEST)

    assert result["status"] == "Failed"
    assert _failed_backups(_messages(caplog)) == [
        {"correlationId": CORRELATION_ID, "status": "Failed", "code": "UserErrorVmNotInDesirableState",
         "item": ITEM},
    ]
