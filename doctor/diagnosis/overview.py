"""A saved snapshot seen whole: the host checkup, each published port's own path and causes,
and the host's networks with their containers; what `report BUNDLE` draws."""

from __future__ import annotations

import time

from msgspec import Struct

from doctor.bounded import describe_error
from doctor.diagnosis import checkup
from doctor.diagnosis.diagnose import Options, _facts, _report, assess, diagnose
from doctor.path.target import resolve_target
from doctor.plugin.manager import Plugins, load_plugins
from doctor.report.document import ProbeRun, Report
from doctor.snapshot.store import Snapshot

REPLAY_TIMEOUT = 60.0  # nothing is sent on a replay: the bound is only for the rules


class Member(Struct, frozen=True):
    container: str
    address: str | None
    running: bool


class NetworkMembers(Struct, frozen=True):
    name: str
    driver: str
    subnets: tuple[str, ...]
    members: tuple[Member, ...]


class PortReport(Struct, frozen=True):
    report: Report  # its diagnosis, as from this host
    container: str | None  # who publishes it; None: nobody does any more


class Overview(Struct, frozen=True):
    host: Report  # the checkup: one line per thing checked, every cause ranked
    ports: list[PortReport]
    networks: list[NetworkMembers]


def overview(snapshot: Snapshot, plugins: Plugins | None = None) -> Overview:
    """Replay ``snapshot``: the host checkup, then each published port diagnosed on its own from
    the same facts (a port whose diagnosis fails is an entry of the checkup's probes)."""
    plugins = plugins or load_plugins()
    host = diagnose(None, Options(live=False, timeout=REPLAY_TIMEOUT), snapshot, plugins)
    facts = _facts(snapshot)
    deadline = time.monotonic() + REPLAY_TIMEOUT
    ports: list[PortReport] = []
    for spec in checkup.port_targets(list(facts.containers)):
        try:
            target = resolve_target(spec, facts, "host")
            a = assess(facts, target, plugins, False, [], deadline)
        except Exception as exc:  # one port's trouble is an entry, not the end of the page
            name = f"check:{spec.input}"
            if all(p.name != name for p in host.probes):  # the checkup's own, when it failed too
                host.probes.append(ProbeRun(name, "failed", describe_error(exc), 0))
            continue
        verdicts = {"static": a.static, "live": None}
        report = _report(target, a.verdict, a.findings, a.path.hops, a.runs, verdicts)
        publisher = a.path.route.container
        ports.append(PortReport(report, publisher.name if publisher else None))
    networks = [
        NetworkMembers(
            n.name,
            n.driver,
            n.subnets,
            tuple(
                Member(c.name, at.ip, c.running)
                for c in sorted(facts.containers, key=lambda c: c.name)
                for at in c.attachments
                # by ID: an endpoint left on a network since recreated under its name is not on it
                if at.network_id == n.id or (not at.network_id and at.network == n.name)
            ),
        )
        for n in facts.networks
    ]
    return Overview(host, ports, networks)
