"""The ``redmine`` profile against a real Redmine 5.0, with the network misbehaving.

Every test here reproduces a way the bridge lost or doubled data against a real Redmine (issue 8):
a lost answer to a note or a create, a 429 in the middle of a read, an issue updated while a read
pages, a person quoting a bridged note, a status set at creation, a description. A
:class:`~nhd_bridge.testing.faultproxy.FaultProxy` sits between the adapter and Redmine and loses
the answers the test chooses, after Redmine acted on the request.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from support.redmine import RedmineServer

from nhd_bridge.adapters.rest import RestAdapter, RestConfig
from nhd_bridge.core.adapter import CommentDraft, TicketDraft, TransientError
from nhd_bridge.testing.faultproxy import FaultProxy

NOTES_PUT = r"/issues/\d+\.json"


@pytest.fixture
def proxy(redmine: RedmineServer) -> Iterator[FaultProxy]:
    with FaultProxy(redmine.url) as running:
        yield running


def adapter(project: RedmineServer, base_url: str, **overrides: Any) -> RestAdapter:
    options = project.instance_config(
        base_url=base_url,
        retries={"attempts": 3, "backoff_seconds": 0.01, "timeout_seconds": 10},
    )
    options.pop("kind")
    for key, value in overrides.items():
        options[key] = {**options.get(key, {}), **value} if isinstance(value, dict) else value
    return RestAdapter("redmine", RestConfig.model_validate(options))


def journals_with(project: RedmineServer, issue_id: str, text: str) -> list[dict[str, Any]]:
    issue = project.api().get(f"issues/{issue_id}.json", params={"include": "journals"}).json()
    return [j for j in issue["issue"]["journals"] if text in (j.get("notes") or "")]


def issues_with_uuid(project: RedmineServer, shared_uuid: str) -> list[dict[str, Any]]:
    answer = project.api().get(
        "issues.json",
        params={
            "project_id": project.project,
            "status_id": "*",
            f"cf_{project.uuid_field_id}": shared_uuid,
        },
    )
    return answer.json()["issues"]


def new_issue(project: RedmineServer, subject: str, **fields: Any) -> str:
    answer = project.api().post(
        "issues.json",
        json={"issue": {"project_id": project.project, "subject": subject, **fields}},
    )
    answer.raise_for_status()
    return str(answer.json()["issue"]["id"])


def draft(text: str = "Hello from the other side") -> CommentDraft:
    return CommentDraft(shared_uuid=str(uuid.uuid4()), body=text, public=True)


# --- point 2: a write whose answer was lost is not written twice ------------------------------


@pytest.mark.parametrize(
    ("fault", "extra"),
    [("lost_answer", {}), ("gateway_after", {"status": 502}), ("gateway_after", {"status": 504})],
)
def test_a_note_whose_answer_was_lost_is_one_journal(
    redmine: RedmineServer,
    proxy: FaultProxy,
    fault: str,
    extra: dict[str, Any],
) -> None:
    issue_id = new_issue(redmine, "Lost answers")
    rest = adapter(redmine, proxy.url)
    comment = draft()
    proxy.next(fault, method="PUT", path_regex=NOTES_PUT, **extra)  # type: ignore[arg-type]
    comment_id = rest.add_comment(issue_id, comment)
    written = journals_with(redmine, issue_id, comment.shared_uuid)
    assert len(written) == 1, f"{len(written)} journals for one comment"
    assert str(written[0]["id"]) == comment_id
    assert proxy.stats.faults[fault] == 1


def test_a_note_still_on_its_way_when_the_client_gave_up_is_not_written_again(
    redmine: RedmineServer,
    proxy: FaultProxy,
) -> None:
    """The worst case: the client times out before Redmine even has the request. The look-up
    finds nothing yet, and writing again would make two: the adapter parks the work instead,
    and the engine's next read finds the breadcrumb (ADR 0004)."""
    issue_id = new_issue(redmine, "Slow answers")
    rest = adapter(redmine, proxy.url, retries={"timeout_seconds": 1.0})
    comment = draft()
    proxy.next("delay", method="PUT", path_regex=NOTES_PUT, delay_seconds=2.0)
    with pytest.raises(TransientError, match="nothing carries the breadcrumb"):
        rest.add_comment(issue_id, comment)
    time.sleep(1.5)  # the delayed PUT reaches Redmine after the client gave up
    written = journals_with(redmine, issue_id, comment.shared_uuid)
    assert len(written) == 1
    record = rest.get(issue_id)
    assert record is not None
    assert [c.local_id for c in record.comments if c.shared_uuid == comment.shared_uuid] == [
        str(written[0]["id"])
    ]


