"""Every request Zendesk's own NHD client can make, as it makes it, in lenient and strict modes.

The client is the ``ticket_sharing`` gem, v2.1.3 (github zendesk/ticket_sharing, tag v2.1.3).
What it sends, read from its source:

- ``lib/ticket_sharing/base.rb:33-38``: ``as_json`` writes *every* declared field of a model, in
  declaration order, ``nil`` as ``null``; ``json_support.rb:12-14`` encodes with ``JSON.dump``
  (compact, no spaces).
- ``agreement.rb:8-9``: an Agreement has ``receiver_url, sender_url, status, uuid, access_key,
  name, current_actor, sync_tags, sync_custom_fields, allows_public_comments``; no
  ``deactivated_by``. ``agreement.rb:22-27``: ``send_to`` POSTs ``/agreements/{uuid}`` with **no
  token**; ``agreement.rb:29-34``: ``update_partner`` PUTs it with ``uuid:access_key``. Accepting,
  declining and deactivating are all ``update_partner`` with another ``status``.
- ``ticket.rb:11-12``: a Ticket has ``uuid, subject, requested_at, status, requester, comments,
  current_actor, tags, original_id, custom_fields, custom_status``; ``comments`` defaults to
  ``[]`` (``ticket.rb:41-43``). ``send_to`` POSTs, ``update_partner`` PUTs (the whole object
  again), ``unshare`` DELETEs with an empty string body (``client.rb:22-24``), all with the token.
- ``comment.rb:9``: ``uuid, author, body, html_body, authored_at, public, attachments,
  custom_fields``; ``public`` defaults to true (``comment.rb:12``). ``actor.rb:6``: ``uuid, name,
  role``. ``time.rb:20``: timestamps as ``%Y-%m-%d %H:%M:%S %z``.
- ``request.rb:51-56``: headers ``Accept: application/json`` and ``Content-Type:
  application/json``, plus the token (``client.rb:33``); never ``X-Ticket-Sharing-Version``.
  ``request.rb:61-72``: any 3xx is followed with the same method, body and headers.
- ``client.rb:40-50``: 2xx is success; 401, 403, 404, 405, 408, 410, 422 and 5xx are soft
  failures; **anything else (400, 413, 412, ...) raises** ``TicketSharing::Error``.

Strict mode is RT's reading (nhd-spec.md §7.2): it wants the version header the gem never sends,
so every gem request is 412 there; the strict cases below also send the header, as RT's and the
Node client do, to show which of RT's rules then still apply.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from nhd_bridge.core.protocol.receiver import TOKEN_HEADER, VERSION_HEADER

from .conftest import AGREEMENT, KEY, OUR_URL, THEIR_URL, TICKET, Receiver, hex40

TOKEN = f"{AGREEMENT}:{KEY}"
GEM_SOFT_FAILURES = {401, 403, 404, 405, 408, 410, 422, *range(500, 600)}

ZENDESK_ADMIN = {"uuid": "zd-user-1", "name": "Zoe Admin", "role": "agent"}


# --- the gem's bodies and headers ---------------------------------------------------------------


def gem_agreement(**values: Any) -> dict[str, Any]:
    """``Agreement#to_json``: every declared field, in order, unset ones null (base.rb:33)."""
    fields = (
        "receiver_url",
        "sender_url",
        "status",
        "uuid",
        "access_key",
        "name",
        "current_actor",
        "sync_tags",
        "sync_custom_fields",
        "allows_public_comments",
    )
    return {name: values.get(name) for name in fields}


def gem_actor(uuid: str, name: str, role: str | None = None) -> dict[str, Any]:
    return {"uuid": uuid, "name": name, "role": role}


def gem_comment(uuid: str, body: str, *, public: bool = True, **values: Any) -> dict[str, Any]:
    """``Comment#to_json`` (comment.rb:9); ``public`` defaults to true (comment.rb:12)."""
    comment = {
        "uuid": uuid,
        "author": gem_actor("zd-user-7", "Zed Agent", "agent"),
        "body": body,
        "html_body": None,
        "authored_at": "2024-03-01 09:15:00 +0100",
        "public": public,
        "attachments": None,
        "custom_fields": None,
    }
    return {**comment, **values}


def gem_ticket(uuid: str = TICKET, **values: Any) -> dict[str, Any]:
    """``Ticket#to_json`` (ticket.rb:11); ``comments`` is [] when none (ticket.rb:41)."""
    ticket = {
        "uuid": uuid,
        "subject": "Printer on fire",
        "requested_at": "2024-03-01 09:00:00 +0100",
        "status": "open",
        "requester": gem_actor("zd-user-9", "Rita Requester", "end-user"),
        "comments": [gem_comment("zd-comment-1", "It is on fire.")],
        "current_actor": gem_actor("zd-user-7", "Zed Agent", "agent"),
        "tags": None,
        "original_id": "4711",
        "custom_fields": None,
        "custom_status": None,
    }
    return {**ticket, **values}


