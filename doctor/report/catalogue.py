"""The built-in cause codes: stable names, what each means, how it shows, how it is fixed.

Codes are a contract (scripts match on them): more may be added, none renamed.  The
built-in rules plugin registers them (``docker_doctor_codes``), as any plugin does its own;
they are kept here, apart from the rules' logic, with the report's other words.
"""

from __future__ import annotations

from doctor.plugin.rule import Code

CODES: dict[str, Code] = {
    # --- into a published port
    "NOTHING_ON_PORT": Code(
        "Nothing listens on this port and no container publishes it",
        "No process on the host listens on the port, and no container (running or not) asks for it "
        "to be published.",
        "host listening sockets; every container's NetworkSettings.Ports and "
        "HostConfig.PortBindings",
        "Start the service, and publish it: docker run -p HOST_PORT:CONTAINER_PORT IMAGE.",
    ),
    "PORT_NOT_PUBLISHED": Code(
        "A container serves this port but does not publish it",
        "The service listens inside a container (or the image EXPOSEs the port), but there is no "
        "-p / ports: "
        "mapping, so nothing on the host forwards to it. EXPOSE and compose `expose:` only "
        "document a port.",
        "netns listener or Config.ExposedPorts on the port; HostConfig.PortBindings without it",
        "Recreate the container with -p HOST_PORT:CONTAINER_PORT (compose: ports: "
        '["HOST:CONTAINER"]).',
    ),
    "PUBLISHED_PORT_MISMATCH": Code(
        "Published to a container port where nothing listens",
        "The host port forwards to a container port the application does not listen on, usually a "
        "typo or an "
        "image that moved its port (3000 vs 80).",
        "NetworkSettings.Ports key; the container's listeners read from /proc/<pid>/net",
        "Publish the port the application really listens on: -p HOST_PORT:ACTUAL_PORT.",
    ),
    "APP_BOUND_TO_LOOPBACK": Code(
        "The application listens on 127.0.0.1 inside its container",
        "Loopback inside a container is the container's own: traffic forwarded from the host "
        "arrives on the "
        "container's eth0 address and finds no listener. Connections are accepted by docker-proxy "
        "and then reset.",
        "the container's listener is only on 127.0.0.1 / ::1 (from /proc/<pid>/net/tcp)",
        "Make the application bind 0.0.0.0 (or ::), e.g. --host 0.0.0.0, listen 0.0.0.0:PORT.",
    ),
    "PROTOCOL_MISMATCH": Code(
        "TCP and UDP are mixed up",
        "A port is published as TCP (the default) while the service speaks UDP, or the other way "
        "round.",
        "the /tcp or /udp of the published mapping vs the container's listeners or the target",
        "Publish with the right protocol: -p HOST:CONTAINER/udp.",
    ),
    "CONTAINER_NOT_RUNNING": Code(
        "The container is not running",
        "The container that publishes the port has exited, is restarting, or was never started, so "
        "nothing forwards.",
        "State.Status, ExitCode, OOMKilled, RestartCount, Error; last log lines",
        "Read its logs (docker logs NAME), fix the cause, then docker start NAME.",
    ),
    "CONTAINER_UNHEALTHY": Code(
        "The container's healthcheck fails",
        "The container runs but its own healthcheck fails: the service may be starting, hung or "
        "misconfigured, "
        "and anything waiting for service_healthy will not start.",
        "State.Health.Status and the last healthcheck output",
        "Read the healthcheck output (docker inspect NAME --format '{{json .State.Health}}') and "
        "fix the service or the check.",
    ),
    "HEALTHCHECK_COMMAND_MISSING": Code(
        "The healthcheck runs a command the image does not have",
        "The container is unhealthy only because its healthcheck's command (often curl or "
        'wget) is not in the image: the shell answers 127, "not found", every time, whatever '
        "the service does. The port may work; what waits for service_healthy never starts.",
        "the healthcheck's test, its exit status 127 and its output",
        "Use a command the image has (or add it to the image), e.g. wget or the service's own "
        "client, in HEALTHCHECK / healthcheck.test.",
    ),
    "HOST_BINDING_RESTRICTED": Code(
        "Published on another address than the one used",
        "The port is published on 127.0.0.1 (or one specific address), so clients connecting to "
        "another address "
        "of the host are refused. Docker Engine 28+ also drops remote packets for 127.0.0.1 "
        "publishes.",
        "HostIp of the binding vs the address connected to",
        "Publish on all interfaces (-p 0.0.0.0:HOST:CONTAINER) or on the address clients use.",
    ),
    "PORT_CONFLICT": Code(
        "Another process or container holds the port",
        'The engine could not publish the port because it was taken: "address already in use" (a '
        "host process) "
        'or "port is already allocated" (another container).',
        "State.Error of the container; the host socket's owner; other containers' bindings",
        "Free the port (stop its holder) or publish on another host port.",
    ),
    "HOST_NETWORK_PUBLISH_IGNORED": Code(
        "-p is ignored with --network host",
        "A container on the host network shares the host's ports: publishing does nothing, the "
        "application must "
        "listen on the wanted port itself.",
        "HostConfig.NetworkMode = host with HostConfig.PortBindings",
        "Make the application listen on the wanted port, or leave host networking and publish with "
        "-p.",
    ),
    "IP_FORWARD_DISABLED": Code(
        "The kernel does not forward packets",
        "net.ipv4.ip_forward = 0: clients on other machines cannot reach published ports, "
        "containers cannot reach out.",
        "/proc/sys/net/ipv4/ip_forward; /info IPv4Forwarding",
        "sysctl -w net.ipv4.ip_forward=1 and persist it in /etc/sysctl.d; remove what resets it.",
    ),
    "EGRESS_NOT_MASQUERADED": Code(
        "Containers' traffic leaves the host without masquerade",
        "No MASQUERADE (or SNAT) rule rewrites the source of what leaves the bridge's subnet, so "
        "the far end answers a private address it has no route to, and the replies never come "
        "back.",
        "nat POSTROUTING walked for the container's packet; the daemon's \"iptables\" setting; "
        "whether the engine's own nat chains exist",
        'Restart the engine (it writes the rule again); with "iptables": false, remove that '
        "setting or add the MASQUERADE rule yourself; keep firewall reloads from flushing nat.",
    ),
    "BRIDGE_ADDRESS_MISSING": Code(
        "The bridge lost its address: the containers' gateway does not exist",
        "The containers on the network route through the bridge's address, but the bridge "
        "interface no longer holds it (a network manager took it), so nothing answers for the "
        "gateway and nothing leaves.",
        "the bridge interface's addresses against the network's gateway",
        "Give the address back (ip addr add GATEWAY/PREFIX dev BRIDGE) or restart the engine, and "
        "tell the network manager to leave Docker's bridges alone.",
    ),
    "HOP_LIMIT_TOO_LOW": Code(
        "Replies arrive with a hop limit that cannot cross the host",
        "The far end answers every packet, its SYN-ACK included, with TTL 1: the host itself gets "
        "the reply, but forwarding it into the container's bridge takes the last hop, so the "
        "container never does. A service that limits only its HTTP answer (AWS IMDSv2 sets the "
        "hop limit on the token PUT's response) lets the connection open and then hangs: a TCP "
        "probe cannot see that.",
        "a SYN sent from this host, and the TTL of its answer; the container's own attempt timing "
        "out",
        "Raise the service's hop limit (the far end's net.ipv4.ip_default_ttl or its own setting), "
        "or make that call from the host's network namespace.",
    ),
    "FIREWALL_DROP": Code(
        "A firewall rule drops the traffic",
        "A DROP or REJECT rule (DOCKER-USER, FORWARD ahead of Docker's rules, ufw, firewalld) "
        "stops the packets.",
        "rule order and counters in the chains the packet traverses",
        "Filter in DOCKER-USER, matching the original port with -m conntrack --ctorigdstport.",
    ),
    "DOCKER_RULES_MISSING": Code(
        "The engine's NAT or ACCEPT rules are gone",
        "A firewall reload or flush removed the rules the engine programmed for a running mapping.",
        "no DNAT / per-port ACCEPT for a running mapping",
        "Restart the engine (systemctl restart docker); flush only your own tables.",
    ),
    "IPTABLES_BACKEND_SPLIT": Code(
        "iptables-legacy and iptables-nft both hold rules",
        "The engine used one iptables backend and the firewall the other; both apply, each hides "
        "the other.",
        "both iptables-legacy-save and iptables-nft-save non-empty",
        "Use one backend (update-alternatives --config iptables), then restart docker.",
    ),
    "IPV6_LOCALHOST_MISMATCH": Code(
        "localhost resolves to ::1 but the port has no IPv6 path",
        "Clients try ::1 first; with the userland proxy off or an IPv4-only binding nothing "
        "answers there.",
        "/etc/hosts localhost entries; bindings and docker-proxy processes per family",
        "Use 127.0.0.1, enable the userland proxy, or give the network IPv6.",
    ),
    "DIRECT_ROUTING_BLOCKED": Code(
        "Engine 28+ blocks direct routing to container addresses",
        "Since Engine 28, packets from outside the host to a container's address are dropped "
        "unless published.",
        "raw PREROUTING DROP for the container address",
        "Publish the port, or use gateway mode nat-unprotected / routed.",
    ),
    "MACVLAN_HOST_ISOLATION": Code(
        "The host cannot talk to its own macvlan containers",
        "By kernel design a macvlan parent interface cannot reach its children.",
        "network Driver = macvlan and Options.parent",
        "Add a macvlan shim interface on the host, or use a bridge network.",
    ),
    "MTU_MISMATCH": Code(
        "The bridge MTU is larger than the path out",
        "Small requests work, large transfers and TLS hang: packets larger than the egress MTU are "
        "dropped. The daemon's mtu setting applies to the default bridge only: a user-defined or "
        "compose network keeps 1500 unless it sets com.docker.network.driver.mtu itself.",
        "bridge MTU vs egress interface MTU; the daemon's mtu against each network's",
        "Set the network or daemon mtu to the egress MTU, or clamp TCP MSS.",
    ),
    "MTU_BLACKHOLE": Code(
        "Packets above a size vanish on the way, with no ICMP to say so",
        "The path carries less than the container's MTU (a VPN, a cloud network at 1450) and the "
        'ICMP "fragmentation needed" that would make the sender shrink its packets is '
        "blocked: connections open and small requests work, TLS handshakes, uploads and large "
        "downloads hang. Found by ICMP echoes with DF set, of growing size, from the container.",
        "the largest echo answered against the interface's MTU; no ICMP error came back",
        "Lower the MTU to what gets through (daemon mtu for the default bridge, "
        "com.docker.network.driver.mtu for a network), or clamp TCP MSS in mangle FORWARD.",
    ),
    # --- between containers
    "NO_SHARED_NETWORK": Code(
        "The two containers share no network",
        "Containers only reach each other on a network they are both attached to.",
        "NetworkSettings.Networks of both",
        "docker network connect NETWORK CONTAINER (compose: a common networks: entry).",
    ),
    "DEFAULT_BRIDGE_NO_DNS": Code(
        "The default bridge has no name resolution",
        "On the default `bridge` network containers cannot resolve each other's names.",
        "only `bridge` in NetworkSettings.Networks",
        "Use a user-defined network: docker network create NET; docker network connect NET "
        "CONTAINER.",
    ),
    "NAME_NOT_FOUND": Code(
        "No container, alias or service has that name",
        "The name the client uses resolves to nothing on its networks.",
        "names and aliases on the client's networks",
        "Use one of the existing names (closest matches are listed).",
    ),
    "LOCALHOST_IN_CONTAINER": Code(
        "localhost inside a container is that container itself",
        "Each container has its own network namespace: its localhost is its own loopback, not "
        "the host's and not another container's. The service on that port runs in another "
        "container (or on the host), so the client must use its name.",
        "the client's own listeners, and the containers (or host processes) that listen on the "
        "port",
        "Use the service's name on a shared network (NAME:PORT; compose: the service name), or "
        "host.docker.internal for the host.",
    ),
    "HOST_PORT_USED_INSIDE": Code(
        "The published host port is used between containers",
        "Between containers, use the name and the container port; the host port (or localhost) is "
        "the host's.",
        "the port is one of the target's HostPorts, not a listener in its netns",
        "Connect to NAME:CONTAINER_PORT.",
    ),
    "ICC_DISABLED": Code(
        "Inter-container communication is disabled on this network",
        "The network was created with enable_icc=false.",
        "network option com.docker.network.bridge.enable_icc = false",
        "Use another network, or recreate it without the option.",
    ),
    "INTERNAL_NETWORK": Code(
        "The container is on an internal network only",
        "An --internal network has no way out and nothing published from it is reachable: the "
        "engine publishes "
        "no ports for a container with only internal networks.",
        "Internal: true on every network of the container; no bindings in NetworkSettings.Ports",
        "Attach the container to a non-internal network as well (docker network connect NET "
        "CONTAINER) and restart it.",
    ),
    "DNS_RESOLVER_UNREACHABLE": Code(
        "The container's DNS server is unreachable",
        "The container copied a resolver it cannot reach (e.g. systemd-resolved's 127.0.0.53).",
        "the container's resolv.conf",
        "Set the daemon's dns option or --dns.",
    ),
    "DNS_FALLBACK_UNREACHABLE": Code(
        "The container got Docker's public fallback resolvers, which this network cannot reach",
        "The host's only nameservers are loopback ones (systemd-resolved's 127.0.0.53, a "
        "dnsmasq): the engine drops those for a default-bridge container, and with none left "
        "writes its public fallback (8.8.8.8, 8.8.4.4) instead. Where the network does not "
        "reach them, nothing resolves. On a user-defined network the embedded DNS would ask the "
        "host's own resolver from the host's namespace, so the same name resolves there.",
        "the host's resolv.conf, the container's, and a live query to the fallback server",
        "Give the containers a resolver they reach (--dns, or daemon.json dns: a non-loopback "
        "upstream or the stub listening on the bridge's gateway), or use a user-defined network.",
    ),
    "HOST_RESOLV_CONF_BROKEN": Code(
        "The host's /etc/resolv.conf gives the engine no nameserver",
        "/etc/resolv.conf is missing, empty or a link to nothing, so the engine has no upstream "
        "to give containers: the default bridge gets the public fallback servers, and the "
        "embedded DNS gets none at all (Engine 28 and later) or the fallback (older engines).",
        "what /etc/resolv.conf is (file, missing, dangling link) and its nameservers",
        "Restore /etc/resolv.conf (systemd-resolved: ln -sf /run/systemd/resolve/resolv.conf "
        "/etc/resolv.conf), or set daemon.json dns; then restart the containers.",
    ),
    "STALE_DNS_CONFIG": Code(
        "The container's resolvers are not what it would get now",
        "The engine writes a container's resolv.conf when it starts, from the host's file of "
        "that moment, and does not follow later changes: a container started during a boot race "
        "(an empty host resolv.conf) or before the host's resolvers changed keeps the old ones.",
        "the container's nameservers (or its embedded DNS's upstreams) against what the host's "
        "file gives today",
        "docker restart CONTAINER (compose: docker compose up -d --force-recreate SERVICE).",
    ),
    "DNS_SEARCH_LEAK": Code(
        "The host's search domains send a name upstream before it is tried as written",
        "The engine copies the host's search domains (and ndots) into the container: a name "
        "with fewer dots than ndots is asked as NAME.SEARCHDOMAIN first, and an upstream that "
        "answers that (a wildcard record) sends the application elsewhere, or every lookup waits "
        "for the upstream first.",
        "the container's search and ndots; the live queries in resolver order",
        "--dns-search . (compose: dns_search: .) or --dns-option ndots:0 for the container, or "
        "fix the host's search/ndots; or use the fully qualified name with a trailing dot.",
    ),
    "HOST_GATEWAY_MISSING": Code(
        "host.docker.internal is not defined",
        "On Linux, host.docker.internal exists only with --add-host "
        "host.docker.internal:host-gateway.",
        "HostConfig.ExtraHosts",
        "--add-host host.docker.internal:host-gateway (compose: extra_hosts).",
    ),
    "STALE_CONNTRACK": Code(
        "A tracked flow keeps a NAT decision made before the port was published",
        "The kernel decides NAT once per flow, on its first packet. A UDP client that kept "
        "sending from the same port while nothing was published (or while the container had "
        "another address) keeps that entry alive: its packets go to the host itself, not to "
        "the container, although new flows are DNAT'd.",
        "the conntrack entries to the published port whose reply side is not the container",
        "conntrack -D for just those entries (the doctor names them).",
    ),
    "PUBLISHED_PORT_BYPASSES_INPUT_FIREWALL": Code(
        "A published port is open although the host's INPUT firewall blocks it",
        "ufw, firewalld or a DROP in INPUT is meant to close the port, but the engine DNATs "
        "published ports in nat PREROUTING, so they are filtered in FORWARD and INPUT never "
        "sees them: the port is open to every machine that reaches the host.",
        "filter INPUT walked for the packet as it arrives (what it would do), against the DNAT "
        "and FORWARD that really judge it",
        "Filter it in DOCKER-USER by its original port (-m conntrack --ctorigdstport), or "
        "publish on 127.0.0.1.",
    ),
    "DOCKER_USER_MATCHES_HOST_PORT": Code(
        "A DOCKER-USER rule matches the published port, which FORWARD never sees",
        "After DNAT the packet carries the container's port: a DOCKER-USER rule with --dport "
        "HOSTPORT never matches a port published as HOSTPORT:CONTAINERPORT.",
        "DOCKER-USER rules naming the published port, against the port mapping",
        "Match -m conntrack --ctorigdstport HOSTPORT --ctdir ORIGINAL instead.",
    ),
    "STALE_ENGINE_RULES": Code(
        "The firewall holds rules of another engine generation",
        "An engine replaced by another one (Engine 28 by 20.10, or the reverse) left chains and "
        "rules the running engine neither writes nor removes, such as Engine 28's raw "
        "PREROUTING drops or DOCKER-FORWARD chains: they change what its own rules mean.",
        "the filter chains and raw PREROUTING rules against the running engine's version",
        "Delete the other generation's rules and chains, then restart the engine.",
    ),
    "BIND_ADDRESS_NOT_ON_HOST": Code(
        "The port is published on an address this host does not have",
        "-p ADDRESS:PORT:PORT names an address no interface holds, so the engine cannot bind "
        'it ("cannot assign requested address") and the container never starts.',
        "HostConfig.PortBindings against the host's interface addresses; State.Error",
        "Publish on an address the host has, or on all (-p PORT:PORT); for a floating address, "
        "net.ipv4.ip_nonlocal_bind=1.",
    ),
    "CLIENT_IN_DOCKER_SUBNET": Code(
        "The client's address lies inside a Docker network",
        "A Docker network took a range that outside clients use (a VPN, an office network): the "
        "host routes the replies to such a client into the bridge instead of back to it.",
        "the --client address against every network's subnet, and the host's route to it",
        "Move the network to a free range (bip, default-address-pools, --subnet).",
    ),
    "NON_DOCKER_FORWARD_BLOCKED": Code(
        "Forwarded traffic that is not Docker's meets the engine's FORWARD policy DROP",
        "The engine sets filter FORWARD's policy to DROP when it turns forwarding on; flows this "
        "host forwards for others (virtual machines, LXD bridges, a router's LAN) have no "
        "Docker rule accepting them and are dropped.",
        "filter FORWARD walked for the --client's packet to the destination, and for the reply",
        "Accept the flow in DOCKER-USER: iptables -I DOCKER-USER -i IN -o OUT -j ACCEPT, and "
        "the replies with conntrack RELATED,ESTABLISHED.",
    ),
    "HOST_SERVICE_BOUND_TO_LOOPBACK": Code(
        "The host service listens on loopback only, out of the containers' reach",
        "From a container the host is the bridge's gateway (or another host address), never "
        "127.0.0.1: a host service bound to loopback refuses every container.",
        "the host's listening sockets on the port; the address the container dials",
        "Bind the service to 0.0.0.0 or to the bridge's gateway address.",
    ),
    "HOST_INPUT_BLOCKS_CONTAINERS": Code(
        "The host's INPUT firewall drops containers' connections to the host",
        "A connection from a container to the host (its gateway, host.docker.internal, the "
        "host's own address, or a published port while the userland proxy takes it) is for the "
        "host itself, so filter INPUT judges it; a ufw or firewalld default deny, or a DROP "
        "there, stops it.",
        "filter INPUT walked for the packet as it arrives from the container's bridge",
        "Accept the bridge's traffic to that port in INPUT (ufw allow in on BRIDGE, "
        "firewalld's trusted or docker zone for the bridge, or an ACCEPT before the rule).",
    ),
    "SUBNET_OVERLAP": Code(
        "A Docker network overlaps a host route",
        "A Docker subnet covers addresses the host reaches elsewhere (LAN, VPN).",
        "IPAM.Config vs host routes",
        "Set default-address-pools / bip to unused ranges.",
    ),
    # --- platforms
    "DESKTOP_VM_NETWORK": Code(
        "Docker Desktop runs containers in a VM",
        "Container addresses are not routable from the host and host iptables are irrelevant.",
        "/info OperatingSystem = Docker Desktop",
        "Use published ports on localhost.",
    ),
    "DESKTOP_BIND_MOUNT_SLOW": Code(
        "Bind mounts are slow on Docker Desktop",
        "Files shared from the host into the VM cross a virtualisation layer.",
        "Docker Desktop with bind mounts",
        "Prefer volumes; minimise bind mounts.",
    ),
    "WSL2_LAN_ACCESS": Code(
        "WSL2 ports are not reachable from the LAN",
        "In NAT mode Windows reaches WSL2 ports through a localhost relay; other machines cannot.",
        "kernel release contains microsoft",
        "Use mirrored networking or a Windows port proxy.",
    ),
    "ROOTLESS_PORT_LIMITS": Code(
        "Rootless Docker limits ports and addresses",
        "Ports below 1024 need net.ipv4.ip_unprivileged_port_start; container addresses are not "
        "reachable from the host.",
        "/info SecurityOptions name=rootless",
        "Lower ip_unprivileged_port_start or use ports >= 1024.",
    ),
    # --- hygiene and pre-flight
    "SENSITIVE_PORT_EXPOSED": Code(
        "A database or admin port is published on all interfaces",
        "Anyone who can reach the host can reach the service.",
        "published bindings on 0.0.0.0 for well-known sensitive ports",
        "Publish on 127.0.0.1, or not at all and use an internal network.",
    ),
    "PRIVILEGED_OR_BROAD_CAPS": Code(
        "Privileged container or broad capabilities",
        "privileged or capabilities like NET_ADMIN / SYS_ADMIN weaken isolation.",
        "HostConfig.Privileged, CapAdd",
        "--cap-drop ALL and add back only what is needed.",
    ),
    "DEPENDS_ON_WITHOUT_HEALTHCHECK": Code(
        "depends_on does not wait for readiness",
        "Without a healthcheck and condition: service_healthy, a dependant starts before its "
        "database is ready.",
        "compose depends_on without condition",
        "Add a healthcheck and depends_on: condition: service_healthy.",
    ),
    "HOST_PORT_IN_USE": Code(
        "The host port is already in use",
        "A process or another container holds the port a service wants to publish.",
        "host listening sockets; container bindings",
        "Free the port or choose another.",
    ),
    "DUPLICATE_HOST_PORT": Code(
        "Two services publish the same host port",
        "Only one can have it.",
        "compose ports: entries",
        "Give each service its own host port.",
    ),
    "OBSOLETE_VERSION_KEY": Code(
        "The compose file's top-level `version:` is obsolete",
        "Compose v2 ignores `version:` and warns about it; it no longer selects a file format.",
        "a top-level `version` key in the compose file",
        "Delete the `version:` line.",
    ),
    "SYSCTL_TUNING": Code(
        "Kernel network settings are small for heavy load",
        "somaxconn, ip_local_port_range and tcp_fin_timeout limit many concurrent connections.",
        "/proc/sys values",
        "sysctl -w net.core.somaxconn=1024 (and the others), persisted in /etc/sysctl.d.",
    ),
    "SWARM_SERVICE_NO_RUNNING_TASK": Code(
        "No task of the swarm service is running",
        "The service's tasks are pending, failing or shut down, so its name resolves to no "
        "address (endpoint mode dnsrr) or to a virtual IP with nothing behind it.",
        "the manager's tasks of the service: state, desired state, error",
        "docker service ps --no-trunc SERVICE tells why; fix that (a constraint no node meets, a "
        "drained node, a failing command) and the scheduler starts them.",
    ),
    "SWARM_SERVICE_NOT_ON_NETWORK": Code(
        "The swarm service is not on the client's network",
        "The embedded DNS answers a service's name only on the service's own networks, and only "
        "an overlay both are on carries the packets.",
        "the service's networks (TaskTemplate.Networks) and the client's",
        "docker service update --network-add NET SERVICE, or connect the client to the "
        "service's (attachable) overlay.",
    ),
    "SWARM_PORT_BLOCKED": Code(
        "A port Swarm needs between its nodes is blocked",
        "This node's firewall stops 2377/tcp (to a manager), 7946/tcp+udp (gossip) or 4789/udp "
        "(VXLAN) from another node: nodes fall out of the cluster, or overlay traffic between "
        "them is lost while names still resolve.",
        "the filter INPUT walk of a packet from each other node's address to the port; the rule",
        "Accept the port from the other nodes before the rule (iptables -I INPUT -s NODE -p "
        "PROTO --dport PORT -j ACCEPT, or the firewall manager's own command), on every node.",
    ),
    "SWARM_NODE_DOWN": Code(
        "A swarm node is down",
        "The manager has lost the node (its engine stopped, or the nodes cannot reach each other "
        "on 2377/tcp and 7946/tcp+udp): its tasks do not run.",
        "the manager's node list: Status.State and Message",
        "Start the node's engine, or let the nodes reach each other; docker node rm a node that "
        "is gone.",
    ),
    "SWARM_NODE_DRAINED": Code(
        "A swarm node takes no new tasks",
        "A node set to drain (or pause) is given no new tasks; drain also moves its tasks away, "
        "so services constrained to it run nothing.",
        "the manager's node list: Spec.Availability",
        "docker node update --availability active NODE.",
    ),
}
