"""docker-doctor's built-in rules, registered like any plugin's (entry point ``rules``)."""

from __future__ import annotations

from doctor.hookspecs import hookimpl
from doctor.plugins import Rule
from doctor.rules import containers, ports


@hookimpl
def docker_doctor_rules() -> list[Rule]:
    return [*ports.RULES, *containers.RULES]
