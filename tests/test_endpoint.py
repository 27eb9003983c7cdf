"""Which engine docker-doctor asks, and how its command line takes the docker CLI's global options:
the same answers the docker CLI gives."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from doctor.cli.commands import parse_invocation
from doctor.cli.dockercli import REEXEC_ENV
from doctor.collect.engine_api import ClientFlags, Tls, parse_host, resolve_endpoint
from doctor.errors import UsageError


def endpoint(env: dict[str, str] | None = None, **flags: object):
    return resolve_endpoint(env or {}, ClientFlags(**flags))  # type: ignore[arg-type]


def make_context(config: Path, name: str, host: str, tls_files: tuple[str, ...] = ()) -> Path:
    """A context as `docker context create` stores it; its TLS directory."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = config / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    meta.joinpath("meta.json").write_text(
        json.dumps({"Name": name, "Endpoints": {"docker": {"Host": host}}})
    )
    tls = config / "contexts" / "tls" / digest / "docker"
    for file in tls_files:
        tls.mkdir(parents=True, exist_ok=True)
        (tls / file).write_text("pem")
    return tls


def test_the_docker_clis_order_context_then_host_then_environment(tmp_path):
    make_context(tmp_path, "other", "unix:///other.sock")
    config = str(tmp_path)
    env = {"DOCKER_HOST": "unix:///env.sock", "DOCKER_CONTEXT": "other", "DOCKER_CONFIG": config}
    assert endpoint(env, context="other").host == "unix:///other.sock"
    assert endpoint(env, host="unix:///flag.sock").host == "unix:///flag.sock"
    assert endpoint(env).host == "unix:///env.sock"  # DOCKER_HOST beats DOCKER_CONTEXT
    assert (
        endpoint({"DOCKER_CONTEXT": "other", "DOCKER_CONFIG": config}).host == "unix:///other.sock"
    )
    with pytest.raises(UsageError):
        endpoint(env, context="other", host="unix:///flag.sock")


def test_the_default_context_is_dash_h_or_docker_host():
    assert (
        endpoint({"DOCKER_HOST": "unix:///env.sock"}, context="default").host == "unix:///env.sock"
    )
    assert endpoint({}, context="default").host == "unix:///var/run/docker.sock"


@pytest.mark.parametrize(
    ("given", "tls", "host"),
    [
        ("", False, "unix:///var/run/docker.sock"),
        ("", True, "tcp://localhost:2376"),
        ("tcp://10.0.0.5", False, "tcp://10.0.0.5:2375"),
        ("10.0.0.5:4243", False, "tcp://10.0.0.5:4243"),
        ("tcp://", False, "tcp://localhost:2375"),
        ("tcp://[::1]", False, "tcp://[::1]:2375"),
        ("unix://", False, "unix:///var/run/docker.sock"),
        ("ssh://me@box", False, "ssh://me@box"),
    ],
)
def test_hosts_are_completed_as_the_docker_cli_does(given, tls, host):
    assert parse_host(given, default_to_tls=tls) == host


def test_a_bad_host_is_bad_input():
    with pytest.raises(UsageError):
        parse_host("http://example")


def test_tls_keeps_the_files_given_and_the_default_ones_that_exist(tmp_path):
    (tmp_path / "ca.pem").write_text("pem")
    tls = endpoint({"DOCKER_CONFIG": str(tmp_path)}, host="tcp://10.0.0.5", tlsverify=True).tls
    assert tls == Tls(
        str(tmp_path / "ca.pem"), None, None, verify=True
    )  # no client certificate: none sent
    given = endpoint(
        {"DOCKER_CERT_PATH": "/nowhere"},
        host="tcp://h",
        tls=True,
        tlscert="/c.pem",
        tlskey="/k.pem",
    )
    assert given.tls == Tls(None, "/c.pem", "/k.pem", verify=False)
    stored = make_context(tmp_path, "secure", "tcp://10.0.0.6:2376", ("ca.pem",))
    assert endpoint({"DOCKER_CONFIG": str(tmp_path)}, context="secure").tls == Tls(
        str(stored / "ca.pem"), None, None, verify=True
    )


def test_global_options_stand_anywhere_and_the_plugin_word_is_dropped():
    invocation = parse_invocation(
        ["--context=prod", "-D", "doctor", "web:80", "--from", "-Hx"], env={REEXEC_ENV: "docker"}
    )
    assert invocation.flags.context == "prod" and invocation.flags.host == "x" and invocation.debug
    assert invocation.args == ["web:80", "--from"]
    assert parse_invocation(["doctor", "8080"], env={}).args == [
        "doctor",
        "8080",
    ]  # a container named doctor
    assert parse_invocation(["--debug", "explain", "X"], env={}).args == ["explain", "X"]


def test_switches_take_true_and_false_as_the_docker_cli_does():
    assert parse_invocation(
        ["--tlsverify=false", "--tls=true", "-D=1", "8080"], env={}
    ).flags == ClientFlags(tls=True)
    assert parse_invocation(["--tlsverify=true", "8080"], env={}).flags.tlsverify
    with pytest.raises(UsageError):
        parse_invocation(["--tls=maybe", "8080"], env={})
    with pytest.raises(UsageError):
        parse_invocation(["-H", "a", "-H", "b", "8080"], env={})
