"""The pre-flight rules of a compose file, on compose files written here and hand-built host facts."""

from __future__ import annotations

import textwrap

import pytest

from tests.support.builders import codes, compose, container, context, facts, findings, listener

NOTHING = facts()  # a host with nothing on it


@pytest.fixture
def project(tmp_path):
    def read(text: str, on=NOTHING):
        return context(on, compose=compose(tmp_path, textwrap.dedent(text)))

    return read


def lines(rule, ctx):
    return [(f.code, f.hop, f.location.line if f.location else None) for f in findings(rule, ctx)]


def test_a_database_published_on_every_interface(project):
    ctx = project("""\
        services:
          db:
            image: postgres
            ports: ["5432:5432"]
          web:
            image: nginx
            ports: ["127.0.0.1:8080:80"]
        """)
    assert lines("compose-sensitive-port-exposed", ctx) == [
        ("SENSITIVE_PORT_EXPOSED", "service db", 4)
    ]


def test_two_services_on_one_host_port(project):
    ctx = project("""\
        services:
          a: {image: nginx, ports: ["8080:80"]}
          b: {image: nginx, ports: ["8080:80"]}
        """)
    assert lines("compose-duplicate-host-port", ctx) == [("DUPLICATE_HOST_PORT", "service b", 3)]


def test_a_dependency_with_no_network_in_common(project):
    ctx = project("""\
        services:
          web: {image: nginx, networks: [front], depends_on: [db]}
          db: {image: postgres, networks: [back]}
        networks: {front: {}, back: {}}
        """)
    assert codes("compose-no-shared-network", ctx) == ["NO_SHARED_NETWORK"]


def test_depends_on_a_database_without_waiting_for_it_to_be_healthy(project):
    started = project("""\
        services:
          web: {image: nginx, depends_on: [db]}
          db: {image: postgres}
        """)
    assert codes("compose-depends-on-without-healthcheck", started) == [
        "DEPENDS_ON_WITHOUT_HEALTHCHECK"
    ]
    healthy = project("""\
        services:
          web: {image: nginx, depends_on: {db: {condition: service_healthy}}}
          db: {image: postgres, healthcheck: {test: ["CMD", "pg_isready"]}}
        """)
    assert codes("compose-depends-on-without-healthcheck", healthy) == []


def test_publishing_on_the_host_network_is_ignored(project):
    ctx = project("""\
        services:
          web: {image: nginx, network_mode: host, ports: ["8080:80"]}
        """)
    assert codes("compose-host-network-publish-ignored", ctx) == ["HOST_NETWORK_PUBLISH_IGNORED"]


def test_publishing_from_an_internal_network(project):
    ctx = project("""\
        services:
          web: {image: nginx, networks: [sealed], ports: ["8080:80"]}
        networks: {sealed: {internal: true}}
        """)
    assert codes("compose-internal-network", ctx) == ["INTERNAL_NETWORK"]


def test_privileged_and_broad_capabilities(project):
    ctx = project("""\
        services:
          web: {image: nginx, privileged: true}
        """)
    assert "PRIVILEGED_OR_BROAD_CAPS" in codes("compose-privileged-or-broad-caps", ctx)


def test_the_obsolete_version_key(project):
    ctx = project("""\
        version: "3.8"
        services:
          web: {image: nginx}
        """)
    assert lines("compose-obsolete-version", ctx) == [("OBSOLETE_VERSION_KEY", "file", 1)]


def test_a_host_port_held_by_a_process_or_another_projects_container(project):
    text = """\
        name: shop
        services:
          web: {image: nginx, ports: ["8080:80"]}
        """
    held = facts(host_listeners=[listener("tcp 0.0.0.0:8080", 77, "nginx")])
    assert codes("compose-host-port-in-use", project(text, held)) == ["HOST_PORT_IN_USE"]
    other = container(
        "blog-web-1", publish=["8080:80"], labels={"com.docker.compose.project": "blog"}
    )
    assert codes("compose-host-port-in-use", project(text, facts(other))) == ["HOST_PORT_IN_USE"]
    ours = container(
        "shop-web-1", publish=["8080:80"], labels={"com.docker.compose.project": "shop"}
    )
    assert (
        codes("compose-host-port-in-use", project(text, facts(ours))) == []
    )  # replaced by the deploy


def test_a_declared_subnet_overlapping_a_host_route(project):
    import ipaddress

    from doctor.facts.model import HostRoute

    routes = (HostRoute(ipaddress.IPv4Network("10.20.0.0/16"), "tun0", None),)
    text = """\
        services:
          web: {image: nginx, networks: [app]}
        networks:
          app:
            ipam: {config: [{subnet: 10.20.30.0/24}]}
        """
    assert codes("compose-subnet-overlap", project(text, facts(routes=routes))) == [
        "SUBNET_OVERLAP"
    ]


def test_small_kernel_settings_under_load(project):
    text = """\
        services:
          web: {image: nginx, ports: ["8080:80"]}
        """
    small = facts(sysctls={"net.core.somaxconn": "128", "net.ipv4.tcp_fin_timeout": "60"})
    (found,) = findings("compose-sysctl-tuning", project(text, small))
    assert (found.code, found.severity) == ("SYSCTL_TUNING", "info")
    assert {e.fact for e in found.evidence} == {"net.core.somaxconn", "net.ipv4.tcp_fin_timeout"}
