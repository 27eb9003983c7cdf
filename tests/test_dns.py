"""DNS as the engine really builds it, staged for real on both engines: a stub resolver on the
host's loopback (as systemd-resolved's 127.0.0.53 is), resolvers in namespaces of their own,
the host's /etc/resolv.conf changed, and the engine's public fallback servers blackholed, so
nothing leaves this machine. Each case first asks the container's own nslookup."""

from __future__ import annotations

from pathlib import Path

import pytest

from doctor.facts.dns import FALLBACK_RESOLVERS
from tests.support.command import run_doctor
from tests.support.reports import evidence, first, outcome

STUB = "127.0.0.53"
RESOLV_CONF = "/etc/resolv.conf"


@pytest.fixture
def stub(stage):
    """A stub resolver on the host's loopback, the host's only nameserver; it answers app.test
    with a server that listens on the returned port."""
    # With this file the engine would read systemd-resolved's upstreams instead of the stub.
    assert not Path("/run/systemd/resolve/resolv.conf").exists()
    stage.blackhole(*FALLBACK_RESOLVERS)
    port = stage.free_port()
    server = stage.remote_server(port)
    stage.dns_server({"app.test": server.client_address}, STUB)
    stage.host_file(RESOLV_CONF, f"nameserver {STUB}\n")
    return server, port


def test_a_default_bridge_container_gets_the_public_fallback_instead_of_the_stub(stage, stub):
    _, port = stub
    web = stage.run("web")
    assert stage.nslookup(web, "app.test") == []
    status, report = run_doctor(f"app.test:{port}", "--from", web)
    assert outcome(status, report) == (
        "unreachable",
        "DNS_FALLBACK_UNREACHABLE",
        "name-resolution",
        1,
    )
    said = evidence(first(report))
    assert said["host resolv.conf nameservers"] == [STUB]
    assert said[f"{web} resolv.conf nameservers"] == ["8.8.8.8", "8.8.4.4"]
    assert "8.8.8.8" in said["live DNS query"]


def test_the_same_stub_answers_a_user_defined_network(stage, stub):
    """The trap beside it: the embedded DNS asks the host's stub from the host's namespace."""
    server, port = stub
    api = stage.run("api", "--network", stage.network("net"))
    assert stage.nslookup(api, "app.test") == [server.client_address]
    assert stage.connect_from(api, server.client_address, port) == "connected"
    status, report = run_doctor(f"app.test:{port}", "--from", api)
    assert (report["verdict"], [f["code"] for f in report["findings"]], status) == (
        "reachable",
        [],
        0,
    )


def test_a_host_resolv_conf_that_links_to_nothing(stage):
    stage.blackhole(*FALLBACK_RESOLVERS)
    link = "/run/systemd/resolve/stub-resolv.conf.missing"
    stage.host_file(RESOLV_CONF, None, link=link)
    web = stage.run("web")
    api = stage.run("api", "--network", stage.network("net"))
    for container in (web, api):
        assert stage.nslookup(container, "app.test") == []
        status, report = run_doctor("app.test:80", "--from", container)
        assert outcome(status, report) == (
            "unreachable",
            "HOST_RESOLV_CONF_BROKEN",
            "name-resolution",
            1,
        )
        assert evidence(first(report))["/etc/resolv.conf"] == (
            f"a link to {link}, which does not exist"
        )


def test_resolvers_left_from_before_the_host_changed(stage):
    stage.blackhole(*FALLBACK_RESOLVERS)
    port = stage.free_port()
    server = stage.remote_server(port)
    old = stage.dns_server({"app.test": server.client_address})
    new = stage.dns_server({"app.test": server.client_address})
    stage.host_file(RESOLV_CONF, f"nameserver {old}\n")
    web = stage.run("web")
    assert stage.nslookup(web, "app.test") == [server.client_address]
    stage.host_file(RESOLV_CONF, f"nameserver {new}\n")  # the host moved on...
    stage.blackhole(old)  # ...and the old resolver is gone
    assert stage.nslookup(web, "app.test") == []
    status, report = run_doctor(f"app.test:{port}", "--from", web)
    assert outcome(status, report) == ("unreachable", "STALE_DNS_CONFIG", "name-resolution", 1)
    found = first(report)
    assert evidence(found)["what it would get now"] == [new]
    assert found["fix"]["commands"][0] == f"docker restart {web}"
    stage.restart(web)  # the fix, as the doctor gave it
    assert stage.nslookup(web, "app.test") == [server.client_address]
    status, report = run_doctor(f"app.test:{port}", "--from", web)
    assert (report["verdict"], status) == ("reachable", 0)


def test_search_domains_from_the_host_answer_before_a_containers_name(stage):
    stage.blackhole(*FALLBACK_RESOLVERS)
    elsewhere = stage.outside_client(default_route=False)  # nothing listens there
    resolver = stage.dns_server({"corp.test": elsewhere.client_address}, wildcard=True)
    stage.host_file(RESOLV_CONF, f"nameserver {resolver}\nsearch corp.test\noptions ndots:2\n")
    net = stage.network("net")
    db = stage.run("db", "--network", net, wait_port=80)
    web = stage.run("web", "--network", net)
    assert stage.nslookup(web, db) == [elsewhere.client_address]
    status, report = run_doctor(f"{db}:80", "--from", web)
    assert outcome(status, report) == ("unreachable", "DNS_SEARCH_LEAK", "name-resolution", 1)
    found = first(report)
    assert evidence(found)[f"{web} resolv.conf"] == {
        "search": ["corp.test"],
        "options": ["ndots:2"],
    }
    assert f"{db}.corp.test" in evidence(found)["live DNS query"]
    # The fix, as the doctor gave it: no search domains in the container.
    assert found["fix"]["commands"][0].startswith("docker run --dns-search . ")
    fixed = stage.run("fixed", "--network", net, "--dns-search", ".")
    address = stage.inspect(db, "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}")
    assert stage.nslookup(fixed, db) == [address]
    status, report = run_doctor(f"{db}:80", "--from", fixed)
    assert (report["verdict"], status) == ("reachable", 0)
