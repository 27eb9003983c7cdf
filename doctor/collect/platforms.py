"""Where the engine runs relative to this host, which decides what this host can see of it.

- ``linux``: the engine shares this host's network stack: its iptables, /proc, bridges.
- ``desktop``: Docker Desktop (macOS, Windows, Linux): the engine is in a VM. Container
  addresses are not routable from here, this host's firewall never sees container traffic,
  and container pids are the VM's, not this host's.
- ``wsl2``: an engine inside WSL2 (not Desktop's): Linux, but behind Windows, which reaches
  it through localhost forwarding (NAT mode) or shares the LAN (mirrored mode).
- ``rootless``: a rootless engine: containers live behind RootlessKit's own network
  namespace, ports below ip_unprivileged_port_start cannot be published, and this host's
  firewall is not on the path.

This is the view before anything is read, from the OS and the endpoint, so that probes that
do not apply are skipped, never run; :func:`doctor.facts.platform.detect` says it from the facts.
"""

from __future__ import annotations

import os
import sys

from doctor.facts.platform import Kind

#: What each kind keeps a Linux-host probe from seeing, said in its skip reason.
NOT_VISIBLE = {
    "desktop": "the engine runs in Docker Desktop's VM: this host's {what} do not see its "
    "containers",
    "rootless": "a rootless engine's containers sit behind RootlessKit: this host's {what} are not "
    "on their path",
}


def local_guess(endpoint_host: str, endpoint_source: str) -> Kind:
    """From the OS and the engine's endpoint alone."""
    if sys.platform in ("darwin", "win32"):
        return "desktop"
    if (
        "desktop" in endpoint_source
        or "/.docker/desktop/" in endpoint_host
        or "/.docker/run/" in endpoint_host
    ):
        return "desktop"
    if endpoint_host.startswith("unix:///run/user/") or (
        os.environ.get("XDG_RUNTIME_DIR")
        and endpoint_host == f"unix://{os.environ['XDG_RUNTIME_DIR']}/docker.sock"
    ):
        return "rootless"
    return "linux"


def skip_reason(kind: Kind, what: str, rootless: bool = False) -> str | None:
    """Why a Linux-host probe of ``what`` does not apply here, or None when it does
    (``rootless``: it does apply to a rootless engine)."""
    if sys.platform != "linux":
        return f"not a Linux host ({sys.platform}): no {what} to read here"
    if kind == "rootless" and rootless:
        return None
    template = NOT_VISIBLE.get(kind)
    return template.format(what=what) if template else None
