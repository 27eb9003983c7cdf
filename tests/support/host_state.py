"""What a doctor run must leave as it found it: the firewall rules (without their counters),
the links, addresses and routes, the sysctls it reads, the network namespaces and its own
temporary files. :func:`unchanged` takes the state before and after a run (as root on Linux;
elsewhere it checks nothing) and fails the test with what differs."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from typing import Any

from doctor.probes.host import SYSCTLS

_COUNTERS = re.compile(r"\[\d+:\d+\]")
#: what the kernel adds to a new link by itself, a moment after it comes up (IPv6 link-local
#: addresses and their routes, multicast): a container staged just before a run brings them
KERNEL_OWN = ("fe80:", "ff00:", "multicast")


def _run(*argv: str) -> str:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        return ""
    return done.stdout


def _rules(text: str) -> list[str]:
    return [_COUNTERS.sub("", line) for line in text.splitlines() if not line.startswith("#")]


def _links(listed: list[dict[str, Any]]) -> list[tuple[str, Any, Any]]:
    return sorted((link["ifname"], link.get("mtu"), link.get("master")) for link in listed)


def _peer_namespaces(listed: list[dict[str, Any]]) -> dict[str, int]:
    """Each link whose peer lives in another network namespace, with that namespace's id."""
    return {link["ifname"]: link["link_netnsid"] for link in listed if "link_netnsid" in link}


def _namespace_ids() -> set[int]:
    return {ns["nsid"] for ns in json.loads(_run("ip", "-j", "netns", "list-id") or "[]")}


def _addresses() -> list[tuple[str, str, int]]:
    return sorted(
        (link["ifname"], a["local"], a["prefixlen"])
        for link in json.loads(_run("ip", "-j", "address", "show") or "[]")
        for a in link.get("addr_info", ())
        if "local" in a and not a["local"].startswith(KERNEL_OWN)
    )


def _routes(family: str) -> list[str]:
    """The routes, without the carrier state ("linkdown": the bridge's last veth is gone)."""
    listed = _run("ip", family, "route", "show", "table", "all").splitlines()
    return sorted(
        line.replace(" linkdown", "").strip()
        for line in listed
        if not any(own in line for own in KERNEL_OWN)
    )


def _sysctls() -> dict[str, str]:
    found = {}
    for name in SYSCTLS:
        with contextlib.suppress(OSError), open("/proc/sys/" + name.replace(".", "/")) as f:
            found[name] = f.read().strip()
    return found


def state() -> tuple[dict[str, Any], dict[str, int]]:
    """What is compared, and (from the same dump of links) each veth's peer namespace."""
    links = json.loads(_run("ip", "-j", "link", "show") or "[]")
    return {
        "iptables": _rules(_run("iptables-save")),
        "ip6tables": _rules(_run("ip6tables-save")),
        "nftables": _rules(_run("nft", "-s", "list", "ruleset")),  # -s: no counters
        "links": _links(links),
        "addresses": _addresses(),
        "routes": _routes("-4"),
        "routes6": _routes("-6"),
        "sysctls": _sysctls(),
        "namespaces": sorted(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else [],
        "temporary files": sorted(glob.glob(os.path.join(tempfile.gettempdir(), "docker-doctor*"))),
    }, _peer_namespaces(links)


def _guarded() -> bool:
    return sys.platform == "linux" and os.geteuid() == 0


@contextlib.contextmanager
def unchanged() -> Iterator[None]:
    """Fail if what is inside changed the host (its state before and after compared)."""
    if not _guarded():
        yield
        return
    before, peers = state()
    yield
    after, _ = state()
    alive = _namespace_ids()
    # The kernel destroys a network namespace, and the veths into it, a while after its last
    # process is gone: a container removed or stopped before the run can take its veth away
    # during it. A run cannot destroy a container's namespace (it only reads the engine).
    died = {name for name, nsid in peers.items() if nsid not in alive}
    after["links"] += [
        link for link in before["links"] if link[0] in died and link not in after["links"]
    ]
    after["links"].sort()
    changed = {
        key: {
            "gone": [x for x in before[key] if x not in after[key]],
            "new": [x for x in after[key] if x not in before[key]],
        }
        if isinstance(before[key], list)
        else {"before": before[key], "after": after[key]}
        for key in before
        if before[key] != after[key]
    }
    assert not changed, f"the run changed the host: {changed}"
