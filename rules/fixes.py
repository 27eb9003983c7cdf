"""Concrete fix commands that name the real container, image and ports."""

from __future__ import annotations

import shlex

from doctor.facts.model import Container, Protocol, is_wildcard


def port_spec(host_port: int, container_port: int, protocol: Protocol, host_ip: str = "") -> str:
    """The text of a -p flag or of a compose ports: entry, e.g. 127.0.0.1:8080:80/udp."""
    host = f"[{host_ip}]:" if ":" in host_ip else f"{host_ip}:"
    if is_wildcard(host_ip):
        host = ""  # the default: all interfaces
    return f"{host}{host_port}:{container_port}" + ("/udp" if protocol == "udp" else "")


def republish(container: Container, spec: str) -> list[str]:
    """Recreate ``container`` with a port published as ``spec``, the way it was made."""
    service = container.compose_service
    if service:
        return [
            f'# compose file, service "{service}":  ports: ["{spec}"]',
            f"docker compose -p {container.compose_project} up -d {service}",
        ]
    return [
        f"docker rm -f {container.name}",
        f"docker run -d --name {container.name} -p {spec} {container.image} "
        f"{shlex.join(container.command)}".rstrip()
        + "  # and its other options",
    ]