def test_a_lost_note_whose_lookup_fails_is_transient_and_not_written_again(
    redmine: RedmineServer,
    proxy: FaultProxy,
) -> None:
    issue_id = new_issue(redmine, "Lost answer, then no reads")
    rest = adapter(redmine, proxy.url)
    comment = draft()
    proxy.next("lost_answer", method="PUT", path_regex=NOTES_PUT)
    proxy.next("server_error_before", method="GET", status=500, times=3)
    with pytest.raises(TransientError, match="looking for the breadcrumb failed"):
        rest.add_comment(issue_id, comment)
    assert len(journals_with(redmine, issue_id, comment.shared_uuid)) == 1


def test_a_create_whose_answer_was_lost_is_one_issue(
    redmine: RedmineServer,
    proxy: FaultProxy,
) -> None:
    rest = adapter(redmine, proxy.url)
    shared_uuid = str(uuid.uuid4())
    proxy.next("lost_answer", method="POST", path_regex=r"/issues\.json")
    record = rest.create(TicketDraft(shared_uuid=shared_uuid, subject="Created once"))
    found = issues_with_uuid(redmine, shared_uuid)
    assert [str(issue["id"]) for issue in found] == [record.local_id]
    assert record.shared_uuid == shared_uuid


def test_a_create_that_failed_with_a_500_is_parked_and_written_once_later(
    redmine: RedmineServer,
    proxy: FaultProxy,
) -> None:
    rest = adapter(redmine, proxy.url)
    ticket = TicketDraft(shared_uuid=str(uuid.uuid4()), subject="Created on the next pass")
    proxy.next("server_error_before", method="POST", path_regex=r"/issues\.json", status=500)
    with pytest.raises(TransientError):
        rest.create(ticket)
    assert issues_with_uuid(redmine, ticket.shared_uuid) == []
    # The engine's next pass: the pending link's look-up finds nothing, the create is redone.
    assert rest.find_by_shared_uuid(ticket.shared_uuid) is None
    record = rest.create(ticket)
    assert [str(i["id"]) for i in issues_with_uuid(redmine, ticket.shared_uuid)] == [
        record.local_id
    ]


# --- point 7: the tracker's answer is the truth -----------------------------------------------


def test_a_status_set_at_creation_is_what_redmine_holds(
    redmine: RedmineServer,
) -> None:
    rest = adapter(redmine, redmine.url)
    record = rest.create(
        TicketDraft(shared_uuid=str(uuid.uuid4()), subject="Born busy", status="In Progress")
    )
    held = redmine.api().get(f"issues/{record.local_id}.json").json()["issue"]
    assert held["status"]["name"] == "In Progress"
    assert record.status == "In Progress"


def test_a_status_that_could_not_be_set_after_the_create_is_reported_as_it_is(
    redmine: RedmineServer, proxy: FaultProxy
) -> None:
    rest = adapter(redmine, proxy.url)
    proxy.next("server_error_before", method="PUT", status=503, times=3)
    record = rest.create(
        TicketDraft(shared_uuid=str(uuid.uuid4()), subject="Born idle", status="In Progress")
    )
    held = redmine.api().get(f"issues/{record.local_id}.json").json()["issue"]
    assert record.status == held["status"]["name"] == "New"


# --- point 8: a quoted comment is a new comment -----------------------------------------------


def test_a_quoted_reply_is_a_new_comment_and_the_original_stays(
    redmine: RedmineServer,
) -> None:
    issue_id = new_issue(redmine, "Quoting")
    rest = adapter(redmine, redmine.url)
    original = draft("The printer is on fire.\nPlease advise.")
    original_id = rest.add_comment(issue_id, original)
    written = journals_with(redmine, issue_id, original.shared_uuid)[0]["notes"]
    # What Redmine's "Quote" button puts in the editor: every line prefixed with "> ".
    quoted = "\n".join(f"> {line}" if line else ">" for line in written.splitlines())
    reply = f"Redmine Admin wrote:\n{quoted}\n\nHave you tried water?"
    redmine.api().put(
        f"issues/{issue_id}.json", json={"issue": {"notes": reply}}
    ).raise_for_status()

    record = rest.get(issue_id)
    assert record is not None
    by_id = {c.local_id: c for c in record.comments}
    assert by_id[original_id].shared_uuid == original.shared_uuid
    assert by_id[original_id].body == original.body
    replies = [c for c in record.comments if "Have you tried water?" in c.body]
    assert len(replies) == 1 and replies[0].local_id != original_id
    assert replies[0].shared_uuid is None, "the reply was taken for the quoted comment"


# --- point 10: descriptions travel --------------------------------------------------------------


