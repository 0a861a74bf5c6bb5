"""A soak of one bridge against a real tracker behind a FaultProxy: changes on both sides,
pass after pass, with a share of the requests failing; then clean passes, and a count of
everything on both trackers. Used by the real-Redmine and real-Roundup soaks of
test_misbehaving_trackers_real.py.

The changes are a fixed script (no randomness but the proxy's seeded plan), so that a failure
reproduces: tickets born on the desk, desk comments public and private, comments on the tracker
public and (where it has them) private, status changes on the desk for even tickets and on the
tracker for odd ones (never both on one ticket, so the last change made is the expected outcome).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from nhd_bridge.adapters.local import LocalTracker, local_person
from nhd_bridge.core.engine import SyncEngine
from nhd_bridge.core.state import utcnow
from nhd_bridge.testing.faultproxy import FAULT_KINDS, FaultProxy

ALICE = local_person("Alice Customer", role="end-user")
AGREEMENT = "soak"
DESK = "desk"
REMOTE = "remote"
# Pass number -> tickets born on the desk before that pass.
NEW_TICKETS = {0: 2, 3: 1, 6: 1, 9: 1}
DESK_STATUSES = ("open", "pending", "solved")


class Remote(Protocol):
    """The real tracker as a person sees it, through its REST API (never through the proxy)."""

    private_comments: bool
    statuses: tuple[str, ...]  # the statuses the person sets, in turn

    def issues(self) -> list[tuple[str, str]]:
        """(issue id, subject) of every issue of the project."""

    def comments(self, issue_id: str) -> list[tuple[str, bool]]:
        """(text, public) of every comment of the issue, oldest first."""

    def add_comment(self, issue_id: str, text: str, public: bool) -> None: ...

    def set_status(self, issue_id: str, status: str) -> None: ...

    def status(self, issue_id: str) -> str: ...


@dataclass
class Expected:
    """What the script did: every comment by its tag, and the last status set per ticket."""

    # tag -> (desk ticket, public)
    desk_comments: dict[str, tuple[str, bool]] = field(default_factory=dict)
    remote_comments: dict[str, tuple[str, bool]] = field(default_factory=dict)
    desk_status: dict[str, str] = field(default_factory=dict)  # desk ticket -> desk status
    born: str = "new"


@dataclass
class SoakResult:
    passes: int
    faults: dict[str, int]
    requests: int
    stalled: list[str]  # passes where a side had something new and its cursor did not move


def soak(
    bridge: Any,
    desk: LocalTracker,
    remote: Remote,
    proxy: FaultProxy,
    *,
    passes: int = 15,
    rate: float = 0.2,
    seed: int = 8,
    clean_passes: int = 4,
    born: str = "new",
) -> tuple[Expected, SoakResult]:
    """Run the script; returns what it did and how the passes went. Asserts nothing itself, so the
    caller's assertions say what is being proven. Desk tickets are born in status ``born``."""
    # The engine's own clock while faults happen: a parked ticket waits its real backoff, as in
    # production, so a write still on its way (a delayed request the client gave up on) lands
    # before the ticket is tried again. (A clock moved ahead would make a ticket parked this run
    # due again in this run's other pass: parking stamps wall-clock time.)
    bridge.engine = SyncEngine(bridge.config, bridge.store)
    expected = Expected(born=born)
    tickets: list[str] = []  # desk ids, in birth order
    stalled: list[str] = []
    proxy.randomly(rate=rate, seed=seed)

    def run() -> list[str]:
        return [error for summary in bridge.run() for error in summary.errors]

    for number in range(passes):
        desk_changed, remote_changed = _desk_changes(desk, tickets, number, expected)
        remote_changed = _remote_changes(desk, remote, tickets, number, expected) or remote_changed
        before = _cursors(bridge)
        errors = run()
        after = _cursors(bridge)
        for side, changed in ((DESK, desk_changed), (REMOTE, remote_changed)):
            if changed and after[side] == before[side]:
                stalled.append(f"pass {number}: the {side} cursor did not move; errors: {errors}")
    stats = proxy.stats
    proxy.clear()
    time.sleep(proxy.delay_seconds)  # every delayed request has reached the tracker
    # Clean passes: every parked ticket is due.
    bridge.engine = SyncEngine(
        bridge.config, bridge.store, clock=lambda: utcnow() + timedelta(hours=2)
    )
    for _ in range(clean_passes):
        run()
    return expected, SoakResult(passes, dict(stats.faults), stats.requests, stalled)


def _cursors(bridge: Any) -> dict[str, str | None]:
    reader = bridge.store.read()
    return {side: reader.cursor(AGREEMENT, side) for side in (DESK, REMOTE)}


