"""Live confirmation: real packets that confirm or contradict what the facts say of a path.

Three senders, by where the client is:
- this host (loopback targets, a container's own address): TCP/UDP connects, some sent
  while the probes still read (:func:`loopback_job`);
- inside a source container's network namespace (``--from CONTAINER``): its DNS server
  asked by hand, then a connect, from a short-lived child (:mod:`doctor.live.inside`);
- a temporary outside client (``--probe-external``): a raw SYN, with a capture on the
  container's bridge.
Each returns a :class:`Confirmation`: the path as the probes saw it (hop statuses, the facts'
verdict kept beside), a live verdict, and the runs; none of it enters the snapshot.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterable, Mapping

from msgspec import Struct
from msgspec.structs import replace

from doctor.bounded import Job, JobResult, run_jobs
from doctor.collect import namespaces
from doctor.facts.model import Facts, is_ip, is_loopback
from doctor.live.connect import (
    FAILED,
    LINGER,
    REACHED,
    Connect,
    DnsAnswer,
    Observation,
    Seen,
    probe_all,
)
from doctor.live.inside import Plan
from doctor.live.inside import run as run_inside
from doctor.path.hops import (
    FILTERING_HOPS,
    FIREWALL_HOPS,
    NOT_SEEN_FROM_HOST,
    HopName,
    NetworkPath,
    with_status,
)
from doctor.path.target import Target, TargetSpec
from doctor.report.document import HopStatus, ProbeRun, Verdict

LIVE_TIMEOUT = 1.0  # per connection attempt
#: Where the packets of a --from probe dropped on the way are blamed, the first of these on the
#: path: between the two ends (out of the host, the way out).
BETWEEN_THE_ENDS = (HopName.NETWORK, HopName.EGRESS, HopName.BRIDGE, HopName.GATEWAY)


class Confirmation(Struct, frozen=True):
    path: NetworkPath  # the path with what the probes saw at its hops
    verdict: Verdict | None  # what the probes say of the target; None: they could not tell
    runs: tuple[ProbeRun, ...] = ()
    seen: Seen | None = None  # for the rules: the DNS answer and connections of a --from probe


def loopback_job(spec: TargetSpec) -> Job | None:
    if spec.port is None or spec.host not in (None, "localhost", "127.0.0.1", "::1"):
        return None
    addresses = _localhost_addresses() if spec.host in (None, "localhost") else (spec.host,)
    return _probe_job("live:target", [(a, spec.port, spec.protocol, True) for a in addresses])


def _localhost_addresses() -> tuple[str, ...]:
    infos = socket.getaddrinfo("localhost", None, proto=socket.IPPROTO_TCP)
    return tuple(dict.fromkeys(str(i[4][0]) for i in infos))


def _probe_job(name: str, probes: list[Connect]) -> Job:
    def call() -> list[Observation]:
        seen = connect_all(probes, time.monotonic() + LIVE_TIMEOUT + 1)
        return [seen[c] for c in probes if c in seen]

    return Job(name, call, LIVE_TIMEOUT + 1.5)


def connect_all(connects: Iterable[Connect], deadline: float) -> dict[Connect, Observation]:
    """Every distinct connect side by side, all by ``deadline``."""
    unique = list(dict.fromkeys(connects))
    timeout = max(0.05, min(LIVE_TIMEOUT, deadline - time.monotonic() - LINGER))
    return dict(zip(unique, probe_all(unique, timeout), strict=True))


#: what a connect to a container restarting meanwhile also gets (its docker-proxy resets the
#: connection, or nothing listens yet), and what a second connect settles in a millisecond
AT_ONCE = ("closed", "refused")


def settled(result: JobResult, deadline: float) -> JobResult:
    """The early connects (:func:`loopback_job`), each that failed at once made again once the
    probes have read: what the facts say is then what the connects saw, even of a container
    that restarted while they read. A port really closed says so twice, a millisecond apart."""
    observations: list[Observation] = result.value or []
    again = [(o.address, o.port, o.protocol, True) for o in observations if o.outcome in AT_ONCE]
    if not again:
        return result
    made = connect_all(again, deadline)
    return replace(
        result, value=[made.get((o.address, o.port, o.protocol, True), o) for o in observations]
    )


def observed(result: JobResult) -> tuple[list[Observation], ProbeRun]:
    """A probe job's observations, and its run for the report."""
    observations = result.value or []
    detail = "; ".join(str(o) for o in observations) or result.detail
    return observations, ProbeRun(result.name, result.status, detail, result.ms)


