"""The report for people: a verdict line, the path hop by hop, then the causes, most likely first."""

from __future__ import annotations

import json
from typing import Any, TextIO

from rich.console import Console
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
    # rich honours NO_COLOR and drops colour when `out` is not a terminal. What the report
    # holds goes in as Text, never as markup: nothing a container wrote is read as a tag.
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
        console.print(Text(f"{mark} {inert(what)}: {summary} in {len(report.path)} checks", style))
    else:
        console.print(
            Text.assemble(
                (f"{mark} {inert(t.input)} is {report.verdict}", style),
                " ",
                (f"(from {inert(report.vantage)})", "dim"),
            )
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
        console.print(
            Text.assemble("  ", (hop_mark, hop_style), f" {name.ljust(width)}  ", inert(hop.detail))
        )
        if hop.live:
            note = f" (facts alone: {hop.static})" if hop.static != hop.status else ""
            console.print(
                Text.assemble(" " * (width + 6), (f"live: {inert(hop.live)}{note}", "dim"))
            )

    if report.findings:
        console.print("\n[bold]Causes[/], most likely first")
    for number, f in enumerate(report.findings, 1):
        sev = SEVERITY_STYLE[f.severity]
        at = f"{f.location.file}:{f.location.line}" if f.location else f.hop
        console.print(
            Text.assemble(
                "\n",
                (f"{number}. ", "bold"),
                (f.code, f"bold {sev}"),
                " ",
                (f"({f.severity}, {f.confidence:.0%}, at {inert(at)})", "dim"),
                f"  {inert(f.title)}",
            )
        )
        console.print(Text(f"   {inert(f.explanation)}"))
        for e in f.evidence:
            console.print(
                Text.assemble(
                    "   ",
                    ("evidence:", "dim"),
                    f" {inert(e.fact)} = {inert(_value(e.value))} ",
                    (f"({inert(e.source)})", "dim"),
                )
            )
        console.print(Text.assemble("   ", ("fix:", "bold"), f" {inert(f.fix.summary)}"))
        for command in f.fix.commands:
            console.print(Text.assemble("     ", (f"$ {inert(command)}", "cyan")))

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
            console.print(
                Text.assemble("  ", (p.status, "yellow"), f" {inert(p.name)}: {inert(p.detail)}")
            )
    if verbose:
        about = (
            f"docker-doctor {report.doctor.get('version')} · engine "
            f"{report.doctor.get('engine')} · {report.doctor.get('platform')} · "
            f"{report.doctor.get('ms')} ms"
        )
        console.print(Text(f"\n{inert(about)}", "dim"))


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
