"""Live confirmation: real packets that confirm or contradict what the facts say of a path.

Three senders, by where the client is:
- this host (loopback targets, a container's own address): TCP/UDP connects, some sent
  while the probes still read (:func:`loopback_job`);
- inside a source container's network namespace (``--from CONTAINER``): its DNS server
  asked by hand, then a connect, from a short-lived child (:mod:`doctor.live.inside`);
- a temporary outside client (``--probe-external``): a raw SYN, with a capture on the
  container's bridge.
Each turns what it saw into hop statuses (with the facts' verdict kept beside) and a
live verdict; none of it enters the snapshot.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time

from doctor.collect import namespaces
from doctor.facts.model import Facts
from doctor.live.connect import FAILED, REACHED, Observation, Seen, probe
from doctor.live.inside import Plan
from doctor.live.inside import run as run_inside
from doctor.path.host import Path, with_status
from doctor.path.target import Target, TargetSpec
from doctor.plugin.runner import Job, Outcome, run_jobs
from doctor.report.document import ProbeRun, Verdict

LIVE_TIMEOUT = 1.0  # per connection attempt
#: Hops a probe sent from this host never passes: the facts' verdict on them stands.
NOT_SEEN_FROM_HOST = ("raw-prerouting", "filter-forward", "filter-input")
FIREWALL_HOPS = ("raw-prerouting", "nat-dnat", "filter-forward", "filter-input")


def loopback_job(spec: TargetSpec) -> Job | None:
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


def recorded(outcome: Outcome, runs: list[ProbeRun]) -> list[Observation]:
    """A probe job's observations, its run recorded in ``runs``."""
    observations = outcome.value or []
    detail = "; ".join(str(o) for o in observations) or outcome.detail
    runs.append(ProbeRun(outcome.name, outcome.status, detail, outcome.ms))
    return observations


def from_host(facts: Facts, target: Target, path: Path, early: list[Observation], deadline: float,
                  runs: list[ProbeRun]) -> Verdict | None:
    later: list[Job] = []
    if target.kind == "port" and not early and target.port:
        later.append(_probe_job("live:target", [(a, target.port, target.protocol, True) for a in target.addresses]))
    container, port = path.route.container, path.route.container_port
    direct = [a.ip for a in container.attachments if a.ip] if container and container.running and port else []
    if direct and target.protocol == "tcp" and not container.uses_host_network and facts.platform.kind != "desktop":
        later.append(_probe_job("live:container", [(direct[0], port, "tcp", False)]))
    outcomes = run_jobs(later, deadline) if later else {}
    observations = {"live:target": early, **{n: recorded(o, runs) for n, o in outcomes.items()}}

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


def from_container(facts: Facts, target: Target, path: Path, seen: Seen, deadline: float,
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


def from_outside(facts: Facts, target: Target, path: Path, runs: list[ProbeRun]) -> Verdict | None:
    """A raw SYN from a temporary client namespace, with a capture on the container's bridge."""
    from doctor.live.capture import Capture
    from doctor.live.outside import OutsideClient

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
    from doctor.path.names import netns_owner

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
