"""Client-side conformance cases 47-56 of nhd-spec.md §8: what we send to a partner.

Every request is captured by an ``httpx.MockTransport``: the partner is a function here, so each
case states exactly which requests went out and with what.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from nhd_bridge.adapters.nhd import NhdAdapter, NhdConfig
from nhd_bridge.core.adapter import (
    AdapterContext,
    CommentDraft,
    PermanentError,
    TicketChanges,
    TicketDraft,
)
from nhd_bridge.core.model import Actor, Agreement, Comment, Ticket, nhd_uuid
from nhd_bridge.core.protocol.invites import new_invite
from nhd_bridge.core.protocol.sender import (
    AgreementNotAccepted,
    NHDSender,
    TooManyRedirects,
    URLPolicy,
    ticket_update,
)
from nhd_bridge.core.protocol.wire_store import WireStore
from nhd_bridge.core.state import StateStore
from nhd_bridge.core.state.schema import wire_agreements

from .conftest import AGREEMENT, KEY, OUR_URL, THEIR_URL, TICKET, hex40

HEX40 = re.compile(r"[0-9a-f]{40}")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} [+-]\d{4}")
PUBLIC_IP = "93.184.216.34"


class Partner:
    """A scripted partner: answers from ``replies`` in turn (the last one repeats)."""

    def __init__(self, *replies: httpx.Response | Callable[[httpx.Request], httpx.Response]):
        self.replies = list(replies) or [httpx.Response(200, json={})]
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        return reply(request) if callable(reply) else reply

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def body(self, index: int = -1) -> Any:
        return json.loads(self.requests[index].content)


def make_sender(partner: Partner, *extra_hosts: str, sleeps: list[float] | None = None):
    policy = URLPolicy.for_partner(THEIR_URL, extra_hosts, resolver=lambda host, port: [PUBLIC_IP])
    record = sleeps if sleeps is not None else []
    return NHDSender(policy, transport=partner.transport, sleep=record.append)


def accepted(**flags: Any) -> Agreement:
    return Agreement(
        uuid=AGREEMENT,
        name="Us Ltd",
        status="accepted",
        sender_url=OUR_URL,
        receiver_url=THEIR_URL,
        access_key=KEY,
        **flags,
    )


def full_ticket(**extra: Any) -> Ticket:
    fields: dict[str, Any] = {
        "uuid": TICKET,
        "subject": "Printer on fire",
        "requested_at": datetime(2010, 11, 24, 22, 13, 54, tzinfo=UTC),
        "status": "open",
        "requester": Actor(uuid="req-1", name="Rita"),
        "comments": [
            Comment(
                uuid="c-1",
                author=Actor(uuid="req-1", name="Rita"),
                body="It is on fire.",
                authored_at=datetime(2010, 11, 24, 22, 13, 54, tzinfo=UTC),
            )
        ],
    }
    return Ticket(**{**fields, **extra})


# --- an adapter bound to an accepted agreement we sent, for the cases the adapter drives ---------


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    yield store
    store.close()


def bound_adapter(state: StateStore, partner: Partner, *, status: str = "accepted") -> NhdAdapter:
    wire = WireStore(state)
    wire.create_outgoing_agreement(accepted(allows_public_comments=True))
    with state.engine.begin() as connection:  # as if the partner had answered
        connection.execute(
            update(wire_agreements).where(wire_agreements.c.uuid == AGREEMENT).values(status=status)
        )
    config = NhdConfig(
        agreement=AGREEMENT,
        partner_url=THEIR_URL,
        our_url=OUR_URL,
        allow_private_networks=True,
    )
    adapter = NhdAdapter("partner", config, transport=partner.transport, sleep=lambda _s: None)
    adapter.attach(AdapterContext("partner", "nhd-bridge://partner", state))
    return adapter


# --- 47 -----------------------------------------------------------------------------------------


def test_case_47_invite_posts_pending_agreement_with_token_and_version() -> None:
    partner = Partner(httpx.Response(201, json={}))
    invite = new_invite(name="Us Ltd", our_url=OUR_URL, partner_url=THEIR_URL)

    result = make_sender(partner).invite(THEIR_URL, invite)

    assert result.ok and result.status == 201
    [request] = partner.requests
    assert request.method == "POST"
    assert str(request.url) == f"{THEIR_URL}/agreements/{invite.uuid}"
    assert request.headers["X-Ticket-Sharing-Token"] == f"{invite.uuid}:{invite.access_key}"
    assert request.headers["X-Ticket-Sharing-Version"] == "1"
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.headers["Accept"] == "application/json"
    body = partner.body()
    assert body["status"] == "pending"
    assert HEX40.fullmatch(body["uuid"]) and HEX40.fullmatch(body["access_key"])
    assert body["uuid"] != body["access_key"]
    assert body["sender_url"] == OUR_URL and body["receiver_url"] == THEIR_URL
    assert body["allows_public_comments"] is True


# --- 48 -----------------------------------------------------------------------------------------


def test_case_48_uuid_of_local_ticket_1() -> None:
    assert (
        nhd_uuid("mycompany.net/sharing", "tickets", 1)
        == "ed46838bfb41461e4f3b16ba471162c8e2764260"
    )
    first, second = (new_invite(name="x", our_url=OUR_URL, partner_url=THEIR_URL) for _ in "ab")
    assert first.uuid != second.uuid and first.access_key != second.access_key


# --- 49 -----------------------------------------------------------------------------------------


def test_case_49_timestamps_are_serialised_with_numeric_offset() -> None:
    partner = Partner(httpx.Response(201, json={}))

    make_sender(partner).share_ticket(THEIR_URL, accepted(), full_ticket())

    body = partner.body()
    assert body["requested_at"] == "2010-11-24 22:13:54 +0000"
    assert TIMESTAMP.fullmatch(body["comments"][0]["authored_at"])


# --- 50 -----------------------------------------------------------------------------------------


def test_case_50_redirect_resends_method_body_and_headers_to_location() -> None:
    moved = "https://new.them.example/sharing/agreements/" + AGREEMENT
    partner = Partner(httpx.Response(302, headers={"Location": moved}), httpx.Response(200))

    result = make_sender(partner, "new.them.example").accept(THEIR_URL, accepted())

    assert result.ok
    first, second = partner.requests
    assert str(second.url) == moved
    assert second.method == "PUT" == first.method
    assert second.content == first.content
    assert second.headers["X-Ticket-Sharing-Token"] == f"{AGREEMENT}:{KEY}"
    assert second.headers["X-Ticket-Sharing-Version"] == "1"


def test_case_50_three_redirects_in_a_row_stop_after_three_requests() -> None:
    loop = f"{THEIR_URL}/elsewhere"
    partner = Partner(httpx.Response(307, headers={"Location": loop}))

    with pytest.raises(TooManyRedirects) as raised:
        make_sender(partner).share_ticket(THEIR_URL, accepted(), full_ticket())

    assert len(partner.requests) == 3
    assert all(request.method == "POST" for request in partner.requests)
    assert KEY not in str(raised.value)


# --- 51 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [401, 403, 404, 405, 408, 410, 422, 500, 502, 503])
def test_case_51_refusals_are_structured_results_not_crashes(status: int) -> None:
    partner = Partner(httpx.Response(status, json={"error": "no"}))
    sleeps: list[float] = []

    result = make_sender(partner, sleeps=sleeps).update_ticket(
        THEIR_URL, accepted(), Ticket(uuid=TICKET, status="solved")
    )

    assert not result.ok and result.status == status
    assert result.gone is (status == 410)
    assert result.retryable is (status == 408 or status >= 500)
    # Retryable answers were retried with backoff; the others were sent once.
    assert len(partner.requests) == (3 if result.retryable else 1)
    assert len(sleeps) == (2 if result.retryable else 0)
    assert str(status) in result.message


def test_case_51_gone_stops_syncing_the_ticket(state: StateStore) -> None:
    partner = Partner(httpx.Response(410, json={"error": "the ticket is no longer shared"}))
    adapter = bound_adapter(state, partner)
    adapter.wire.record_local_ticket(AGREEMENT, full_ticket())

    with pytest.raises(PermanentError, match="unshared"):
        adapter.update(TICKET, TicketChanges(status="solved"))

    assert adapter.get(TICKET) is None  # the engine orphans the link and stops syncing it
    assert adapter.wire.get_ticket(AGREEMENT, TICKET).unshared  # type: ignore[union-attr]


# --- 52 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 201, 204])
def test_case_52_any_2xx_is_success(status: int) -> None:
    partner = Partner(httpx.Response(status))

    result = make_sender(partner).update_ticket(
        THEIR_URL, accepted(), Ticket(uuid=TICKET, status="open")
    )

    assert result.ok and result.status == status and not result.retryable


# --- 53 -----------------------------------------------------------------------------------------


def test_case_53_update_carries_only_changes_uuid_and_current_actor() -> None:
    sent = full_ticket()
    agent = Actor(uuid="agent-1", name="Al", role="agent")
    wanted = full_ticket(status="pending")
    new = Comment(uuid="c-2", author=agent, body="On it.", public=False)
    wanted.comments.append(new)

    update = ticket_update(sent, wanted, current_actor=agent)

    assert update is not None
    partner = Partner(httpx.Response(200))
    make_sender(partner).update_ticket(THEIR_URL, accepted(), update)
    body = partner.body()
    assert set(body) == {"uuid", "status", "comments", "current_actor"}
    assert body["status"] == "pending"
    assert [comment["uuid"] for comment in body["comments"]] == ["c-2"]
    assert body["comments"][0]["public"] is False
    assert body["current_actor"]["uuid"] == "agent-1"
    assert ticket_update(sent, full_ticket(), current_actor=agent) is None


def test_case_53_adapter_never_resends_a_comment(state: StateStore) -> None:
    partner = Partner(httpx.Response(200, json={}))
    adapter = bound_adapter(state, partner)
    adapter.wire.record_local_ticket(AGREEMENT, full_ticket())
    draft = CommentDraft(shared_uuid=hex40("comment-new"), body="Fixed.", public=True)

    assert adapter.add_comment(TICKET, draft) == draft.shared_uuid
    adapter.update(TICKET, TicketChanges(status="solved", subject="Printer on fire"))
    adapter.add_comment(TICKET, draft)  # a repeat (crash recovery): nothing to send

    first, second = (json.loads(request.content) for request in partner.requests)
    assert set(first) == {"uuid", "comments", "current_actor"}
    assert [c["uuid"] for c in first["comments"]] == [draft.shared_uuid]
    assert set(second) == {"uuid", "status", "current_actor"}  # subject did not change
    assert second["status"] == "solved"
    assert len(partner.requests) == 2


# --- 54 -----------------------------------------------------------------------------------------


def test_case_54_unshare_is_delete_with_token_and_empty_body() -> None:
    partner = Partner(httpx.Response(200, json={"unshared": True}))

    result = make_sender(partner).unshare_ticket(THEIR_URL, accepted(), TICKET)

    assert result.ok
    [request] = partner.requests
    assert request.method == "DELETE"
    assert str(request.url) == f"{THEIR_URL}/tickets/{TICKET}"
    assert request.headers["X-Ticket-Sharing-Token"] == f"{AGREEMENT}:{KEY}"
    assert request.content == b""
    assert request.headers["Content-Type"].startswith("application/json")


# --- 55 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["sender", "receiver"])
def test_case_55_deactivation_names_our_role(role: str) -> None:
    partner = Partner(httpx.Response(200, json={}))

    result = make_sender(partner).deactivate(THEIR_URL, accepted(), role=role)

    assert result.ok
    [request] = partner.requests
    assert request.method == "PUT"
    assert str(request.url) == f"{THEIR_URL}/agreements/{AGREEMENT}"
    assert request.headers["X-Ticket-Sharing-Token"] == f"{AGREEMENT}:{KEY}"
    assert partner.body() == {"uuid": AGREEMENT, "status": "inactive", "deactivated_by": role}


# --- 56 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["pending", "declined", "inactive"])
def test_case_56_no_ticket_post_unless_accepted(status: str) -> None:
    partner = Partner()
    agreement = accepted().model_copy(update={"status": status})

    with pytest.raises(AgreementNotAccepted, match=status):
        make_sender(partner).share_ticket(THEIR_URL, agreement, full_ticket())

    assert partner.requests == []


@pytest.mark.parametrize("status", ["pending", "declined", "inactive"])
def test_case_56_adapter_refuses_to_share_before_any_http(state: StateStore, status: str) -> None:
    partner = Partner()
    adapter = bound_adapter(state, partner, status=status)

    with pytest.raises(PermanentError, match=status):
        adapter.create(TicketDraft(shared_uuid=TICKET, subject="Printer on fire"))

    assert partner.requests == []
