"""Which containers a run reads in full: the ones its question can involve.

One list call (``GET /containers/json?all=1``) names every container with its state,
published and exposed ports, networks and addresses. Inspecting a container and entering
its network namespace costs a request and several file reads each; a diagnosis of one
port needs a handful of containers, not the host's thousand. So a diagnosis reads:

- every container that is not running (cheap: no namespace to enter; only its inspect
  says which ports it asked for, which explains a port nobody serves);
- every container on the host's network, or sharing another's namespace (its sockets
  are the host's, or that other container's);
- for a port: the containers that publish it as a host port (either protocol: they may
  hold what another asks for), and those that expose it when the target names no container;
- for a name or address: the containers it names (by name, ID, Compose service or
  address) and the running peers on their user-defined networks (a peer may hold the
  name as an alias, which the list does not show);
- for ``--from``: the source, and its peers likewise.

A name that matches no container (it may be an alias, a link or a host elsewhere), a
``--client`` flow, a checkup (of the host, or of one container) and a bundle read
everything. After the path is built, a diagnosis widens to everything when the path found
nobody serving the port (who listens on it unpublished is then the question), or when
``--from``'s destination does not listen (who does is). The snapshot keeps the list and this
scope, so a replay knows what was read and why the rest was not.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from msgspec import Struct

HOST_NAMES = ("localhost", "host.docker.internal", "gateway.docker.internal")
COMPOSE_SERVICE = "com.docker.compose.service"


class Question(Struct, frozen=True):
    """What a diagnosis asks, as far as choosing containers goes: the target as typed
    (parsed, not resolved) and the --from source."""

    input: str  # the target as typed, for the scope's reason
    host: str | None  # None: this host over loopback
    port: int | None
    source: str | None = None  # --from CONTAINER
    #: why every container is wanted after all (the path asked); None: only those involved
    widened: str | None = None

    @property
    def host_port(self) -> int | None:
        """The port, when it is one of this host's (or beyond): not a container's own port."""
        on_host = self.host is None or self.host in HOST_NAMES or _is_address(self.host)
        return self.port if on_host else None


class Scope(Struct, frozen=True):
    """The containers a run read in full, each with why; the rest were only listed."""

    complete: bool  # every container was read
    why: str  # why this many: "the host checkup reads every container", "what web1:80 involves"
    read: dict[str, str]  # container ID -> why it was read (all of them when complete)
    listed: int = 0  # containers the engine listed

    def detail(self) -> str:
        if self.complete:
            return ""
        return (
            f"read {len(self.read)} of {self.listed} containers ({self.why}); "
            "the rest were only listed"
        )


def everything(why: str, summaries: Iterable[Mapping[str, Any]]) -> Scope:
    listed = list(summaries)
    return Scope(True, why, {s["Id"]: why for s in listed}, len(listed))


def involved(question: Question | None, summaries: list[Mapping[str, Any]]) -> Scope:
    """The containers ``question`` can involve, from the list's summaries; None: everything."""
    if question is None:
        return everything("a checkup or a bundle reads every container", summaries)
    if question.widened:
        return everything(question.widened, summaries)
    read = {s["Id"]: why for s in summaries if (why := _always(s))}
    named: dict[str, str] = {}  # a container reference -> why what it names is read
    if question.source:
        named[question.source] = f"--from {question.source}"
    if question.host and question.host not in HOST_NAMES:
        named.setdefault(question.host, f"the target {question.host}")
    matches = {ref: _matching(ref, summaries) for ref in named}
    if question.port is not None:
        exposers = not (question.host and matches.get(question.host))  # a port of this host
        _add_port_holders(read, question.port, exposers, summaries)
    for ref, why in named.items():
        if not matches[ref]:
            if _is_address(ref):
                continue  # an address of this host or beyond: the port decides
            return everything(f"{ref} names no container by name, ID or service", summaries)
        if any(s.get("State") != "running" for s in matches[ref]):
            # Only its inspect says which host ports it asked for, and who holds them matters.
            return everything(f"{ref} is not running", summaries)
        _add_with_peers(read, ref, why, matches[ref], summaries)
    joined = {
        m.removeprefix("container:") for s in summaries if (m := _mode(s)).startswith("container:")
    }
    for s in summaries:
        if s["Id"] in joined or _names(s) & joined:
            read.setdefault(s["Id"], "another container shares its network namespace")
    return Scope(False, f"what {question.input} can involve", read, len(summaries))


def _add_port_holders(
    read: dict[str, str], port: int, exposers: bool, summaries: list[Mapping[str, Any]]
) -> None:
    """The containers publishing host port ``port`` (either protocol: they may hold what
    another asks for) and, with ``exposers``, those that expose it unpublished."""
    for s in summaries:
        ports = s.get("Ports") or ()
        if any(p.get("PublicPort") == port for p in ports):
            read.setdefault(s["Id"], f"publishes port {port}")
        elif exposers and any(p.get("PrivatePort") == port for p in ports):
            read.setdefault(s["Id"], f"exposes port {port}")


def _add_with_peers(
    read: dict[str, str],
    ref: str,
    why: str,
    matches: list[Mapping[str, Any]],
    summaries: list[Mapping[str, Any]],
) -> None:
    """The containers ``ref`` names, and the running peers on their user-defined networks (a
    container in another's namespace has that one's networks)."""
    owners = [
        o
        for s in matches
        if _mode(s).startswith("container:")
        for o in _matching(_mode(s).removeprefix("container:"), summaries)
    ]
    for s in matches:
        read.setdefault(s["Id"], why)
    networks = {n for s in [*matches, *owners] for n in _user_networks(s)}
    for s in summaries:
        if s.get("State") == "running" and networks & _user_networks(s):
            read.setdefault(s["Id"], f"shares a network with {ref}")


def _always(s: Mapping[str, Any]) -> str | None:
    if s.get("State") != "running":
        return f"{s.get('State') or 'not running'}: its inspect says what it asked for"
    if _mode(s) == "host":
        return "on the host's network: its sockets are the host's"
    if _mode(s).startswith("container:"):
        return "in another container's network namespace"
    return None


def _mode(s: Mapping[str, Any]) -> str:
    return str((s.get("HostConfig") or {}).get("NetworkMode") or "")


def _names(s: Mapping[str, Any]) -> set[str]:
    return {name.lstrip("/") for name in s.get("Names") or ()}


def _networks(s: Mapping[str, Any]) -> Mapping[str, Any]:
    return (s.get("NetworkSettings") or {}).get("Networks") or {}


def _user_networks(s: Mapping[str, Any]) -> set[str]:
    return {name for name in _networks(s) if name not in ("bridge", "host", "none")}


def _is_address(ref: str) -> bool:
    try:
        ipaddress.ip_address(ref)
    except ValueError:
        return False
    return True


def _matching(ref: str, summaries: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The containers ``ref`` names: a name (or NAME.NETWORK), an ID prefix, a Compose
    service, or one of their addresses."""
    short = ref if _is_address(ref) else ref.split(".", 1)[0]
    found = []
    for s in summaries:
        addresses = {
            address
            for endpoint in _networks(s).values()
            for address in (endpoint.get("IPAddress"), endpoint.get("GlobalIPv6Address"))
            if address
        }
        if (
            ref in _names(s)
            or short in _names(s)
            or (len(ref) >= 3 and s["Id"].startswith(ref))
            or (s.get("Labels") or {}).get(COMPOSE_SERVICE) in (ref, short)
            or ref in addresses
        ):
            found.append(s)
    return found
