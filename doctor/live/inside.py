"""Live probes sent from inside a container's network namespace, by a short-lived child.

``docker-doctor __inside PLAN`` enters the namespace of PLAN's pid, asks one DNS server
one question, connects where it is told (or where the answer points), prints the
observations as JSON and exits.  A child process rather than a thread of the doctor:
it leaves the namespace by exiting, so nothing of the doctor can end up in the wrong
one, and it needs no tool inside the image.  The DNS query is made by hand because the
host's resolver would read the host's resolv.conf, not the container's.
"""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from msgspec import Struct, field, to_builtins
from msgspec.structs import replace

from doctor.facts.model import Protocol
from doctor.live.connect import REACHED, DnsAnswer, DnsOutcome, Observation, PathMtu, probe_all

CHILD_COMMAND = "__inside"  # the hidden first word that makes docker-doctor the child
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}
TYPE_A, CLASS_IN = 1, 1


class Plan(Struct):
    netns: str  # the namespace to enter: /proc/PID/ns/net or /run/netns/NAME
    timeout: float  # per query or connection attempt
    query: tuple[str, str] | None = None  # (name, server)
    #: the names to ask for it, in a stub resolver's order (search domains); empty: the name
    tries: list[str] = field(default_factory=list)
    connect: list[tuple[str, int, Protocol]] = field(
        default_factory=list
    )  # (address, port, protocol)
    port: int | None = None  # with a query and nothing to connect to: connect to its answer here
    protocol: Protocol = "tcp"
    syn: list[tuple[str, int]] = field(
        default_factory=list
    )  # raw SYN probes (scapy): (address, port)
    #: probe the path MTU to this address once a connection to it got through
    mtu_to: str | None = None
    until: float | None = None  # time.monotonic() by which the child must be done


class Result(Struct):
    answer: DnsAnswer | None
    observations: list[Observation]
    mtu: PathMtu | None = None


def run(plan: Plan) -> Result:
    """Run ``plan`` in a child process that enters the namespace (needs root)."""
    queries = max(1, len(plan.tries)) * (ATTEMPTS + 1) if plan.query else 0
    echoes = MTU_TIMEOUT * 24 if plan.mtu_to else 0  # the bisection's, at the most
    budget = plan.timeout * (1 + len(plan.connect) + len(plan.syn) + queries) + echoes + 3
    if plan.until is not None:  # never past the caller's deadline (the clock is the system's)
        budget = max(0.5, min(budget, plan.until - time.monotonic() + 0.5))
    done = subprocess.run(
        [*_doctor_again(), CHILD_COMMAND, json.dumps(to_builtins(plan))],
        capture_output=True,
        text=True,
        timeout=budget,
        env={**os.environ, "PYTHONSAFEPATH": "1"},
    )
    if done.returncode != 0:
        raise RuntimeError(
            done.stderr.strip().splitlines()[-1]
            if done.stderr.strip()
            else f"exited {done.returncode}"
        )
    data = json.loads(done.stdout)
    answer = (
        DnsAnswer(
            **{
                **data["answer"],
                "addresses": tuple(data["answer"]["addresses"]),
                "before": tuple(data["answer"]["before"]),
            }
        )
        if data["answer"]
        else None
    )
    mtu = PathMtu(**data["mtu"]) if data.get("mtu") else None
    return Result(answer, [Observation(**o) for o in data["observations"]], mtu)


