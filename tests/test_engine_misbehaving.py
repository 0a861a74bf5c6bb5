"""The engine when a tracker misbehaves (issue: nothing lost, nothing doubled).

Each test is a story that lost or doubled data before: a parked change of the receiver side that
was never retried, a ticket seen twice in one read, a reused ticket id, duplicate breadcrumbs,
a create whose status the tracker ignored, a read broken off half way.
"""

from __future__ import annotations

import dataclasses
import itertools
from datetime import timedelta

import pytest

from nhd_bridge import Actor, PermanentError, TransientError
from nhd_bridge.core.adapter import CommentDraft
from nhd_bridge.testing.fake import FakeTracker

ALICE = Actor(uuid="alice-1", name="Alice Requester", role="end-user")
CAROL = Actor(uuid="carol-3", name="Carol Engineer", role="agent")


def paged(size: int = 2) -> dict:
    return {"A": {"kind": "fake", "page_size": size}, "B": {"kind": "fake"}}


def full(sender: str = "A", receiver: str = "B", **extra):
    return {"sender": sender, "receiver": receiver, "allows_public_comments": True, **extra}


def later(bridge, seconds: int = 3600) -> None:
    """Move the engine's clock past every backoff."""
    from nhd_bridge.core.state import utcnow

    bridge.engine._clock = lambda: utcnow() + timedelta(seconds=seconds)


def journaled(bridge, action: str) -> list:
    return [entry for entry in bridge.journal() if entry.action == action]


def bodies(tracker: FakeTracker, local_id: str) -> list[str]:
    return [comment.body for comment in tracker.ticket(local_id).comments]