def gem_send(
    receiver: Receiver,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    *,
    token: str | None = TOKEN,
    version: bool = False,
    prefix: str | None = None,
) -> Any:
    """One request exactly as request.rb:47-59 builds it: JSON.dump'ed body (or '' on DELETE,
    client.rb:23), Accept and Content-Type JSON, the token when the model has one."""
    headers = {"Accept": "application/json", "Content-Type": "application/json"}
    if token is not None:
        headers[TOKEN_HEADER] = token
    if version:  # what RT and the Node client add; the gem never does
        headers[VERSION_HEADER] = "1"
    content = "" if body is None else json.dumps(body, separators=(",", ":"))
    base = receiver.prefix if prefix is None else prefix
    return receiver.client.request(method, f"{base}{path}", content=content, headers=headers)


def gem_outcome(response: Any) -> str:
    """How client.rb:40-50 takes the answer."""
    status = response.status_code
    if 200 <= status <= 299:
        return "success"
    if status in GEM_SOFT_FAILURES:
        return "soft failure"
    return "raises"


# --- agreements: Zendesk invites us, Zendesk answers our invite ----------------------------------


def zendesk_invite(**values: Any) -> dict[str, Any]:
    invite = {
        "receiver_url": OUR_URL,
        "sender_url": THEIR_URL,
        "status": "pending",
        "uuid": AGREEMENT,
        "access_key": KEY,
        "name": "Acme on Zendesk",
        "current_actor": ZENDESK_ADMIN,
        "sync_tags": True,
        "sync_custom_fields": False,
        "allows_public_comments": True,
    }
    return gem_agreement(**{**invite, **values})


def our_invite(**values: Any) -> dict[str, Any]:
    """Our invite to Zendesk as Zendesk holds it, and so echoes it back (sender_url is ours)."""
    return gem_agreement(
        receiver_url=THEIR_URL,
        sender_url=OUR_URL,
        uuid=AGREEMENT,
        access_key=KEY,
        current_actor=ZENDESK_ADMIN,
        sync_tags=False,
        sync_custom_fields=False,
        allows_public_comments=False,  # as Receiver.outgoing() sent it
        **values,
    )


def test_gem_invite_is_stored_pending_when_lenient(receiver: Receiver) -> None:
    response = gem_send(receiver, "POST", f"/agreements/{AGREEMENT}", zendesk_invite(), token=None)
    assert response.status_code == 201, response.text
    stored = receiver.store.get_agreement(AGREEMENT)
    assert stored is not None and stored.status == "pending"
    assert (stored.sync_tags, stored.allows_public_comments) == (True, True)


def test_gem_invite_in_strict_mode_is_refused_with_a_status_the_gem_reports(make_receiver) -> None:
    strict = make_receiver(strict=True)
    response = gem_send(strict, "POST", f"/agreements/{AGREEMENT}", zendesk_invite(), token=None)
    # RT's rules: the version header first (412), then the missing token (401).
    assert response.status_code == 412
    with_version = gem_send(
        strict, "POST", f"/agreements/{AGREEMENT}", zendesk_invite(), token=None, version=True
    )
    assert with_version.status_code == 401
    assert strict.store.get_agreement(AGREEMENT) is None


@pytest.mark.parametrize(
    "minimal",
    [False, True],
    ids=["full gem object", "minimal uuid+access_key+status"],
)
def test_zendesk_deactivating_its_agreement_without_deactivated_by(
    receiver: Receiver, minimal: bool
) -> None:
    """Point 1: the gem has no deactivated_by; lenient infers it from the authenticated side."""
    receiver.incoming("accepted")  # Zendesk is the sender
    body = (
        {"uuid": AGREEMENT, "access_key": KEY, "status": "inactive"}
        if minimal
        else zendesk_invite(status="inactive")
    )
    response = gem_send(receiver, "PUT", f"/agreements/{AGREEMENT}", body)
    assert gem_outcome(response) == "success", response.text
    stored = receiver.store.get_agreement(AGREEMENT)
    assert stored is not None
    assert (stored.status, stored.deactivated_by) == ("inactive", "sender")
    assert response.json()["deactivated_by"] == "sender"


def test_zendesk_deactivating_our_agreement_without_deactivated_by(receiver: Receiver) -> None:
    receiver.outgoing("accepted")  # Zendesk is the receiver
    response = gem_send(
        receiver, "PUT", f"/agreements/{AGREEMENT}", our_invite(status="inactive", name="Zendesk")
    )
    assert response.status_code == 200, response.text
    stored = receiver.store.get_agreement(AGREEMENT)
    assert stored is not None
    assert (stored.status, stored.deactivated_by) == ("inactive", "receiver")


