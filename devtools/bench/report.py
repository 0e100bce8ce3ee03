"""The benchmark's table: each figure beside its baseline and their ratio."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["Row", "render", "rows"]


@dataclass(frozen=True)
class Row:
    section: str
    metric: str
    ours: str
    baseline: str = ""
    ratio: str = ""


def _n(value: float | int, digits: int = 2) -> str:
    if not isinstance(value, float):
        return f"{value:,}"
    text = f"{value:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.3g}x" if theirs else "n/a"


def _cost_rows(cost: dict[str, Any], inproc: dict[str, Any] | None) -> list[Row]:
    table: list[Row] = []
    calls, minimum = cost["arm_calls_per_backup"], cost["arm_minimum_per_backup"]
    for kind, label in (("post", "POST"), ("operation_get", "operation GET"), ("job_get", "job GET"),
                        ("total", "calls, all")):
        table.append(Row("1 cost", f"ARM {label} per backup (vs minimum)", _n(calls[kind]), str(minimum[kind]),
                         _ratio(calls[kind], minimum[kind])))
    table.append(Row("1 cost", "token requests in the run", str(cost["token_requests"])))
    messages = cost["queue_messages_per_backup"]
    table.append(Row("1 cost", "queue messages per backup (request + follow-ups + result)",
                     _n(messages["request"] + messages["follow_ups"] + messages["result"])))
    table.append(Row("1 cost", "function invocations per backup", _n(cost["invocations_per_backup"])))
    for name, wall in cost["host_wall_ms"].items():
        table.append(Row("1 cost", f"{name} wall ms in the host (p50 / p95)", f"{wall['p50']:g} / {wall['p95']:g}"))
    ledger = (inproc or {}).get("table_transactions")
    if ledger:
        minimum = ledger["minimum_per_backup"]
        for name, figures in (inproc or {}).get("per_function", {}).items():
            table.append(Row("1 cost", f"ledger table transactions per backup in {name} (vs minimum)",
                             _n(figures["table_transactions_per_backup"]), str(minimum[name]),
                             _ratio(figures["table_transactions_per_backup"], minimum[name])))
        kinds = ", ".join(f"{kind} {_n(count)}" for kind, count in ledger["by_kind_per_backup"].items())
        table.append(Row("1 cost", f"ledger table transactions per backup ({kinds})", _n(ledger["per_backup"]),
                         str(minimum["total"]), _ratio(ledger["per_backup"], minimum["total"])))
    for name, figures in (inproc or {}).get("per_function", {}).items():
        table.append(Row("1 cost", f"{name} wall ms in-process (p50 / p95)",
                         f"{figures['wall_ms_p50']:g} / {figures['wall_ms_p95']:g}"))
        table.append(Row("1 cost", f"{name} CPU ms in-process (p50 / p95)",
                         f"{figures['cpu_ms_p50']:g} / {figures['cpu_ms_p95']:g}"))
    return table


def _throughput_rows(rate: dict[str, Any]) -> list[Row]:
    table: list[Row] = []
    per_second, bare = rate["per_second"], _n(rate["per_second"]["bare"], 1) + " bare loop"
    for variant, label in (("ledger_on", "ledger on"), ("ledger_off", "ledger off")):
        timed = rate["timed_share"][variant]
        note = "" if timed >= 1 else f", {timed:.0%} timed"
        table.append(Row("2 throughput", f"backups triggered per second, {label} ({rate['requests']} requests{note})",
                         _n(per_second[variant], 1), bare,
                         f"{rate['ratios'][variant]:.3g}x (target >= {rate['targets'][variant]:g})"))
    table.append(Row("2 throughput", "ledger on over ledger off", "", "", f"{rate['ledger_on_over_off']:.3g}x"))
    bare_cpu = rate["burst_cpu_ms_per_backup"]["bare"]
    for variant, label in (("ledger_on", "ledger on"), ("ledger_off", "ledger off")):
        cpu = rate["burst_cpu_ms_per_backup"][variant]
        table.append(Row("2 throughput", f"CPU ms per trigger, {label}: consumer / Azurite / emulator",
                         " / ".join(_n(cpu[name], 1) for name in ("consumer", "azurite", "emulator")),
                         " / ".join(_n(bare_cpu[name], 1) for name in ("consumer", "azurite", "emulator")) + " bare",
                         _ratio(sum(cpu.values()), sum(bare_cpu.values()))))
    for variant, label in (("ledger_on", "ledger on"), ("ledger_off", "ledger off")):
        table.append(Row("2 throughput", f"results end to end, {label} (duplicates)",
                         f"{rate['results'][variant]}/{rate['requests']} ({rate['duplicate_results'][variant]})"))
    return table


def _alternative_rows(results: dict[str, Any]) -> list[Row]:
    table: list[Row] = []
    for call, figures in (results.get("sdk") or {}).items():
        table.append(Row("3 vs SDK", f"client ms per {call} (p50)", _n(figures["ours_p50_ms"]),
                         _n(figures["sdk_p50_ms"]) + " SDK", f"{figures['ours_over_sdk']:.3g}x"))
    fixed, cost = results.get("fixed_polling"), results.get("cost")
    if fixed and cost:
        ours = cost["arm_calls_per_backup"]["total"]
        theirs = fixed["arm_calls_per_backup"]
        table.append(Row("3 vs 5 s polling", "ARM calls per backup", _n(ours), _n(theirs) + " az/PS loop",
                         _ratio(ours, theirs)))
    waiting = results.get("waiting")
    if waiting:
        ours, theirs = waiting["ours_function_seconds"], waiting["theirs_function_seconds"]
        table.append(Row("3 vs waiting in one invocation", "function-seconds per backup", _n(ours, 3),
                         _n(theirs, 0) + " held", _ratio(ours, theirs)))
    return table


def rows(results: dict[str, Any]) -> list[Row]:
    table: list[Row] = []
    if results.get("cost"):
        table += _cost_rows(results["cost"], results.get("cost_in_process"))
    rate = results.get("throughput")
    if rate:
        table += _throughput_rows(rate)
    table += _alternative_rows(results)
    cold = results.get("cold_start")
    if cold:
        baseline = cold["baseline"]
        for module, figures in cold["modules"].items():
            table.append(Row("4 cold start", f"import {module} ms (vs the 4 packages)", _n(figures["import_ms"], 1),
                             _n(baseline["import_ms"], 1), _ratio(figures["import_ms"], baseline["import_ms"])))
        for module, figures in (cold.get("opentelemetry") or {}).items():
            plain = cold["modules"][module]
            table.append(Row("4 cold start", f"import {module} ms with OpenTelemetry (vs without)",
                             _n(figures["import_ms"], 1), _n(plain["import_ms"], 1),
                             _ratio(figures["import_ms"], plain["import_ms"])))
            table.append(Row("4 cold start", "peak RSS MiB of that import with OpenTelemetry (vs without)",
                             _n(figures["peak_rss_mb"], 1), _n(plain["peak_rss_mb"], 1),
                             _ratio(figures["peak_rss_mb"], plain["peak_rss_mb"])))
    if rate:
        peak = rate["host_peak_rss_mb"]
        base = cold["baseline"]["peak_rss_mb"] if cold else None
        table.append(Row("4 memory", "host peak RSS MiB during throughput (vs the 4 packages)", _n(peak, 1),
                         _n(base, 1) if base else "", _ratio(peak, base) if base else ""))
    return table


def render(table: list[Row], *, markdown: bool = False) -> str:
    headers = ("section", "metric", "ours", "baseline", "ratio")
    cells = [headers, *[(r.section, r.metric, r.ours, r.baseline, r.ratio) for r in table]]
    if markdown:
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(row) + " |" for row in cells[1:]]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
