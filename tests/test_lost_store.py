"""A lost or fresh state store never duplicates: identity lives in the trackers.

The store is deleted (an ephemeral CronJob pod, a container restart, a move to PostgreSQL) and
``sync`` runs again: the copies that exist are found by their breadcrumbs and adopted — links,
snapshots and comment links rebuilt, the journal saying so — instead of created a second time.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from nhd_bridge import Actor
from nhd_bridge.adapters.local import LocalConfig, LocalTracker
from nhd_bridge.core.adapter import TransientError
from nhd_bridge.core.engine import SyncEngine
from nhd_bridge.core.state import utcnow
from nhd_bridge.testing.fake import FakeTracker, Personality

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


def test_a_lost_store_never_forwards_a_copy_another_agreement_brought_in(make_bridge, tmp_path):
    """Found by the engine model with the lost-store rule: A shares a ticket with B and C; C also
    shares its own tickets with B. With the store gone and ``cb`` run first, C's copy (it carries
    A's uuid) looked like a ticket of C's own, B's copy made by ``ab`` was adopted under ``cb``, and
    a comment C's agent wrote — kept on C under partial delegation, A having no private
    comments — travelled C → B → A."""
    partial = {"sender": "A", "receiver": "C", "allows_public_comments": False}
    bridge = make_bridge({"ab": full("A", "B"), "ac": partial, "cb": full("C", "B")})
    a, b, c = (FakeTracker.named(name) for name in "ABC")
    a.personality = Personality(private_comments=False)
    ticket = a.create_ticket("VPN drops", requester=CUSTOMER)
    bridge.run_until_quiet()
    [on_c] = c.tickets()
    c.add_comment(on_c.local_id, "Internal: router firmware", public=True, author=ENGINEER)
    bridge.run_until_quiet()
    before = (counts(a), counts(b), counts(c))

    lose_the_store(bridge, tmp_path)
    bridge.run("cb")
    bridge.run("ab")
    bridge.run("ac")
    bridge.run_until_quiet()

    assert (counts(a), counts(b), counts(c)) == before
    assert all("router" not in comment.body for comment in a.ticket(ticket).comments)
    [on_b] = b.tickets()
    assert all("router" not in comment.body for comment in on_b.comments)
    assert [e.source for e in bridge.journal() if e.action == "adopt"] == ["A", "A"]


def test_a_lost_store_waits_for_an_adoption_that_failed_before_sharing_a_copy_onward(
    make_bridge, tmp_path
):
    """make deep-check: with the store gone, ``ac`` ran first but its look-up of C's copy met a
    429 (the ticket parked); ``cb`` then took C's copy for a ticket of C's own and adopted B's
    copy under ``cb``. A's ticket was never linked again, and A's next comment reached nobody."""
    partial = {"sender": "A", "receiver": "C", "allows_public_comments": False}
    bridge = make_bridge({"ab": full("A", "B"), "ac": partial, "cb": full("C", "B")})
    a, b, c = (FakeTracker.named(name) for name in "ABC")
    ticket = a.create_ticket("VPN drops", requester=CUSTOMER)
    bridge.run_until_quiet()

    lose_the_store(bridge, tmp_path)
    c.fail_next("find_by_shared_uuid", TransientError("429 on find_by_shared_uuid"))
    bridge.run("ac")
    bridge.run("cb")
    _hours_later(bridge)  # the parked look-up is due
    bridge.run_until_quiet()
    a.add_comment(ticket, "Rebooted the router", author=ENGINEER)
    bridge.run_until_quiet()

    [on_b], [on_c] = b.tickets(), c.tickets()
    assert "Rebooted the router" in [comment.body for comment in on_b.comments]
    assert "Rebooted the router" in [comment.body for comment in on_c.comments]
    assert sorted(e.source for e in bridge.journal() if e.action == "adopt") == ["A", "A"]


def _hours_later(bridge) -> None:
    bridge.engine.close()
    bridge.engine = SyncEngine(
        bridge.config, bridge.store, clock=lambda: utcnow() + timedelta(hours=2)
    )


def test_a_copy_is_not_shared_onward_where_its_origin_shares_it_itself(make_bridge):
    """The same fan-out without any loss: ``ac`` ran, then ``cb`` before ``ab``. C's copy was
    re-shared (allowed: scenario 11) to B, which A shares with directly; ``ab`` then found B
    already bridged and never carried the ticket itself — the comment C kept home reached B."""
    partial = {"sender": "A", "receiver": "C", "allows_public_comments": False}
    bridge = make_bridge({"ab": full("A", "B"), "ac": partial, "cb": full("C", "B")})
    a, b, c = (FakeTracker.named(name) for name in "ABC")
    a.personality = Personality(private_comments=False)
    ticket = a.create_ticket("VPN drops", requester=CUSTOMER)
    bridge.run("ac")
    [on_c] = c.tickets()
    c.add_comment(on_c.local_id, "Internal: router firmware", public=True, author=ENGINEER)
    bridge.run("cb")
    bridge.run("ab")
    bridge.run_until_quiet()

    [on_b] = b.tickets()
    assert all("router" not in comment.body for comment in on_b.comments)
    assert all("router" not in comment.body for comment in a.ticket(ticket).comments)
    carried = bridge.store.read().agreements_of_ticket(on_b.shared_uuid)
    assert sorted(carried) == ["ab", "ac"]


def test_a_lost_store_adopts_a_re_shared_chain_in_any_order(make_bridge, tmp_path):
    """A → B → D (scenario 11). With the store gone and ``bd`` run before ``ab``, B's copy is not
    known as A's yet: ``bd`` waits for ``ab`` to adopt it, then adopts D's copy. Nothing is
    written again, and comments flow the whole chain afterwards."""
    bridge = make_bridge({"ab": full("A", "B"), "bd": full("B", "D")})
    a, b, d = (FakeTracker.named(name) for name in "ABD")
    ticket = a.create_ticket("Escalated twice", requester=CUSTOMER)
    a.add_comment(ticket, "from A", author=CUSTOMER)
    bridge.run_until_quiet()
    before = (counts(a), counts(b), counts(d))

    lose_the_store(bridge, tmp_path)
    [waiting] = bridge.run("bd")
    bridge.run("ab")
    bridge.run("bd")

    assert waiting.skipped["waiting for another agreement to adopt its copies"] == 1
    assert (counts(a), counts(b), counts(d)) == before
    assert sorted(e.agreement for e in bridge.journal() if e.action == "adopt") == ["ab", "bd"]
    [on_d] = d.tickets()
    d.add_comment(on_d.local_id, "from D", author=ENGINEER)
    bridge.run_until_quiet()
    assert sorted(c.body for c in a.ticket(ticket).comments) == ["from A", "from D"]
