"""Cold start: the import time of each function module in a fresh interpreter, against the bare packages.

Each measurement is a new ``python`` process that times one ``import`` with ``perf_counter``;
the candidates alternate so that a busy moment of the machine hits them alike, and the median
of the repeats is reported. The baseline imports only the four runtime packages the design
names (azure-functions, azure-identity, azure-storage-queue, requests): whatever the function
modules cost beyond it is the app's own.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from collections.abc import Sequence

from devtools.stack import REPO_ROOT

__all__ = ["BASELINE", "import_times"]

BASELINE = "azure.functions, azure.identity, azure.storage.queue, requests"
_PROBE = (
    "import time, sys\n"
    "started = time.perf_counter()\n"
    "import {modules}\n"
    "elapsed = time.perf_counter() - started\n"
    "status = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
    "print(elapsed, status)\n"
)


def _one(modules: str) -> tuple[float, float]:
    completed = subprocess.run(
        [sys.executable, "-c", _PROBE.format(modules=modules)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True,
    )
    seconds, peak_kib = completed.stdout.split()
    return float(seconds) * 1000, int(peak_kib) / 1024


def import_times(modules: Sequence[str], repeats: int) -> dict[str, dict[str, float]]:
    """Median import milliseconds and peak RSS (MiB) per module list, with the baseline as ``BASELINE``."""
    candidates = [BASELINE, *modules]
    for candidate in candidates:  # compile and cache bytecode first, so every measured run reads warm .pyc files
        _one(candidate)
    samples: dict[str, list[tuple[float, float]]] = {candidate: [] for candidate in candidates}
    for _ in range(repeats):
        for candidate in candidates:
            samples[candidate].append(_one(candidate))
    return {
        candidate: {
            "import_ms": round(statistics.median(ms for ms, _ in found), 1),
            "peak_rss_mb": round(statistics.median(rss for _, rss in found), 1),  # VmHWM: not inherited over exec
        }
        for candidate, found in samples.items()
    }
