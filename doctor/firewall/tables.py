"""Which nftables tables are iptables-nft's: iptables-save shows those, so they are read once.

Apart from the nft model (and free of imports): the early start of the firewall dumps needs it
before anything else is imported."""

from __future__ import annotations

#: Tables iptables-nft owns: read from iptables-save, not twice.
IPTABLES_TABLES = frozenset({"filter", "nat", "raw", "mangle", "security"})


def owned_by_iptables(family: object, table: object) -> bool:
    """Whether nft table ``family table`` is one of iptables-nft's (iptables-save shows it)."""
    return family in ("ip", "ip6") and table in IPTABLES_TABLES


def listing(family: str, table: str) -> tuple[str, ...]:
    """How the nftables probe lists one table that is not iptables-nft's."""
    return ("nft", "-j", "list", "table", family, table)


#: How the nftables probe lists everything (a bundle, or when iptables-save failed).
WHOLE_RULESET = ("nft", "-j", "list", "ruleset")
