"""The Engine API's HTTP over a unix socket, against a server that answers with set bytes:
each way of delimiting a body, a kept-alive connection the server drops, and answers that
break off or are not HTTP at all."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from doctor.collect.engine_api import UnixSocketClient
from doctor.errors import CannotDiagnose


class Server:
    """Answers each request read on a connection with the next of ``answers``; None closes
    the connection instead (as the daemon does with an idle kept-alive one). With
    ``close_after``, each connection is closed after its first answer."""

    def __init__(self, path: Path, answers: list[bytes | None], close_after: bool = False):
        self.answers = list(answers)
        self.close_after = close_after
        self.requests: list[bytes] = []
        self.connections = 0
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(str(path))
        self.listener.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.answers:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                while self.answers:
                    request = b""
                    while not request.endswith(b"\r\n\r\n"):
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        request += chunk
                    if not request:
                        break
                    self.requests.append(request)
                    answer = self.answers.pop(0)
                    if answer is None:
                        break
                    conn.sendall(answer)
                    if self.close_after:
                        break


@pytest.fixture
def serve(tmp_path: Path) -> Iterator:
    servers: list[Server] = []

    def start(*answers: bytes | None, close_after: bool = False) -> tuple[UnixSocketClient, Server]:
        server = Server(tmp_path / "docker.sock", list(answers), close_after)
        servers.append(server)
        return UnixSocketClient(str(tmp_path / "docker.sock"), timeout=2.0), server

    yield start
    for server in servers:
        server.listener.close()


def test_bodies_by_length_by_chunks_and_by_close(serve) -> None:
    client, server = serve(
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nhello",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"4;ext=1\r\n[1,2\r\n3\r\n,3]\r\n0\r\nX-Trailer: t\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.0 200 OK\r\nConnection: close\r\n\r\nuntil the end",
    )
    assert client.get("/version") == b"hello"
    assert client.get("/containers/json", all=1) == b"[1,2,3]"
    assert server.connections == 1  # kept alive between the two
    assert server.requests[1].startswith(b"GET /containers/json?all=1 HTTP/1.1\r\n")
    server.listener.close()
    # the third answer is on the same connection, and ends when the server closes it
    assert client.get("/info") == b"until the end"


def test_a_connection_the_daemon_dropped_while_idle_is_asked_again_on_a_fresh_one(serve) -> None:
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    client, server = serve(ok, None, ok)
    assert client.get("/version") == b"{}"
    assert client.get("/info") == b"{}"
    assert server.connections == 2
    assert [r.split(b" ")[1] for r in server.requests] == [b"/version", b"/info", b"/info"]


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nnot sixteen",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: -3\r\n\r\n",
        b"SSH-2.0-OpenSSH_9.2\r\n",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabcd\r\n0\r\n\r\n",
    ],
    ids=[
        "short",
        "short-chunk",
        "bad-chunk-size",
        "negative-length",
        "not-http",
        "long-line",
        "chunk-longer-than-said",
    ],
)
def test_an_answer_that_breaks_off_or_is_not_http_is_one_clear_error(serve, answer) -> None:
    client, _ = serve(answer, close_after=True)
    with pytest.raises(CannotDiagnose, match="broke off its answer"):
        client.get("/version")


def test_no_daemon_is_the_usual_one_line(tmp_path: Path) -> None:
    client = UnixSocketClient(str(tmp_path / "absent.sock"), timeout=1.0)
    with pytest.raises(CannotDiagnose, match=r"no socket at .*absent\.sock"):
        client.get("/version")


def test_a_daemon_that_does_not_answer_is_written_off_at_the_timeout(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "mute.sock"))
    listener.listen()
    try:
        client = UnixSocketClient(str(tmp_path / "mute.sock"), timeout=0.3)
        with pytest.raises(CannotDiagnose, match=r"did not answer within 0\.3 s"):
            client.get("/version")
    finally:
        listener.close()


def test_an_answer_that_trickles_in_is_written_off_at_the_request_timeout(tmp_path: Path) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(tmp_path / "slow.sock"))
    listener.listen()

    def trickle() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n")
            for _ in range(20):  # a byte every 0.15 s: no single read waits 0.5 s
                time.sleep(0.15)
                try:
                    conn.sendall(b"x")
                except OSError:
                    return

    threading.Thread(target=trickle, daemon=True).start()
    client = UnixSocketClient(str(tmp_path / "slow.sock"), timeout=0.5)
    began = time.monotonic()
    try:
        with pytest.raises(CannotDiagnose, match=r"did not answer within 0\.5 s"):
            client.get("/version")
        assert time.monotonic() - began < 1.5
    finally:
        listener.close()
