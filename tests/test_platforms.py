"""Platforms this machine cannot be: the doctor runs there with the probes that apply, says why
the others were skipped, and never trips over a missing /proc."""

from __future__ import annotations

import sys
import time

import pytest

from doctor.collect.collector import collect
from doctor.collect.engine_api import resolve_endpoint
from doctor.facts.build import build_facts
from doctor.plugin.manager import load_plugins

LINUX_HOST_PROBES = {
    "container-listeners",
    "container-files",
    "iptables",
    "nftables",
    "sysctl",
    "routes",
}


@pytest.mark.parametrize("system", ["darwin", "win32"])
def test_on_macos_and_windows_linux_host_probes_are_skipped_with_a_reason(system, monkeypatch):
    # Both imported first: psutil picks its backend by sys.platform at import, and the
    # probes import it only where they use it.
    import psutil  # noqa: F401

    probes = load_plugins().probes
    monkeypatch.setattr(sys, "platform", system)
    snapshot, _ = collect(probes, time.monotonic() + 10, resolve_endpoint())
    runs = {p.name: p for p in snapshot.probes}
    for name in LINUX_HOST_PROBES:
        assert runs[name].status == "skipped", (name, runs[name])
        assert f"not a Linux host ({system})" in runs[name].detail
    assert runs["host-sockets"].status == "ok"  # psutil asks the OS there
    assert not [p for p in snapshot.probes if p.status == "failed" and p.name != "engine"]
    build_facts(snapshot)  # facts from what could be read, nothing more


def test_a_desktop_endpoint_on_linux_skips_what_the_vm_hides(monkeypatch, tmp_path):
    # Docker Desktop for Linux: the engine's socket is under ~/.docker/desktop; nothing answers here.
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/.docker/desktop/docker.sock")
    snapshot, _ = collect(load_plugins().probes, time.monotonic() + 10, resolve_endpoint())
    runs = {p.name: p for p in snapshot.probes}
    for name in ("iptables", "nftables", "sysctl", "routes"):
        assert runs[name].status == "skipped" and "Docker Desktop's VM" in runs[name].detail, runs[
            name
        ]
    assert runs["host-sockets"].status == "ok"


def test_platform_detection_from_facts():
    from doctor.facts.platform import detect

    assert detect("Docker Desktop", "6.10.14-linuxkit", (), "24.1.0", (), "").kind == "desktop"
    assert (
        detect("Ubuntu", "6.8", ("name=seccomp", "name=rootless"), "6.8", (), "").kind == "rootless"
    )
    wsl = detect(
        "Ubuntu 24.04.1 LTS",
        "5.15.167.4-microsoft-standard-WSL2",
        (),
        "5.15.167.4-microsoft-standard-WSL2",
        ("lo", "eth0"),
        "",
    )
    assert (wsl.kind, wsl.wsl_mode) == ("wsl2", "nat")
    assert (
        detect(
            "Ubuntu", "x", (), "5.15.167.4-microsoft-standard-WSL2", ("lo", "eth0", "loopback0"), ""
        ).wsl_mode
        == "mirrored"
    )
    assert (
        detect("Debian GNU/Linux 12 (bookworm)", "6.1", (), "6.1", ("eth0",), "default").kind
        == "linux"
    )
