"""The host as a process under ``LocalStack``: SIGTERM drains, SIGKILL loses nothing, Azurite restarts.

Also ``queuectl`` against Azurite. The throwaway app's function waits on a gate file when the
message says so, which lets the test hold an invocation open while it signals the host.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from azure.storage.queue import QueueClient

from devtools.azurite import Azurite, connection_string
from devtools.queuectl import main as queuectl
from devtools.queuectl import message_count, summarize
from devtools.stack import LocalStack
from tests.funchost.support import App, collect, queue_function, wait_for

pytestmark = pytest.mark.integration

GATED_BY_FILE = """
import os
import pathlib
import time
import azure.functions as func

def main(msg: func.QueueMessage, out: func.Out[str]) -> None:
    body = msg.get_body().decode()
    gates = pathlib.Path(os.environ["GATE_DIR"])
    if body.startswith("gated-"):
        (gates / f"{body}.started").touch()
        deadline = time.monotonic() + 30
        while not (gates / f"{body}.open").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    out.set(f"{msg.dequeue_count}:{body}")
"""


def test_host_process_drains_on_sigterm_recovers_from_sigkill_and_survives_azurite_restart(
    make_app: Callable[..., App], azurite: Azurite, tmp_path: Path
) -> None:
    app = make_app({"gated": (queue_function(), GATED_BY_FILE)}, messageEncoding="none")
    gates = tmp_path / "gates"
    gates.mkdir()
    stack = LocalStack(
        f"pytest-stack-{os.getpid()}",
        app_root=app.root,
        with_emulator=False,
        host_env={"IN_QUEUE": app.in_queue, "OUT_QUEUE": app.out_queue, "GATE_DIR": str(gates)},
        host_args=["--no-settings", "--lease-seconds", "2", "--drain-seconds", "20"],
    )
    with stack:
        service = stack.queue_service()
        requests = service.get_queue_client(app.in_queue)
        results = service.get_queue_client(app.out_queue)
        requests.send_message("plain")
        assert collect(results, 1) == ["1:plain"]

        # SIGTERM while an invocation runs: the host finishes it, writes its output, then exits 0.
        requests.send_message("gated-term")
        wait_for(lambda: (gates / "gated-term.started").exists() or None, "the invocation to start")
        stack.host.signal(signal.SIGTERM)
        (gates / "gated-term.open").touch()
        assert stack.host.wait(30) == 0
        assert collect(results, 1) == ["1:gated-term"]

        # SIGKILL mid-invocation: after the lease lapses, a new host runs the message again.
        stack.start_host()
        requests.send_message("gated-kill")
        wait_for(lambda: (gates / "gated-kill.started").exists() or None, "the invocation to start")
        stack.kill_host()
        (gates / "gated-kill.open").touch()
        stack.start_host()
        assert collect(results, 1) == ["2:gated-kill"]

        # Azurite restarts on the same port and data: the host keeps polling and carries on.
        stack.restart_azurite()
        service.get_queue_client(app.in_queue).send_message("after-restart")
        assert collect(service.get_queue_client(app.out_queue), 1, timeout=20) == ["1:after-restart"]
        assert stack.host.alive
    assert stack.host.returncode == 0
    assert "outcome=Succeeded" in stack.log_path("host").read_text()
    # Kept when the test fails, for the post-mortem; removed when it passes.
    shutil.rmtree(stack.azurite.data_dir, ignore_errors=True)
    for process in ("azurite", "host"):
        stack.log_path(process).unlink(missing_ok=True)


def test_queuectl_sends_files_and_follows_a_queue(
    azurite: Azurite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = tmp_path / "request.json"
    request.write_text('{"correlationId": "c-1"}')
    connection = ["--connection", azurite.connection_string]
    assert queuectl([*connection, "send", str(request), "--queue", "qctl-test"]) == 0
    assert queuectl([*connection, "follow", "--queue", "qctl-test", "--count", "1", "--timeout", "10", "--json"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == '{"correlationId": "c-1"}'
    assert queuectl([*connection, "follow", "--queue", "qctl-test", "--count", "1", "--timeout", "0.5"]) == 1


def test_queuectl_reads_every_file_before_sending_any(
    azurite: Azurite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, missing = tmp_path / "good.json", tmp_path / "missing.json"
    good.write_text('{"correlationId": "c-2"}')

    status = queuectl(["--connection", azurite.connection_string, "send", str(good), str(missing),
                       "--queue", "qctl-missing"])

    captured = capsys.readouterr()
    assert status == 2
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"queuectl: cannot read {missing}: No such file or directory; nothing was sent"]
    queue = QueueClient.from_connection_string(azurite.connection_string, "qctl-missing")
    assert message_count(queue) == 0


@pytest.mark.parametrize("command", [["send", "{request}"], ["follow"], ["follow", "--count", "1", "--json"]])
def test_queuectl_says_in_one_line_that_storage_cannot_be_reached(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    request = tmp_path / "request.json"
    request.write_text('{"correlationId": "c-3"}')
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    arguments = [part.replace("{request}", str(request)) for part in command]

    status = queuectl(["--connection", connection_string(port), *arguments])

    captured = capsys.readouterr()
    assert status == 1
    assert captured.out == ""
    [line] = captured.err.splitlines()
    assert line.startswith("queuectl: cannot reach queue backup-re")
    assert f"at http://127.0.0.1:{port}/devstoreaccount1" in line
    assert "connection refused. Is devtools/up running?" in line


def test_result_summary_line() -> None:
    result = {"status": "Succeeded", "correlationId": "c-9", "jobId": "j-1"}
    assert summarize(json.dumps(result)).split() == ["Succeeded", "correlationId=c-9", "jobId=j-1"]
    assert summarize("not json").startswith("(not JSON)")


@pytest.mark.parametrize(("error", "second_line"), [
    ({"code": "InvalidRequest", "message": "protectedItemName: must not contain '/'", "target": "protectedItemName"},
     "protectedItemName: must not contain '/'"),
    ({"code": "BMSUserErrorInvalidInput", "message": "Input for\n backup is\tinvalid.", "target": "properties"},
     "properties: Input for backup is invalid."),
    ({"code": "UserErrorVmNotInDesirableState", "message": "VM is not in a state that allows backups."},
     "VM is not in a state that allows backups."),
])
def test_a_result_with_an_error_shows_its_target_and_message(error: dict[str, str], second_line: str) -> None:
    result = {"status": "Failed", "correlationId": "c-9", "error": error}

    first, second = summarize(json.dumps(result)).splitlines()

    assert first.split() == ["Failed", "correlationId=c-9", f"error={error['code']}"]
    assert second == " " * 23 + second_line
