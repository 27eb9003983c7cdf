"""docker-doctor's built-in probes, registered like any plugin's (entry point ``probes``)."""

from __future__ import annotations

from doctor.probes import containerfs, engine_api, firewall, host, netns

from doctor.plugin import Probe, hookimpl


@hookimpl
def docker_doctor_probes() -> list[Probe]:
    return [*engine_api.PROBES, *host.PROBES, *netns.PROBES, *containerfs.PROBES, *firewall.PROBES]
