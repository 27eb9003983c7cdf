"""A short capture on a container's bridge: the guide's `tcpdump -i docker0` step, automated.

It answers two questions about one probe: did the SYN reach the bridge (so the host's
firewall let it through), and did the container answer (SYN-ACK or RST)?  Bounded:
it stops when the ``with`` block ends, and never outlives it.
"""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType
from typing import Any

# After the probe, how long the sniffer may take to hand over the SYN and the container's
# answer: a fixed 0.1 s lost the answer on a loaded host, so wait for it, within a bound.
DRAIN = 0.6
# Measured: packets sent within ~20 ms of the sniffer's start are not seen, even with the
# socket opened beforehand; 30 ms was enough every time, this leaves margin.
SETTLE = 0.08


def quiet_scapy() -> None:
    """scapy logs warnings (unknown link types, routes) on stderr: the report says what matters."""
    logging.getLogger("scapy").setLevel(logging.ERROR)


class Capture:
    def __init__(self, iface: str, address: str, port: int) -> None:
        self.iface, self.address, self.port = iface, address, port
        self.packets: list[Any] = []
        self._sniffer: Any = None

    def _keep(self, packet: Any) -> None:
        from scapy.layers.inet import IP, TCP
        from scapy.layers.l2 import Ether

        if IP not in packet:
            # Forwarded frames on a bridge can come without a link type scapy recognises.
            packet = Ether(bytes(packet))
        if IP not in packet or TCP not in packet:
            return
        ip, tcp = packet[IP], packet[TCP]
        if (ip.dst == self.address and tcp.dport == self.port) or (
            ip.src == self.address and tcp.sport == self.port
        ):
            self.packets.append(packet)

    def __enter__(self) -> Capture:
        quiet_scapy()
        from scapy.config import conf  # deferred: scapy's import is slow
        from scapy.sendrecv import AsyncSniffer

        # The socket is opened here, before anything is sent: a sniffer thread that opens
        # its own may still be starting when the probe's SYN crosses the bridge.
        listening = conf.L2listen(iface=self.iface)
        started = threading.Event()
        self._sniffer = AsyncSniffer(
            opened_socket=listening, prn=self._keep, store=False, started_callback=started.set
        )
        self._sniffer.start()
        started.wait(1.0)
        time.sleep(SETTLE)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._sniffer is not None and self._sniffer.running:
            deadline = time.monotonic() + DRAIN
            while time.monotonic() < deadline and not (self.reached and self.answer):
                time.sleep(0.01)
            self._sniffer.stop()

    @property
    def reached(self) -> bool:
        """A SYN to the container crossed the bridge."""
        return any(self._flags(p, "S") and p["IP"].dst == self.address for p in self.packets)

    @property
    def answer(self) -> str | None:
        """What the container sent back: "SYN-ACK", "RST", or None."""
        for p in self.packets:
            if p["IP"].src != self.address:
                continue
            if self._flags(p, "S") and self._flags(p, "A"):
                return "SYN-ACK"
            if self._flags(p, "R"):
                return "RST"
        return None

    @staticmethod
    def _flags(packet: Any, flag: str) -> bool:
        return flag in str(packet["TCP"].flags)

    def summary(self) -> str:
        if not self.reached:
            return f"capture on {self.iface}: the SYN never reached {self.address}:{self.port}"
        answer = self.answer
        return (
            f"capture on {self.iface}: the SYN reached {self.address}:{self.port}, which answered "
            f"{answer}"
            if answer
            else f"capture on {self.iface}: the SYN reached {self.address}:{self.port}, no answer"
        )
