"""MTU black holes, staged for real on both engines: the way to a server carries 1400 bytes
(a route with a locked MTU, as a VPN or a cloud network has) and this host drops the ICMP
"fragmentation needed" it would send back. A real client proves it first: a small request
works, a large upload stalls."""

from __future__ import annotations

import json

from tests.support.command import run_doctor
from tests.support.reports import evidence, first, hops, outcome
from tests.support.staging import Stage, engine_started_with

PATH_MTU = 1400
UPLOAD = 200_000  # bytes: far more than one segment


def test_packets_above_the_path_mtu_vanish(stage):
    port = stage.free_port()
    server = stage.sink_server(port)
    stage.shrink_path(server, PATH_MTU)
    web = stage.run("web", "--network", stage.network("net"))
    assert stage.connect_from(web, server.client_address, port) == "connected"
    assert stage.upload_from(web, server.client_address, port, 100) == "100"  # small works
    assert stage.upload_from(web, server.client_address, port, UPLOAD) == "timeout"
    status, report = run_doctor(f"{server.client_address}:{port}", "--from", web)
    assert outcome(status, report) == ("unreachable", "MTU_BLACKHOLE", "egress", 1)
    said = evidence(first(report))
    assert PATH_MTU - 8 <= said["largest packet through (DF set)"] <= PATH_MTU
    assert said[f"{web} route MTU to {server.client_address}"] == 1500
    # The fix, as the doctor gave it: a network whose MTU fits the path.
    fits = said["largest packet through (DF set)"]
    assert first(report)["fix"]["commands"][0].startswith(
        f"docker network create -o com.docker.network.driver.mtu={fits} "
    )
    small = stage.network("small", "-o", f"com.docker.network.driver.mtu={fits}")
    fixed = stage.run("fixed", "--network", small)
    assert stage.upload_from(fixed, server.client_address, port, UPLOAD) == str(UPLOAD)
    status, report = run_doctor(f"{server.client_address}:{port}", "--from", fixed)
    assert (report["verdict"], status) == ("reachable", 0)
    assert hops(report)["egress"] == "ok"


def test_the_daemon_mtu_reaches_the_default_bridge_only(engine, image, tmp_path):
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"mtu": PATH_MTU}))
    with engine_started_with("--config-file", str(config)), Stage(image) as stage:
        port = stage.free_port()
        server = stage.sink_server(port)
        stage.shrink_path(server, PATH_MTU)
        legacy = stage.run("legacy")  # the default bridge: the daemon's mtu applies
        api = stage.run("api", "--network", stage.network("net"))  # kept 1500
        assert stage.upload_from(legacy, server.client_address, port, UPLOAD) == str(UPLOAD)
        assert stage.upload_from(api, server.client_address, port, UPLOAD) == "timeout"
        status, report = run_doctor(f"{server.client_address}:{port}", "--from", api)
        codes = [f["code"] for f in report["findings"]]
        assert outcome(status, report) == ("unreachable", "MTU_BLACKHOLE", "egress", 1)
        assert "MTU_MISMATCH" in codes
        mismatch = next(f for f in report["findings"] if f["code"] == "MTU_MISMATCH")
        assert evidence(mismatch)["daemon mtu"] == PATH_MTU
        assert mismatch["evidence"][0]["source"] == str(config)
        status, report = run_doctor(f"{server.client_address}:{port}", "--from", legacy)
        assert (report["verdict"], status) == ("reachable", 0)
