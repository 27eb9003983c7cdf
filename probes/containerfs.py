"""The resolver files each running container sees: its etc/resolv.conf and etc/hosts.

Read through /proc/<pid>/root, the container's own mount namespace, so a file the
image or a bind mount replaced is read as the container sees it; no `docker exec`,
no tool inside the image.  The engine's copies (ResolvConfPath, HostsPath) are the
fallback when the process is gone between the listing and the read.
"""

from __future__ import annotations

from doctor.plugin import Probe, ProbeContext, Skip
from doctor.snapshot import artifacts as a

FILES = {"resolv.conf": "ResolvConfPath", "hosts": "HostsPath"}
MAX_BYTES = 64 * 1024  # a resolver file is small; a huge one is not worth reading whole


def collect_files(ctx: ProbeContext) -> None:
    ctx.need_linux_host("container file systems (/proc/<pid>/root)", rootless=True)
    denied = 0
    for container, pid in ctx.running_containers():
        for name, engine_copy in FILES.items():
            candidates = [f"/proc/{pid}/root/etc/{name}", container.get(engine_copy) or ""]
            for path in filter(None, candidates):
                try:
                    with open(path, "rb") as f:
                        ctx.put(a.container_file(container["Id"], name), f.read(MAX_BYTES))
                    break
                except PermissionError:
                    denied += 1
                    break
                except OSError:
                    continue  # gone meanwhile, or no such file in the image: try the engine's copy
    if denied and not ctx.artifacts:
        raise Skip("needs root to read the containers' resolv.conf and hosts files")


PROBES = [Probe("container-files", collect_files, requires=("engine",))]
