"""Property-based tests of every parser of what the doctor reads (Hypothesis): whatever the
input, a parser returns typed facts or raises its one documented error, within a time bound,
and a snapshot of garbage still gives facts, with what could not be read recorded.

CI runs a fixed number of examples from a fixed seed (the "ci" profile); a longer search:

    HYPOTHESIS_PROFILE=long .venv-test/bin/pytest --import-mode=importlib tests/test_fuzz.py
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tarfile
import time
import unicodedata
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from doctor.errors import UsageError
from doctor.facts import parse
from doctor.facts.build import build_facts
from doctor.firewall import iptables, nftables
from doctor.firewall.model import Decision, Packet
from doctor.preflight import compose
from doctor.report.inert import inert
from doctor.snapshot import artifacts as a
from doctor.snapshot.store import Snapshot
from tests.support.command import doctor, validator

settings.register_profile(
    "ci",
    max_examples=150,
    derandomize=True,  # the same examples on every run: CI stays reproducible
    deadline=None,  # the bound is asserted below, per input, on the wall clock
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "long",
    max_examples=20_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

BOUND = 5.0  # seconds any one input may take, on a loaded machine (inputs take milliseconds)

PACKETS = [
    Packet("tcp", "172.17.0.2", 80, "eth0", "docker0", orig_dst="192.0.2.1", orig_dport=8080),
    Packet("udp", "10.0.0.1", 53, "docker0", "eth0", src="172.17.0.2", local_dst=False),
    Packet("tcp", "::1", 443, "lo", local_dst=True),
]


def bounded(call: Any, *args: Any, **kwargs: Any) -> Any:
    began = time.monotonic()
    try:
        return call(*args, **kwargs)
    finally:
        assert time.monotonic() - began < BOUND, f"{call.__name__} took too long"


# Text that looks like what the tools print, mixed with anything at all.
ANY_LINE = st.text(max_size=80)
WORDS = st.sampled_from(
    [
        "-A", "-I", "-s", "-d", "-i", "-o", "-p", "tcp", "udp", "-m", "--dport", "--sport",
        "conntrack", "--ctstate", "RELATED,ESTABLISHED", "NEW", "-j", "ACCEPT", "DROP", "REJECT",
        "RETURN", "DNAT", "--to-destination", "172.17.0.2:80", "MASQUERADE", "DOCKER",
        "DOCKER-USER", "FORWARD", "INPUT", "!", "0.0.0.0/0", "10.0.0.0/8", "::1/128", "-g",
        "addrtype", "--dst-type", "LOCAL", "multiport", "--dports", "80:90,443", '"a b"',
        "--comment", "-m", "set", "--match-set", "x", "src", "", "*", ":", "COMMIT",
    ]
)  # fmt: skip
RULE_LINE = st.lists(WORDS, max_size=14).map(" ".join)
IPTABLES_LINE = st.one_of(
    RULE_LINE.map(lambda r: "-A " + r),
    st.sampled_from(["*filter", "*nat", "*raw", ":FORWARD DROP [0:0]", ":DOCKER - [0:0]"]),
    st.just("COMMIT"),
    ANY_LINE,
)


@given(st.lists(IPTABLES_LINE, max_size=60).map("\n".join))
def test_iptables_save_text_gives_a_ruleset_that_every_packet_can_walk(text: str) -> None:
    ruleset = bounded(iptables.parse_iptables_save, text)
    assert isinstance(ruleset, iptables.IptablesRuleset)
    for table, chains in ruleset.tables.items():
        for chain in chains:
            for packet in PACKETS:
                assert isinstance(
                    bounded(iptables.traverse, ruleset, table, chain, packet), Decision
                )


JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
ANY_JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)
NFT_EXPR = st.one_of(
    st.fixed_dictionaries(
        {"match": st.fixed_dictionaries({"op": st.sampled_from(["==", "!=", "in"]),
                                         "left": ANY_JSON, "right": ANY_JSON})}
    ),
    st.sampled_from([{"accept": None}, {"drop": None}, {"return": None}, {"counter": None}]),
    st.fixed_dictionaries({"jump": st.fixed_dictionaries({"target": st.text(max_size=5)})}),
    st.fixed_dictionaries({"goto": st.fixed_dictionaries({"target": st.text(max_size=5)})}),
    st.fixed_dictionaries({"vmap": st.fixed_dictionaries({"key": ANY_JSON, "data": ANY_JSON})}),
    ANY_JSON,
)  # fmt: skip
NFT_ITEM = st.one_of(
    st.fixed_dictionaries(
        {"table": st.fixed_dictionaries({"family": st.sampled_from(["ip", "inet", "ip6", "x"]),
                                         "name": st.sampled_from(["t", "filter", "docker"])})}
    ),
    st.fixed_dictionaries(
        {"chain": st.fixed_dictionaries(
            {"family": st.sampled_from(["ip", "inet", "ip6"]), "table": st.just("t"),
             "name": st.sampled_from(["c", "d", "forward"]),
             "hook": st.sampled_from(["forward", "input", "prerouting", "output"]),
             "type": st.sampled_from(["filter", "nat"]), "prio": st.integers(-400, 400) | ANY_JSON,
             "policy": st.sampled_from(["accept", "drop"]) | ANY_JSON})}
    ),
    st.fixed_dictionaries(
        {"rule": st.fixed_dictionaries(
            {"family": st.sampled_from(["ip", "inet", "ip6"]), "table": st.just("t"),
             "chain": st.sampled_from(["c", "d", "forward"]), "handle": st.integers() | ANY_JSON,
             "expr": st.lists(NFT_EXPR, max_size=6) | ANY_JSON})}
    ),
    st.fixed_dictionaries(
        {"map": st.fixed_dictionaries({"family": st.just("ip"), "table": st.just("t"),
                                       "name": st.just("m"), "elem": ANY_JSON})}
    ),
    ANY_JSON,
)  # fmt: skip
NFT_TEXT = st.one_of(
    st.lists(NFT_ITEM, max_size=12).map(lambda items: json.dumps({"nftables": items})),
    ANY_JSON.map(json.dumps),
    st.text(max_size=200),
)


@given(NFT_TEXT)
def test_nft_json_gives_a_ruleset_every_packet_can_walk_or_says_it_is_unreadable(
    text: str,
) -> None:
    try:
        ruleset = bounded(nftables.parse_ruleset, text)
    except ValueError:
        return  # the documented refusal
    for hook in ("forward", "input", "prerouting"):
        for packet in PACKETS:
            for nat in (False, True):
                decision = bounded(nftables.evaluate, ruleset, hook, packet, nat=nat)
                assert isinstance(decision, Decision)


HEX = st.text("0123456789ABCDEFabcdefx:", max_size=40)
PROC_NET_LINE = st.one_of(
    st.tuples(HEX, HEX, st.sampled_from(["0A", "07", "01", "zz"]), st.text(max_size=12)).map(
        lambda f: f"   0: {f[0]} {f[1]} {f[2]} 00000000:00000000 00:00000000 00000000 0 0 {f[3]}"
    ),
    ANY_LINE,
)
TEXT_FILE = st.lists(st.one_of(PROC_NET_LINE, ANY_LINE), max_size=40).map("\n".join)


@pytest.mark.parametrize("protocol", ["tcp", "udp"])
@given(text=TEXT_FILE)
def test_proc_net_tables_give_listeners(protocol: str, text: str) -> None:
    listeners = bounded(parse.parse_proc_net, "  sl  local_address\n" + text, protocol)
    assert all(isinstance(listener.port, int) for listener in listeners)


RESOLVER_LINE = st.one_of(
    st.tuples(st.sampled_from(["nameserver", "search", "domain", "options", "#", ";"]),
              st.text(max_size=30)).map(" ".join),
    st.just("# Based on host file: '/etc/resolv.conf' (internal resolver)"),
    st.tuples(st.sampled_from(["# ExtServers: ", "# Overrides: ", "# Option ndots from: "]),
              st.text(max_size=30)).map("".join),
    ANY_LINE,
)  # fmt: skip


@given(st.lists(RESOLVER_LINE, max_size=30).map("\n".join))
def test_resolv_conf_and_hosts_files_give_their_facts(text: str) -> None:
    resolv = bounded(parse.parse_resolv_conf, text)
    assert all(isinstance(n, str) for n in resolv.nameservers)
    hosts = bounded(parse.parse_hosts, text)
    assert all(isinstance(v, tuple) for v in hosts.values())


ROUTE_LINE = st.lists(HEX, min_size=8, max_size=11).map("\t".join)


@given(st.lists(st.one_of(ROUTE_LINE, ANY_LINE), max_size=30).map("\n".join))
def test_the_routing_table_gives_routes(text: str) -> None:
    assert isinstance(bounded(parse.parse_routes, "Iface\tDestination\n" + text), tuple)


CONNTRACK_FIELD = st.tuples(
    st.sampled_from(["src", "dst", "sport", "dport"]), st.text("0123456789.:abcdef", max_size=16)
).map("=".join)


@given(
    st.lists(
        st.one_of(
            st.lists(CONNTRACK_FIELD, max_size=10).map(
                lambda f: "ipv4 2 udp 17 29 " + " ".join(f) + " [UNREPLIED]"
            ),
            ANY_LINE,
        ),
        max_size=30,
    ).map("\n".join)
)
def test_the_conntrack_table_gives_flows(text: str) -> None:
    assert isinstance(bounded(parse.parse_conntrack, text), tuple)


@given(st.binary(max_size=300))
def test_an_engine_log_gives_lines(raw: bytes) -> None:
    assert all(isinstance(line, str) for line in bounded(parse.demux_log, raw))


def _near(shape: Any) -> st.SearchStrategy[Any]:
    """Values shaped like ``shape`` (a real inspect object), any part of it replaced by
    anything: how a fuzzed Engine answer, or a hand-edited snapshot, looks."""
    if isinstance(shape, dict) and shape:
        return st.one_of(
            st.fixed_dictionaries({k: _near(v) for k, v in shape.items()}),
            st.dictionaries(st.sampled_from(sorted(shape)), ANY_JSON, max_size=len(shape)),
            ANY_JSON,
        )
    if isinstance(shape, list):
        return st.one_of(st.lists(_near(shape[0]), max_size=3) if shape else ANY_JSON, ANY_JSON)
    return st.one_of(st.just(shape), ANY_JSON)


INSPECT_SHAPE = {
    "Id": "a" * 64,
    "Name": "/web",
    "RestartCount": 0,
    "Config": {
        "Image": "busybox",
        "Cmd": ["httpd"],
        "Hostname": "web",
        "Labels": {"com.docker.compose.service": "web"},
        "ExposedPorts": {"80/tcp": {}},
        "Healthcheck": {"Test": ["CMD", "true"]},
    },
    "State": {
        "Status": "running",
        "Running": True,
        "Pid": 42,
        "ExitCode": 0,
        "Health": {"Status": "healthy", "Log": [{"Output": "ok", "ExitCode": 0}]},
    },
    "HostConfig": {
        "NetworkMode": "bridge",
        "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]},
        "ExtraHosts": ["h:1.2.3.4"],
        "Dns": ["1.1.1.1"],
        "Links": ["/db:/web/db"],
    },
    "NetworkSettings": {
        "Ports": {"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]},
        "Networks": {
            "bridge": {
                "NetworkID": "n" * 64,
                "IPAddress": "172.17.0.2",
                "Gateway": "172.17.0.1",
                "Aliases": ["web"],
                "DNSNames": ["web"],
            }
        },
    },
    "Mounts": [{"Type": "bind", "Source": "/a", "Destination": "/b"}],
}
NETWORK_SHAPE = {
    "Id": "n" * 64,
    "Name": "bridge",
    "Driver": "bridge",
    "Internal": False,
    "EnableIPv6": False,
    "IPAM": {"Config": [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]},
    "Options": {"com.docker.network.bridge.name": "docker0"},
    "Scope": "local",
}


@pytest.mark.parametrize(
    ("parser", "shape"),
    [(parse.parse_container, INSPECT_SHAPE), (parse.parse_network, NETWORK_SHAPE)],
    ids=["container", "network"],
)
@given(data=st.data())
def test_an_inspect_object_gives_its_facts_or_says_it_is_unreadable(
    parser: Any, shape: dict[str, Any], data: st.DataObject
) -> None:
    inspect = data.draw(_near(shape))
    try:
        facts = bounded(parser, inspect)
    except parse.Unreadable:
        return
    assert isinstance(facts.id, str) and isinstance(facts.name, str)


ARTIFACT_TEXT = st.one_of(st.text(max_size=200), ANY_JSON.map(json.dumps))


@given(
    containers=st.lists(_near(INSPECT_SHAPE), max_size=3),
    networks=st.lists(_near(NETWORK_SHAPE), max_size=2) | ANY_JSON,
    files=st.dictionaries(
        st.sampled_from(
            [a.IPTABLES, a.IP6TABLES, a.IPTABLES_LEGACY, a.NFT_RULESET, a.ROUTES, a.CONNTRACK,
             a.RESOLV_CONF, a.HOSTS_FILE, a.HOST_SOCKETS, a.PROXIES, a.INTERFACES, a.SYSCTLS,
             a.HOST, a.ENGINE_INFO, a.SCOPE, a.DAEMON_ARGV, a.DAEMON_CONFIG,
             a.unchecked("engine")]
        ),
        ARTIFACT_TEXT,
        max_size=6,
    ),
)  # fmt: skip
def test_a_snapshot_of_garbage_gives_facts_and_says_what_it_could_not_read(
    containers: list[Any], networks: Any, files: dict[str, str]
) -> None:
    snapshot = Snapshot(meta={})
    snapshot.artifacts[a.ENGINE_VERSION] = b'{"Version": "28.5.1", "ApiVersion": "1.51"}'
    snapshot.artifacts[a.CONTAINERS] = json.dumps(containers).encode()
    snapshot.artifacts[a.NETWORKS] = json.dumps(networks).encode()
    snapshot.artifacts.update((k, v.encode()) for k, v in files.items())
    facts = bounded(build_facts, snapshot)
    assert facts.engine is not None
    for key in facts.unparsable:
        assert key in snapshot.artifacts  # what could not be read is named by its artifact


COMPOSE_LINE = st.one_of(
    st.sampled_from(
        ["services:", "  web:", "    image: busybox", "    ports:", '      - "8080:80"',
         "      - 70000:80", "      - target: 80", "        published: x", "    networks: [a]",
         "networks:", "  a:", "    external: true", "    network_mode: host", "  - x", "${X:?}",
         "x: &a [*a]", "<<: *a", "    extends: web", "    depends_on: [db]"]
    ),
    ANY_LINE,
)  # fmt: skip


@given(st.lists(COMPOSE_LINE, max_size=20).map("\n".join))
def test_a_compose_file_gives_a_project_or_one_usage_error(tmp_path_factory, text: str) -> None:
    path = tmp_path_factory.mktemp("compose") / "compose.yaml"
    path.write_text(text, errors="surrogatepass")
    try:
        project = bounded(compose.load, [path], {})
    except UsageError as exc:
        assert str(exc) and "\n" not in str(exc).strip()
        return
    assert isinstance(project.services, tuple)


MANIFEST_SHAPE = {
    "format": 1,
    "artifacts": ["engine/version.json"],
    "probes": [{"name": "engine", "status": "ok", "detail": "", "ms": 1}],
    "meta": {"doctor": "0.1.0"},
}


@given(manifest=_near(MANIFEST_SHAPE), members=st.lists(st.text(max_size=30), max_size=4))
def test_a_snapshot_directory_loads_or_is_refused_in_one_line(
    tmp_path_factory, manifest: Any, members: list[str]
) -> None:
    directory = tmp_path_factory.mktemp("snapshot")
    (directory / "manifest.json").write_text(json.dumps(manifest))
    (directory / "engine").mkdir()
    (directory / "engine" / "version.json").write_text('{"Version": "28.5.1"}')
    for member in members:
        with contextlib.suppress(OSError, ValueError):  # not a name this file system takes
            (directory / PurePosixPath(member).name).write_text("x")
    try:
        snapshot = bounded(Snapshot.load, directory)
    except UsageError as exc:
        assert str(exc) and "\n" not in str(exc).strip()
        return
    assert isinstance(snapshot.artifacts, dict)


TAR_MEMBER = st.tuples(
    st.one_of(
        st.sampled_from(["manifest.json", "engine/version.json", "../x", "/etc/passwd", "a/b"]),
        st.text(max_size=20),
    ),
    st.binary(max_size=200),
    st.sampled_from([tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.DIRTYPE, tarfile.LNKTYPE]),
)


@given(
    members=st.lists(TAR_MEMBER, max_size=6),
    manifest=_near(MANIFEST_SHAPE),
    cut=st.integers(0, 4096) | st.none(),
)
def test_a_bundle_archive_loads_or_is_refused_in_one_line(
    tmp_path_factory, members: list[tuple[str, bytes, bytes]], manifest: Any, cut: int | None
) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = json.dumps(manifest).encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        for name, body, kind in members:
            info = tarfile.TarInfo(name or "x")
            info.type = kind
            if kind == tarfile.REGTYPE:
                info.size = len(body)
                archive.addfile(info, io.BytesIO(body))
            else:
                info.linkname = "../../etc/passwd"
                archive.addfile(info)
    raw = buffer.getvalue()
    path = Path(tmp_path_factory.mktemp("bundle")) / "bundle.tar.gz"
    path.write_bytes(raw if cut is None else raw[:cut])
    try:
        snapshot = bounded(Snapshot.load, path)
    except UsageError as exc:
        assert str(exc) and "\n" not in str(exc).strip()
        return
    assert all(".." not in PurePosixPath(key).parts for key in snapshot.artifacts)


HEALTHY = Path(__file__).resolve().parent.parent / "fixtures" / "snapshots" / "healthy"
REPLAYED = [a.CONTAINERS, a.NETWORKS, a.HOST, a.INTERFACES, a.HOST_SOCKETS, a.PROXIES,
            a.IPTABLES, a.ROUTES, a.ENGINE_INFO, a.SYSCTLS, a.SCOPE]  # fmt: skip


@settings(max_examples=25)
@given(
    broken=st.dictionaries(
        st.sampled_from(REPLAYED), ARTIFACT_TEXT | _near(INSPECT_SHAPE).map(json.dumps), max_size=3
    ),
    target=st.sampled_from([[], ["localhost:8080"], ["web:80"], ["192.0.2.2:8080"]]),
)
def test_a_replay_of_a_broken_snapshot_ends_with_a_report_or_one_line(
    tmp_path_factory, broken: dict[str, str], target: list[str]
) -> None:
    copy = tmp_path_factory.mktemp("replay") / "snapshot"
    snapshot = Snapshot.read(HEALTHY)
    snapshot.artifacts.update((k, v.encode()) for k, v in broken.items())
    snapshot.write(copy)
    done = doctor(*target, "--snapshot", str(copy), "--json", timeout=60)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
    if done.returncode in (0, 1):
        validator().validate(json.loads(done.stdout))
    else:
        assert done.returncode in (2, 3) and len(done.stderr.strip().splitlines()) == 1


@given(st.text(max_size=300), st.integers(1, 400))
def test_any_text_is_made_inert_and_printable_text_is_left_alone(text: str, limit: int) -> None:
    shown = inert(text, limit)
    assert all(unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp", "Cs") for c in shown)
    if text.isprintable() and len(text) <= limit:
        assert shown == text
    if len(text) > limit:
        assert shown.endswith(f"({len(text) - limit} more characters)")