def _doctor_again() -> list[str]:
    """This same docker-doctor: the standalone executable itself, or this interpreter with the
    installed package (PYTHONSAFEPATH: never a `doctor` folder of the current directory)."""
    return [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-m", "doctor"]


def child_main(args: list[str]) -> int:
    """The child's side: ``docker-doctor __inside PLAN``."""
    given = json.loads(args[0])
    plan = Plan(**{**given, "query": tuple(given["query"]) if given.get("query") else None})
    print(json.dumps(_execute(plan)))
    return 0


def _execute(plan: Plan) -> dict[str, Any]:
    from doctor.collect import namespaces

    namespaces.enter(plan.netns)
    answer = (
        resolve(plan.tries or [plan.query[0]], plan.query[1], plan.timeout) if plan.query else None
    )
    targets = [(address, port, protocol) for address, port, protocol in plan.connect]
    searched = answer is not None and plan.query is not None and answer.name != plan.query[0]
    if answer and plan.port and (not targets or searched):  # where the application would go
        targets = [(address, plan.port, plan.protocol) for address in answer.addresses[:1]]
    observations = probe_all([(*t, False) for t in targets], plan.timeout)
    observations += [syn_probe(address, port, plan.timeout) for address, port in plan.syn]
    through = any(o.outcome in REACHED for o in observations)
    mtu = None
    if plan.mtu_to and through:
        try:
            mtu = path_mtu(plan.mtu_to, MTU_TIMEOUT, plan.until)
        except OSError:
            mtu = None  # not asked: the DNS answer and the connections still stand
    return {
        "answer": to_builtins(answer) if answer else None,
        "observations": [to_builtins(o) for o in observations],
        "mtu": to_builtins(mtu) if mtu else None,
    }


MTU_TIMEOUT = 0.4  # per echo: an answer on a working path takes a round trip
MIN_PROBE = 576  # every IPv4 path carries this much (RFC 791)
IP_MTU = 14  # getsockopt: the MTU the kernel would use towards a connected address


Echo = Callable[[int], tuple[str, int | None]]


IP_MTU_DISCOVER, IP_PMTUDISC_PROBE = 10, 3  # DF set, sent whatever the cached path MTU says
ICMP_ECHO, ICMP_ECHO_REPLY, ICMP_UNREACH, FRAG_NEEDED = 8, 0, 3, 4


def path_mtu(address: str, timeout: float, until: float | None) -> PathMtu | None:
    """The largest ICMP echo with DF set that ``address`` answers (see bisect_mtu), from this
    namespace; None when not asked before ``until``. A raw ICMP socket, not scapy: an echo is
    eight bytes of header, and scapy's import would cost this common path 0.4 s."""
    started = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect((address, 9))
        interface_mtu = sock.getsockopt(socket.IPPROTO_IP, IP_MTU)
    ident = int.from_bytes(os.urandom(2), "big")

    class OutOfTime(Exception):
        pass

    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as raw:
        raw.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE)

        def echo(size: int) -> tuple[str, int | None]:
            if until is not None and time.monotonic() + timeout > until:
                raise OutOfTime
            raw.sendto(_echo_request(ident, size, size - 28), (address, 0))
            ends = time.monotonic() + timeout
            while (left := ends - time.monotonic()) > 0:
                raw.settimeout(left)
                try:
                    said = _echo_answer(raw.recv(65535), ident, size, address)
                except TimeoutError:
                    break
                if said is not None:
                    return said
            return "silence", None

        try:
            largest, announced = bisect_mtu(echo, interface_mtu)
        except OutOfTime:
            return None
    ms = round((time.monotonic() - started) * 1000)
    return PathMtu(address, interface_mtu, largest, announced, ms)


def _echo_request(ident: int, seq: int, payload: int) -> bytes:
    body = bytes(payload)
    header = struct.pack(">BBHHH", ICMP_ECHO, 0, 0, ident, seq)
    return struct.pack(">BBHHH", ICMP_ECHO, 0, _checksum(header + body), ident, seq) + body


def _checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _echo_answer(
    packet: bytes, ident: int, seq: int, address: str
) -> tuple[str, int | None] | None:
    """What an ICMP packet (IP header first, as a raw socket gives it) says of our echo
    ``seq``: answered, too big (with the next hop's MTU), or nothing of ours (None)."""
    offset = (packet[0] & 0x0F) * 4
    if len(packet) < offset + 8:
        return None
    kind, code, _, rest_id, rest_seq = struct.unpack_from(">BBHHH", packet, offset)
    if kind == ICMP_ECHO_REPLY:
        source = socket.inet_ntoa(packet[12:16])
        return ("answered", None) if (rest_id, rest_seq, source) == (ident, seq, address) else None
    if kind == ICMP_UNREACH and code == FRAG_NEEDED:
        inner = offset + 8  # the original IP header and the first 8 bytes of our echo follow
        if len(packet) < inner + 20:
            return None
        inner_icmp = inner + (packet[inner] & 0x0F) * 4
        if len(packet) < inner_icmp + 8:
            return None
        _, _, _, their_id, their_seq = struct.unpack_from(">BBHHH", packet, inner_icmp)
        if (their_id, their_seq) == (ident, seq):
            return "too big", rest_seq or seq - 1  # the next-hop MTU is the word's low half
    return None


