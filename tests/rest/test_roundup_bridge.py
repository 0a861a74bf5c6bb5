"""End to end: the embedded local tracker bridged to a real Roundup tracker through the engine.

The Roundup instance is configured exactly as a user would write it in YAML (profile, base_url,
auth); the status map translates between NHD-ish local statuses and Roundup's own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from support.roundup import RoundupPerson, RoundupServer

from nhd_bridge.adapters.local import LocalConfig, LocalTracker, local_person
from nhd_bridge.core.engine import SyncEngine
from nhd_bridge.core.state import utcnow

from .conftest import roundup_options

ALICE = local_person("Alice Customer", role="end-user")
BOB = local_person("Bob Agent")

STATUS_MAP = {
    "outbound": {  # desk (sender) -> roundup
        "new": "unread",
        "open": "chatting",
        "pending": "need-eg",
        "hold": "deferred",
        "solved": "resolved",
        "closed": "resolved",
    },
    "inbound": {  # roundup -> desk
        "unread": "new",
        "chatting": "open",
        "in-progress": "open",
        "testing": "open",
        "need-eg": "pending",
        "deferred": "hold",
        "done-cbb": "solved",
        "resolved": "solved",
    },
}


class Setup:
    def __init__(self, bridge: Any, desk: LocalTracker, server: RoundupServer):
        self.bridge = bridge
        self.desk = desk
        self.server = server
        self.roundup: RoundupPerson = server.person()

    def run(self) -> Any:
        [summary] = self.bridge.run()
        return summary

    def assert_quiet(self) -> None:
        summary = self.run()
        assert summary.total_writes == 0, summary
        assert not summary.errors, summary.errors

    def only_issue(self) -> dict[str, Any]:
        [issue] = self.roundup.issues()
        return issue


@pytest.fixture
def setup(
    make_bridge: Callable[..., Any], roundup: RoundupServer, tmp_path: Path
) -> Iterator[Setup]:
    desk_path = tmp_path / "desk.db"
    bridge = make_bridge(
        {"desk-roundup": {"sender": "desk", "receiver": "roundup", "status_map": STATUS_MAP}},
        instances={
            "desk": {"kind": "local", "path": str(desk_path)},
            "roundup": {"kind": "rest", **roundup_options(roundup)},
        },
    )
    with LocalTracker(LocalConfig(path=desk_path)) as desk:
        yield Setup(bridge, desk, roundup)


def test_a_local_ticket_is_shared_to_roundup_with_its_public_comments_and_mapped_status(
    setup: Setup,
) -> None:
    ticket = setup.desk.create_ticket("Printer on fire", status="open", requester=ALICE)
    setup.desk.add_comment(ticket.local_id, "It smokes.", public=True, author=ALICE)
    setup.desk.add_comment(ticket.local_id, "Customer is a VIP.", public=False, author=BOB)

    summary = setup.run()

    assert summary.writes["create"] == 1 and summary.writes["comment"] == 1, summary
    issue = setup.only_issue()
    assert issue["title"] == "Printer on fire"
    assert issue["status"] == "chatting"
    # Roundup has no private messages: the private comment stays home, the public one arrives
    # with its author named in the text (Roundup writes every message as the API user).
    assert len(issue["messages"]) == 1
    assert "It smokes." in issue["messages"][0] and "Alice Customer" in issue["messages"][0]
    assert issue["nhd_uuid"], "the breadcrumb must be on the Roundup issue"
    reasons = [entry.reason or "" for entry in setup.bridge.journal() if entry.action == "comment"]
    assert any("no private comments" in reason for reason in reasons)
    setup.assert_quiet()


def test_comments_and_statuses_travel_both_ways(setup: Setup) -> None:
    ticket = setup.desk.create_ticket("VPN drops", status="new", requester=ALICE)
    setup.run()
    issue_id = setup.only_issue()["id"]

    setup.roundup.add_message(issue_id, "Looking into it from Roundup.")
    setup.roundup.set(issue_id, status="in-progress")
    setup.desk.add_comment(ticket.local_id, "Any news?", public=True, author=ALICE)
    setup.run()

    desk_ticket = setup.desk.get(ticket.local_id)
    assert desk_ticket is not None
    assert desk_ticket.status == "open"  # in-progress, mapped inbound
    desk_bodies = [comment.body for comment in desk_ticket.comments]
    assert sum("Looking into it from Roundup." in body for body in desk_bodies) == 1
    issue = setup.roundup.issue(issue_id)
    assert sum("Any news?" in text for text in issue["messages"]) == 1
    assert issue["status"] == "in-progress", "the comment must not move the Roundup status"

    setup.desk.set_status(ticket.local_id, "solved")
    setup.run()
    assert setup.roundup.issue(issue_id)["status"] == "resolved"
    setup.assert_quiet()
    assert setup.desk.get(ticket.local_id).status == "solved"  # type: ignore[union-attr]


def test_roundup_restart_mid_run_parks_loses_nothing_and_the_rerun_finishes(
    setup: Setup,
) -> None:
    ticket = setup.desk.create_ticket("Disk full", status="open", requester=ALICE)
    setup.run()
    issue_id = setup.only_issue()["id"]

    setup.server.stop()
    setup.desk.add_comment(ticket.local_id, "Written while Roundup was down.", author=ALICE)
    setup.desk.set_status(ticket.local_id, "pending")
    down = setup.run()

    assert down.total_writes == 0
    assert down.parked == 1, down
    assert any("could not be reached" in error for error in down.errors), down.errors
    assert any("reading changes from roundup failed" in error for error in down.errors)
    desk_ticket = setup.desk.get(ticket.local_id)
    assert desk_ticket is not None and desk_ticket.status == "pending"
    assert [c.body for c in desk_ticket.comments] == ["Written while Roundup was down."]

    setup.server.start()  # same folder, same port: the data survived the restart
    later = utcnow() + timedelta(minutes=5)  # past the parked ticket's backoff
    bridge = setup.bridge
    bridge.engine = SyncEngine(bridge.config, bridge.store, clock=lambda: later)
    again = setup.run()

    assert again.retried == 1 and again.parked == 0, again
    assert not again.errors, again.errors
    issue = setup.roundup.issue(issue_id)
    assert issue["status"] == "need-eg"
    assert sum("Written while Roundup was down." in t for t in issue["messages"]) == 1
    assert bridge.store.read().parked("desk-roundup") == []
    setup.assert_quiet()


def test_a_second_run_right_after_a_share_writes_nothing(setup: Setup) -> None:
    for n in range(3):
        ticket = setup.desk.create_ticket(f"Ticket {n}", status="new")
        setup.desk.add_comment(ticket.local_id, f"First words on {n}.", author=ALICE)
    first = setup.run()
    assert first.writes["create"] == 3 and first.writes["comment"] == 3
    setup.assert_quiet()
    setup.assert_quiet()
    assert len(setup.roundup.issues()) == 3


def test_a_lost_state_store_adopts_the_roundup_copy_and_writes_nothing_again(
    setup: Setup, tmp_path: Path
) -> None:
    """Issue 12: the store is deleted (an ephemeral pod) and sync runs again against the same
    real Roundup: zero new issues, zero new messages, the links rebuilt, the journal says so."""
    ticket = setup.desk.create_ticket("Disk full", status="open", requester=ALICE)
    setup.desk.add_comment(ticket.local_id, "Server 3 is at 100%.", public=True, author=ALICE)
    setup.run()
    issue_id = setup.only_issue()["id"]
    setup.roundup.add_message(issue_id, "Cleaned the logs.")
    setup.run()
    setup.assert_quiet()
    messages = len(setup.roundup.issue(issue_id)["messages"])
    desk_comments = len(setup.desk.get(ticket.local_id).comments)  # type: ignore[union-attr]

    setup.bridge.engine.close()
    setup.bridge.store.close()
    for file in tmp_path.glob("state.db*"):
        file.unlink()
    setup.bridge.restart()
    summary = setup.run()

    assert (summary.total_writes, summary.parked, summary.errors) == (0, 0, []), summary
    assert len(setup.roundup.issues()) == 1
    assert len(setup.roundup.issue(issue_id)["messages"]) == messages
    assert len(setup.desk.get(ticket.local_id).comments) == desk_comments  # type: ignore[union-attr]
    assert [e.action for e in setup.bridge.journal() if e.action == "adopt"] == ["adopt"]
    link = setup.bridge.store.read().link_for_local("roundup", issue_id)
    assert link is not None and link.state == "linked"
    setup.desk.add_comment(ticket.local_id, "Thanks!", public=True, author=ALICE)
    setup.run()
    assert sum("Thanks!" in text for text in setup.roundup.issue(issue_id)["messages"]) == 1
    setup.assert_quiet()
