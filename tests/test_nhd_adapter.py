"""The native NHD partner adapter, its ``agreements`` commands, and two help desks talking.

The end-to-end tests run two receivers in one process: "us" is a bridge (an embedded local
tracker ``desk`` plus an ``nhd`` instance ``partner``) whose receiver app stores what the partner
sends in the bridge's own state store; "the partner" is another receiver app over its own store,
standing in for Zendesk or RT. Our sender really talks to the partner's receiver, and the
partner's requests really hit ours (``httpx.MockTransport`` forwarding to each app's
``TestClient``): every byte crosses the wire format.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner
from pydantic import ValidationError

from nhd_bridge.adapters.local import LocalConfig, LocalTracker, local_person
from nhd_bridge.adapters.nhd import NhdAdapter, NhdConfig
from nhd_bridge.adapters.nhd.cli import make_agreements_group
from nhd_bridge.core.adapter import (
    AdapterContext,
    AttachmentRef,
    CommentDraft,
    PermanentError,
    TicketDraft,
    TransientError,
)
from nhd_bridge.core.config import LoadedConfig, load_config
from nhd_bridge.core.engine import SyncEngine
from nhd_bridge.core.model import Actor, Agreement, Attachment, Comment, Ticket
from nhd_bridge.core.plugins import Plugins
from nhd_bridge.core.protocol.invites import new_invite
from nhd_bridge.core.protocol.receiver import create_receiver_app
from nhd_bridge.core.protocol.sender import NHDSender, SendResult, URLPolicy
from nhd_bridge.core.protocol.settings import ReceiverSettings
from nhd_bridge.core.protocol.wire_store import WireStore
from nhd_bridge.core.run import RunSummary
from nhd_bridge.core.state import StateStore

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

OUR_URL = "https://us.example/sharing"
THEIR_URL = "https://them.example/sharing"
AGENT = Actor(uuid="them-agent-1", name="Tess Them", role="agent")


def forward(client: TestClient) -> httpx.MockTransport:
    """A transport that delivers every request to an in-process app, as the network would."""

    def deliver(request: httpx.Request) -> httpx.Response:
        headers = {
            key: value
            for key, value in request.headers.items()
            if key.lower() not in {"host", "content-length"}
        }
        answer = client.request(
            request.method, request.url.path, content=request.content, headers=headers
        )
        return httpx.Response(
            answer.status_code,
            headers={k: v for k, v in answer.headers.items() if k.lower() != "content-length"},
            content=answer.content,
        )

    return httpx.MockTransport(deliver)


def receiver(base_url: str, state: StateStore) -> TestClient:
    return TestClient(create_receiver_app(ReceiverSettings(base_url=base_url), WireStore(state)))


class PartnerDesk:
    """The partner help desk: its receiver at THEIR_URL, and a sender aimed at ours."""

    def __init__(self, folder: Path):
        self.state = StateStore(f"sqlite:///{folder / 'partner-state.db'}")
        self.wire = WireStore(self.state)
        self.client = receiver(THEIR_URL, self.state)
        self.to_us: NHDSender | None = None

    def connect(self, our_client: TestClient) -> None:
        policy = URLPolicy.for_partner(OUR_URL, allow_private_networks=True)
        self.to_us = NHDSender(policy, transport=forward(our_client), sleep=lambda _s: None)

    @property
    def sender(self) -> NHDSender:
        assert self.to_us is not None
        return self.to_us

    def accept(self, uuid: str) -> None:
        agreement = self.wire.set_status(uuid, "accepted")
        assert self.sender.accept(OUR_URL, agreement, name="Them Inc").ok

    def put(self, agreement_uuid: str, ticket_uuid: str, **fields: Any) -> SendResult:
        agreement = self.wire.get_agreement(agreement_uuid)
        assert agreement is not None
        update = Ticket(uuid=ticket_uuid, current_actor=AGENT, **fields)
        result = self.sender.update_ticket(OUR_URL, agreement, update)
        if result.ok:
            self.wire.record_local_ticket(agreement_uuid, update)
        return result

    def ticket(self, agreement_uuid: str, ticket_uuid: str) -> Ticket:
        held = self.wire.get_ticket(agreement_uuid, ticket_uuid)
        assert held is not None, "the partner does not hold the ticket"
        return held.ticket

    def close(self) -> None:
        if self.to_us is not None:
            self.to_us.close()
        self.client.close()
        self.state.close()


class Us:
    """Our bridge: YAML, state store, receiver app, embedded tracker, engine."""

    def __init__(self, folder: Path, plugins: Plugins, partner: PartnerDesk, *, we_share: bool):
        self.folder = folder
        self.plugins = plugins
        self.partner = partner
        self.we_share = we_share
        self.path = folder / "bridge.yaml"
        self.write_config(agreement=None)
        self.state = StateStore(f"sqlite:///{folder / 'state.db'}")
        self.wire = WireStore(self.state)
        self.client = receiver(OUR_URL, self.state)
        self.desk = LocalTracker(LocalConfig(path=folder / "desk.db"))
        self.engine: SyncEngine | None = None
        self.adapter: NhdAdapter | None = None
        partner.connect(self.client)

    def write_config(self, agreement: str | None, **nhd: Any) -> None:
        instance: dict[str, Any] = {
            "kind": "nhd",
            "partner_url": THEIR_URL,
            "our_url": OUR_URL,
            "allow_private_networks": True,  # loopback only: the partner is in this process
            **nhd,
        }
        if agreement is not None:
            instance["agreement"] = agreement
        sides = ("desk", "partner") if self.we_share else ("partner", "desk")
        document = {
            "state": {"url": f"sqlite:///{self.folder / 'state.db'}"},
            "instances": {
                "desk": {
                    "kind": "local",
                    "path": "desk.db",
                    "sharing_url": "https://us.example/desk",
                },
                "partner": instance,
            },
            "agreements": {"share": {"sender": sides[0], "receiver": sides[1]}},
        }
        self.path.write_text(yaml.safe_dump(document, sort_keys=False))
        if getattr(self, "engine", None) is not None:
            self.close_engine()

    def load(self, _ctx: Any = None) -> LoadedConfig:
        return load_config(self.path, plugins=self.plugins, environ={})

    def cli(self, *args: str) -> Any:
        group = make_agreements_group(self.load, transport=forward(self.partner.client))
        return CliRunner().invoke(group, list(args), catch_exceptions=False)

    def sync(self) -> RunSummary:
        if self.engine is None:
            config = self.load()
            self.adapter = NhdAdapter(
                "partner",
                config.adapter_configs["partner"],
                transport=forward(self.partner.client),
                sleep=lambda _s: None,
            )
            # The engine attaches adapters it is given, as it does those it builds.
            self.engine = SyncEngine(config, self.state, adapters={"partner": self.adapter})
        return self.engine.run("share")

    def close_engine(self) -> None:
        if self.engine is not None:
            self.engine.close()
        self.engine = None
        self.adapter = None

    def journal(self) -> list[Any]:
        return self.state.read().journal(limit=1000)

    def close(self) -> None:
        self.close_engine()
        self.desk.close()
        self.client.close()
        self.state.close()


@pytest.fixture
def partner(tmp_path: Path) -> Iterator[PartnerDesk]:
    desk = PartnerDesk(tmp_path)
    yield desk
    desk.close()


@pytest.fixture
def make_us(tmp_path: Path, plugins: Plugins, partner: PartnerDesk) -> Iterator[Callable[..., Us]]:
    made: list[Us] = []

    def build(*, we_share: bool) -> Us:
        us = Us(tmp_path, plugins, partner, we_share=we_share)
        made.append(us)
        return us

    yield build
    for us in made:
        us.close()


def invite_partner(us: Us, *flags: str) -> str:
    """`nhd-bridge agreements invite`, the partner accepting, and the uuid put in the YAML."""
    result = us.cli("invite", "--instance", "partner", "--name", "Us Ltd", *flags)
    assert result.exit_code == 0, result.output
    uuid = result.output.split("agreement ", 1)[1].split()[0]
    us.partner.accept(uuid)
    us.write_config(agreement=uuid)
    return uuid


def clean(summary: RunSummary) -> RunSummary:
    assert not summary.errors, summary.errors
    assert summary.parked == 0
    return summary


# --- end to end: we share -----------------------------------------------------------------------


def test_we_share_a_ticket_and_both_sides_talk(make_us: Callable[..., Us]) -> None:
    us = make_us(we_share=True)
    uuid = invite_partner(us)
    assert us.wire.get_agreement(uuid).status == "accepted"  # type: ignore[union-attr]
    rita = local_person("Rita Requester", role=None)
    ticket = us.desk.create_ticket("Printer on fire", status="open", requester=rita)
    us.desk.add_comment(ticket.local_id, "It is on fire.", author=rita)

    first = clean(us.sync())

    assert first.writes["create"] == 1 and first.writes["comment"] == 1
    [link] = [e for e in us.journal() if e.action == "create"]
    shared_uuid = link.shared_uuid
    theirs = us.partner.ticket(uuid, shared_uuid)
    assert theirs.subject == "Printer on fire" and theirs.status == "open"
    assert theirs.requester.name == "Rita Requester"  # type: ignore[union-attr]
    assert [c.body for c in theirs.comments] == ["It is on fire."]
    assert theirs.original_id == f"#{ticket.local_id}"

    # The partner answers with a public reply, a private note and a status change.
    result = us.partner.put(
        uuid,
        shared_uuid,
        status="pending",
        comments=[
            Comment(uuid="them-c-1", author=AGENT, body="Unplug it.", public=True),
            Comment(uuid="them-c-2", author=AGENT, body="Customer sounds calm.", public=False),
        ],
    )
    assert result.ok, result.message
    clean(us.sync())

    mine = us.desk.get(ticket.local_id)
    assert mine is not None and mine.status == "pending"
    by_body = {c.body: c for c in mine.comments}
    assert by_body["Unplug it."].public is True
    assert by_body["Customer sounds calm."].public is False
    assert by_body["Unplug it."].author.name == "Tess Them"  # type: ignore[union-attr]

    # Our private note and our status change reach the partner.
    us.desk.add_comment(
        ticket.local_id, "Sent a technician.", public=False, author=local_person("Al Agent")
    )
    us.desk.set_status(ticket.local_id, "solved")
    clean(us.sync())

    theirs = us.partner.ticket(uuid, shared_uuid)
    assert theirs.status == "solved"
    note = [c for c in theirs.comments if c.body == "Sent a technician."]
    assert len(note) == 1 and note[0].public is False
    assert note[0].author.name == "Al Agent"  # type: ignore[union-attr]
    assert len(theirs.comments) == 4

    assert clean(us.sync()).total_writes == 0
    assert clean(us.sync()).total_writes == 0


def test_partial_delegation_keeps_partner_comments_private_and_status_put(
    make_us: Callable[..., Us],
) -> None:
    us = make_us(we_share=True)
    uuid = invite_partner(us, "--partial")
    ticket = us.desk.create_ticket("Billing question", status="open")
    clean(us.sync())
    [shared_uuid] = {e.shared_uuid for e in us.journal() if e.action == "create"}

    result = us.partner.put(
        uuid,
        shared_uuid,
        status="solved",
        comments=[Comment(uuid="them-c-1", author=AGENT, body="Refunded.", public=True)],
    )
    assert result.ok
    clean(us.sync())

    mine = us.desk.get(ticket.local_id)
    assert mine is not None
    assert mine.status == "open"  # partial delegation: status stays on the side that moved it
    [comment] = mine.comments
    assert comment.body == "Refunded." and comment.public is False
    reasons = " ".join(e.reason or "" for e in us.journal())
    assert "partial delegation" in reasons
    assert clean(us.sync()).total_writes == 0


def test_unshare_answers_410_and_stops_syncing(make_us: Callable[..., Us]) -> None:
    us = make_us(we_share=True)
    uuid = invite_partner(us)
    ticket = us.desk.create_ticket("Short lived", status="open")
    clean(us.sync())
    [shared_uuid] = {e.shared_uuid for e in us.journal() if e.action == "create"}
    assert us.adapter is not None

    us.adapter.unshare(shared_uuid)

    partner_copy = us.partner.wire.get_ticket(uuid, shared_uuid)
    assert partner_copy is not None and partner_copy.unshared  # kept there, marked unshared
    agreement = us.wire.get_agreement(uuid)
    assert agreement is not None
    again = us.adapter.sender.get_ticket(THEIR_URL, agreement, shared_uuid)
    assert again.status == 410 and again.gone
    assert us.partner.put(uuid, shared_uuid, status="hold").status == 410

    us.desk.add_comment(ticket.local_id, "Anyone there?")
    us.desk.set_status(ticket.local_id, "pending")
    summary = clean(us.sync())
    assert summary.total_writes == 0
    assert any(e.action == "orphan" for e in us.journal())
    assert clean(us.sync()).total_writes == 0
    assert len(us.partner.ticket(uuid, shared_uuid).comments) == 0


def test_engine_unshare_tells_the_native_partner_before_it_stops_syncing(
    make_us: Callable[..., Us],
) -> None:
    us = make_us(we_share=True)
    uuid = invite_partner(us)
    ticket = us.desk.create_ticket("Unshared from the command line", status="open")
    clean(us.sync())
    assert us.engine is not None

    shared_uuid = us.engine.unshare("share", "desk", ticket.local_id)

    partner_copy = us.partner.wire.get_ticket(uuid, shared_uuid)
    assert partner_copy is not None and partner_copy.unshared
    us.desk.add_comment(ticket.local_id, "not for the partner any more")
    assert clean(us.sync()).total_writes == 0
    assert len(us.partner.ticket(uuid, shared_uuid).comments) == 0


def test_a_partner_that_is_down_parks_the_ticket_and_the_next_run_delivers(
    make_us: Callable[..., Us],
) -> None:
    us = make_us(we_share=True)
    invite_partner(us)
    us.desk.create_ticket("Flaky partner", status="open")
    us.sync()
    assert us.adapter is not None
    healthy = us.adapter.sender._http._transport  # type: ignore[attr-defined]
    us.adapter.sender._http._transport = httpx.MockTransport(  # type: ignore[attr-defined]
        lambda request: httpx.Response(503, headers={"Retry-After": "1"})
    )
    ticket = us.desk.list_tickets()[0]
    us.desk.add_comment(ticket.local_id, "Still broken.")

    down = us.sync()

    assert down.parked == 1 and "503" in down.errors[0]
    us.adapter.sender._http._transport = healthy  # type: ignore[attr-defined]
    with us.state.transaction() as tx:  # the backoff has passed
        for row in tx.parked("share"):
            tx.park(
                "share",
                row.shared_uuid,
                row.instance,
                row.local_id,
                row.error,
                -timedelta(minutes=1),
            )
    clean(us.sync())
    [uuid] = {e.shared_uuid for e in us.journal() if e.action == "create"}
    agreement_uuid = us.load().adapter_configs["partner"].agreement  # type: ignore[attr-defined]
    assert [c.body for c in us.partner.ticket(agreement_uuid, uuid).comments] == ["Still broken."]


# --- end to end: the partner invites us ---------------------------------------------------------


def test_partner_invites_us_we_accept_and_receive_its_tickets(make_us: Callable[..., Us]) -> None:
    us = make_us(we_share=False)
    partner = us.partner
    offer = new_invite(name="Them Inc", our_url=THEIR_URL, partner_url=OUR_URL)
    partner.wire.create_outgoing_agreement(offer)
    assert partner.sender.invite(OUR_URL, offer).ok
    us.write_config(agreement=offer.uuid)

    listed = us.cli("list")
    assert offer.uuid in listed.output and "pending" in listed.output
    assert offer.access_key not in listed.output  # type: ignore[operator]
    waiting = us.sync()
    assert waiting.total_writes == 0 and "pending" in waiting.errors[0]

    accepted = us.cli("accept", offer.uuid, "--name", "Us Ltd")

    assert accepted.exit_code == 0, accepted.output
    assert partner.wire.get_agreement(offer.uuid).status == "accepted"  # type: ignore[union-attr]
    assert partner.wire.get_agreement(offer.uuid).receiver_name == "Us Ltd"  # type: ignore[union-attr]
    assert us.wire.get_agreement(offer.uuid).status == "accepted"  # type: ignore[union-attr]

    requester = Actor(uuid="them-user-9", name="Carla Customer")
    shared = Ticket(
        uuid="them-ticket-1",
        subject="Cannot log in",
        requested_at=datetime(2024, 5, 1, 9, 30, tzinfo=UTC),
        status="open",
        requester=requester,
        original_id="4711",
        comments=[
            Comment(uuid="them-c-1", author=requester, body="Password reset fails."),
            Comment(uuid="them-c-2", author=AGENT, body="Escalating.", public=False),
        ],
        current_actor=AGENT,
    )
    agreement = partner.wire.get_agreement(offer.uuid)
    assert agreement is not None
    assert partner.sender.share_ticket(OUR_URL, agreement, shared).status == 201
    partner.wire.record_local_ticket(offer.uuid, shared)

    first = clean(us.sync())

    assert first.writes["create"] == 1 and first.writes["comment"] == 2
    [mine] = us.desk.list_tickets()
    assert mine.subject == "Cannot log in" and mine.status == "open"
    assert mine.requester is not None and mine.requester.name == "Carla Customer"
    assert mine.shared_uuid == "them-ticket-1"
    assert [(c.body, c.public) for c in mine.comments] == [
        ("Password reset fails.", True),
        ("Escalating.", False),
    ]

    us.desk.add_comment(mine.local_id, "Reset done, try again.", author=local_person("Al Agent"))
    clean(us.sync())
    theirs = partner.ticket(offer.uuid, "them-ticket-1")
    assert [c.body for c in theirs.comments][-1] == "Reset done, try again."
    assert theirs.comments[-1].public is True

    assert partner.put(offer.uuid, "them-ticket-1", status="solved").ok
    clean(us.sync())
    assert us.desk.get(mine.local_id).status == "solved"  # type: ignore[union-attr]
    assert clean(us.sync()).total_writes == 0

    # The partner unshares: our copy stays, nothing more syncs, and its PUTs get 410.
    assert partner.sender.unshare_ticket(OUR_URL, agreement, "them-ticket-1").ok
    us.desk.add_comment(mine.local_id, "Hello?")
    assert clean(us.sync()).total_writes == 0
    assert any(e.action == "orphan" for e in us.journal())
    assert partner.sender.get_ticket(OUR_URL, agreement, "them-ticket-1").status == 410


def test_we_cannot_share_under_the_partners_agreement(make_us: Callable[..., Us]) -> None:
    us = make_us(we_share=True)  # misconfigured: the partner is the agreement's sender
    offer = new_invite(name="Them Inc", our_url=THEIR_URL, partner_url=OUR_URL)
    us.partner.wire.create_outgoing_agreement(offer)
    assert us.partner.sender.invite(OUR_URL, offer).ok
    us.write_config(agreement=offer.uuid)
    assert us.cli("accept", offer.uuid).exit_code == 0
    us.desk.create_ticket("Ours", status="open")

    summary = us.sync()

    assert summary.parked == 1
    assert "only shares" in summary.errors[0] or "alone shares" in summary.errors[0]


# --- the agreements commands --------------------------------------------------------------------


def test_invite_rolls_back_when_the_partner_refuses(make_us: Callable[..., Us]) -> None:
    us = make_us(we_share=True)
    group = make_agreements_group(
        us.load,
        transport=httpx.MockTransport(lambda request: httpx.Response(422, json={"error": "no"})),
    )

    result = CliRunner().invoke(group, ["invite", "--instance", "partner", "--name", "Us Ltd"])

    assert result.exit_code == 1
    assert "not kept" in result.output
    assert us.wire.row_counts()["nhd_wire_agreements"] == 0


def test_invite_to_a_private_address_is_refused_without_contacting_it(
    make_us: Callable[..., Us],
) -> None:
    us = make_us(we_share=True)
    us.write_config(agreement=None, allow_private_networks=False, partner_url="http://10.0.0.7/s")
    calls: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(201)

    group = make_agreements_group(us.load, transport=httpx.MockTransport(record))
    result = CliRunner().invoke(group, ["invite", "--instance", "partner", "--name", "Us Ltd"])

    assert result.exit_code == 2 and "allow_private_networks" in result.output
    assert calls == [] and us.wire.row_counts()["nhd_wire_agreements"] == 0


def test_agreement_commands_refuse_bad_usage_with_exit_2(make_us: Callable[..., Us]) -> None:
    us = make_us(we_share=True)
    uuid = invite_partner(us)

    unknown = us.cli("accept", "f" * 40)
    own = us.cli("accept", uuid)
    not_nhd = us.cli("invite", "--instance", "desk", "--name", "x")
    twice = us.cli("invite", "--instance", "partner", "--name", "x")

    assert unknown.exit_code == 2 and "unknown" in unknown.output
    assert own.exit_code == 2 and "our own invite" in own.output
    assert not_nhd.exit_code == 2 and "not a kind: nhd instance" in not_nhd.output
    assert twice.exit_code == 2 and "bound to agreement" in twice.output
    assert all(len(r.output.strip().splitlines()) == 1 for r in (unknown, own, not_nhd, twice))


def test_accept_when_the_partner_is_unreachable_changes_nothing(
    make_us: Callable[..., Us],
) -> None:
    us = make_us(we_share=False)
    offer = new_invite(name="Them Inc", our_url=THEIR_URL, partner_url=OUR_URL)
    assert us.partner.sender.invite(OUR_URL, offer).ok

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    group = make_agreements_group(
        us.load, transport=httpx.MockTransport(down), sleep=lambda _s: None
    )
    result = CliRunner().invoke(group, ["accept", offer.uuid])

    assert result.exit_code == 1 and "nothing changed" in result.output
    assert us.wire.get_agreement(offer.uuid).status == "pending"  # type: ignore[union-attr]


def test_accept_needs_an_instance_for_the_inviting_url(make_us: Callable[..., Us]) -> None:
    us = make_us(we_share=False)
    stranger = new_invite(name="?", our_url="https://stranger.example/s", partner_url=OUR_URL)
    assert us.partner.sender.invite(OUR_URL, stranger).ok  # an invite can name any URL

    result = us.cli("accept", stranger.uuid)

    assert result.exit_code == 2 and "no kind: nhd instance" in result.output
    assert us.wire.get_agreement(stranger.uuid).status == "pending"  # type: ignore[union-attr]


def test_decline_and_deactivate_reach_the_partner(make_us: Callable[..., Us]) -> None:
    us = make_us(we_share=True)
    uuid = invite_partner(us)

    ended = us.cli("deactivate", uuid)

    assert ended.exit_code == 0, ended.output
    for wire in (us.wire, us.partner.wire):
        agreement = wire.get_agreement(uuid)
        assert agreement is not None
        assert (agreement.status, agreement.deactivated_by) == ("inactive", "sender")
    again = us.cli("deactivate", uuid)
    assert again.exit_code == 2 and "inactive" in again.output
    summary = us.sync()
    assert summary.total_writes == 0 and "inactive" in summary.errors[0]

    offer = new_invite(name="Them Inc", our_url=THEIR_URL, partner_url=OUR_URL)
    us.partner.wire.create_outgoing_agreement(offer)
    assert us.partner.sender.invite(OUR_URL, offer).ok
    declined = us.cli("decline", offer.uuid)
    assert declined.exit_code == 0, declined.output
    assert us.partner.wire.get_agreement(offer.uuid).status == "declined"  # type: ignore[union-attr]


def test_show_hides_the_access_key(make_us: Callable[..., Us]) -> None:
    us = make_us(we_share=True)
    uuid = invite_partner(us, "--partial", "--sync-tags")
    key = us.wire.get_agreement(uuid).access_key  # type: ignore[union-attr]

    shown = us.cli("show", uuid)

    assert shown.exit_code == 0
    assert key not in shown.output and "*** (hidden)" in shown.output
    assert "partial" in shown.output and "sync_tags: true" in shown.output
    assert "instance: partner" in shown.output


# --- the adapter on its own ---------------------------------------------------------------------


def test_nhd_is_registered_as_a_default_plugin(plugins: Plugins) -> None:
    assert plugins.adapter_class("nhd") is NhdAdapter


@pytest.mark.parametrize(
    "bad",
    [
        {"partner_url": "ftp://them.example", "our_url": OUR_URL},
        {"partner_url": THEIR_URL, "our_url": OUR_URL, "allowed_hosts": ["a b"]},
        {"partner_url": THEIR_URL, "our_url": OUR_URL, "agreement": "not a uuid!"},
        {"partner_url": THEIR_URL, "our_url": OUR_URL, "access_key": "no such key"},
    ],
)
def test_config_refuses_bad_values(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        NhdConfig.model_validate(bad)


def test_config_defaults_are_safe() -> None:
    config = NhdConfig(partner_url=THEIR_URL + "/", our_url=OUR_URL)
    assert config.partner_url == THEIR_URL
    assert config.verify_tls is True and config.allow_private_networks is False


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateStore]:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    yield store
    store.close()


def adapter_for(state: StateStore, handler: Any, **options: Any) -> NhdAdapter:
    config = NhdConfig(
        agreement="a" * 40,
        partner_url=THEIR_URL,
        our_url=OUR_URL,
        allow_private_networks=True,
        **options,
    )
    adapter = NhdAdapter(
        "partner", config, transport=httpx.MockTransport(handler), sleep=lambda _s: None
    )
    adapter.attach(AdapterContext("partner", "nhd-bridge://partner", state))
    return adapter


def store_agreement(state: StateStore, *, we_send: bool, status: str = "accepted") -> None:
    agreement = Agreement(
        uuid="a" * 40,
        name="Us Ltd",
        status=status,  # type: ignore[arg-type]
        sender_url=OUR_URL if we_send else THEIR_URL,
        receiver_url=THEIR_URL if we_send else OUR_URL,
        access_key="k" * 40,
        allows_public_comments=True,
    )
    wire = WireStore(state)
    if we_send:
        wire.create_outgoing_agreement(agreement)
    else:
        wire.create_incoming_agreement(agreement)


def test_unknown_agreement_counts_as_pending_and_check_says_how_to_fix(state: StateStore) -> None:
    adapter = adapter_for(state, lambda request: httpx.Response(500))

    terms = adapter.agreement_terms()

    assert terms is not None and terms.status == "pending" and not terms.allows_public_comments
    [result] = adapter.check()
    assert not result.ok and "unknown" in result.detail
    assert "nhd-bridge agreements accept" in result.detail


def test_terms_come_from_the_wire_agreement(state: StateStore) -> None:
    store_agreement(state, we_send=True)
    adapter = adapter_for(state, lambda request: httpx.Response(200, json={"status": "accepted"}))

    terms = adapter.agreement_terms()

    assert terms is not None
    assert (terms.status, terms.allows_public_comments, terms.sync_tags) == (
        "accepted",
        True,
        False,
    )
    results = {result.name: result for result in adapter.check()}
    assert results["agreement"].ok and results["partner"].ok


def test_check_reports_an_unreachable_partner(state: StateStore) -> None:
    store_agreement(state, we_send=True)
    adapter = adapter_for(state, lambda request: httpx.Response(403, json={"error": "key"}))

    results = {result.name: result for result in adapter.check()}

    assert not results["partner"].ok and "403" in results["partner"].detail


def test_a_share_that_already_landed_is_recognised(state: StateStore) -> None:
    store_agreement(state, we_send=True)
    seen: list[str] = []

    def partner(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        if request.method == "POST":
            return httpx.Response(422, json={"error": "this ticket is already shared"})
        return httpx.Response(200, json={"uuid": "t-1"})

    adapter = adapter_for(state, partner)

    record = adapter.create(TicketDraft(shared_uuid="t-1", subject="Once", status="open"))

    assert record.local_id == record.shared_uuid == "t-1"
    assert seen == ["POST", "GET"]
    assert adapter.find_by_shared_uuid("t-1") is not None


def test_a_share_that_landed_at_a_partner_without_get_is_confirmed_by_put(
    state: StateStore,
) -> None:
    store_agreement(state, we_send=True)
    answers = {"POST": 422, "GET": 405, "PUT": 200}
    seen: list[str] = []

    def partner(request: httpx.Request) -> httpx.Response:
        seen.append(request.method)
        return httpx.Response(answers[request.method])

    record = adapter_for(state, partner).create(
        TicketDraft(shared_uuid="t-1", subject="Once", status="open")
    )

    assert record.local_id == "t-1" and seen == ["POST", "GET", "PUT"]


def test_a_refused_share_stays_refused(state: StateStore) -> None:
    store_agreement(state, we_send=True)
    answers = {"POST": 422, "GET": 404}
    adapter = adapter_for(
        state, lambda request: httpx.Response(answers[request.method], json={"error": "bad"})
    )

    with pytest.raises(PermanentError, match="422"):
        adapter.create(TicketDraft(shared_uuid="t-1", subject="Once", status="open"))

    assert adapter.get("t-1") is None


def test_a_partner_rate_limit_is_a_transient_error(state: StateStore) -> None:
    store_agreement(state, we_send=True)
    adapter = adapter_for(
        state, lambda request: httpx.Response(429, headers={"Retry-After": "600"})
    )

    with pytest.raises(TransientError) as raised:
        adapter.create(TicketDraft(shared_uuid="t-1", subject="Busy", status="open"))

    assert raised.value.retry_after == 600
    assert adapter.get("t-1") is None


def test_only_the_partners_changes_are_read_and_paged(state: StateStore) -> None:
    store_agreement(state, we_send=False)
    wire = WireStore(state)
    for number in range(5):
        wire.receive_new_ticket(
            "a" * 40,
            Ticket(
                uuid=f"t-{number}",
                subject=f"Ticket {number}",
                status="open",
                requested_at=datetime(2024, 1, 1, tzinfo=UTC),
                requester=Actor(uuid="r", name="R"),
            ),
        )
    adapter = adapter_for(state, lambda request: httpx.Response(200), page_size=2)

    pages = list(adapter.changed_since(None))

    assert [len(page.tickets) for page in pages] == [2, 2, 1]
    assert [t.local_id for page in pages for t in page.tickets] == [f"t-{n}" for n in range(5)]
    last = pages[-1].cursor
    assert list(adapter.changed_since(last)) == []
    # Our own write to a ticket is not a change to read back.
    wire.record_local_ticket("a" * 40, Ticket(uuid="t-0", status="solved"))
    assert list(adapter.changed_since(last)) == []


def test_attachments_are_downloaded_through_the_url_rules(state: StateStore) -> None:
    store_agreement(state, we_send=False)
    payload = b"%PDF-1.4 " + b"x" * 100

    def files(request: httpx.Request) -> httpx.Response:
        assert "X-Ticket-Sharing-Token" not in request.headers  # a third-party host
        return httpx.Response(200, content=payload)

    adapter = adapter_for(state, files, allowed_hosts=["*.cdn.example"], max_attachment_bytes=200)
    WireStore(state).receive_new_ticket(
        "a" * 40,
        Ticket(
            uuid="t-1",
            subject="With a file",
            status="open",
            requested_at=datetime(2024, 1, 1, tzinfo=UTC),
            requester=Actor(uuid="r", name="R"),
            comments=[
                Comment(
                    uuid="c-1",
                    body="see file",
                    attachments=[
                        Attachment(
                            url="https://files.cdn.example/a/report.pdf",
                            filename="report.pdf",
                            content_type="application/pdf",
                        )
                    ],
                )
            ],
        ),
    )
    record = adapter.get("t-1")
    assert record is not None
    [ref] = record.comments[0].attachments
    assert ref == AttachmentRef(
        "report.pdf", "https://files.cdn.example/a/report.pdf", "application/pdf"
    )

    with adapter.open_attachment(ref) as stream:
        assert stream.read() == payload
    with pytest.raises(PermanentError, match="limit"):
        adapter_for(
            state, files, allowed_hosts=["*.cdn.example"], max_attachment_bytes=50
        ).open_attachment(ref)
    with pytest.raises(PermanentError, match="allowed_hosts"):
        adapter_for(state, files).open_attachment(ref)


def test_the_receiver_role_sends_private_comments_under_partial_delegation(
    state: StateStore,
) -> None:
    agreement = Agreement(
        uuid="a" * 40,
        status="pending",
        sender_url=THEIR_URL,
        receiver_url=OUR_URL,
        access_key="k" * 40,
        allows_public_comments=False,
    )
    wire = WireStore(state)
    wire.create_incoming_agreement(agreement)
    wire.set_status("a" * 40, "accepted")
    wire.receive_new_ticket(
        "a" * 40,
        Ticket(
            uuid="t-1",
            subject="s",
            status="open",
            requested_at=datetime(2024, 1, 1, tzinfo=UTC),
            requester=Actor(uuid="r", name="R"),
        ),
    )
    bodies: list[dict[str, Any]] = []

    def partner(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200)

    adapter = adapter_for(state, partner)

    adapter.add_comment("t-1", CommentDraft(shared_uuid="c-9", body="hi", public=True))

    assert bodies[0]["comments"][0]["public"] is False