def bisect_mtu(echo: Echo, interface_mtu: int, tries: int = 2) -> tuple[int | None, int | None]:
    """(the largest size answered, the MTU an ICMP "fragmentation needed" announced) by
    bisection between 576 bytes and the route's MTU. ``echo(size)`` says "answered", "too big"
    (with the announced MTU) or "silence"; each size is asked up to ``tries`` times, since one
    lost echo is no verdict, and the full size is asked again at the end before a size is
    called the largest: a black hole is found twice or not at all. One echo when the whole MTU
    gets through; (None, None) when not even 576 bytes are answered (echo blocked: unknown)."""

    def ask(size: int) -> tuple[str, int | None]:
        said: tuple[str, int | None] = ("silence", None)
        for _ in range(tries):
            said = echo(size)
            if said[0] != "silence":
                break
        return said

    said, announced = ask(interface_mtu)
    if said != "silence":
        return (interface_mtu if said == "answered" else None), announced
    if ask(MIN_PROBE)[0] != "answered":
        return None, None
    low, high = MIN_PROBE, interface_mtu  # low gets through, high does not
    while high - low > 8:
        middle = (low + high) // 2
        said, announced = ask(middle)
        if said == "too big":
            return low, announced
        low, high = (middle, high) if said == "answered" else (low, middle)
    said, announced = ask(interface_mtu)  # still gone? then it is the path, not a lost echo
    return (interface_mtu, None) if said == "answered" else (low, announced)


ICMP_UNREACHABLE = {
    0: "network unreachable",
    1: "host unreachable",
    3: "port unreachable",
    9: "network administratively prohibited",
    10: "host administratively prohibited",
    13: "communication administratively prohibited",
}


def syn_probe(address: str, port: int, timeout: float) -> Observation:
    """One TCP SYN, sent raw: a SYN-ACK (open), an RST (refused), an ICMP error (with its
    code: a REJECT rule, no route), or silence (dropped)."""
    # Deferred: scapy costs ~0.2-0.6 s to import, paid only by a run that asked for it.
    from doctor.live.capture import quiet_scapy

    quiet_scapy()
    from scapy.layers.inet import ICMP, IP, TCP
    from scapy.sendrecv import sr1

    started = time.monotonic()
    syn = IP(dst=address) / TCP(
        sport=1024 + int.from_bytes(os.urandom(2), "big") % 60000, dport=port, flags="S"
    )
    answer = sr1(syn, timeout=timeout, verbose=0)
    ms = round((time.monotonic() - started) * 1000)
    if answer is None:
        return Observation(
            address, port, "tcp", "timeout", ms, f"SYN: silence for {timeout:.1f} s (dropped)"
        )
    if TCP in answer:
        flags = str(answer[TCP].flags)
        ttl = int(answer[IP].ttl)
        if "S" in flags and "A" in flags:
            return Observation(
                address, port, "tcp", "open", ms, f"SYN-ACK: the service accepts (TTL {ttl})", ttl
            )
        return Observation(
            address, port, "tcp", "refused", ms, f"RST from {answer[IP].src}: nothing listens", ttl
        )
    if ICMP in answer:
        kind, code = answer[ICMP].type, answer[ICMP].code
        what = (
            ICMP_UNREACHABLE.get(code, f"code {code}") if kind == 3 else f"type {kind} code {code}"
        )
        return Observation(
            address,
            port,
            "tcp",
            "unreachable",
            ms,
            f"ICMP {kind}/{code} ({what}) from {answer[IP].src}: a REJECT rule, or no route",
        )
    return Observation(address, port, "tcp", "error", ms, f"unexpected answer: {answer.summary()}")


