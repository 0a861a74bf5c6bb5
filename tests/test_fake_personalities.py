"""Each personality switch of the fake tracker, and planned faults, do what real trackers do.

The first part pins every switch on the fake; the second pins the presets against a real tracker
where one runs here (Roundup always; Redmine when its harness is present, see the report).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from support.roundup import ADMIN_PASSWORD, ADMIN_USER, RoundupServer, RoundupTemplate

from nhd_bridge import NotSupported, PermanentError, TransientError
from nhd_bridge.core.adapter import CommentDraft, TicketChanges, TicketDraft
from nhd_bridge.testing.fake import (
    FakeAdapter,
    FakeConfig,
    FakeTracker,
    FaultPlan,
    Personality,
    SimulatedCrash,
)
from nhd_bridge.testing.personalities import (
    JIRA_LIKE,
    JIRA_WORKFLOW,
    PRESETS,
    REDMINE_LIKE,
    ROUNDUP_LIKE,
    RT_LIKE,
)

STATUSES = ["open", "pending", "solved", "closed"]


def tracker_with(personality: Personality, **config: object) -> tuple[FakeTracker, FakeAdapter]:
    tracker = FakeTracker.named("T")
    tracker.personality = personality
    return tracker, FakeAdapter("T", FakeConfig(statuses=STATUSES, **config))  # type: ignore[arg-type]


def comment(uuid: str = "u-1", public: bool = True) -> CommentDraft:
    return CommentDraft(shared_uuid=uuid, body="Printer smokes", public=public)


def draft(status: str | None = "solved") -> TicketDraft:
    return TicketDraft(
        shared_uuid="t-1",
        subject="Printer on fire",
        status=status,
        requested_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


# --- lost answers and non-idempotent comment writes ---------------------------------------------


def test_a_lost_answer_leaves_the_comment_written_and_the_caller_with_a_transient_error():
    tracker, adapter = tracker_with(Personality())
    ticket = tracker.create_ticket("Printer on fire")
    tracker.plan_faults(FaultPlan(writes={1: "lost_answer"}))
    with pytest.raises(TransientError, match="no answer"):
        adapter.add_comment(ticket, comment())
    assert [c.shared_uuid for c in tracker.ticket(ticket).comments] == ["u-1"]


def test_comment_writes_are_not_idempotent_unless_switched_so():
    tracker, adapter = tracker_with(Personality())
    ticket = tracker.create_ticket("Printer on fire")
    adapter.add_comment(ticket, comment())
    adapter.add_comment(ticket, comment())
    assert len(tracker.ticket(ticket).comments) == 2

    tracker, adapter = tracker_with(Personality(idempotent_comment_writes=True))
    ticket = tracker.create_ticket("Printer on fire")
    first = adapter.add_comment(ticket, comment())
    assert adapter.add_comment(ticket, comment()) == first
    assert len(tracker.ticket(ticket).comments) == 1


def test_a_blindly_retrying_adapter_doubles_a_comment_whose_answer_was_lost():
    tracker, adapter = tracker_with(Personality(blind_retries=1))
    ticket = tracker.create_ticket("Printer on fire")
    tracker.plan_faults(FaultPlan(writes={1: "lost_answer"}))
    adapter.add_comment(ticket, comment())  # no error: the retry "succeeded"
    assert [c.shared_uuid for c in tracker.ticket(ticket).comments] == ["u-1", "u-1"]


def test_a_blind_retry_absorbs_a_5xx_that_came_before_the_write():
    tracker, adapter = tracker_with(Personality(blind_retries=1))
    ticket = tracker.create_ticket("Printer on fire")
    tracker.plan_faults(FaultPlan(writes={1: "server_error"}))
    adapter.add_comment(ticket, comment())
    assert len(tracker.ticket(ticket).comments) == 1


# --- two-step writes ----------------------------------------------------------------------------


def test_a_crash_between_two_step_comment_writes_leaves_an_unlinked_message_with_the_breadcrumb():
    tracker, adapter = tracker_with(Personality(two_step_comments=True))
    ticket = tracker.create_ticket("Printer on fire")
    tracker.plan_faults(FaultPlan(writes={1: "crash_after"}))
    with pytest.raises(SimulatedCrash):
        adapter.add_comment(ticket, comment())
    assert tracker.ticket(ticket).comments == []
    [(on, message)] = tracker.unlinked_comments()
    assert (on, message.shared_uuid) == (ticket, "u-1")
    # The tracker reuses nothing; the adapter's next attempt finds the message by its
    # breadcrumb and links it instead of writing a second one (as the REST adapter over Roundup).
    adapter.add_comment(ticket, comment())
    assert [c.local_id for c in tracker.ticket(ticket).comments] == [message.local_id]
    assert tracker.unlinked_comments() == []


def test_a_lost_answer_to_the_link_step_leaves_the_comment_linked():
    tracker, adapter = tracker_with(Personality(two_step_comments=True))
    ticket = tracker.create_ticket("Printer on fire")
    tracker.plan_faults(FaultPlan(writes={2: "lost_answer"}))
    with pytest.raises(TransientError):
        adapter.add_comment(ticket, comment())
    assert [c.shared_uuid for c in tracker.ticket(ticket).comments] == ["u-1"]
    assert tracker.unlinked_comments() == []


# --- ids, pages, create, capabilities -----------------------------------------------------------


def test_the_id_of_a_deleted_newest_ticket_is_handed_out_again_only_when_switched_on():
    for personality, expected in ((Personality(reuses_ids=True), "2"), (Personality(), "3")):
        FakeTracker.reset_all()
        tracker, adapter = tracker_with(personality)
        tracker.create_ticket("first")
        newest = tracker.create_ticket("second")
        tracker.delete_ticket(newest)
        assert adapter.create(draft()).local_id == expected


def read_all(adapter: FakeAdapter) -> list[str]:
    return [t.subject for page in adapter.changed_since(None) for t in page.tickets]


def test_offset_pages_by_update_lose_a_ticket_when_one_is_changed_during_the_read():
    tracker, adapter = tracker_with(Personality(offset_pages_by_update=True), page_size=2)
    ids = [tracker.create_ticket(f"t{n}") for n in range(1, 6)]
    tracker.during_next_read(lambda: tracker.add_comment(ids[0], "meanwhile"))
    seen = read_all(adapter)
    assert "t3" not in seen  # shifted into the page already read, and never listed
    assert seen == ["t1", "t2", "t4", "t5", "t1"]


def test_keyset_pages_see_every_ticket_when_one_is_changed_during_the_read():
    tracker, adapter = tracker_with(Personality(), page_size=2)
    ids = [tracker.create_ticket(f"t{n}") for n in range(1, 6)]
    tracker.during_next_read(lambda: tracker.add_comment(ids[0], "meanwhile"))
    assert read_all(adapter) == ["t1", "t2", "t3", "t4", "t5", "t1"]


def test_a_status_ignored_on_create_leaves_the_first_status():
    _, adapter = tracker_with(Personality(ignored_on_create=frozenset({"status"})))
    assert adapter.create(draft("solved")).status == "open"
    _, adapter = tracker_with(Personality())
    assert adapter.create(draft("solved")).status == "solved"


def test_without_private_comments_the_capability_says_so_and_nobody_can_write_one():
    tracker, adapter = tracker_with(Personality(private_comments=False))
    ticket = tracker.create_ticket("Printer on fire")
    assert adapter.capabilities.private_comments is False
    with pytest.raises(ValueError, match="no private comments"):
        tracker.add_comment(ticket, "internal", public=False)
    with pytest.raises(PermanentError, match="no private comments"):
        adapter.add_comment(ticket, comment(public=False))


def test_without_comment_edits_an_edit_is_not_supported():
    tracker, adapter = tracker_with(Personality(comment_edits=False))
    ticket = tracker.create_ticket("Printer on fire", comments=["hello"])
    assert adapter.capabilities.edit_comments is False
    with pytest.raises(NotSupported):
        adapter.edit_comment(ticket, tracker.ticket(ticket).comments[0].local_id, "changed")


def test_status_moves_only_through_transitions_one_write_per_hop():
    tracker, adapter = tracker_with(Personality(transitions=JIRA_WORKFLOW))
    ticket = tracker.create_ticket("Printer on fire", status="open")
    assert adapter.capabilities.transitions is True
    tracker.plan_faults(FaultPlan(writes={2: "server_error"}))  # the second hop fails
    with pytest.raises(TransientError):
        adapter.update(ticket, TicketChanges(status="closed"))
    assert tracker.ticket(ticket).status == "solved"  # half way, as a real workflow leaves it
    adapter.update(ticket, TicketChanges(status="closed"))
    assert tracker.ticket(ticket).status == "closed"
    tracker.personality = Personality(transitions={"closed": ()})
    with pytest.raises(PermanentError, match="no transition path"):
        adapter.update(ticket, TicketChanges(status="open"))


# --- planned faults -----------------------------------------------------------------------------


def test_a_429_carries_retry_after_and_any_call_can_be_hit():
    tracker, adapter = tracker_with(Personality())
    ticket = tracker.create_ticket("Printer on fire")
    tracker.plan_faults(FaultPlan(calls={2: "rate_limit"}, retry_after=7))
    adapter.get(ticket)
    with pytest.raises(TransientError) as caught:
        adapter.get(ticket)
    assert caught.value.retry_after == 7
    adapter.get(ticket)  # each planned fault fires once


def test_a_crash_before_a_create_creates_nothing_and_after_it_creates_the_ticket():
    tracker, adapter = tracker_with(Personality())
    tracker.plan_faults(FaultPlan(writes={1: "crash_before", 2: "crash_after"}))
    with pytest.raises(SimulatedCrash):
        adapter.create(draft())
    assert tracker.tickets() == []
    with pytest.raises(SimulatedCrash):
        adapter.create(draft())
    assert [t.shared_uuid for t in tracker.tickets()] == ["t-1"]


def test_a_fault_plan_refuses_what_cannot_happen():
    with pytest.raises(ValueError, match="positions start at 1"):
        FaultPlan(writes={0: "lost_answer"})
    with pytest.raises(ValueError, match="put lost answers and crashes in writes"):
        FaultPlan(calls={1: "crash_after"})
    with pytest.raises(ValueError, match="can ignore only"):
        Personality(ignored_on_create=frozenset({"subject"}))


def test_presets_carry_the_behaviours_their_trackers_showed():
    assert PRESETS == {
        "redmine": REDMINE_LIKE,
        "roundup": ROUNDUP_LIKE,
        "jira": JIRA_LIKE,
        "rt": RT_LIKE,
    }
    assert REDMINE_LIKE.ignored_on_create == {"status"} and REDMINE_LIKE.reuses_ids
    assert REDMINE_LIKE.offset_pages_by_update and REDMINE_LIKE.blind_retries
    assert ROUNDUP_LIKE.two_step_comments and not ROUNDUP_LIKE.private_comments
    assert JIRA_LIKE.transitions is not None and JIRA_LIKE.ignored_on_create == {"status"}
    assert not RT_LIKE.comment_edits and not RT_LIKE.ignored_on_create


# --- pins against a real Roundup ----------------------------------------------------------------


@pytest.fixture(scope="module")
def roundup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RoundupServer]:
    template = RoundupTemplate.build(tmp_path_factory.mktemp("roundup-template"))
    server = template.serve(tmp_path_factory.mktemp("roundup"))
    yield server
    server.stop(kill=True)


def roundup_client(server: RoundupServer) -> httpx.Client:
    return httpx.Client(
        base_url=server.rest_url,
        auth=(ADMIN_USER, ADMIN_PASSWORD),
        headers={"Origin": server.web.split("/tracker")[0], "X-Requested-With": "test"},
        trust_env=False,
        timeout=10,
    )


def test_roundup_comment_is_two_steps_and_a_message_left_unlinked_keeps_its_breadcrumb(roundup):
    person = roundup.person()
    issue = person.create_issue("Printer on fire")
    with roundup_client(roundup) as client:
        posted = client.post(
            "data/msg",
            json={
                "content": "half written",
                "author": ADMIN_USER,
                "date": ".",
                "nhd_uuid": "crumb-1",
            },
        ).raise_for_status()
        message = posted.json()["data"]["id"]
        found = client.get("data/msg", params={"nhd_uuid": "crumb-1"}).raise_for_status()
    assert person.issue(issue)["messages"] == []  # step two never happened
    assert [m["id"] for m in found.json()["data"]["collection"]] == [message]
    assert ROUNDUP_LIKE.two_step_comments


def test_roundup_appends_a_message_per_request_and_has_no_private_flag(roundup):
    person = roundup.person()
    issue = person.create_issue("Printer on fire")
    person.add_message(issue, "same words")
    person.add_message(issue, "same words")
    assert person.issue(issue)["messages"] == ["same words", "same words"]
    with roundup_client(roundup) as client:
        schema = client.get("data/msg/1").raise_for_status().json()["data"]["attributes"]
    assert not [name for name in schema if "private" in name or "visib" in name]
    assert not ROUNDUP_LIKE.idempotent_comment_writes and not ROUNDUP_LIKE.private_comments


def test_roundup_takes_the_status_given_on_create(roundup):
    person = roundup.person()
    issue = person.create_issue("Printer on fire", status="resolved")
    assert person.issue(issue)["status"] == "resolved"
    assert "status" not in ROUNDUP_LIKE.ignored_on_create


def test_roundup_does_not_hand_out_a_retired_newest_id_again(roundup, tmp_path: Path):
    person = roundup.person()
    first = person.create_issue("first")
    newest = person.create_issue("second")
    with roundup_client(roundup) as client:
        etag = client.get(f"data/issue/{newest}").raise_for_status().headers["ETag"]
        client.delete(f"data/issue/{newest}", headers={"If-Match": etag}).raise_for_status()
    again = person.create_issue("third")
    assert int(again) > int(newest) > int(first)
    assert not ROUNDUP_LIKE.reuses_ids


# --- pins against a real Redmine (the same scenario on the tracker and on the preset) -----------


def redmine_create(client: httpx.Client, project: str, subject: str, **fields: object) -> dict:
    answer = client.post(
        "issues.json", json={"issue": {"project_id": project, "subject": subject, **fields}}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["issue"]


def test_redmine_and_its_preset_ignore_the_status_given_on_create(redmine):
    with redmine.api() as client:
        made = redmine_create(client, redmine.project, "wants to start in progress", status_id=2)
    assert made["status"]["name"] == "New"  # the first status, whatever was asked

    _, adapter = tracker_with(REDMINE_LIKE)
    assert adapter.create(draft("solved")).status == STATUSES[0]


def test_redmine_and_its_preset_append_a_note_per_request(redmine):
    note = {"issue": {"notes": "The customer called back."}}
    with redmine.api() as client:
        made = redmine_create(client, redmine.project, "gets one note, sent twice")
        for _ in range(2):
            assert client.put(f"issues/{made['id']}.json", json=note).status_code == 204
        journals = client.get(f"issues/{made['id']}.json", params={"include": "journals"}).json()[
            "issue"
        ]["journals"]
    assert [j["notes"] for j in journals if j["notes"]] == ["The customer called back."] * 2

    tracker, adapter = tracker_with(REDMINE_LIKE)
    ticket = tracker.create_ticket("gets one note, sent twice")
    adapter.add_comment(ticket, comment())
    adapter.add_comment(ticket, comment())
    assert len(tracker.ticket(ticket).comments) == 2


def test_redmine_and_its_preset_lose_the_same_ticket_when_one_moves_during_a_paged_read(redmine):
    params = {"project_id": redmine.project, "status_id": "*", "sort": "updated_on,id", "limit": 2}
    with redmine.api() as client:
        made = [redmine_create(client, redmine.project, f"t{n}")["id"] for n in range(1, 6)]

        def page(offset: int) -> list[int]:
            answer = client.get("issues.json", params={**params, "offset": offset})
            return [item["id"] for item in answer.raise_for_status().json()["issues"]]

        first = page(0)
        client.put(f"issues/{made[0]}.json", json={"issue": {"notes": "moved"}}).raise_for_status()
        real = [f"t{made.index(i) + 1}" for i in first + page(2) + page(4) + page(6)]

    tracker, adapter = tracker_with(REDMINE_LIKE, page_size=2)
    ids = [tracker.create_ticket(f"t{n}") for n in range(1, 6)]
    tracker.during_next_read(lambda: tracker.add_comment(ids[0], "moved"))
    assert read_all(adapter) == real == ["t1", "t2", "t4", "t5", "t1"]
