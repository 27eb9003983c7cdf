"""One diagnosis: probes → snapshot → facts → path → live checks → rules → report."""

from __future__ import annotations

import os
import pathlib
import time
from collections.abc import Mapping, Sequence

from msgspec import Struct
from msgspec.structs import replace

from doctor import __version__
from doctor.bounded import describe_error
from doctor.collect.collector import ENGINE, collect, stop_if_engine_unreachable, widen
from doctor.collect.engine_api import Endpoint, resolve_endpoint
from doctor.collect.scope import Question, involved
from doctor.diagnosis import checkup
from doctor.errors import CannotDiagnose
from doctor.facts.build import build_facts
from doctor.facts.model import Facts, is_loopback
from doctor.live import confirm, counters
from doctor.live.connect import Connect, Observation
from doctor.path.build import path_for
from doctor.path.hops import NOT_SEEN_FROM_HOST, HopName, NetworkPath
from doctor.path.target import PLACES, Target, TargetSpec, Vantage, host_target, resolve_target
from doctor.plugin.manager import Plugins, load_plugins
from doctor.plugin.rule import RuleContext
from doctor.plugin.runner import run_rules
from doctor.report.document import (
    SEVERITY_RANK,
    Evidence,
    Finding,
    Hop,
    HopStatus,
    ProbeRun,
    Report,
    Verdict,
    unread_runs,
)
from doctor.snapshot.artifacts import CONTAINER_LIST
from doctor.snapshot.store import Snapshot

COUNTERS = "iptables-save -c / nft counters, before and after"


class Options(Struct, frozen=True):
    live: bool = True
    timeout: float = 10.0  # the whole run
    vantage: Vantage | None = None
    client: str | None = None  # --client ADDRESS
    save_snapshot: pathlib.Path | None = None  # keep what the probes read, to replay it
    #: send from a temporary client namespace (changes the host briefly)
    probe_external: bool = False
    #: the engine to ask; None: as the environment says (resolve_endpoint)
    endpoint: Endpoint | None = None


class Assessment(Struct):
    """One target judged: its path, the live verdict if probes were sent, the findings."""

    target: Target
    path: NetworkPath
    static: Verdict
    live: Verdict | None
    findings: list[Finding]
    runs: list[ProbeRun]

    @property
    def verdict(self) -> Verdict:
        return self.live or self.static


def diagnose(
    spec: TargetSpec | None,
    options: Options,
    snapshot: Snapshot | None = None,
    plugins: Plugins | None = None,
) -> Report:
    """Diagnose ``spec``; with no target, check up the whole host."""
    started = time.monotonic()
    deadline = started + options.timeout
    plugins = plugins or load_plugins()
    runs: list[ProbeRun] = []
    early: list[Observation] = []
    question = _question(spec, options)
    replaying = snapshot is not None
    endpoint = options.endpoint or (None if replaying else resolve_endpoint())
    if snapshot is None:
        # Loopback targets need no facts to be probed: connect while the probes read.
        early_job = confirm.loopback_job(spec) if options.live and spec else None
        assert endpoint is not None
        snapshot, outcomes = collect(
            plugins.probes, deadline, endpoint, [early_job] if early_job else [], question=question
        )
        stop_if_engine_unreachable(outcomes)
        if options.save_snapshot:  # before anything can fail: a bug report needs it most then
            snapshot.write(options.save_snapshot)
        if early_job:
            early, early_run = confirm.observed(confirm.settled(outcomes[early_job.name], deadline))
            runs.append(early_run)
        live_skip = None if options.live else "--no-live: nothing sent"
    else:
        live_skip = "replaying a snapshot: nothing sent"
    if live_skip:
        runs.append(ProbeRun("live", "skipped", live_skip, 0))

    facts = _facts(snapshot)
    target = None if spec is None else resolve_target(spec, facts, options.vantage, options.client)
    wider = _needs_every_container(facts, target) if target else None
    unwidened = None
    if wider and not replaying:
        assert endpoint is not None
        engine = widen(snapshot, plugins.probes, deadline, endpoint, wider)[ENGINE]
        if engine.status != "ok":
            unwidened = f"{wider}, but reading them failed: {engine.detail}"
        facts = _facts(snapshot)
        assert spec is not None
        target = resolve_target(spec, facts, options.vantage, options.client)
        if options.save_snapshot:  # read again, and more (the manifest lists what is current)
            snapshot.write(options.save_snapshot)
    runs += _scope_runs(facts, snapshot, question, wider, unwidened, replaying)
    live = live_skip is None
    if target is None:
        report = _checkup(facts, plugins, live, deadline, host_target(facts))
    else:
        if target.kind == "container" and target.port is None and target.source is None:
            report = _checkup(facts, plugins, live, deadline, target)
        else:
            outside = options.probe_external and live
            assessed = assess(facts, target, plugins, live, early, deadline, outside, count=True)
            report = _report(
                target,
                assessed.verdict,
                assessed.findings,
                assessed.path.hops,
                assessed.runs,
                {"static": assessed.static, "live": assessed.live},
            )
    report.probes[:0] = [
        *plugins.failures,
        *snapshot.probes,
        *unread_runs(facts.unparsable, facts.unchecked),
        *runs,
    ]
    assert facts.engine is not None
    report.doctor = {
        "version": __version__,
        "engine": f"{facts.engine.version} (API {facts.engine.api_version}) at "
        f"{facts.engine.endpoint}",
        "platform": _platform(facts),
        **report.doctor,
        "ms": round((time.monotonic() - started) * 1000),
    }
    return report


