"""Where the engine runs relative to this host, as the facts tell (the engine's /info, the host):
``linux``, ``desktop`` (Docker Desktop's VM), ``wsl2`` (NAT or mirrored networking) or
``rootless`` (behind RootlessKit). See :mod:`doctor.collect.platforms` for what each hides."""

from __future__ import annotations

from typing import Literal

from msgspec import Struct

Kind = Literal["linux", "desktop", "wsl2", "rootless"]


class Platform(Struct, frozen=True):
    kind: Kind
    detail: str
    wsl_mode: Literal["nat", "mirrored"] | None = None


def detect(
    os_name: str,
    kernel: str,
    security_options: tuple[str, ...],
    host_kernel: str,
    interfaces: tuple[str, ...],
    endpoint: str,
) -> Platform:
    """From the engine's /info and the host's facts."""
    if "docker desktop" in os_name.lower() or "linuxkit" in kernel.lower() or "desktop" in endpoint:
        return Platform("desktop", f"Docker Desktop ({os_name}, kernel {kernel})")
    if any("rootless" in option for option in security_options):
        return Platform("rootless", "a rootless engine")
    if "microsoft" in host_kernel.lower():
        mode: Literal["nat", "mirrored"] = "mirrored" if "loopback0" in interfaces else "nat"
        return Platform("wsl2", f"WSL2 ({mode} networking)", mode)
    return Platform("linux", "Linux")
