"""The published result schema and the results the functions really write agree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.results import ResultStatus
from tests.functions import harness
from tests.functions.harness import (
    POST_BACKUP,
    VM_NAMES,
    App,
    check_result_schema,
    cloud_error,
    require_result_schema,
    script_success,
)

QUEUE_MESSAGE_LIMIT = 64 * 1024


def test_result_schema_is_published_and_accepts_a_real_result() -> None:
    schema = require_result_schema()
    app = App()
    script_success(app.transport)

    result = app.run(json.dumps(VM_NAMES))  # run() validates it

    assert set(schema.get("required", ())) <= set(result)


def test_every_status_the_app_writes_is_published() -> None:
    schema = require_result_schema()

    assert set(schema["properties"]["status"]["enum"]) == {status.value for status in ResultStatus}


def test_a_missing_schema_fails_the_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(harness, "RESULT_SCHEMA", tmp_path / "schemas" / "backup-result.schema.json")
    monkeypatch.setattr(harness, "ROOT", tmp_path)

    with pytest.raises(AssertionError, match="is missing"):
        check_result_schema({"status": "Succeeded"})
    with pytest.raises(AssertionError, match="is missing"):
        require_result_schema()


def test_schema_check_bites() -> None:
    require_result_schema()
    app = App()
    script_success(app.transport)
    result = app.run(json.dumps(VM_NAMES))
    result["status"] = "Done"
    del result["jobId"]

    with pytest.raises(AssertionError, match="status"):
        check_result_schema(result)


def test_a_result_failed_before_any_trigger_matches_the_schema() -> None:
    require_result_schema()
    app = App()
    app.transport.on("POST", POST_BACKUP, cloud_error(409, "UserErrorRequestDisallowedByPolicy", "denied"))
    result = app.run(json.dumps(VM_NAMES))

    check_result_schema(result)


def test_rejected_result_of_a_huge_message_still_fits_a_queue_message() -> None:
    app = App()
    body = json.dumps({**VM_NAMES, "note": "x" * (63 * 1024)})
    assert len(body) < QUEUE_MESSAGE_LIMIT

    app.run(body)
    result_text = app.invocations[0].result

    assert result_text is not None
    assert len(result_text.encode("utf-8")) <= QUEUE_MESSAGE_LIMIT
    result = json.loads(result_text)
    assert result["status"] == "Rejected"
    assert result["rawMessageTruncated"] is True
    assert body.startswith(result["rawMessage"])
