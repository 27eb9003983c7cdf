"""The rules of what the firewall really exposes, on hand-built facts."""

from __future__ import annotations

from tests.support.builders import (
    HOST_ADDRESS,
    codes,
    container,
    context,
    docker_iptables,
    evidence,
    facts,
    findings,
)

EXTERNAL = f"{HOST_ADDRESS}:8080"
WEB = container("web", publish=["8080:80"])


def test_an_input_drop_on_a_published_port_is_bypassed():
    drop = docker_iptables(host_input=["-A INPUT -p tcp -m tcp --dport 8080 -j DROP"])
    ctx = context(facts(WEB, iptables=drop), EXTERNAL)
    assert ctx.path.hop("filter-input").status == "skipped"  # DNAT'd: INPUT never sees it
    (found,) = findings("published-port-bypasses-input", ctx)
    assert (found.code, found.severity, found.hop) == (
        "PUBLISHED_PORT_BYPASSES_INPUT_FIREWALL",
        "warning",
        "filter-input",
    )
    assert evidence(found)["the INPUT rule relied on"].startswith("filter INPUT rule 1:")
    assert found.fix.commands[0].startswith(
        "iptables -I DOCKER-USER -p tcp -m conntrack --ctorigdstport 8080 --ctdir ORIGINAL -j DROP"
    )
    assert "-p 127.0.0.1:8080:80" in found.fix.commands[2]
    ufw_default_deny = docker_iptables().replace(":INPUT ACCEPT", ":INPUT DROP")
    assert codes(
        "published-port-bypasses-input", context(facts(WEB, iptables=ufw_default_deny), EXTERNAL)
    ) == ["PUBLISHED_PORT_BYPASSES_INPUT_FIREWALL"]
    plain = context(facts(WEB, iptables=docker_iptables()), EXTERNAL)
    assert codes("published-port-bypasses-input", plain) == []


def test_a_docker_user_rule_on_the_published_port_never_matches():
    user = docker_iptables(user=["-p tcp -m tcp --dport 8080 -j DROP"])
    ctx = context(facts(WEB, iptables=user), EXTERNAL)
    (found,) = findings("docker-user-matches-host-port", ctx)
    assert (found.code, found.severity) == ("DOCKER_USER_MATCHES_HOST_PORT", "warning")
    assert evidence(found)["rule"] == "-A DOCKER-USER -p tcp -m tcp --dport 8080 -j DROP"
    assert found.fix.commands == (
        "iptables -R DOCKER-USER 1 -p tcp -m conntrack --ctorigdstport 8080 --ctdir ORIGINAL "
        "-j DROP",
    )
    same_port = container("web", publish=["80:80"])
    on_80 = docker_iptables(port=80, user=["-p tcp -m tcp --dport 80 -j DROP"])
    assert (
        codes(
            "docker-user-matches-host-port",
            context(facts(same_port, iptables=on_80), f"{HOST_ADDRESS}:80"),
        )
        == []
    )  # 80:80: the rule does match


def test_engine_28s_raw_drops_under_engine_20_are_stale():
    raw = ["-d 172.17.0.2/32 ! -i docker0 -j DROP"]
    f = facts(WEB, iptables=docker_iptables(raw=raw), engine="20.10.24+dfsg1")
    ctx = context(f, "172.17.0.2:80", vantage="external")
    (found,) = findings("stale-engine-rules", ctx)
    assert (found.code, found.severity, found.hop) == (
        "STALE_ENGINE_RULES",
        "error",
        "raw-prerouting",
    )
    assert evidence(found)["rules of another generation"] == [
        "raw PREROUTING: -d 172.17.0.2/32 ! -i docker0 -j DROP"
    ]
    assert codes("direct-routing-blocked", ctx) == codes("firewall-drop", ctx) == []
    # Under Engine 28 the same rule is the engine's own.
    own = facts(WEB, iptables=docker_iptables(raw=raw), engine="28.5.2+dfsg1")
    own_ctx = context(own, "172.17.0.2:80", vantage="external")
    assert codes("stale-engine-rules", own_ctx) == []
    assert codes("direct-routing-blocked", own_ctx) == ["DIRECT_ROUTING_BLOCKED"]


def test_isolation_chains_under_engine_29_are_stale_in_a_checkup():
    isolation = docker_iptables().replace(
        ":DOCKER-USER - [0:0]", ":DOCKER-USER - [0:0]\n:DOCKER-ISOLATION-STAGE-1 - [0:0]"
    )
    f = facts(WEB, iptables=isolation, engine="29.0.1")
    (found,) = findings("stale-engine-rules", context(f))
    assert (found.severity, found.hop) == ("warning", "host")
    assert found.fix.commands[0] == (
        "iptables -F DOCKER-ISOLATION-STAGE-1 && iptables -X DOCKER-ISOLATION-STAGE-1"
    )
