"""The rules of one container reaching another, this host or the world (--from), on hand-built facts."""

from __future__ import annotations

from doctor.facts.model import ResolvConf
from doctor.live.connect import DnsAnswer, Observation, Seen
from tests.support.builders import (
    BRIDGE,
    codes,
    container,
    context,
    docker_iptables,
    evidence,
    facts,
    findings,
    network,
)

BACK = network("back", "172.30.0.0/16")
FRONT = network("front", "172.31.0.0/16")
LOOPBACK_ONLY = ResolvConf(("127.0.0.53",))


def shop(*more):
    web = container("web", on=((BACK, "172.30.0.2"),), listeners=["tcp 0.0.0.0:80"])
    db = container(
        "db", on=((BACK, "172.30.0.3"),), aliases=["database"], listeners=["tcp 0.0.0.0:5432"]
    )
    return facts(web, db, *more, networks=[BACK, FRONT])


def test_name_not_found_offers_the_closest_names():
    (found,) = findings("name-not-found", context(shop(), "databse:5432", source="web"))
    assert (found.code, found.hop) == ("NAME_NOT_FOUND", "name-resolution")
    assert "database" in found.explanation
    assert codes("name-not-found", context(shop(), "database:5432", source="web")) == []


def test_the_default_bridge_has_no_names():
    web = container("web", on=((BRIDGE, "172.17.0.2"),))
    db = container("db", on=((BRIDGE, "172.17.0.3"),), listeners=["tcp 0.0.0.0:5432"])
    (found,) = findings("default-bridge-no-dns", context(facts(web, db), "db:5432", source="web"))
    assert found.code == "DEFAULT_BRIDGE_NO_DNS" and "docker network create" in " ".join(
        found.fix.commands
    )
    # A --link gives a name one way only: the linking container's etc/hosts.
    linking = container("web", on=((BRIDGE, "172.17.0.2"),), links=["/db:/web/database"])
    f = facts(linking, db)
    (found,) = findings("default-bridge-no-dns", context(f, "web:80", source="db"))
    assert "web reaches db as database through --link" in found.explanation
    assert evidence(found)["web HostConfig.Links"] == ["/db:/web/database"]


def test_no_shared_network_between_the_tiers():
    fe = container("fe", on=((FRONT, "172.31.0.2"),))
    f = facts(
        fe,
        container("db", on=((BACK, "172.30.0.3"),), listeners=["tcp 0.0.0.0:5432"]),
        networks=[BACK, FRONT],
    )
    (found,) = findings("no-shared-network", context(f, "172.30.0.3:5432", source="fe"))
    assert (found.code, found.hop) == ("NO_SHARED_NETWORK", "network")
    assert "docker network connect back fe" in found.fix.commands
    assert codes("no-shared-network", context(shop(), "db:5432", source="web")) == []


def test_host_port_used_inside_a_container():
    web = container("web", on=((BACK, "172.30.0.2"),))
    db = container(
        "db", on=((BACK, "172.30.0.3"),), publish=["15432:5432"], listeners=["tcp 0.0.0.0:5432"]
    )
    (found,) = findings(
        "host-port-used-inside", context(facts(web, db, networks=[BACK]), "db:15432", source="web")
    )
    assert found.code == "HOST_PORT_USED_INSIDE" and "db:5432" in found.fix.summary


def test_icc_disabled_on_the_shared_bridge():
    closed = network("closed", "172.32.0.0/16", **{"com.docker.network.bridge.enable_icc": "false"})
    a = container("a", on=((closed, "172.32.0.2"),))
    b = container("b", on=((closed, "172.32.0.3"),), listeners=["tcp 0.0.0.0:80"])
    (found,) = findings("icc-disabled", context(facts(a, b, networks=[closed]), "b:80", source="a"))
    assert (found.code, found.hop) == ("ICC_DISABLED", "bridge")
    assert evidence(found)


def test_an_internal_network_has_no_way_out():
    internal = network("sealed", "172.33.0.0/16", internal=True)
    job = container("job", on=((internal, "172.33.0.2"),))
    (found,) = findings(
        "internal-network-egress",
        context(facts(job, networks=[internal]), "203.0.113.10:443", source="job"),
    )
    assert (found.code, found.hop) == ("INTERNAL_NETWORK", "egress")


