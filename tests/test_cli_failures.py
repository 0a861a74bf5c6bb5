"""Failures that must show: a run that dies is one line and exit 1 (its traceback with --debug),
a ticket parked by an earlier run keeps the exit code at 1."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from nhd_bridge import TransientError
from nhd_bridge.cli import main
from nhd_bridge.testing.fake import FakeAdapter, FakeTracker

BRIDGE = """\
plugins:
  - nhd_bridge.testing.fake
state:
  url: sqlite:///{state}
instances:
  A: {{kind: fake}}
  B: {{kind: fake}}
agreements:
  ab: {{sender: A, receiver: B, allows_public_comments: true}}
"""


@pytest.fixture
def bridge_file(tmp_path: Path) -> Path:
    path = tmp_path / "bridge.yaml"
    path.write_text(BRIDGE.format(state=tmp_path / "state.db"), encoding="utf-8")
    return path


def sync(bridge_file: Path, *args: str):
    return CliRunner().invoke(main, ["-c", str(bridge_file), "sync", *args])


def test_a_run_that_dies_is_one_line_and_exit_1(bridge_file, monkeypatch):
    def broken_terms(self):
        raise RuntimeError("the adapter fell over")

    monkeypatch.setattr(FakeAdapter, "agreement_terms", broken_terms)

    result = sync(bridge_file)

    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if "fell over" in line]
    assert lines and "RuntimeError" in lines[0] and "--debug" in lines[0]
    assert "Traceback" not in result.output

    debugged = sync(bridge_file, "--debug")
    assert debugged.exit_code == 1
    assert "Traceback" in debugged.output


def test_sync_exits_1_while_a_ticket_parked_earlier_waits(bridge_file):
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    a.create_ticket("VPN drops")
    assert sync(bridge_file).exit_code == 0
    [copy] = b.tickets()
    b.add_comment(copy.local_id, "fixed", public=True)
    a.fail_next("add_comment", TransientError("A is down"))
    assert sync(bridge_file).exit_code == 1

    again = sync(bridge_file)  # nothing new fails, but the comment still waits

    assert again.exit_code == 1


def test_plan_against_a_tracker_it_cannot_read_says_so_and_exits_1(bridge_file):
    FakeTracker.named("A").fail_next("changed_since", TransientError("connection refused"))

    result = CliRunner().invoke(main, ["-c", str(bridge_file), "plan"])

    assert result.exit_code == 1
    assert "connection refused" in result.output
    assert "in sync" not in result.output

    FakeTracker.named("A").fail_next("changed_since", TransientError("connection refused"))
    as_json = CliRunner().invoke(main, ["-c", str(bridge_file), "plan", "--json"])
    assert as_json.exit_code == 1
