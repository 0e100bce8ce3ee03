"""The command line: ready file, clean exit on SIGTERM/SIGINT, refusal of a bad configuration."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]


def _start(state_dir: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "devtools.emulator", "--state-dir", str(state_dir), *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _ready_line(proc: subprocess.Popen[str], timeout: float = 15.0) -> dict[str, object]:
    assert proc.stdout is not None
    readable, _, _ = select.select([proc.stdout], [], [], timeout)
    assert readable, "the emulator did not report ready in time"
    return json.loads(proc.stdout.readline())  # type: ignore[no-any-return]


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_cli_serves_until_signalled_and_cleans_up(tmp_path: Path, stop_signal: signal.Signals) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"page_size": 7, "time_scale": 5}), encoding="utf-8")
    proc = _start(tmp_path / "state", "--config", str(config), "--time-scale", "120")
    try:
        printed = _ready_line(proc)
        written = json.loads((tmp_path / "state" / "endpoints.json").read_text(encoding="utf-8"))
        admin = requests.get(f"{written['admin_url']}/config", verify=str(written["ca_bundle"]), timeout=10)
    finally:
        proc.send_signal(stop_signal)
        code = proc.wait(timeout=15)

    assert printed == written
    assert written["pid"] == proc.pid
    assert str(written["arm_endpoint"]).startswith("https://127.0.0.1:")
    assert str(written["identity_endpoint"]).startswith("http://127.0.0.1:")
    assert Path(str(written["ca_bundle"])) == tmp_path / "state" / "ca.pem"
    assert admin.json()["page_size"] == 7 and admin.json()["time_scale"] == 120
    assert code == 0
    assert not (tmp_path / "state" / "endpoints.json").exists()


def test_cli_refuses_a_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"time_scale": -1}), encoding="utf-8")

    proc = _start(tmp_path / "state", "--config", str(config))
    _, stderr = proc.communicate(timeout=15)

    assert proc.returncode == 2
    assert "time_scale" in stderr
    assert not (tmp_path / "state" / "endpoints.json").exists()
