"""What each running container listens on, read from its network namespace through /proc.

/proc/<pid>/net/* shows the sockets of the namespace <pid> lives in, so this needs no
`docker exec` and works on distroless images.
"""

from __future__ import annotations

from pathlib import Path

from doctor import artifacts as a
from doctor.plugins import Probe, ProbeContext, Skip


def collect_listeners(ctx: ProbeContext) -> None:
    containers = ctx.snapshot.json(a.CONTAINERS)
    if containers is None:
        raise Skip("no container list (the engine probe did not answer)")
    denied = 0
    for container in containers:
        state = container.get("State") or {}
        pid = state.get("Pid")
        if not state.get("Running") or not pid:
            continue
        if (container.get("HostConfig") or {}).get("NetworkMode") == "host":
            continue  # the host's own sockets: the host-sockets probe reads them
        for name in a.NETNS_FILES:
            try:
                ctx.put(a.netns_file(container["Id"], name), Path(f"/proc/{pid}/net/{name}").read_bytes())
            except PermissionError:
                denied += 1
            except FileNotFoundError:
                pass  # exited meanwhile, or no IPv6 in the kernel
    if denied and not ctx.artifacts:
        raise Skip("needs root to read the containers' network namespaces")


PROBES = [Probe("container-listeners", collect_listeners, requires=("engine",))]
