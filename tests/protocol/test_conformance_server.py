"""Server-side conformance cases 1-46 of nhd-spec.md §8, one test (at least) per case.

Each test starts from the state the case names, built through the wire or through the WireStore
as the local side would after the invite round trip, and checks both the answer and the store.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from nhd_bridge.core.model import Ticket
from nhd_bridge.core.protocol.rules import RuleViolation
from nhd_bridge.core.state.schema import LATEST_VERSION, current_version

from .conftest import (
    AGREEMENT,
    KEY,
    OUR_URL,
    THEIR_URL,
    TICKET,
    Receiver,
    hex40,
    invite_body,
    ticket_body,
)

TOKEN = f"{AGREEMENT}:{KEY}"


def assert_error(response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.json().get("error"), str)


def assert_authenticate(response) -> None:
    assert_error(response, 401)
    assert response.headers["www-authenticate"] == "X-Ticket-Sharing"


# --- agreements: server side --------------------------------------------------------------------


def test_case_01_invite_is_created_pending(receiver: Receiver) -> None:
    response = receiver.invite()
    assert response.status_code == 201, response.text
    stored = receiver.store.get_agreement(AGREEMENT)
    assert stored is not None
    assert stored.status == "pending"
    assert stored.our_role == "receiver"
    assert response.json()["status"] == "pending"


def test_case_02_invite_without_token_is_accepted_when_lenient(receiver: Receiver) -> None:
    response = receiver.request("POST", f"/agreements/{AGREEMENT}", _invite())
    assert response.status_code == 201, response.text


def test_case_02_invite_without_token_is_401_in_strict_mode(make_receiver) -> None:
    strict = make_receiver(strict=True)
    response = strict.request("POST", f"/agreements/{AGREEMENT}", _invite())
    assert_authenticate(response)
    assert strict.store.get_agreement(AGREEMENT) is None


def test_case_03_invite_with_a_token_not_matching_the_body_is_403(receiver: Receiver) -> None:
    response = receiver.request(
        "POST", f"/agreements/{AGREEMENT}", _invite(), token=f"{AGREEMENT}:{hex40('other')}"
    )
    assert_error(response, 403)
    assert receiver.store.get_agreement(AGREEMENT) is None


def test_case_04_invite_whose_body_uuid_differs_from_the_path_is_422(receiver: Receiver) -> None:
    other = hex40("other")
    response = receiver.request("POST", f"/agreements/{other}", _invite(), token=TOKEN)
    assert_error(response, 422)
    assert receiver.store.row_counts()["nhd_wire_agreements"] == 0


@pytest.mark.parametrize("status", ["accepted", "declined", "inactive"])
def test_case_05_invite_that_is_not_pending_is_422(receiver: Receiver, status: str) -> None:
    response = receiver.request(
        "POST", f"/agreements/{AGREEMENT}", _invite(status=status), token=TOKEN
    )
    assert_error(response, 422)
    assert receiver.store.get_agreement(AGREEMENT) is None


@pytest.mark.parametrize("status", ["booo", "failed", "ssl_error", "configuration_error"])
def test_case_06_invite_with_a_status_outside_the_enum_is_422(
    receiver: Receiver, status: str
) -> None:
    response = receiver.request(
        "POST", f"/agreements/{AGREEMENT}", _invite(status=status), token=TOKEN
    )
    assert_error(response, 422)
    assert receiver.store.get_agreement(AGREEMENT) is None


def test_case_07_second_post_for_existing_agreement_is_422(receiver: Receiver) -> None:
    assert receiver.invite().status_code == 201
    before = receiver.store.get_agreement(AGREEMENT)
    again = _invite(name="Someone Else", access_key=hex40("new-key"))
    response = receiver.request(
        "POST", f"/agreements/{AGREEMENT}", again, token=f"{AGREEMENT}:{hex40('new-key')}"
    )
    assert_error(response, 422)
    assert receiver.store.get_agreement(AGREEMENT) == before


def test_case_08_invite_naming_neither_url_as_ours_is_422(receiver: Receiver) -> None:
    body = _invite(receiver_url="https://elsewhere.example/sharing")
    response = receiver.request("POST", f"/agreements/{AGREEMENT}", body, token=TOKEN)
    assert_error(response, 422)
    assert receiver.store.get_agreement(AGREEMENT) is None


@pytest.mark.parametrize(("strict", "status"), [(True, 400), (False, 422)])
def test_case_09_invite_with_malformed_json_is_400(
    make_receiver, strict: bool, status: int
) -> None:
    # 400 as RT answers (strict); lenient answers 422, which Zendesk's client takes softly.
    receiver = make_receiver(strict=strict)
    response = receiver.request(
        "POST", f"/agreements/{AGREEMENT}", raw=b'{"uuid": "abc", ', token=TOKEN
    )
    assert_error(response, status)


def test_case_10_version_2_is_412(receiver: Receiver) -> None:
    response = receiver.request(
        "POST", f"/agreements/{AGREEMENT}", _invite(), token=TOKEN, version="2"
    )
    assert_error(response, 412)
    assert receiver.store.get_agreement(AGREEMENT) is None


def test_case_10_absent_version_is_201_by_default(receiver: Receiver) -> None:
    response = receiver.request("POST", f"/agreements/{AGREEMENT}", _invite(), version=None)
    assert response.status_code == 201, response.text


def test_case_10_absent_version_is_412_in_strict_mode(make_receiver) -> None:
    strict = make_receiver(strict=True)
    response = strict.request(
        "POST", f"/agreements/{AGREEMENT}", _invite(), token=TOKEN, version=None
    )
    assert_error(response, 412)


def test_case_11_invite_with_a_path_that_is_not_a_uuid_is_422(receiver: Receiver) -> None:
    response = receiver.request(
        "POST", "/agreements/not-a-uuid!", _invite(uuid="not-a-uuid!"), token=TOKEN
    )
    assert_error(response, 422)


def test_case_11_strict_mode_wants_40_hex(make_receiver) -> None:
    strict = make_receiver(strict=True)
    body = _invite(uuid="short-but-lenient-ok")
    response = strict.request(
        "POST", "/agreements/short-but-lenient-ok", body, token=f"short-but-lenient-ok:{KEY}"
    )
    assert_error(response, 422)


def test_case_12_get_agreement_without_token_is_401(receiver: Receiver) -> None:
    receiver.incoming("pending")
    assert_authenticate(receiver.request("GET", f"/agreements/{AGREEMENT}"))


def test_case_13_get_agreement_with_token_returns_it(receiver: Receiver) -> None:
    receiver.incoming("pending")
    response = receiver.request("GET", f"/agreements/{AGREEMENT}", token=TOKEN)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["uuid"] == AGREEMENT
    assert data["name"] == "Them Inc"
    assert data["status"] == "pending"
    assert data["sender_url"] == THEIR_URL
    assert data["receiver_url"] == OUR_URL
    assert data["access_key"] == KEY
    assert "deactivated_by" in data
    assert data["deactivated_by"] is None


@pytest.mark.parametrize("method", ["GET", "PUT"])
def test_case_14_unknown_agreement_is_404(receiver: Receiver, method: str) -> None:
    unknown = hex40("unknown")
    body = {"status": "accepted"} if method == "PUT" else None
    response = receiver.request(method, f"/agreements/{unknown}", body, token=f"{unknown}:{KEY}")
    assert_error(response, 404)


def test_case_15_put_agreement_with_a_wrong_key_answers_as_an_unknown_one(
    receiver: Receiver,
) -> None:
    # RT answers 403 here; we answer 404 like an unknown agreement (issue 11): a wrong key must
    # not tell the caller that the agreement exists. Zendesk's client handles both alike.
    receiver.outgoing("pending")
    response = receiver.request(
        "PUT",
        f"/agreements/{AGREEMENT}",
        {"status": "accepted"},
        token=f"{AGREEMENT}:{hex40('wrong')}",
    )
    assert_error(response, 404)
    unknown = hex40("unknown")
    other = receiver.request(
        "PUT", f"/agreements/{unknown}", {"status": "accepted"}, token=f"{unknown}:{KEY}"
    )
    assert (other.status_code, other.json()) == (response.status_code, response.json())
    assert receiver.store.get_agreement(AGREEMENT).status == "pending"  # type: ignore[union-attr]


def test_case_16_sender_receives_accept(receiver: Receiver) -> None:
    receiver.outgoing("pending")
    response = receiver.request(
        "PUT", f"/agreements/{AGREEMENT}", {"status": "accepted", "name": "Them Inc"}, token=TOKEN
    )
    assert response.status_code == 200, response.text
    stored = receiver.store.get_agreement(AGREEMENT)
    assert stored is not None
    assert stored.status == "accepted"
    assert stored.name == "Us Ltd"  # the receiver's own name is kept apart
    assert stored.receiver_name == "Them Inc"


def test_case_17_sender_receives_decline_and_then_refuses_tickets(receiver: Receiver) -> None:
    receiver.outgoing("pending")
    response = receiver.request(
        "PUT", f"/agreements/{AGREEMENT}", {"status": "declined"}, token=TOKEN
    )
    assert response.status_code == 200, response.text
    assert receiver.store.get_agreement(AGREEMENT).status == "declined"  # type: ignore[union-attr]
    assert_error(receiver.share(), 403)
    with pytest.raises(RuleViolation):
        receiver.store.set_status(AGREEMENT, "accepted")


def test_case_18_receiver_deactivates_an_accepted_agreement(receiver: Receiver) -> None:
    receiver.outgoing("accepted")
    response = receiver.request(
        "PUT",
        f"/agreements/{AGREEMENT}",
        {"status": "inactive", "deactivated_by": "receiver"},
        token=TOKEN,
    )
    assert response.status_code == 200, response.text
    stored = receiver.store.get_agreement(AGREEMENT)
    assert stored is not None
    assert (stored.status, stored.deactivated_by) == ("inactive", "receiver")


def test_case_19_deactivated_by_must_name_the_updater(receiver: Receiver) -> None:
    receiver.outgoing("accepted")
    response = receiver.request(
        "PUT",
        f"/agreements/{AGREEMENT}",
        {"status": "inactive", "deactivated_by": "sender"},
        token=TOKEN,
    )
    assert_error(response, 422)
    assert receiver.store.get_agreement(AGREEMENT).status == "accepted"  # type: ignore[union-attr]


def test_case_20_deactivated_by_without_status_is_422(receiver: Receiver) -> None:
    receiver.outgoing("accepted")
    response = receiver.request(
        "PUT", f"/agreements/{AGREEMENT}", {"deactivated_by": "receiver"}, token=TOKEN
    )
    assert_error(response, 422)
    stored = receiver.store.get_agreement(AGREEMENT)
    assert stored is not None
    assert (stored.status, stored.deactivated_by) == ("accepted", None)


def test_case_21_put_changing_the_uuid_is_422(receiver: Receiver) -> None:
    receiver.outgoing("accepted")
    response = receiver.request(
        "PUT", f"/agreements/{AGREEMENT}", {"uuid": hex40("other"), "name": "x"}, token=TOKEN
    )
    assert_error(response, 422)
    assert receiver.store.get_agreement(hex40("other")) is None


def test_case_22_sender_may_not_change_receiver_url(receiver: Receiver) -> None:
    receiver.incoming("accepted")  # the caller is the sender
    response = receiver.request(
        "PUT",
        f"/agreements/{AGREEMENT}",
        {"receiver_url": "https://moved.example/sharing"},
        token=TOKEN,
    )
    assert_error(response, 422)
    assert receiver.store.get_agreement(AGREEMENT).receiver_url == OUR_URL  # type: ignore[union-attr]


def test_case_22_receiver_may_not_change_sender_url(receiver: Receiver) -> None:
    receiver.outgoing("accepted")  # the caller is the receiver
    response = receiver.request(
        "PUT",
        f"/agreements/{AGREEMENT}",
        {"sender_url": "https://moved.example/sharing"},
        token=TOKEN,
    )
    assert_error(response, 422)
    assert receiver.store.get_agreement(AGREEMENT).sender_url == OUR_URL  # type: ignore[union-attr]


def _deactivated_by_partner(receiver: Receiver) -> None:
    receiver.outgoing("accepted")
    response = receiver.request(
        "PUT",
        f"/agreements/{AGREEMENT}",
        {"status": "inactive", "deactivated_by": "receiver"},
        token=TOKEN,
    )
    assert response.status_code == 200, response.text


def test_case_23_reactivation_is_422_by_default(receiver: Receiver) -> None:
    _deactivated_by_partner(receiver)
    response = receiver.request(
        "PUT",
        f"/agreements/{AGREEMENT}",
        {"status": "accepted", "deactivated_by": ""},
        token=TOKEN,
    )
    assert_error(response, 422)
    assert receiver.store.get_agreement(AGREEMENT).status == "inactive"  # type: ignore[union-attr]


def test_case_23_reactivation_when_enabled_by_the_deactivating_side(make_receiver) -> None:
    receiver = make_receiver(allow_reactivation=True)
    _deactivated_by_partner(receiver)
    response = receiver.request(
        "PUT",
        f"/agreements/{AGREEMENT}",
        {"status": "accepted", "deactivated_by": ""},
        token=TOKEN,
    )
    assert response.status_code == 200, response.text
    stored = receiver.store.get_agreement(AGREEMENT)
    assert stored is not None
    assert (stored.status, stored.deactivated_by) == ("accepted", None)


def test_case_23_reactivation_by_the_other_side_is_422_even_when_enabled(make_receiver) -> None:
    receiver = make_receiver(allow_reactivation=True)
    receiver.outgoing("accepted")
    receiver.store.set_status(AGREEMENT, "inactive")  # we, the sender, deactivated it
    response = receiver.request(
        "PUT",
        f"/agreements/{AGREEMENT}",
        {"status": "accepted", "deactivated_by": None},
        token=TOKEN,
    )
    assert_error(response, 422)


def test_case_24_gem_style_full_put_with_nulls_changes_nothing(receiver: Receiver) -> None:
    receiver.incoming("accepted", sync_tags=True)
    before = receiver.request("GET", f"/agreements/{AGREEMENT}", token=TOKEN).json()
    gem_style = {**before, "current_actor": None, "name": None, "allows_public_comments": None}
    response = receiver.request("PUT", f"/agreements/{AGREEMENT}", gem_style, token=TOKEN)
    assert response.status_code == 200, response.text
    after = receiver.request("GET", f"/agreements/{AGREEMENT}", token=TOKEN).json()
    assert after == before
    assert after["name"] == "Them Inc"


def test_case_25_access_key_rotation_authenticates_with_the_old_key(receiver: Receiver) -> None:
    receiver.incoming("accepted")  # the caller is the sender, who owns the key
    new_key = hex40("rotated")
    response = receiver.request(
        "PUT", f"/agreements/{AGREEMENT}", {"access_key": new_key}, token=TOKEN
    )
    assert response.status_code == 200, response.text
    assert_error(receiver.request("GET", f"/agreements/{AGREEMENT}", token=TOKEN), 404)
    assert_error(receiver.share(), 403)
    new_token = f"{AGREEMENT}:{new_key}"
    assert receiver.request("GET", f"/agreements/{AGREEMENT}", token=new_token).status_code == 200
    assert receiver.share(token=new_token).status_code == 201


# --- tickets: server side -----------------------------------------------------------------------


def test_case_26_full_ticket_under_an_accepted_agreement_is_201(receiver: Receiver) -> None:
    receiver.incoming("accepted")
    response = receiver.share()
    assert response.status_code == 201, response.text
    held = receiver.store.get_ticket(AGREEMENT, TICKET)
    assert held is not None
    ticket = held.ticket
    assert ticket.requested_at == datetime(2010, 11, 24, 22, 13, 54, tzinfo=UTC)
    assert (ticket.subject, ticket.status) == ("Printer on fire", "open")
    assert ticket.requester is not None and ticket.requester.uuid == "req-1"
    assert [c.uuid for c in ticket.comments] == ["comment-1", "comment-2"]


@pytest.mark.parametrize("status", ["pending", "declined", "inactive"])
def test_case_27_ticket_under_an_agreement_not_accepted_is_403(
    receiver: Receiver, status: str
) -> None:
    receiver.incoming(status)
    assert_error(receiver.share(), 403)
    assert receiver.store.row_counts()["nhd_wire_tickets"] == 0


@pytest.mark.parametrize(
    ("token", "status"),
    [
        (f"{hex40('unknown')}:{KEY}", 403),
        (f"{AGREEMENT}:{hex40('wrong')}", 403),
        (f"not a uuid!:{KEY}", 422),
        (f"{AGREEMENT}{KEY}", 422),
    ],
    ids=["unknown-agreement", "wrong-key", "left-part-not-uuid", "no-colon"],
)
def test_case_28_ticket_post_token_checks(receiver: Receiver, token: str, status: int) -> None:
    receiver.incoming("accepted")
    assert_error(receiver.share(token=token), status)
    assert receiver.store.row_counts()["nhd_wire_tickets"] == 0


def test_case_29_ticket_post_without_token_is_401(receiver: Receiver) -> None:
    receiver.incoming("accepted")
    assert_authenticate(receiver.request("POST", f"/tickets/{TICKET}", ticket_body()))


def test_case_30_ticket_post_with_mismatched_uuid_is_422(receiver: Receiver) -> None:
    receiver.incoming("accepted")
    response = receiver.request("POST", f"/tickets/{hex40('other')}", ticket_body(), token=TOKEN)
    assert_error(response, 422)
    assert receiver.store.row_counts()["nhd_wire_tickets"] == 0


def test_case_30_ticket_post_for_an_existing_ticket_is_422(receiver: Receiver) -> None:
    receiver.incoming("accepted")
    assert receiver.share().status_code == 201
    counts = receiver.store.row_counts()
    again = ticket_body(subject="Changed", comments=[{"uuid": "comment-3", "body": "new"}])
    assert_error(receiver.share(again), 422)
    assert receiver.store.row_counts() == counts
    assert receiver.store.get_ticket(AGREEMENT, TICKET).ticket.subject == "Printer on fire"  # type: ignore[union-attr]


@pytest.mark.parametrize("method", ["PUT", "GET"])
def test_case_31_unknown_ticket_is_404(receiver: Receiver, method: str) -> None:
    receiver.incoming("accepted")
    body = {"status": "pending"} if method == "PUT" else None
    assert_error(receiver.request(method, f"/tickets/{TICKET}", body, token=TOKEN), 404)
    assert receiver.store.row_counts()["nhd_wire_tickets"] == 0


def _shared(receiver: Receiver, **flags) -> None:
    receiver.incoming("accepted", **flags)
    response = receiver.share()
    assert response.status_code == 201, response.text


def test_case_32_put_status_only_changes_the_status(receiver: Receiver) -> None:
    _shared(receiver)
    before = receiver.store.get_ticket(AGREEMENT, TICKET)
    response = receiver.request(
        "PUT", f"/tickets/{TICKET}", {"uuid": TICKET, "status": "pending"}, token=TOKEN
    )
    assert response.status_code == 200, response.text
    after = receiver.store.get_ticket(AGREEMENT, TICKET)
    assert before is not None and after is not None
    assert after.ticket.status == "pending"
    assert after.ticket.subject == before.ticket.subject
    assert after.ticket.comments == before.ticket.comments
    assert after.ticket.requested_at == before.ticket.requested_at


def test_case_33_comments_are_added_once_and_never_edited(receiver: Receiver) -> None:
    _shared(receiver)
    new = {"uuid": "comment-3", "body": "Water made it worse.", "public": False}
    for _ in range(2):  # the identical PUT twice: one copy
        response = receiver.request("PUT", f"/tickets/{TICKET}", {"comments": [new]}, token=TOKEN)
        assert response.status_code == 200, response.text
    held = receiver.store.get_ticket(AGREEMENT, TICKET)
    assert held is not None
    assert [c.uuid for c in held.ticket.comments] == ["comment-1", "comment-2", "comment-3"]
    edited = {"uuid": "comment-1", "body": "EDITED", "public": False}
    response = receiver.request("PUT", f"/tickets/{TICKET}", {"comments": [edited]}, token=TOKEN)
    assert response.status_code == 200, response.text
    held = receiver.store.get_ticket(AGREEMENT, TICKET)
    assert held is not None
    assert len(held.ticket.comments) == 3
    first = held.ticket.comments[0]
    assert (first.body, first.public) == ("It is on fire.", True)
    assert receiver.store.row_counts()["nhd_wire_comments"] == 3


def test_case_34_omitted_or_equal_status_records_no_change(receiver: Receiver) -> None:
    _shared(receiver)
    [shared] = receiver.store.received_tickets_changed_since(AGREEMENT, 0)
    cursor = shared.seq
    response = receiver.request(
        "PUT", f"/tickets/{TICKET}", {"subject": "Printer on fire"}, token=TOKEN
    )
    assert response.status_code == 200, response.text
    assert receiver.store.get_ticket(AGREEMENT, TICKET).ticket.status == "open"  # type: ignore[union-attr]
    response = receiver.request("PUT", f"/tickets/{TICKET}", {"status": "OPEN"}, token=TOKEN)
    assert response.status_code == 200, response.text
    assert receiver.store.received_tickets_changed_since(AGREEMENT, cursor) == []


def test_case_35_get_ticket_returns_the_core_fields(receiver: Receiver) -> None:
    _shared(receiver)
    response = receiver.request("GET", f"/tickets/{TICKET}", token=TOKEN)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["uuid"] == TICKET
    assert data["subject"] == "Printer on fire"
    assert data["requested_at"] == "2010-11-24 22:13:54 +0000"
    assert data["status"] == "open"
    assert data["requester"]["uuid"] == "req-1"
    assert data["requester"]["name"] == "Rita Requester"


def test_case_36_delete_unshares_and_later_calls_are_410(receiver: Receiver) -> None:
    _shared(receiver)
    response = receiver.request("DELETE", f"/tickets/{TICKET}", raw=b"", token=TOKEN)
    assert response.status_code == 200, response.text
    held = receiver.store.get_ticket(AGREEMENT, TICKET)
    assert held is not None and held.unshared
    assert_error(receiver.request("GET", f"/tickets/{TICKET}", token=TOKEN), 410)
    assert_error(
        receiver.request("PUT", f"/tickets/{TICKET}", {"status": "solved"}, token=TOKEN), 410
    )
    assert receiver.store.get_ticket(AGREEMENT, TICKET).ticket.status == "open"  # type: ignore[union-attr]
    # A replayed DELETE is a no-op, not an error.
    again = receiver.request("DELETE", f"/tickets/{TICKET}", raw=b"", token=TOKEN)
    assert again.status_code == 200


def test_case_36_sharing_an_unshared_ticket_again_takes_it_back(receiver: Receiver) -> None:
    _shared(receiver)
    receiver.request("DELETE", f"/tickets/{TICKET}", raw=b"", token=TOKEN)
    response = receiver.share(ticket_body(status="pending"))
    assert response.status_code == 201, response.text
    held = receiver.store.get_ticket(AGREEMENT, TICKET)
    assert held is not None and not held.unshared
    assert held.ticket.status == "pending"
    assert len(held.ticket.comments) == 2
    assert receiver.request("GET", f"/tickets/{TICKET}", token=TOKEN).status_code == 200


def test_case_37_token_of_another_agreement_answers_as_an_unknown_ticket(
    receiver: Receiver,
) -> None:
    # §6.2 allows 403 or 404; "not yours" and "does not exist" answer alike (issue 11), so a
    # partner cannot probe which ticket uuids other partners share with us.
    _shared(receiver)
    other, other_key = hex40("agreement-b"), hex40("key-b")
    receiver.incoming("accepted", uuid=other, key=other_key)
    other_token = f"{other}:{other_key}"
    for method, body in (("GET", None), ("PUT", {"status": "solved"}), ("DELETE", None)):
        response = receiver.request(method, f"/tickets/{TICKET}", body, token=other_token)
        unknown = receiver.request(method, f"/tickets/{hex40('none')}", body, token=other_token)
        assert_error(response, 404)
        assert (response.status_code, response.json()) == (unknown.status_code, unknown.json())
    held = receiver.store.get_ticket(AGREEMENT, TICKET)
    assert held is not None and not held.unshared and held.ticket.status == "open"


@pytest.mark.parametrize("path", [f"/tickets/{TICKET}", f"/agreements/{AGREEMENT}"])
@pytest.mark.parametrize("method", ["PATCH", "OPTIONS"])
def test_case_38_unsupported_method_is_405(receiver: Receiver, path: str, method: str) -> None:
    _shared(receiver)
    assert_error(receiver.request(method, path, {"status": "solved"}, token=TOKEN), 405)


def test_case_38_delete_agreement_is_405(receiver: Receiver) -> None:
    receiver.incoming("accepted")
    assert_error(receiver.request("DELETE", f"/agreements/{AGREEMENT}", token=TOKEN), 405)
    assert receiver.store.get_agreement(AGREEMENT) is not None


def test_case_39_unknown_ticket_status_is_422(receiver: Receiver) -> None:
    receiver.incoming("accepted")
    assert_error(receiver.share(ticket_body(status="frobnicated")), 422)


@pytest.mark.parametrize("status", ["new", "open", "pending", "hold", "solved", "closed", "Hold"])
def test_case_39_every_nhd_status_is_accepted(receiver: Receiver, status: str) -> None:
    receiver.incoming("accepted")
    response = receiver.share(ticket_body(status=status))
    assert response.status_code == 201, response.text
    assert response.json()["status"] == status.lower()


def test_case_40_comment_visibility_defaults_to_public(receiver: Receiver) -> None:
    receiver.incoming("accepted")
    body = ticket_body(
        comments=[
            {"uuid": "c-default", "body": "a"},
            {"uuid": "c-private", "body": "b", "public": False},
        ]
    )
    assert receiver.share(body).status_code == 201
    held = receiver.store.get_ticket(AGREEMENT, TICKET)
    assert held is not None
    assert {c.uuid: c.public for c in held.ticket.comments} == {
        "c-default": True,
        "c-private": False,
    }


def test_case_41_public_comment_from_receiver_under_partial_delegation_is_private(
    receiver: Receiver,
) -> None:
    receiver.outgoing("accepted", allows_public_comments=False)
    ours = ticket_body(comments=[])
    receiver.store.record_local_ticket(AGREEMENT, _ticket(ours))
    reply = {"uuid": "reply-1", "body": "Dear customer...", "public": True}
    response = receiver.request("PUT", f"/tickets/{TICKET}", {"comments": [reply]}, token=TOKEN)
    assert response.status_code == 200, response.text
    held = receiver.store.get_ticket(AGREEMENT, TICKET)
    assert held is not None
    assert [(c.uuid, c.public) for c in held.ticket.comments] == [("reply-1", False)]


def test_case_41_full_delegation_keeps_public_comments(receiver: Receiver) -> None:
    receiver.outgoing("accepted", allows_public_comments=True)
    receiver.store.record_local_ticket(AGREEMENT, _ticket(ticket_body(comments=[])))
    reply = {"uuid": "reply-1", "body": "Dear customer...", "public": True}
    response = receiver.request("PUT", f"/tickets/{TICKET}", {"comments": [reply]}, token=TOKEN)
    assert response.status_code == 200, response.text
    [comment] = receiver.store.get_ticket(AGREEMENT, TICKET).ticket.comments  # type: ignore[union-attr]
    assert comment.public is True


@pytest.mark.parametrize("synced", [False, True])
def test_case_42_tags_and_custom_fields_follow_the_sync_flags(
    receiver: Receiver, synced: bool
) -> None:
    _shared(receiver, sync_tags=synced, sync_custom_fields=synced)
    update = {"tags": ["urgent", "fire"], "custom_fields": {"severity": 1, "areas": ["a", "b"]}}
    response = receiver.request("PUT", f"/tickets/{TICKET}", update, token=TOKEN)
    assert response.status_code == 200, response.text
    ticket = receiver.store.get_ticket(AGREEMENT, TICKET).ticket  # type: ignore[union-attr]
    if synced:
        assert ticket.tags == ["urgent", "fire"]
        assert ticket.custom_fields == {"severity": 1, "areas": ["a", "b"]}
        response = receiver.request("PUT", f"/tickets/{TICKET}", {"tags": ["calm"]}, token=TOKEN)
        assert receiver.store.get_ticket(AGREEMENT, TICKET).ticket.tags == ["calm"]  # type: ignore[union-attr]
    else:
        assert ticket.tags is None
        assert ticket.custom_fields is None


@pytest.mark.parametrize("missing", ["url", "filename"])
def test_case_43_attachment_missing_a_required_field_is_422(
    receiver: Receiver, missing: str
) -> None:
    receiver.incoming("accepted")
    attachment = {"url": "https://them.example/files/1", "filename": "fire.jpg"}
    del attachment[missing]
    body = ticket_body(comments=[{"uuid": "c-1", "body": "see", "attachments": [attachment]}])
    assert_error(receiver.share(body), 422)
    assert receiver.store.row_counts() == {
        "nhd_wire_agreements": 1,
        "nhd_wire_tickets": 0,
        "nhd_wire_comments": 0,
    }


def test_case_43_attachment_optional_fields_are_stored_and_null_is_accepted(
    receiver: Receiver,
) -> None:
    receiver.incoming("accepted")
    attachment = {
        "url": "https://them.example/files/1",
        "filename": "fire.jpg",
        "content_type": "image/jpeg",
        "display_filename": "The fire.jpg",
    }
    body = ticket_body(
        comments=[
            {"uuid": "c-1", "body": "see", "attachments": [attachment]},
            {"uuid": "c-2", "body": "none", "attachments": None},
        ]
    )
    response = receiver.share(body)
    assert response.status_code == 201, response.text
    first, second = receiver.store.get_ticket(AGREEMENT, TICKET).ticket.comments  # type: ignore[union-attr]
    assert first.attachments[0].to_dict() == attachment
    assert second.attachments == []


def test_case_44_unknown_keys_are_ignored_at_every_level(receiver: Receiver) -> None:
    response = receiver.request(
        "POST", f"/agreements/{AGREEMENT}", _invite(foo=1, extra={"x": [1]}), token=TOKEN
    )
    assert response.status_code == 201, response.text
    receiver.store.set_status(AGREEMENT, "accepted")
    body = ticket_body(foo=1)
    body["requester"]["foo"] = 1
    body["comments"][0]["foo"] = {"bar": None}
    body["comments"][0]["author"]["foo"] = [1, 2]
    body["comments"][0]["attachments"] = [
        {"url": "https://them.example/f", "filename": "f.txt", "foo": 1}
    ]
    response = receiver.share(body)
    assert response.status_code == 201, response.text
    response = receiver.request(
        "PUT", f"/tickets/{TICKET}", {"status": "hold", "foo": 1}, token=TOKEN
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    "content_type",
    ['text/x-json; charset="UTF-8"', "text/x-json", "application/json; charset=utf-8"],
)
def test_case_45_rt_content_type_is_parsed_like_json(receiver: Receiver, content_type: str) -> None:
    response = receiver.request(
        "POST", f"/agreements/{AGREEMENT}", _invite(), token=TOKEN, content_type=content_type
    )
    assert response.status_code == 201, response.text


def test_case_45_absent_content_type_is_parsed_as_json(receiver: Receiver) -> None:
    response = receiver.client.post(
        f"/sharing/agreements/{AGREEMENT}",
        content=_json_bytes(_invite()),
        headers={"X-Ticket-Sharing-Version": "1", "X-Ticket-Sharing-Token": TOKEN},
    )
    assert "content-type" not in {k.lower() for k in response.request.headers}
    assert response.status_code == 201, response.text


def test_case_45_other_content_types_are_refused(receiver: Receiver) -> None:
    response = receiver.request(
        "POST", f"/agreements/{AGREEMENT}", _invite(), token=TOKEN, content_type="text/plain"
    )
    assert_error(response, 415)
    assert receiver.store.get_agreement(AGREEMENT) is None


@pytest.mark.parametrize(
    "requested_at",
    [
        "2010-11-24T14:13:54-08:00",
        "2010-11-24T22:13:54Z",
        "2010-11-24 14:13:54 -08:00",
        "2010-11-24 14:13:54 -0800",
        "2010-11-24T22:13:54.000Z",
    ],
)
def test_case_46_timestamp_forms_parse_to_one_instant(
    receiver: Receiver, requested_at: str
) -> None:
    receiver.incoming("accepted")
    response = receiver.share(ticket_body(requested_at=requested_at))
    assert response.status_code == 201, response.text
    held = receiver.store.get_ticket(AGREEMENT, TICKET)
    assert held is not None
    assert held.ticket.requested_at == datetime(2010, 11, 24, 22, 13, 54, tzinfo=UTC)
    assert response.json()["requested_at"] == "2010-11-24 22:13:54 +0000"


@pytest.mark.parametrize("requested_at", ["yesterday", "9999-12-31 23:59:59 -1200", 12])
def test_case_46_unparsable_timestamp_is_422(receiver: Receiver, requested_at: object) -> None:
    receiver.incoming("accepted")
    assert_error(receiver.share(ticket_body(requested_at=requested_at)), 422)
    assert receiver.store.row_counts()["nhd_wire_tickets"] == 0


# --- beyond the numbered cases: body cap, health, the WireStore API the sender side uses ---------


def test_body_over_the_cap_is_413_before_parsing(make_receiver) -> None:
    small = make_receiver(max_body_bytes=200, strict=True)  # lenient: 422 (test_zendesk_interop)
    body = _invite(name="x" * 500)
    response = small.request("POST", f"/agreements/{AGREEMENT}", body, token=TOKEN)
    assert_error(response, 413)
    # A lying Content-Length does not get past the cap either.
    streamed = small.client.post(
        f"/sharing/agreements/{AGREEMENT}",
        content=iter([_json_bytes(body)]),  # chunked: no Content-Length at all
        headers={
            "Content-Type": "application/json",
            "X-Ticket-Sharing-Token": TOKEN,
            "X-Ticket-Sharing-Version": "1",
        },
    )
    assert_error(streamed, 413)
    assert small.store.get_agreement(AGREEMENT) is None


def test_health_is_outside_the_prefix(receiver: Receiver) -> None:
    response = receiver.client.get("/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_unknown_path_is_a_json_404(receiver: Receiver) -> None:
    assert_error(receiver.request("GET", "/nothing/here", token=TOKEN), 404)


def test_change_cursor_reports_each_partner_change_once(receiver: Receiver) -> None:
    _shared(receiver)
    [first] = receiver.store.received_tickets_changed_since(AGREEMENT, 0)
    assert first.comment_seqs == {"comment-1": first.seq, "comment-2": first.seq}
    assert receiver.store.received_tickets_changed_since(AGREEMENT, first.seq) == []
    receiver.request("PUT", f"/tickets/{TICKET}", {"status": "solved"}, token=TOKEN)
    [second] = receiver.store.received_tickets_changed_since(AGREEMENT, first.seq)
    assert second.seq > first.seq
    assert second.ticket.status == "solved"


def test_local_writes_are_not_reported_as_partner_changes(receiver: Receiver) -> None:
    receiver.outgoing("accepted")
    receiver.store.record_local_ticket(AGREEMENT, _ticket(ticket_body()))
    assert receiver.store.received_tickets_changed_since(AGREEMENT, 0) == []
    # The partner echoing our own comment back adds nothing.
    echo = {"comments": [{"uuid": "comment-1", "body": "It is on fire."}]}
    receiver.request("PUT", f"/tickets/{TICKET}", echo, token=TOKEN)
    assert receiver.store.received_tickets_changed_since(AGREEMENT, 0) == []


def test_local_unshare_answers_410_to_the_partner(receiver: Receiver) -> None:
    _shared(receiver)
    assert receiver.store.mark_unshared(TICKET) == 1
    assert_error(receiver.request("GET", f"/tickets/{TICKET}", token=TOKEN), 410)


def test_local_transitions_follow_the_same_rules(receiver: Receiver) -> None:
    receiver.incoming("pending")
    with pytest.raises(RuleViolation):
        receiver.store.set_status(AGREEMENT, "inactive")  # a receiver declines, not withdraws
    assert receiver.store.set_status(AGREEMENT, "accepted").status == "accepted"
    deactivated = receiver.store.set_status(AGREEMENT, "inactive")
    assert (deactivated.status, deactivated.deactivated_by) == ("inactive", "receiver")


def test_sender_may_withdraw_a_pending_invite(receiver: Receiver) -> None:
    receiver.incoming("pending")  # the caller is the sender
    response = receiver.request(
        "PUT",
        f"/agreements/{AGREEMENT}",
        {"status": "inactive", "deactivated_by": "sender"},
        token=TOKEN,
    )
    assert response.status_code == 200, response.text


def test_schema_is_at_version_4(receiver: Receiver) -> None:
    with receiver.state.engine.connect() as connection:
        assert current_version(connection) == LATEST_VERSION == 4


# --- helpers ------------------------------------------------------------------------------------


def _invite(**changes: Any) -> dict[str, Any]:
    return {**invite_body(), **changes}


def _ticket(body: dict[str, Any]) -> Ticket:
    return Ticket.from_dict(body)


def _json_bytes(body: Any) -> bytes:
    return json.dumps(body).encode()
