"""One diagnosis: probes → snapshot → facts → path → live checks → rules → report."""

from __future__ import annotations

import contextlib
import os
import pathlib
import platform
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from doctor import __version__, checkup, namespaces
from doctor.dockerapi import resolve_endpoint
from doctor.errors import CannotDiagnose
from doctor.facts import Facts, build_facts
from doctor.inside import Plan
from doctor.inside import run as run_inside
from doctor.live import FAILED, REACHED, Observation, Seen, probe
from doctor.model import (
    SEVERITY_RANK,
    Finding,
    Hop,
    HopStatus,
    ProbeRun,
    Report,
    Verdict,
)
from doctor.path import Path, Route, build_path, with_status
from doctor.peerpath import build_peer_path
from doctor.platforms import local_guess
from doctor.plugins import Plugins, Probe, ProbeContext, RuleContext, load_plugins
from doctor.runner import Job, Outcome, run_jobs
from doctor.snapshot import Snapshot
from doctor.target import Target, TargetSpec, Vantage, host_target, resolve_target

LIVE_TIMEOUT = 1.0  # per connection attempt
NOT_SEEN_FROM_HOST = ("raw-prerouting", "filter-forward", "filter-input")
RULE_TIMEOUT = 2.0


@dataclass(frozen=True)
class Options:
    live: bool = True
    timeout: float = 10.0  # the whole run
    vantage: Vantage | None = None
    save_snapshot: pathlib.Path | None = None  # keep what the probes read, to replay it
    probe_external: bool = False  # send from a temporary client namespace (changes the host briefly)


def collect(probes: list[Probe], deadline: float, extra: Sequence[Job] = (), thorough: bool = False
            ) -> tuple[Snapshot, dict[str, Outcome]]:
    """Run every probe (and ``extra`` jobs alongside) into a fresh snapshot."""
    snapshot = Snapshot(meta={"created": time.time(), "hostname": socket.gethostname()})
    contexts: dict[str, ProbeContext] = {}
    endpoint = resolve_endpoint()
    where = local_guess(endpoint.host, endpoint.source)

    def job(p: Probe) -> Job:
        def call() -> None:
            # Requirements have ended by now: their artifacts are in the snapshot.
            ctx = contexts[p.name] = ProbeContext(snapshot, deadline=min(deadline, time.monotonic() + p.timeout),
                                                  thorough=thorough, platform=where)
            p.collect(ctx)
            snapshot.artifacts.update(ctx.artifacts)

        return Job(p.name, call, p.timeout, p.requires)

    outcomes = run_jobs([job(p) for p in probes] + list(extra), deadline)
    for p in probes:
        o = outcomes[p.name]
        snapshot.probes.append(ProbeRun(p.name, o.status, o.detail, o.ms))
    return snapshot, outcomes


@dataclass
class Assessment:
    """One target judged: its path, the live verdict if probes were sent, the findings."""

    target: Target
    path: Path
    static: Verdict
    live: Verdict | None
    findings: list[Finding]
    runs: list[ProbeRun]

    @property
    def verdict(self) -> Verdict:
        return self.live or self.static


