"""Rules about the container behind the target: its state, health and networks."""

from __future__ import annotations

import re
from collections.abc import Iterator

from doctor.facts.model import Container
from doctor.plugin import (
    ENGINE_API,
    Evidence,
    Finding,
    Fix,
    HopName,
    Rule,
    RuleContext,
    finding,
)

LOG_LINES_SHOWN = 5


def container_not_running(ctx: RuleContext) -> Iterator[Finding]:
    """The destination, or with --from the source, is not running."""
    stopped = [
        (c, hop)
        for c, hop in (
            (ctx.target.source, HopName.SOURCE),
            (ctx.path.route.container, HopName.CONTAINER),
        )
        if c is not None and not c.running
    ]
    for c, hop in stopped[
        :1
    ]:  # a stopped source sends nothing: the destination does not matter yet
        state = {
            "Status": c.status,
            "ExitCode": c.exit_code,
            "OOMKilled": c.oom_killed,
            "RestartCount": c.restart_count,
            "Error": c.error,
        }
        why = (
            "it was killed for lack of memory (OOMKilled)"
            if c.oom_killed
            else f"it is in a restart loop ({c.restart_count} restarts)"
            if c.status == "restarting"
            else f"it exited with code {c.exit_code}"
            if c.status == "exited"
            else f"the engine could not start it: {c.error}"
            if c.error
            else f"it is {c.status}"
        )
        commands = [f"docker logs --tail 50 {c.name}", f"docker start {c.name}"]
        if c.oom_killed:
            commands.insert(
                1, f"docker update --memory 1g --memory-swap 1g {c.name}  # or fix the leak"
            )
        effect = (
            "A stopped container sends nothing."
            if hop == HopName.SOURCE
            else "Nothing forwards to a stopped container."
        )
        yield finding(
            "CONTAINER_NOT_RUNNING",
            severity="error",
            confidence=0.95,
            hop=hop,
            explanation=f"{c.name} is not running: {why}. {effect}",
            evidence=[
                Evidence(f"{c.name} State", state, ENGINE_API),
                Evidence(
                    f"{c.name} last log lines", list(c.log_tail[-LOG_LINES_SHOWN:]), "docker logs"
                ),
            ],
            fix=Fix(f"Find out why {c.name} stopped, fix it, and start it again", commands),
        )


#: What a shell (127, "sh: curl: not found") or the runtime (exec form) says of a missing command.
_NOT_FOUND = re.compile(
    r"(?:^|: )(?P<shell>[^:\s]+): (?:command )?not found"
    r'|exec: "(?P<exec>[^"]+)": executable file not found'
)


def _missing_health_command(c: Container) -> str | None:
    """The healthcheck's command the image lacks, when that is why it fails."""
    if c.health != "unhealthy" or c.health_output is None:
        return None
    found = _NOT_FOUND.search(c.health_output)
    if found is None or (c.health_exit_code != 127 and not found["exec"]):
        return None
    return found["shell"] or found["exec"]


def healthcheck_command_missing(ctx: RuleContext) -> Iterator[Finding]:
    c = ctx.path.route.container
    command = _missing_health_command(c) if c is not None and c.running else None
    if c is None or command is None:
        return
    yield finding(
        "HEALTHCHECK_COMMAND_MISSING",
        severity="warning",
        confidence=0.9,
        hop=HopName.CONTAINER,
        explanation=f"{c.name} is unhealthy because its healthcheck runs {command}, which its "
        f"image does not have (exit {c.health_exit_code}): that says nothing about the "
        "service, but what waits for it to be healthy never starts.",
        evidence=[
            Evidence(f"{c.name} Config.Healthcheck.Test", list(c.health_test), ENGINE_API),
            Evidence(f"{c.name} last healthcheck exit code", c.health_exit_code, ENGINE_API),
            Evidence(f"{c.name} last healthcheck output", c.health_output, ENGINE_API),
        ],
        fix=Fix(
            f"Check {c.name} with a command its image has, or add {command} to the image",
            [
                f"docker exec {c.name} sh -c 'command -v wget curl nc'  # what the image has",
                "# Dockerfile: HEALTHCHECK CMD wget -q -O /dev/null http://127.0.0.1:PORT/ "
                "|| exit 1",
                '# compose: healthcheck: test: ["CMD-SHELL", "wget -q -O /dev/null '
                'http://127.0.0.1:PORT/ || exit 1"]',
            ],
        ),
    )


def container_unhealthy(ctx: RuleContext) -> Iterator[Finding]:
    c = ctx.path.route.container
    if c is None or not c.running or c.health != "unhealthy":
        return
    if _missing_health_command(c):
        return  # HEALTHCHECK_COMMAND_MISSING says why
    yield finding(
        "CONTAINER_UNHEALTHY",
        severity="warning",
        confidence=0.8,
        hop=HopName.CONTAINER,
        explanation=f"{c.name} runs, but its own healthcheck fails; traffic may still reach it, "
        "while anything "
        "that waits for it to be healthy (depends_on: service_healthy, orchestrators) will not.",
        evidence=[
            Evidence(f"{c.name} State.Health.Status", c.health, ENGINE_API),
            Evidence(f"{c.name} last healthcheck output", c.health_output, ENGINE_API),
        ],
        fix=Fix(
            f"See why {c.name}'s healthcheck fails and fix the service or the check",
            [f"docker inspect {c.name} --format '{{{{json .State.Health}}}}'"],
        ),
    )


def internal_network(ctx: RuleContext) -> Iterator[Finding]:
    c = ctx.path.route.container
    if c is None or not c.configured or c.uses_host_network or not c.attachments:
        return
    networks = [
        ctx.facts.network(a.network_id) or ctx.facts.network(a.network) for a in c.attachments
    ]
    if not all(n is not None and n.internal for n in networks):
        return
    names = [n.name for n in networks if n]
    yield finding(
        "INTERNAL_NETWORK",
        severity="error",
        confidence=0.95,
        hop=HopName.BRIDGE,
        explanation=f"{c.name} is only on internal network(s) {', '.join(names)}: they have no way "
        "in or out, "
        "so the engine published none of its ports.",
        evidence=[Evidence(f"network {n} Internal", True, ENGINE_API) for n in names]
        + [
            Evidence(
                f"{c.name} NetworkSettings.Ports",
                [str(b) for m in c.published for b in m.bindings],
                ENGINE_API,
            )
        ],
        fix=Fix(
            f"Attach {c.name} to a non-internal network too (the frontend/backend pattern), then "
            "restart it",
            [
                f"docker network create {c.name}-front",
                f"docker network connect {c.name}-front {c.name}",
                f"docker restart {c.name}",
            ],
        ),
    )


RULES = [
    Rule("container-not-running", ("CONTAINER_NOT_RUNNING",), container_not_running),
    Rule("container-unhealthy", ("CONTAINER_UNHEALTHY",), container_unhealthy),
    Rule(
        "healthcheck-command-missing",
        ("HEALTHCHECK_COMMAND_MISSING",),
        healthcheck_command_missing,
    ),
    Rule("internal-network", ("INTERNAL_NETWORK",), internal_network, ("host", "external")),
]
