"""Agreements that share an instance run at the same time: two threads of one process (as one
``serve``'s scheduler runs them) and two ``nhd-bridge sync`` processes, on SQLite and PostgreSQL.

A hub shares every ticket with two partners. Both agreements insert the same shared ticket and
the same hub comment links at the same moment; a read-then-insert let the slower one die with
an IntegrityError mid-pass. Each round adds tickets and comments on the hub and runs both
agreements together; no run may fail and no copy or comment may be doubled or lost.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

from nhd_bridge.adapters.local import LocalConfig, LocalTracker
from nhd_bridge.core.config import load_config
from nhd_bridge.core.engine import SyncEngine
from nhd_bridge.core.model import Actor
from nhd_bridge.core.plugins import Plugins
from nhd_bridge.core.state import StateStore

AGENT = Actor(uuid="sam", name="Sam Agent", role="agent")
ROUNDS = 6


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("postgres_database")


def write_config(tmp_path: Path, state_url: str) -> Path:
    document = {
        "state": {"url": state_url},
        "instances": {
            name: {"kind": "local", "path": str(tmp_path / f"{name}.db")}
            for name in ("hub", "x", "y")
        },
        "agreements": {
            "hx": {"sender": "hub", "receiver": "x", "allows_public_comments": True},
            "hy": {"sender": "hub", "receiver": "y", "allows_public_comments": True},
        },
    }
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def add_work(hub: LocalTracker, round_number: int) -> None:
    for number in range(4):
        ticket = hub.create_ticket(f"round {round_number} ticket {number}", requester=AGENT)
        hub.add_comment(ticket.local_id, f"first words {round_number}/{number}", author=AGENT)
    for ticket in hub.list_tickets()[:3]:
        hub.add_comment(ticket.local_id, f"news of round {round_number}", author=AGENT)


def assert_every_ticket_once(tmp_path: Path) -> None:
    hub = LocalTracker(LocalConfig(path=tmp_path / "hub.db"))
    try:
        expected = {
            ticket.subject: sorted(c.body for c in hub.get(ticket.local_id).comments)
            for ticket in hub.list_tickets()
        }
    finally:
        hub.close()
    for name in ("x", "y"):
        partner = LocalTracker(LocalConfig(path=tmp_path / f"{name}.db"))
        try:
            copies = partner.list_tickets()
            subjects = [ticket.subject for ticket in copies]
            assert sorted(subjects) == sorted(expected), f"{name}: copies {subjects}"
            for ticket in copies:
                bodies = sorted(c.body for c in partner.get(ticket.local_id).comments)
                assert bodies == expected[ticket.subject], f"{name}: {ticket.subject}"
        finally:
            partner.close()


@pytest.mark.slow
def test_two_agreements_on_one_hub_in_two_threads(tmp_path: Path, state_url: str):
    path = write_config(tmp_path, state_url)
    StateStore(state_url).close()  # created and migrated first: this test is about the runs
    hub = LocalTracker(LocalConfig(path=tmp_path / "hub.db"))
    failures: list[str] = []

    def run(name: str, barrier: threading.Barrier) -> None:
        store: StateStore | None = None
        engine: SyncEngine | None = None
        try:
            config = load_config(path, plugins=Plugins(), environ={})
            store = StateStore(config.state_url)
            engine = SyncEngine(config, store, holder=f"thread-{name}")
            barrier.wait(timeout=60)
            summary = engine.run(name)
            failures.extend(f"{name}: {error}" for error in summary.errors)
        except Exception as error:  # the bug: an IntegrityError escaping mid-pass
            barrier.abort()  # the other thread must not wait for this one forever
            failures.append(f"{name}: {type(error).__name__}: {error}")
        finally:
            if engine is not None:
                engine.close()
            if store is not None:
                store.close()

    try:
        for round_number in range(ROUNDS):
            add_work(hub, round_number)
            barrier = threading.Barrier(2)
            threads = [threading.Thread(target=run, args=(n, barrier)) for n in ("hx", "hy")]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=300)
            assert not any(thread.is_alive() for thread in threads), "a run never finished"
            assert failures == [], failures
    finally:
        hub.close()
    assert_every_ticket_once(tmp_path)


@pytest.mark.slow
def test_two_agreements_on_one_hub_in_two_processes(tmp_path: Path, state_url: str):
    path = write_config(tmp_path, state_url)
    StateStore(state_url).close()
    hub = LocalTracker(LocalConfig(path=tmp_path / "hub.db"))
    environment = {**os.environ, "NHD_BRIDGE_CONFIG": str(path)}
    try:
        for round_number in range(ROUNDS // 2):
            add_work(hub, round_number)
            processes = [
                subprocess.Popen(
                    [sys.executable, "-m", "nhd_bridge", "sync", "--agreement", name],
                    env=environment,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                for name in ("hx", "hy")
            ]
            for process in processes:
                output, _ = process.communicate(timeout=120)
                assert process.returncode == 0, output
    finally:
        hub.close()
    assert_every_ticket_once(tmp_path)
