"""Rules about where the engine runs: Docker Desktop's VM, WSL2, rootless."""

from __future__ import annotations

import re
from collections.abc import Iterator

from doctor.facts.model import Container, is_ip
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

UNPRIVILEGED_START = "net.ipv4.ip_unprivileged_port_start"
PRIVILEGED_ERROR = re.compile(r"privileged port|ip_unprivileged_port_start", re.IGNORECASE)
#: Bind-mount sources that are the engine's own or the VM's, not the user's files.
ENGINE_SOURCES = (
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/var/lib/docker",
    "/proc",
    "/sys",
    "/dev",
)


def _checkup_containers(ctx: RuleContext) -> list[Container] | None:
    """The containers a checkup covers (all, or the one pictured); None outside checkups."""
    t = ctx.target
    if t.kind == "host":
        return list(ctx.facts.containers)
    if t.kind == "container" and t.port is None and t.container:
        return [t.container]
    return None


def desktop_vm_network(ctx: RuleContext) -> Iterator[Finding]:
    facts, t = ctx.facts, ctx.target
    if facts.platform.kind != "desktop":
        return
    c = t.container
    evidence = [Evidence("engine", facts.platform.detail, "/info")]
    if t.kind == "container" and t.vantage == "host" and c and is_ip(t.spec.host):
        published = [
            f"localhost:{b.host_port}"
            for m in c.published
            for b in m.bindings
            if m.container_port == (ctx.path.route.container_port or 0)
        ]
        yield finding(
            "DESKTOP_VM_NETWORK",
            severity="error",
            confidence=0.95,
            hop=HopName.BRIDGE,
            evidence=evidence,
            explanation=f"{t.spec.host} is {c.name}'s address inside Docker Desktop's VM: it is "
            "not routable from "
            "this host. Only published ports are forwarded to localhost.",
            fix=Fix(
                f"Connect to {published[0]}"
                if published
                else f"Publish the port (-p HOST:{t.port}) and connect to localhost:HOST",
                [
                    f"curl http://{published[0]}/"
                    if published
                    else f"docker run -p 8080:{t.port} ..."
                ],
            ),
        )
    elif _checkup_containers(ctx) is not None:
        yield finding(
            "DESKTOP_VM_NETWORK",
            severity="info",
            confidence=0.95,
            hop=HopName.BRIDGE,
            evidence=evidence,
            explanation="The engine runs in Docker Desktop's VM: container addresses, the bridges "
            "and the VM's "
            "firewall are not visible from this host, so those checks were skipped; published "
            "ports "
            "are checked from localhost.",
            fix=Fix(
                "Diagnose published ports (localhost:PORT), or between containers with --from "
                "CONTAINER"
            ),
        )


def desktop_bind_mount_slow(ctx: RuleContext) -> Iterator[Finding]:
    containers = _checkup_containers(ctx)
    if ctx.facts.platform.kind != "desktop" or containers is None:
        return
    for c in containers:
        binds = [
            m for m in c.mounts if m.type == "bind" and not m.source.startswith(ENGINE_SOURCES)
        ]
        if not binds:
            continue
        yield finding(
            "DESKTOP_BIND_MOUNT_SLOW",
            severity="info",
            confidence=0.7,
            hop=HopName.CONTAINER,
            explanation=f"{c.name} bind-mounts files from this host into Docker Desktop's VM; "
            "every file access "
            "crosses the virtualisation layer, which is slow for many small files (dependencies, "
            "build trees, databases).",
            evidence=[
                Evidence(
                    f"{c.name} bind mounts",
                    [f"{m.source} -> {m.destination}" for m in binds],
                    ENGINE_API,
                )
            ],
            fix=Fix(
                "Keep heavy trees in a named volume; bind-mount only what you edit",
                [
                    f"docker volume create {c.name}-data",
                    f"docker run -v {c.name}-data:{binds[0].destination} ...  # instead of -v "
                    f"{binds[0].source}:...",
                ],
            ),
        )


