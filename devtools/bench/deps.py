"""The benchmark's own dependencies (devtools/bench/requirements.txt), installed with pip when missing."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata
from pathlib import Path

__all__ = ["REQUIREMENTS", "ensure_installed"]

REQUIREMENTS = Path(__file__).with_name("requirements.txt")


def _pins() -> dict[str, str]:
    pins = {}
    for raw in REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[name.strip()] = version.strip()
    return pins


def _missing() -> list[str]:
    missing = []
    for name, version in _pins().items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            missing.append(f"{name}=={version}")
    return missing


def ensure_installed() -> None:
    missing = _missing()
    if not missing:
        return
    print(f"bench: installing {', '.join(missing)}", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=True,
                   timeout=600)