def _desk_changes(
    desk: LocalTracker, tickets: list[str], number: int, expected: Expected
) -> tuple[bool, bool]:
    for _ in range(NEW_TICKETS.get(number, 0)):
        ticket = desk.create_ticket(
            f"Soak ticket {len(tickets)}", status=expected.born, requester=ALICE
        )
        tickets.append(ticket.local_id)
        tag = f"desk-first-{ticket.local_id}."
        desk.add_comment(ticket.local_id, f"{tag} It is broken.", author=ALICE)
        expected.desk_comments[tag] = (ticket.local_id, True)
    ticket_id = tickets[number % len(tickets)]
    public = number % 3 != 2
    tag = f"desk-note-{number:02d}."
    desk.add_comment(ticket_id, f"{tag} More details.", public=public, author=ALICE)
    expected.desk_comments[tag] = (ticket_id, public)
    if number % 3 == 1:
        even = tickets[::2]
        target = even[(number // 3) % len(even)]
        status = DESK_STATUSES[(number // 3) % len(DESK_STATUSES)]
        desk.set_status(target, status)
        expected.desk_status[target] = status
    return True, False


def _remote_changes(
    desk: LocalTracker, remote: Remote, tickets: list[str], number: int, expected: Expected
) -> bool:
    """A person on the tracker comments on a bridged issue and sets the status of an odd one."""
    by_subject = {subject: issue_id for issue_id, subject in remote.issues()}
    bridged = [
        (ticket, by_subject[_subject(desk, ticket)])
        for ticket in tickets
        if _subject(desk, ticket) in by_subject
    ]
    if not bridged:
        return False
    ticket, issue_id = bridged[number % len(bridged)]
    public = not (remote.private_comments and number % 4 == 3)
    tag = f"remote-note-{number:02d}."
    remote.add_comment(issue_id, f"{tag} We are on it.", public)
    expected.remote_comments[tag] = (ticket, public)
    odd = [(t, i) for t, i in bridged if tickets.index(t) % 2 == 1]
    if number % 3 == 2 and odd:
        ticket, issue_id = odd[(number // 3) % len(odd)]
        status = remote.statuses[(number // 3) % len(remote.statuses)]
        remote.set_status(issue_id, status)
        expected.desk_status[ticket] = _INBOUND_MARK + status  # resolved by check_converged
    return True


_INBOUND_MARK = "remote:"


def _subject(desk: LocalTracker, ticket: str) -> str:
    record = desk.get(ticket)
    assert record is not None
    return record.subject


def check_converged(
    bridge: Any,
    desk: LocalTracker,
    remote: Remote,
    expected: Expected,
    result: SoakResult,
    *,
    outbound: Callable[[str], str],
    inbound: Callable[[str], str],
) -> None:
    """Zero duplicate tickets, zero duplicate comments, zero lost comments, statuses agree,
    nothing parked, every fault kind happened, and every pass's read made progress."""
    assert result.stalled == [], result.stalled
    assert set(result.faults) == set(FAULT_KINDS), f"not every kind of fault: {result.faults}"
    assert bridge.store.read().parked(AGREEMENT) == []

    desk_tickets = {t.local_id: t for t in desk.list_tickets()}
    subjects = [subject for _, subject in remote.issues()]
    wanted = sorted(record.subject for record in desk_tickets.values())
    assert sorted(subjects) == wanted, f"tickets on the tracker: {sorted(subjects)}"
    issue_of = {subject: issue_id for issue_id, subject in remote.issues()}

    for ticket_id, record in desk_tickets.items():
        full = desk.get(ticket_id)
        assert full is not None
        on_desk = [(c.body, c.public) for c in full.comments]
        on_remote = remote.comments(issue_of[record.subject])
        mine = {t: p for t, (tk, p) in expected.desk_comments.items() if tk == ticket_id}
        theirs = {t: p for t, (tk, p) in expected.remote_comments.items() if tk == ticket_id}
        travelling = {t: p for t, p in mine.items() if p or remote.private_comments}
        _same_comments(on_desk, {**mine, **theirs}, f"desk ticket {ticket_id}")
        _same_comments(on_remote, {**travelling, **theirs}, f"issue {issue_of[record.subject]}")

        meant = expected.desk_status.get(ticket_id, expected.born)
        if meant.startswith(_INBOUND_MARK):
            remote_status = meant[len(_INBOUND_MARK) :]
            held = remote.status(issue_of[record.subject])
            assert (held, full.status) == (remote_status, inbound(remote_status)), (
                f"desk ticket {ticket_id}: the tracker's person set {remote_status!r}; "
                f"the tracker holds {held!r}, the desk {full.status!r}"
            )
        else:
            held = remote.status(issue_of[record.subject])
            assert (full.status, held) == (meant, outbound(meant)), (
                f"desk ticket {ticket_id}: the desk set {meant!r}; "
                f"the desk holds {full.status!r}, the tracker {held!r}"
            )


def _same_comments(held: list[tuple[str, bool]], wanted: dict[str, bool], where: str) -> None:
    """Each wanted tag in exactly one comment, with its visibility, and no other comment."""
    for tag, public in wanted.items():
        holding = [(text, shown) for text, shown in held if tag in text]
        assert len(holding) == 1, f"{where}: {tag!r} is in {len(holding)} comments: {held}"
        assert holding[0][1] == public, f"{where}: {tag!r} public={holding[0][1]}, meant {public}"
    assert len(held) == len(wanted), f"{where}: {len(held)} comments, {len(wanted)} meant: {held}"
