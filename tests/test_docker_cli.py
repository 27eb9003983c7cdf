"""`docker doctor`: the docker CLI plugin contract, with the real docker CLIs of both generations."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from doctor import __version__
from tests.support.command import command, doctor, environment
from tests.support.staging import CACHE_DIR, unpack_unstable_engine

pytestmark = pytest.mark.standalone  # run again against the standalone executable

HTTPD = ["httpd", "-f", "-h", "/www", "-p"]
# Debian's docker.io 20.10, and Debian unstable's docker-cli 28.5 (unpacked by the tests as root).
CLIENT_PATHS = (
    "/usr/bin/docker",
    str(CACHE_DIR / "engine-28.5/usr/bin/docker"),
    "/usr/local/bin/docker",
)


def client_version(path: str) -> str | None:
    try:
        done = subprocess.run(
            [path, "version", "--format", "{{.Client.Version}}"],
            capture_output=True,
            text=True,
            timeout=20,
            env={**os.environ, "DOCKER_HOST": "unix:///nonexistent"},
        )
    except OSError:
        return None
    match = re.match(r"\d+\.\d+", done.stdout.strip())
    return match.group(0) if match else None


def clients() -> dict[str, str]:
    """One docker CLI per generation found here: {"20.10": path, "28.5": path}."""
    found: dict[str, str] = {}
    for path in CLIENT_PATHS:
        version = client_version(path) if os.access(path, os.X_OK) else None
        if version and version.split(".")[0] not in {v.split(".")[0] for v in found}:
            found[version] = path
    return found


@pytest.fixture(scope="session")
def all_clients() -> dict[str, str]:
    if os.geteuid() == 0:
        unpack_unstable_engine()  # cached after the first time
    return clients()


@pytest.fixture(params=["20", "28"])
def docker_cli(request: pytest.FixtureRequest, all_clients: dict[str, str]) -> str:
    """A real docker CLI of Engine generation 20 or 28."""
    path = next((p for v, p in all_clients.items() if v.startswith(f"{request.param}.")), None)
    if path is None:
        message = f"no docker CLI {request.param}.x here (looked at {', '.join(CLIENT_PATHS)})"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A docker CLI configuration directory of this test's own, with docker-doctor installed as a plugin."""
    directory = tmp_path / "docker-config"
    done = doctor("plugin", "install", env={"DOCKER_CONFIG": str(directory)})
    assert done.returncode == 0, done.stderr
    link = directory / "cli-plugins" / "docker-doctor"
    assert link.is_symlink() and os.access(link, os.X_OK)
    assert (
        done.stdout.strip()
        == f"installed: {link} -> {os.readlink(link)}; try: docker doctor --help"
    )
    return directory


def docker(cli: str, *args: str, config: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [cli, *args],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=environment(DOCKER_CONFIG=str(config), **env),
    )


def test_the_metadata_is_one_json_object_and_nothing_else():
    done = doctor("docker-cli-plugin-metadata")
    assert done.returncode == 0 and done.stderr == ""
    metadata = json.loads(done.stdout)
    assert metadata["SchemaVersion"] == "0.1.0" and metadata["Vendor"] == "docker-doctor"
    assert metadata["Version"] == __version__ and metadata["ShortDescription"]


def test_the_docker_cli_lists_the_plugin_and_runs_it(docker_cli, config):
    listed = docker(docker_cli, "--help", config=config)
    assert re.search(r"^\s+doctor\*\s+Diagnose Docker networking", listed.stdout, re.MULTILINE), (
        listed.stdout
    )
    done = docker(docker_cli, "doctor", "--version", config=config)
    assert (done.returncode, done.stdout.strip()) == (0, f"docker-doctor {__version__}"), (
        done.stderr
    )
    done = docker(docker_cli, "doctor", "explain", "app-bound-to-loopback", "--json", config=config)
    assert json.loads(done.stdout)["code"] == "APP_BOUND_TO_LOOPBACK"


def test_uninstall_removes_the_link_and_the_cli_no_longer_lists_it(docker_cli, config):
    done = doctor("plugin", "uninstall", env={"DOCKER_CONFIG": str(config)})
    assert (
        done.returncode == 0
        and done.stdout.strip() == f"removed: {config}/cli-plugins/docker-doctor"
    )
    assert not (config / "cli-plugins" / "docker-doctor").exists()
    assert "doctor*" not in docker(docker_cli, "--help", config=config).stdout
    again = doctor("plugin", "uninstall", env={"DOCKER_CONFIG": str(config)})
    assert again.returncode == 0 and again.stdout.startswith("not installed")


def test_installing_again_through_the_docker_cli_keeps_the_link_working(docker_cli, config):
    link = config / "cli-plugins" / "docker-doctor"
    target = os.readlink(link)
    done = docker(
        docker_cli, "doctor", "plugin", "install", config=config
    )  # argv[0] is the link itself
    assert done.returncode == 0 and done.stdout.startswith("already installed"), (
        done.stdout + done.stderr
    )
    assert os.readlink(link) == target
    assert (
        docker(docker_cli, "doctor", "--version", config=config).stdout.strip()
        == f"docker-doctor {__version__}"
    )


