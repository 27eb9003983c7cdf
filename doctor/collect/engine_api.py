"""Talk to the Docker Engine API, wherever DOCKER_CONTEXT, DOCKER_HOST or the CLI's context points.

A local ``unix://`` socket (nearly every Linux host) is spoken to by
:mod:`doctor.collect.unixhttp`: importing the docker SDK costs ~150 ms, more than the docker
CLI needs for the whole job, and http.client ~25 ms. Every other endpoint (tcp with TLS,
ssh) goes through the SDK.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote, urlencode

from msgspec import Struct

from doctor.collect import unixhttp
from doctor.errors import CannotDiagnose, UsageError

DEFAULT_HOST = "unix:///var/run/docker.sock"
SOCKET_DEFAULTS = {"unix": "/var/run/docker.sock", "npipe": "//./pipe/docker_engine"}


class ClientFlags(Struct, frozen=True):
    """The docker CLI's global options, as given on the command line (docker-doctor takes them
    too, and the docker CLI passes them on to ``docker doctor``); None or False: not given."""

    config: str | None = None  # --config DIR: the CLI's configuration directory
    context: str | None = None  # -c/--context NAME
    host: str | None = None  # -H/--host URL
    tls: bool = False  # --tls: TLS without verifying the daemon
    tlsverify: bool = False  # --tlsverify: TLS, verifying the daemon against the CA
    tlscacert: str | None = None
    tlscert: str | None = None
    tlskey: str | None = None


class Tls(Struct, frozen=True):
    ca: str | None
    cert: str | None
    key: str | None
    verify: bool


class Endpoint(Struct, frozen=True):
    host: str
    source: str  # how it was chosen: "-H", "DOCKER_HOST", "context NAME", "default"
    tls: Tls | None = None


def resolve_endpoint(
    env: Mapping[str, str] | None = None, flags: ClientFlags | None = None
) -> Endpoint:
    """The endpoint the docker CLI would use, in its order: --context, -H, DOCKER_HOST,
    DOCKER_CONTEXT, the configuration's current context, the default socket."""
    env = os.environ if env is None else env
    flags = flags or ClientFlags()
    if flags.context and flags.host:
        raise UsageError("conflicting options: either specify --host or --context, not both")
    config_dir = Path(flags.config or env.get("DOCKER_CONFIG") or Path.home() / ".docker")
    context = flags.context
    if not context and flags.host:
        return _default_context(flags.host, "-H", flags, env, config_dir)
    if not context and env.get("DOCKER_HOST"):
        return _default_context(env["DOCKER_HOST"], "DOCKER_HOST", flags, env, config_dir)
    context = context or env.get("DOCKER_CONTEXT")
    if not context:
        try:
            context = json.loads((config_dir / "config.json").read_text()).get("currentContext")
        except (OSError, ValueError):
            context = None
    if not context or context == "default":  # the default context: -H, else DOCKER_HOST
        return _default_context(
            flags.host or env.get("DOCKER_HOST") or "", "default", flags, env, config_dir
        )
    import hashlib  # here: only a named context needs it (~6 ms to import)

    digest = hashlib.sha256(context.encode()).hexdigest()
    try:
        meta = json.loads((config_dir / "contexts" / "meta" / digest / "meta.json").read_text())
    except (OSError, ValueError):
        raise CannotDiagnose(
            f"docker context {context!r} not found in {config_dir}/contexts"
        ) from None
    docker = meta.get("Endpoints", {}).get("docker", {})
    tls_dir = config_dir / "contexts" / "tls" / digest / "docker"
    tls = None
    if tls_dir.is_dir():  # a context keeps only the files it was given (often ca.pem alone)
        ca, cert, key = (_existing(tls_dir / name) for name in ("ca.pem", "cert.pem", "key.pem"))
        tls = Tls(ca, cert, key, verify=not docker.get("SkipTLSVerify"))
    return Endpoint(docker.get("Host") or DEFAULT_HOST, f"context {context}", tls)


def _default_context(
    host: str, source: str, flags: ClientFlags, env: Mapping[str, str], config_dir: Path
) -> Endpoint:
    tls = _flag_tls(flags, env, config_dir)
    return Endpoint(parse_host(host, default_to_tls=tls is not None), source, tls)


def parse_host(value: str, default_to_tls: bool = False) -> str:
    """-H or DOCKER_HOST as the docker CLI completes it: no scheme is tcp, a tcp address without
    a port gets 2375, an empty one the default (tcp://localhost:2376 with TLS)."""
    host = value.strip()
    if not host:
        return "tcp://localhost:2376" if default_to_tls else DEFAULT_HOST
    scheme, found, rest = host.partition("://")
    if not found:
        scheme, rest = "tcp", host
    if scheme in ("unix", "npipe"):
        if "://" in rest:
            raise UsageError(f"invalid proto, expected {scheme}: {value}")
        return f"{scheme}://{rest or SOCKET_DEFAULTS[scheme]}"
    if scheme in ("ssh", "fd"):
        return host
    if scheme != "tcp":
        raise UsageError(f"invalid bind address format: {value}")
    if not rest:
        return "tcp://localhost:2375"
    address, slash, path = rest.partition("/")
    name, port = address, ""
    if address.startswith("["):  # [v6]:port
        name, _, port = address[1:].partition("]")
        port = port.removeprefix(":")
    elif address.count(":") == 1:
        name, _, port = address.partition(":")
    if not port.isdigit() and port:
        raise UsageError(f"invalid bind address format: {value}")
    name = name or "localhost"
    shown = f"[{name}]" if ":" in name else name
    return f"tcp://{shown}:{port or 2375}" + (slash + path if slash else "")