def _facts(snapshot: Snapshot) -> Facts:
    facts = build_facts(snapshot)
    if facts.engine is None:
        raise CannotDiagnose(
            f"no Engine data: {facts.unreadable.get('engine', 'the engine probe did not run')}"
        )
    return facts


def _question(spec: TargetSpec | None, options: Options) -> Question | None:
    """What to read for ``spec``: None (every container) for a checkup, of the host or of one
    container (no port), and for a --client flow."""
    if spec is None or spec.port is None or options.client:
        return None
    source = options.vantage if options.vantage not in (None, *PLACES) else None
    return Question(spec.input, spec.host, spec.port, source)


def _needs_every_container(facts: Facts, target: Target) -> str | None:
    """Why the path of ``target`` calls for every container when only some were read."""
    if facts.every_container_read:
        return None
    path = path_for(facts, target)
    if target.kind == "port" and path.route.container is None:
        return f"nothing publishes {target.spec.input}: who serves it unpublished is the question"
    listener = path.hop(HopName.CONTAINER_LISTENER)
    if target.source and listener is not None and listener.status == "broken":
        return "the destination does not listen there: who does is the question"
    return None


def _scope_runs(
    facts: Facts,
    snapshot: Snapshot,
    question: Question | None,
    wider: str | None,
    unwidened: str | None,
    replaying: bool,
) -> list[ProbeRun]:
    """What was read in full, when not every container was: on a replay, with what this
    question needs that the snapshot's run did not read (``wider``: all of them, why); live,
    with why reading every container failed (``unwidened``). A live run read what its own
    question involves: its list is not decoded again (a thousand summaries cost half of a
    diagnosis)."""
    scope = facts.scope
    if scope is None or scope.complete:
        return []
    if unwidened:
        return [ProbeRun("scope", "failed", f"{scope.detail()}; {unwidened}", 0)]
    if not replaying:
        return [ProbeRun("scope", "ok", scope.detail(), 0)]
    missing = wider
    listing = snapshot.json(CONTAINER_LIST)
    if not missing and isinstance(listing, list):
        wanted = involved(question, listing)
        unread = sorted(set(wanted.read) - set(scope.read))
        if unread:
            missing = f"{len(unread)} more containers ({wanted.why})"
    if missing:
        detail = f"{scope.detail()}; this question also needs {missing}, not in the snapshot"
        return [ProbeRun("scope", "skipped", detail, 0)]
    return [ProbeRun("scope", "ok", scope.detail(), 0)]


def _report(
    target: Target,
    verdict: Verdict,
    findings: list[Finding],
    path: Sequence[Hop],
    runs: list[ProbeRun],
    verdicts: dict[str, Verdict | None],
) -> Report:
    return Report(
        target=target.as_report(),
        vantage=target.vantage,
        verdict=verdict,
        findings=findings,
        path=list(path),
        probes=runs,
        doctor={"verdicts": verdicts},
    )


