"""Counterexamples the engine model (tests/test_engine_model.py) found, as plain tests.

Each is the shrunk example replayed by hand, with its story in one line. An engine bug not fixed
yet is ``xfail(strict=True)``: the fix turns it into an XPASS failure, and whoever lands the fix
removes the marker (and the gate of the same name in ``KNOWN_ENGINE_BUGS``).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from nhd_bridge.core.adapter import TransientError
from nhd_bridge.core.engine import SyncEngine
from nhd_bridge.core.state import utcnow
from nhd_bridge.testing.fake import FakeTracker, FaultPlan, Personality, SimulatedCrash

STATUSES = ["open", "pending", "solved", "closed"]


def fake_instances(page_size: int = 50) -> dict[str, dict[str, object]]:
    return {name: {"kind": "fake", "statuses": STATUSES, "page_size": page_size} for name in "AB"}


def full() -> dict[str, object]:
    return {"sender": "A", "receiver": "B", "allows_public_comments": True}


def hours_later(bridge, hours: float = 2) -> None:
    """The next runs happen hours later: every parked ticket is due."""
    bridge.engine.close()
    bridge.engine = SyncEngine(
        bridge.config, bridge.store, clock=lambda: utcnow() + timedelta(hours=hours)
    )


def settle(bridge, rounds: int = 3) -> None:
    for round_number in range(1, rounds + 1):
        hours_later(bridge, 2 * round_number)
        for summary in bridge.run():
            assert not summary.errors, summary.errors


def bodies(tracker: FakeTracker, local_id: str) -> list[str]:
    return [comment.body for comment in tracker.ticket(local_id).comments]


def test_a_comment_on_the_receiver_whose_write_to_the_sender_failed_arrives_later(make_bridge):
    """B's comment meets a 5xx on A; later runs must bring it, not mark it handled and forget."""
    bridge = make_bridge({"ab": full()}, fake_instances())
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("VPN drops")
    bridge.run()
    [copy] = b.tickets()
    b.add_comment(copy.local_id, "Looking into it")
    a.plan_faults(FaultPlan(writes={1: "server_error"}))
    [summary] = bridge.run()
    assert summary.parked == 1

    settle(bridge)

    assert bodies(a, ticket) == ["Looking into it"]


def test_a_comment_whose_answer_was_lost_is_found_by_its_breadcrumb_not_written_again(make_bridge):
    """A's comment reaches B but the answer is lost: the engine parks, and the retry finds it."""
    bridge = make_bridge({"ab": full()}, fake_instances())
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("VPN drops")
    bridge.run()
    [copy] = b.tickets()
    a.add_comment(ticket, "Any news?")
    b.plan_faults(FaultPlan(writes={1: "lost_answer"}))
    [summary] = bridge.run()
    assert summary.parked == 1

    settle(bridge)

    assert bodies(b, copy.local_id) == ["Any news?"]


def test_a_comment_doubled_by_a_blind_retry_then_a_crash_does_not_stop_the_bridge(make_bridge):
    """B resends a lost comment write (as rest_http did), the bridge dies before linking it:
    B holds it twice, unlinked, and every later run must still go on."""
    FakeTracker.named("B").personality = Personality(blind_retries=1)
    bridge = make_bridge({"ab": full()}, fake_instances())
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("VPN drops")
    bridge.run()
    [copy] = b.tickets()
    a.add_comment(ticket, "Any news?")
    a.add_comment(ticket, "Hello?")
    # write 1 is answered by nobody, write 2 is the adapter's resend, write 3 never happens.
    b.plan_faults(FaultPlan(writes={1: "lost_answer", 3: "crash_before"}))
    with pytest.raises(SimulatedCrash):
        bridge.run()
    bridge.restart()
    assert bodies(b, copy.local_id) == ["Any news?", "Any news?"]  # the adapter's doing

    settle(bridge)

    assert bodies(b, copy.local_id)[-1] == "Hello?"


def test_a_status_ignored_on_create_is_set_afterwards(make_bridge):
    """B (like Redmine) drops the status of a create; the copy must still end up solved."""
    FakeTracker.named("B").personality = Personality(ignored_on_create=frozenset({"status"}))
    bridge = make_bridge({"ab": full()}, fake_instances())
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    a.create_ticket("Refund", status="solved")

    settle(bridge)

    [copy] = b.tickets()
    assert copy.status == "solved"


