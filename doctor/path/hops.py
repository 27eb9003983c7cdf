"""A path: the hops a packet takes to the target, in order, each with its status; and the
names of the hops, one enum for every path.

A path is never changed in place: a live probe that confirms or contradicts a hop makes a new
path (:meth:`NetworkPath.with_hop`), so the path the facts built stays as it was.
"""

from __future__ import annotations

from enum import StrEnum

from msgspec import Struct, field
from msgspec.structs import replace

from doctor.facts.model import Binding, Container, PortMapping
from doctor.firewall.model import Decision
from doctor.path.names import UNKNOWN_PLACE, Place
from doctor.report.document import Hop, HopStatus


class HopName(StrEnum):
    """Where a packet is judged.  The values are the report's hop names (a contract)."""

    SOURCE = "source"  # --from: the source container itself
    NAME_RESOLUTION = "name-resolution"
    HOST_LISTENER = "host-listener"  # a process, or docker-proxy, on the published port
    RAW_PREROUTING = "raw-prerouting"
    NAT_DNAT = "nat-dnat"
    FILTER_FORWARD = "filter-forward"
    FILTER_INPUT = "filter-input"
    NETWORK = "network"  # --from: a network the source and the destination share
    BRIDGE = "bridge"
    GATEWAY = "gateway"  # --from: the way to this host
    NAT_MASQUERADE = "nat-masquerade"  # --from, out of the host: the source becomes the host's
    EGRESS = "egress"  # --from: out of the host
    RETURN_PATH = "return-path"  # --from, out of the host: the replies, back through FORWARD
    CONTAINER = "container"
    CONTAINER_LISTENER = "container-listener"
    HOST = "host"  # the host as a whole: on no path


#: Into a published port, from this host or another machine, in the kernel's order.
HOST_PATH = (
    HopName.NAME_RESOLUTION,
    HopName.HOST_LISTENER,
    HopName.RAW_PREROUTING,
    HopName.NAT_DNAT,
    HopName.FILTER_FORWARD,
    HopName.FILTER_INPUT,
    HopName.BRIDGE,
    HopName.CONTAINER,
    HopName.CONTAINER_LISTENER,
)
#: Straight to a container's own address, from another machine.
DIRECT_PATH = (
    HopName.RAW_PREROUTING,
    HopName.FILTER_FORWARD,
    HopName.BRIDGE,
    HopName.CONTAINER,
    HopName.CONTAINER_LISTENER,
)
#: To a container by name, from this host.
CONTAINER_PATH = (
    HopName.HOST_LISTENER,
    HopName.BRIDGE,
    HopName.CONTAINER,
    HopName.CONTAINER_LISTENER,
)
#: Where a firewall ruleset decides.
FIREWALL_HOPS = (
    HopName.RAW_PREROUTING,
    HopName.NAT_DNAT,
    HopName.FILTER_FORWARD,
    HopName.FILTER_INPUT,
    HopName.NAT_MASQUERADE,
    HopName.RETURN_PATH,
)
#: Where a ruleset can drop or reject the packet (nat only translates it).
FILTERING_HOPS = (
    HopName.RAW_PREROUTING,
    HopName.FILTER_FORWARD,
    HopName.FILTER_INPUT,
    HopName.RETURN_PATH,
)
#: Hops a probe sent from this host never passes (the firewall's, and the replies' way back to
#: an outside client): the facts' verdict on them stands.
NOT_SEEN_FROM_HOST = FILTERING_HOPS


class Route(Struct, frozen=True):
    """The container and port mapping behind the target, as far as the facts tell."""

    container: Container | None = None
    mapping: PortMapping | None = None
    binding: Binding | None = None
    live: bool = False  # False: only requested (HostConfig), the engine has not applied it

    @property
    def container_port(self) -> int | None:
        return self.mapping.container_port if self.mapping else None


class NetworkPath(Struct, frozen=True):
    hops: tuple[Hop, ...]
    route: Route
    #: hop -> the firewall's decision behind its verdict (raw-prerouting, nat-dnat, filter-*)
    decisions: dict[str, Decision] = field(default_factory=dict)
    #: --from: where the target's address leads from the source ("unknown" on other paths)
    destination: Place = UNKNOWN_PLACE

    def hop(self, name: str) -> Hop | None:
        return next((h for h in self.hops if h.hop == name), None)

    def with_hop(self, hop: Hop) -> NetworkPath:
        """This path with ``hop`` in place of the hop of its name."""
        return replace(self, hops=tuple(hop if h.hop == hop.hop else h for h in self.hops))

    def rank(self, hop: str) -> int:
        """Where a hop sits on this path, for ranking findings (hops not on it last)."""
        names = [h.hop for h in self.hops]
        if hop in names:
            return names.index(hop)
        return len(names) + HOST_PATH.index(HopName(hop)) if hop in HOST_PATH else 99


def with_status(hop: Hop, status: HopStatus, live: str) -> Hop:
    """``hop`` as a live probe saw it, the facts' status kept beside."""
    return replace(hop, status=status, static=hop.status, live=live)
