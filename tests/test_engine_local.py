"""The main scenarios again on embedded local trackers: real SQLite files, real attachments on
disk, the adapter users run. (tests/test_engine.py covers every scenario on in-memory fakes.)"""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from nhd_bridge.adapters.local import LocalConfig, LocalTracker
from nhd_bridge.core.model import Actor

CUSTOMER = Actor(uuid="ann", name="Ann Customer", role="end-user")
AGENT = Actor(uuid="sam", name="Sam Agent", role="agent")
ENGINEER = Actor(uuid="eve", name="Eve Engineer", role="agent")


@pytest.fixture
def trackers(tmp_path: Path):
    opened: dict[str, LocalTracker] = {}

    def tracker(name: str) -> LocalTracker:
        if name not in opened:
            opened[name] = LocalTracker(LocalConfig(path=tmp_path / f"{name}.db"))
        return opened[name]

    yield tracker
    for tracker_ in opened.values():
        tracker_.close()


@pytest.fixture
def local_bridge(make_bridge, tmp_path: Path):
    def build(agreements: dict, names: str = "AB"):
        instances = {
            name: {"kind": "local", "path": str(tmp_path / f"{name}.db")} for name in names
        }
        return make_bridge(agreements, instances=instances)

    return build


def quiet(bridge) -> bool:
    return sum(summary.total_writes for summary in bridge.run()) == 0


def only(tracker: LocalTracker):
    [ticket] = tracker.list_tickets()
    return tracker.get(ticket.local_id)


def test_share_comments_both_ways_status_and_close(local_bridge, trackers):
    bridge = local_bridge({"ab": {"sender": "A", "receiver": "B"}})
    a, b = trackers("A"), trackers("B")
    ticket = a.create_ticket("Printer on fire", status="open", requester=CUSTOMER)
    a.add_comment(ticket.local_id, "It smokes", author=CUSTOMER)
    a.add_comment(
        ticket.local_id,
        "VIP customer",
        public=False,
        author=AGENT,
        attachments=[("notes.txt", "text/plain", io.BytesIO(b"call before 5pm"))],
    )
    bridge.run()

    copy = only(b)
    assert (copy.subject, copy.status, copy.requester.name) == (
        "Printer on fire",
        "open",
        "Ann Customer",
    )
    assert [(c.body, c.public) for c in copy.comments] == [
        ("It smokes", True),
        ("VIP customer", False),
    ]
    [attachment] = copy.comments[1].attachments
    with b.open_attachment(attachment.ref) as stream:
        assert stream.read() == b"call before 5pm"

    b.add_comment(copy.local_id, "Fuser replaced", author=ENGINEER)
    b.add_comment(copy.local_id, "Batch 42 is bad", public=False, author=ENGINEER)
    b.set_status(copy.local_id, "pending")
    bridge.run()
    back = a.get(ticket.local_id)
    assert back.status == "pending"
    assert [(c.body, c.public, c.author.name) for c in back.comments[2:]] == [
        ("Fuser replaced", True, "Eve Engineer"),
        ("Batch 42 is bad", False, "Eve Engineer"),
    ]

    a.set_status(ticket.local_id, "closed")
    bridge.run()
    assert b.get(copy.local_id).status == "closed"
    assert quiet(bridge)


def test_partial_delegation_on_local_trackers(local_bridge, trackers):
    bridge = local_bridge({"ab": {"sender": "A", "receiver": "B", "allows_public_comments": False}})
    a, b = trackers("A"), trackers("B")
    ticket = a.create_ticket("Partial", status="open")
    bridge.run()
    copy = only(b)
    b.add_comment(copy.local_id, "Answer for the customer", public=True, author=ENGINEER)
    b.set_status(copy.local_id, "solved")
    bridge.run()
    back = a.get(ticket.local_id)
    assert [(c.body, c.public) for c in back.comments] == [("Answer for the customer", False)]
    assert back.status == "open"
    assert quiet(bridge)


@pytest.mark.parametrize("sync", [False, True])
def test_tags_and_custom_fields_follow_the_agreement(local_bridge, trackers, sync):
    bridge = local_bridge(
        {
            "ab": {
                "sender": "A",
                "receiver": "B",
                "sync_tags": sync,
                "sync_custom_fields": sync,
                "custom_fields": {"priority": "severity"},
            }
        }
    )
    a, b = trackers("A"), trackers("B")
    a.create_ticket("Fields", tags=["vip"], custom_fields={"priority": "high", "cost": 3})
    bridge.run()
    copy = only(b)
    if sync:
        assert (copy.tags, copy.custom_fields) == (["vip"], {"severity": "high"})
    else:
        assert (copy.tags, copy.custom_fields) == ([], {})
    assert quiet(bridge)


def test_both_sides_change_the_subject_newest_wins_and_is_journaled(local_bridge, trackers):
    bridge = local_bridge({"ab": {"sender": "A", "receiver": "B"}})
    a, b = trackers("A"), trackers("B")
    ticket = a.create_ticket("Original")
    bridge.run()
    copy = only(b)
    a.set_subject(ticket.local_id, "A's idea")
    b.set_subject(copy.local_id, "B's idea")
    bridge.run()
    assert a.get(ticket.local_id).subject == b.get(copy.local_id).subject == "B's idea"
    [conflict] = bridge.journal(outcome="conflict")
    assert conflict.before == "A's idea" and conflict.after == "B's idea"
    assert quiet(bridge)


def test_three_local_trackers_on_one_ticket_without_echo(local_bridge, trackers):
    bridge = local_bridge(
        {"ab": {"sender": "A", "receiver": "B"}, "ac": {"sender": "A", "receiver": "C"}}, "ABC"
    )
    a, b, c = trackers("A"), trackers("B"), trackers("C")
    ticket = a.create_ticket("Three ways")
    bridge.run()
    b.add_comment(only(b).local_id, "from B")
    c.add_comment(only(c).local_id, "from C")
    a.add_comment(ticket.local_id, "from A")
    bridge.run_until_quiet()
    for tracker in (a, b, c):
        assert sorted(comment.body for comment in only(tracker).comments) == [
            "from A",
            "from B",
            "from C",
        ]
    assert quiet(bridge)