ATTEMPTS = (
    2  # as a stub resolver retries (resolv.conf's attempts:2): one lost datagram is no verdict
)


#: Answers after which a stub resolver (glibc's res_search) goes on to the next name; after
#: silence or an unreachable server it gives up.
SEARCH_GOES_ON = ("nxdomain", "no-address", "failed")


def resolve(names: list[str], server: str, timeout: float) -> DnsAnswer:
    """Ask for each of ``names`` in turn, as a stub resolver walks its search list, until one
    is answered with an address or the resolver would give up; that answer, with what was
    asked before it."""
    before: list[str] = []
    waited = 0
    for name in names:
        answer = query(name, server, timeout)
        if answer.outcome not in SEARCH_GOES_ON or name == names[-1]:
            return replace(answer, before=tuple(before), waited=waited)
        before.append(str(answer))
        waited += answer.ms
    raise ValueError("no name to ask")


def query(name: str, server: str, timeout: float) -> DnsAnswer:
    """One A query to ``server`` over UDP, sent up to ATTEMPTS times, as a stub resolver does."""
    started = time.monotonic()

    def answer(outcome: DnsOutcome, addresses: tuple[str, ...] = (), detail: str = "") -> DnsAnswer:
        return DnsAnswer(
            name, server, outcome, addresses, round((time.monotonic() - started) * 1000), detail
        )

    ident = int.from_bytes(os.urandom(2), "big")
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    data = b""
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(
                (server, 53)
            )  # connected: an ICMP port unreachable surfaces as ECONNREFUSED
            for _ in range(ATTEMPTS):
                sock.send(_question(ident, name))
                try:
                    while True:
                        data = sock.recv(4096)
                        if len(data) >= 12 and struct.unpack_from(">H", data)[0] == ident:
                            break
                    break
                except TimeoutError:
                    continue
            else:
                return answer("timeout", detail=f"no answer to {ATTEMPTS} tries of {timeout:.1f} s")
        except ConnectionRefusedError:
            return answer(
                "refused", detail="nothing listens on port 53 there (ICMP port unreachable)"
            )
        except OSError as exc:
            return answer("error", detail=str(exc))
    try:
        rcode, addresses = _parse_answer(data)
    except (struct.error, IndexError, ValueError):
        return answer("error", detail="malformed answer")
    if rcode == 3:
        return answer("nxdomain", detail="no such name (NXDOMAIN)")
    if rcode != 0:
        return answer("failed", detail=f"server error {RCODES.get(rcode, rcode)}")
    if not addresses:
        return answer("no-address", detail="the name exists but has no IPv4 address")
    return answer("answered", tuple(addresses))


def _question(ident: int, name: str) -> bytes:
    labels = b"".join(
        bytes([len(part)]) + part.encode("idna") for part in name.rstrip(".").split(".") if part
    )
    return (
        struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0)
        + labels
        + b"\0"
        + struct.pack(">HH", TYPE_A, CLASS_IN)
    )


def _skip_name(data: bytes, offset: int) -> int:
    while True:
        length = data[offset]
        if length & 0xC0 == 0xC0:  # a compression pointer ends the name
            return offset + 2
        if length == 0:
            return offset + 1
        offset += 1 + length


def _parse_answer(data: bytes) -> tuple[int, list[str]]:
    _, flags, questions, answers = struct.unpack_from(">HHHH", data)
    offset = 12
    for _ in range(questions):
        offset = _skip_name(data, offset) + 4
    addresses = []
    for _ in range(answers):
        offset = _skip_name(data, offset)
        kind, klass, _ttl, length = struct.unpack_from(">HHIH", data, offset)
        offset += 10
        if kind == TYPE_A and klass == CLASS_IN and length == 4:
            addresses.append(socket.inet_ntoa(data[offset : offset + 4]))
        offset += length
    return flags & 0xF, addresses
