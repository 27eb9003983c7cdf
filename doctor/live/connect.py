"""Live probes: real connections that confirm or contradict what the facts say.

They never enter the snapshot: a replayed diagnosis reports them as skipped.
"""

from __future__ import annotations

import errno
import socket
import time
from typing import Literal

from msgspec import Struct, field

from doctor.facts.model import Protocol

DnsOutcome = Literal["answered", "nxdomain", "no-address", "failed", "timeout", "refused", "error"]
Outcome = Literal[
    "answered", "open", "closed", "refused", "timeout", "unreachable", "silent", "error"
]

#: After a TCP accept, how long to wait for the peer to hang up.  docker-proxy accepts
#: first and closes as soon as its own connection to the container is refused, which
#: takes a few milliseconds on a loaded host.
LINGER = 0.05
UDP_WAIT = 0.5

REACHED = ("answered", "open")
FAILED = ("closed", "refused", "timeout", "unreachable", "error")

_MEANING: dict[Outcome, str] = {
    "answered": "connected, and the service sent data",
    "open": "connected; the service stays silent until spoken to",
    "closed": "connected, then the peer hung up at once (reset after accept)",
    "refused": "connection refused",
    "timeout": "no answer (packets dropped?)",
    "unreachable": "no route: ICMP unreachable",
    "silent": "datagram sent, no answer and no ICMP error (open or filtered)",
    "error": "could not probe",
}


class Observation(Struct, frozen=True):
    address: str
    port: int
    protocol: Protocol
    outcome: Outcome
    ms: int
    detail: str = ""
    ttl: int | None = None  # the answer's TTL, when a raw probe saw it

    @property
    def where(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}/{self.protocol}"

    def __str__(self) -> str:
        return f"{self.where}: {self.detail or _MEANING[self.outcome]} ({self.ms} ms)"


class DnsAnswer(Struct, frozen=True):
    name: str
    server: str
    outcome: DnsOutcome
    addresses: tuple[str, ...] = ()
    ms: int = 0
    detail: str = ""
    #: the names a stub resolver asked first (search domains), each with its outcome
    before: tuple[str, ...] = ()
    waited: int = 0  # ms spent on ``before``

    def __str__(self) -> str:
        first = f"first {'; '.join(self.before)}; then " if self.before else ""
        return first + self._said

    @property
    def _said(self) -> str:
        if self.outcome == "answered":
            return (
                f"{self.server} answered {self.name} → {', '.join(self.addresses)} ({self.ms} ms)"
            )
        return f"{self.server} for {self.name}: {self.detail or self.outcome} ({self.ms} ms)"


class PathMtu(Struct, frozen=True):
    """How large a packet gets through to ``address`` with DF set, found by ICMP echoes of
    growing size from the source's namespace."""

    address: str
    interface_mtu: int  # what the source's stack would send (its route's MTU)
    largest: int | None  # the largest echo answered; None: not even a small one was
    announced: int | None = None  # the MTU an ICMP "fragmentation needed" announced, if any
    ms: int = 0

    @property
    def blackhole(self) -> bool:
        """Packets above ``largest`` vanish without the ICMP error that would shrink them."""
        return self.largest is not None and self.largest < self.interface_mtu and not self.announced

    def __str__(self) -> str:
        if self.announced:
            return (
                f"{self.address}: packets above {self.announced} bytes are refused with ICMP "
                f"fragmentation-needed (path MTU discovery works) ({self.ms} ms)"
            )
        if self.largest is None:
            return f"{self.address} answers no ICMP echo: the path MTU is not known ({self.ms} ms)"
        if not self.blackhole:
            return f"{self.address}: {self.interface_mtu}-byte packets get through ({self.ms} ms)"
        return (
            f"{self.address}: the largest packet through is {self.largest} bytes of the "
            f"interface's {self.interface_mtu}; larger ones vanish, DF set, no ICMP back "
            f"({self.ms} ms)"
        )


class Seen(Struct):
    """What the live probes saw, for rules to weigh beside the facts."""

    answer: DnsAnswer | None = None
    connections: list[Observation] = field(default_factory=list)
    #: the same destination asked from this host itself, when the source's attempt went unanswered
    host_reply: Observation | None = None
    mtu: PathMtu | None = None  # the path MTU to a destination out of the host, when probed


def probe(
    address: str, port: int, protocol: Protocol, timeout: float, linger: bool = True
) -> Observation:
    started = time.monotonic()
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    if protocol == "udp":
        outcome, detail = _udp(family, address, port, min(timeout, UDP_WAIT))
    else:
        outcome, detail = _tcp(family, address, port, timeout, linger)
    return Observation(
        address, port, protocol, outcome, round((time.monotonic() - started) * 1000), detail
    )


def _tcp(family: int, address: str, port: int, timeout: float, linger: bool) -> tuple[Outcome, str]:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
        except ConnectionRefusedError:
            return "refused", ""
        except TimeoutError:
            return "timeout", f"no answer within {timeout:.1f} s"
        except OSError as exc:
            if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                return "unreachable", exc.strerror or ""
            return "error", str(exc)
        if not linger:
            return "open", "connected"
        sock.settimeout(LINGER)
        try:
            data = sock.recv(1)
        except TimeoutError:
            return "open", ""
        except ConnectionResetError:
            return "closed", "connected, then reset by the peer"
        except OSError as exc:
            return "error", str(exc)
        return ("answered", "") if data else ("closed", "")


def _udp(family: int, address: str, port: int, wait: float) -> tuple[Outcome, str]:
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(wait)
        try:
            sock.connect(
                (address, port)
            )  # connected, so ICMP port-unreachable surfaces as ECONNREFUSED
            sock.send(b"docker-doctor\n")
            sock.recv(512)
        except ConnectionRefusedError:
            return "refused", "ICMP port unreachable"
        except TimeoutError:
            return "silent", ""
        except OSError as exc:
            return "error", str(exc)
        return "answered", ""
