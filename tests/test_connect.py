"""Connects side by side from one thread, against real sockets on loopback: each way a TCP or
UDP peer can answer, a connect that gets no answer, and more connects than may be open at once."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from msgspec.structs import replace

from doctor.bounded import run_jobs
from doctor.live import confirm, connect
from doctor.live.confirm import settled
from doctor.live.connect import probe_all
from doctor.path.target import TargetSpec


def _serve(handle: Callable[[socket.socket], None]) -> Iterator[int]:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    stop = threading.Event()

    def loop() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            handle(conn)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield port
    stop.set()
    thread.join()
    server.close()


held: list[socket.socket] = []


@pytest.fixture
def silent() -> Iterator[int]:
    yield from _serve(held.append)  # accepts and keeps the connection open, saying nothing
    for conn in held:
        conn.close()
    held.clear()


@pytest.fixture
def banner() -> Iterator[int]:
    yield from _serve(lambda conn: (conn.sendall(b"SSH-2.0-x\r\n"), conn.close()))


@pytest.fixture
def hangs_up() -> Iterator[int]:
    yield from _serve(lambda conn: conn.close())  # as docker-proxy does when its backend refuses


@pytest.fixture
def resets() -> Iterator[int]:
    def reset(conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()

    yield from _serve(reset)


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # bound, never listened, now released: refused


@pytest.fixture
def udp_echo() -> Iterator[tuple[int, int]]:
    """An echoing UDP port and a silent one."""
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", 0))
    mute = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    mute.bind(("127.0.0.1", 0))
    stop = threading.Event()

    def loop() -> None:
        echo.settimeout(0.1)
        while not stop.is_set():
            try:
                data, peer = echo.recvfrom(512)
            except TimeoutError:
                continue
            echo.sendto(data, peer)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    yield echo.getsockname()[1], mute.getsockname()[1]
    stop.set()
    thread.join()
    echo.close()
    mute.close()


def test_each_answer_a_peer_can_give(silent, banner, hangs_up, resets, closed_port, udp_echo):
    echo, mute = udp_echo
    seen = probe_all(
        [
            ("127.0.0.1", silent, "tcp", True),
            ("127.0.0.1", banner, "tcp", True),
            ("127.0.0.1", hangs_up, "tcp", True),
            ("127.0.0.1", resets, "tcp", True),
            ("127.0.0.1", closed_port, "tcp", True),
            ("127.0.0.1", silent, "tcp", False),
            ("127.0.0.1", echo, "udp", False),
            ("127.0.0.1", mute, "udp", False),
            ("127.0.0.1", closed_port, "udp", False),
        ],
        timeout=1.0,
    )
    assert [(o.port, o.outcome) for o in seen] == [
        (silent, "open"),
        (banner, "answered"),
        (hangs_up, "closed"),
        (resets, "closed"),
        (closed_port, "refused"),
        (silent, "open"),
        (echo, "answered"),
        (mute, "silent"),
        (closed_port, "refused"),
    ]
    assert seen[3].detail == "connected, then reset by the peer"
    assert seen[8].detail == "ICMP port unreachable"


def test_a_connect_nobody_answers_ends_at_its_timeout():
    # A listener that never accepts, its backlog full: further SYNs are dropped unanswered.
    server = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = server.getsockname()[1]
    fillers = []
    try:
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        time.sleep(0.05)
        began = time.monotonic()
        (seen,) = probe_all([("127.0.0.1", port, "tcp", True)], timeout=0.4)
        assert (seen.outcome, seen.detail) == ("timeout", "no answer within 0.4 s")
        assert 0.35 < time.monotonic() - began < 1.5
    finally:
        for filler in fillers:
            filler.close()
        server.close()


def test_more_connects_than_may_be_open_at_once_all_end_from_one_thread(silent, monkeypatch):
    monkeypatch.setattr(connect, "MAX_OPEN", 50)
    threads = threading.active_count()
    began = time.monotonic()
    seen = probe_all([("127.0.0.1", silent, "tcp", True)] * 300, timeout=1.0)
    assert [o.outcome for o in seen] == ["open"] * 300
    # six rounds of 50, each lingering 50 ms for a hang-up: not 300 lingers one by one
    assert time.monotonic() - began < 300 * connect.LINGER / 2
    assert threading.active_count() == threads


def test_a_connect_that_is_no_address_and_port_is_an_error_and_the_rest_go_on(silent) -> None:
    seen = probe_all(
        [("127.0.0.1", 70000, "tcp", False), ("127.0.0.1", silent, "tcp", False)], timeout=1.0
    )
    assert [o.outcome for o in seen] == ["error", "open"]


def test_an_early_connect_that_failed_at_once_is_made_again_once_the_probes_have_read(
    closed_port, hangs_up, silent
) -> None:
    """A container restarting while the probes read: its port refused or hung up on the early
    connect; now it listens (``silent``), and the early result says what is true now. A port
    still closed, or a peer that still hangs up, says so again; one that was open stays."""
    spec = TargetSpec(f"127.0.0.1:{closed_port}", "127.0.0.1", closed_port, "tcp")
    job = confirm.loopback_job(spec)
    assert job is not None
    early = run_jobs([job], time.monotonic() + 5)[job.name]
    assert [o.outcome for o in early.value] == ["refused"]
    # the same observation, as if made of the port that now listens
    restarted = replace(early, value=[replace(early.value[0], port=silent)])
    assert [o.outcome for o in settled(restarted, time.monotonic() + 5).value] == ["open"]
    assert [o.outcome for o in settled(early, time.monotonic() + 5).value] == ["refused"]
    hung_up = probe_all([("127.0.0.1", hangs_up, "tcp", True)], 1.0)
    assert [o.outcome for o in hung_up] == ["closed"]
    again = settled(replace(early, value=hung_up), time.monotonic() + 5)
    assert [o.outcome for o in again.value] == ["closed"]