def test_a_dead_loopback_resolver_and_a_failing_one():
    stuck = container("stuck", on=((BRIDGE, "172.17.0.2"),), resolv=LOOPBACK_ONLY, listeners=[])
    (found,) = findings(
        "dns-resolver-unreachable", context(facts(stuck), "example.com:443", source="stuck")
    )
    assert found.code == "DNS_RESOLVER_UNREACHABLE" and "127.0.0.53" in found.explanation
    ok = container(
        "ok", on=((BRIDGE, "172.17.0.2"),), resolv=ResolvConf(("192.0.2.53",)), listeners=[]
    )
    timeout = Seen(DnsAnswer("example.com", "192.0.2.53", "timeout", (), "no answer in 1.0 s"))
    (found,) = findings(
        "dns-resolver-unreachable", context(facts(ok), "example.com:443", source="ok", seen=timeout)
    )
    assert found.code == "DNS_RESOLVER_UNREACHABLE"
    assert (
        codes("dns-resolver-unreachable", context(facts(ok), "example.com:443", source="ok")) == []
    )


def test_a_checkup_names_every_container_with_a_dead_loopback_resolver():
    stuck = container("stuck", resolv=LOOPBACK_ONLY, listeners=[])
    assert codes("loopback-resolvers", context(facts(stuck, container("fine", listeners=[])))) == [
        "DNS_RESOLVER_UNREACHABLE"
    ]


def test_host_docker_internal_needs_host_gateway():
    web = container("web", on=((BRIDGE, "172.17.0.2"),))
    (found,) = findings(
        "host-gateway-missing", context(facts(web), "host.docker.internal:8000", source="web")
    )
    assert found.code == "HOST_GATEWAY_MISSING"
    assert evidence(found)["web HostConfig.ExtraHosts"] == []


def test_a_reject_between_two_containers_on_one_bridge_is_a_firewall_drop_not_no_shared_network():
    bridge = BACK.bridge
    reject = f"-i {bridge} -o {bridge} -p tcp -m tcp --dport 5432 -j REJECT"
    f = facts(
        container("web", on=((BACK, "172.30.0.2"),), listeners=[]),
        container("db", on=((BACK, "172.30.0.3"),), listeners=["tcp 0.0.0.0:5432"]),
        networks=[BACK],
        iptables=docker_iptables(user=[reject]),
        sysctls={"net.bridge.bridge-nf-call-iptables": "1"},
    )
    refused = Seen(connections=[Observation("172.30.0.3", 5432, "tcp", "refused", 1)])
    ctx = context(f, "db:5432", source="web", seen=refused)
    (found,) = findings("firewall-drop", ctx)
    assert (found.code, found.hop) == ("FIREWALL_DROP", "filter-forward")
    assert evidence(found)["rule"] == f"-t filter -A DOCKER-USER {reject}"
    assert codes("no-shared-network", ctx) == []
    # Without br_netfilter the bridge never shows its frames to iptables.
    unseen = context(shop(), "db:5432", source="web")
    assert unseen.path.hop("filter-forward").status == "skipped"


def test_localhost_inside_a_container_is_that_container():
    ctx = context(shop(), "localhost:5432", source="web")
    (found,) = findings("localhost-in-container", ctx)
    assert (found.code, found.hop) == ("LOCALHOST_IN_CONTAINER", "container-listener")
    assert evidence(found)["listening on tcp 5432"] == ["db"]
    assert found.fix.commands == ("# in web's configuration: db:5432, not localhost:5432",)
    assert codes("localhost-in-container", context(shop(), "localhost:80", source="web")) == []
    own = container("db", on=((BACK, "172.30.0.3"),), listeners=["tcp 127.0.0.1:5432"])
    web = container("web", on=((BACK, "172.30.0.2"),), listeners=[])
    inside = context(facts(web, own, networks=[BACK]), "localhost:5432", source="web")
    assert codes("localhost-in-container", inside) == []  # db's own loopback: no name reaches it
    alone = container("cache", on=((FRONT, "172.31.0.2"),), listeners=[])
    f = facts(alone, *shop().containers, networks=[BACK, FRONT])
    (apart,) = findings("localhost-in-container", context(f, "localhost:5432", source="cache"))
    assert apart.fix.commands[1] == "docker network connect cache-db cache"


def test_names_by_another_naming_scheme_get_the_name_to_use():
    labels = {"com.docker.compose.project": "shop", "com.docker.compose.service": "db"}
    db = container("shop-db-1", on=((BACK, "172.30.0.3"),), labels=labels, hostname="dbhost")
    web = container("web", on=((BACK, "172.30.0.2"),))
    f = facts(web, db, networks=[BACK])
    (old,) = findings("name-not-found", context(f, "shop_db_1:5432", source="web"))
    assert "Compose v1's name for the db service" in old.explanation
    assert old.fix.commands == ("# in web's configuration: db:5432 instead of shop_db_1:5432",)
    # A hostname is a name the embedded DNS answers (as both engines do): not missing.
    assert codes("name-not-found", context(f, "dbhost:5432", source="web")) == []
