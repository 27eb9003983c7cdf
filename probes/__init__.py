"""docker-doctor's built-in probes, registered like any plugin's (entry point ``probes``)."""

from __future__ import annotations

from doctor.hookspecs import hookimpl
from doctor.plugins import Probe
from doctor.probes import engine, firewall, host, netns


@hookimpl
def docker_doctor_probes() -> list[Probe]:
    return [*engine.PROBES, *host.PROBES, *netns.PROBES, *firewall.PROBES]
