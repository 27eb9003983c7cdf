"""Entering a process's network namespace (root only): setns(2) through libc."""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)


def setns(fd: int) -> None:
    """Move the calling thread into the network namespace open at ``fd``."""
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def of_process(pid: int) -> str:
    return f"/proc/{pid}/ns/net"


def enter(path: str) -> None:
    """Move the calling thread, for good, into the network namespace at ``path``
    (``/proc/PID/ns/net``, or ``/run/netns/NAME`` for one made by ``ip netns add``)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        setns(fd)
    finally:
        os.close(fd)