def diagnose(spec: TargetSpec | None, options: Options, snapshot: Snapshot | None = None,
             plugins: Plugins | None = None) -> Report:
    """Diagnose ``spec``; with no target, check up the whole host."""
    started = time.monotonic()
    deadline = started + options.timeout
    plugins = plugins or load_plugins()
    runs: list[ProbeRun] = []
    early: list[Observation] = []
    if snapshot is None:
        # Loopback targets need no facts to be probed: connect while the probes read.
        early_job = _loopback_job(spec) if options.live and spec else None
        snapshot, outcomes = collect(plugins.probes, deadline, [early_job] if early_job else [])
        stop_if_engine_unreachable(outcomes)
        if options.save_snapshot:
            snapshot.write(options.save_snapshot)
        if early_job:
            early = _observations(outcomes[early_job.name], runs)
        live_skip = None if options.live else "--no-live: nothing sent"
    else:
        live_skip = "replaying a snapshot: nothing sent"
    if live_skip:
        runs.append(ProbeRun("live", "skipped", live_skip, 0))

    facts = build_facts(snapshot)
    if facts.engine is None:
        raise CannotDiagnose(f"no Engine data: {facts.unreadable.get('engine', 'the engine probe did not run')}")
    live = live_skip is None
    if spec is None:
        report = _checkup(facts, plugins, live, deadline, host_target(facts))
    else:
        target = resolve_target(spec, facts, options.vantage)
        if target.kind == "container" and target.port is None and target.source is None:
            report = _checkup(facts, plugins, live, deadline, target)
        else:
            outside = options.probe_external and live
            assessed = assess(facts, target, plugins, live, early, deadline, outside)
            report = _report(target, assessed.verdict, assessed.findings, assessed.path.hops, assessed.runs,
                             {"static": assessed.static, "live": assessed.live})
    report.probes[:0] = [*plugins.failures, *snapshot.probes, *runs]
    report.doctor = {
        "version": __version__,
        "engine": f"{facts.engine.version} (API {facts.engine.api_version}) at {facts.engine.endpoint}",
        "platform": _platform(facts),
        **report.doctor,
        "ms": round((time.monotonic() - started) * 1000),
    }
    return report


def _report(target: Target, verdict: Verdict, findings: list[Finding], path: list[Hop], runs: list[ProbeRun],
            verdicts: dict[str, Verdict | None]) -> Report:
    return Report(target=target.as_report(), vantage=target.vantage, verdict=verdict, findings=findings,
                  path=path, probes=runs, doctor={"verdicts": verdicts})


def assess(facts: Facts, target: Target, plugins: Plugins, live: bool, early: list[Observation],
           deadline: float, from_outside: bool = False) -> Assessment:
    """Path, live confirmation (when allowed) and rules for one target."""
    runs: list[ProbeRun] = []
    if target.kind == "host":
        path = Path([], Route())  # the whole host: only host-wide rules speak
    elif target.source:
        path = build_peer_path(facts, target)
    else:
        path = build_path(facts, target)
    static = _static_verdict(path.hops)
    verdict: Verdict | None = None
    seen: Seen | None = None
    if live and target.source:
        seen = Seen()
        verdict = _confirm_from_container(facts, target, path, seen, deadline, runs)
    elif live and from_outside and target.vantage == "external":
        verdict = _probe_from_outside(facts, target, path, runs)
    elif live and target.kind != "host":
        verdict = _confirm_live(facts, target, path, early, deadline, runs)
    findings = _run_rules(plugins, RuleContext(facts, target, path, seen), deadline, runs)
    findings.sort(key=lambda f: (
        (path.hop(f.hop) or Hop(f.hop, "unknown", "")).status != "broken",
        path.rank(f.hop), SEVERITY_RANK[f.severity], -f.confidence,
    ))
    return Assessment(target, path, static, verdict, findings, runs)


def _checkup(facts: Facts, plugins: Plugins, live: bool, deadline: float, subject: Target) -> Report:
    """The host (subject of kind "host") or one container: one line per thing checked, problems first."""
    only = subject.container
    containers = [only] if only else list(facts.containers)
    targets = [subject] + [resolve_target(spec, facts, "host") for spec in checkup.port_targets(containers)]
    budget = max(0.5, deadline - time.monotonic())
    jobs = [Job(f"check:{t.spec.input or t.kind}", lambda t=t: assess(facts, t, plugins, live, [], deadline), budget)
            for t in targets]
    outcomes = run_jobs(jobs, deadline)
    assessed: list[Assessment] = []
    runs: list[ProbeRun] = []
    for job in jobs:
        outcome = outcomes[job.name]
        if outcome.status == "ok":
            assessed.append(outcome.value)
            runs += [replace(r, name=f"{job.name} {r.name}") for r in outcome.value.runs if r.status != "ok"]
        else:
            runs.append(ProbeRun(job.name, outcome.status, f"could not check: {outcome.detail}", outcome.ms))

    ports = [_port_line(a) for a in assessed if a.target.kind == "port"]
    if only:
        lines = [checkup.container_line(only), *checkup.network_lines(facts, only), *ports,
                 checkup.listeners_line(only)]
        lines += [checkup.dns_line(only, facts)] if only.running else []
    else:
        lines = [checkup.engine_line(facts), *checkup.sysctl_lines(facts), *checkup.network_lines(facts),
                 *ports, *(checkup.container_line(c) for c in facts.containers)]
        lines += [checkup.dns_line(c, facts) for c in facts.containers if c.running]
    lines.sort(key=lambda line: CHECK_ORDER[line.status])  # stable: problems first, each group in order

    findings: dict[tuple[str, str], Finding] = {}
    for a in assessed:
        for f in a.findings:
            findings.setdefault((f.code, f.explanation), f)
    ranked = sorted(findings.values(), key=lambda f: SEVERITY_RANK[f.severity])
    static_lines = [replace(line, status=_STATUS[a.static]) for a in assessed if a.target.kind == "port"
                    for line in [_port_line(a)]]
    others = [line for line in lines if not line.hop.startswith("port ")]
    static_verdict = _static_verdict(others + static_lines)
    live_verdict = _static_verdict(lines) if any(a.live for a in assessed) else None
    return _report(subject, live_verdict or static_verdict, ranked, lines, runs,
                   {"static": static_verdict, "live": live_verdict})


