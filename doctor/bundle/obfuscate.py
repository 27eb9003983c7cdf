"""--obfuscate-ips: consistent pseudonyms for the IPv4 addresses of a snapshot.

Prefix-preserving: two addresses that share their first N bits share them after the
mapping too, so every subnet, route, DNAT target and `-d 172.17.0.2/32` still lines up and
the bundle diagnoses exactly as before.  Each first octet maps to one that is in none of
Docker's default ranges (172.16.0.0/12, 192.168.0.0/16, 10.0.0.0/8 pools) nor special
(0, 127, 169.254, multicast); loopback, unspecified, link-local and broadcast addresses
stay as they are: they say nothing about the host.  A per-bundle random key makes the
mapping unlinkable across bundles.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import struct

from doctor.snapshot.store import Snapshot

CIDR = re.compile(r"(?<![\w.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?:/\d{1,2})?(?![\w.])")
ROUTES = "host/proc-net-route"
NETNS_V4 = ("/tcp", "/udp")  # /proc/net/{tcp,udp}: the v6 files are left as they are
#: First octets an obfuscated address may start with: public unicast, far from Docker's pools.
FIRST_OCTETS = [o for o in range(11, 224) if o not in (100, 127, 169, 172, 192, 198, 203)]


class IpObfuscator:
    def __init__(self, key: bytes | None = None) -> None:
        self.key = key or os.urandom(32)
        self.mapped: dict[str, str] = {}
        self._firsts: dict[int, int] = {}  # first octet -> its pseudonym, one to one
        self._free = sorted(
            FIRST_OCTETS, key=lambda o: hmac.new(self.key, bytes([o]), hashlib.sha256).digest()
        )

    def address(self, text: str) -> str:
        if text in self.mapped:
            return self.mapped[text]
        try:
            ip = ipaddress.IPv4Address(text)
        except ValueError:
            return text
        if (
            ip.is_loopback
            or ip.is_unspecified
            or ip.is_link_local
            or ip.is_multicast
            or text == "255.255.255.255"
        ):
            return text
        value = int(ip)
        if value >> 24 not in self._firsts:
            # One to one while the pool lasts (about 200 first octets); beyond that a keyed
            # pick, so a bundle of a host talking to the whole internet still gets written.
            self._firsts[value >> 24] = (
                self._free.pop()
                if self._free
                else FIRST_OCTETS[
                    hmac.new(self.key, bytes([value >> 24]), hashlib.sha256).digest()[0]
                    % len(FIRST_OCTETS)
                ]
            )
        first = self._firsts[value >> 24]
        rest = 0
        for bit in range(
            23, -1, -1
        ):  # Crypto-PAn: each bit flipped by a keyed function of the bits before it
            prefix = (value >> (bit + 1)).to_bytes(4, "big")
            flip = hmac.new(self.key, prefix + bytes([bit]), hashlib.sha256).digest()[0] & 1
            rest = (rest << 1) | (((value >> bit) & 1) ^ flip)
        mapped = str(ipaddress.IPv4Address((first << 24) | rest))
        self.mapped[text] = mapped
        return mapped

    def text(self, text: str) -> str:
        def one(match: re.Match[str]) -> str:
            address, prefix = match[0].split("/") if "/" in match[0] else (match[0], None)
            if any(int(part) > 255 for part in address.split(".")):
                return match[0]
            mapped = self.address(address)
            if prefix is None or not prefix.isdigit() or int(prefix) > 32:
                return mapped + (f"/{prefix}" if prefix is not None else "")
            # A network keeps a network address: its host bits zero, as in the original.
            host_bits = int(ipaddress.IPv4Address(address)) & ((1 << (32 - int(prefix))) - 1)
            network = ipaddress.IPv4Network(f"{mapped}/{prefix}", strict=False).network_address
            return f"{ipaddress.IPv4Address(int(network) | host_bits)}/{prefix}"

        return CIDR.sub(one, text)

    def proc_address(self, field: str) -> str:
        """One address of /proc/net/{route,tcp,udp}: 8 hex digits, little-endian, maybe ":PORT"."""
        hex_address, colon, port = field.partition(":")
        if len(hex_address) != 8:
            return field
        address = str(ipaddress.IPv4Address(struct.pack("<I", int(hex_address, 16))))
        mapped = ipaddress.IPv4Address(self.address(address))
        return f"{struct.unpack('<I', mapped.packed)[0]:08X}{colon}{port}"

    def proc_table(self, text: str, columns: tuple[int, ...]) -> str:
        lines = text.splitlines(keepends=True)
        out = lines[:1]
        for line in lines[1:]:
            fields = line.split()
            for index in columns:
                if index < len(fields):
                    fields[index] = self.proc_address(fields[index])
            out.append("\t".join(fields) + "\n")
        return "".join(out)


def obfuscate_snapshot(snapshot: Snapshot, obfuscator: IpObfuscator | None = None) -> int:
    """Rewrite every IPv4 address in ``snapshot`` in place; how many distinct addresses changed."""
    o = obfuscator or IpObfuscator()
    for key, data in list(snapshot.artifacts.items()):
        text = data.decode("utf-8", "replace")
        if key == ROUTES:
            text = o.proc_table(text, (1, 2))  # destination and gateway; the mask (7) is no address
        elif key.startswith("netns/") and key.endswith(NETNS_V4):
            text = o.proc_table(text, (1, 2))  # local and remote address
        snapshot.artifacts[key] = o.text(text).encode()
    return sum(1 for a, b in o.mapped.items() if a != b)
