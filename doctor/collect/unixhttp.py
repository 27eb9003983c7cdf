"""HTTP/1.1 GET over a unix socket: all the Engine API needs of http.client here, without the
~25 ms its imports (email, ssl) add to every start. An answer's body is delimited as RFC 9112
says: by Content-Length, by chunks (how the daemon sends anything over 4 KiB), or by the
daemon closing the connection."""

from __future__ import annotations

import io
import socket
import time

MAX_LINE = 65536  # a status or header line longer than this is not the Engine API talking


class Closed(ConnectionError):
    """The daemon closed the connection before it answered: a kept-alive connection that it
    dropped while idle. Asking again on a fresh one is safe, for a GET changes nothing."""


class Connection:
    """One kept-alive connection to the HTTP server on ``path``. Not thread-safe."""

    def __init__(self, path: str, timeout: float):
        self.path = path
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._file: io.BufferedReader | None = None
        self._deadline = 0.0  # of the request being answered: a trickle must not outlast it

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
        self._sock = self._file = None

    def get(self, target: str) -> tuple[int, bytes]:
        """GET ``target`` (a path with its query, already quoted): the status and the body,
        all within the connection's timeout."""
        self._deadline = time.monotonic() + self.timeout
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout)
                sock.connect(self.path)
            except BaseException:
                sock.close()
                raise
            self._sock, self._file = sock, sock.makefile("rb")
        assert self._file is not None
        request = f"GET {target} HTTP/1.1\r\nHost: docker\r\nUser-Agent: docker-doctor\r\n\r\n"
        self._sock.sendall(request.encode("ascii"))
        while True:
            status, headers = self._head()
            if status == 101 or not 100 <= status < 200:  # interim ones precede the real one
                break
        if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
            body = self._chunked()
        elif b"content-length" in headers:
            body = self._exactly(_number(headers[b"content-length"], 10))
        elif status in (204, 304):
            body = b""
        else:
            body = self._until(None)
            headers[b"connection"] = b"close"
        if headers.get(b"connection", b"").lower() == b"close":
            self.close()
        return status, body

    def _reading(self) -> io.BufferedReader:
        """The answer's stream, its next read bounded by what is left of the request's time."""
        assert self._file is not None and self._sock is not None
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")
        self._sock.settimeout(left)
        return self._file

    def _line(self) -> bytes:
        line = self._reading().readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise ConnectionError("the Docker daemon's answer has a line too long for HTTP")
        return line

    def _head(self) -> tuple[int, dict[bytes, bytes]]:
        first = self._line()
        if not first:
            raise Closed("the connection was closed before an answer")
        version, _, rest = first.partition(b" ")
        code = rest[:3]
        if not version.startswith(b"HTTP/1.") or not code.isdigit():
            raise ConnectionError(f"not an HTTP answer: {first[:80]!r}")
        headers: dict[bytes, bytes] = {}
        while (line := self._line()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        return int(code), headers

    def _exactly(self, size: int) -> bytes:
        data = self._until(size)
        if len(data) < size:
            raise ConnectionError(f"the answer ended after {len(data)} of {size} bytes")
        return data

    def _until(self, size: int | None) -> bytes:
        """``size`` bytes (None: all until the close) or fewer where the answer ends; one
        read at a time, so that the request's deadline bounds the whole, not each read."""
        parts, got = [], 0
        while size is None or got < size:
            chunk = self._reading().read1(65536 if size is None else min(65536, size - got))
            if not chunk:
                break
            parts.append(chunk)
            got += len(chunk)
        return b"".join(parts)

    def _chunked(self) -> bytes:
        parts = []
        while size := _number(self._line().split(b";")[0], 16):
            parts.append(self._exactly(size))
            if self._exactly(2) != b"\r\n":  # each chunk ends with CRLF, or the sizes lie
                raise ConnectionError("a chunk of the answer is not the size it says")
        while self._line() not in (b"\r\n", b"\n", b""):
            pass  # trailer fields: none the Engine API sends matter
        return b"".join(parts)


def _number(text: bytes, base: int) -> int:
    """A length from the answer's framing; an error that says so for anything else."""
    try:
        value = int(text.strip(), base)
    except ValueError:
        raise ConnectionError(f"not an HTTP length: {text[:40]!r}") from None
    if value < 0:
        raise ConnectionError(f"not an HTTP length: {text[:40]!r}")
    return value
