"""A bundle's report as one self-contained HTML page: the verdict per published port, each
path hop by hop with the broken hop marked, the causes with evidence and fixes, the host's
networks with their containers, and what could not be checked.

The page asks for nothing when opened: styles are inline, there is no script, and its Content
Security Policy forbids fetching anything. Every value from the bundle was written by
containers or their users, so each one goes through :func:`inert` (control and bidirectional
characters shown as escapes) and then :func:`html.escape`; no value is ever markup."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Any, TextIO

from doctor.diagnosis.overview import Member, NetworkMembers, Overview, PortReport
from doctor.report.document import Finding, Hop, ProbeRun, Report
from doctor.report.inert import inert

# Nothing fetched, run, submitted or navigated to a base elsewhere; only the page's own style.
CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>docker-doctor report: {title}</title>
<style>
body {{ font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #1d232a; }}
h1 {{ font-size: 1.6em; margin-bottom: 0; }}
h2 {{ border-bottom: 1px solid #ccd; padding-bottom: .2em; margin-top: 2em; }}
.about, .muted {{ color: #667; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .3em .6em; border-bottom: 1px solid #e4e6ea; vertical-align: top; }}
code, pre {{ font-family: ui-monospace, monospace; font-size: .92em; }}
pre {{ background: #f3f4f6; padding: .5em .8em; white-space: pre-wrap; word-break: break-all; }}
.reachable, .ok {{ color: #17803d; }}
.unreachable, .broken, .error {{ color: #c0262d; }}
.ambiguous, .undetermined, .unknown, .warning, .failed, .timeout {{ color: #a15c00; }}
.skipped, .info {{ color: #556; }}
ol.path {{ list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .4em; }}
ol.path li {{ border: 2px solid #cfd4da; border-radius: 6px; padding: .4em .6em; max-width: 20em; }}
ol.path li + li::before {{ content: "→ "; color: #889; }}
ol.path li.broken {{ border-color: #c0262d; background: #fdecec; }}
ol.path li.unknown {{ border-color: #d99a2b; background: #fff6e5; }}
.hop {{ font-weight: 600; }}
.finding {{ border-left: 4px solid #cfd4da; padding: .2em 1em; margin: 1em 0; }}
.finding.severe {{ border-color: #c0262d; }} .finding.doubtful {{ border-color: #d99a2b; }}
.finding .code {{ font-weight: 700; font-family: ui-monospace, monospace; }}
</style>
</head>
<body>
<h1>docker-doctor report</h1>
<p class="about">{about}</p>
{body}
</body>
</html>
"""

# A status, verdict or severity names a class and a mark only through these tables: a bundle's
# manifest is read as it was written, so even its probe statuses are untrusted text.
MARK = {"ok": "✓", "broken": "✗", "unknown": "?", "skipped": "·", "failed": "✗", "timeout": "?"}
BORDER = {"error": "severe", "warning": "doubtful", "info": "plain"}  # the finding's left edge
VERDICT_MARK = {"reachable": "✓", "unreachable": "✗", "ambiguous": "?", "undetermined": "?"}


def kind(value: str, known: Mapping[str, str]) -> str:
    """``value`` as a class name: one of ``known``'s keys, else "unknown"."""
    return value if value in known else "unknown"


def text(value: Any) -> str:
    """Any value from the bundle, safe in an HTML element or attribute."""
    shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return escape(inert(shown), quote=True)


def render(view: Overview, source: str, out: TextIO) -> None:
    """Write the page for ``view``, a replay of the bundle at ``source``."""
    host = view.host
    about = " · ".join(
        text(part)
        for part in (
            f"bundle {source}",
            f"docker-doctor {host.doctor.get('version')}",
            f"engine {host.doctor.get('engine')}",
            f"{host.doctor.get('platform')}",
        )
    )
    body = [
        _ports_table(view.ports),
        *(_port_section(number, port.report) for number, port in enumerate(view.ports, 1)),
        _host_section(host),
        _networks_section(view.networks),
        _probes_section(host.probes),
    ]
    out.write(PAGE.format(csp=CSP, title=text(source), about=about, body="\n".join(body)))


def _verdict(verdict: str) -> str:
    cls = kind(verdict, VERDICT_MARK)
    return f'<span class="{cls}">{VERDICT_MARK.get(cls, "?")} {text(verdict)}</span>'


def _ports_table(ports: Sequence[PortReport]) -> str:
    if not ports:
        return '<h2>Published ports</h2>\n<p class="muted">No container publishes a port.</p>'
    rows = "\n".join(
        f'<tr><td><a href="#port-{number}"><code>{text(p.report.target.input)}</code></a></td>'
        f"<td>{text(p.container or '—')}</td><td>{_verdict(p.report.verdict)}</td>"
        f"<td>{', '.join(f'<code>{text(f.code)}</code>' for f in p.report.findings) or '—'}"
        "</td></tr>"
        for number, p in enumerate(ports, 1)
    )
    return (
        "<h2>Published ports</h2>\n<table><tr><th>port</th><th>container</th>"
        "<th>verdict from this host</th>"
        f"<th>causes</th></tr>\n{rows}\n</table>"
    )


