"""The rules of a published port and of its container, on hand-built facts: codes and evidence.

Each situation is staged for real on both engines in the real-engine tests; here each rule is
pinned on the smallest facts that make it speak, and on its healthy twin that must not.
"""

from __future__ import annotations

from tests.support.builders import (
    HOST_ADDRESS,
    codes,
    container,
    context,
    evidence,
    facts,
    findings,
    listener,
)

WEB = dict(publish=["8080:80"])


def test_nothing_on_port_lists_what_is_published_instead():
    f = facts(container("web", publish=["9090:80"]))
    (found,) = findings("nothing-on-port", context(f, "localhost:8080"))
    assert found.code == "NOTHING_ON_PORT" and found.hop == "host-listener"
    assert evidence(found)["ports published on this host"] == ["web: 9090:80"]
    assert codes("nothing-on-port", context(f, "localhost:9090")) == []
    held = facts(host_listeners=[listener("tcp 0.0.0.0:8080", 77, "nginx")])
    assert codes("nothing-on-port", context(held, "localhost:8080")) == []  # not a Docker port


def test_port_not_published_when_the_container_only_listens_or_exposes():
    listening = facts(container("api", listeners=["tcp 0.0.0.0:8080"]))
    (found,) = findings("port-not-published", context(listening, "localhost:8080"))
    assert found.code == "PORT_NOT_PUBLISHED" and found.confidence == 0.9
    assert evidence(found)["api listeners"] == ["tcp 0.0.0.0:8080"]
    exposed = facts(container("api", listeners=[], exposed=["8080"]))
    assert findings("port-not-published", context(exposed, "localhost:8080"))[0].confidence == 0.6
    published = facts(container("api", listeners=["tcp 0.0.0.0:8080"], publish=["8080:8080"]))
    assert codes("port-not-published", context(published, "localhost:8080")) == []


def test_published_port_mismatch_names_the_port_that_listens():
    f = facts(container("web", publish=["8080:80"], listeners=["tcp 0.0.0.0:3000"]))
    (found,) = findings("published-port-mismatch", context(f, "localhost:8080"))
    assert found.code == "PUBLISHED_PORT_MISMATCH" and found.hop == "container-listener"
    assert "3000" in found.fix.summary
    assert (
        codes("published-port-mismatch", context(facts(container("web", **WEB)), "localhost:8080"))
        == []
    )


def test_app_bound_to_loopback_inside_the_container():
    f = facts(container("web", publish=["8080:80"], listeners=["tcp 127.0.0.1:80"]))
    (found,) = findings("app-bound-to-loopback", context(f, "localhost:8080"))
    assert found.code == "APP_BOUND_TO_LOOPBACK" and found.hop == "container-listener"
    assert ["tcp 127.0.0.1:80"] in evidence(found).values()
    assert (
        codes("app-bound-to-loopback", context(facts(container("web", **WEB)), "localhost:8080"))
        == []
    )


def test_protocol_mismatch_both_ways():
    udp_only = facts(container("dns", publish=["5353:53/udp"], listeners=["udp 0.0.0.0:53"]))
    (found,) = findings("protocol-mismatch", context(udp_only, "localhost:5353"))
    assert found.code == "PROTOCOL_MISMATCH" and found.hop == "host-listener"
    listens_udp = facts(container("dns", publish=["5353:53"], listeners=["udp 0.0.0.0:53"]))
    (found,) = findings("protocol-mismatch", context(listens_udp, "localhost:5353"))
    assert found.hop == "container-listener" and "udp" in found.fix.summary
    both = facts(
        container("dns", publish=["5353:53"], listeners=["tcp 0.0.0.0:53", "udp 0.0.0.0:53"])
    )
    assert codes("protocol-mismatch", context(both, "localhost:5353")) == []


def test_host_binding_restricted_to_loopback_is_said_to_other_machines():
    f = facts(container("web", publish=["127.0.0.1:8080:80"]))
    (found,) = findings("host-binding-restricted", context(f, f"{HOST_ADDRESS}:8080"))
    assert found.code == "HOST_BINDING_RESTRICTED" and found.affects == ("external",)
    assert codes("host-binding-restricted", context(f, "127.0.0.1:8080")) == []


def test_ipv6_localhost_mismatch_when_only_ipv4_is_published():
    f = facts(container("web", publish=["127.0.0.1:8080:80"]))
    (found,) = findings("ipv6-localhost-mismatch", context(f, "localhost:8080"))
    assert found.code == "IPV6_LOCALHOST_MISMATCH"
    assert evidence(found)["localhost in /etc/hosts"] == ["127.0.0.1", "::1"]
    assert (
        codes("ipv6-localhost-mismatch", context(facts(container("web", **WEB)), "localhost:8080"))
        == []
    )


