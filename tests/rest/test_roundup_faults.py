"""The ``roundup`` profile against a real Roundup with lost answers: nothing written twice.

Roundup's comment is two writes: ``POST data/msg`` (the message, carrying the breadcrumb), then a
``PATCH`` of the issue linking it. A lost answer to either, or a crash between them, must leave one
message, linked once.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from support.roundup import ADMIN_PASSWORD, ADMIN_USER, RoundupServer

from nhd_bridge.core.adapter import CommentDraft, TicketDraft
from nhd_bridge.testing import FaultProxy

from .conftest import roundup_adapter


@pytest.fixture
def proxy(roundup: RoundupServer) -> Iterator[FaultProxy]:
    with FaultProxy(roundup.rest_url) as running:
        yield running


def tracker(server: RoundupServer) -> httpx.Client:
    origin = server.web.split("/tracker")[0]
    return httpx.Client(
        base_url=server.rest_url,
        auth=(ADMIN_USER, ADMIN_PASSWORD),
        headers={"Origin": origin, "X-Requested-With": "test"},
        trust_env=False,
        timeout=10,
    )


def messages_with(server: RoundupServer, shared_uuid: str) -> list[str]:
    with tracker(server) as client:
        listed = client.get("data/msg", params={"nhd_uuid:": shared_uuid, "@fields": "id"})
    return [item["id"] for item in listed.raise_for_status().json()["data"]["collection"]]


def linked_messages(server: RoundupServer, issue_id: str) -> list[str]:
    with tracker(server) as client:
        data = client.get(f"data/issue/{issue_id}").raise_for_status().json()
    return [item["id"] for item in data["data"]["attributes"]["messages"]]


def draft(text: str = "From the other side") -> CommentDraft:
    return CommentDraft(shared_uuid=str(uuid.uuid4()), body=text, public=True)


@pytest.mark.parametrize(
    ("fault", "extra"), [("lost_answer", {}), ("gateway_after", {"status": 504})]
)
def test_a_message_whose_answer_was_lost_is_written_and_linked_once(
    roundup: RoundupServer, proxy: FaultProxy, fault: str, extra: dict[str, Any]
) -> None:
    issue_id = roundup.person().create_issue("Lost answers")
    rest = roundup_adapter(roundup, base_url=proxy.url)
    comment = draft()
    proxy.next(fault, method="POST", path_regex=r"/data/msg$", **extra)  # type: ignore[arg-type]
    comment_id = rest.add_comment(issue_id, comment)
    assert messages_with(roundup, comment.shared_uuid) == [comment_id]
    assert linked_messages(roundup, issue_id) == [comment_id]


def test_a_link_whose_answer_was_lost_links_the_message_once(
    roundup: RoundupServer, proxy: FaultProxy
) -> None:
    issue_id = roundup.person().create_issue("Lost link answer")
    rest = roundup_adapter(roundup, base_url=proxy.url)
    comment = draft()
    proxy.next("lost_answer", method="PATCH", path_regex=rf"/data/issue/{issue_id}$")
    comment_id = rest.add_comment(issue_id, comment)
    assert messages_with(roundup, comment.shared_uuid) == [comment_id]
    assert linked_messages(roundup, issue_id) == [comment_id]


def test_a_message_left_unlinked_by_a_crash_is_linked_not_written_again(
    roundup: RoundupServer,
) -> None:
    issue_id = roundup.person().create_issue("Crash between the two writes")
    comment = draft()
    with tracker(roundup) as client:  # what the killed run managed: the message, no link
        orphan = client.post(
            "data/msg",
            json={"content": comment.body, "author": ADMIN_USER, "nhd_uuid": comment.shared_uuid},
        )
    orphan_id = orphan.raise_for_status().json()["data"]["id"]
    rest = roundup_adapter(roundup)
    assert rest.add_comment(issue_id, comment) == orphan_id
    assert messages_with(roundup, comment.shared_uuid) == [orphan_id]
    assert linked_messages(roundup, issue_id) == [orphan_id]
    record = rest.get(issue_id)
    assert record is not None
    assert [(c.local_id, c.shared_uuid) for c in record.comments] == [
        (orphan_id, comment.shared_uuid)
    ]


def test_an_issue_whose_create_answer_was_lost_is_created_once(
    roundup: RoundupServer, proxy: FaultProxy
) -> None:
    rest = roundup_adapter(roundup, base_url=proxy.url)
    shared_uuid = str(uuid.uuid4())
    proxy.next("lost_answer", method="POST", path_regex=r"/data/issue$")
    record = rest.create(TicketDraft(shared_uuid=shared_uuid, subject="Made once"))
    issues = roundup.person().issues()
    assert [(i["id"], i["nhd_uuid"]) for i in issues] == [(record.local_id, shared_uuid)]
