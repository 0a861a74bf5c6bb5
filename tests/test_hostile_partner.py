"""A hostile partner against our bridge (issue 11): what one partner sends must not hide another
partner's tickets, wedge an agreement, drive the operator's terminal, or move where we send.

The bridge here is a real configuration: an embedded local tracker ``desk`` and two ``kind: nhd``
instances, ``a-in`` and ``b-in``, each bound to an agreement under which that partner shares
tickets with us. Partners reach our receiver app through a TestClient, as over the network.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner

from nhd_bridge.adapters.local import LocalConfig, LocalTracker
from nhd_bridge.adapters.nhd import NhdAdapter
from nhd_bridge.cli import main
from nhd_bridge.core.config import LoadedConfig, load_config
from nhd_bridge.core.engine import SyncEngine
from nhd_bridge.core.model import Ticket
from nhd_bridge.core.plugins import Plugins
from nhd_bridge.core.protocol.receiver import TOKEN_HEADER, VERSION_HEADER, create_receiver_app
from nhd_bridge.core.protocol.settings import ReceiverSettings
from nhd_bridge.core.protocol.wire_store import WireStore
from nhd_bridge.core.state import StateStore

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

OUR_URL = "https://us.example/sharing"
PARTNERS = {
    "a": "https://a.example/sharing",
    "b": "https://b.example/sharing",
}
# What must never reach a terminal: C0 but newline and tab, DEL, C1.
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def hex40(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()


def agreement_uuid(partner: str) -> str:
    return hex40(f"agreement-{partner}")


def access_key(partner: str) -> str:
    return hex40(f"key-{partner}")


def token(partner: str) -> str:
    return f"{agreement_uuid(partner)}:{access_key(partner)}"


def ticket_body(uuid: str, subject: str, *comments: dict[str, Any], **extra: Any) -> dict:
    return {
        "uuid": uuid,
        "subject": subject,
        "requested_at": "2024-05-01 09:30:00 +0000",
        "status": "open",
        "requester": {"uuid": f"requester-{uuid}", "name": "Carla Customer"},
        "comments": list(comments),
        **extra,
    }


def comment(uuid: str, body: str, **extra: Any) -> dict[str, Any]:
    return {"uuid": uuid, "body": body, "public": True, **extra}


class Bridge:
    """Our bridge with two partners that share tickets with us."""

    def __init__(self, folder: Path, plugins: Plugins, *, invite_names: dict[str, str] | None):
        self.folder = folder
        self.plugins = plugins
        self.path = folder / "bridge.yaml"
        instances: dict[str, Any] = {"desk": {"kind": "local", "path": "desk.db"}}
        agreements: dict[str, Any] = {}
        for partner, url in PARTNERS.items():
            instances[f"{partner}-in"] = {
                "kind": "nhd",
                "partner_url": url,
                "our_url": OUR_URL,
                "agreement": agreement_uuid(partner),
                # As on loopback: no DNS answer stands between a URL and the call.
                "allow_private_networks": True,
            }
            agreements[f"from-{partner}"] = {"sender": f"{partner}-in", "receiver": "desk"}
        document = {
            "state": {"url": f"sqlite:///{folder / 'state.db'}"},
            "instances": instances,
            "agreements": agreements,
        }
        self.path.write_text(yaml.safe_dump(document, sort_keys=False))
        self.state = StateStore(f"sqlite:///{folder / 'state.db'}")
        self.wire = WireStore(self.state)
        self.client = TestClient(create_receiver_app(ReceiverSettings(base_url=OUR_URL), self.wire))
        names = invite_names or {}
        for partner in PARTNERS:
            self.invite(partner, name=names.get(partner, f"Partner {partner.upper()}"))
            self.wire.set_status(agreement_uuid(partner), "accepted")
        self.engine: SyncEngine | None = None

    def config(self) -> LoadedConfig:
        return load_config(self.path, plugins=self.plugins, environ={})

    def request(self, method: str, path: str, body: Any = None, *, partner: str | None = None):
        headers = {VERSION_HEADER: "1", "Content-Type": "application/json"}
        if partner is not None:
            headers[TOKEN_HEADER] = token(partner)
        content = None if body is None else json.dumps(body)
        return self.client.request(method, f"/sharing{path}", content=content, headers=headers)

    def invite(self, partner: str, *, name: str) -> None:
        body = {
            "uuid": agreement_uuid(partner),
            "name": name,
            "status": "pending",
            "sender_url": PARTNERS[partner],
            "receiver_url": OUR_URL,
            "access_key": access_key(partner),
            "allows_public_comments": True,
        }
        uuid = agreement_uuid(partner)
        answer = self.request("POST", f"/agreements/{uuid}", body, partner=partner)
        assert answer.status_code == 201, answer.text

    def share(self, partner: str, body: dict[str, Any]) -> httpx.Response:
        return self.request("POST", f"/tickets/{body['uuid']}", body, partner=partner)

    def sync(self, agreement: str):
        if self.engine is None:
            self.engine = SyncEngine(self.config(), self.state)
        return self.engine.run(agreement)

    def desk_tickets(self) -> list[Any]:
        with LocalTracker(LocalConfig(path=self.folder / "desk.db")) as desk:
            return desk.list_tickets()

    def cli(self, *args: str) -> Any:
        return CliRunner().invoke(main, ["-c", str(self.path), *args], catch_exceptions=False)

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
        self.client.close()
        self.state.close()


@pytest.fixture
def bridge(tmp_path: Path, plugins: Plugins) -> Iterator[Bridge]:
    made = Bridge(tmp_path, plugins, invite_names=None)
    yield made
    made.close()


# --- 1. uuid squatting --------------------------------------------------------------------------


def test_a_partner_squatting_another_partners_ticket_uuid_hides_nothing(bridge: Bridge) -> None:
    # A's uuids are predictable: SHA-1 of A's sharing URL and its ticket id (§6.1).
    predicted = hex40(f"{PARTNERS['a']}/tickets/1")
    squat = ticket_body(predicted, "Squatter's ticket", comment("b-c-1", "from B"))
    assert bridge.share("b", squat).status_code == 201
    assert not bridge.sync("from-b").errors

    real = ticket_body(predicted, "A's real ticket", comment("a-c-1", "from A"))
    assert bridge.share("a", real).status_code == 201
    summary = bridge.sync("from-a")

    assert not summary.errors and summary.writes["create"] == 1
    by_subject = {ticket.subject: ticket for ticket in bridge.desk_tickets()}
    assert set(by_subject) == {"Squatter's ticket", "A's real ticket"}
    assert [c.body for c in by_subject["A's real ticket"].comments] == ["from A"]
    assert [c.body for c in by_subject["Squatter's ticket"].comments] == ["from B"]
    # The journal says which agreement created which copy.
    creates = {
        entry.agreement
        for entry in bridge.state.read().journal(limit=100)
        if entry.action == "create" and entry.outcome == "written"
    }
    assert creates == {"from-a", "from-b"}

    # Later traffic of each partner reaches its own copy only.
    update = {"uuid": predicted, "comments": [comment("a-c-2", "A again")]}
    assert bridge.request("PUT", f"/tickets/{predicted}", update, partner="a").status_code == 200
    assert not bridge.sync("from-a").errors
    by_subject = {ticket.subject: ticket for ticket in bridge.desk_tickets()}
    assert [c.body for c in by_subject["A's real ticket"].comments] == ["from A", "A again"]
    assert [c.body for c in by_subject["Squatter's ticket"].comments] == ["from B"]


def test_a_partner_squatting_comment_uuids_hides_no_comment(bridge: Bridge) -> None:
    predicted_comment = hex40(f"{PARTNERS['a']}/comments/1")
    squat = ticket_body("b-ticket", "B", comment(predicted_comment, "squatted by B"))
    assert bridge.share("b", squat).status_code == 201
    assert not bridge.sync("from-b").errors

    real = ticket_body("a-ticket", "A", comment(predicted_comment, "A's first comment"))
    assert bridge.share("a", real).status_code == 201
    assert not bridge.sync("from-a").errors

    by_subject = {ticket.subject: ticket for ticket in bridge.desk_tickets()}
    assert [c.body for c in by_subject["A"].comments] == ["A's first comment"]
    assert [c.body for c in by_subject["B"].comments] == ["squatted by B"]


# --- 2. no wedge --------------------------------------------------------------------------------


def test_an_absurd_attachment_url_parks_its_ticket_and_the_next_ticket_syncs(
    bridge: Bridge,
) -> None:
    huge = "https://a.example/files/" + "x" * 100_000
    wedge = Ticket.from_dict(
        ticket_body(
            "a-wedge",
            "With a 100k URL",
            comment("a-w-1", "see file", attachments=[{"url": huge, "filename": "f.txt"}]),
        )
    )
    # Stored as if it had arrived before the receiver bounded URL sizes.
    bridge.wire.receive_new_ticket(agreement_uuid("a"), wedge)
    assert bridge.share("a", ticket_body("a-next", "The next ticket")).status_code == 201

    summary = bridge.sync("from-a")

    assert summary.parked == 1, summary.errors[:1]
    assert "The next ticket" in {ticket.subject for ticket in bridge.desk_tickets()}
    [row] = bridge.state.read().parked("from-a")
    assert row.local_id == "a-wedge" and "URL" in row.error
    assert len(row.error) < 2_000  # the URL is not copied whole into the journal
    # The next run still flows: a later ticket of the same agreement lands.
    assert bridge.share("a", ticket_body("a-later", "Later")).status_code == 201
    later = bridge.sync("from-a")
    assert later.writes["create"] == 1
    assert "Later" in {ticket.subject for ticket in bridge.desk_tickets()}


def test_the_receiver_refuses_an_oversized_attachment_url(bridge: Bridge) -> None:
    huge = "https://a.example/files/" + "x" * 100_000
    body = ticket_body(
        "a-huge", "x", comment("a-h-1", "f", attachments=[{"url": huge, "filename": "f"}])
    )
    answer = bridge.share("a", body)
    assert answer.status_code == 422
    assert "url" in answer.json()["error"]
    assert bridge.wire.get_ticket(agreement_uuid("a"), "a-huge") is None


# --- 3. terminal escapes ------------------------------------------------------------------------

OSC_TITLE = "\x1b]0;pwned\x07"
OSC_CLIPBOARD = "\x1b]52;c;cm0gLXJmIH4=\x07"
C1_CSI = "\x9b2J"


@pytest.fixture
def hostile_bridge(tmp_path: Path, plugins: Plugins) -> Iterator[Bridge]:
    made = Bridge(tmp_path, plugins, invite_names={"a": f"Evil {OSC_TITLE}Corp", "b": "B"})
    ticket = ticket_body(
        "a-evil",
        f"Subject {C1_CSI}here",
        comment(
            "a-e-1",
            f"Body {OSC_CLIPBOARD} end",
            author={"uuid": "evil-author", "name": f"Mallory{OSC_TITLE}"},
            attachments=[{"url": f"https://a.example/f\x1b[2J{C1_CSI}", "filename": "f.txt"}],
        ),
    )
    assert made.share("a", ticket).status_code == 201
    made.sync("from-a")  # the attachment cannot be fetched: parked, with its URL in the error
    made.wire.receive_new_ticket(
        agreement_uuid("a"),
        Ticket.from_dict(
            ticket_body("a-evil-2", f"Second {OSC_TITLE}", comment("a-e-2", f"x{OSC_CLIPBOARD}"))
        ),
    )
    made.sync("from-a")
    yield made
    made.close()


@pytest.mark.parametrize(
    "command",
    [
        ("agreements", "list"),
        ("agreements", "show", agreement_uuid("a")),
        ("local", "--instance", "desk", "list"),
        ("local", "--instance", "desk", "show", "1"),
        ("explain", "desk:1"),
        ("explain", "a-in:a-evil"),
        ("log",),
        ("log", "--failed"),
        ("plan", "--json"),
    ],
)
def test_no_partner_text_reaches_the_terminal_raw(hostile_bridge: Bridge, command) -> None:
    result = hostile_bridge.cli(*command)
    assert result.exit_code == 0, result.output
    assert not RAW_CONTROL.search(result.output), repr(result.output)


def test_neutralised_text_stays_readable_and_json_stays_exact(hostile_bridge: Bridge) -> None:
    shown = hostile_bridge.cli("agreements", "show", agreement_uuid("a")).output
    assert "Evil \\u001b]0;pwned\\u0007Corp" in shown
    local = hostile_bridge.cli("local", "--instance", "desk", "show", "1").output
    assert "Subject \\u009b2Jhere" in local

    from nhd_bridge.core.terminal import neutralise

    text = json.dumps({"s": f"{OSC_CLIPBOARD}{C1_CSI}\ttab\nline"}, ensure_ascii=False)
    assert json.loads(neutralise(text)) == json.loads(text)


def test_the_rich_console_neutralises_data_but_keeps_its_styles() -> None:
    import io

    from rich.table import Table

    from nhd_bridge.core.terminal import SafeConsole

    out = io.StringIO()
    console = SafeConsole(file=out, force_terminal=True, width=80)
    table = Table("subject")
    table.add_row(f"Subject {OSC_CLIPBOARD}{C1_CSI}")
    console.print(table)
    printed = out.getvalue()
    assert "\x1b]52" not in printed and "\x9b" not in printed
    assert "\\u001b]52" in printed
    assert "\x1b[1m" in printed  # rich's own bold header still styles the terminal


# --- helpers used by several points ------------------------------------------------------------


def adapter(bridge: Bridge, name: str) -> NhdAdapter:
    config = bridge.config()
    made = NhdAdapter(name, config.adapter_configs[name])
    from nhd_bridge.core.adapter import AdapterContext

    made.attach(AdapterContext(name, f"nhd-bridge://{name}", bridge.state))
    return made


# --- 4. a partner cannot move where we send ------------------------------------------------------


def _recording_adapter(bridge: Bridge, seen: list[httpx.Request]) -> NhdAdapter:
    from nhd_bridge.core.adapter import AdapterContext

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={})

    config = bridge.config()
    made = NhdAdapter(
        "a-in", config.adapter_configs["a-in"], transport=httpx.MockTransport(handler)
    )
    made.attach(AdapterContext("a-in", "nhd-bridge://a-in", bridge.state))
    return made


def test_a_refused_url_move_sends_nothing_to_the_new_url(bridge: Bridge) -> None:
    from nhd_bridge.core.adapter import CommentDraft

    assert bridge.share("a", ticket_body("a-1", "Shared by A")).status_code == 201
    moved = {"sender_url": "https://a.example:9999/elsewhere"}
    answer = bridge.request("PUT", f"/agreements/{agreement_uuid('a')}", moved, partner="a")
    assert answer.status_code == 422
    seen: list[httpx.Request] = []
    adapter = _recording_adapter(bridge, seen)

    adapter.add_comment("a-1", CommentDraft(body="hello", public=True, shared_uuid="c-1"))

    assert [str(request.url) for request in seen] == [f"{PARTNERS['a']}/tickets/a-1"]


def test_a_stored_url_that_differs_from_the_yaml_is_never_called(bridge: Bridge) -> None:
    from sqlalchemy import update

    from nhd_bridge.core.adapter import CommentDraft, PermanentError
    from nhd_bridge.core.state.schema import wire_agreements

    assert bridge.share("a", ticket_body("a-1", "Shared by A")).status_code == 201
    with bridge.state.engine.begin() as connection:  # as a PUT before this fix could leave it
        connection.execute(
            update(wire_agreements)
            .where(wire_agreements.c.uuid == agreement_uuid("a"))
            .values(sender_url="https://a.example:9999/sharing")
        )
    seen: list[httpx.Request] = []
    adapter = _recording_adapter(bridge, seen)

    with pytest.raises(PermanentError, match="names the partner at"):
        adapter.add_comment("a-1", CommentDraft(body="hello", public=True, shared_uuid="c-1"))
    assert seen == []


@pytest.mark.parametrize(
    ("url", "gets_token"),
    [
        (f"{PARTNERS['a']}/attachments/1", True),
        (f"{PARTNERS['a']}/../admin/export", False),
        (f"{PARTNERS['a']}/%2e%2e/admin", False),
        ("https://a.example:8443/sharing/attachments/1", False),
        ("http://a.example/sharing/attachments/1", False),
        ("https://files.example/sharing/attachments/1", False),
    ],
)
def test_the_token_goes_only_under_the_partners_normalised_sharing_url(
    bridge: Bridge, url: str, gets_token: bool
) -> None:
    from nhd_bridge.core.adapter import AttachmentRef

    seen: list[httpx.Request] = []
    adapter = _recording_adapter(bridge, seen)
    adapter.config.allowed_hosts.append("files.example")
    adapter.sender.policy = adapter.sender.policy.for_partner(
        PARTNERS["a"], ["files.example"], allow_private_networks=True
    )
    with contextlib.suppress(Exception):  # only what was sent matters here
        adapter.open_attachment(AttachmentRef(filename="f", ref=url)).close()
    sent_token = any(TOKEN_HEADER in request.headers for request in seen)
    assert sent_token is gets_token


# --- 5. the operator's surfaces are not public ---------------------------------------------------


def test_status_is_not_served_to_partners_on_the_receivers_listener(
    bridge: Bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nhd_bridge.core.scheduler import BridgeScheduler
    from nhd_bridge.serve import STATUS_TOKEN_ENV, build_app

    document = yaml.safe_load(bridge.path.read_text())
    document["server"] = {"receiver": {"base_url": OUR_URL}}
    bridge.path.write_text(yaml.safe_dump(document))
    monkeypatch.setenv(STATUS_TOKEN_ENV, "operator-secret")
    config = bridge.config()
    app = build_app(config, bridge.state, BridgeScheduler(config, bridge.state))
    with TestClient(app) as client:
        assert client.get("/status").status_code == 404
        wrong = client.get("/status", headers={"Authorization": "Bearer guess"})
        assert wrong.status_code == 404
        assert client.get("/health").json() == {"status": "ok"}  # bare liveness stays
        mine = client.get("/status", headers={"Authorization": "Bearer operator-secret"})
        assert mine.status_code == 200 and mine.json()["status"] == "ok"
