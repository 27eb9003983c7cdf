"""The host-unchanged guard the engine tests wrap every doctor run in: it must catch a link
a run deleted or left behind, and must not blame a run for the kernel's own late cleanup
of a container's namespace."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tests.support import host_state

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("unshare"),
    reason="needs root on Linux, and unshare, to stage links",
)


def _ip(*argv: str) -> None:
    subprocess.run(("ip", *argv), check=True, capture_output=True, timeout=10)


def _gone(name: str) -> bool:
    return subprocess.run(("ip", "link", "show", name), capture_output=True).returncode != 0


@pytest.fixture
def veth_into_a_namespace() -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A veth whose peer is in an unnamed namespace that only a process holds, as a
    container's is; the namespace dies with the process."""
    holder = subprocess.Popen(("unshare", "--net", "sleep", "60"))
    name = f"ddg{os.getpid() % 10000}"
    try:
        own = os.readlink("/proc/self/ns/net")
        deadline = time.monotonic() + 10
        while os.readlink(f"/proc/{holder.pid}/ns/net") == own:  # until unshare has entered its own
            assert time.monotonic() < deadline, "unshare did not enter a namespace"
            time.sleep(0.01)
        _ip(*f"link add {name} type veth peer name {name}p netns {holder.pid}".split())
        yield name, holder
    finally:
        holder.kill()
        holder.wait()
        subprocess.run(("ip", "link", "delete", name), capture_output=True)


def test_a_veth_that_died_with_its_namespace_is_not_a_change(veth_into_a_namespace):
    name, holder = veth_into_a_namespace
    with host_state.unchanged():
        holder.kill()
        holder.wait()
        deadline = time.monotonic() + 10
        while not _gone(name) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert _gone(name)


def test_a_deleted_veth_of_a_living_namespace_is_a_change(veth_into_a_namespace):
    name, _ = veth_into_a_namespace
    with (
        pytest.raises(AssertionError, match=rf"'links': {{'gone': \[\('{name}'"),
        host_state.unchanged(),
    ):
        _ip("link", "delete", name)


def test_a_link_left_behind_is_a_change():
    name = f"ddn{os.getpid() % 10000}"
    try:
        with pytest.raises(AssertionError, match=rf"'new': \[\('{name}'"), host_state.unchanged():
            _ip("link", "add", name, "type", "bridge")
    finally:
        subprocess.run(("ip", "link", "delete", name), capture_output=True)