def host_connects(
    facts: Facts, target: Target, path: NetworkPath, early: list[Observation]
) -> dict[str, list[Connect]]:
    """The connects :func:`from_host` makes, by run: to the target (unless ``early`` has
    them) and to the container's own address, which tells the listener apart from the way in."""
    wanted: dict[str, list[Connect]] = {}
    if target.kind == "port" and not early and target.port:
        wanted["live:target"] = [(a, target.port, target.protocol, True) for a in target.addresses]
    direct = _direct_connect(facts, target, path)
    if direct:
        wanted["live:container"] = [direct]
    return wanted


def from_host(
    facts: Facts,
    target: Target,
    path: NetworkPath,
    early: list[Observation],
    deadline: float,
    made: Mapping[Connect, Observation] | None = None,
) -> Confirmation:
    """Connects from this host (:func:`host_connects`), or what ``made`` saw of them: a
    checkup makes every target's connects at once (:func:`connect_all`)."""
    wanted = host_connects(facts, target, path, early)
    if made is None:
        made = connect_all((c for connects in wanted.values() for c in connects), deadline)
    observations: dict[str, list[Observation]] = {"live:target": early}
    runs: list[ProbeRun] = []
    for name, connects in wanted.items():
        seen = observations[name] = [made[c] for c in connects if c in made]
        if seen:  # a connect that could not be made at all is left out, as before
            detail, ms = "; ".join(str(o) for o in seen), max(o.ms for o in seen)
            runs.append(ProbeRun(name, "ok", detail, ms))
        else:
            late = f"no connect made within {LIVE_TIMEOUT + 1:.1f} s"
            runs.append(ProbeRun(name, "timeout", late, round((LIVE_TIMEOUT + 1) * 1000)))
    path = _listener_seen(path, observations.get("live:container", []))
    seen = observations["live:target"]
    if not seen:
        return Confirmation(path, None, tuple(runs))
    if target.vantage == "external":
        # Sent from this host, the probe skips raw PREROUTING, FORWARD and the way back to the
        # client: what the facts say of those hops stands (--probe-external sends from a real
        # outside client).
        # Nor is it the --client's own flow: a tracked flow of that client's that bypasses the
        # DNAT (STALE_CONNTRACK) stands.
        unseen = [
            h
            for h in path.hops
            if (h.hop in NOT_SEEN_FROM_HOST and h.status in ("broken", "unknown"))
            or (target.client_address and h.hop == HopName.NAT_DNAT and h.status == "broken")
        ]
        if unseen:
            runs.append(
                ProbeRun(
                    "live:limits",
                    "ok",
                    "sent from this host, so it cannot confirm " + ", ".join(h.hop for h in unseen),
                    0,
                )
            )
            return Confirmation(path, None, tuple(runs))
    path, verdict = _target_seen(path, seen, first_tried(facts, target))
    return Confirmation(path, verdict, tuple(runs))


def first_tried(facts: Facts, target: Target) -> str | None:
    """The address a client tries first for a name with both loopbacks (localhost), when that
    is not simply the first: getaddrinfo sorts ::1 before 127.0.0.1 (RFC 6724) where the host
    has ::1, and clients that do not fall back (Node.js 17+, Java, many HTTP libraries) stay
    with it."""
    addresses = set(target.addresses)
    if is_ip(target.spec.host) or not {"::1", "127.0.0.1"} <= addresses:
        return None  # an address given is the one tried
    return "::1" if facts.host is not None and "::1" in facts.host.addresses else None


