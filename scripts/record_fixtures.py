"""Record snapshot fixtures from the real engine: stage a situation, save what the probes read.

    sudo scripts/record-fixtures [NAME ...]

Each fixture is a snapshot directory (fixtures/snapshots/NAME, or NAME-28.5 when recorded
on Engine 28.5: DOCKER_DOCTOR_ENGINE=28.5 picks it) plus expected.json: the target and
what the doctor concluded from the facts alone. tests/test_snapshots.py replays every
fixture and holds it to that. Run on an engine with no other containers: a snapshot
holds everything the engine shows.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.command import command
from tests.support.staging import Stage, ensure_engine, ensure_image, running_engine_version

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "snapshots"
HTTPD = ["httpd", "-f", "-h", "/www", "-p"]


def app_bound_to_loopback(stage: Stage) -> str:
    stage.run("web", "-p", "8080:80", cmd=[*HTTPD, "127.0.0.1:80"], wait_port=80)
    return "localhost:8080"


def healthy(stage: Stage) -> str:
    stage.run("web", "-p", "8080:80", cmd=[*HTTPD, "80"], wait_port=80)
    return "localhost:8080"


def container_not_running(stage: Stage) -> str:
    web = stage.run(
        "web", "-p", "8080:80", cmd=["sh", "-c", "echo 'fatal: config missing'; exit 3"]
    )
    subprocess.run(["docker", "wait", web], check=True, capture_output=True, timeout=30)
    return "localhost:8080"


def published_port_mismatch(stage: Stage) -> str:
    stage.run("web", "-p", "8080:80", cmd=[*HTTPD, "3000"], wait_port=3000)
    return "localhost:8080"


def _host_address() -> str:
    addresses = json.loads(
        subprocess.run(
            ["ip", "-j", "-4", "addr", "show", "scope", "global"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    return next(
        a["local"]
        for link in addresses
        for a in link.get("addr_info", ())
        if not link["ifname"].startswith(("docker", "br-", "veth"))
    )


def docker_user_drop(stage: Stage) -> str:
    stage.run("web", "-p", "8080:80", cmd=[*HTTPD, "80"], wait_port=80)
    rule = ("-p", "tcp", "-m", "conntrack", "--ctorigdstport", "8080", "-j", "DROP")
    stage.change_host(
        ("iptables", "-I", "DOCKER-USER", *rule), ("iptables", "-D", "DOCKER-USER", *rule)
    )
    return f"{_host_address()}:8080"


def no_shared_network(stage: Stage) -> tuple[str, str]:
    web = stage.run("web", "--network", stage.network("front"))
    db = stage.run("db", "--network", stage.network("back"), cmd=[*HTTPD, "5432"], wait_port=5432)
    return f"{db}:5432", web


SITUATIONS = {
    f.__name__.replace("_", "-"): f
    for f in (
        app_bound_to_loopback,
        healthy,
        container_not_running,
        published_port_mismatch,
        docker_user_drop,
        no_shared_network,
    )
}


def record(name: str, suffix: str) -> None:
    directory = FIXTURES / f"{name}{suffix}"
    shutil.rmtree(directory, ignore_errors=True)
    with Stage(ensure_image()) as stage:
        situation = SITUATIONS[name](stage)
        target, source = situation if isinstance(situation, tuple) else (situation, None)
        args = ["--from", source] if source else []
        done = subprocess.run(
            [
                *command(),
                target,
                *args,
                "--json",
                "--no-live",
                "--save-snapshot",
                str(directory),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
    report = json.loads(done.stdout)
    expected = {
        "target": target,
        "args": args,
        "verdict": report["verdict"],
        "exit": done.returncode,
        "codes": [f["code"] for f in report["findings"]],
    }
    (directory / "expected.json").write_text(json.dumps(expected, indent=2) + "\n")
    print(f"{name}{suffix}: {expected}")


if __name__ == "__main__":
    ensure_engine()
    version = running_engine_version() or ""
    suffix = "" if version.startswith("20.10") else "-" + ".".join(version.split(".")[:2])
    for name in sys.argv[1:] or SITUATIONS:
        record(name, suffix)