def assess(
    facts: Facts,
    target: Target,
    plugins: Plugins,
    live: bool,
    early: list[Observation],
    deadline: float,
    from_outside: bool = False,
    count: bool = False,
) -> Assessment:
    """Path, live confirmation (when allowed) and rules for one target; ``count``: read the
    deciding firewall rules' counters around the live probe (one target at a time only: probes
    of targets checked side by side would move each other's counters)."""
    path = path_for(facts, target)
    static = _static_verdict(path.hops)
    # Sent from this host, the probe passes none of the hops an outside client's packet would.
    from_here = not target.source and not (from_outside and target.vantage == "external")
    unseen = NOT_SEEN_FROM_HOST if from_here else ()
    watched = counters.watch(path.decisions, unseen) if live and count and os.geteuid() == 0 else []
    started = time.monotonic()
    before = counters.read(watched) if watched else {}
    confirmed = _confirm(facts, target, path, live, early, deadline, from_outside)
    runs = list(confirmed.runs)
    moved: list[counters.Counted] = []
    if watched and any(r.name.startswith("live") and r.status != "skipped" for r in runs):
        moved = counters.counted(watched, before, counters.read(watched))
        ms = round((time.monotonic() - started) * 1000)
        runs.append(ProbeRun("live:counters", "ok", "; ".join(map(str, moved)), ms))
    return _judged(facts, target, plugins, static, confirmed, runs, deadline, moved)


def _judged(
    facts: Facts,
    target: Target,
    plugins: Plugins,
    static: Verdict,
    confirmed: confirm.Confirmation,
    runs: list[ProbeRun],
    deadline: float,
    moved: Sequence[counters.Counted] = (),
) -> Assessment:
    """The rules on ``target``'s path as the live probes left it; findings ranked by the hop
    they explain (broken ones first), then severity and confidence."""
    path, verdict, seen = confirmed.path, confirmed.verdict, confirmed.seen
    rules = [r for r in plugins.rules if target.client in r.clients]
    findings, rule_runs = run_rules(
        rules, plugins.codes, RuleContext(facts, target, path, seen), deadline
    )
    runs += rule_runs
    findings = [_with_counters(f, moved) for f in findings]
    findings.sort(
        key=lambda f: (
            (path.hop(f.hop) or Hop(f.hop, "unknown", "")).status != "broken",
            path.rank(f.hop),
            SEVERITY_RANK[f.severity],
            -f.confidence,
        )
    )
    return Assessment(target, path, static, verdict, findings, runs)


def _confirm(
    facts: Facts,
    target: Target,
    path: NetworkPath,
    live: bool,
    early: list[Observation],
    deadline: float,
    from_outside: bool,
    made: Mapping[Connect, Observation] | None = None,
) -> confirm.Confirmation:
    """The live probe that fits the target, or none; ``made``: the connects from this host
    already made (a checkup makes every target's at once)."""
    if not live or target.kind == "host":
        return confirm.Confirmation(path, None)
    if target.source:
        return confirm.from_container(facts, target, path, deadline)
    if from_outside and target.vantage == "external":
        return confirm.from_outside(facts, target, path)
    if elsewhere := _not_this_hosts(facts, target):
        return confirm.Confirmation(path, None, (ProbeRun("live", "skipped", elsewhere, 0),))
    return confirm.from_host(facts, target, path, early, deadline, made)


def _sends_from_host(facts: Facts, target: Target, from_outside: bool) -> bool:
    """Whether the live probe of ``target`` is connects from this host (:func:`_confirm`)."""
    return not (
        target.kind == "host"
        or target.source
        or (from_outside and target.vantage == "external")
        or _not_this_hosts(facts, target)
    )


def _with_counters(found: Finding, moved: Sequence[counters.Counted]) -> Finding:
    """The finding with the counters of the rule at its hop beside its evidence."""
    at_hop = [
        Evidence("during the probe", str(c), COUNTERS) for c in moved if c.watched.hop == found.hop
    ]
    return replace(found, evidence=(*found.evidence, *at_hop)) if at_hop else found


def _not_this_hosts(facts: Facts, target: Target) -> str | None:
    """Why a probe from this host would not be the client's connection, if it would not: a
    flow it only forwards, or an address it does not have."""
    if target.kind == "forward":
        return "a flow this host forwards: it is not the client; nothing sent"
    foreign = [a for a in target.addresses if not (is_loopback(a) or facts.is_host_address(a))]
    if target.kind == "port" and foreign:
        return f"{foreign[0]} is not an address of this host; nothing sent"
    return None


