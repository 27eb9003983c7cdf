"""Live probes: real connections that confirm or contradict what the facts say.

They never enter the snapshot: a replayed diagnosis reports them as skipped.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import time
from collections.abc import Sequence
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


#: One connect: address, port, protocol, and whether to linger for a hang-up after it.
Connect = tuple[str, int, Protocol, bool]
#: sockets open at once: a checkup of a thousand ports must stay under a 1,024-file limit
MAX_OPEN = 256


def probe_all(connects: Sequence[Connect], timeout: float) -> list[Observation]:
    """Each of ``connects``, side by side from one thread (non-blocking sockets and a
    selector: a hundred threads would each wait for the interpreter's lock), each within
    ``timeout``; an observation for each, in order."""
    pending = list(enumerate(connects))[::-1]
    found: dict[int, Observation] = {}

    def done(attempt: _Attempt) -> None:
        attempt.close()
        found[attempt.n] = attempt.observation()

    watched: dict[int, _Attempt] = {}
    try:
        with selectors.DefaultSelector() as selector:
            while pending or watched:
                while pending and len(watched) < MAX_OPEN:
                    n, connect = pending.pop()
                    attempt = _Attempt(n, connect, timeout)
                    if attempt.outcome is None:
                        selector.register(attempt.connection, attempt.events, attempt)
                        watched[n] = attempt
                    else:
                        done(attempt)
                soonest = min(a.until for a in watched.values()) if watched else time.monotonic()
                for key, _ in selector.select(max(0.0, soonest - time.monotonic())):
                    attempt = key.data
                    attempt.advance()
                    if attempt.outcome is None:
                        selector.modify(attempt.connection, attempt.events, attempt)
                now = time.monotonic()
                for attempt in list(watched.values()):
                    if attempt.outcome is None and now >= attempt.until:
                        attempt.expire()
                    if attempt.outcome is not None:
                        selector.unregister(attempt.connection)
                        del watched[attempt.n]
                        done(attempt)
    finally:  # should anything escape the loop, close what is still open
        for attempt in watched.values():
            attempt.close()
    return [found[n] for n in range(len(connects))]


class _Attempt:
    """One connect's progress: connecting, then (TCP, lingering) waiting for a hang-up or
    data, or (UDP) for an answer or an ICMP error; ``outcome`` once it is over."""

    def __init__(self, n: int, connect: Connect, timeout: float):
        self.n = n
        self.address, self.port, self.protocol, self.linger = connect
        self.started = time.monotonic()
        self.outcome: Outcome | None = None
        self.detail = ""
        self.ms = 0
        self.waiting = "connect"
        self.timeout = timeout if self.protocol == "tcp" else min(timeout, UDP_WAIT)
        self.until = self.started + self.timeout
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        kind = socket.SOCK_STREAM if self.protocol == "tcp" else socket.SOCK_DGRAM
        self.sock: socket.socket | None = None
        try:
            self.sock = sock = socket.socket(family, kind)
            sock.setblocking(False)
            error = sock.connect_ex((self.address, self.port))
            if self.protocol == "udp" and not error:
                # connected, so that an ICMP port-unreachable surfaces as ECONNREFUSED
                sock.send(b"docker-doctor\n")
                self.waiting = "answer"
            elif error not in (0, errno.EINPROGRESS):
                self._failed(error)
        except OSError as exc:  # out of descriptors, or refused at once
            self._failed(exc.errno or 0, str(exc))
        except (OverflowError, TypeError, ValueError) as exc:  # not an address and port at all
            self._end("error", str(exc))

    @property
    def connection(self) -> socket.socket:
        assert self.sock is not None  # only an attempt that opened its socket is watched
        return self.sock

    @property
    def events(self) -> int:
        return selectors.EVENT_WRITE if self.waiting == "connect" else selectors.EVENT_READ

    def advance(self) -> None:
        """The socket is ready: a connect completed, or something came back."""
        if self.waiting == "connect":
            error = self.connection.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                self._failed(error)
            elif not self.linger:
                self._end("open", "connected")
            else:
                self.waiting, self.until = "hang-up", time.monotonic() + LINGER
            return
        try:
            data = self.connection.recv(512)
        except ConnectionRefusedError:
            self._end("refused", "ICMP port unreachable")
        except ConnectionResetError:
            self._end("closed", "connected, then reset by the peer")
        except OSError as exc:
            self._end("error", str(exc))
        else:
            self._end("answered" if data or self.protocol == "udp" else "closed", "")

    def expire(self) -> None:
        if self.waiting == "connect":
            self._end("timeout", f"no answer within {self.timeout:.1f} s")
        elif self.waiting == "hang-up":
            self._end("open", "")  # connected, and the peer neither spoke nor hung up
        else:
            self._end("silent", "")

    def _failed(self, error: int, detail: str = "") -> None:
        if error == errno.ECONNREFUSED:
            self._end("refused", "ICMP port unreachable" if self.protocol == "udp" else "")
        elif error == errno.ECONNRESET:  # accepted, then reset before the connect was seen
            self._end("closed", "connected, then reset by the peer")
        elif error in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            self._end("unreachable", os.strerror(error))
        else:
            self._end("error", detail or os.strerror(error))

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()

    def _end(self, outcome: Outcome, detail: str) -> None:
        self.outcome, self.detail = outcome, detail
        self.ms = round((time.monotonic() - self.started) * 1000)

    def observation(self) -> Observation:
        assert self.outcome is not None
        return Observation(
            self.address, self.port, self.protocol, self.outcome, self.ms, self.detail
        )