CHECK_ORDER = {"broken": 0, "unknown": 1, "ok": 2, "skipped": 3}
_STATUS: dict[Verdict, HopStatus] = {"reachable": "ok", "unreachable": "broken", "ambiguous": "unknown",
                                     "undetermined": "unknown"}


def _port_line(a: Assessment) -> Hop:
    route = a.path.route
    where = f"{route.container.name}:{route.container_port}" if route.container else "no container"
    trouble = next((h for h in a.path.hops if h.status in ("broken", "unknown")), None)
    detail = f"→ {where}: {trouble.hop}: {trouble.detail}" if trouble else f"→ {where}: {a.verdict}"
    return Hop(f"port {a.target.spec.input}", _STATUS[a.verdict], detail)


def stop_if_engine_unreachable(outcomes: dict[str, Outcome]) -> None:
    error = outcomes["engine"].error if "engine" in outcomes else None
    if isinstance(error, CannotDiagnose):
        raise error


def _loopback_job(spec: TargetSpec) -> Job | None:
    if spec.port is None or spec.host not in (None, "localhost", "127.0.0.1", "::1"):
        return None
    addresses = _localhost_addresses() if spec.host in (None, "localhost") else (spec.host,)
    return _probe_job("live:target", [(a, spec.port, spec.protocol, True) for a in addresses])


def _localhost_addresses() -> tuple[str, ...]:
    infos = socket.getaddrinfo("localhost", None, proto=socket.IPPROTO_TCP)
    return tuple(dict.fromkeys(str(i[4][0]) for i in infos))


def _probe_job(name: str, probes: list[tuple[str, int, str, bool]]) -> Job:
    def call() -> list[Observation]:
        jobs = [Job(str(i), lambda p=p: probe(p[0], p[1], p[2], LIVE_TIMEOUT, linger=p[3]), LIVE_TIMEOUT + 1)
                for i, p in enumerate(probes)]
        outcomes = run_jobs(jobs, time.monotonic() + LIVE_TIMEOUT + 1)
        return [outcomes[j.name].value for j in jobs if outcomes[j.name].status == "ok"]

    return Job(name, call, LIVE_TIMEOUT + 1.5)


def _observations(outcome: Outcome, runs: list[ProbeRun]) -> list[Observation]:
    observations = outcome.value or []
    detail = "; ".join(str(o) for o in observations) or outcome.detail
    runs.append(ProbeRun(outcome.name, outcome.status, detail, outcome.ms))
    return observations