def _checkup(
    facts: Facts, plugins: Plugins, live: bool, deadline: float, subject: Target
) -> Report:
    """The host (subject of kind "host") or one container: one line per thing checked, problems first."""
    only = subject.container
    containers = [only] if only else list(facts.containers)
    targets = [subject] + [
        resolve_target(spec, facts, "host") for spec in checkup.port_targets(containers)
    ]
    # Shared work first, then only the waiting side by side: every path from the same facts
    # (and firewall indexes), every connect from this host at once (each distinct one once),
    # then each target's live verdict and rules in turn. Rules and connects of a hundred ports
    # in threads of their own kept the connects waiting for the interpreter's lock.
    assessed: list[Assessment] = []
    runs: list[ProbeRun] = []
    paths: dict[str, tuple[Target, NetworkPath]] = {}
    for t in targets:
        name = f"check:{t.spec.input or t.kind}"
        try:
            paths[name] = (t, path_for(facts, t))
        except Exception as exc:  # one port's trouble is a line of the report, not the end
            runs.append(ProbeRun(name, "failed", f"could not check: {describe_error(exc)}", 0))
    connects = [
        c
        for t, path in paths.values()
        if live and _sends_from_host(facts, t, False)
        for wanted in confirm.host_connects(facts, t, path, []).values()
        for c in wanted
    ]
    made = confirm.connect_all(connects, deadline)
    judge_by = max(deadline, time.monotonic() + 0.5)  # rules get half a second at least, once
    for name, (t, path) in paths.items():
        if time.monotonic() >= judge_by:
            runs.append(ProbeRun(name, "timeout", "could not check: no time left", 0))
            continue
        try:
            confirmed = _confirm(facts, t, path, live, [], deadline, False, made)
            static = _static_verdict(path.hops)
            judged = _judged(facts, t, plugins, static, confirmed, list(confirmed.runs), judge_by)
        except Exception as exc:
            runs.append(ProbeRun(name, "failed", f"could not check: {describe_error(exc)}", 0))
            continue
        assessed.append(judged)
        runs += [replace(r, name=f"{name} {r.name}") for r in judged.runs if r.status != "ok"]

    ports = [_port_line(a) for a in assessed if a.target.kind == "port"]
    if only:
        lines = [
            checkup.container_line(only),
            *checkup.network_lines(facts, only),
            *ports,
            checkup.listeners_line(only),
        ]
        lines += [checkup.dns_line(only, facts)] if only.running else []
    else:
        lines = [
            checkup.engine_line(facts),
            *checkup.sysctl_lines(facts),
            *checkup.network_lines(facts),
            *checkup.swarm_lines(facts),
            *ports,
            *(checkup.container_line(c) for c in facts.containers),
        ]
        lines += [checkup.dns_line(c, facts) for c in facts.containers if c.running]
    lines.sort(
        key=lambda line: CHECK_ORDER[line.status]
    )  # stable: problems first, each group in order

    findings: dict[tuple[str, str], Finding] = {}
    for a in assessed:
        for f in a.findings:
            findings.setdefault((f.code, f.explanation), f)
    ranked = sorted(findings.values(), key=lambda f: SEVERITY_RANK[f.severity])
    static_lines = [
        replace(line, status=_STATUS[a.static])
        for a in assessed
        if a.target.kind == "port"
        for line in [_port_line(a)]
    ]
    others = [line for line in lines if not line.hop.startswith("port ")]
    static_verdict = _static_verdict(others + static_lines)
    live_verdict = _static_verdict(lines) if any(a.live for a in assessed) else None
    return _report(
        subject,
        live_verdict or static_verdict,
        ranked,
        lines,
        runs,
        {"static": static_verdict, "live": live_verdict},
    )


CHECK_ORDER = {"broken": 0, "unknown": 1, "ok": 2, "skipped": 3}
_STATUS: dict[Verdict, HopStatus] = {
    "reachable": "ok",
    "unreachable": "broken",
    "ambiguous": "unknown",
    "undetermined": "unknown",
}


def _port_line(a: Assessment) -> Hop:
    route = a.path.route
    where = f"{route.container.name}:{route.container_port}" if route.container else "no container"
    trouble = next((h for h in a.path.hops if h.status in ("broken", "unknown")), None)
    detail = f"→ {where}: {trouble.hop}: {trouble.detail}" if trouble else f"→ {where}: {a.verdict}"
    return Hop(f"port {a.target.spec.input}", _STATUS[a.verdict], detail)


def _static_verdict(hops: Sequence[Hop]) -> Verdict:
    statuses = {h.status for h in hops}
    if "broken" in statuses:
        return "unreachable"
    if "unknown" in statuses:
        return "ambiguous"
    return "reachable" if "ok" in statuses else "undetermined"


def _platform(facts: Facts) -> str:
    import platform  # only a snapshot without host facts needs it

    host = facts.host
    parts = [f"Linux {host.kernel}" if host else platform.platform()]
    if facts.engine and facts.engine.os:
        parts.append(facts.engine.os)
    if facts.platform.kind != "linux":
        parts.append(facts.platform.detail)
    return ", ".join(parts)