def _flag_tls(flags: ClientFlags, env: Mapping[str, str], config_dir: Path) -> Tls | None:
    """TLS for -H, DOCKER_HOST or the default context, as the docker CLI takes it from its
    flags and DOCKER_TLS_VERIFY / DOCKER_TLS / DOCKER_CERT_PATH: default files that do not
    exist are left out, given ones are kept."""
    verify = flags.tlsverify or bool(env.get("DOCKER_TLS_VERIFY"))
    if not (verify or flags.tls or env.get("DOCKER_TLS")):
        return None
    certs = Path(env.get("DOCKER_CERT_PATH") or config_dir)
    return Tls(
        flags.tlscacert or _existing(certs / "ca.pem"),
        flags.tlscert or _existing(certs / "cert.pem"),
        flags.tlskey or _existing(certs / "key.pem"),
        verify,
    )


def _existing(path: Path) -> str | None:
    return str(path) if path.exists() else None


class NotFound(RuntimeError):
    """The object went away between listing and reading it (a container removed meanwhile)."""


def _check_status(path: str, status: int, body: bytes) -> None:
    if status == 404:
        raise NotFound(path)
    if status >= 400:
        raise RuntimeError(f"Engine API GET {path}: HTTP {status}: {body[:200]!r}")


class EngineClient(Protocol):
    def get(self, path: str, **query: Any) -> bytes: ...


def connect(endpoint: Endpoint, timeout: float) -> EngineClient:
    if endpoint.host.startswith("unix://"):
        return UnixSocketClient(endpoint.host.removeprefix("unix://"), timeout)
    return SdkClient(endpoint, timeout)


def get_json(client: EngineClient, path: str, **query: Any) -> Any:
    return json.loads(client.get(path, **query))


class UnixSocketClient:
    def __init__(self, socket_path: str, timeout: float):
        self.socket_path = socket_path
        self.timeout = timeout
        self._local = threading.local()

    def _connection(self) -> unixhttp.Connection:
        # One kept-alive connection per thread: a connection is not thread-safe, and a
        # hundred inspect requests cost less without a connect and teardown each.
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = unixhttp.Connection(self.socket_path, self.timeout)
        return conn

    def get(self, path: str, **query: Any) -> bytes:
        url = quote(path) + (f"?{urlencode(query)}" if query else "")
        conn = self._connection()
        try:
            try:
                status, body = conn.get(url)
            except (unixhttp.Closed, BrokenPipeError, ConnectionResetError):
                conn.close()  # the daemon closed an idle connection: once more, on a fresh one
                status, body = conn.get(url)
        except BaseException as exc:
            conn.close()  # a half-read answer leaves the connection unusable
            error = self._unreachable(exc)
            if error is exc:
                raise
            raise error from None
        _check_status(path, status, body)
        return body

    def _unreachable(self, exc: BaseException) -> BaseException:
        """What to tell the user for ``exc``, met while asking the daemon (``exc`` itself
        when it is not about the daemon: an interrupt, a bug)."""
        where = self.socket_path
        start = " (is it running? try: sudo systemctl start docker)"
        if isinstance(exc, FileNotFoundError):
            return CannotDiagnose(f"cannot reach the Docker daemon: no socket at {where}{start}")
        if isinstance(exc, ConnectionRefusedError):
            return CannotDiagnose(
                f"cannot reach the Docker daemon at {where}: connection refused{start}"
            )
        if isinstance(exc, PermissionError):
            return CannotDiagnose(
                f"permission denied on {where}: run with sudo, or join the docker"
                " group (sudo usermod -aG docker $USER, then log in again)"
            )
        if isinstance(exc, TimeoutError):
            return CannotDiagnose(
                f"the Docker daemon at {where} did not answer within {self.timeout:.1f} s"
            )
        if isinstance(exc, ConnectionError):  # not refused: it broke off, or spoke no HTTP
            return CannotDiagnose(f"the Docker daemon at {where} broke off its answer: {exc}")
        if isinstance(exc, OSError):  # a path too long, or through a file: no socket there
            return CannotDiagnose(
                f"cannot reach the Docker daemon at {where}: {exc.strerror or exc}"
            )
        return exc


class SdkClient:
    """Any endpoint the docker SDK speaks: tcp:// (with TLS), ssh://, npipe://."""

    def __init__(self, endpoint: Endpoint, timeout: float):
        import docker  # deferred: the import alone costs ~150 ms
        from docker.errors import DockerException

        tls: Any = False
        if endpoint.tls:
            client_cert = (
                (endpoint.tls.cert, endpoint.tls.key)
                if endpoint.tls.cert and endpoint.tls.key
                else None
            )
            tls = docker.tls.TLSConfig(
                client_cert=client_cert, ca_cert=endpoint.tls.ca, verify=endpoint.tls.verify
            )
        try:
            self.api = docker.APIClient(
                base_url=endpoint.host, tls=tls, timeout=max(1, round(timeout)), version="auto"
            )
        except DockerException as exc:
            raise CannotDiagnose(
                f"cannot reach the Docker daemon at {endpoint.host}: {exc}"
            ) from None
        self.host = endpoint.host
        self.errors = DockerException

    def get(self, path: str, **query: Any) -> bytes:
        try:
            # APIClient is a requests.Session; the engine's versioned URL, as the SDK builds it.
            url = f"{self.api.base_url}/v{self.api.api_version}{quote(path)}"
            response = self.api.get(url, params=query or None, timeout=self.api.timeout)
        except Exception as exc:  # requests' and the SDK's many connection errors
            raise CannotDiagnose(f"cannot reach the Docker daemon at {self.host}: {exc}") from None
        _check_status(path, response.status_code, response.content)
        return bytes(response.content)