@pytest.mark.xfail(
    strict=True,
    reason="adapter limit, issue 8 point 5: an adapter that pages by offset over an order by "
    "update time loses a ticket pushed out of every page; the engine cannot see what was never "
    "listed. The built-in profiles read a stable order (Redmine by keyset, Roundup by id, "
    "GitHub by creation; ADR 0007)",
)
def test_a_ticket_changed_during_a_paged_read_does_not_hide_another(make_bridge):
    """While the bridge reads page one, a person comments on t1; t3's comment must still go."""
    FakeTracker.named("A").personality = Personality(offset_pages_by_update=True)
    bridge = make_bridge({"ab": full()}, fake_instances(page_size=2))
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ids = [a.create_ticket(f"t{n}") for n in range(1, 6)]
    bridge.run()
    for local_id in ids:
        a.add_comment(local_id, f"news on {a.ticket(local_id).subject}")
    a.during_next_read(lambda: a.add_comment(ids[0], "meanwhile"))

    settle(bridge)

    copies = {ticket.subject: ticket for ticket in b.tickets()}
    assert [c.body for c in copies["t3"].comments] == ["news on t3"]


def test_a_comment_written_just_before_a_crash_has_its_journal_line(make_bridge):
    """The bridge dies right after writing A's comment to B; the next run links it silently."""
    bridge = make_bridge({"ab": full()}, fake_instances())
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("VPN drops")
    bridge.run()
    a.add_comment(ticket, "Any news?")
    b.plan_faults(FaultPlan(writes={1: "crash_after"}))
    with pytest.raises(SimulatedCrash):
        bridge.run()
    bridge.restart()

    settle(bridge)

    [copy] = b.tickets()
    [written] = copy.comments
    lines = [
        entry
        for entry in bridge.journal(agreement="ab")
        if entry.action in ("comment", "recover")
        and (entry.after or {}).get("local_id") == written.local_id
    ]
    assert len(lines) == 1


def test_a_comment_written_while_the_bridge_reads_the_pages_still_arrives(make_bridge):
    """A person comments on t1 while the bridge is between pages; t1 comes back on a later page
    with that comment, and it must reach B (keyset pages: nothing is skipped by the tracker)."""
    bridge = make_bridge({"ab": full()}, fake_instances(page_size=2))
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ids = [a.create_ticket(f"t{n}") for n in range(1, 4)]
    bridge.run()
    for local_id in ids:
        a.add_comment(local_id, f"news on {a.ticket(local_id).subject}")
    a.during_next_read(lambda: a.add_comment(ids[0], "meanwhile"))

    settle(bridge)

    copies = {ticket.subject: ticket for ticket in b.tickets()}
    assert [c.body for c in copies["t1"].comments] == ["news on t1", "meanwhile"]


def _a_copy_left_unlinked_by_a_crash(make_bridge):
    """A shares a ticket; the run dies right after B's create, before the link is written."""
    bridge = make_bridge({"ab": {**full(), "sync_tags": True}}, fake_instances())
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Printer on fire", tags=["hardware"])
    b.plan_faults(FaultPlan(writes={1: "crash_after"}))
    with pytest.raises(SimulatedCrash):
        bridge.run()
    bridge.restart()
    [copy] = b.tickets()
    return bridge, a, b, ticket, copy


def _run_while_recovery_cannot_look(bridge, a: FakeTracker, b: FakeTracker) -> None:
    """The next run cannot look the copy up by its breadcrumb (B answers 503), so the link stays
    pending, and A's read fails (A's cursor stays before the ticket); B's pass reads the changed
    copy it cannot place yet, and B's cursor moves on. The run after recovers the copy and meets
    A's ticket again in A's pages, unchanged since its snapshot."""
    b.fail_next("find_by_shared_uuid", TransientError("503 on find_by_shared_uuid"))
    a.fail_next("changed_since", TransientError("503 on changed_since"))
    [summary] = bridge.run()
    assert any("recovery lookup on B failed" in error for error in summary.errors)


def test_a_comment_on_a_copy_whose_create_is_being_recovered_still_arrives(make_bridge):
    """make deep-check: a person commented on B's copy between the crash and its recovery; once
    recovered, the copy looked unchanged from A's side and B's cursor was past the comment."""
    bridge, a, b, ticket, copy = _a_copy_left_unlinked_by_a_crash(make_bridge)
    b.add_comment(copy.local_id, "On it, replacing the fuser")
    _run_while_recovery_cannot_look(bridge, a, b)

    settle(bridge)

    assert bodies(a, ticket) == ["On it, replacing the fuser"]


def test_tags_changed_on_a_copy_whose_create_is_being_recovered_still_travel(make_bridge):
    """make deep-check: the same window, a person retagging B's copy; A kept the old tags."""
    bridge, a, b, ticket, copy = _a_copy_left_unlinked_by_a_crash(make_bridge)
    b.set_tags(copy.local_id, ["hardware", "urgent"])
    _run_while_recovery_cannot_look(bridge, a, b)

    settle(bridge)

    assert sorted(a.ticket(ticket).tags) == ["hardware", "urgent"]