def wsl2_lan_access(ctx: RuleContext) -> Iterator[Finding]:
    platform, t = ctx.facts.platform, ctx.target
    if (
        platform.kind != "wsl2"
        or platform.wsl_mode != "nat"
        or t.vantage != "external"
        or t.port is None
    ):
        return
    address = t.addresses[0] if t.addresses else "WSL_ADDRESS"
    yield finding(
        "WSL2_LAN_ACCESS",
        severity="error",
        confidence=0.85,
        hop=HopName.HOST_LISTENER,
        explanation=f"The engine runs inside WSL2 with NAT networking: {address} is the WSL2 VM's "
        "own address, "
        "reachable from Windows only. Windows forwards localhost ports into WSL2; other machines "
        "on the "
        "LAN reach neither.",
        evidence=[Evidence("platform", platform.detail, "/proc/sys/kernel/osrelease, interfaces")],
        fix=Fix(
            "Switch WSL2 to mirrored networking, or forward the port on Windows",
            [
                "# %UserProfile%\\.wslconfig:  [wsl2]  networkingMode=mirrored   then: wsl "
                "--shutdown",
                f"netsh interface portproxy add v4tov4 listenport={t.port} listenaddress=0.0.0.0 "
                f"connectport={t.port} connectaddress={address}  # in an administrator PowerShell",
                f"New-NetFirewallRule -DisplayName docker-{t.port} -Direction Inbound -LocalPort "
                f"{t.port} "
                "-Protocol TCP -Action Allow",
            ],
        ),
    )


def rootless_port_limits(ctx: RuleContext) -> Iterator[Finding]:
    facts = ctx.facts
    if facts.platform.kind != "rootless":
        return
    start_text = facts.sysctls.get(UNPRIVILEGED_START)
    start = int(start_text) if start_text and start_text.strip().isdigit() else 1024
    containers = _checkup_containers(ctx)
    if containers is None:
        containers = [c for c in (ctx.path.route.container, ctx.target.container) if c]
    for c in {c.id: c for c in containers}.values():
        low = sorted({b.host_port for m in c.configured for b in m.bindings if b.host_port < start})
        if not low or (
            c.running
            and not PRIVILEGED_ERROR.search(c.error)
            and all(any(b.host_port == p for m in c.published for b in m.bindings) for p in low)
        ):
            continue
        yield finding(
            "ROOTLESS_PORT_LIMITS",
            severity="error",
            confidence=0.9,
            hop=HopName.HOST_LISTENER,
            explanation=f"A rootless engine cannot publish ports below {start} "
            f"({UNPRIVILEGED_START}): {c.name} asks for {', '.join(map(str, low))}.",
            evidence=[
                Evidence(UNPRIVILEGED_START, start_text or "1024 (the kernel's default)", "sysctl"),
                Evidence(f"{c.name} State.Error", c.error or None, ENGINE_API),
            ],
            fix=Fix(
                f"Publish on a port >= {start}, or let unprivileged users bind low ports",
                [
                    f"docker run -p {low[0] + 8000}:{low[0]} ...  # a high host port",
                    f"sudo sysctl -w {UNPRIVILEGED_START}={low[0]}  # and persist it in "
                    "/etc/sysctl.d",
                    "sudo setcap cap_net_bind_service=ep $(which rootlesskit); systemctl --user "
                    "restart docker",
                ],
            ),
        )


RULES = [
    Rule("desktop-vm-network", ("DESKTOP_VM_NETWORK",), desktop_vm_network, ("host", "external")),
    Rule(
        "desktop-bind-mount-slow", ("DESKTOP_BIND_MOUNT_SLOW",), desktop_bind_mount_slow, ("host",)
    ),
    Rule("wsl2-lan-access", ("WSL2_LAN_ACCESS",), wsl2_lan_access, ("external",)),
    Rule(
        "rootless-port-limits",
        ("ROOTLESS_PORT_LIMITS",),
        rootless_port_limits,
        ("host", "external"),
    ),
]
