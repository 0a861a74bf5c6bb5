"""Crash safety with a real process kill: SIGKILL right after a remote write, then a new run.

Exactly one copy of the ticket and of each comment must exist afterwards, and nothing is lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from nhd_bridge.adapters.local import LocalConfig, LocalTracker
from nhd_bridge.core.model import Actor

TESTS = Path(__file__).parent
CUSTOMER = Actor(uuid="c-1", name="Customer", role="end-user")


@pytest.fixture
def bridge_files(tmp_path: Path) -> Path:
    config = {
        "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
        "plugins": ["crash_plugin"],
        "instances": {
            "desk": {"kind": "local", "path": str(tmp_path / "desk.db")},
            "eng": {"kind": "crashing_local", "path": str(tmp_path / "eng.db")},
        },
        "agreements": {"desk-eng": {"sender": "desk", "receiver": "eng"}},
    }
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def sync(config: Path, crash_after: str | None = None, count: int = 1) -> int:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("NHD_CRASH_AFTER", None)
    if crash_after:
        env["NHD_CRASH_AFTER"] = crash_after
        env["NHD_CRASH_COUNT"] = str(count)
    completed = subprocess.run(
        [sys.executable, "-m", "nhd_bridge", "-c", str(config), "sync"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return completed.returncode


def tracker(folder: Path, name: str) -> LocalTracker:
    return LocalTracker(LocalConfig(path=folder / f"{name}.db"))


def test_killed_right_after_the_remote_create_leaves_exactly_one_copy(bridge_files: Path):
    folder = bridge_files.parent
    with tracker(folder, "desk") as desk:
        ticket = desk.create_ticket("Kill me after create", requester=CUSTOMER)
        desk.add_comment(ticket.local_id, "first", author=CUSTOMER)
        desk.add_comment(ticket.local_id, "second", public=False)

    assert sync(bridge_files, crash_after="create") == -signal.SIGKILL
    with tracker(folder, "eng") as eng:
        assert len(eng.list_tickets()) == 1  # the create happened; its link was never stored

    assert sync(bridge_files) == 0
    assert sync(bridge_files) == 0
    with tracker(folder, "eng") as eng:
        [copy] = eng.list_tickets()
        assert [(c.body, c.public) for c in copy.comments] == [("first", True), ("second", False)]


def test_killed_right_after_a_comment_write_leaves_one_copy_of_each_comment(bridge_files: Path):
    folder = bridge_files.parent
    with tracker(folder, "desk") as desk:
        ticket = desk.create_ticket("Kill me after a comment", requester=CUSTOMER)
        for body in ("one", "two", "three"):
            desk.add_comment(ticket.local_id, body, author=CUSTOMER)

    assert sync(bridge_files, crash_after="add_comment", count=2) == -signal.SIGKILL
    with tracker(folder, "eng") as eng:
        [copy] = eng.list_tickets()
        assert [c.body for c in copy.comments] == ["one", "two"]

    assert sync(bridge_files) == 0
    with tracker(folder, "desk") as desk:
        desk.add_comment(ticket.local_id, "four", author=CUSTOMER)
    assert sync(bridge_files) == 0
    with tracker(folder, "eng") as eng:
        [copy] = eng.list_tickets()
        assert [c.body for c in copy.comments] == ["one", "two", "three", "four"]
    with tracker(folder, "desk") as desk:
        assert [c.body for c in desk.get(ticket.local_id).comments] == [
            "one",
            "two",
            "three",
            "four",
        ]
