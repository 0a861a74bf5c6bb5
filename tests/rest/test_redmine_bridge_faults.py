"""End to end through the engine: a local desk shared to a real Redmine, 20% of the requests to
Redmine failing in every way the FaultProxy knows, for fifteen passes with changes on both sides.
Then the faults stop: both sides converge, nothing is lost, nothing is doubled."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

from support.redmine import RedmineServer

from nhd_bridge.adapters.local import LocalConfig, LocalTracker, local_person
from nhd_bridge.core.engine import SyncEngine
from nhd_bridge.core.state import utcnow
from nhd_bridge.testing.faultproxy import FaultProxy

STATUSES = ["New", "In Progress", "Resolved", "Feedback", "Closed", "Rejected"]
ALICE = local_person("Alice Customer", role="end-user")
TICKETS = 4
PASSES = 15


def redmine_notes(server: RedmineServer) -> dict[str, list[str]]:
    """Every issue's breadcrumb with the texts of its notes (marker lines left out)."""
    found: dict[str, list[str]] = {}
    with server.api() as api:
        listed = api.get(
            "issues.json", params={"project_id": server.project, "status_id": "*", "limit": 100}
        ).json()["issues"]
        for item in listed:
            issue = api.get(f"issues/{item['id']}.json", params={"include": "journals"}).json()
            issue = issue["issue"]
            crumb = next(f["value"] for f in issue["custom_fields"] if f["name"] == "nhd_uuid")
            notes = [j["notes"] for j in issue["journals"] if j.get("notes")]
            found[crumb] = notes
    return found


def lines_in(bodies: Iterable[str]) -> Counter[str]:
    """How many comments hold each line (a comment written by the bridge adds a line naming the
    author, and Redmine's note a marker line)."""
    return Counter(line.strip() for body in bodies for line in set(body.splitlines()))


def test_twenty_percent_faults_for_fifteen_passes_converge_without_loss_or_duplicates(
    make_bridge: Callable[..., Any], redmine: RedmineServer, tmp_path: Path
) -> None:
    desk_path = tmp_path / "desk.db"
    with FaultProxy(redmine.url, retry_after=1, delay_seconds=0.2) as proxy:
        bridge = make_bridge(
            {"desk-redmine": {"sender": "desk", "receiver": "redmine"}},
            instances={
                "desk": {"kind": "local", "path": str(desk_path), "statuses": STATUSES},
                "redmine": redmine.instance_config(
                    base_url=proxy.url,
                    retries={"attempts": 3, "backoff_seconds": 0.01, "timeout_seconds": 5},
                ),
            },
        )
        now = [utcnow()]
        bridge.engine = SyncEngine(bridge.config, bridge.store, clock=lambda: now[0])

        def run() -> None:
            now[0] += timedelta(minutes=10)  # every parked ticket is due again
            bridge.run()

        with LocalTracker(LocalConfig(path=desk_path, statuses=STATUSES)) as desk:
            tickets = [
                desk.create_ticket(f"Ticket {n}", status="New", requester=ALICE)
                for n in range(TICKETS)
            ]
            for ticket in tickets:
                desk.add_comment(ticket.local_id, f"desk {ticket.local_id} first", author=ALICE)
            expected_desk: Counter[str] = Counter(f"desk {t.local_id} first" for t in tickets)
            expected_redmine: Counter[str] = Counter()
            proxy.randomly(rate=0.2, seed=8)
            for number in range(PASSES):
                run()
                ticket = tickets[number % TICKETS]
                text = f"desk {ticket.local_id} pass {number}"
                desk.add_comment(ticket.local_id, text, author=ALICE)
                expected_desk[text] += 1
                shared = redmine_notes(redmine)  # the person's view, not through the proxy
                if shared:
                    crumb = sorted(shared)[number % len(shared)]
                    with redmine.api() as api:
                        issue = api.get(
                            "issues.json",
                            params={
                                "project_id": redmine.project,
                                "status_id": "*",
                                f"cf_{redmine.uuid_field_id}": crumb,
                            },
                        ).json()["issues"][0]
                        note = f"redmine {issue['id']} pass {number}"
                        api.put(
                            f"issues/{issue['id']}.json", json={"issue": {"notes": note}}
                        ).raise_for_status()
                    expected_redmine[note] += 1
            faults = proxy.stats.faults
            proxy.clear()
            for _ in range(4):
                run()

            held = redmine_notes(redmine)
            assert len(held) == TICKETS, f"{len(held)} Redmine issues for {TICKETS} tickets"
            in_redmine = lines_in(note for notes in held.values() for note in notes)
            for text, count in expected_desk.items():
                assert in_redmine[text] == count, f"{text!r} is in Redmine {in_redmine[text]}x"
            for text, count in expected_redmine.items():
                assert in_redmine[text] == count
            in_desk = lines_in(
                comment.body
                for ticket in tickets
                for comment in desk.get(ticket.local_id).comments  # type: ignore[union-attr]
            )
            for text, count in expected_redmine.items():
                assert in_desk[text] == count, f"{text!r} is on the desk {in_desk[text]}x"
            for text, count in expected_desk.items():
                assert in_desk[text] == count
            assert sum(faults.values()) >= 10, faults