def _direct_connect(facts: Facts, target: Target, path: NetworkPath) -> Connect | None:
    """A connect to the container's own address, where the host can route to it."""
    container, port = path.route.container, path.route.container_port
    if (
        container is None
        or not container.running
        or not port
        or target.protocol != "tcp"
        or container.uses_host_network
        or facts.platform.kind == "desktop"
        or container.ipv4 is None
    ):
        return None
    return (container.ipv4, port, "tcp", False)


def _listener_seen(path: NetworkPath, direct: list[Observation]) -> NetworkPath:
    hop = path.hop(HopName.CONTAINER_LISTENER)
    for o in direct[:1]:
        if hop and o.outcome in ("open", "refused"):
            path = path.with_hop(
                with_status(hop, "ok" if o.outcome == "open" else "broken", str(o))
            )
    return path


def _target_seen(
    path: NetworkPath, seen: list[Observation], first: str | None = None
) -> tuple[NetworkPath, Verdict | None]:
    """The host-listener hop and the verdict from the connects to the target's addresses; with
    ``first``, the verdict follows the address clients try first (see first_tried)."""
    reached = [o for o in seen if o.outcome in REACHED]
    failed = [o for o in seen if o.outcome in FAILED]
    summary = "; ".join(str(o) for o in seen)
    hop = path.hop(HopName.HOST_LISTENER)
    lead = next((o for o in seen if o.address == first), None)
    if hop and reached and lead is not None and lead.outcome in FAILED:
        works = ", ".join(o.address for o in reached)
        summary += (
            f" — clients try {first} first and fail; only those that fall back to {works} "
            "get through"
        )
        return path.with_hop(with_status(hop, "broken", summary)), "unreachable"
    if path.route.container is not None and not path.route.live:
        # The port is wanted by a container that does not have it: whatever answers is not it.
        return (path.with_hop(with_status(hop, hop.status, summary)) if hop else path), None
    accepted = bool(reached) or any(o.outcome == "closed" for o in seen)
    if hop and (accepted or failed):
        path = path.with_hop(with_status(hop, "ok" if accepted else "broken", summary))
    if reached:
        return path, "reachable"
    return path, "unreachable" if failed else None


def from_container(
    facts: Facts, target: Target, path: NetworkPath, deadline: float
) -> Confirmation:
    """Ask the source's DNS server and connect, from inside the source's network namespace."""
    plan = _inside_plan(facts, target, path.route.container_port or target.port)
    if isinstance(plan, str):
        return Confirmation(path, None, (ProbeRun("live:inside", "skipped", plan, 0),))
    plan = replace(plan, until=deadline)
    result = run_jobs(
        [Job("live:inside", lambda: run_inside(plan), max(0.5, deadline - time.monotonic()))],
        deadline,
    )["live:inside"]
    if result.status != "ok":
        return Confirmation(
            path, None, (ProbeRun("live:inside", result.status, result.detail, result.ms),)
        )
    seen = Seen(result.value.answer, result.value.observations, mtu=result.value.mtu)
    summary = "; ".join(map(str, filter(None, [seen.answer, *seen.connections, seen.mtu])))
    run = ProbeRun("live:inside", "ok", summary, result.ms)

    elsewhere = seen.answer is not None and _searched_elsewhere(target, seen.answer)
    if seen.answer and (hop := path.hop(HopName.NAME_RESOLUTION)):
        # A search domain's answer counts as broken: the application goes where it points.
        answered = seen.answer.outcome == "answered"
        status: HopStatus = "ok" if answered and not elsewhere else "broken"
        path = path.with_hop(with_status(hop, status, str(seen.answer)))
    if elsewhere:  # whatever answers there, it is not what the name means
        return Confirmation(path, "unreachable", (run,), seen)
    reached = [o for o in seen.connections if o.outcome in REACHED]
    failed = [o for o in seen.connections if o.outcome in FAILED]
    runs = [run]
    outside = path.destination.kind == "external"
    if seen.connections:
        connections = "; ".join(map(str, seen.connections))
        # Out of the host, an answer (or a refusal) speaks of the way out; else of the far end.
        last = path.hop(HopName.EGRESS) if outside else None
        last = last or path.hops[-1]
        refused = any(o.outcome == "refused" for o in failed)
        # A firewall hop the facts say rejects explains a refusal: the far end never saw it.
        explained = any(h.status == "broken" and h.hop in FILTERING_HOPS for h in path.hops)
        if reached or (refused and not explained):
            path = path.with_hop(with_status(last, "ok" if reached else "broken", connections))
        elif not any(h.status == "broken" for h in path.hops):
            # Dropped or unroutable on the way, and the facts cannot say where.
            if outside and (asked := _asked_from_host(seen.connections[0], deadline)):
                seen = replace(seen, host_reply=asked)
                runs.append(ProbeRun("live:host-reply", "ok", f"from this host: {asked}", asked.ms))
                path = _reply_seen(path, asked, connections)
            else:  # the first hop between the two ends is to blame
                middle = next((h for name in BETWEEN_THE_ENDS if (h := path.hop(name))), last)
                path = path.with_hop(with_status(middle, "broken", connections))
    verdict: Verdict | None = None
    if seen.mtu and seen.mtu.blackhole and (egress := path.hop(HopName.EGRESS)):
        # It connects, but what is larger than the path carries vanishes: TLS, uploads hang.
        path = path.with_hop(with_status(egress, "broken", str(seen.mtu)))
        return Confirmation(path, "unreachable", tuple(runs), seen)
    if reached:
        verdict = "reachable"
    elif failed or (seen.answer and seen.answer.outcome != "answered"):
        verdict = "unreachable"
    return Confirmation(path, verdict, tuple(runs), seen)


