"""Accepting is enough: `agreements accept` and `invite` bind the agreement to its nhd instance in
the state store, a running engine (as in `serve`) uses it at once, and a YAML pin still wins."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_nhd_adapter import AGENT, OUR_URL, THEIR_URL, PartnerDesk, Us, clean

from nhd_bridge.cli import main
from nhd_bridge.core.model import Ticket
from nhd_bridge.core.plugins import Plugins
from nhd_bridge.core.protocol.invites import new_invite


@pytest.fixture
def partner(tmp_path: Path) -> Iterator[PartnerDesk]:
    desk = PartnerDesk(tmp_path)
    yield desk
    desk.close()


@pytest.fixture
def make_us(tmp_path: Path, plugins: Plugins, partner: PartnerDesk) -> Iterator[Callable[..., Us]]:
    made: list[Us] = []

    def build(*, we_share: bool) -> Us:
        made.append(Us(tmp_path, plugins, partner, we_share=we_share))
        return made[-1]

    yield build
    for us in made:
        us.close()


def _partner_invites(us: Us) -> str:
    offer = new_invite(name="Them Inc", our_url=THEIR_URL, partner_url=OUR_URL)
    us.partner.wire.create_outgoing_agreement(offer)
    assert us.partner.sender.invite(OUR_URL, offer).ok
    return offer.uuid


def _partner_shares(us: Us, agreement_uuid: str) -> None:
    agreement = us.partner.wire.get_agreement(agreement_uuid)
    assert agreement is not None
    ticket = Ticket(
        uuid="them-ticket-1",
        subject="Cannot log in",
        requested_at=datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
        status="open",
        requester=AGENT,
        comments=[],
        current_actor=AGENT,
    )
    assert us.partner.sender.share_ticket(OUR_URL, agreement, ticket).status == 201


def test_accept_binds_and_a_running_engine_uses_it_without_a_reload(
    make_us: Callable[..., Us],
) -> None:
    us = make_us(we_share=False)  # the YAML names no agreement
    uuid = _partner_invites(us)
    waiting = us.sync()  # the engine is now running, as in serve
    assert waiting.total_writes == 0 and "pending" in waiting.errors[0]

    accepted = us.cli("accept", uuid, "--name", "Us Ltd")

    assert accepted.exit_code == 0, accepted.output
    assert "bound to nhd instance partner" in accepted.output
    assert "put it in the YAML" not in accepted.output
    assert f"{uuid}  accepted" in us.cli("list").output
    assert "instance partner (bound)" in us.cli("list").output
    assert "instance: partner (bound)" in us.cli("show", uuid).output
    shown = CliRunner().invoke(main, ["-c", str(us.path), "validate", "--show"])
    assert shown.exit_code == 0, shown.output
    partner = json.loads(shown.stdout)["instances"]["partner"]
    assert partner["agreement"] == uuid and "state store" in partner["agreement_from"]
    _partner_shares(us, uuid)
    assert clean(us.sync()).writes["create"] == 1  # same engine: no reload, no YAML edit
    [mine] = us.desk.list_tickets()
    assert mine.shared_uuid == "them-ticket-1"


def test_invite_binds_and_the_share_goes_out_once_the_partner_accepts(
    make_us: Callable[..., Us],
) -> None:
    us = make_us(we_share=True)
    invited = us.cli("invite", "--instance", "partner", "--name", "Us Ltd")
    assert invited.exit_code == 0, invited.output
    uuid = invited.output.split("agreement ", 1)[1].split()[0]
    assert "bound to nhd instance partner" in invited.output
    us.desk.create_ticket("Printer on fire")
    assert us.sync().total_writes == 0  # pending: nothing goes out yet
    us.partner.accept(uuid)
    assert clean(us.sync()).writes["create"] == 1
    # One instance holds one agreement: a second invite is refused while this one is live.
    again = us.cli("invite", "--instance", "partner", "--name", "Us Ltd")
    assert again.exit_code == 2 and uuid in again.output


def test_a_yaml_pin_wins_over_the_binding(make_us: Callable[..., Us]) -> None:
    us = make_us(we_share=False)
    first = _partner_invites(us)
    second = _partner_invites(us)
    us.write_config(agreement=first)
    accepted = us.cli("accept", second, "--instance", "partner")
    assert accepted.exit_code == 0, accepted.output
    assert f"pins agreement {first} in the YAML, which wins" in accepted.output
    assert us.wire.bound_agreement("partner") == second
    us.sync()
    assert us.adapter is not None and us.adapter.agreement_uuid() == first
    listed = us.cli("list").output
    assert f"{first}  pending" in listed and "instance partner (yaml)" in listed
    second_line = next(line for line in listed.splitlines() if line.startswith(second))
    assert second_line.endswith("instance -")
