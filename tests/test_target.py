"""TARGET forms: parsed for form first (bad ones are usage errors), then resolved against facts."""

import pytest

from doctor.errors import ExitStatus, UsageError
from doctor.facts.model import Facts, Host
from doctor.path.target import parse_target, resolve_target


@pytest.mark.parametrize(
    ("text", "host", "port", "protocol"),
    [
        ("localhost:8080", "localhost", 8080, "tcp"),
        ("127.0.0.1:8080", "127.0.0.1", 8080, "tcp"),
        ("[::1]:8080", "::1", 8080, "tcp"),
        (":8080", None, 8080, "tcp"),
        ("8080", None, 8080, "tcp"),
        ("8080/udp", None, 8080, "udp"),
        ("localhost:53/UDP", "localhost", 53, "udp"),
        ("http://localhost:8080/x/y?z=1", "localhost", 8080, "tcp"),
        ("http://web/", "web", 80, "tcp"),
        ("https://[::1]/", "::1", 443, "tcp"),
        ("web", "web", None, "tcp"),
        ("web:80", "web", 80, "tcp"),
        ("my_app-1.example", "my_app-1.example", None, "tcp"),
        ("::1", "::1", None, "tcp"),
    ],
)
def test_every_target_form_parses(text, host, port, protocol):
    spec = parse_target(text)
    assert (spec.host, spec.port, spec.protocol) == (host, port, protocol)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0",
        "localhost:0",
        "localhost:65536",
        ":99999",
        "8080/sctp",
        "web:http",
        "bad host:80",
        "ftp://localhost:21",
        "a:b:c",
        "http://:80/",
        "web/udp",
        "-rf",
        "[::1]:x",
    ],
)
def test_bad_targets_are_usage_errors(text):
    with pytest.raises(UsageError) as info:
        parse_target(text)
    assert info.value.status == ExitStatus.USAGE


def _facts(addresses=("127.0.0.1", "192.0.2.10"), hosts=None):
    return Facts(
        engine=None,
        containers=(),
        networks=(),
        host=Host("box", "6.1", 0, tuple(addresses)),
        host_listeners=(),
        proxies=(),
        sysctls={},
        firewall=None,
        hosts_file=hosts,
    )


def test_loopback_targets_default_to_the_host_vantage():
    target = resolve_target(
        parse_target("localhost:8080"), _facts(hosts={"localhost": ("127.0.0.1", "::1")})
    )
    assert (target.kind, target.vantage, target.addresses) == ("port", "host", ("127.0.0.1", "::1"))


def test_this_hosts_other_address_defaults_to_the_external_vantage():
    target = resolve_target(parse_target("192.0.2.10:8080"), _facts())
    assert (target.kind, target.vantage, target.addresses) == ("port", "external", ("192.0.2.10",))


def test_vantage_can_be_forced():
    target = resolve_target(parse_target("192.0.2.10:8080"), _facts(), vantage="host")
    assert target.vantage == "host"


def test_unknown_names_and_foreign_addresses_are_usage_errors():
    for text in ("198.51.100.7:80", "no-such-container"):
        with pytest.raises(UsageError):
            resolve_target(parse_target(text), _facts())