def test_zendesk_withdrawing_its_pending_invite_without_deactivated_by(receiver: Receiver) -> None:
    receiver.incoming("pending")
    response = gem_send(
        receiver, "PUT", f"/agreements/{AGREEMENT}", zendesk_invite(status="inactive")
    )
    assert response.status_code == 200, response.text
    assert receiver.store.get_agreement(AGREEMENT).deactivated_by == "sender"  # type: ignore[union-attr]


def test_strict_mode_keeps_rts_deactivated_by_rule(make_receiver) -> None:
    strict = make_receiver(strict=True)
    strict.incoming("accepted")
    body = zendesk_invite(status="inactive")
    assert gem_send(strict, "PUT", f"/agreements/{AGREEMENT}", body).status_code == 412
    response = gem_send(strict, "PUT", f"/agreements/{AGREEMENT}", body, version=True)
    assert response.status_code == 422
    assert "deactivated_by" in response.json()["error"]
    assert strict.store.get_agreement(AGREEMENT).status == "accepted"  # type: ignore[union-attr]


def test_lenient_inference_never_names_the_other_side(receiver: Receiver) -> None:
    """Only an absent deactivated_by is inferred; naming the wrong side is still refused."""
    receiver.incoming("accepted")
    body = {**zendesk_invite(status="inactive"), "deactivated_by": "receiver"}
    response = gem_send(receiver, "PUT", f"/agreements/{AGREEMENT}", body)
    assert response.status_code == 422
    assert receiver.store.get_agreement(AGREEMENT).status == "accepted"  # type: ignore[union-attr]


@pytest.mark.parametrize("status", ["accepted", "declined"])
def test_zendesk_answering_our_invite_with_the_full_object(receiver: Receiver, status: str) -> None:
    receiver.outgoing("pending")
    body = our_invite(status=status, name="Acme on Zendesk")
    response = gem_send(receiver, "PUT", f"/agreements/{AGREEMENT}", body)
    assert response.status_code == 200, response.text
    stored = receiver.store.get_agreement(AGREEMENT)
    assert stored is not None
    assert (stored.status, stored.receiver_name) == (status, "Acme on Zendesk")


def test_zendesk_answering_in_strict_mode_with_the_version_header(make_receiver) -> None:
    strict = make_receiver(strict=True)
    strict.outgoing("pending")
    body = our_invite(status="accepted", name="Acme on Zendesk")
    assert gem_send(strict, "PUT", f"/agreements/{AGREEMENT}", body).status_code == 412
    response = gem_send(strict, "PUT", f"/agreements/{AGREEMENT}", body, version=True)
    assert response.status_code == 200, response.text


# --- tickets: share, update, unshare as the gem sends them ---------------------------------------


@pytest.fixture
def shared(receiver: Receiver) -> Receiver:
    receiver.incoming("accepted")
    response = gem_send(receiver, "POST", f"/tickets/{TICKET}", gem_ticket())
    assert response.status_code == 201, response.text
    return receiver


def test_gem_share_update_and_unshare_succeed_when_lenient(shared: Receiver) -> None:
    update = gem_ticket(
        status="pending",
        comments=[
            gem_comment("zd-comment-1", "It is on fire."),
            gem_comment("zd-comment-2", "Internal: call facilities", public=False),
        ],
    )
    response = gem_send(shared, "PUT", f"/tickets/{TICKET}", update)
    assert response.status_code == 200, response.text
    held = shared.store.get_ticket(AGREEMENT, TICKET)
    assert held is not None
    assert held.ticket.status == "pending"
    assert [(c.uuid, c.public) for c in held.ticket.comments] == [
        ("zd-comment-1", True),
        ("zd-comment-2", False),
    ]
    # The gem's nulls (tags, custom_fields, html_body, attachments) wipe nothing.
    assert held.ticket.subject == "Printer on fire"
    assert gem_outcome(gem_send(shared, "DELETE", f"/tickets/{TICKET}", None)) == "success"
    assert shared.store.get_ticket(AGREEMENT, TICKET).unshared  # type: ignore[union-attr]


def test_gem_ticket_with_short_uuids_is_accepted_lenient_and_422_strict(make_receiver) -> None:
    # The gem's own examples use short hex uuids (spec/models/*: "5ad614f4").
    for strict, expected in ((False, 201), (True, 422)):
        receiver = make_receiver(strict=strict)
        receiver.incoming("accepted")
        response = gem_send(
            receiver, "POST", "/tickets/5ad614f4", gem_ticket("5ad614f4"), version=strict
        )
        assert response.status_code == expected, response.text
        assert gem_outcome(response) != "raises"


