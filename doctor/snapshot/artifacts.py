"""Where each raw artifact lives in a snapshot: the contract between probes and parsers."""

from typing import Literal

ENGINE_ENDPOINT = "engine/endpoint.json"
ENGINE_VERSION = "engine/version.json"
ENGINE_INFO = "engine/info.json"
CONTAINERS = "engine/containers.json"  # a list of `docker inspect` objects: those in SCOPE
#: The engine's list of every container (`GET /containers/json?all=1`), kept when not all were read
CONTAINER_LIST = "engine/container-list.json"
SCOPE = "engine/scope.json"  # which containers were read in full, and why (doctor.collect.scope)
NETWORKS = "engine/networks.json"  # a list of `docker network inspect` objects
DAEMON_CONFIG = "engine/daemon.json"  # the file dockerd reads (/etc/docker/daemon.json), if any
DAEMON_ARGV = "engine/dockerd.json"  # the local dockerd: {"pid", "argv", "config_file"}
#: On a Swarm manager: {"node_id", "nodes", "services", "tasks"}, the fields doctor.facts.swarm reads
SWARM = "engine/swarm.json"
LOG_BOUNDS = "engine/logs-bounds.json"  # how container logs were bounded, and which were cut
HOST = "host/platform.json"
HOST_SOCKETS = "host/sockets.json"
PROXIES = "host/docker-proxy.json"  # [{"pid": ..., "argv": [...]}]
SYSCTLS = "host/sysctl.json"
HOSTS_FILE = "host/etc-hosts"
RESOLV_CONF = "host/resolv.conf"
#: What /etc/resolv.conf is: {"state": "file" | "missing" | "dangling", "link": target or null}
RESOLV_CONF_STATE = "host/resolv.conf.json"
#: systemd-resolved's list of real upstreams, which the engine reads for the default bridge
#: when /etc/resolv.conf names only its stub (127.0.0.53)
SYSTEMD_RESOLV_CONF = "host/systemd-resolv.conf"
ROUTES = "host/proc-net-route"  # /proc/net/route: the host's IPv4 routes (main table)
CONNTRACK = "host/conntrack-udp.txt"  # the UDP lines of /proc/net/nf_conntrack (or conntrack -L)
INTERFACES = "host/interfaces.json"  # {name: {"mtu": int | None, "addresses": [str]}}
IPTABLES = "firewall/iptables-save.txt"
IP6TABLES = "firewall/ip6tables-save.txt"
#: nft -j list ruleset; or, where iptables-save reads iptables-nft's tables, the other tables only
NFT_RULESET = "firewall/nft-ruleset.json"
IPTABLES_LEGACY = "firewall/iptables-legacy-save.txt"  # the other backend, when the tool exists

NETNS_FILES: dict[str, Literal["tcp", "udp"]] = {
    "tcp": "tcp",
    "tcp6": "tcp",
    "udp": "udp",
    "udp6": "udp",
}


UNCHECKED = "doctor/unchecked/"  # one file per probe, below: unchecked(probe)


def unchecked(probe: str) -> str:
    """What ``probe`` could not check, and why: [{"container", "why"}] (a container removed
    or stopped while the run read it: a race, not an error)."""
    return f"{UNCHECKED}{probe}.json"


def container_log(container_id: str) -> str:
    return f"engine/logs/{container_id}.log"


def netns_file(container_id: str, name: str) -> str:
    """A copy of /proc/<pid>/net/<name> of the container's network namespace."""
    return f"netns/{container_id}/{name}"


def container_file(container_id: str, name: str) -> str:
    """A file the container itself sees, e.g. its etc/resolv.conf and etc/hosts."""
    return f"containers/{container_id}/{name}"
