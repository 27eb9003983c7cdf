"""The firewall's own evidence: the packet counters of the rules the walk stopped at, read right
before and right after the live probe (what Docker's maintainers ask every reporter for:
``iptables -nvL`` after reproducing). Reading counters changes nothing on the host.

A rule is watched at each firewall hop the path decided: the rule that decided, or the chain's
policy when none did. iptables counts every rule and every built-in chain's policy; nftables
counts a rule only when it has a ``counter`` statement, and a base chain's policy never: those
are said to be uncountable, not guessed.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Collection, Mapping

from msgspec import Struct

from doctor.firewall.model import Decision

COUNTER_TIMEOUT = 2.0  # per read of one tool's ruleset
_RULE = re.compile(r"^\[(?P<packets>\d+):\d+\] -A (?P<chain>\S+) ")
_POLICY = re.compile(r"^:(?P<chain>\S+) (?P<policy>[A-Z]+) \[(?P<packets>\d+):\d+\]")
_HANDLE = re.compile(r"# handle (\d+)$")
#: Which command lists each tool's counters.
SAVE = {
    "iptables": ["iptables-save", "-c"],
    "ip6tables": ["ip6tables-save", "-c"],
    "iptables-legacy": ["iptables-legacy-save", "-c"],
    "ip6tables-legacy": ["ip6tables-legacy-save", "-c"],
}


class Watched(Struct, frozen=True):
    """One rule (or chain policy) whose counter is read around the probe."""

    hop: str
    tool: str  # iptables, iptables-legacy, nft
    table: str  # iptables' table, or "nft FAMILY TABLE"
    chain: str
    position: int  # iptables: 1-based rule number, 0 for the chain's policy; nft: the handle
    shown: str  # "filter DOCKER-USER rule 1"

    @property
    def key(self) -> tuple[str, str, str, int]:
        return (self.tool, self.table, self.chain, self.position)


class Counted(Struct, frozen=True):
    watched: Watched
    packets: int | None  # packets during the probe; None: the rule has no counter

    def __str__(self) -> str:
        if self.packets is None:
            return f"{self.watched.shown}: uncountable (no counter)"
        return f"{self.watched.shown}: +{self.packets} packets during the probe"


def watch(decisions: Mapping[str, Decision], unseen: Collection[str] = ()) -> list[Watched]:
    """The rules (or policies) that decided each firewall hop of a path, but for the ``unseen``
    hops, which the probe does not pass (a counter that cannot move would read as evidence)."""
    watched = []
    for hop, d in decisions.items():
        if d.verdict == "unknown" or hop in unseen:
            continue
        if d.tool == "nft":
            handle = _HANDLE.search(d.rule.text) if d.rule else None
            position = int(handle.group(1)) if handle else -1
            shown = f"{d.table.removeprefix('nft ')} {d.chain}" + (
                f" handle {position}" if handle else " policy"
            )
        else:
            position = d.rule.position if d.rule else 0
            shown = f"{d.table} {d.chain} " + (f"rule {position}" if d.rule else "policy")
        tool, table = d.tool, d.table
        if tool.startswith("iptables") and table.endswith("6"):  # v6 tables are kept as "filter6"
            tool, table = "ip6" + tool.removeprefix("ip"), table.removesuffix("6")
        chain = d.rule.chain if d.rule else d.chain
        watched.append(Watched(hop, tool, table, chain, position, shown))
    return watched


def read(watched: list[Watched]) -> dict[tuple[str, str, str, int], int]:
    """The packet counters of every rule of the tools ``watched`` names, now."""
    counters: dict[tuple[str, str, str, int], int] = {}
    for tool in sorted({w.tool for w in watched}):
        try:
            if tool == "nft":
                counters.update(_nft(_run(["nft", "-j", "list", "ruleset"])))
            elif tool in SAVE:
                counters.update(_iptables(tool, _run(SAVE[tool])))
        except (OSError, subprocess.SubprocessError):
            continue  # unreadable now: those rules stay uncounted
    return counters


def counted(
    watched: list[Watched],
    before: Mapping[tuple[str, str, str, int], int],
    after: Mapping[tuple[str, str, str, int], int],
) -> list[Counted]:
    return [
        Counted(w, after[w.key] - before[w.key] if w.key in before and w.key in after else None)
        for w in watched
    ]


def _run(argv: list[str]) -> str:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=COUNTER_TIMEOUT, check=True
    ).stdout


def _iptables(tool: str, text: str) -> dict[tuple[str, str, str, int], int]:
    counters: dict[tuple[str, str, str, int], int] = {}
    table = ""
    positions: dict[str, int] = {}  # chain -> rules seen so far in this table
    for line in text.splitlines():
        if line.startswith("*"):
            table, positions = line[1:], {}
        elif policy := _POLICY.match(line):  # a user chain's "-" has no policy to count
            counters[(tool, table, policy["chain"], 0)] = int(policy["packets"])
        elif rule := _RULE.match(line):
            chain = rule["chain"]
            positions[chain] = positions.get(chain, 0) + 1
            counters[(tool, table, chain, positions[chain])] = int(rule["packets"])
    return counters


def _nft(text: str) -> dict[tuple[str, str, str, int], int]:
    counters: dict[tuple[str, str, str, int], int] = {}
    for item in json.loads(text).get("nftables", []):
        rule = item.get("rule")
        if not rule:
            continue
        counter = next((e["counter"] for e in rule.get("expr", ()) if "counter" in e), None)
        if isinstance(counter, dict):
            table = f"nft {rule['family']} {rule['table']}"
            counters[("nft", table, rule["chain"], int(rule["handle"]))] = int(counter["packets"])
    return counters
