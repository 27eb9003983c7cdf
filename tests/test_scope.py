"""Which containers a diagnosis reads in full, from the engine's list alone (no engine)."""

from __future__ import annotations

from doctor.collect.scope import Question, involved


def summary(
    name, state="running", ports=(), networks=("bridge",), mode=None, service=None, ip=None
):
    return {
        "Id": f"{name:0<12}" + "0" * 52,
        "Names": [f"/{name}"],
        "State": state,
        "Ports": [dict(p) for p in ports],
        "Labels": {"com.docker.compose.service": service} if service else {},
        "HostConfig": {"NetworkMode": mode or (networks[0] if networks else "none")},
        "NetworkSettings": {
            "Networks": {n: {"IPAddress": ip or "", "GlobalIPv6Address": ""} for n in networks}
        },
    }


def published(host_port, container_port=80):
    return {"IP": "0.0.0.0", "PrivatePort": container_port, "PublicPort": host_port, "Type": "tcp"}


HOST = [
    summary("web", ports=[published(8080)], networks=("app",)),
    summary("api", ports=[published(8081)], networks=("app",)),
    summary("exposer", ports=[{"PrivatePort": 8080, "Type": "tcp"}]),
    summary("idle"),
    summary("db", networks=("data",), ip="172.20.0.5", service="database"),
    summary("worker", networks=("data",)),
    summary("gone", state="exited"),
    summary("hostnet", mode="host", networks=("host",)),
    summary("sidecar", mode="container:web"),
]


def names(scope):
    by_id = {s["Id"]: s["Names"][0][1:] for s in HOST}
    return {by_id[cid] for cid in scope.read}


def test_a_port_reads_its_publisher_its_exposers_and_what_is_always_read():
    scope = involved(Question("localhost:8080", "localhost", 8080), HOST)
    assert not scope.complete and scope.listed == len(HOST)
    assert names(scope) == {"web", "exposer", "gone", "hostnet", "sidecar"}
    assert scope.read[HOST[0]["Id"]] == "publishes port 8080"
    assert "read 5 of 9 containers" in scope.detail()


def test_a_name_reads_the_container_and_its_peers_not_the_port_s_other_holders():
    for ref in ("db", "database", "db.data", "172.20.0.5", HOST[4]["Id"][:6]):
        scope = involved(Question(f"{ref}:5432", ref, 5432), HOST)
        assert names(scope) == {"db", "worker", "gone", "hostnet", "sidecar", "web"}, ref


def test_from_reads_the_source_and_its_peers():
    scope = involved(Question("db:5432", "db", 5432, source="web"), HOST)
    assert {"web", "api", "db", "worker"} <= names(scope) and "idle" not in names(scope)


def test_a_name_that_matches_no_container_reads_everything():
    scope = involved(Question("cache:6379", "cache", 6379, source="web"), HOST)
    assert scope.complete and names(scope) == {s["Names"][0][1:] for s in HOST}
    assert "cache names no container" in scope.why


def test_an_address_of_no_container_is_a_port_question():
    scope = involved(Question("192.0.2.7:8081", "192.0.2.7", 8081), HOST)
    assert names(scope) == {"api", "gone", "hostnet", "sidecar", "web"}


def test_no_question_reads_everything():
    scope = involved(None, HOST)
    assert scope.complete and scope.detail() == "" and len(scope.read) == len(HOST)


def test_a_stopped_container_named_reads_everything_for_who_holds_its_ports():
    scope = involved(Question("gone:80", "gone", 80), HOST)
    assert scope.complete and "gone is not running" in scope.why


def test_a_source_in_another_containers_namespace_brings_that_ones_peers():
    host = [
        *HOST,
        summary("app", networks=("backend",)),
        summary("postgres", networks=("backend",)),
    ]
    host.append(summary("web2", mode="container:app", networks=()))
    scope = involved(Question("db:5432", "10.0.0.1", 5432, source="web2"), host)
    by_id = {s["Id"]: s["Names"][0][1:] for s in host}
    assert {"web2", "app", "postgres"} <= {by_id[cid] for cid in scope.read}


def test_only_a_port_of_this_host_is_a_host_port():
    assert Question("localhost:80", "localhost", 80).host_port == 80
    assert Question(":80", None, 80).host_port == 80
    assert Question("192.0.2.1:80", "192.0.2.1", 80).host_port == 80
    assert Question("web:80", "web", 80).host_port is None
