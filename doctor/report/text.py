"""The report for people: a verdict line, the path hop by hop, then the causes, most likely first."""

from __future__ import annotations

import json
from typing import Any, TextIO

from rich.console import Console
from rich.markup import escape
from rich.text import Text

from doctor.report.document import Report
from doctor.report.inert import inert

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
        console.print(f"[{style}]{mark} {_shown(what)}: {summary} in {len(report.path)} checks[/]")
    else:
        console.print(
            f"[{style}]{mark} {_shown(t.input)} is {report.verdict}[/] [dim](from "
            f"{_shown(report.vantage)})[/]"
        )
    verdicts = report.doctor.get("verdicts", {})
    if verdicts.get("live") and verdicts["live"] != verdicts.get("static"):
        console.print(
            f"[yellow]  the facts say {verdicts['static']}, the live probe says "
            f"{verdicts['live']}[/]"
        )

    console.print("\n[bold]Checks[/], problems first" if checkup else "\n[bold]Path[/]")
    names = [inert(h.hop) for h in report.path]  # a network's name is the user's text
    width = max(map(len, names), default=0)
    for hop, name in zip(report.path, names, strict=True):
        hop_mark, hop_style = HOP_MARK[hop.status]
        # as Text, not markup: nothing in a name or a detail is read as a tag or an escape
        console.print(
            Text.assemble("  ", (hop_mark, hop_style), f" {name.ljust(width)}  ", inert(hop.detail))
        )
        if hop.live:
            note = f" (facts alone: {hop.static})" if hop.static != hop.status else ""
            console.print(f"  {' ' * (width + 4)}[dim]live: {_shown(hop.live)}{note}[/]")

    if report.findings:
        console.print("\n[bold]Causes[/], most likely first")
    for number, f in enumerate(report.findings, 1):
        sev = SEVERITY_STYLE[f.severity]
        at = f"{f.location.file}:{f.location.line}" if f.location else f.hop
        console.print(
            f"\n[bold]{number}. [{sev}]{f.code}[/][/] [dim]({f.severity}, {f.confidence:.0%}, at "
            f"{at})[/]"
            f"  {_shown(f.title)}"
        )
        console.print(f"   {_shown(f.explanation)}")
        for e in f.evidence:
            console.print(
                f"   [dim]evidence:[/] {_shown(e.fact)} = {_shown(_value(e.value))} "
                f"[dim]({_shown(e.source)})[/]"
            )
        console.print(f"   [bold]fix:[/] {_shown(f.fix.summary)}")
        for command in f.fix.commands:
            console.print(f"     [cyan]$ {_shown(command)}[/]")

    troubles = [
        p
        for p in report.probes
        if p.status in ("failed", "timeout")
        or (p.status == "skipped" and (verbose or "root" in p.detail))
        or p.name.startswith("container:")  # changed while the run read it
    ]
    if troubles:
        console.print("\n[bold]Could not check[/]")
        for p in troubles:
            console.print(f"  [yellow]{p.status}[/] {_shown(p.name)}: {_shown(p.detail)}")
    if verbose:
        about = (
            f"docker-doctor {report.doctor.get('version')} · engine "
            f"{report.doctor.get('engine')} · {report.doctor.get('platform')} · "
            f"{report.doctor.get('ms')} ms"
        )
        console.print(f"\n[dim]{_shown(about)}[/]")


def _shown(text: str) -> str:
    """Data for the console: made inert (doctor.report.inert), then its rich markup escaped."""
    return escape(inert(text))


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
