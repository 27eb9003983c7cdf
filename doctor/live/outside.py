"""--probe-external: a client on "another machine", built for one probe and always removed.

A network namespace joined to the host by a veth pair, with a /30 from the RFC 2544
benchmarking range (198.18.0.0/15) that no route of the host overlaps.  Its packets
arrive on the host from outside, so they take the path a LAN client's take: raw and
nat PREROUTING, FORWARD, the bridge.  The namespace and the veth are deleted when the
``with`` block ends, also on errors and Ctrl-C.  This is the one thing the doctor
changes on the host, and only when asked.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
from types import TracebackType

from doctor.errors import CannotDiagnose
from doctor.facts.model import HostRoute
from doctor.facts.parse import parse_routes

RANGE = ipaddress.IPv4Network("198.18.0.0/15")
PREFIX = "ddx"  # names: ddx-<pid> (namespace), ddx<pid>h (host end); at most 15 characters


class TemporaryClient:
    def __init__(self, routes: tuple[HostRoute, ...]) -> None:
        tag = f"{os.getpid() % 100000}"
        self.namespace = f"{PREFIX}-{tag}"
        self.host_end = f"{PREFIX}{tag}h"
        # The routes as they are now, not as the snapshot read them: another run's client
        # may have come since. Each run starts its search at a random place in the range, so
        # that two runs at once (in different pid namespaces too) do not pick the same /30.
        with open("/proc/net/route") as table:
            now = parse_routes(table.read())
        subnet = _free_subnet((*routes, *now), start=int.from_bytes(os.urandom(4), "big"))
        self.host_address = str(subnet.network_address + 1)
        self.address = str(subnet.network_address + 2)
        self._prefix = subnet.prefixlen
        self._made: list[tuple[str, ...]] = []  # what close() undoes, in order

    @property
    def netns_path(self) -> str:
        return f"/run/netns/{self.namespace}"

    def __enter__(self) -> TemporaryClient:
        for path in (self.netns_path, f"/sys/class/net/{self.host_end}"):
            if os.path.exists(path):  # another run's (in another pid namespace): not ours to touch
                raise CannotDiagnose(
                    f"{path} exists already: another docker-doctor's client, or one that a "
                    f"killed run left (ip link delete {self.host_end}; ip netns delete "
                    f"{self.namespace})"
                )
        try:
            self._make(("netns", "delete", self.namespace), "netns", "add", self.namespace)
            self._make(
                ("link", "delete", self.host_end),
                *("link", "add", self.host_end, "type", "veth"),
                *("peer", "name", "eth0", "netns", self.namespace),
            )
            _ip("addr", "add", f"{self.host_address}/{self._prefix}", "dev", self.host_end)
            _ip("link", "set", self.host_end, "up")
            _ip(
                "-n", self.namespace, "addr", "add", f"{self.address}/{self._prefix}", "dev", "eth0"
            )
            _ip("-n", self.namespace, "link", "set", "eth0", "up")
            _ip("-n", self.namespace, "link", "set", "lo", "up")
            _ip("-n", self.namespace, "route", "add", "default", "via", self.host_address)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _make(self, undo: tuple[str, ...], *create: str) -> None:
        """``ip CREATE``, its ``undo`` noted first: a Ctrl-C while ip runs can come after the
        kernel made the thing, and what was made must go all the same. The undos run newest
        first (the veth before the namespace: deleting it removes both ends at once)."""
        self._made.insert(0, undo)
        try:
            _ip(*create)
        except CannotDiagnose:  # ip refused: nothing was made
            self._made.remove(undo)
            raise

    def close(self) -> None:
        """Undo what this run made, all of it even if a signal comes meanwhile: an undo that
        a Ctrl-C or SIGTERM stopped is run again, and the signal is raised once all are done."""
        stopped: BaseException | None = None
        while self._made:
            try:
                _ip(*self._made[0], check=False)
            except Exception:
                raise  # no ip to run: nothing more can be undone
            except BaseException as exc:  # a signal: KeyboardInterrupt, or the CLI's Terminated
                stopped = stopped or exc
                continue
            self._made.pop(0)
        if stopped is not None:
            raise stopped


def _free_subnet(routes: tuple[HostRoute, ...], start: int = 0) -> ipaddress.IPv4Network:
    """A /30 of RANGE that no route overlaps, searched from the ``start``-th one on."""
    used = [r.destination for r in routes if r.destination.prefixlen > 0]
    count = RANGE.num_addresses // 4
    for n in range(count):
        # RANGE is IPv4: so is every subnet
        subnet = ipaddress.IPv4Network((int(RANGE.network_address) + 4 * ((start + n) % count), 30))
        if not any(subnet.overlaps(u) for u in used):
            return subnet
    raise CannotDiagnose(f"no free /30 in {RANGE} for a temporary client namespace")


def _ip(*args: str, check: bool = True) -> None:
    try:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    except FileNotFoundError:
        raise CannotDiagnose(
            "a temporary client namespace needs the ip command (iproute2)"
        ) from None
    if check and done.returncode != 0:
        raise CannotDiagnose(f"ip {' '.join(args)}: {done.stderr.strip()}")
