"""A lost or fresh state store never duplicates: identity lives in the trackers.

The store is deleted (an ephemeral CronJob pod, a container restart, a move to PostgreSQL) and
``sync`` runs again: the copies that exist are found by their breadcrumbs and adopted — links,
snapshots and comment links rebuilt, the journal saying so — instead of created a second time.
"""

from __future__ import annotations

from pathlib import Path

from nhd_bridge import Actor
from nhd_bridge.adapters.local import LocalConfig, LocalTracker
from nhd_bridge.testing.fake import FakeTracker

CUSTOMER = Actor(uuid="ann", name="Ann Customer", role="end-user")
ENGINEER = Actor(uuid="eve", name="Eve Engineer", role="agent")


def full(sender: str = "A", receiver: str = "B") -> dict:
    return {"sender": sender, "receiver": receiver, "allows_public_comments": True}


def lose_the_store(bridge, tmp_path: Path) -> None:
    bridge.engine.close()
    bridge.store.close()
    for file in tmp_path.glob("state.db*"):
        file.unlink()
    bridge.restart()


def counts(tracker: FakeTracker) -> list[tuple[str, int]]:
    return sorted((t.subject, len(t.comments)) for t in tracker.tickets())


def test_a_lost_store_adopts_every_copy_instead_of_creating_it_again(make_bridge, tmp_path):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    first = a.create_ticket("VPN drops", requester=CUSTOMER)
    a.add_comment(first, "It drops every hour", author=CUSTOMER)
    a.create_ticket("Printer on fire", requester=CUSTOMER)
    bridge.run()
    [copy] = [t for t in b.tickets() if t.subject == "VPN drops"]
    b.add_comment(copy.local_id, "Looking into it", public=True, author=ENGINEER)
    bridge.run_until_quiet()
    before_a, before_b = counts(a), counts(b)

    lose_the_store(bridge, tmp_path)
    summaries = bridge.run()

    assert [s.writes.get("create", 0) + s.writes.get("comment", 0) for s in summaries] == [0]
    assert (counts(a), counts(b)) == (before_a, before_b)
    adopted = [e for e in bridge.journal() if e.action == "adopt"]
    assert len(adopted) == 2
    links = bridge.store.read().link_for_local("B", copy.local_id)
    assert links is not None and links.shared_uuid == copy.shared_uuid
    # Synced again afterwards, both ways, once.
    a.add_comment(first, "Still dropping", author=CUSTOMER)
    b.add_comment(copy.local_id, "Fixed now", public=True, author=ENGINEER)
    bridge.run_until_quiet()
    bodies_a = [c.body for c in a.ticket(first).comments]
    bodies_b = [c.body for c in b.ticket(copy.local_id).comments]
    assert sorted(bodies_a) == sorted(bodies_b)
    assert len(bodies_a) == len(set(bodies_a)) == 4


def test_a_lost_store_on_local_trackers_creates_nothing(make_bridge, tmp_path):
    instances = {name: {"kind": "local", "path": str(tmp_path / f"{name}.db")} for name in "AB"}
    bridge = make_bridge({"ab": full()}, instances=instances)
    a = LocalTracker(LocalConfig(path=tmp_path / "A.db"))
    b = LocalTracker(LocalConfig(path=tmp_path / "B.db"))
    try:
        ticket = a.create_ticket("Disk full", requester=CUSTOMER)
        a.add_comment(ticket.local_id, "Server 3", author=CUSTOMER)
        bridge.run_until_quiet()
        [copy] = b.list_tickets()
        b.add_comment(copy.local_id, "Cleaned up", author=ENGINEER)
        bridge.run_until_quiet()

        lose_the_store(bridge, tmp_path)
        [summary] = bridge.run()

        assert (summary.total_writes, summary.parked, summary.errors) == (0, 0, [])
        assert [e.action for e in bridge.journal() if e.action == "adopt"] == ["adopt"]
        assert len(b.list_tickets()) == 1
        assert [c.body for c in b.get(copy.local_id).comments] == ["Server 3", "Cleaned up"]
        assert [c.body for c in a.get(ticket.local_id).comments] == ["Server 3", "Cleaned up"]
    finally:
        a.close()
        b.close()
