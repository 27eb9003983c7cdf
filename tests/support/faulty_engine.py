"""A unix socket in front of the real engine's, for faults at a chosen moment of a run: every
request is passed on to the daemon, except the first one a :class:`Fault` matches, which is
broken off, left unanswered, answered with garbage, or answered only after something was done
to the engine (a container removed, or killed once its inspect was read; the daemon killed).
The doctor is pointed at it with DOCKER_HOST; nothing of the engine itself is changed but by
the faults' actions."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

#: "close": that connection is closed unanswered; "die": that one and every later one (the
#: daemon is gone); "stall": never answered; "garbage": answered with what is not HTTP
Action = Literal["pass", "close", "die", "stall", "garbage"]


@dataclass
class Fault:
    """At the first request whose path ``when`` accepts: ``before`` runs, then ``action``;
    with "pass", ``after`` runs between the daemon's answer and its relay."""

    when: Callable[[str], bool]
    action: Action = "pass"
    before: Callable[[], None] | None = None
    after: Callable[[], None] | None = None
    met: threading.Event = field(default_factory=threading.Event)


class FaultyEngine:
    def __init__(self, directory: Path, upstream: str, fault: Fault):
        self.path = str(directory / "engine.sock")
        self.upstream = upstream
        self.fault = fault
        self.requests: list[str] = []
        self.answered: list[str] = []  # the paths whose answers were relayed in full
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(self.path)
        self._listener.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def host(self) -> str:
        return f"unix://{self.path}"

    def close(self) -> None:
        self._stop.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                head += chunk
            path = head.split(b" ", 2)[1].decode()
            with self._lock:
                self.requests.append(path)
                hit = not self.fault.met.is_set() and self.fault.when(path)
                if hit:
                    self.fault.met.set()
            dead = self.fault.action == "die" and self.fault.met.is_set()
            action: Action = self.fault.action if hit or dead else "pass"
            if hit and self.fault.before:
                self.fault.before()
            if action in ("close", "die"):
                return
            if action == "stall":
                self._stop.wait()
                return
            if action == "garbage":
                conn.sendall(b"\x00\xffnot http at all\r\n\r\n")
                return
            try:
                answer = self._ask(head)
            except OSError:  # the daemon itself is gone (a fault's action killed it)
                return
            if hit and self.fault.after:
                self.fault.after()
            try:
                conn.sendall(answer)
            except OSError:  # the doctor gave up meanwhile (a daemon stopped, then continued)
                return
            with self._lock:
                self.answered.append(path)

    def _ask(self, head: bytes) -> bytes:
        """The daemon's whole answer to ``head``, asked on a connection of its own that the
        daemon closes after answering (so the relay ends where the answer does)."""
        request = head.split(b"\r\n\r\n", 1)[0] + b"\r\nConnection: close\r\n\r\n"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as up:
            up.connect(self.upstream)
            up.sendall(request)
            chunks = []
            while chunk := up.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)