def test_the_docker_clis_debug_option_reaches_the_plugin(docker_cli, config):
    done = docker(
        docker_cli, "--debug", "doctor", "explain", "NOTHING_ON_PORT", "--json", config=config
    )
    assert done.returncode == 0 and json.loads(done.stdout)["code"] == "NOTHING_ON_PORT", (
        done.stderr
    )


def test_install_and_uninstall_leave_a_link_of_someone_else_alone(tmp_path):
    plugins = tmp_path / "cli-plugins"
    plugins.mkdir()
    (plugins / "docker-doctor").symlink_to("/bin/true")
    for action in ("install", "uninstall"):
        done = doctor("plugin", action, env={"DOCKER_CONFIG": str(tmp_path)})
        assert done.returncode == 3 and "which is not docker-doctor" in done.stderr, done.stderr
        assert os.readlink(plugins / "docker-doctor") == "/bin/true"


def test_a_plugin_directory_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "cli-plugins").write_text("")
    done = doctor("plugin", "install", env={"DOCKER_CONFIG": str(tmp_path)})
    assert (
        done.returncode == 3
        and len(done.stderr.splitlines()) == 1
        and "internal error" not in done.stderr
    )


def test_install_refuses_to_replace_a_file_it_did_not_make(tmp_path):
    plugins = tmp_path / "cli-plugins"
    plugins.mkdir()
    (plugins / "docker-doctor").write_text("#!/bin/sh\n")
    done = doctor("plugin", "install", env={"DOCKER_CONFIG": str(tmp_path)})
    assert done.returncode == 3 and "not a link made by" in done.stderr
    assert (plugins / "docker-doctor").read_text() == "#!/bin/sh\n"


def test_the_docker_cli_passes_its_global_options_and_they_are_honoured(
    docker_cli, config, tmp_path
):
    # -H: an engine socket that does not exist; the error must name it.
    nowhere = tmp_path / "no-engine.sock"
    done = docker(docker_cli, "-H", f"unix://{nowhere}", "doctor", "localhost:8080", config=config)
    assert done.returncode == 3 and f"no socket at {nowhere}" in done.stderr, done.stderr
    # --context and --config: a context made by the docker CLI itself, in a configuration
    # directory that only --config names.
    context_sock = tmp_path / "context-engine.sock"
    made = docker(
        docker_cli,
        "context",
        "create",
        "elsewhere",
        "--docker",
        f"host=unix://{context_sock}",
        config=config,
    )
    assert made.returncode == 0, made.stderr
    env_without_config = {
        k: v for k, v in environment().items() if k not in ("DOCKER_CONFIG", "DOCKER_HOST")
    }
    done = subprocess.run(
        [docker_cli, "--config", str(config), "--context", "elsewhere", "doctor", "8080"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env_without_config,
    )
    assert done.returncode == 3 and f"no socket at {context_sock}" in done.stderr, done.stderr


def _comparable(report: dict) -> dict:
    return {
        "target": report["target"],
        "vantage": report["vantage"],
        "verdict": report["verdict"],
        "findings": [(f["code"], f["hop"], f["evidence"]) for f in report["findings"]],
        "path": [(h["hop"], h["status"]) for h in report["path"]],
    }


def test_docker_doctor_gives_the_same_report_as_docker_doctor(docker_cli, config, stage):
    port = stage.free_port()
    stage.run("web", "-p", f"{port}:80", cmd=[*HTTPD, "127.0.0.1:80"], wait_port=80)
    through_docker = docker(docker_cli, "doctor", f"localhost:{port}", "--json", config=config)
    direct = doctor(f"localhost:{port}", "--json")
    assert through_docker.returncode == direct.returncode == 1, through_docker.stderr
    plugin_report, report = json.loads(through_docker.stdout), json.loads(direct.stdout)
    assert report["findings"][0]["code"] == "APP_BOUND_TO_LOOPBACK"
    assert _comparable(plugin_report) == _comparable(report)


def test_the_docker_cli_delegates_completion_to_the_plugin(config, all_clients):
    cli = next((p for v, p in all_clients.items() if int(v.split(".")[0]) >= 23), None)
    if cli is None:
        pytest.skip("plugin completion came with docker CLI 23; none here")
    done = docker(cli, "__complete", "doctor", "ex", config=config)
    assert done.stdout.splitlines()[:1] == ["explain"], done.stdout + done.stderr
    done = docker(cli, "__complete", "doctor", "explain", "NOTHING_ON", config=config)
    assert done.stdout.splitlines()[:1] == ["NOTHING_ON_PORT"]


def test_the_command_the_tests_run_is_what_the_plugin_links_to(config):
    assert (
        Path(os.readlink(config / "cli-plugins" / "docker-doctor")) == Path(command()[0]).absolute()
    )
