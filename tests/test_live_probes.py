"""The live probes' own logic, with the network replaced by a function: the MTU bisection, and
the resolver's walk through its search list."""

from __future__ import annotations

from doctor.live import inside
from doctor.live.connect import DnsAnswer


def path(mtu: int, lost: set[int] | None = None, announce: bool = False):
    """An echo function for a path carrying ``mtu`` bytes; ``lost``: sizes whose first echo
    is lost; ``announce``: larger ones get ICMP fragmentation-needed instead of silence."""
    once = set(lost or ())
    asked: list[int] = []

    def echo(size: int) -> tuple[str, int | None]:
        asked.append(size)
        if size in once:
            once.discard(size)
            return "silence", None
        if size <= mtu:
            return "answered", None
        return ("too big", mtu) if announce else ("silence", None)

    return echo, asked


def test_the_bisection_finds_the_largest_size_that_gets_through():
    echo, asked = path(1400)
    largest, announced = inside.bisect_mtu(echo, 1500)
    assert largest is not None and 1392 <= largest <= 1400 and announced is None
    assert len(asked) <= 24  # what run()'s budget allows for


def test_one_lost_echo_is_no_black_hole():
    echo, asked = path(1500, lost={1500})
    assert inside.bisect_mtu(echo, 1500) == (1500, None)
    assert asked == [1500, 1500]


def test_an_announced_mtu_and_a_silent_destination():
    assert inside.bisect_mtu(path(1400, announce=True)[0], 1500) == (None, 1400)
    assert inside.bisect_mtu(lambda size: ("silence", None), 1500) == (None, None)


def test_the_search_list_is_walked_as_a_stub_resolver_does(monkeypatch):
    said = {
        "db.corp.test": ("nxdomain", ()),
        "db.lab.test": ("timeout", ()),
        "db": ("answered", ("172.30.0.3",)),
    }

    def query(name: str, server: str, timeout: float) -> DnsAnswer:
        outcome, addresses = said[name]
        return DnsAnswer(name, server, outcome, addresses, 5)

    monkeypatch.setattr(inside, "query", query)
    answer = inside.resolve(["db.corp.test", "db"], "127.0.0.11", 1.0)
    assert (answer.name, answer.addresses, answer.waited) == ("db", ("172.30.0.3",), 5)
    assert len(answer.before) == 1 and "db.corp.test" in answer.before[0]
    # Silence at a search domain ends the lookup: the name itself is never asked.
    stopped = inside.resolve(["db.lab.test", "db"], "127.0.0.11", 1.0)
    assert (stopped.name, stopped.outcome) == ("db.lab.test", "timeout")


def ip_header(source: str) -> bytes:
    import socket

    return bytes([0x45]) + bytes(11) + socket.inet_aton(source) + bytes(4)


def test_echo_packets_are_built_and_read_as_the_kernel_does():
    import struct

    request = inside._echo_request(0x1234, 1400, 1372)
    assert len(request) == 8 + 1372 and inside._checksum(request) == 0  # a valid checksum
    reply = ip_header("198.18.0.2") + struct.pack(">BBHHH", 0, 0, 0, 0x1234, 1400)
    assert inside._echo_answer(reply, 0x1234, 1400, "198.18.0.2") == ("answered", None)
    assert inside._echo_answer(reply, 0x1234, 1401, "198.18.0.2") is None  # another echo's
    original = ip_header("172.17.0.2") + request[:8]
    too_big = ip_header("10.0.0.1") + struct.pack(">BBHHH", 3, 4, 0, 0, 1400) + original
    assert inside._echo_answer(too_big, 0x1234, 1400, "198.18.0.2") == ("too big", 1400)
