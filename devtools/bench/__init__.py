"""Benchmark of the app against the local stack and against side-by-side baselines.

``python -m devtools.bench [--requests 2000] [--quick] [--json bench-results/latest.json]``: see
``__main__.py``. The pieces here are also the tools of the reliability suite (tests/reliability):
an estate of many protected items for the emulator, the emulator's admin API, bulk queue traffic,
and the local host's per-invocation log lines.
"""