def test_a_receiver_side_comment_whose_write_failed_is_retried_until_it_lands(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("VPN drops", requester=ALICE)
    bridge.run()
    [copy] = b.tickets()

    b.add_comment(copy.local_id, "Fixed on our side", public=True, author=CAROL)
    a.fail_next("add_comment", TransientError("A is down"))
    [failed] = bridge.run()
    assert failed.parked == 1

    later(bridge)
    bridge.run()
    later(bridge, 7200)
    bridge.run()

    assert bodies(a, ticket).count("Fixed on our side") == 1
    assert bridge.store.read().parked("ab") == []


def test_sync_reports_tickets_parked_by_an_earlier_run(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    a.create_ticket("VPN drops", requester=ALICE)
    bridge.run()
    [copy] = b.tickets()
    b.add_comment(copy.local_id, "Fixed on our side", public=True, author=CAROL)
    a.fail_next("add_comment", TransientError("A is down"))
    bridge.run()

    [summary] = bridge.run()  # before the backoff ends: nothing retried, still parked

    assert summary.still_parked == 1


def test_a_ticket_listed_twice_in_one_read_is_carried_with_its_latest_content(make_bridge):
    bridge = make_bridge({"ab": full()}, paged(2))
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    first = a.create_ticket("one")
    for number in range(2, 6):
        a.create_ticket(f"ticket {number}")
    bridge.run()
    a.add_comment(first, "before the read", author=ALICE)
    for number in range(2, 6):
        a.set_status(a.tickets()[number - 1].local_id, "pending")
    pages: list[str] = []

    def change_during_the_read(cursor: str) -> bool:
        pages.append(cursor)
        if len(pages) == 2:  # a person comments while the bridge reads the second page
            a.add_comment(first, "during the read", author=ALICE)
        return False

    never = TransientError("never raised")
    a.fail_next("changed_since_page", never, times=None, when=change_during_the_read)
    bridge.run()
    a.clear_faults()
    [first_copy] = [t for t in b.tickets() if t.subject == "one"]
    assert bodies(b, first_copy.local_id) == ["before the read", "during the read"]


def test_duplicate_breadcrumbs_on_one_ticket_do_not_stop_the_run(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("VPN drops", requester=ALICE)
    a.add_comment(ticket, "hello", author=ALICE)
    bridge.run()
    [copy] = b.tickets()
    [written] = copy.comments
    # A lost answer retried blindly, or a person copying the comment: two carry one breadcrumb.
    adapter = bridge.engine.adapter("B")
    adapter.add_comment(
        copy.local_id, CommentDraft(shared_uuid=written.shared_uuid, body=written.body, public=True)
    )
    b.add_comment(copy.local_id, "a real reply", public=True, author=CAROL)
    other = a.create_ticket("another ticket")

    [summary] = bridge.run()

    assert summary.errors == []
    assert bodies(a, ticket) == ["hello", "a real reply"]
    assert [t.subject for t in b.tickets()] == ["VPN drops", "another ticket"]
    duplicates = journaled(bridge, "duplicate")
    assert len(duplicates) == 1 and "duplicate" in duplicates[0].reason
    assert other


def test_a_reused_ticket_id_is_a_different_ticket(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    first = a.create_ticket("first")
    bridge.run()
    [copy] = b.tickets()
    b.delete_ticket(copy.local_id)
    b._ticket_numbers = itertools.count(int(copy.local_id))  # Redmine on SQLite does this
    second = a.create_ticket("second")

    summaries = bridge.run() + bridge.run()

    assert all(summary.errors == [] for summary in summaries), summaries
    [new_copy] = b.tickets()
    assert new_copy.local_id == copy.local_id  # the tracker handed the id out again
    assert new_copy.subject == "second"
    assert a.ticket(first).subject == "first"  # not overwritten by the ticket that took the id
    link = bridge.store.read().link_for_local("B", copy.local_id)
    assert link is not None and link.shared_uuid == new_copy.shared_uuid
    assert journaled(bridge, "reused-id")
    assert second


def test_a_status_the_create_ignored_is_set_by_an_update(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    adapter = bridge.engine.adapter("B")
    create = adapter.create
    adapter.create = lambda draft: create(dataclasses.replace(draft, status=None))  # as Redmine
    a.create_ticket("VPN drops", status="pending")

    bridge.run()
    later(bridge)
    bridge.run()

    [copy] = b.tickets()
    assert copy.status == "pending"
    assert journaled(bridge, "verify")


def test_a_refused_create_waits_for_its_backoff(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    a.create_ticket("VPN drops")
    b.fail_next("create", PermanentError("422 Subject is invalid"), times=None)
    bridge.run()
    calls = b.calls["create"]

    bridge.run()
    bridge.run()

    assert b.calls["create"] == calls


def test_a_tracker_that_is_down_stops_the_pass_after_a_few_failures(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    for number in range(10):
        a.create_ticket(f"ticket {number}")
    b.fail_next("create", TransientError("connection refused"), times=None)

    [summary] = bridge.run()

    assert b.calls["create"] == 3
    assert any("consecutive" in error for error in summary.errors)
    b.clear_faults()
    later(bridge)
    bridge.run()
    assert len(b.tickets()) == 10


def test_a_read_that_fails_half_way_keeps_the_pages_it_wrote(make_bridge):
    bridge = make_bridge({"ab": full()}, paged(2))
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    for number in range(6):
        a.create_ticket(f"ticket {number}")
    pages: list[str] = []

    def third_page(cursor: str) -> bool:
        pages.append(cursor)
        return len(pages) == 3

    throttled = TransientError("429 slow down", retry_after=1)
    a.fail_next("changed_since_page", throttled, when=third_page)

    [summary] = bridge.run()

    assert len(b.tickets()) == 4
    assert summary.errors
    cursor = bridge.store.read().cursor("ab", "A")
    assert cursor is not None
    creates = b.calls["create"]
    bridge.run()
    assert len(b.tickets()) == 6
    assert b.calls["create"] == creates + 2


def test_a_ticket_whose_derived_uuid_a_partner_took_first_is_shared_under_another(make_bridge):
    from nhd_bridge.core.model import nhd_uuid

    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    squatted = a.create_ticket("a partner's ticket, received under a predictable uuid")
    ticket = a.create_ticket("ours")
    derived = nhd_uuid(bridge.engine.sharing_url("A"), "tickets", ticket)
    with bridge.store.transaction() as tx:
        tx.put_link(derived, "A", squatted, "linked")

    [summary] = bridge.run()

    assert summary.errors == []
    ours = [t for t in b.tickets() if t.subject == "ours"]
    assert len(ours) == 1 and ours[0].shared_uuid != derived
    assert bridge.store.read().link(derived, "A").local_id == squatted


def test_an_unexpected_error_in_one_ticket_parks_it_and_the_rest_flows(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    broken = a.create_ticket("content nothing expected")
    fine = a.create_ticket("an ordinary ticket")
    adapter = bridge.engine.adapter("B")
    create = adapter.create

    def create_or_crash(draft):
        if draft.subject == "content nothing expected":
            raise TypeError("unsupported operand type(s) for -: 'str' and 'int'")
        return create(draft)

    adapter.create = create_or_crash

    [summary] = bridge.run()

    assert [t.subject for t in b.tickets()] == ["an ordinary ticket"]
    assert summary.parked == 1 and summary.failure is None
    [row] = bridge.store.read().parked("ab")
    assert row.local_id == broken and "TypeError" in row.error
    [failed] = [e for e in bridge.journal() if e.outcome == "failed"]
    assert "unexpected TypeError" in failed.reason
    assert fine


def test_an_unexpected_error_while_planning_parks_that_ticket(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    first = a.create_ticket("first")
    bridge.run()
    a.add_comment(first, "news", author=ALICE)
    a.create_ticket("second")
    adapter = bridge.engine.adapter("B")
    get = adapter.get
    adapter.get = lambda local_id: (_ for _ in ()).throw(KeyError("author"))

    [summary] = bridge.run()
    adapter.get = get

    assert [t.subject for t in b.tickets()] == ["first", "second"]
    assert summary.parked == 1
    assert "KeyError" in bridge.store.read().parked("ab")[0].error


def test_a_failing_agreement_is_recorded_with_when_and_why(make_bridge):
    bridge = make_bridge({"ab": full()})
    a = FakeTracker.named("A")
    a.fail_next("changed_since", TransientError("connection refused"), times=2)

    bridge.run()
    first = bridge.store.read().health("ab")
    bridge.run()
    second = bridge.store.read().health("ab")
    bridge.run()
    healed = bridge.store.read().health("ab")

    assert first.failing_since is not None and "connection refused" in first.last_error
    assert second.failing_since == first.failing_since
    assert healed.failing_since is None and healed.last_error is None
    assert healed.last_ok_at is not None


def test_a_secret_quoted_by_a_trackers_error_is_not_stored(make_bridge):
    instances = {"A": {"kind": "fake", "token": "s3cret-token-value"}, "B": {"kind": "fake"}}
    bridge = make_bridge({"ab": full()}, instances)
    FakeTracker.named("A").create_ticket("VPN drops")
    leak = PermanentError("403 on https://b.example/api?key=s3cret-token-value")
    FakeTracker.named("B").fail_next("create", leak)

    bridge.run()

    stored = [entry.reason or "" for entry in bridge.journal()]
    stored += [row.error for row in bridge.store.read().parked("ab")]
    assert any("403 on" in text for text in stored)
    assert not any("s3cret-token-value" in text for text in stored)


def test_a_status_a_person_sets_right_after_our_write_is_not_reverted(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("VPN drops", status="open")
    bridge.run()
    [copy] = b.tickets()
    a.set_status(ticket, "pending")
    adapter = bridge.engine.adapter("B")
    update = adapter.update

    def update_then_a_person_acts(local_id, changes):
        update(local_id, changes)
        b.set_status(local_id, "solved")  # between our write and our read-back

    adapter.update = update_then_a_person_acts
    bridge.run()
    adapter.update = update
    later(bridge)
    bridge.run()
    bridge.run()

    assert (a.ticket(ticket).status, b.ticket(copy.local_id).status) == ("solved", "solved")
    assert not [e for e in bridge.journal() if e.action == "verify" and e.outcome == "failed"]


def test_a_share_whose_create_crashed_before_it_happened_is_made_by_the_next_run(make_bridge):
    """Found by the model: the baselines a create records before it happens must not make a
    ticket with no comment look 'unchanged, nothing to do' once the create never happened."""
    import pytest

    from nhd_bridge.testing.fake import FaultPlan, SimulatedCrash

    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    a.create_ticket("no comment yet")
    b.plan_faults(FaultPlan(writes={1: "crash_before"}))
    with pytest.raises(SimulatedCrash):
        bridge.run()
    b.clear_faults()
    bridge.restart()

    bridge.run()

    assert [t.subject for t in b.tickets()] == ["no comment yet"]


@pytest.mark.parametrize("failing", ["A", "B"])
def test_tags_merged_both_ways_survive_a_write_that_failed_on_one_side(make_bridge, failing):
    """Found by the model: the merge landed on one side, failed on the other, and the retry let
    one side's stale tags win instead of merging again."""
    bridge = make_bridge({"ab": full(sync_tags=True)})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("VPN drops", tags=["vpn"])
    bridge.run()
    [copy] = b.tickets()
    a.set_tags(ticket, ["vpn", "from-a"])
    b.set_tags(copy.local_id, ["vpn", "from-b"])
    FakeTracker.named(failing).fail_next("update", TransientError(f"{failing} is down"))

    bridge.run()
    later(bridge)
    bridge.run()
    bridge.run()

    merged = ["from-a", "from-b", "vpn"]
    assert (sorted(a.ticket(ticket).tags), sorted(b.ticket(copy.local_id).tags)) == (merged, merged)


def test_a_mapped_field_set_back_after_a_part_way_failure_still_travels(make_bridge):
    """Found by ``make deep-check`` (seed 205406984296305728412932243408776000047): B's field
    reached A, the comment going the other way failed, and only A's baseline moved — B's stayed
    at the old value. A person on B then set the field back to it; B looked unchanged and A kept
    the value B had left, for good."""
    bridge = make_bridge(
        {"ab": full(sync_custom_fields=True, custom_fields={"priority": "severity"})}
    )
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Crash", custom_fields={"priority": "low"})
    bridge.run_until_quiet()
    [copy] = b.tickets()
    b.set_field(copy.local_id, "severity", "high")
    a.add_comment(ticket, "Any news?")
    b.fail_next("add_comment", TransientError("429 Too Many Requests", retry_after=2))
    bridge.run()
    assert a.ticket(ticket).custom_fields["priority"] == "high"

    b.set_field(copy.local_id, "severity", "low")
    later(bridge)
    bridge.run_until_quiet()

    assert a.ticket(ticket).custom_fields["priority"] == "low"
    assert bodies(b, copy.local_id) == ["Any news?"]
