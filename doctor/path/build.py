"""The path for a target: into a published port or to a container from this host or another
machine (:mod:`doctor.path.host`), from a source container (:mod:`doctor.path.container`), or
through this host for an outside client (:mod:`doctor.path.forward`)."""

from __future__ import annotations

from doctor.facts.model import Facts
from doctor.path.container import build_peer_path
from doctor.path.forward import build_forward_path
from doctor.path.hops import NetworkPath, Route
from doctor.path.host import build_path
from doctor.path.target import Target


def path_for(facts: Facts, target: Target) -> NetworkPath:
    if target.kind == "host":
        return NetworkPath((), Route())  # the whole host: only host-wide rules speak
    if target.source:
        return build_peer_path(facts, target)
    if target.kind == "forward":
        return build_forward_path(facts, target)
    return build_path(facts, target)
