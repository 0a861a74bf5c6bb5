"""The sync engine against in-memory trackers: the scenarios of shared/scenarios.md.

Every scenario ends the way users check it: one more run right away writes nothing.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from nhd_bridge import Actor, PermanentError, TransientError
from nhd_bridge.core.engine import AgreementRefused, SyncEngine
from nhd_bridge.core.state import utcnow
from nhd_bridge.testing.fake import FakeTracker

ALICE = Actor(uuid="alice-1", name="Alice Requester", role="end-user")
BOB = Actor(uuid="bob-7", name="Bob Agent", role="agent")
CAROL = Actor(uuid="carol-3", name="Carol Engineer", role="agent")


def full(sender: str = "A", receiver: str = "B", **extra):
    return {"sender": sender, "receiver": receiver, "allows_public_comments": True, **extra}


def partial(sender: str = "A", receiver: str = "B", **extra):
    return {"sender": sender, "receiver": receiver, "allows_public_comments": False, **extra}


def only_ticket(tracker: FakeTracker):
    [ticket] = tracker.tickets()
    return ticket


def assert_quiet(bridge) -> None:
    summaries = bridge.run()
    assert [s.total_writes for s in summaries] == [0] * len(summaries), summaries


# --- sharing ------------------------------------------------------------------------------------


def test_share_copies_subject_status_requester_and_every_comment_with_its_visibility(
    make_bridge,
):
    bridge = make_bridge({"ab": full()})
    a = FakeTracker.named("A")
    ticket = a.create_ticket("Printer on fire", status="pending", requester=ALICE)
    a.add_comment(ticket, "It smokes", public=True, author=ALICE)
    a.add_comment(ticket, "Customer is a VIP", public=False, author=BOB)

    [summary] = bridge.run()

    copy = only_ticket(FakeTracker.named("B"))
    assert (copy.subject, copy.status, copy.requester) == ("Printer on fire", "pending", ALICE)
    assert [(c.body, c.public, c.author) for c in copy.comments] == [
        ("It smokes", True, ALICE),
        ("Customer is a VIP", False, BOB),
    ]
    assert copy.shared_uuid is not None
    assert summary.writes == {"create": 1, "comment": 2}
    assert_quiet(bridge)


def test_copy_carries_the_original_id_and_explain_data_names_the_twin(make_bridge):
    bridge = make_bridge({"ab": full()})
    a = FakeTracker.named("A")
    ticket = a.create_ticket("Login broken")
    bridge.run()
    copy = only_ticket(FakeTracker.named("B"))
    links = bridge.store.read().links(copy.shared_uuid)
    assert {(link.instance, link.local_id) for link in links} == {
        ("A", ticket),
        ("B", copy.local_id),
    }
    origin = bridge.store.read().shared_ticket_origin(copy.shared_uuid)
    assert origin == ("A", a.ticket(ticket).human_id or ticket)


def test_ticket_outside_the_share_filter_is_not_sent_until_it_matches(make_bridge):
    bridge = make_bridge({"ab": full(share_filter="contains(tags, 'escalate')")})
    a = FakeTracker.named("A")
    ticket = a.create_ticket("Slow page", tags=["web"])
    a.add_comment(ticket, "first words", author=ALICE)
    bridge.run()
    assert FakeTracker.named("B").tickets() == []

    a.set_tags(ticket, ["web", "escalate"])
    a.add_comment(ticket, "second words", author=ALICE)
    bridge.run()

    copy = only_ticket(FakeTracker.named("B"))
    assert [c.body for c in copy.comments] == ["first words", "second words"]
    assert_quiet(bridge)


# --- continuous sync ----------------------------------------------------------------------------


def test_comments_travel_both_ways_once_with_author_and_time(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("VPN drops", requester=ALICE)
    bridge.run()
    copy = only_ticket(b).local_id

    b.add_comment(copy, "Looking into it", public=True, author=CAROL)
    a.add_comment(ticket, "Any news?", public=True, author=ALICE)
    bridge.run()

    a_bodies = [(c.body, c.author) for c in a.ticket(ticket).comments]
    b_bodies = [(c.body, c.author) for c in b.ticket(copy).comments]
    assert a_bodies.count(("Looking into it", CAROL)) == 1
    assert b_bodies.count(("Any news?", ALICE)) == 1
    carol_on_b = next(c for c in b.ticket(copy).comments if c.body == "Looking into it")
    carol_on_a = next(c for c in a.ticket(ticket).comments if c.body == "Looking into it")
    assert carol_on_a.authored_at == carol_on_b.authored_at
    assert_quiet(bridge)


def test_full_delegation_brings_public_comments_and_status_back_to_the_sender(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Refund", status="open")
    bridge.run()
    copy = only_ticket(b).local_id

    b.add_comment(copy, "Refund issued", public=True, author=CAROL)
    b.set_status(copy, "solved")
    bridge.run()

    back = a.ticket(ticket)
    assert back.status == "solved"
    assert [(c.body, c.public) for c in back.comments] == [("Refund issued", True)]
    assert_quiet(bridge)


def test_partial_delegation_makes_public_comments_private_and_keeps_status_local(make_bridge):
    bridge = make_bridge({"ab": partial()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Refund", status="open")
    bridge.run()
    copy = only_ticket(b).local_id

    b.add_comment(copy, "Refund issued", public=True, author=CAROL)
    b.set_status(copy, "solved")
    a.set_status(ticket, "pending")
    bridge.run()

    assert [(c.body, c.public) for c in a.ticket(ticket).comments] == [("Refund issued", False)]
    assert a.ticket(ticket).status == "pending"
    assert b.ticket(copy).status == "solved"
    reasons = [e.reason for e in bridge.journal() if e.action in ("status", "comment")]
    assert any("partial delegation" in (reason or "") for reason in reasons)
    assert_quiet(bridge)


def test_tags_and_custom_fields_stay_home_when_the_agreement_does_not_sync_them(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    a.create_ticket("Crash", tags=["urgent"], custom_fields={"priority": "high"})
    bridge.run()
    copy = only_ticket(b)
    assert copy.tags == []
    assert copy.custom_fields == {}


def test_tags_and_only_mapped_custom_fields_move_when_the_agreement_says_so(make_bridge):
    bridge = make_bridge(
        {
            "ab": full(
                sync_tags=True,
                sync_custom_fields=True,
                custom_fields={"priority": "severity"},
            )
        }
    )
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket(
        "Crash", tags=["urgent"], custom_fields={"priority": "high", "internal_cost": 300}
    )
    bridge.run()
    copy = only_ticket(b)
    assert copy.tags == ["urgent"]
    assert copy.custom_fields == {"severity": "high"}

    b.set_field(copy.local_id, "severity", "low")
    b.set_tags(copy.local_id, ["urgent", "triaged"])
    bridge.run()
    assert a.ticket(ticket).custom_fields == {"priority": "low", "internal_cost": 300}
    assert sorted(a.ticket(ticket).tags) == ["triaged", "urgent"]
    assert_quiet(bridge)


def test_conflict_newest_wins_is_journaled_and_does_not_ping_pong(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Old title")
    bridge.run()
    copy = only_ticket(b).local_id

    a.set_subject(ticket, "Title from A")
    b.set_subject(copy, "Title from B")  # changed last: newest
    bridge.run()

    assert a.ticket(ticket).subject == b.ticket(copy).subject == "Title from B"
    [conflict] = bridge.journal(outcome="conflict")
    assert (conflict.field, conflict.before, conflict.after) == (
        "subject",
        "Title from A",
        "Title from B",
    )
    assert_quiet(bridge)


def test_conflict_with_sender_ownership_keeps_the_senders_value(make_bridge):
    bridge = make_bridge({"ab": full(conflicts={"fields": {"status": "sender"}})})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Outage", status="open")
    bridge.run()
    copy = only_ticket(b).local_id

    a.set_status(ticket, "pending")
    b.set_status(copy, "hold")
    bridge.run()

    assert a.ticket(ticket).status == b.ticket(copy).status == "pending"
    assert len(bridge.journal(outcome="conflict")) == 1
    assert_quiet(bridge)


def test_unmappable_status_keeps_the_field_and_journals_why(make_bridge):
    bridge = make_bridge(
        {"ab": full(status_map={"outbound": {"open": "todo", "solved": "done"}})},
        instances={"A": {"kind": "fake"}, "B": {"kind": "fake"}},
    )
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Mapped", status="open")
    bridge.run()
    copy = only_ticket(b).local_id
    assert b.ticket(copy).status == "todo"

    a.set_status(ticket, "hold")
    bridge.run()

    assert b.ticket(copy).status == "todo"
    [skip] = [e for e in bridge.journal(outcome="skipped") if e.field == "status"]
    assert "'hold'" in skip.reason and "status_map.outbound" in skip.reason
    assert_quiet(bridge)


def test_side_local_field_is_never_touched(make_bridge):
    bridge = make_bridge({"ab": full(sync_custom_fields=True, custom_fields={"a": "a"})})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    a.create_ticket("T", custom_fields={"a": "1"})
    bridge.run()
    copy = only_ticket(b).local_id
    b.set_field(copy, "private_notes", "B only")
    bridge.run()
    assert b.ticket(copy).custom_fields == {"a": "1", "private_notes": "B only"}
    assert_quiet(bridge)


# --- several partners ---------------------------------------------------------------------------


def test_fan_out_comment_reaches_every_other_partner_once_and_never_comes_back(make_bridge):
    bridge = make_bridge({"ab": full("A", "B"), "ac": full("A", "C")})
    a, b, c = (FakeTracker.named(n) for n in "ABC")
    ticket = a.create_ticket("Shared three ways")
    bridge.run()
    b_copy, c_copy = only_ticket(b).local_id, only_ticket(c).local_id

    b.add_comment(b_copy, "from B", author=CAROL)
    c.add_comment(c_copy, "from C", author=BOB)
    bridge.run_until_quiet()

    for tracker, local in ((a, ticket), (b, b_copy), (c, c_copy)):
        bodies = sorted(comment.body for comment in tracker.ticket(local).comments)
        assert bodies == ["from B", "from C"], tracker.name
    assert_quiet(bridge)


def test_re_share_carries_comments_from_the_far_end_and_back(make_bridge):
    bridge = make_bridge({"ab": full("A", "B"), "bd": full("B", "D")})
    a, b, d = (FakeTracker.named(n) for n in "ABD")
    ticket = a.create_ticket("Escalated twice")
    bridge.run_until_quiet()
    d_copy = only_ticket(d).local_id

    d.add_comment(d_copy, "from D", author=CAROL)
    a.add_comment(ticket, "from A", author=ALICE)
    bridge.run_until_quiet()

    assert sorted(c.body for c in a.ticket(ticket).comments) == ["from A", "from D"]
    assert sorted(c.body for c in d.ticket(d_copy).comments) == ["from A", "from D"]
    assert sorted(c.body for c in only_ticket(b).comments) == ["from A", "from D"]


def test_partner_with_partial_delegation_makes_its_public_comment_private_everywhere(
    make_bridge,
):
    bridge = make_bridge({"ab": full("A", "B"), "ac": partial("A", "C")})
    a, b, c = (FakeTracker.named(n) for n in "ABC")
    a.create_ticket("Two partners")
    bridge.run()
    b.add_comment(only_ticket(b).local_id, "B speaks", public=True)
    c.add_comment(only_ticket(c).local_id, "C speaks", public=True)
    bridge.run_until_quiet()

    everywhere = {
        tracker.name: {comment.body: comment.public for comment in only_ticket(tracker).comments}
        for tracker in (a, b, c)
    }
    assert everywhere == {
        "A": {"B speaks": True, "C speaks": False},
        "B": {"B speaks": True, "C speaks": False},
        # C's own copy keeps what C's agent wrote; the bridge never rewrites a partner's data.
        "C": {"B speaks": True, "C speaks": True},
    }


# --- ending a share -----------------------------------------------------------------------------


def test_unshared_ticket_keeps_both_copies_and_stops_syncing(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Shared for a while", comments=["before"])
    bridge.run()
    bridge.engine.unshare("ab", "A", ticket)
    a.add_comment(ticket, "after unshare")
    b.add_comment(only_ticket(b).local_id, "B after unshare")
    [summary] = bridge.run()
    assert summary.total_writes == 0
    assert [c.body for c in only_ticket(b).comments] == ["before", "B after unshare"]
    assert [c.body for c in a.ticket(ticket).comments] == ["before", "after unshare"]
    with pytest.raises(LookupError):
        bridge.engine.unshare("ab", "A", "no-such-ticket")


def test_deleted_copy_is_not_deleted_on_the_other_side_and_the_link_is_orphaned(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Will vanish")
    bridge.run()
    b.delete_ticket(only_ticket(b).local_id)
    a.add_comment(ticket, "anyone there?")
    bridge.run()

    assert a.ticket(ticket).subject == "Will vanish"
    assert b.tickets() == []
    [orphan] = [e for e in bridge.journal() if e.action == "orphan"]
    assert "deleted" in orphan.reason
    assert_quiet(bridge)


def test_inactive_agreement_syncs_nothing_and_cannot_be_reactivated(make_bridge, tmp_path):
    bridge = make_bridge({"ab": full(status="accepted")})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Before")
    bridge.run()
    text = bridge.path.read_text().replace("status: accepted", "status: inactive")
    bridge.path.write_text(text)
    bridge.restart()
    a.add_comment(ticket, "after deactivation")
    [summary] = bridge.run()
    assert summary.total_writes == 0
    assert only_ticket(b).comments == []

    bridge.path.write_text(text.replace("status: inactive", "status: accepted"))
    bridge.restart()
    with pytest.raises(AgreementRefused, match="cannot be reactivated"):
        bridge.run()


# --- faults -------------------------------------------------------------------------------------


def test_crash_after_remote_create_before_commit_leaves_exactly_one_copy(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Created once", comments=["hello"])
    b.fail_after("create", KeyboardInterrupt())  # the process dies right after the create

    with pytest.raises(KeyboardInterrupt):
        bridge.run()
    bridge.restart()
    bridge.run_until_quiet()

    copy = only_ticket(b)
    assert [c.body for c in copy.comments] == ["hello"]
    assert bridge.store.read().link(copy.shared_uuid, "B").local_id == copy.local_id
    assert a.ticket(ticket).comments[0].body == "hello"


def test_crash_after_comment_write_before_its_link_leaves_one_copy_of_the_comment(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Comment once")
    bridge.run()
    a.add_comment(ticket, "exactly once")
    a.add_comment(ticket, "and me too")
    b.fail_after("add_comment", KeyboardInterrupt())

    with pytest.raises(KeyboardInterrupt):
        bridge.run()
    bridge.restart()
    bridge.run_until_quiet()

    assert [c.body for c in only_ticket(b).comments] == ["exactly once", "and me too"]
    assert [c.body for c in a.ticket(ticket).comments] == ["exactly once", "and me too"]
    # The write the killed run never recorded is in the journal, as recovered.
    [recovered] = [e for e in bridge.journal() if e.action == "recover"]
    assert recovered.after["local_id"] == only_ticket(b).comments[0].local_id
    assert recovered.target == "B" and "interrupted" in recovered.reason


def test_transient_failure_parks_one_ticket_while_others_sync_and_next_run_retries(
    make_bridge,
):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    first = a.create_ticket("first")
    bad = a.create_ticket("rate limited")
    third = a.create_ticket("third")
    b.fail_next(
        "create",
        TransientError("429 Too Many Requests", retry_after=5),
        when=lambda draft, **_: draft.subject == "rate limited",
    )

    [summary] = bridge.run()
    assert summary.parked == 1
    assert sorted(t.subject for t in b.tickets()) == ["first", "third"]
    [parked] = bridge.store.read().parked("ab")
    assert parked.local_id == bad and "429" in parked.error

    a.add_comment(bad, "a later change waits behind the failure")
    [waiting] = bridge.run()
    assert waiting.skipped["waiting behind a parked failure"] == 1
    assert sorted(t.subject for t in b.tickets()) == ["first", "third"]

    later = utcnow() + timedelta(minutes=5)
    bridge.engine = SyncEngine(bridge.config, bridge.store, clock=lambda: later)
    [retry] = bridge.run()
    assert retry.retried == 1 and retry.parked == 0
    copy = next(t for t in b.tickets() if t.subject == "rate limited")
    assert [c.body for c in copy.comments] == ["a later change waits behind the failure"]
    assert bridge.store.read().parked("ab") == []
    assert {first, third} <= {link.local_id for link in _links(bridge, "A")}
    assert_quiet(bridge)


def test_failed_read_of_one_side_changes_nothing_on_the_other(make_bridge):
    bridge = make_bridge({"ab": full(max_closes_per_run=100)})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Keep me open", status="open")
    bridge.run()
    b.fail_next("changed_since_page", TransientError("connection reset"))
    a.set_subject(ticket, "renamed on A")
    [summary] = bridge.run()
    assert any("reading changes from B failed" in error for error in summary.errors)
    assert a.ticket(ticket).status == "open"
    assert b.tickets()[0].subject == "renamed on A"  # the other direction still flowed
    assert_quiet(bridge)


def test_blast_radius_guard_stops_before_closing_any_ticket(make_bridge):
    bridge = make_bridge({"ab": full(max_closes_per_run=2)})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    tickets = [a.create_ticket(f"T{i}", status="open") for i in range(3)]
    bridge.run()
    for ticket in tickets:
        a.set_status(ticket, "closed")
    [summary] = bridge.run()
    assert all(t.status == "open" for t in b.tickets())
    assert any("max_closes_per_run" in error for error in summary.errors)


def test_attachment_over_the_limit_is_left_out_with_a_line_saying_why(make_bridge):
    bridge = make_bridge({"ab": full(attachments={"max_bytes": 1000})})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Logs")
    a.add_comment(ticket, "see attached", attachments={"small.txt": b"ok", "huge.log": b"x" * 5000})
    bridge.run()
    [comment, note] = only_ticket(b).comments
    assert [ref.filename for ref in comment.attachments] == ["small.txt"]
    assert b.attachment(comment.attachments[0].ref) == b"ok"
    # Why a file stayed behind is for agents: a private note, not the customer's comment.
    assert comment.public and "was not copied" not in comment.body
    assert not note.public and "'huge.log' was not copied" in note.body and "limit" in note.body
    assert_quiet(bridge)
    assert [c.body for c in a.ticket(ticket).comments] == ["see attached"]  # never copied back


def test_attachment_note_goes_into_the_body_where_the_target_has_no_private_comments(
    make_bridge,
):
    instances = {"A": {"kind": "fake"}, "B": {"kind": "fake", "private_comments": False}}
    bridge = make_bridge({"ab": full(attachments={"max_bytes": 1000})}, instances)
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Logs")
    a.add_comment(ticket, "see attached", attachments={"huge.log": b"x" * 5000})
    bridge.run()
    [comment] = only_ticket(b).comments
    assert "'huge.log' was not copied" in comment.body
    assert_quiet(bridge)


def test_private_comment_is_kept_out_of_a_tracker_without_private_comments(make_bridge):
    bridge = make_bridge(
        {"ab": full()},
        instances={"A": {"kind": "fake"}, "B": {"kind": "fake", "private_comments": False}},
    )
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Mixed")
    a.add_comment(ticket, "for everyone", public=True)
    a.add_comment(ticket, "agents only", public=False)
    bridge.run()
    assert [c.body for c in only_ticket(b).comments] == ["for everyone"]
    assert any("kept out" in (e.reason or "") for e in bridge.journal(outcome="skipped"))
    assert_quiet(bridge)


def test_target_without_authors_gets_who_wrote_it_and_where_in_the_body(make_bridge):
    bridge = make_bridge(
        {"ab": full()},
        instances={"A": {"kind": "fake"}, "B": {"kind": "fake", "comment_author": False}},
    )
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Who said it")
    a.add_comment(ticket, "It was me", author=ALICE)
    bridge.run()
    [comment] = only_ticket(b).comments
    assert comment.body.startswith("Alice Requester wrote on A:")
    assert comment.body.endswith("It was me")


def test_permanent_error_parks_with_the_message(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    a.create_ticket("Denied")
    b.fail_next("create", PermanentError("403: the bridge user may not create issues"))
    [summary] = bridge.run()
    assert summary.parked == 1
    [entry] = bridge.journal(outcome="failed")
    assert "may not create issues" in entry.reason


def test_dry_run_plans_without_writing(make_bridge):
    bridge = make_bridge({"ab": full()})
    FakeTracker.named("A").create_ticket("Only planned", comments=["c1"])
    _summary, items = bridge.engine.plan("ab")
    assert len(items) == 1 and items[0].plan.create is not None
    assert FakeTracker.named("B").tickets() == []
    assert bridge.journal() == []
    assert bridge.run()[0].writes == {"create": 1, "comment": 1}


def _links(bridge, instance: str):
    read = bridge.store.read()
    return [
        link
        for ticket in FakeTracker.named(instance).tickets()
        if (link := read.link_for_local(instance, ticket.local_id)) is not None
    ]


# --- things NHD cannot carry --------------------------------------------------------------------


def test_comment_edit_is_carried_to_a_partner_that_can_edit_without_duplicating(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Typos happen")
    comment = a.add_comment(ticket, "Teh printer is broken", author=ALICE)
    bridge.run_until_quiet()

    a.edit_comment(ticket, comment, "The printer is broken")
    [summary] = bridge.run()
    assert summary.writes == {"edit": 1}
    assert [c.body for c in only_ticket(b).comments] == ["The printer is broken"]

    copy = only_ticket(b)
    b.edit_comment(copy.local_id, copy.comments[0].local_id, "The printer is broken (confirmed)")
    bridge.run()
    assert [c.body for c in a.ticket(ticket).comments] == ["The printer is broken (confirmed)"]
    assert_quiet(bridge)


def test_comment_edit_toward_a_partner_that_cannot_edit_is_journaled_not_duplicated(
    make_bridge,
):
    bridge = make_bridge(
        {"ab": full()},
        instances={"A": {"kind": "fake"}, "B": {"kind": "fake", "edit_comments": False}},
    )
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Immutable over there")
    comment = a.add_comment(ticket, "first text")
    bridge.run_until_quiet()
    a.edit_comment(ticket, comment, "second text")
    [summary] = bridge.run()
    assert summary.total_writes == 0
    assert [c.body for c in only_ticket(b).comments] == ["first text"]
    [note] = [e for e in bridge.journal(outcome="skipped") if e.action == "edit"]
    assert "cannot edit comments" in note.reason
    assert_quiet(bridge)


def test_comment_edited_on_both_sides_keeps_each_text_and_reports_a_conflict(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Edited twice")
    comment = a.add_comment(ticket, "original")
    bridge.run_until_quiet()
    copy = only_ticket(b)
    a.edit_comment(ticket, comment, "A's version")
    b.edit_comment(copy.local_id, copy.comments[0].local_id, "B's version")
    bridge.run()
    assert [c.body for c in a.ticket(ticket).comments] == ["A's version"]
    assert [c.body for c in only_ticket(b).comments] == ["B's version"]
    assert [e.action for e in bridge.journal(outcome="conflict")] == ["edit"]


def test_a_pending_create_whose_recovery_lookup_fails_is_not_created_again(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Created once, even when recovery cannot look")
    b.fail_after("create", KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        bridge.run()
    bridge.restart()
    b.fail_next("find_by_shared_uuid", TransientError("search is down"))
    a.add_comment(ticket, "a change while recovery cannot look")
    [summary] = bridge.run()
    # A's ticket waits, and so does B's copy: its changes are read again once it is linked.
    assert summary.skipped["waiting for crash recovery"] == 2
    assert len(b.tickets()) == 1
    bridge.run_until_quiet()
    [copy] = b.tickets()
    assert [c.body for c in copy.comments] == ["a change while recovery cannot look"]


def test_status_map_naming_a_status_the_target_lacks_is_refused_before_any_write(make_bridge):
    bridge = make_bridge(
        {"ab": full(status_map={"outbound": {"open": "Opne"}})},
        instances={"A": {"kind": "fake"}, "B": {"kind": "fake", "statuses": ["Open", "Done"]}},
    )
    FakeTracker.named("A").create_ticket("Typo in the map")
    with pytest.raises(AgreementRefused, match="'Opne', which B does not have"):
        bridge.run()
    assert FakeTracker.named("B").tickets() == []


def test_dry_run_summary_counts_what_would_be_written(make_bridge):
    bridge = make_bridge({"ab": full()})
    FakeTracker.named("A").create_ticket("Would be shared", comments=["one", "two"])
    [summary] = bridge.run(dry_run=True)
    assert summary.dry_run and summary.writes == {"create": 1, "comment": 2}
    assert FakeTracker.named("B").tickets() == []


def test_blast_radius_counts_closes_of_both_directions_in_one_run(make_bridge):
    bridge = make_bridge({"ab": full(max_closes_per_run=2)})
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    from_a = [a.create_ticket(f"A{i}", status="open") for i in range(2)]
    from_b_side = [a.create_ticket(f"B{i}", status="open") for i in range(2)]
    bridge.run()
    copies = {t.subject: t.local_id for t in b.tickets()}
    for ticket in from_a:
        a.set_status(ticket, "closed")
    for subject in ("B0", "B1"):
        b.set_status(copies[subject], "closed")
    [summary] = bridge.run()
    # A's two closes fit the limit; B's two more would exceed it, so none of them is written.
    assert [a.ticket(t).status for t in from_b_side] == ["open", "open"]
    assert sorted(t.status for t in b.tickets() if t.subject.startswith("A")) == ["closed"] * 2
    assert any("would close 4 tickets" in error for error in summary.errors)
