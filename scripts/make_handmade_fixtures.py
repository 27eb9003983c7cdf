"""Make the fixtures no engine here can record: Engine 29's nftables backend, Docker Desktop
(macOS, Windows), WSL2 (NAT and mirrored networking) and a rootless engine.

    sudo scripts/make-handmade-fixtures [NAME ...]

Each is hand-made from documented facts and labelled so ("origin" in its manifest and in
expected.json). Each starts from a real recording of a staged situation on the running
engine (as scripts/record-fixtures makes them), then becomes the other platform: what
/info and /version say there, where the engine's endpoint is, which host artifacts exist
and which probes are skipped there (with the reasons docker-doctor gives on that platform),
and the host's addresses. Sources: docker's documentation (Desktop networking, WSL2
networking modes, rootless mode), moby's nftablesdoc dumps for Engine 29, and
docs/troubleshooting tables; the expected diagnosis is recorded from the result and checked
by tests/test_snapshots.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from doctor.bundle.obfuscate import IpObfuscator, obfuscate_snapshot
from doctor.snapshot import artifacts as a
from doctor.snapshot.store import Snapshot
from tests.support.command import command
from tests.support.staging import Stage, ensure_engine, ensure_image

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "snapshots"
HTTPD = ["httpd", "-f", "-h", "/www", "-p"]
EMPTY_IPTABLES = (
    "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n"
)
LINUX_ONLY = (
    a.IPTABLES,
    a.IP6TABLES,
    a.IPTABLES_LEGACY,
    a.NFT_RULESET,
    a.ROUTES,
    a.INTERFACES,
    a.SYSCTLS,
    a.PROXIES,
    a.RESOLV_CONF,
)
ROOTLESS_ERROR = (
    "driver failed programming external connectivity on endpoint {name}: Error starting userland "
    "proxy: error while "
    "calling PortManager.AddPort(): cannot expose privileged port 80, you can add "
    "'net.ipv4.ip_unprivileged_port_start=80' to /etc/sysctl.conf (currently 1024), or set "
    "CAP_NET_BIND_SERVICE on "
    "rootlesskit binary, or choose a larger port number (>= 1024): listen tcp4 0.0.0.0:80: bind: "
    "permission denied"
)

NFT_TABLE = """table ip docker-bridges {{
	map filter-forward-in-jumps {{
		type ifname : verdict
		elements = {{ "docker0" : jump filter-forward-in__docker0 }}
	}}
	map filter-forward-out-jumps {{
		type ifname : verdict
		elements = {{ "docker0" : jump filter-forward-out__docker0 }}
	}}
	chain filter-FORWARD {{
		type filter hook forward priority filter; policy accept;
		oifname vmap @filter-forward-in-jumps
		iifname vmap @filter-forward-out-jumps
	}}
	chain nat-OUTPUT {{
		type nat hook output priority -100; policy accept;
		ip daddr != 127.0.0.0/8 fib daddr type local counter jump nat-prerouting-and-output
	}}
	chain nat-POSTROUTING {{
		type nat hook postrouting priority 100; policy accept;
		oifname != "docker0" ip saddr {subnet} counter masquerade comment "MASQUERADE"
	}}
	chain nat-PREROUTING {{
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local counter jump nat-prerouting-and-output
	}}
	chain nat-prerouting-and-output {{
		iifname != "docker0" tcp dport 8080 counter dnat to {ip}:80 comment "DNAT"
	}}
	chain raw-PREROUTING {{
		type filter hook prerouting priority raw; policy accept;
		ip daddr {ip} iifname != "docker0" counter drop comment "DROP DIRECT ACCESS"
	}}
	chain filter-forward-in__docker0 {{
		ct state established,related counter accept
		iifname "docker0" counter accept comment "ICC"
{accept}		counter drop comment "UNPUBLISHED PORT DROP"
	}}
	chain filter-forward-out__docker0 {{
		ct state established,related counter accept
		counter accept comment "OUTGOING"
	}}
}}
"""


# --- staged situations --------------------------------------------------------


def published(stage: Stage) -> None:
    stage.run("web", "-p", "8080:80", wait_port=80)


def published_with_bind_mount(stage: Stage) -> None:
    source = Path(tempfile.mkdtemp(prefix="docker-doctor-app-"))
    stage.run("web", "-p", "8080:80", "-v", f"{source}:/app", wait_port=80)


def wants_port_80(stage: Stage) -> None:
    subprocess.run(
        ["docker", "create", "--name", f"{stage.prefix}-web", "-p", "80:80", stage.image],
        check=True,
        capture_output=True,
    )
    stage._containers.append(f"{stage.prefix}-web")


# --- platforms ---------------------------------------------------------------


def _json(snapshot: Snapshot, key: str, **changes: object) -> None:
    snapshot.artifacts[key] = json.dumps(
        {**(snapshot.json(key) or {}), **changes}, indent=1
    ).encode()


def _skipped(snapshot: Snapshot, reasons: dict[str, str]) -> None:
    snapshot.probes = [
        replace(run, status="skipped", detail=reasons[run.name], ms=0)
        if run.name in reasons
        else run
        for run in snapshot.probes
    ]


def _readdress(snapshot: Snapshot, mapping: dict[str, str]) -> None:
    """Give the host other addresses, everywhere they appear (hex /proc tables included)."""

    class Fixed(IpObfuscator):
        def address(self, text: str) -> str:
            return mapping.get(text, text)

    obfuscate_snapshot(snapshot, Fixed())


def _containers(snapshot: Snapshot, change: Callable[[dict], None]) -> None:
    containers = snapshot.json(a.CONTAINERS)
    for c in containers:
        change(c)
    snapshot.artifacts[a.CONTAINERS] = json.dumps(containers, indent=1).encode()


def desktop(
    snapshot: Snapshot, system: str, endpoint: str, host_kernel: str, hostname: str, source: str
) -> None:
    _json(
        snapshot,
        a.ENGINE_INFO,
        OperatingSystem="Docker Desktop",
        KernelVersion="6.10.14-linuxkit",
        Name="docker-desktop",
        ServerVersion="28.5.1",
    )
    _json(snapshot, a.ENGINE_VERSION, Version="28.5.1", KernelVersion="6.10.14-linuxkit")
    snapshot.artifacts[a.ENGINE_ENDPOINT] = json.dumps(
        {"host": endpoint, "source": "context desktop-linux"}
    ).encode()
    for key in [*LINUX_ONLY, *snapshot.keys_under("netns/"), *snapshot.keys_under("containers/")]:
        snapshot.artifacts.pop(key, None)
    _json(
        snapshot,
        a.HOST,
        hostname=hostname,
        kernel=host_kernel,
        euid=501,
        addresses=["127.0.0.1", "::1", "192.168.1.23"],
    )
    # Desktop's backend holds published ports on the host, as psutil sees them there.
    sockets = [
        {
            "protocol": "tcp",
            "address": address,
            "port": 8080,
            "pid": 4242,
            "process": "com.docker.backend",
        }
        for address in ("0.0.0.0", "::")
    ]
    snapshot.artifacts[a.HOST_SOCKETS] = json.dumps(sockets, indent=1).encode()

    def host_paths(c: dict) -> None:
        for m in c.get("Mounts") or ():
            if m.get("Type") == "bind":
                m["Source"] = source
        binds = (c.get("HostConfig") or {}).get("Binds") or []
        c["HostConfig"]["Binds"] = [f"{source}:{b.split(':', 1)[1]}" for b in binds]

    _containers(snapshot, host_paths)
    reason = f"not a Linux host ({system}): no {{}} to read here"
    _skipped(
        snapshot,
        {
            "container-listeners": reason.format("container network namespaces (/proc/<pid>/net)"),
            "container-files": reason.format("container file systems (/proc/<pid>/root)"),
            "iptables": reason.format("iptables rules"),
            "nftables": reason.format("nftables rules"),
            "sysctl": reason.format("sysctls"),
            "routes": reason.format("routes and interfaces"),
            "daemon-config": "no /etc/docker/daemon.json: the engine runs on its defaults",
        },
    )


def desktop_mac(snapshot: Snapshot) -> str:
    desktop(
        snapshot,
        "darwin",
        "unix:///Users/dev/.docker/run/docker.sock",
        "24.1.0",
        "dev-mac",
        "/Users/dev/app",
    )
    return _container_ip(snapshot) + ":80"  # what users try first: the container's own address


def desktop_windows(snapshot: Snapshot) -> str | None:
    desktop(
        snapshot,
        "win32",
        "npipe:////./pipe/dockerDesktopLinuxEngine",
        "10.0.22631",
        "DEV-PC",
        "/run/desktop/mnt/host/c/Users/dev/app",
    )
    return None  # a host checkup


def _container_ip(snapshot: Snapshot) -> str:
    return snapshot.json(a.CONTAINERS)[0]["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]


def _host_address(snapshot: Snapshot) -> str:
    return next(
        x
        for x in snapshot.json(a.HOST)["addresses"]
        if "." in x and not x.startswith(("127.", "172."))
    )


def wsl2(snapshot: Snapshot, lan: str, mirrored: bool) -> str:
    kernel = "5.15.167.4-microsoft-standard-WSL2"
    _readdress(snapshot, {_host_address(snapshot): lan})
    _json(
        snapshot,
        a.ENGINE_INFO,
        OperatingSystem="Ubuntu 24.04.1 LTS",
        KernelVersion=kernel,
        Name="DEV-PC",
    )
    _json(snapshot, a.HOST, hostname="DEV-PC", kernel=kernel)
    if mirrored:  # mirrored mode shows Windows' interfaces, and a loopback0 for the host's loopback
        interfaces = snapshot.json(a.INTERFACES)
        interfaces["loopback0"] = {"mtu": 1500, "addresses": ["10.255.255.254"]}
        snapshot.artifacts[a.INTERFACES] = json.dumps(interfaces, indent=1).encode()
    return f"{lan}:8080"


def wsl2_nat(snapshot: Snapshot) -> str:
    return wsl2(snapshot, "172.28.160.2", mirrored=False)


def wsl2_mirrored(snapshot: Snapshot) -> str:
    return wsl2(snapshot, "192.168.1.50", mirrored=True)


def rootless(snapshot: Snapshot) -> str:
    info = snapshot.json(a.ENGINE_INFO)
    _json(
        snapshot, a.ENGINE_INFO, SecurityOptions=[*info.get("SecurityOptions", []), "name=rootless"]
    )
    snapshot.artifacts[a.ENGINE_ENDPOINT] = json.dumps(
        {"host": "unix:///run/user/1000/docker.sock", "source": "DOCKER_HOST"}
    ).encode()
    _json(snapshot, a.SYSCTLS, **{"net.ipv4.ip_unprivileged_port_start": "1024"})

    def failed(c: dict) -> None:
        c["State"]["Error"] = ROOTLESS_ERROR.format(name=c["Name"].lstrip("/"))

    _containers(snapshot, failed)
    for key in (a.IPTABLES, a.IP6TABLES, a.IPTABLES_LEGACY, a.NFT_RULESET):
        snapshot.artifacts.pop(key, None)
    reason = "a rootless engine's containers sit behind RootlessKit: this host's {} are not on their path"
    _skipped(
        snapshot,
        {"iptables": reason.format("iptables rules"), "nftables": reason.format("nftables rules")},
    )
    return "localhost:80"


def engine29(snapshot: Snapshot, accept: bool) -> str:
    ip = _container_ip(snapshot)
    network = snapshot.json(a.CONTAINERS)[0]["NetworkSettings"]["Networks"]["bridge"]
    subnet = f"{ip.rsplit('.', 2)[0]}.0.0/{network['IPPrefixLen']}"
    _json(snapshot, a.ENGINE_VERSION, Version="29.0.0", ApiVersion="1.52", MinAPIVersion="1.44")
    _json(snapshot, a.ENGINE_INFO, ServerVersion="29.0.0", FirewallBackend={"Driver": "nftables"})
    rule = f"\t\tip daddr {ip} tcp dport 80 counter accept\n" if accept else ""
    subprocess.run(
        ["nft", "-f", "-"],
        input=NFT_TABLE.format(ip=ip, subnet=subnet, accept=rule),
        text=True,
        check=True,
    )
    try:  # the JSON nft itself prints for the documented table
        dump = subprocess.run(
            ["nft", "-j", "list", "table", "ip", "docker-bridges"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        subprocess.run(["nft", "delete", "table", "ip", "docker-bridges"], check=True)
    snapshot.artifacts[a.NFT_RULESET] = json.dumps(json.loads(dump), indent=1).encode()
    snapshot.artifacts[a.IPTABLES] = EMPTY_IPTABLES.encode()
    for key in (a.IP6TABLES, a.IPTABLES_LEGACY):
        snapshot.artifacts.pop(key, None)
    return f"{_host_address(snapshot)}:8080"


FIXTURES_MADE = {
    "engine29-nftables-healthy": (
        published,
        lambda s: engine29(s, accept=True),
        "Engine 29 with the nftables firewall backend (table ip docker-bridges in the "
        "shape of moby's nftablesdoc for 29, dumped by a real nft)",
    ),
    "engine29-nftables-rules-missing": (
        published,
        lambda s: engine29(s, accept=False),
        "Engine 29 nftables backend, the per-port accept removed",
    ),
    "desktop-mac": (published_with_bind_mount, desktop_mac, "Docker Desktop on macOS"),
    "desktop-windows": (published_with_bind_mount, desktop_windows, "Docker Desktop on Windows"),
    "wsl2-nat": (published, wsl2_nat, "an engine inside WSL2 with NAT networking"),
    "wsl2-mirrored": (published, wsl2_mirrored, "an engine inside WSL2 with mirrored networking"),
    "rootless": (wants_port_80, rootless, "a rootless engine asked to publish port 80"),
}


def make(name: str) -> None:
    stage_it, become, what = FIXTURES_MADE[name]
    origin = f"hand-made: {what}; recorded on a real engine, then changed as documented"
    directory = FIXTURES / name
    shutil.rmtree(directory, ignore_errors=True)
    with Stage(ensure_image()) as stage:
        stage_it(stage)
        subprocess.run(
            [
                *command(),
                "--json",
                "--no-live",
                "--save-snapshot",
                str(directory),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=False,
        )
    snapshot = Snapshot.read(directory)
    target = become(snapshot)
    snapshot.meta["origin"] = origin
    shutil.rmtree(directory)
    snapshot.write(directory)
    done = subprocess.run(
        [
            *command(),
            *([target] if target else []),
            "--json",
            "--snapshot",
            str(directory),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    report = json.loads(done.stdout)
    expected = {
        "target": target,
        "verdict": report["verdict"],
        "exit": done.returncode,
        "codes": [f["code"] for f in report["findings"]],
        "origin": origin,
    }
    (directory / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(f"{name}: {target} {expected['verdict']} {expected['codes']}")


if __name__ == "__main__":
    ensure_engine()
    for name in sys.argv[1:] or FIXTURES_MADE:
        make(name)
