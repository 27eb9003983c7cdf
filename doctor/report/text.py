"""The report for people: a verdict line, the path hop by hop, then the causes, most likely first."""

from __future__ import annotations

import json
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape

from doctor.report.document import Report

VERDICT_STYLE = {
    "reachable": ("✓", "bold green"),
    "unreachable": ("✗", "bold red"),
    "ambiguous": ("?", "bold yellow"),
    "undetermined": ("?", "bold yellow"),
}
HOP_MARK = {
    "ok": ("✓", "green"),
    "broken": ("✗", "red"),
    "unknown": ("?", "yellow"),
    "skipped": ("·", "dim"),
}
SEVERITY_STYLE = {"error": "red", "warning": "yellow", "info": "cyan"}


def render(report: Report, out: TextIO, verbose: bool = False) -> None:
    # rich honours NO_COLOR and drops colour when `out` is not a terminal.
    console = Console(file=out, highlight=False, soft_wrap=True)
    t = report.target
    mark, style = VERDICT_STYLE[report.verdict]
    checkup = t.kind in ("host", "compose") or (t.kind == "container" and t.port is None)
    if checkup:
        what = {"host": f"host {t.host}", "compose": f"compose {t.input}"}.get(
            t.kind, f"container {t.container}"
        )
        counts = [
            f"{n} {severity}(s)"
            for severity in ("error", "warning")
            if (n := sum(f.severity == severity for f in report.findings))
        ]
        broken = sum(h.status == "broken" for h in report.path)
        summary = ", ".join(counts) or ("no problems" if not broken else f"{broken} broken")
        console.print(f"[{style}]{mark} {escape(what)}: {summary} in {len(report.path)} checks[/]")
    else:
        console.print(
            f"[{style}]{mark} {escape(t.input)} is {report.verdict}[/] [dim](from "
            f"{report.vantage})[/]"
        )
    verdicts = report.doctor.get("verdicts", {})
    if verdicts.get("live") and verdicts["live"] != verdicts.get("static"):
        console.print(
            f"[yellow]  the facts say {verdicts['static']}, the live probe says "
            f"{verdicts['live']}[/]"
        )

    console.print("\n[bold]Checks[/], problems first" if checkup else "\n[bold]Path[/]")
    width = max(len(h.hop) for h in report.path) if report.path else 0
    for hop in report.path:
        hop_mark, hop_style = HOP_MARK[hop.status]
        line = f"  [{hop_style}]{hop_mark}[/] {hop.hop.ljust(width)}  {escape(hop.detail)}"
        console.print(line)
        if hop.live:
            note = f" (facts alone: {hop.static})" if hop.static != hop.status else ""
            console.print(f"  {' ' * (width + 4)}[dim]live: {escape(hop.live)}{note}[/]")

    if report.findings:
        console.print("\n[bold]Causes[/], most likely first")
    for number, f in enumerate(report.findings, 1):
        sev = SEVERITY_STYLE[f.severity]
        at = f"{f.location.file}:{f.location.line}" if f.location else f.hop
        console.print(
            f"\n[bold]{number}. [{sev}]{f.code}[/][/] [dim]({f.severity}, {f.confidence:.0%}, at "
            f"{at})[/]"
            f"  {escape(f.title)}"
        )
        console.print(f"   {escape(f.explanation)}")
        for e in f.evidence:
            console.print(
                f"   [dim]evidence:[/] {escape(e.fact)} = {escape(_value(e.value))} "
                f"[dim]({escape(e.source)})[/]"
            )
        console.print(f"   [bold]fix:[/] {escape(f.fix.summary)}")
        for command in f.fix.commands:
            console.print(f"     [cyan]$ {escape(command)}[/]")

    troubles = [
        p
        for p in report.probes
        if p.status in ("failed", "timeout")
        or (p.status == "skipped" and (verbose or "root" in p.detail))
    ]
    if troubles:
        console.print("\n[bold]Could not check[/]")
        for p in troubles:
            console.print(f"  [yellow]{p.status}[/] {p.name}: {escape(p.detail)}")
    if verbose:
        console.print(
            f"\n[dim]docker-doctor {report.doctor.get('version')} · engine "
            f"{report.doctor.get('engine')}"
            f" · {report.doctor.get('platform')} · {report.doctor.get('ms')} ms[/]"
        )


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
