"""docker-doctor's built-in rules and their cause codes, registered like any plugin's (entry
point ``rules``)."""

from __future__ import annotations

from collections.abc import Mapping

from doctor.rules import (
    clients,
    compose,
    conntrack,
    containers,
    exposure,
    firewall,
    networks,
    peers,
    platforms,
    ports,
    resolvers,
    swarm,
)

from doctor.plugin import Code, Rule, hookimpl
from doctor.report.catalogue import CODES


@hookimpl
def docker_doctor_codes() -> Mapping[str, Code]:
    return CODES


@hookimpl
def docker_doctor_rules() -> list[Rule]:
    return [
        *ports.RULES,
        *containers.RULES,
        *peers.RULES,
        *resolvers.RULES,
        *networks.RULES,
        *firewall.RULES,
        *clients.RULES,
        *exposure.RULES,
        *conntrack.RULES,
        *platforms.RULES,
        *compose.RULES,
        *swarm.RULES,
    ]
