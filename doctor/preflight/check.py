"""`docker-doctor preflight`: a compose file checked before it is deployed.

The compose project is the target (kind ``compose``); the rules for the ``compose``
client check it statically and, unless ``--no-live``, against this host's facts (ports
held, forwarding, subnets, sysctls, the engine).  An ignore file (`.docker-doctor.yaml`)
can waive a code, for all services or one, each with its reason; an unknown code there is
an error, so that a typo never hides a check.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from msgspec import Struct

from doctor import __version__
from doctor.collect.collector import collect
from doctor.collect.engine_api import Endpoint, resolve_endpoint
from doctor.errors import UsageError
from doctor.facts.build import build_facts
from doctor.facts.model import Facts
from doctor.path.hops import NetworkPath, Route
from doctor.path.target import Target, TargetSpec
from doctor.plugin.manager import Plugins
from doctor.plugin.rule import Code, RuleContext
from doctor.plugin.runner import run_rules
from doctor.preflight.compose import Project
from doctor.report.document import SEVERITY_RANK, Finding, Hop, ProbeRun, Report, unread_runs
from doctor.snapshot.store import Snapshot

IGNORE_FILE = ".docker-doctor.yaml"


class Waiver(Struct, frozen=True):
    code: str
    service: str | None
    reason: str

    def covers(self, f: Finding) -> bool:
        return f.code == self.code and (self.service is None or f.hop == f"service {self.service}")


def read_waivers(path: Path, codes: Mapping[str, Code]) -> list[Waiver]:
    """The waivers of ``path``; each names a registered code (``codes``) and says why."""
    import yaml  # deferred: only preflight reads YAML

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"{path}: cannot read: {str(exc).splitlines()[0]}") from None
    waivers = []
    for index, entry in enumerate(data.get("ignore") or [] if isinstance(data, dict) else []):
        if not isinstance(entry, dict) or "code" not in entry:
            raise UsageError(f"{path}: ignore[{index}] needs a code")
        code = str(entry["code"]).upper()
        if code not in codes:
            raise UsageError(f"{path}: ignore[{index}]: unknown code {entry['code']!r}")
        if not str(entry.get("reason") or "").strip():
            raise UsageError(f"{path}: ignore[{index}] ({code}) needs a reason")
        waivers.append(Waiver(code, entry.get("service"), str(entry["reason"])))
    return waivers


def check(
    project: Project,
    plugins: Plugins,
    live: bool,
    timeout: float,
    waivers: list[Waiver],
    endpoint: Endpoint | None = None,
) -> Report:
    started = time.monotonic()
    runs: list[ProbeRun] = list(plugins.failures)
    if live:
        snapshot, _ = collect(plugins.probes, started + timeout, endpoint or resolve_endpoint())
    else:
        snapshot = Snapshot()
        runs.append(ProbeRun("live", "skipped", "--no-live: this host is not checked", 0))
    runs += snapshot.probes
    facts = build_facts(snapshot)
    runs += unread_runs(facts.unparsable, facts.unchecked)
    target = Target(
        TargetSpec(" ".join(project.files), None, None, "tcp"), "compose", None, "tcp", (), "host"
    )
    ctx = RuleContext(facts, target, NetworkPath((), Route()), None, project)
    rules = [rule for rule in plugins.rules if "compose" in rule.clients]
    findings, rule_runs = run_rules(rules, plugins.codes, ctx, started + timeout)
    runs += rule_runs
    waived = [f for f in findings if any(w.covers(f) for w in waivers)]
    findings = sorted(
        (f for f in findings if f not in waived),
        key=lambda f: (
            SEVERITY_RANK[f.severity],
            f.location.file if f.location else "",
            f.location.line if f.location else 0,
        ),
    )
    lines = _lines(project, facts, findings, live)
    errors = any(f.severity == "error" for f in findings)
    return Report(
        target=target.as_report(),
        vantage="host",
        verdict="unreachable" if errors else "reachable",
        findings=findings,
        path=lines,
        probes=runs,
        doctor={
            "version": __version__,
            "engine": _engine(facts, live),
            "platform": facts.platform.detail,
            "waived": [{"code": f.code, "hop": f.hop} for f in waived],
            "compose_project": project.name,
            "ms": round((time.monotonic() - started) * 1000),
        },
    )


def _engine(facts: Facts, live: bool) -> str:
    if facts.engine:
        return f"{facts.engine.version} (API {facts.engine.api_version}) at {facts.engine.endpoint}"
    return facts.unreadable.get("engine", "not checked (--no-live)" if not live else "not read")


def _lines(project: Project, facts: Facts, findings: list[Finding], live: bool) -> list[Hop]:
    lines = [Hop(f"file {f}", "ok", f"project {project.name}") for f in project.files]
    if live:
        lines.append(Hop("engine", "ok" if facts.engine else "unknown", _engine(facts, live)))
    for s in project.services:
        own = [f for f in findings if f.hop == f"service {s.name}" and f.severity != "info"]
        status = "broken" if any(f.severity == "error" for f in own) else "unknown" if own else "ok"
        detail = ", ".join(f.code for f in own) or (
            f"{len(s.ports)} published port(s), networks "
            f"{', '.join(sorted(s.networks)) or s.network_mode}"
        )
        lines.append(Hop(f"service {s.name}", status, detail))  # type: ignore[arg-type]
    return lines
