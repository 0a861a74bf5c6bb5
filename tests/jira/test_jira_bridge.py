"""End to end: the embedded local tracker ↔ Jira (from cassettes) through the sync engine."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from jira_harness import jira_session
from jira_sim import CAROL, JiraSite

from nhd_bridge.adapters.local import LocalConfig, LocalTracker
from nhd_bridge.core.model import Actor

ALICE = Actor(uuid="alice-1", name="Alice Requester", role="end-user")
BOB = Actor(uuid="bob-7", name="Bob Agent", role="agent")

STATUS_MAP = {
    "outbound": {"open": "To Do", "pending": "In Progress", "solved": "Done"},
    "inbound": {"To Do": "open", "In Progress": "pending", "Done": "solved"},
}


def _carol_comments(site: JiraSite, key: str) -> None:
    """Carol answers in Jira's UI: once for everyone (with a mention and a code block), once
    restricted to the developers."""
    if site.cloud:
        public = {
            "type": "doc",
            "version": 1,
            "content": [
                {
                    "type": "paragraph",
                    "content": [
                        {"type": "mention", "attrs": {"id": CAROL.account_id, "text": "@Ada"}},
                        {"type": "text", "text": " please run:"},
                    ],
                },
                {
                    "type": "codeBlock",
                    "attrs": {"language": "shell"},
                    "content": [{"type": "text", "text": "vpn --reset *all*"}],
                },
            ],
        }
        private = {
            "type": "doc",
            "version": 1,
            "content": [
                {"type": "paragraph", "content": [{"type": "text", "text": "Root cause: MTU."}]}
            ],
        }
        restricted = {"type": "role", "value": "Developers"}
    else:
        public = "[~ada] please run:\n{code:shell}\nvpn --reset *all*\n{code}"
        private = "Root cause: MTU."
        restricted = {"type": "group", "value": "jira-developers"}
    site.human_comment(key, public)
    site.human_comment(key, private, visibility=restricted)


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_local_and_jira_share_comments_both_ways_and_status_through_two_transitions(
    deployment: str, make_bridge, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    database = tmp_path / "helpdesk.db"
    with jira_session(deployment, request.node.name) as session:
        bridge = _desk_and_jira(make_bridge, session, deployment, database, ["Done"])
        with LocalTracker(LocalConfig(path=database)) as desk:
            ticket = desk.create_ticket("VPN drops every hour", status="open", requester=ALICE)
            desk.add_comment(
                ticket.local_id,
                "It drops at :00 sharp. Log attached.",
                author=ALICE,
                attachments=[("ping.log", "text/plain", io.BytesIO(b"64 bytes from 10.0.0.1\n"))],
            )
            desk.add_comment(
                ticket.local_id, "Customer is on the legacy plan.", public=False, author=BOB
            )

            # 1. Share: the issue, both comments with their visibility, the attachment.
            [summary] = bridge.run()
            assert summary.writes == {"create": 1, "comment": 2}, summary
            jira = bridge.engine.adapter("jira")
            key = _jira_key(bridge)
            issue = jira.get(key)
            assert issue is not None and issue.status == "To Do"
            assert issue.requester is not None and issue.requester.uuid == ALICE.uuid
            assert [(c.public, c.body.splitlines()[0]) for c in issue.comments] == [
                (True, "Alice Requester wrote on helpdesk:"),
                (False, "Bob Agent wrote on helpdesk:"),
            ]
            assert [a.filename for a in issue.comments[0].attachments] == ["ping.log"]

            # 2. Jira → local: a public answer (mention made harmless, code kept) and a private one.
            session.in_jira(lambda site: _carol_comments(site, key))
            bridge.run()
            back = desk.get(ticket.local_id)
            assert back is not None
            carol = [c for c in back.comments if c.author and c.author.name == "Carol Engineer"]
            assert [c.public for c in carol] == [True, False]
            assert "```shell\nvpn --reset *all*\n```" in carol[0].body
            assert carol[0].body.startswith("@")
            assert carol[1].body == "Root cause: MTU."

            # 3. Status: solved on the help desk is Done in Jira, two transitions away.
            desk.set_status(ticket.local_id, "solved")
            [summary] = bridge.run()
            assert summary.writes == {"update": 1}, summary
            issue = jira.get(key)
            assert issue is not None and issue.status == "Done"

            # 4. Settled: one more run writes nothing.
            assert [s.total_writes for s in bridge.run()] == [0]


def _desk_and_jira(
    make_bridge, session, deployment: str, database: Path, closed: list[str] | None = None
):
    """The help desk (embedded local tracker) sharing with Jira, full delegation."""
    jira_user = "5f1a9c0e8b2d4a0069d1e002" if deployment == "cloud" else "ada"
    jira = {
        "kind": "jira",
        **session.options(fields={}, users=[{"nhd": ALICE.uuid, "jira": jira_user}]),
    }
    if closed is not None:
        jira["closed_statuses"] = closed
    return make_bridge(
        {
            "desk-jira": {
                "sender": "helpdesk",
                "receiver": "jira",
                "allows_public_comments": True,
                "status_map": STATUS_MAP,
            }
        },
        instances={
            # A fixed sharing URL: the shared uuids it mints are in the cassettes' bodies.
            "helpdesk": {
                "kind": "local",
                "path": str(database),
                "sharing_url": "nhd-bridge://helpdesk",
            },
            "jira": jira,
        },
    )


def _jira_key(bridge) -> str:
    [created] = [entry for entry in bridge.journal() if entry.action == "create"]
    return created.local_id


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_a_lost_state_store_adopts_the_jira_issue_and_writes_nothing_again(
    deployment: str, make_bridge, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Issue 12: the state store is deleted (an ephemeral pod) and sync runs again: the Jira
    issue is found by its breadcrumb and adopted; no second issue, no comment written again."""
    database = tmp_path / "helpdesk.db"
    with jira_session(deployment, request.node.name) as session:
        bridge = _desk_and_jira(make_bridge, session, deployment, database)
        with LocalTracker(LocalConfig(path=database)) as desk:
            ticket = desk.create_ticket("VPN drops every hour", status="open", requester=ALICE)
            desk.add_comment(ticket.local_id, "It drops at :00 sharp.", author=ALICE)
            bridge.run()
            key = _jira_key(bridge)
            session.in_jira(lambda site: _carol_comments(site, key))
            bridge.run()
            assert [s.total_writes for s in bridge.run()] == [0]
            comments_on_desk = len(desk.get(ticket.local_id).comments)  # type: ignore[union-attr]

            bridge.engine.close()
            bridge.store.close()
            for file in tmp_path.glob("state.db*"):
                file.unlink()
            bridge.restart()
            [summary] = bridge.run()

            assert (summary.total_writes, summary.parked, summary.errors) == (0, 0, []), summary
            assert [e.local_id for e in bridge.journal() if e.action == "adopt"] == [key]
            issue = bridge.engine.adapter("jira").get(key)
            assert issue is not None and len(issue.comments) == 3
            assert len(desk.get(ticket.local_id).comments) == comments_on_desk  # type: ignore[union-attr]
