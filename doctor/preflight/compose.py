"""Compose files for `docker-doctor preflight`: found, interpolated, merged, with lines kept.

The compose specification's rules, the parts networking depends on: the default file
names (compose.yaml, compose.yml, docker-compose.yaml, docker-compose.yml, plus the
matching .override file), several `-f` files merged in order (mappings merged, lists
appended, scalars replaced), `${VAR}` interpolation from the environment and `.env`
(`:-` `-` `:?` `?` `:+` `+`, `$$` for a dollar), short and long `ports` syntax.  Every
value keeps the file and line it came from, so a finding can point at `file:line`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from msgspec import Struct

from doctor.errors import UsageError

DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<plain>[A-Za-z_][A-Za-z0-9_]*)|"
    r"\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\})"
)
_PORT = re.compile(
    r"^(?:(?:\[(?P<v6>[^\]]+)\]|(?P<ip>\d+\.\d+\.\d+\.\d+)):)?(?:(?P<host>[0-9]*(?:-[0-9]+)?):)?"
    r"(?P<container>[0-9]+(?:-[0-9]+)?)(?:/(?P<proto>tcp|udp|sctp))?$"
)


class Where(Struct, frozen=True):
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


class Node(Struct):
    """A YAML value with where it was written."""

    value: Any  # dict[str, Node], list[Node], or a scalar
    where: Where
    tag: str | None = None  # !reset or !override: replaces what earlier files said
    raw: str | None = None  # a scalar as written: `22:22` is a port, not YAML 1.1's base-60 number

    def get(self, key: str) -> Node | None:
        return self.value.get(key) if isinstance(self.value, dict) else None

    def plain(self) -> Any:
        if isinstance(self.value, dict):
            return {k: v.plain() for k, v in self.value.items()}
        if isinstance(self.value, list):
            return [v.plain() for v in self.value]
        return self.value


class Port(Struct, frozen=True):
    host_ip: str  # "" for all interfaces
    host_port: int | None  # None: an ephemeral port the engine picks
    container_port: int
    protocol: str
    where: Where

    def __str__(self) -> str:
        host = f"{self.host_ip}:" if self.host_ip else ""
        published = f"{self.host_port}:" if self.host_port else ""
        return f"{host}{published}{self.container_port}/{self.protocol}"


class Service(Struct, frozen=True):
    name: str
    where: Where
    image: str
    ports: tuple[Port, ...]
    networks: dict[str, tuple[str, ...]]  # network -> aliases ("default" when none are named)
    network_mode: str | None
    depends_on: dict[str, str]  # service -> condition
    depends_where: dict[str, Where]
    links: tuple[str, ...]
    healthcheck: bool
    privileged: bool
    cap_add: tuple[str, ...]
    cap_drop: tuple[str, ...]
    user: str | None
    read_only: bool
    node: Node

    def line(self, key: str) -> Where:
        found = self.node.get(key)
        return found.where if found else self.where


class ComposeNetwork(Struct, frozen=True):
    name: str
    internal: bool
    external: bool
    subnets: tuple[str, ...]
    where: Where


class Project(Struct, frozen=True):
    name: str
    files: tuple[str, ...]
    services: tuple[Service, ...]
    networks: dict[str, ComposeNetwork]
    version: Where | None  # the obsolete top-level `version:` key, where it is

    def service(self, name: str) -> Service | None:
        return next((s for s in self.services if s.name == name), None)


def find_files(given: list[Path], directory: Path) -> list[Path]:
    if given:
        for path in given:
            if not path.is_file():
                raise UsageError(f"{path}: no such compose file")
        return given
    for name in DEFAULT_FILES:
        path = directory / name
        if path.is_file():
            stem, suffix = name.rsplit(".", 1)
            override = directory / f"{stem}.override.{suffix}"
            return [path, override] if override.is_file() else [path]
    raise UsageError(
        f"no compose file in {directory} ({', '.join(DEFAULT_FILES)}); name one: preflight FILE"
    )


def load(files: list[Path], environ: dict[str, str] | None = None) -> Project:
    env = _environment(files[0].parent, dict(os.environ) if environ is None else environ)
    merged: Node | None = None
    for path in files:
        node = _parse(path, env)
        merged = node if merged is None else _merge(merged, node)
    assert merged is not None
    if not isinstance(merged.value, dict):
        raise UsageError(f"{merged.where}: a compose file is a mapping (services: ...)")
    name = (
        env.get("COMPOSE_PROJECT_NAME")
        or _scalar(merged.get("name"))
        or files[0].resolve().parent.name
    )
    return Project(
        name=re.sub(r"[^a-z0-9_-]", "", name.lower()),
        files=tuple(str(f) for f in files),
        services=tuple(
            _service(n, node) for n, node in _mapping(merged.get("services"), "services").items()
        ),
        networks={
            n: _network(n, node) for n, node in _mapping(merged.get("networks"), "networks").items()
        },
        version=version.where if (version := merged.get("version")) else None,
    )


def _environment(directory: Path, environ: dict[str, str]) -> dict[str, str]:
    dotenv = directory / ".env"
    values: dict[str, str] = {}
    if dotenv.is_file():
        for line in dotenv.read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                key, _, value = line.removeprefix("export ").partition("=")
                values[key.strip()] = value.strip().strip("'\"")
    return {**values, **environ}


def _parse(path: Path, env: dict[str, str]) -> Node:
    import yaml  # deferred: only preflight reads YAML

    try:
        root = yaml.compose(path.read_text(), Loader=yaml.SafeLoader)
        if root is None:
            raise UsageError(f"{path}: empty compose file")
        return _node(root, str(path), env, yaml.SafeLoader(""))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{path}{line}: not valid YAML: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read: {exc}") from None


#: Compose's own YAML tags: a value that replaces (rather than merges with) the earlier file's.
REPLACING_TAGS = ("!reset", "!override")


def _node(node: Any, file: str, env: dict[str, str], loader: Any) -> Node:
    import yaml

    where = Where(file, node.start_mark.line + 1)
    tag = node.tag if node.tag in REPLACING_TAGS else None
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # `<<: *base` merge keys, as YAML loaders apply them
        return Node(
            {
                str(_node(k, file, env, loader).value): _node(v, file, env, loader)
                for k, v in node.value
            },
            where,
            tag,
        )
    if isinstance(node, yaml.SequenceNode):
        return Node([_node(v, file, env, loader) for v in node.value], where, tag)
    raw = node.value
    if node.tag in REPLACING_TAGS or node.tag == "tag:yaml.org,2002:str":
        value = raw
    else:
        value = loader.construct_object(node)
    if isinstance(value, str):
        value = _interpolate(value, env, where)
    return Node(value, where, tag, _interpolate(raw, env, where))


def _interpolate(text: str, env: dict[str, str], where: Where) -> str:
    def one(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["plain"] or match["name"]
        op, arg = match["op"] or "", match["arg"] or ""
        value = env.get(name)
        empty = value is None or (op.startswith(":") and value == "")
        if op.endswith("-"):
            return arg if empty else value or ""
        if op.endswith("?"):
            if empty:
                raise UsageError(f"{where}: ${{{name}}} is required: {arg or 'not set'}")
            return value or ""
        if op.endswith("+"):
            return "" if empty else arg
        return value or ""

    return _VARIABLE.sub(one, text)


def _merge(base: Node, over: Node) -> Node:
    if over.tag == "!reset":
        return Node(
            type(over.value)() if isinstance(over.value, (dict, list)) else None, over.where
        )
    if over.tag == "!override":
        return over
    if isinstance(base.value, dict) and isinstance(over.value, dict):
        merged = dict(base.value)
        for key, node in over.value.items():
            merged[key] = _merge(merged[key], node) if key in merged else node
        return Node(merged, base.where)
    if isinstance(base.value, list) and isinstance(over.value, list):
        seen = {repr(n.plain()) for n in base.value}
        return Node(base.value + [n for n in over.value if repr(n.plain()) not in seen], base.where)
    return over


def _mapping(node: Node | None, what: str) -> dict[str, Node]:
    if node is None or node.value is None:
        return {}
    if not isinstance(node.value, dict):
        raise UsageError(f"{node.where}: `{what}` must be a mapping")
    return node.value


def _scalar(node: Node | None) -> str | None:
    return None if node is None or node.value is None else str(node.value)


def _strings(node: Node | None) -> tuple[str, ...]:
    if node is None or node.value is None:
        return ()
    items = node.value if isinstance(node.value, list) else [node]
    return tuple(str(n.value) for n in items)


def _service(name: str, node: Node) -> Service:
    body = _mapping(node, f"services.{name}")
    networks_node = body.get("networks")
    if networks_node is None or networks_node.value is None:
        networks: dict[str, tuple[str, ...]] = {"default": ()}
    elif isinstance(networks_node.value, list):
        networks = {str(n.value): () for n in networks_node.value}
    else:
        networks = {
            k: _strings(v.get("aliases")) if v.value else () for k, v in networks_node.value.items()
        }
    depends: dict[str, str] = {}
    depends_where: dict[str, Where] = {}
    depends_node = body.get("depends_on")
    if depends_node is not None and isinstance(depends_node.value, list):
        for n in depends_node.value:
            depends[str(n.value)], depends_where[str(n.value)] = "service_started", n.where
    elif depends_node is not None and isinstance(depends_node.value, dict):
        for k, v in depends_node.value.items():
            depends[k] = _scalar(v.get("condition")) or "service_started"
            depends_where[k] = v.where
    health = body.get("healthcheck")
    has_health = (
        health is not None
        and isinstance(health.value, dict)
        and not ((disable := health.get("disable")) and disable.value is True)
        and health.get("test") is not None
    )
    privileged = body.get("privileged")
    read_only = body.get("read_only")
    ports = body.get("ports")
    return Service(
        name=name,
        where=node.where,
        image=_scalar(body.get("image")) or "",
        ports=tuple(p for n in (ports.value or [] if ports else []) for p in _ports(n)),
        networks=networks,
        network_mode=_scalar(body.get("network_mode")),
        depends_on=depends,
        depends_where=depends_where,
        links=tuple(link.split(":")[0] for link in _strings(body.get("links"))),
        healthcheck=has_health,
        privileged=bool(privileged and privileged.value is True),
        cap_add=tuple(c.upper() for c in _strings(body.get("cap_add"))),
        cap_drop=tuple(c.upper() for c in _strings(body.get("cap_drop"))),
        user=_scalar(body.get("user")),
        read_only=bool(read_only and read_only.value is True),
        node=node,
    )


def _ports(node: Node) -> list[Port]:
    if isinstance(node.value, dict):  # long syntax
        body = node.value
        target = body.get("target")
        if target is None:
            raise UsageError(f"{node.where}: a long-syntax port needs `target`")
        published = _scalar(body.get("published"))
        return _range(
            published,
            str(target.value),
            _scalar(body.get("host_ip")) or "",
            _scalar(body.get("protocol")) or "tcp",
            node.where,
        )
    text = (node.raw if node.raw is not None else str(node.value)).strip()
    match = _PORT.match(text)
    if not match:
        raise UsageError(
            f"{node.where}: cannot read the port {text!r} (HOST:CONTAINER, IP:HOST:CONTAINER, /udp)"
        )
    return _range(
        match["host"] or None,
        match["container"],
        match["v6"] or match["ip"] or "",
        match["proto"] or "tcp",
        node.where,
    )


def _range(
    published: str | None, target: str, host_ip: str, protocol: str, where: Where
) -> list[Port]:
    def bounds(text: str) -> list[int]:
        low, _, high = text.partition("-")
        if (
            not low.isdigit()
            or (high and not high.isdigit())
            or int(high or low) - int(low) > 65535
        ):
            raise UsageError(f"{where}: bad port number {text!r}")
        return list(range(int(low), int(high or low) + 1))

    containers = bounds(target)
    hosts: list[int | None] = [*bounds(published)] if published else [None] * len(containers)
    if len(containers) == 1 and len(hosts) > 1:
        hosts = [None]  # one container port on any free host port of the range
    if len(hosts) == 1 and len(containers) > 1:
        hosts = hosts * len(containers)
    if len(hosts) != len(containers):
        raise UsageError(f"{where}: host and container port ranges differ in size")
    for port in [*containers, *(h for h in hosts if h is not None)]:
        if not 1 <= port <= 65535:
            raise UsageError(f"{where}: port {port} is not between 1 and 65535")
    return [Port(host_ip, h, c, protocol, where) for h, c in zip(hosts, containers, strict=True)]


def _network(name: str, node: Node) -> ComposeNetwork:
    body = node.value if isinstance(node.value, dict) else {}
    ipam = body.get("ipam")
    configs = (
        ipam.get("config").value
        if ipam and ipam.get("config") and isinstance(ipam.get("config").value, list)
        else []
    )
    internal, external = body.get("internal"), body.get("external")
    return ComposeNetwork(
        name=name,
        internal=bool(internal and internal.value is True),
        external=bool(external and external.value not in (False, None)),
        subnets=tuple(
            str(c.get("subnet").value)
            for c in configs
            if isinstance(c.value, dict) and c.get("subnet")
        ),
        where=node.where,
    )
