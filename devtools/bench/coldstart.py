"""Cold start: the import time of each function module in a fresh interpreter, against the bare packages.

Each measurement is a new ``python`` process that times one ``import`` with ``perf_counter``;
the candidates alternate so that a busy moment of the machine hits them alike, and the median
of the repeats is reported. The baseline imports only the four runtime packages the design
names (azure-functions, azure-identity, azure-storage-queue, requests): whatever the function
modules cost beyond it is the app's own.

The OpenTelemetry variant measures what the observability choice would add to every cold start:
the Python worker, when ``PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY`` is true (host.json
``telemetryMode: OpenTelemetry``), imports the OpenTelemetry context and propagator and calls
``azure.monitor.opentelemetry.configure_azure_monitor`` before the first function loads; the
probe does the same, then imports the function module. Telemetry goes nowhere: the ingestion
endpoint is a closed loopback port, statsbeat is off and only the Functions resource detector
runs (as the worker sets it), so nothing leaves the machine and no metadata endpoint is asked.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from collections.abc import Sequence

from devtools.stack import REPO_ROOT

__all__ = ["BASELINE", "OPENTELEMETRY", "import_times"]

BASELINE = "azure.functions, azure.identity, azure.storage.queue, requests"
OPENTELEMETRY = " + OpenTelemetry"
"""Suffix of the candidates measured with the worker's OpenTelemetry start-up first."""

_OPENTELEMETRY_START = (
    "from opentelemetry import context\n"
    "from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator\n"
    "from azure.monitor.opentelemetry import configure_azure_monitor\n"
    "configure_azure_monitor(connection_string={connection!r}, logger_name='')\n"
)
_NOWHERE = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://127.0.0.1:9/"
_OFFLINE = {
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "azure_functions",
}
_PROBE = (
    "import time, sys\n"
    "started = time.perf_counter()\n"
    "{prelude}"
    "import {modules}\n"
    "elapsed = time.perf_counter() - started\n"
    "status = open('/proc/self/status').read().split('VmHWM:')[1].split()[0]\n"
    "print(elapsed, status)\n"
)


def _code(candidate: str) -> str:
    if candidate.endswith(OPENTELEMETRY):
        prelude = _OPENTELEMETRY_START.format(connection=_NOWHERE)
        return _PROBE.format(prelude=prelude, modules=candidate.removesuffix(OPENTELEMETRY))
    return _PROBE.format(prelude="", modules=candidate)


def _one(candidate: str) -> tuple[float, float]:
    completed = subprocess.run(
        [sys.executable, "-c", _code(candidate)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120, check=True, env={**os.environ, **_OFFLINE},
    )
    seconds, peak_kib = completed.stdout.split()
    return float(seconds) * 1000, int(peak_kib) / 1024


def import_times(
    modules: Sequence[str], repeats: int, *, opentelemetry: bool = False
) -> dict[str, dict[str, float]]:
    """Median import milliseconds and peak RSS (MiB) per module list, with the baseline as ``BASELINE``.

    With ``opentelemetry`` each module is also measured after the worker's OpenTelemetry start,
    under the key ``module + OPENTELEMETRY``.
    """
    candidates = [BASELINE, *modules]
    if opentelemetry:
        candidates += [module + OPENTELEMETRY for module in modules]
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