def test_port_conflict_names_the_process_that_holds_the_port():
    stopped = container(
        "web", status="created", asked=["8080:80"], error="bind: address already in use"
    )
    f = facts(stopped, host_listeners=[listener("tcp 0.0.0.0:8080", 77, "nginx")])
    (found,) = findings("port-conflict", context(f, "localhost:8080"))
    assert found.code == "PORT_CONFLICT" and found.confidence == 0.95
    assert "nginx (pid 77)" in found.explanation
    free = facts(container("web", status="exited", exit_code=1, asked=["8080:80"]))
    assert codes("port-conflict", context(free, "localhost:8080")) == []


def test_bind_address_not_on_host_is_a_target_and_a_cause():
    error = "listen tcp4 10.1.2.3:8080: bind: cannot assign requested address"
    stopped = container("web", status="created", asked=["10.1.2.3:8080:80"], error=error)
    ctx = context(facts(stopped), "10.1.2.3:8080")  # not bad input: a container names it
    assert (ctx.target.kind, ctx.target.vantage) == ("port", "external")
    (found,) = findings("bind-address-not-on-host", ctx)
    assert (found.code, found.hop) == ("BIND_ADDRESS_NOT_ON_HOST", "host-listener")
    assert evidence(found)["web HostConfig.PortBindings"] == "10.1.2.3:8080"
    assert found.fix.commands[0] == "docker rm -f web"
    assert found.fix.commands[1].startswith("docker run -d --name web -p 8080:80 busybox")
    assert codes("bind-address-not-on-host", context(facts(stopped), "localhost:8080")) == [
        "BIND_ADDRESS_NOT_ON_HOST"
    ]
    assert found.confidence == 0.97  # the engine's own error says so
    left = container("web", status="exited", asked=["10.1.2.3:8080:80"], exit_code=0)
    (likely,) = findings("bind-address-not-on-host", context(facts(left), "10.1.2.3:8080"))
    assert likely.confidence < found.confidence  # the address went after it stopped, perhaps
    here = container("web", status="created", asked=[f"{HOST_ADDRESS}:8080:80"], error="x")
    assert codes("bind-address-not-on-host", context(facts(here), "localhost:8080")) == []


def test_host_network_publish_ignored():
    f = facts(container("web", on=(), mode="host", asked=["8080:80"], publish=[]))
    (found,) = findings("host-network-publish-ignored", context(f, "localhost:8080"))
    assert found.code == "HOST_NETWORK_PUBLISH_IGNORED"
    assert evidence(found) == {
        "web HostConfig.NetworkMode": "host",
        "web HostConfig.PortBindings": ["8080:80"],
    }


def test_container_not_running_says_why_and_shows_its_log():
    f = facts(container("web", status="exited", exit_code=3, asked=["8080:80"]))
    (found,) = findings("container-not-running", context(f, "localhost:8080"))
    assert found.code == "CONTAINER_NOT_RUNNING" and "exited with code 3" in found.explanation
    assert evidence(found)["web State"]["ExitCode"] == 3
    assert (
        codes("container-not-running", context(facts(container("web", **WEB)), "localhost:8080"))
        == []
    )


def test_container_unhealthy_is_a_warning():
    f = facts(container("web", publish=["8080:80"], health="unhealthy"))
    (found,) = findings("container-unhealthy", context(f, "localhost:8080"))
    assert (found.code, found.severity) == ("CONTAINER_UNHEALTHY", "warning")
    assert evidence(found)["web last healthcheck output"] == "check failed"


def test_a_healthcheck_whose_command_the_image_lacks():
    missing = {"health": "unhealthy", "health_output": "/bin/sh: curl: not found"}
    f = facts(container("web", publish=["8080:80"], health_exit=127, **missing))
    (found,) = findings("healthcheck-command-missing", context(f, "localhost:8080"))
    assert (found.code, found.severity) == ("HEALTHCHECK_COMMAND_MISSING", "warning")
    assert evidence(found)["web last healthcheck exit code"] == 127
    assert codes("container-unhealthy", context(f, "localhost:8080")) == []  # said precisely
    bash = {"health": "unhealthy", "health_output": "/bin/sh: line 1: curl: command not found"}
    g = facts(container("web", publish=["8080:80"], health_exit=127, **bash))
    assert codes("healthcheck-command-missing", context(g, "localhost:8080")) == [
        "HEALTHCHECK_COMMAND_MISSING"
    ]
    failing = facts(container("web", publish=["8080:80"], health="unhealthy"))
    assert codes("healthcheck-command-missing", context(failing, "localhost:8080")) == []