def test_gem_ticket_requests_in_strict_mode(make_receiver) -> None:
    strict = make_receiver(strict=True)
    strict.incoming("accepted")
    ticket = gem_ticket(comments=[gem_comment(hex40("zd-comment-1"), "It is on fire.")])
    assert gem_send(strict, "POST", f"/tickets/{TICKET}", ticket).status_code == 412
    created = gem_send(strict, "POST", f"/tickets/{TICKET}", ticket, version=True)
    assert created.status_code == 201, created.text
    updated = gem_send(
        strict, "PUT", f"/tickets/{TICKET}", {**ticket, "status": "solved"}, version=True
    )
    assert updated.status_code == 200, updated.text
    gone = gem_send(strict, "DELETE", f"/tickets/{TICKET}", None, version=True)
    assert gone.status_code == 200, gone.text


# --- point 2: a sharing URL typed with a trailing slash -----------------------------------------


@pytest.mark.parametrize("strict", [False, True])
def test_repeated_slashes_reach_the_same_endpoint(make_receiver, strict: bool) -> None:
    """A partner whose sharing URL ends in '/' sends /sharing//agreements/{uuid} (agreement.rb:37
    joins base + '/agreements/')."""
    receiver = make_receiver(strict=strict)
    body = zendesk_invite()
    response = gem_send(
        receiver,
        "POST",
        f"/agreements/{AGREEMENT}",
        body,
        token=TOKEN if strict else None,
        version=strict,
        prefix="/sharing/",
    )
    assert response.status_code == 201, response.text
    receiver.store.set_status(AGREEMENT, "accepted")
    ticket = gem_ticket(comments=[gem_comment(hex40("zd-comment-1"), "It is on fire.")])
    shared = gem_send(
        receiver, "POST", f"//tickets/{TICKET}", ticket, version=strict, prefix="/sharing/"
    )
    assert shared.status_code == 201, shared.text


def test_every_4xx_is_logged_with_its_reason(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="nhd_bridge.core.protocol.receiver")
    assert receiver.client.get("/elsewhere/agreements/x").status_code == 404
    assert receiver.request("PATCH", f"/tickets/{TICKET}", {}, token=TOKEN).status_code == 405
    lines = [record.getMessage() for record in caplog.records]
    assert any("GET /elsewhere/agreements/x refused: 404" in line for line in lines), lines
    assert any(f"PATCH /sharing/tickets/{TICKET} refused: 405" in line for line in lines), lines
    assert all(KEY not in line for line in lines)


# --- point 5: soft failures where the gem expects them ------------------------------------------


def test_malformed_json_is_a_soft_failure_when_lenient(receiver: Receiver) -> None:
    response = receiver.request(
        "POST", f"/agreements/{AGREEMENT}", raw=b'{"uuid": "abc", ', token=TOKEN
    )
    assert response.status_code == 422
    assert gem_outcome(response) == "soft failure"
    assert "not valid JSON" in response.json()["error"]


def test_malformed_json_is_400_in_strict_mode_as_rt_answers(make_receiver) -> None:
    strict = make_receiver(strict=True)
    response = strict.request("POST", f"/agreements/{AGREEMENT}", raw=b"{", token=TOKEN)
    assert response.status_code == 400


@pytest.mark.parametrize(("strict", "expected"), [(False, 422), (True, 413)])
def test_body_over_the_cap_names_the_cap(make_receiver, strict: bool, expected: int) -> None:
    small = make_receiver(strict=strict, max_body_bytes=300)
    small.incoming("accepted")
    response = gem_send(small, "POST", f"/tickets/{TICKET}", gem_ticket(), version=strict)
    assert response.status_code == expected
    assert "300 bytes" in response.json()["error"]
    assert "max_body_bytes" in response.json()["error"]
    assert small.store.get_ticket(AGREEMENT, TICKET) is None


def test_default_cap_holds_a_long_ticket_with_big_comments(receiver: Receiver) -> None:
    """The figure behind the default (benchmarks/nhd_share_size.py): 1,000 comments of 16 KiB
    text, each with its HTML twice that size, is about 47 MiB of JSON as the gem writes it."""
    text = "x" * 16 * 1024
    comments = [
        gem_comment(f"zd-comment-{index}", text, html_body=f"<p>{text}</p><blockquote>{text}")
        for index in range(1000)
    ]
    size = len(json.dumps(gem_ticket(comments=comments), separators=(",", ":")).encode())
    assert 45 * 2**20 < size < receiver.settings.max_body_bytes
