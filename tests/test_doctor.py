"""`nhd-bridge doctor`: what the state store lost or never had, found against the trackers and
repaired in the store, never in a tracker.

Each test plants one disagreement after a real share, checks that doctor finds exactly it, repairs
what can be repaired, finds nothing repairable afterwards, and that a sync then writes nothing
(above all, no second copy).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from nhd_bridge import Actor, TransientError
from nhd_bridge.adapters.local import LocalConfig, LocalTracker
from nhd_bridge.cli import main
from nhd_bridge.core.adapter import CommentDraft, TicketDraft
from nhd_bridge.core.doctor import Doctor, Finding
from nhd_bridge.testing.fake import FakeAdapter, FakeTracker

ALICE = Actor(uuid="alice-1", name="Alice Requester", role="end-user")
CAROL = Actor(uuid="carol-3", name="Carol Engineer", role="agent")
FULL = {"ab": {"sender": "A", "receiver": "B", "allows_public_comments": True}}


def doctor_of(bridge) -> Doctor:
    return Doctor(bridge.config, bridge.store, bridge.engine.adapter, bridge.engine.sharing_url)


def shared(make_bridge):
    """A ticket of A shared to B, with a comment written on each side, synced both ways."""
    bridge = make_bridge(FULL)
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("Printer on fire", requester=ALICE)
    a.add_comment(ticket, "It smokes", author=ALICE)
    bridge.run()
    [copy] = b.tickets()
    b.add_comment(copy.local_id, "Looking into it", author=CAROL)
    bridge.run()
    assert copy.shared_uuid is not None
    return bridge, ticket, copy.local_id, copy.shared_uuid


def kinds(findings: list[Finding]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(finding.kind, finding.instance, finding.local_ids) for finding in findings]


def assert_writes_nothing(bridge) -> None:
    summaries = bridge.run()
    assert [summary.total_writes for summary in summaries] == [0] * len(summaries), summaries


def doctor_journal(bridge) -> list[str]:
    return [entry.reason or "" for entry in bridge.journal() if entry.action == "doctor"]


def test_a_healthy_bridge_has_no_findings(make_bridge):
    bridge, *_ = shared(make_bridge)

    doctor = doctor_of(bridge)

    assert doctor.examine() == []
    assert doctor.errors == []


# --- copies -------------------------------------------------------------------------------------


def plant_duplicate(instance: str, shared_uuid: str) -> str:
    """A second ticket carrying the breadcrumb, as a create repeated after a lost answer makes."""
    adapter = FakeAdapter(instance)
    return adapter.create(TicketDraft(shared_uuid=shared_uuid, subject="Printer on fire")).local_id


def test_a_planted_duplicate_copy_is_reported_for_a_person_and_the_linked_copy_kept(make_bridge):
    bridge, _, copy, shared_uuid = shared(make_bridge)
    duplicate = plant_duplicate("B", shared_uuid)

    doctor = doctor_of(bridge)
    [finding] = doctor.examine()

    assert kinds([finding]) == [("duplicate-copy", "B", (copy, duplicate))]
    assert finding.shared_uuid == shared_uuid
    assert not finding.repairable  # the store links the right copy already
    assert finding.needs_a_person
    assert f"delete B:{duplicate}" in finding.detail
    assert doctor.repair([finding]) == []
    assert_writes_nothing(bridge)
    assert len(FakeTracker.named("B").tickets()) == 2  # doctor never deletes, sync never adds


def test_a_duplicate_whose_link_the_store_lost_is_repaired_by_linking_the_lowest_id(
    make_bridge,
):
    bridge, _, copy, shared_uuid = shared(make_bridge)
    duplicate = plant_duplicate("B", shared_uuid)
    with bridge.store.transaction() as tx:
        tx.drop_link(shared_uuid, "B")

    doctor = doctor_of(bridge)
    [finding] = doctor.examine()
    assert kinds([finding]) == [("duplicate-copy", "B", (copy, duplicate))]
    assert finding.repairable

    [repaired] = doctor.repair([finding])

    assert bridge.store.read().link(shared_uuid, "B").local_id == copy
    assert f"linked B:{copy}" in repaired.detail
    assert f"delete B:{duplicate}" in repaired.detail
    [again] = doctor.examine()
    assert again.kind == "duplicate-copy" and not again.repairable
    assert len(doctor_journal(bridge)) == 1
    FakeTracker.named("A").add_comment("1", "still smoking", author=ALICE)
    bridge.run()
    assert len(FakeTracker.named("B").tickets()) == 2
    assert [c.body for c in FakeTracker.named("B").ticket(copy).comments][-1] == "still smoking"
    assert_writes_nothing(bridge)


def test_a_copy_whose_link_the_store_lost_is_linked_again(make_bridge):
    bridge, ticket, copy, shared_uuid = shared(make_bridge)
    with bridge.store.transaction() as tx:
        tx.drop_link(shared_uuid, "B")

    doctor = doctor_of(bridge)
    findings = doctor.examine()
    assert kinds(findings) == [("unlinked-copy", "B", (copy,))]
    doctor.repair(findings)

    assert bridge.store.read().link(shared_uuid, "B").local_id == copy
    assert doctor.examine() == []
    FakeTracker.named("A").set_subject(ticket, "Printer still on fire")
    bridge.run()
    [only] = FakeTracker.named("B").tickets()
    assert only.subject == "Printer still on fire"


# --- links --------------------------------------------------------------------------------------


def test_a_planted_orphan_link_is_found_and_orphaned_and_the_other_copy_kept(make_bridge):
    bridge, ticket, copy, shared_uuid = shared(make_bridge)
    FakeTracker.named("B").delete_ticket(copy)

    doctor = doctor_of(bridge)
    findings = doctor.examine()
    assert kinds(findings) == [("orphan-link", "B", (copy,))]
    assert [finding.repairable for finding in findings] == [True]

    doctor.repair(findings)

    read = bridge.store.read()
    assert read.link(shared_uuid, "B").state == "orphaned"
    assert read.agreement_ticket_state("ab", shared_uuid) == "orphaned"
    [line] = doctor_journal(bridge)
    assert f"ticket {copy} was deleted in B" in line
    assert doctor.examine() == []
    FakeTracker.named("A").set_subject(ticket, "anyone?")
    assert_writes_nothing(bridge)
    assert FakeTracker.named("B").tickets() == []  # deleted stays deleted, nothing recreated


def test_a_pending_link_whose_create_succeeded_is_linked(make_bridge):
    bridge, _, copy, shared_uuid = shared(make_bridge)
    with bridge.store.transaction() as tx:
        tx.put_link(shared_uuid, "B", None, "pending")

    doctor = doctor_of(bridge)
    findings = doctor.examine()
    assert kinds(findings) == [("pending-link", "B", ())]

    [repaired] = doctor.repair(findings)

    assert bridge.store.read().link(shared_uuid, "B").local_id == copy
    assert f"linked B:{copy}" in repaired.detail
    assert doctor.examine() == []
    assert_writes_nothing(bridge)
    assert len(FakeTracker.named("B").tickets()) == 1


def test_a_pending_link_whose_create_never_happened_is_dropped_and_sync_creates_the_copy(
    make_bridge,
):
    bridge, ticket, copy, shared_uuid = shared(make_bridge)
    b = FakeTracker.named("B")
    b.delete_ticket(copy)
    with bridge.store.transaction() as tx:
        tx.put_link(shared_uuid, "B", None, "pending")

    doctor = doctor_of(bridge)
    findings = doctor.examine()
    assert kinds(findings) == [("pending-link", "B", ())]
    [repaired] = doctor.repair(findings)

    assert "the create never happened" in repaired.detail
    assert bridge.store.read().link(shared_uuid, "B") is None
    assert doctor.examine() == []
    FakeTracker.named("A").set_subject(ticket, "Printer on fire!")
    bridge.run()
    [again] = b.tickets()
    assert (again.subject, again.shared_uuid) == ("Printer on fire!", shared_uuid)
    assert_writes_nothing(bridge)


def test_a_link_to_an_id_the_tracker_gave_another_ticket_is_orphaned(make_bridge):
    bridge, _, copy, shared_uuid = shared(make_bridge)
    b = FakeTracker.named("B")
    b.delete_ticket(copy)
    # The tracker hands the deleted copy's id out again, to a ticket another bridge shared.
    reused = FakeAdapter("B").create(TicketDraft(shared_uuid="f" * 32, subject="Other")).local_id
    with bridge.store.transaction() as tx:
        tx.put_link(shared_uuid, "B", reused, "linked")

    doctor = doctor_of(bridge)
    findings = doctor.examine()
    assert kinds(findings) == [("reused-id", "B", (reused,))]

    doctor.repair(findings)

    read = bridge.store.read()
    assert read.link(shared_uuid, "B").local_id is None
    assert read.agreement_ticket_state("ab", shared_uuid) == "orphaned"
    assert doctor.examine() == []
    assert_writes_nothing(bridge)
    assert [t.subject for t in b.tickets()] == ["Other"]


# --- comments -----------------------------------------------------------------------------------


def test_a_comment_on_both_copies_whose_link_was_lost_is_linked_again(make_bridge):
    bridge, ticket, copy, shared_uuid = shared(make_bridge)
    links = bridge.store.read().comment_links(shared_uuid)
    [copied_to_b] = [uuid for uuid in links["B"] if uuid in links["A"]][:1]
    with bridge.store.transaction() as tx:
        tx.drop_comment_link(copied_to_b, "B")

    doctor = doctor_of(bridge)
    [finding] = doctor.examine()
    assert (finding.kind, finding.instance, finding.ticket_id) == ("unlinked-comment", "B", copy)
    assert finding.comment_uuid == copied_to_b

    doctor.repair([finding])

    assert bridge.store.read().comment_links(shared_uuid) == links
    assert doctor.examine() == []
    FakeTracker.named("A").add_comment(ticket, "and now?", author=ALICE)
    [summary] = bridge.run()
    assert summary.writes == {"comment": 1}  # the new one, nothing again
    assert_writes_nothing(bridge)


def test_comments_unlinked_on_both_sides_are_matched_by_breadcrumb_and_minted_uuid(make_bridge):
    """Each copy holds one comment written by a person there (its uuid minted from that
    instance's sharing URL) and one the bridge copied (carrying that uuid as breadcrumb)."""
    bridge, _, _, shared_uuid = shared(make_bridge)
    links = bridge.store.read().comment_links(shared_uuid)
    with bridge.store.transaction() as tx:
        for instance, linked in links.items():
            for comment_uuid in linked:
                tx.drop_comment_link(comment_uuid, instance)

    doctor = doctor_of(bridge)
    findings = doctor.examine()
    assert [finding.kind for finding in findings] == ["unlinked-comment"] * 4

    doctor.repair(findings)

    assert bridge.store.read().comment_links(shared_uuid) == links
    assert doctor.examine() == []
    assert_writes_nothing(bridge)


def test_a_comment_link_to_a_comment_no_longer_there_is_moved_to_the_one_carrying_it(
    make_bridge,
):
    """Without the repair a sync takes the comment carrying the breadcrumb for a duplicate of a
    comment that is gone, and leaves it out (an edit to it would never travel)."""
    bridge, _, copy, shared_uuid = shared(make_bridge)
    links = bridge.store.read().comment_links(shared_uuid)
    [arrived] = [uuid for uuid in links["B"] if uuid in links["A"]][:1]
    with bridge.store.transaction() as tx:
        tx.put_comment_link(arrived, "B", shared_uuid, "c999")

    doctor = doctor_of(bridge)
    [finding] = doctor.examine()
    assert (finding.kind, finding.local_ids) == ("unlinked-comment", (links["B"][arrived],))
    assert finding.ticket_id == copy
    assert "links it to comment c999, which is no longer there" in finding.detail

    doctor.repair([finding])

    assert bridge.store.read().comment_links(shared_uuid) == links
    assert doctor.examine() == []
    assert_writes_nothing(bridge)


def test_a_duplicate_comment_is_reported_and_left_for_a_person(make_bridge):
    bridge, _, copy, shared_uuid = shared(make_bridge)
    b = FakeTracker.named("B")
    first = b.ticket(copy).comments[0]
    duplicate = FakeAdapter("B").add_comment(
        copy, CommentDraft(shared_uuid=first.shared_uuid, body=first.body, public=True)
    )

    doctor = doctor_of(bridge)
    [finding] = doctor.examine()

    assert (finding.kind, finding.local_ids) == ("duplicate-comment", (first.local_id, duplicate))
    assert (finding.shared_uuid, finding.comment_uuid) == (shared_uuid, first.shared_uuid)
    assert not finding.repairable and finding.needs_a_person
    assert doctor.repair([finding]) == []
    assert_writes_nothing(bridge)
    assert [c.body for c in FakeTracker.named("A").ticket("1").comments].count(first.body) == 1


def test_a_tracker_that_cannot_be_read_is_an_error_not_an_empty_tracker(make_bridge):
    bridge, _, _, shared_uuid = shared(make_bridge)
    b = FakeTracker.named("B")
    plant_duplicate("B", shared_uuid)
    b.fail_next("changed_since", TransientError("B answered 503"))
    b.fail_next("get", TransientError("B answered 503"), times=None)

    doctor = doctor_of(bridge)
    findings = doctor.examine()

    assert findings == []  # nothing is concluded about B from a read that failed
    assert doctor.errors == [
        "B: reading every ticket failed: B answered 503; its copies and comments were not examined"
    ]


# --- the command ----------------------------------------------------------------------------------

BRIDGE = """\
plugins:
  - nhd_bridge.testing.fake
state:
  url: sqlite:///state.db
instances:
  A: {kind: fake}
  B: {kind: fake}
agreements:
  ab: {sender: A, receiver: B, allows_public_comments: true}
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.delenv("NHD_BRIDGE_CONFIG", raising=False)
    monkeypatch.delenv("NHD_BRIDGE_PLUGINS", raising=False)
    config = tmp_path / "bridge.yaml"
    config.write_text(BRIDGE, encoding="utf-8")

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(main, ["-c", str(config), *args])

    return invoke


def test_doctor_command_finds_a_planted_duplicate_and_orphan_repairs_and_then_is_clean(cli):
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    a.create_ticket("Printer on fire")
    a.create_ticket("VPN drops")
    assert cli("sync").exit_code == 0
    fire, vpn = b.tickets()
    duplicate = plant_duplicate("B", fire.shared_uuid)
    b.delete_ticket(vpn.local_id)

    found = cli("doctor")

    assert found.exit_code == 1, found.output
    lines = found.stdout.splitlines()
    assert lines[0].startswith(f"orphan-link B:{vpn.local_id} {vpn.shared_uuid[:12]} — ")
    assert lines[1].startswith(
        f"duplicate-copy B:{fire.local_id}, {duplicate} {fire.shared_uuid[:12]} — "
    )
    assert lines[2] == (
        "2 findings, 0 repaired, 1 repairable with --repair, "
        "1 with duplicates for a person to delete in a tracker"
    )

    repaired = cli("doctor", "--repair", "--agreement", "ab")

    assert repaired.exit_code == 1  # the duplicate stays until a person deletes it
    assert repaired.stdout.splitlines()[0].startswith(
        f"orphan-link B:{vpn.local_id} {vpn.shared_uuid[:12]} — repaired: ticket {vpn.local_id} "
        "was deleted in B"
    )
    assert repaired.stdout.splitlines()[-1] == (
        "2 findings, 1 repaired, 1 with duplicates for a person to delete in a tracker"
    )
    document = json.loads(cli("doctor", "--json").stdout)
    assert [(f["kind"], f["repairable"], f["repaired"]) for f in document["findings"]] == [
        ("duplicate-copy", False, False)
    ]
    b.delete_ticket(duplicate)  # what the line told the person to do
    clean = cli("doctor")
    assert (clean.exit_code, clean.stdout) == (
        0,
        "no findings: the state store and the trackers agree\n",
    )
    synced = cli("sync")
    assert synced.exit_code == 0 and "writes 0" in synced.stdout
    assert [t.local_id for t in b.tickets()] == [fire.local_id]


def test_doctor_command_refuses_an_unknown_agreement(cli):
    result = cli("doctor", "--agreement", "nope")

    assert result.exit_code == 2
    assert "unknown agreement 'nope'" in result.stderr


# --- on the embedded local tracker ----------------------------------------------------------------


def test_doctor_on_local_trackers_finds_and_repairs_an_orphan_a_pending_link_and_a_comment(
    make_bridge, tmp_path
):
    instances = {name: {"kind": "local", "path": str(tmp_path / f"{name}.db")} for name in "AB"}
    bridge = make_bridge(FULL, instances=instances)
    a = LocalTracker(LocalConfig(path=tmp_path / "A.db"))
    b = LocalTracker(LocalConfig(path=tmp_path / "B.db"))
    try:
        kept = a.create_ticket("Printer on fire").local_id
        a.add_comment(kept, "It smokes")
        gone = a.create_ticket("VPN drops").local_id
        bridge.run()
        read = bridge.store.read()
        kept_uuid = read.link_for_local("A", kept).shared_uuid
        gone_uuid = read.link_for_local("A", gone).shared_uuid
        kept_copy = read.link(kept_uuid, "B").local_id
        [comment_uuid] = read.comment_links(kept_uuid)["B"]
        b.delete_ticket(read.link(gone_uuid, "B").local_id)
        with bridge.store.transaction() as tx:
            tx.put_link(kept_uuid, "B", None, "pending")
            tx.drop_comment_link(comment_uuid, "B")

        doctor = doctor_of(bridge)
        findings = doctor.examine()
        assert [(f.kind, f.shared_uuid) for f in findings] == [
            ("pending-link", kept_uuid),
            ("orphan-link", gone_uuid),
        ]
        doctor.repair(findings)
        # The comment is checked once its ticket is linked again.
        [finding] = doctor.examine()
        assert (finding.kind, finding.ticket_id) == ("unlinked-comment", kept_copy)
        doctor.repair([finding])

        assert doctor.examine() == []
        assert len(doctor_journal(bridge)) == 3
        assert_writes_nothing(bridge)
        assert [t.subject for t in b.list_tickets()] == ["Printer on fire"]
    finally:
        a.close()
        b.close()


def test_after_a_lost_store_and_a_sync_doctor_agrees_then_finds_what_is_planted(
    make_bridge, tmp_path
):
    bridge, _, copy, shared_uuid = shared(make_bridge)
    other = FakeTracker.named("A").create_ticket("VPN drops")
    bridge.run_until_quiet()
    bridge.engine.close()
    bridge.store.close()
    for file in tmp_path.glob("state.db*"):
        file.unlink()
    bridge.restart()
    assert doctor_of(bridge).examine() == []  # nothing is known, nothing contradicts the trackers
    bridge.run()  # adopts every copy

    doctor = doctor_of(bridge)
    assert doctor.examine() == []
    b = FakeTracker.named("B")
    duplicate = plant_duplicate("B", shared_uuid)
    other_copy = (
        bridge.store.read()
        .link(bridge.store.read().link_for_local("A", other).shared_uuid, "B")
        .local_id
    )
    b.delete_ticket(other_copy)

    assert kinds(doctor.examine()) == [
        ("orphan-link", "B", (other_copy,)),
        ("duplicate-copy", "B", (copy, duplicate)),
    ]
