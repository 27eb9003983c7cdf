"""Pure: iptables and nftables rulesets, and one packet walked through them."""