def _confirm_live(facts: Facts, target: Target, path: Path, early: list[Observation], deadline: float,
                  runs: list[ProbeRun]) -> Verdict | None:
    later: list[Job] = []
    if target.kind == "port" and not early and target.port:
        later.append(_probe_job("live:target", [(a, target.port, target.protocol, True) for a in target.addresses]))
    container, port = path.route.container, path.route.container_port
    direct = [a.ip for a in container.attachments if a.ip] if container and container.running and port else []
    if direct and target.protocol == "tcp" and not container.uses_host_network and facts.platform.kind != "desktop":
        later.append(_probe_job("live:container", [(direct[0], port, "tcp", False)]))
    outcomes = run_jobs(later, deadline) if later else {}
    observations = {"live:target": early, **{n: _observations(o, runs) for n, o in outcomes.items()}}

    for o in observations.get("live:container", [])[:1]:
        hop = path.hop("container-listener")
        if hop and o.outcome in ("open", "refused"):
            path.set(with_status(hop, "ok" if o.outcome == "open" else "broken", str(o)))

    seen = observations["live:target"]
    if not seen:
        return None
    if target.vantage == "external":
        # Sent from this host, the probe skips raw PREROUTING and FORWARD: what the facts
        # say of those hops stands (--probe-external sends from a real outside client).
        unseen = [h for h in path.hops if h.hop in NOT_SEEN_FROM_HOST and h.status in ("broken", "unknown")]
        if unseen:
            runs.append(ProbeRun("live:limits", "ok", "sent from this host, so it cannot confirm "
                                 + ", ".join(h.hop for h in unseen), 0))
            return None
    reached = [o for o in seen if o.outcome in REACHED]
    failed = [o for o in seen if o.outcome in FAILED]
    summary = "; ".join(str(o) for o in seen)
    hop = path.hop("host-listener")
    if path.route.container is not None and not path.route.live:
        # The port is wanted by a container that does not have it: whatever answers is not it.
        if hop:
            path.set(with_status(hop, hop.status, summary))
        return None
    if hop:
        accepted = reached or any(o.outcome == "closed" for o in seen)
        if accepted or failed:
            path.set(with_status(hop, "ok" if accepted else "broken", summary))
    if reached:
        return "reachable"
    return "unreachable" if failed else None


def _confirm_from_container(facts: Facts, target: Target, path: Path, seen: Seen, deadline: float,
                            runs: list[ProbeRun]) -> Verdict | None:
    """Ask the source's DNS server and connect, from inside the source's network namespace."""
    plan = _inside_plan(facts, target, path.route.container_port or target.port)
    if isinstance(plan, str):
        runs.append(ProbeRun("live:inside", "skipped", plan, 0))
        return None
    outcome = run_jobs([Job("live:inside", lambda: run_inside(plan), max(0.5, deadline - time.monotonic()))],
                       deadline)["live:inside"]
    if outcome.status != "ok":
        runs.append(ProbeRun("live:inside", outcome.status, outcome.detail, outcome.ms))
        return None
    seen.answer, seen.connections = outcome.value.answer, outcome.value.observations
    summary = "; ".join(map(str, filter(None, [seen.answer, *seen.connections])))
    runs.append(ProbeRun("live:inside", "ok", summary, outcome.ms))

    if seen.answer:
        hop = path.hop("name-resolution")
        if hop:
            path.set(with_status(hop, "ok" if seen.answer.outcome == "answered" else "broken", str(seen.answer)))
    reached = [o for o in seen.connections if o.outcome in REACHED]
    failed = [o for o in seen.connections if o.outcome in FAILED]
    if seen.connections:
        last = path.hops[-1]
        if reached or any(o.outcome == "refused" for o in failed):
            path.set(with_status(last, "ok" if reached else "broken", "; ".join(map(str, seen.connections))))
        elif not any(h.status == "broken" for h in path.hops):
            # Dropped or unroutable on the way: the first hop between the two ends is to blame.
            middle = next((h for h in path.hops if h.hop in ("network", "bridge", "gateway", "egress")), last)
            path.set(with_status(middle, "broken", "; ".join(map(str, seen.connections))))
    if reached:
        return "reachable"
    if failed or (seen.answer and seen.answer.outcome != "answered"):
        return "unreachable"
    return None


FIREWALL_HOPS = ("raw-prerouting", "nat-dnat", "filter-forward", "filter-input")


