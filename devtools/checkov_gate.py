"""The infrastructure scan of CI: checkov over ``infra/``, offline, judged by its JSON report.

``python -m devtools.checkov_gate [--checkov PATH] [--infra DIR] [--waivers FILE]``

checkov exits 0 when it cannot parse a file, and a plain ``--skip-check`` list carries no reason,
so this gate runs checkov with no skips, reads ``summary.parsing_errors`` and the failed checks
from its JSON, and fails on: any parse error, a report that scanned nothing, a failed check with
no waiver, a waiver without a reason, and a waiver whose check no longer fails (a stale waiver
would silently cover the next resource to fail it). Waivers live in ``infra/checkov-waivers.txt``,
one a line: ``CHECK_ID RESOURCE REASON``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Failure", "Waiver", "judge", "main", "read_waivers", "run_checkov"]

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CHECKOV = REPO_ROOT / ".venv-checkov" / "bin" / "checkov"
DEFAULT_INFRA = REPO_ROOT / "infra"
DEFAULT_WAIVERS = DEFAULT_INFRA / "checkov-waivers.txt"


class GateError(RuntimeError):
    """checkov could not be run, or its report or the waiver file cannot be read."""


@dataclass(frozen=True)
class Waiver:
    check_id: str
    resource: str
    reason: str
    line: int


@dataclass(frozen=True)
class Failure:
    check_id: str
    resource: str
    file_path: str
    check_name: str


def read_waivers(text: str) -> tuple[list[Waiver], list[str]]:
    """The waivers of a waiver file, and the problems of its malformed lines."""
    waivers: list[Waiver] = []
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) < 3 or not parts[2].strip():
            problems.append(f"waiver line {number} has no reason: {line!r} (want CHECK_ID RESOURCE REASON)")
            continue
        waivers.append(Waiver(parts[0], parts[1], parts[2].strip(), number))
    return waivers, problems


def _reports(document: Any) -> list[Mapping[str, Any]]:
    # One framework gives one report object; several give a list of them.
    reports = document if isinstance(document, list) else [document]
    if not all(isinstance(report, dict) for report in reports):
        raise GateError("checkov's JSON report is neither an object nor a list of objects")
    return reports


def failures_of(document: Any) -> tuple[list[Failure], int, int]:
    """The failed checks, the parse error count and the resource count of a checkov JSON report."""
    failed: list[Failure] = []
    parsing_errors = resources = 0
    for report in _reports(document):
        summary = report.get("summary") or {}
        parsing_errors += int(summary.get("parsing_errors", 0))
        resources += int(summary.get("resource_count", 0))
        for check in (report.get("results") or {}).get("failed_checks", []):
            failed.append(Failure(check["check_id"], check["resource"], check.get("file_path", ""),
                                  check.get("check_name", "")))
    return failed, parsing_errors, resources


def judge(document: Any, waivers: Iterable[Waiver]) -> list[str]:
    """Every reason the scan fails; empty when it passes."""
    failed, parsing_errors, resources = failures_of(document)
    problems: list[str] = []
    if parsing_errors:
        problems.append(f"checkov could not parse {parsing_errors} file(s): fix the template")
    if resources == 0:
        problems.append("checkov scanned no resources: the template folder is empty or was not read")
    waived = {(waiver.check_id, waiver.resource): waiver for waiver in waivers}
    for failure in failed:
        if (failure.check_id, failure.resource) not in waived:
            problems.append(f"{failure.check_id} failed on {failure.resource} ({failure.file_path}): "
                            f"{failure.check_name}; fix it or waive it with a reason")
    seen = {(failure.check_id, failure.resource) for failure in failed}
    for key, waiver in waived.items():
        if key not in seen:
            problems.append(f"waiver line {waiver.line} ({waiver.check_id} {waiver.resource}) no longer "
                            "matches a failed check: remove it")
    return problems


def run_checkov(checkov: Path, infra: Path) -> Any:
    if not checkov.exists():
        raise GateError(f"{checkov} is missing: run devtools/bootstrap.sh")
    completed = subprocess.run(
        [str(checkov), "--framework", "bicep", "--skip-download", "--quiet", "--compact", "--output", "json",
         "--directory", str(infra)],
        capture_output=True, text=True, timeout=600, check=False,
    )
    try:
        return json.loads(completed.stdout)
    except ValueError:
        raise GateError(f"checkov printed no JSON report (exit {completed.returncode}): "
                        f"{completed.stderr.strip()[-2000:]}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.checkov_gate", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkov", type=Path, default=DEFAULT_CHECKOV)
    parser.add_argument("--infra", type=Path, default=DEFAULT_INFRA)
    parser.add_argument("--waivers", type=Path, default=DEFAULT_WAIVERS)
    args = parser.parse_args(argv)
    try:
        waivers, problems = read_waivers(args.waivers.read_text(encoding="utf-8"))
        document = run_checkov(args.checkov, args.infra)
    except (OSError, GateError) as exc:
        print(f"checkov gate: {exc}", file=sys.stderr)
        return 2
    problems += judge(document, waivers)
    failed, _, resources = failures_of(document)
    if problems:
        print("checkov gate: FAILED", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    print(f"checkov gate: {resources} resources scanned, {len(failed)} failed check(s), all waived with a reason")
    return 0


if __name__ == "__main__":
    sys.exit(main())