def _searched_elsewhere(target: Target, answer: DnsAnswer) -> bool:
    """A search domain's expansion answered first, with none of the addresses the name itself
    means to the engine: the application connects somewhere else."""
    r = target.resolution
    if r is None or answer.outcome != "answered" or answer.name == r.name:
        return False
    if r.addresses:
        return not set(answer.addresses) & set(r.addresses)
    return "." in r.name  # a name written in full, turned into another by a search domain


def _asked_from_host(attempt: Observation, deadline: float) -> Observation | None:
    """The source's attempt out went unanswered: the same SYN sent from this host itself, raw,
    to see whether and how the far end answers the host (root, IPv4; within the deadline)."""
    if (
        os.geteuid() != 0
        or attempt.protocol != "tcp"
        or attempt.outcome != "timeout"
        or ":" in attempt.address
    ):
        return None
    plan = Plan(
        namespaces.of_process(os.getpid()), LIVE_TIMEOUT, syn=[(attempt.address, attempt.port)]
    )
    budget = max(0.5, deadline - time.monotonic())
    result = run_jobs([Job("live:host-reply", lambda: run_inside(plan), budget)], deadline)
    answer = result["live:host-reply"]
    if answer.status != "ok" or not answer.value.observations:
        return None  # it could not be asked: the static path stands
    observation: Observation = answer.value.observations[0]
    return observation


def _reply_seen(path: NetworkPath, asked: Observation, connections: str) -> NetworkPath:
    """Where the source's unanswered attempt died, by how the far end answered the host."""
    back, out = path.hop(HopName.RETURN_PATH), path.hop(HopName.EGRESS)
    if asked.outcome == "open" and asked.ttl is not None and asked.ttl <= 1 and back:
        return path.with_hop(
            with_status(
                back,
                "broken",
                f"{connections}; from this host: {asked}: "
                "a reply with TTL 1 dies at the forwarding hop",
            )
        )
    if out is None:
        return path
    return path.with_hop(with_status(out, "broken", f"{connections}; from this host: {asked}"))