def _probe_from_outside(facts: Facts, target: Target, path: Path, runs: list[ProbeRun]) -> Verdict | None:
    """A raw SYN from a temporary client namespace, with a capture on the container's bridge."""
    from doctor.capture import Capture
    from doctor.outside import OutsideClient

    if os.geteuid() != 0:
        runs.append(ProbeRun("live:outside", "skipped", "needs root to build a client namespace", 0))
        return None
    c, port = path.route.container, path.route.container_port
    address = next((a.ip for a in c.attachments if a.ip), None) if c else None
    if target.kind == "port":
        dst, dport = target.addresses[0], target.port
    else:
        dst, dport = address, port
    if dst is None or dport is None:
        runs.append(ProbeRun("live:outside", "skipped", "no address and port to send to", 0))
        return None
    network = next((n for n in facts.networks if address and n.contains(address)), None)
    started = time.monotonic()
    with OutsideClient(facts.routes or ()) as client:
        capture = Capture(network.bridge, address, port) if network and network.bridge and address and port else None
        with capture or contextlib.nullcontext():
            result = run_inside(Plan(client.netns_path, LIVE_TIMEOUT, syn=[(dst, dport)]))
    seen = result.observations[0]
    heard = capture.summary() if capture else "no bridge to capture on"
    runs.append(ProbeRun("live:outside", "ok", f"from {client.address}, a temporary client namespace: {seen}; {heard}",
                         round((time.monotonic() - started) * 1000)))
    note = f"{seen}; {heard}"
    if seen.outcome == "open":
        for hop in path.hops:
            if hop.hop in (*FIREWALL_HOPS, "container-listener") and hop.status in ("broken", "unknown"):
                path.set(with_status(hop, "ok", note))
        return "reachable"
    if capture and capture.reached:
        hop = path.hop("container-listener")
        if hop:
            path.set(with_status(hop, "broken", note))
    elif not any(h.status == "broken" for h in path.hops if h.hop in FIREWALL_HOPS):
        hop = next((h for h in path.hops if h.hop in ("filter-forward", "raw-prerouting")), None)
        if hop:
            path.set(with_status(hop, "broken", note))
    return "unreachable"


def _inside_plan(facts: Facts, target: Target, port: int | None) -> Plan | str:
    """What to send from inside the source, or why nothing is sent."""
    from doctor.peer import netns_owner

    assert target.source is not None and target.resolution is not None
    owner = netns_owner(target.source, facts)
    if not owner.running or not owner.pid:
        return f"{owner.name} is not running: nothing to send from"
    if os.geteuid() != 0:
        return f"needs root to enter {owner.name}'s network namespace"
    r = target.resolution
    query = (r.name, r.nameserver) if r.via in ("none", "resolver") and r.nameserver else None
    connect = [(a, port, target.protocol) for a in target.addresses[:1]] if port else []
    if not query and not connect:
        return "nothing to send: no address and no DNS server to ask" if port else "no port to connect to"
    return Plan(namespaces.of_process(owner.pid), LIVE_TIMEOUT, query, connect, port, target.protocol)


def _static_verdict(hops: list[Hop]) -> Verdict:
    statuses = {h.status for h in hops}
    if "broken" in statuses:
        return "unreachable"
    if "unknown" in statuses:
        return "ambiguous"
    return "reachable" if "ok" in statuses else "undetermined"


def _run_rules(plugins: Plugins, ctx: RuleContext, deadline: float, runs: list[ProbeRun]) -> list[Finding]:
    def job(check: Callable[[RuleContext], object], name: str) -> Job:
        return Job(f"rule:{name}", lambda: list(check(ctx)), RULE_TIMEOUT)  # type: ignore[call-overload]

    rules = [r for r in plugins.rules if ctx.target.client in r.clients]
    outcomes = run_jobs([job(r.check, r.name) for r in rules], max(deadline, time.monotonic() + 0.5))
    findings: list[Finding] = []
    for name, outcome in outcomes.items():
        if outcome.status == "ok":
            findings.extend(outcome.value)
        else:
            runs.append(ProbeRun(name, outcome.status, f"could not check: {outcome.detail}", outcome.ms))
    return findings


def _platform(facts: Facts) -> str:
    host = facts.host
    parts = [f"Linux {host.kernel}" if host else platform.platform()]
    if facts.engine and facts.engine.os:
        parts.append(facts.engine.os)
    if facts.platform.kind != "linux":
        parts.append(facts.platform.detail)
    return ", ".join(parts)
