"""Shell completion: the scripts of `docker-doctor completion SHELL`, run in the real shells."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.command import command, environment

pytestmark = pytest.mark.standalone  # run again against the standalone executable

DIAGNOSIS_STACK = (
    "doctor.diagnosis.diagnose",
    "doctor.facts",
    "doctor.plugin.manager",
    "doctor.path.host",
    "rich",
    "scapy",
    "pluggy",
    "docker",
    "psutil",
    "yaml",
)


@pytest.fixture(scope="module")
def bin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory whose `docker-doctor` is the command under test, as a user's PATH would have it."""
    directory = tmp_path_factory.mktemp("bin")
    (directory / "docker-doctor").symlink_to(Path(command()[0]).absolute())
    return directory


def shell(bin_dir: Path, argv: list[str], script: str) -> list[str]:
    env = environment(HOME=str(bin_dir))
    env["PATH"] = f"{bin_dir}:{env['PATH']}"
    done = subprocess.run([*argv, script], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def bash(bin_dir: Path, line: str) -> list[str]:
    script = (
        f"source <(docker-doctor completion bash); COMP_LINE={shlex.quote(line)}; "
        'COMP_POINT=${#COMP_LINE}; _docker_doctor; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    return [
        word for word in shell(bin_dir, ["bash", "--norc", "--noprofile", "-c"], script) if word
    ]


def test_bash_completes_subcommands_and_codes(bin_dir):
    assert bash(bin_dir, "docker-doctor ex") == ["explain"]
    assert bash(bin_dir, "docker-doctor explain APP_") == ["APP_BOUND_TO_LOOPBACK"]
    assert bash(bin_dir, "docker-doctor explain nothing_on") == ["NOTHING_ON_PORT"]
    assert bash(bin_dir, "docker-doctor completion ") == ["bash", "zsh", "fish"]
    assert bash(bin_dir, "docker-doctor preflight --format s") == ["sarif"]
    assert {"--no-live", "--from", "--json", "--context", "--host"} <= set(
        bash(bin_dir, "docker-doctor --")
    )
    assert {"host", "external"} <= set(bash(bin_dir, "docker-doctor localhost:80 --from "))
    assert bash(bin_dir, "docker-doctor localhost:80 --from=ext") == [
        "external"
    ]  # after bash's word break
    assert "explain" in bash(
        bin_dir, "docker-doctor --fr web "
    )  # --fr is --from: web is its value, no target
    assert bash(bin_dir, 'docker-doctor explain "APP_') == ["APP_BOUND_TO_LOOPBACK"]


def test_values_of_global_options_complete_too(bin_dir):
    assert bash(bin_dir, "docker-doctor --context ") == ["default"]
    assert "explain" in bash(
        bin_dir, "docker-doctor -H a -H b "
    )  # not a valid line (two -H): still an answer


def test_bash_completes_this_hosts_containers_as_targets_and_sources(bin_dir, stage):
    web = stage.run("web")
    stage.run("db", "--label", "com.docker.compose.service=database")
    stage.run("odd", "--label", "com.docker.compose.service=data\x1b]0;pwned\x07")
    assert bash(bin_dir, f"docker-doctor {web[:-2]}") == [web]
    sources = bash(bin_dir, f"docker-doctor {web}:80 --from {web[:3]}")
    assert web in sources and "database" not in sources
    # a label that is no service name (a terminal escape) is never offered
    assert bash(bin_dir, f"docker-doctor {web}:80 --from data") == ["database"]


@pytest.mark.skipif(
    not shutil.which("fish"), reason="fish is not installed (scripts/test installs it as root)"
)
def test_fish_completes_subcommands_and_codes(bin_dir):
    def fish(line: str) -> list[str]:
        script = f"docker-doctor completion fish | source; complete -C {shlex.quote(line)}"
        return [
            word.split("\t")[0] for word in shell(bin_dir, ["fish", "--no-config", "-c"], script)
        ]

    assert fish("docker-doctor ex") == ["explain"]
    assert fish("docker-doctor explain APP_") == ["APP_BOUND_TO_LOOPBACK"]


@pytest.mark.skipif(
    not shutil.which("zsh"), reason="zsh is not installed (scripts/test installs it as root)"
)
def test_zsh_completes_subcommands_and_codes(bin_dir):
    # Outside the line editor there is no compadd: this one prints what it is given.
    def zsh(*words: str) -> list[str]:
        script = (
            "compdef() { : }; compadd() { while [[ $1 != -- ]]; do shift; done; shift; print -l -- "
            "$@ }; "
            f"source <(docker-doctor completion zsh); words=({' '.join(map(shlex.quote, words))}); "
            "CURRENT=${#words}; _docker_doctor"
        )
        return shell(bin_dir, ["zsh", "-f", "-c"], script)

    assert zsh("docker-doctor", "ex") == ["explain"]
    assert zsh("docker-doctor", "explain", "APP_") == ["APP_BOUND_TO_LOOPBACK"]


def test_completing_does_not_import_the_diagnosis_stack():
    done = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-c",
            "from doctor.cli import main; main(['__complete', 'explain', 'APP_'])",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd="/",
    )
    assert done.stdout.splitlines() == ["APP_BOUND_TO_LOOPBACK", ":4"]
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "doctor.cli.completion" in imported
    assert (
        sorted(m for m in imported if any(m == s or m.startswith(f"{s}.") for s in DIAGNOSIS_STACK))
        == []
    )
