"""The checkov gate's judgement of a report: parse errors, unwaived failures, waivers without reasons or use."""

from __future__ import annotations

from typing import Any

from devtools.checkov_gate import DEFAULT_WAIVERS, judge, read_waivers


def _report(*failed: tuple[str, str], parsing_errors: int = 0, resources: int = 5) -> dict[str, Any]:
    return {
        "check_type": "bicep",
        "results": {"failed_checks": [
            {"check_id": check, "resource": resource, "file_path": "/app.bicep", "check_name": "a check"}
            for check, resource in failed
        ]},
        "summary": {"passed": 3, "failed": len(failed), "parsing_errors": parsing_errors, "resource_count": resources},
    }


APP = ("CKV_A", "Microsoft.Web/sites.functionApp")
STORAGE = ("CKV_B", "Microsoft.Storage/storageAccounts.storage")
WAIVERS, PROBLEMS = read_waivers(f"# comment\n\n{' '.join(APP)} the reason\n{' '.join(STORAGE)} why\n")


def test_a_clean_report_with_every_failure_waived_passes() -> None:
    assert PROBLEMS == []
    report = _report(APP, STORAGE)
    assert judge(report, WAIVERS) == []


def test_a_parse_error_fails_even_though_checkov_exits_zero() -> None:
    report = _report(APP, STORAGE, parsing_errors=1)
    assert any("could not parse 1" in problem for problem in judge(report, WAIVERS))


def test_a_failed_check_without_a_waiver_fails() -> None:
    report = _report(APP, STORAGE, ("CKV_C", "Microsoft.Web/sites.functionApp"))
    (problem,) = judge(report, WAIVERS)
    assert problem.startswith("CKV_C failed on Microsoft.Web/sites.functionApp")


def test_a_waiver_covers_only_its_resource() -> None:
    report = _report(("CKV_A", "Microsoft.Web/sites.other"), ("CKV_B", "Microsoft.Storage/storageAccounts.storage"))
    problems = judge(report, WAIVERS)
    assert any(problem.startswith("CKV_A failed on Microsoft.Web/sites.other") for problem in problems)


def test_a_waiver_whose_check_passes_now_is_stale() -> None:
    problems = judge(_report(("CKV_A", "Microsoft.Web/sites.functionApp")), WAIVERS)
    assert problems == ["waiver line 4 (CKV_B Microsoft.Storage/storageAccounts.storage) no longer matches a failed "
                        "check: remove it"]


def test_a_report_of_nothing_fails() -> None:
    assert any("scanned no resources" in problem for problem in judge(_report(resources=0), []))


def test_a_list_of_reports_is_read_as_one() -> None:
    reports = [_report(("CKV_A", "Microsoft.Web/sites.functionApp")),
               _report(("CKV_B", "Microsoft.Storage/storageAccounts.storage"), parsing_errors=2)]
    assert judge(reports, WAIVERS) == ["checkov could not parse 2 file(s): fix the template"]


def test_a_waiver_needs_a_reason() -> None:
    waivers, problems = read_waivers("CKV_A Microsoft.Web/sites.functionApp\nCKV_B\n")
    assert waivers == []
    assert [problem.split(" has")[0] for problem in problems] == ["waiver line 1", "waiver line 2"]


def test_the_projects_waiver_file_reads_cleanly() -> None:
    waivers, problems = read_waivers(DEFAULT_WAIVERS.read_text(encoding="utf-8"))
    assert problems == []
    assert waivers
    assert len({(waiver.check_id, waiver.resource) for waiver in waivers}) == len(waivers)
