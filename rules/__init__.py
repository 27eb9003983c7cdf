"""docker-doctor's built-in rules, registered like any plugin's (entry point ``rules``)."""

from __future__ import annotations

from doctor.rules import (
    compose,
    containers,
    firewall,
    networks,
    peers,
    platforms,
    ports,
)

from doctor.plugin.hookspecs import hookimpl
from doctor.plugin.manager import Rule


@hookimpl
def docker_doctor_rules() -> list[Rule]:
    return [*ports.RULES, *containers.RULES, *peers.RULES, *networks.RULES, *firewall.RULES, *platforms.RULES, *compose.RULES]