def test_the_description_is_read_as_the_first_comment(
    redmine: RedmineServer,
) -> None:
    issue_id = new_issue(redmine, "Described", description="It beeps twice.")
    rest = adapter(redmine, redmine.url)
    rest.add_comment(issue_id, draft("A note"))
    record = rest.get(issue_id)
    assert record is not None
    first = record.comments[0]
    assert (first.local_id, first.body, first.public) == (
        f"description-{issue_id}",
        "It beeps twice.",
        True,
    )
    assert [c.body for c in record.comments[1:]] == ["A note"]
    listed = [t for page in rest.changed_since(None) for t in page.tickets]
    assert next(c.body for c in listed[0].comments) == "It beeps twice."


# --- point 5: a read survives a page that moves ----------------------------------------------


def test_an_issue_updated_between_two_pages_moves_no_other_issue_out_of_the_read(
    redmine: RedmineServer,
) -> None:
    ids = [new_issue(redmine, f"Issue {n}") for n in range(7)]
    rest = adapter(
        redmine,
        redmine.url,
        operations={"list_changed": {"pagination": {"page_size": 2}}},
    )
    seen: list[str] = []
    for number, page in enumerate(rest.changed_since(None)):
        seen += [t.local_id for t in page.tickets]
        if number == 0:
            # Someone updates the first issue while the bridge reads the second page.
            redmine.api().put(
                f"issues/{ids[0]}.json", json={"issue": {"subject": "Moved"}}
            ).raise_for_status()
    assert sorted(seen, key=int) == ids and len(seen) == len(set(seen))


def test_a_read_interrupted_after_a_page_resumes_there_and_misses_nothing(
    redmine: RedmineServer,
) -> None:
    ids = [new_issue(redmine, f"Issue {n}") for n in range(5)]
    rest = adapter(
        redmine,
        redmine.url,
        operations={"list_changed": {"pagination": {"page_size": 2}}},
    )
    pages = rest.changed_since(None)
    first = next(pages)
    pages.close()  # the run stopped after committing the first page's cursor
    redmine.api().put(
        f"issues/{ids[0]}.json", json={"issue": {"notes": "while stopped"}}
    ).raise_for_status()
    rest = adapter(
        redmine,
        redmine.url,
        operations={"list_changed": {"pagination": {"page_size": 2}}},
    )
    cursor = first.cursor
    rest_ids: list[str] = []
    for page in rest.changed_since(cursor):
        rest_ids += [t.local_id for t in page.tickets]
        cursor = page.cursor
    assert [t.local_id for t in first.tickets] == ids[:2]
    assert rest_ids == ids[2:]
    # The next read brings the issue changed behind the interrupted read's position.
    again = [t.local_id for page in rest.changed_since(cursor) for t in page.tickets]
    assert again == [ids[0]]


# --- point 6: one 429 does not throw a whole read away -----------------------------------------


def test_a_429_inside_a_read_is_waited_out_and_the_read_completes(
    redmine: RedmineServer,
    proxy: FaultProxy,
) -> None:
    ids = [new_issue(redmine, f"Issue {n}") for n in range(5)]
    rest = adapter(
        redmine,
        proxy.url,
        operations={"list_changed": {"pagination": {"page_size": 2}}},
    )
    proxy.next("rate_limit", method="GET", path_regex=r"issue_id=", retry_after=1)
    proxy.next("rate_limit", method="GET", path_regex=r"/issues/\d+\.json", retry_after=1)
    seen = [t.local_id for page in rest.changed_since(None) for t in page.tickets]
    assert seen == ids
    assert proxy.stats.faults["rate_limit"] == 2


def test_an_idle_poll_costs_one_request(
    redmine: RedmineServer,
    proxy: FaultProxy,
) -> None:
    for n in range(8):  # spread over seconds: the ">=" filter's extra second holds some
        new_issue(redmine, f"Issue {n}")
        time.sleep(0.6)
    # Small pages: an idle poll that listed the last changes again would take several.
    rest = adapter(
        redmine, proxy.url, operations={"list_changed": {"pagination": {"page_size": 2}}}
    )
    time.sleep(4)  # past the newest update's second, the lookback and the filter's slack
    cursor = None
    for page in rest.changed_since(None):
        cursor = page.cursor
    for _ in range(2):
        before = proxy.stats.requests
        idle = []
        for page in rest.changed_since(cursor):
            idle += page.tickets
            cursor = page.cursor
        assert idle == []
        assert proxy.stats.requests - before == 1


def test_an_issue_changed_in_the_second_it_was_read_is_read_again(
    redmine: RedmineServer,
) -> None:
    issue_id = new_issue(redmine, "Busy second")
    rest = adapter(redmine, redmine.url)
    cursor = None
    for page in rest.changed_since(None):
        cursor = page.cursor
    redmine.api().put(
        f"issues/{issue_id}.json", json={"issue": {"notes": "right after"}}
    ).raise_for_status()
    again = [t for page in rest.changed_since(cursor) for t in page.tickets]
    assert [c.body for t in again for c in t.comments] == ["right after"]