def from_outside(facts: Facts, target: Target, path: NetworkPath) -> Confirmation:
    """A raw SYN from a temporary client namespace, with a capture on the container's bridge."""
    from doctor.live.capture import Capture
    from doctor.live.outside import TemporaryClient

    if os.geteuid() != 0:
        return Confirmation(
            path,
            None,
            (ProbeRun("live:outside", "skipped", "needs root to build a client namespace", 0),),
        )
    c, port = path.route.container, path.route.container_port
    address = c.ipv4 if c else None
    dst, dport = (target.addresses[0], target.port) if target.kind == "port" else (address, port)
    if dst is None or dport is None:
        return Confirmation(
            path, None, (ProbeRun("live:outside", "skipped", "no address and port to send to", 0),)
        )
    network = next((n for n in facts.networks if address and n.contains(address)), None)
    started = time.monotonic()
    with TemporaryClient(facts.routes or ()) as client:
        capture = (
            Capture(network.bridge, address, port)
            if network and network.bridge and address and port
            else None
        )
        with capture or contextlib.nullcontext():
            result = run_inside(Plan(client.netns_path, LIVE_TIMEOUT, syn=[(dst, dport)]))
    seen = result.observations[0]
    heard = capture.summary() if capture else "no bridge to capture on"
    run = ProbeRun(
        "live:outside",
        "ok",
        f"from {client.address}, a temporary client namespace: {seen}; {heard}",
        round((time.monotonic() - started) * 1000),
    )
    note = f"{seen}; {heard}"
    if seen.outcome == "open":
        for hop in path.hops:
            if hop.hop in (*FIREWALL_HOPS, HopName.CONTAINER_LISTENER) and hop.status in (
                "broken",
                "unknown",
            ):
                path = path.with_hop(with_status(hop, "ok", note))
        return Confirmation(path, "reachable", (run,))
    if capture and capture.reached:
        if listener := path.hop(HopName.CONTAINER_LISTENER):
            path = path.with_hop(with_status(listener, "broken", note))
    elif not any(h.status == "broken" for h in path.hops if h.hop in FIREWALL_HOPS):
        blamed = next(
            (h for h in path.hops if h.hop in (HopName.FILTER_FORWARD, HopName.RAW_PREROUTING)),
            None,
        )
        if blamed:
            path = path.with_hop(with_status(blamed, "broken", note))
    return Confirmation(path, "unreachable", (run,))


def _inside_plan(facts: Facts, target: Target, port: int | None) -> Plan | str:
    """What to send from inside the source, or why nothing is sent."""
    assert target.source is not None and target.resolution is not None
    owner = facts.netns_owner(target.source)
    if not owner.running or not owner.pid:
        return f"{owner.name} is not running: nothing to send from"
    if os.geteuid() != 0:
        return f"needs root to enter {owner.name}'s network namespace"
    r = target.resolution
    conf = owner.resolv_conf
    tries = list(conf.tries(r.name)) if conf and r.via != "address" else []
    query = (
        (r.name, r.nameserver) if r.via in ("none", "resolver", "swarm") and r.nameserver else None
    )
    searched_first = bool(tries) and tries[0] != r.name and r.via != "hosts"
    if query is None and searched_first and conf and conf.nameservers:
        # The engine knows the name, but the search domains are asked first: see what they say.
        query = (r.name, conf.nameservers[0])
    connect = [(a, port, target.protocol) for a in target.addresses[:1]] if port else []
    if not query and not connect:
        return (
            "nothing to send: no address and no DNS server to ask"
            if port
            else "no port to connect to"
        )
    outside = target.protocol == "tcp" and _leaves_the_host(facts, target)
    return Plan(
        namespaces.of_process(owner.pid),
        LIVE_TIMEOUT,
        query,
        tries if query and len(tries) > 1 else [],
        connect,
        port,
        target.protocol,
        mtu_to=target.addresses[0] if outside and target.addresses else None,
    )


def _leaves_the_host(facts: Facts, target: Target) -> bool:
    """An IPv4 destination outside this host and its containers: where a path MTU below the
    source's own can hide."""
    address = target.addresses[0] if target.addresses else None
    if address is None or ":" in address or is_loopback(address) or facts.is_host_address(address):
        return False
    return not any(n.contains(address) for n in facts.networks)
