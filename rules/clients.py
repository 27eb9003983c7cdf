"""Rules about a client the doctor is told about (--client ADDRESS): its address decides which
firewall rules match and where the host sends the replies."""

from __future__ import annotations

from collections.abc import Iterator

from doctor.rules.firewall import engine_forward_policy

from doctor.plugin import ENGINE_API, Evidence, Finding, Fix, HopName, Rule, RuleContext, finding

ROUTES = "/proc/net/route"
IPTABLES = "iptables-save"


def client_in_docker_subnet(ctx: RuleContext) -> Iterator[Finding]:
    """The replies to the client go into a bridge whose subnet holds the client's address."""
    client = ctx.target.client_address
    if client is None or not ctx.broken(HopName.RETURN_PATH):
        return
    network = next((n for n in ctx.facts.networks if n.bridge and n.contains(client)), None)
    if network is None:
        return
    subnet = next(s for s in network.subnets if network.contains(client))
    route = ctx.facts.route_to(client)
    users = [c.name for c in ctx.facts.containers if c.attachment(network.id)]
    yield finding(
        "CLIENT_IN_DOCKER_SUBNET",
        severity="error",
        confidence=0.9,
        hop=HopName.RETURN_PATH,
        explanation=f"The client {client} lies inside {network.name}'s subnet {subnet}: this "
        f"host routes the replies to it into {network.bridge}, not back the way it came (a VPN "
        "or office range that a Docker network took).",
        evidence=[
            Evidence(f"network {network.name} subnet", subnet, ENGINE_API),
            Evidence(f"route to {client}", str(route) if route else None, ROUTES),
            Evidence(f"containers on {network.name}", users, ENGINE_API),
        ],
        fix=Fix(
            f"Move {network.name} off the client's range, and keep Docker's pools away from it",
            [
                *(
                    ['# /etc/docker/daemon.json: "bip": "a range of your own, e.g. 10.213.0.1/24"']
                    if network.is_default_bridge
                    else [
                        f"docker network rm {network.name}  # after moving {', '.join(users)} off",
                        f"docker network create --subnet FREE_RANGE {network.name}",
                    ]
                ),
                '# /etc/docker/daemon.json: "default-address-pools": '
                '[{"base": "FREE_RANGE", "size": 24}]',
            ],
        ),
    )


def non_docker_forward_blocked(ctx: RuleContext) -> Iterator[Finding]:
    """A flow that no container is part of meets the FORWARD policy DROP the engine sets."""
    if ctx.target.kind != "forward":
        return
    hop = next((h for h in (HopName.FILTER_FORWARD, HopName.RETURN_PATH) if ctx.broken(h)), None)
    decision = ctx.path.decisions.get(hop) if hop else None
    if hop is None or decision is None or not engine_forward_policy(decision, ctx.facts):
        return  # a rule, ufw's or nftables' own policy (FIREWALL_DROP), or no firewall at all
    client = ctx.target.client_address
    packet_in, packet_out = _interfaces(ctx)
    chain = "DOCKER-USER" if _has_docker_user(ctx) else "FORWARD"
    yield finding(
        "NON_DOCKER_FORWARD_BLOCKED",
        severity="error",
        confidence=0.85,
        hop=hop,
        explanation=f"{client} → {ctx.target.addresses[0]}:{ctx.target.port} is forwarded by "
        "this host and involves no container, so none of Docker's rules accepts it, and it "
        f"ends at the policy: {decision}. The engine sets FORWARD's policy to DROP when it "
        "turns forwarding on, which cuts off virtual machines and LXD bridges routed here.",
        evidence=[
            Evidence("where the packet ends", str(decision), IPTABLES),
            Evidence(f"{hop} interfaces", f"{packet_in} → {packet_out}", ROUTES),
        ],
        fix=Fix(
            f"Accept this flow in {chain} (Docker's documented place), replies included",
            [
                f"iptables -I {chain} -i {packet_in} -o {packet_out} -j ACCEPT",
                f"iptables -I {chain} -i {packet_out} -o {packet_in} -m conntrack "
                "--ctstate RELATED,ESTABLISHED -j ACCEPT",
            ],
        ),
    )


def _interfaces(ctx: RuleContext) -> tuple[str, str]:
    """The interfaces the client's packets come in by and leave by, as the host routes them."""
    client, destination = ctx.target.client_address or "", ctx.target.addresses[0]
    into, out = (ctx.facts.route_to(a) for a in (client, destination))
    return (into.device if into else "IN_IFACE"), (out.device if out else "OUT_IFACE")


def _has_docker_user(ctx: RuleContext) -> bool:
    firewall = ctx.facts.firewall
    return firewall is not None and firewall.chain("filter", "DOCKER-USER") is not None


RULES = [
    Rule(
        "client-in-docker-subnet",
        ("CLIENT_IN_DOCKER_SUBNET",),
        client_in_docker_subnet,
        ("external",),
    ),
    Rule(
        "non-docker-forward-blocked",
        ("NON_DOCKER_FORWARD_BLOCKED",),
        non_docker_forward_blocked,
        ("external",),
    ),
]