def _port_section(number: int, report: Report) -> str:
    title = f"<code>{text(report.target.input)}</code> from {text(report.vantage)}"
    return "\n".join(
        [
            f'<section id="port-{number}">',
            f"<h2>{title}: {_verdict(report.verdict)}</h2>",
            '<ol class="path">',
            *(_hop(h) for h in report.path),
            "</ol>",
            *_findings(report.findings),
            "</section>",
        ]
    )


def _hop(h: Hop) -> str:
    here = " <strong>broken here</strong>" if h.status == "broken" else ""
    live = f'<div class="muted">live: {text(h.live)}</div>' if h.live else ""
    cls = kind(h.status, MARK)
    return (
        f'<li class="{cls}"><span class="{cls}">{MARK.get(cls, "?")}</span> '
        f'<span class="hop">{text(h.hop)}</span>{here}<div>{text(h.detail)}</div>{live}</li>'
    )


def _findings(findings: Iterable[Finding]) -> list[str]:
    shown = [_finding(number, f) for number, f in enumerate(findings, 1)]
    return ["<h3>Causes, most likely first</h3>", *shown] if shown else []


def _finding(number: int, f: Finding) -> str:
    at = f"{f.location.file}:{f.location.line}" if f.location else f.hop
    evidence = "".join(
        f"<tr><td><code>{text(e.fact)}</code></td><td><code>{text(e.value)}</code></td>"
        f'<td class="muted">{text(e.source)}</td></tr>'
        for e in f.evidence
    )
    commands = "\n".join(f"$ {text(c)}" for c in f.fix.commands)
    return "\n".join(
        [
            f'<div class="finding {BORDER.get(f.severity, "plain")}">',
            f'<p>{number}. <span class="code">{text(f.code)}</span> '
            f'<span class="{kind(f.severity, BORDER)}">{text(f.severity)}</span>, '
            f"{f.confidence:.0%}, at "
            f"{text(at)}: <strong>{text(f.title)}</strong></p>",
            f"<p>{text(f.explanation)}</p>",
            f"<table><tr><th>evidence</th><th>value</th><th>read from</th></tr>{evidence}</table>"
            if evidence
            else "",
            f"<p><strong>Fix:</strong> {text(f.fix.summary)}</p>",
            f"<pre>{commands}</pre>" if commands else "",
            "</div>",
        ]
    )


def _host_section(host: Report) -> str:
    rows = "\n".join(
        f'<tr><td class="{kind(h.status, MARK)}">{MARK.get(h.status, "?")} {text(h.status)}</td>'
        f"<td>{text(h.hop)}</td>"
        f"<td>{text(h.detail)}</td></tr>"
        for h in host.path
    )
    return "\n".join(
        [
            f"<h2>Host checkup: {_verdict(host.verdict)}</h2>",
            f"<table><tr><th>status</th><th>check</th><th>detail</th></tr>\n{rows}\n</table>",
            *_findings(host.findings),
        ]
    )


def _networks_section(networks: Sequence[NetworkMembers]) -> str:
    rows = "\n".join(
        f"<tr><td>{text(n.name)}</td><td>{text(n.driver)}</td>"
        f"<td>{text(', '.join(n.subnets)) or '—'}</td>"
        f"<td>{', '.join(_member(m) for m in n.members) or '—'}</td></tr>"
        for n in networks
    )
    return (
        "<h2>Networks</h2>\n<table><tr><th>network</th><th>driver</th><th>subnets</th>"
        f"<th>containers</th></tr>\n{rows}\n</table>"
    )


def _member(m: Member) -> str:
    shown = f"{text(m.container)} ({text(m.address)})" if m.address else text(m.container)
    return shown if m.running else f"{shown} <em>stopped</em>"


def _probes_section(probes: Sequence[ProbeRun]) -> str:
    troubles = [p for p in probes if p.status != "ok"]
    if not troubles:
        return '<h2>Could not check</h2>\n<p class="muted">Every probe ran.</p>'
    rows = "\n".join(
        f'<tr><td class="{kind(p.status, MARK)}">{text(p.status)}</td><td>{text(p.name)}</td>'
        f"<td>{text(p.detail)}</td></tr>"
        for p in troubles
    )
    return (
        "<h2>Could not check</h2>\n<table><tr><th>status</th><th>probe</th><th>why</th></tr>\n"
        f"{rows}\n</table>"
    )
