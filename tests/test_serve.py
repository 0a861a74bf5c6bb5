"""`nhd-bridge serve` as users run it: a real process on loopback, scheduler, health, SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
import yaml

from nhd_bridge import TransientError
from nhd_bridge.adapters.local import LocalConfig, LocalTracker
from nhd_bridge.core.config import load_config
from nhd_bridge.core.scheduler import BridgeScheduler
from nhd_bridge.core.state import StateStore, utcnow
from nhd_bridge.core.state.schema import agreement_health
from nhd_bridge.testing.fake import FakeTracker

STATUS = "status-token-for-the-test"  # the listener has a receiver: /status needs it
AUTH = {"Authorization": f"Bearer {STATUS}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {seconds} s")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[str]]]:
    port = free_port()
    config = {
        "server": {
            "port": port,
            "receiver": {"base_url": f"http://127.0.0.1:{port}/sharing"},
        },
        "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
        "instances": {
            "desk": {"kind": "local", "path": str(tmp_path / "desk.db")},
            "eng": {"kind": "local", "path": str(tmp_path / "eng.db")},
        },
        "agreements": {
            "desk-eng": {"sender": "desk", "receiver": "eng", "schedule": {"every": "1s"}}
        },
    }
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(config))
    # A file, not a pipe: an unread pipe fills up and blocks the server's logging.
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "nhd_bridge", "-c", str(path), "serve"],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "NHD_BRIDGE_STATUS_TOKEN": STATUS},
    )
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        try:
            return httpx.get(f"{base}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(healthy)
        yield base, tmp_path, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        log.close()


def test_serve_runs_agreements_on_schedule_and_stops_cleanly_on_sigterm(served):
    base, folder, process = served
    with LocalTracker(LocalConfig(path=folder / "desk.db")) as desk:
        desk.create_ticket("Synced by the scheduler")

    def copied() -> bool:
        with LocalTracker(LocalConfig(path=folder / "eng.db")) as eng:
            return [t.subject for t in eng.list_tickets()] == ["Synced by the scheduler"]

    wait_for(copied)
    status = httpx.get(f"{base}/status", timeout=2, headers=AUTH).json()
    assert status["status"] == "ok" and "desk-eng" in status["agreements"]

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    assert "Finished server process" in (folder / "serve.log").read_text()


def test_sighup_reloads_the_configuration_and_a_broken_file_keeps_the_running_one(served):
    base, folder, process = served
    config_path = folder / "bridge.yaml"
    config = yaml.safe_load(config_path.read_text())
    with LocalTracker(LocalConfig(path=folder / "desk.db")) as desk:
        desk.create_ticket("For engineering and, after the reload, for QA")

    config_path.write_text("agreements: [this is not a configuration\n")
    process.send_signal(signal.SIGHUP)
    wait_for(lambda: "configuration not reloaded" in (folder / "serve.log").read_text())
    assert process.poll() is None

    config["instances"]["qa"] = {"kind": "local", "path": str(folder / "qa.db")}
    config["agreements"]["desk-qa"] = {
        "sender": "desk",
        "receiver": "qa",
        "schedule": {"every": "1s"},
    }
    config_path.write_text(yaml.safe_dump(config))
    process.send_signal(signal.SIGHUP)

    def reached_qa() -> bool:
        with LocalTracker(LocalConfig(path=folder / "qa.db")) as qa:
            return len(qa.list_tickets()) == 1

    wait_for(reached_qa)
    assert "desk-qa" in httpx.get(f"{base}/status", timeout=2, headers=AUTH).json()["agreements"]
    assert process.poll() is None


def test_scheduler_trigger_runs_an_agreement_now_and_only_once_at_a_time(make_bridge):
    bridge = make_bridge({"ab": {"sender": "A", "receiver": "B", "schedule": {"every": "1h"}}})
    FakeTracker.named("A").create_ticket("Triggered")
    finished = []
    scheduler = BridgeScheduler(bridge.config, bridge.store, on_finished=finished.append)
    scheduler.start()
    try:
        wait_for(lambda: len(finished) == 1)  # the first run starts right away
        FakeTracker.named("A").create_ticket("Triggered again")
        scheduler.trigger("ab")
        wait_for(lambda: len(finished) == 2)
    finally:
        scheduler.shutdown()
    assert sorted(t.subject for t in FakeTracker.named("B").tickets()) == [
        "Triggered",
        "Triggered again",
    ]


def test_a_config_without_receiver_serves_health_only(tmp_path):
    path = tmp_path / "bridge.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "state": {"url": f"sqlite:///{tmp_path / 's.db'}"},
                "instances": {"a": {"kind": "local", "path": str(tmp_path / "a.db")}},
            }
        )
    )
    config = load_config(path)
    store = StateStore(config.state_url)
    scheduler = BridgeScheduler(config, store)
    from fastapi.testclient import TestClient

    from nhd_bridge.serve import build_app

    app = build_app(config, store, scheduler)
    client = TestClient(app)
    assert client.get("/status").json() == {"status": "ok", "agreements": {}}
    assert client.post("/sharing/tickets/abc").status_code == 404
    store.close()


def test_health_and_status_report_an_agreement_that_keeps_failing(make_bridge):
    from fastapi.testclient import TestClient

    from nhd_bridge.serve import build_app

    bridge = make_bridge({"ab": {"sender": "A", "receiver": "B"}})
    FakeTracker.named("A").fail_next("changed_since", TransientError("A is down"), times=None)
    bridge.run()
    app = build_app(bridge.config, bridge.store, BridgeScheduler(bridge.config, bridge.store))
    client = TestClient(app)

    status = client.get("/status").json()
    assert status["agreements"]["ab"]["failing_since"] is not None
    assert "A is down" in status["agreements"]["ab"]["last_error"]
    assert client.get("/health").status_code == 200  # not failing for 15 minutes yet

    with bridge.store.transaction() as tx:  # as if it had been failing for an hour
        tx.record_run_outcome("ab", "A is down")
        tx._execute(agreement_health.update().values(failing_since=utcnow() - timedelta(hours=1)))
    answer = client.get("/health")
    assert (answer.status_code, answer.json()) == (503, {"status": "failing"})
    assert client.get("/status").json()["status"] == "failing"

    FakeTracker.named("A").clear_faults()
    bridge.run()
    assert client.get("/health").status_code == 200
