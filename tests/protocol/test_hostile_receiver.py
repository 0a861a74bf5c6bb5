"""The receiver against a hostile partner (issue 11): moved URLs, abuse limits, slow clients."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update

from nhd_bridge.core.protocol.receiver import TOKEN_HEADER, VERSION_HEADER
from nhd_bridge.core.state.schema import wire_agreements

from .conftest import AGREEMENT, KEY, TICKET, Receiver, hex40, invite_body, ticket_body

TOKEN = f"{AGREEMENT}:{KEY}"


def _shared(receiver: Receiver) -> None:
    receiver.incoming("accepted")
    assert receiver.share().status_code == 201


# --- 4. a partner cannot move where we send ------------------------------------------------------


@pytest.mark.parametrize("field", ["sender_url", "receiver_url"])
@pytest.mark.parametrize("we_are", ["sender", "receiver"])
def test_an_agreement_put_moving_a_url_is_refused(
    receiver: Receiver, field: str, we_are: str
) -> None:
    if we_are == "sender":
        receiver.outgoing("accepted")  # the partner (caller) is the receiver
    else:
        receiver.incoming("accepted")  # the partner (caller) is the sender
    before = receiver.store.get_agreement(AGREEMENT)
    moved = "https://them.example:8443/elsewhere"

    response = receiver.request("PUT", f"/agreements/{AGREEMENT}", {field: moved}, token=TOKEN)

    assert response.status_code == 422, response.text
    assert "cannot change" in response.json()["error"]
    assert receiver.store.get_agreement(AGREEMENT) == before


# --- 7. abuse limits -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"tags": [f"t{n}" for n in range(20_000)]},
        {"custom_fields": {f"f{n}": n for n in range(30_000)}},
        {"original_id": 2**53},
        {"custom_fields": {"big": -(2**60)}},
        {"custom_fields": {"huge": 1e300}},
    ],
    ids=["20k-tags", "30k-custom-fields", "unsafe-int", "unsafe-negative", "unsafe-float"],
)
def test_absurd_sizes_and_unsafe_numbers_are_refused(receiver: Receiver, extra: dict) -> None:
    receiver.incoming("accepted", sync_tags=True, sync_custom_fields=True)
    response = receiver.share(ticket_body(**extra))
    assert response.status_code == 422, response.text
    assert receiver.store.get_ticket(AGREEMENT, TICKET) is None


def test_numbers_within_the_safe_range_are_kept(receiver: Receiver) -> None:
    receiver.incoming("accepted", sync_custom_fields=True)
    response = receiver.share(ticket_body(custom_fields={"n": 2**53 - 1, "x": -1.5}))
    assert response.status_code == 201, response.text


def _invite(receiver: Receiver, n: int, *, token: bool = False) -> Any:
    uuid, key = hex40(f"invite-{n}"), hex40(f"key-{n}")
    header = f"{uuid}:{key}" if token else None
    return receiver.request("POST", f"/agreements/{uuid}", invite_body(uuid, key), token=header)


def test_tokenless_invites_are_capped_per_source(make_receiver: Callable[..., Receiver]) -> None:
    receiver = make_receiver(max_invites_per_source=3)
    answers = [_invite(receiver, n).status_code for n in range(5)]
    assert answers == [201, 201, 201, 429, 429]
    assert receiver.store.count_pending_invites() == 3


def test_pending_invites_are_capped_in_total_and_stale_ones_pruned(
    make_receiver: Callable[..., Receiver],
) -> None:
    receiver = make_receiver(max_pending_invites=2, max_invites_per_source=100)
    assert [_invite(receiver, n).status_code for n in range(3)] == [201, 201, 429]
    # One invite ages past pending_invite_days: it is removed, and room is made.
    with receiver.state.engine.begin() as connection:
        connection.execute(
            update(wire_agreements)
            .where(wire_agreements.c.uuid == hex40("invite-0"))
            .values(created_at=datetime.now(UTC) - timedelta(days=31))
        )
    assert _invite(receiver, 3).status_code == 201
    assert receiver.store.get_agreement(hex40("invite-0")) is None
    assert receiver.store.count_pending_invites() == 2


def test_a_slow_body_is_cut_with_408(make_receiver: Callable[..., Receiver]) -> None:
    receiver = make_receiver(read_timeout_seconds=0.2)
    _shared(receiver)

    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"uuid": "'
        await asyncio.sleep(2)
        yield TICKET.encode() + b'", "status": "solved"}'

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=receiver.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.put(
                f"/sharing/tickets/{TICKET}",
                content=trickle(),
                headers={TOKEN_HEADER: TOKEN, VERSION_HEADER: "1"},
            )

    response = asyncio.run(asyncio.wait_for(send(), timeout=10))

    assert response.status_code == 408
    assert receiver.store.get_ticket(AGREEMENT, TICKET).ticket.status == "open"  # type: ignore[union-attr]


def test_an_invite_naming_another_receiver_is_not_counted(
    make_receiver: Callable[..., Receiver],
) -> None:
    receiver = make_receiver(max_invites_per_source=1)
    body = invite_body(hex40("elsewhere"), receiver_url="https://other.example/sharing")
    refused = receiver.request("POST", f"/agreements/{hex40('elsewhere')}", body)
    assert refused.status_code == 422
    assert _invite(receiver, 1).status_code == 201
