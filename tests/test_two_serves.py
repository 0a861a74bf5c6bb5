"""Two real ``nhd-bridge serve`` processes sharing tickets over NHD on loopback.

Each installation is what a user runs: one YAML file, its own state store (a SQLite file), its own
embedded local tracker and its own ``serve`` process on a free port, with its receiver at
``http://127.0.0.1:<port>/sharing`` and a ``kind: nhd`` instance pointing at the other one.

- "desk" (a help desk) holds the local instance ``desk`` and the nhd instance ``engineering``;
  its agreement ``desk-to-engineering`` shares desk's tickets with the partner.
- "eng" (an engineering tracker) holds the local instance ``eng`` and the nhd instance
  ``helpdesk``; its agreement ``from-helpdesk`` brings what the partner shares into ``eng``.

Everything is driven as a user would: ``nhd-bridge agreements invite`` on desk, ``agreements
list`` and ``agreements accept`` on eng, the agreement uuid pasted into both YAML files and both
servers restarted (a serve process reads its YAML once, at start), then ``nhd-bridge local`` to
create, comment and change status, and ``nhd-bridge unshare``. The commands run in this process
through click (the same ``main`` the console script runs); the servers are real subprocesses.
Trackers and state stores are only *read* by the test, and every wait is a poll with a deadline.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import func, select

from nhd_bridge.adapters.local import LocalConfig, LocalTracker
from nhd_bridge.cli import main
from nhd_bridge.core.adapter import TicketRecord
from nhd_bridge.core.protocol.wire_store import WireStore
from nhd_bridge.core.state import StateStore
from nhd_bridge.core.state.schema import wire_comments

pytestmark = pytest.mark.slow

DEADLINE_SECONDS = 45.0  # generous: a wait returns as soon as its condition holds
UUID = re.compile(r"[0-9a-f]{40}")
STATUS = "status-token-for-the-test"  # /status needs it: the listener faces partners
POLLING = re.compile(r'"GET /(health|status) HTTP')


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Installation:
    """One bridge installation: YAML, state store, local tracker and its serve process."""

    def __init__(
        self,
        folder: Path,
        *,
        local: str,
        nhd: str,
        agreement: str,
        we_share: bool,
        share_filter: str | None = None,
        max_attempts: int = 3,
    ):
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.local = local
        self.nhd = nhd
        self.agreement_name = agreement
        self.we_share = we_share
        self.share_filter = share_filter
        self.max_attempts = max_attempts
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.sharing = f"{self.base}/sharing"
        self.config_path = folder / "nhd-bridge.yaml"
        self.state_url = f"sqlite:///{folder / 'state.db'}"
        self.tracker_path = folder / f"{local}.db"
        self.log_path = folder / "serve.log"
        self.partner: Installation | None = None
        self.wire_agreement: str | None = None  # the YAML `agreement:` key of the nhd instance
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # --- configuration ---------------------------------------------------------------------------

    def write_config(self) -> None:
        assert self.partner is not None
        nhd: dict[str, Any] = {
            "kind": "nhd",
            "partner_url": self.partner.sharing,
            "our_url": self.sharing,
            "allow_private_networks": True,  # the partner is on loopback
            "max_attempts": self.max_attempts,
        }
        if self.wire_agreement is not None:
            nhd["agreement"] = self.wire_agreement
        sides = (self.local, self.nhd) if self.we_share else (self.nhd, self.local)
        agreement: dict[str, Any] = {
            "sender": sides[0],
            "receiver": sides[1],
            "schedule": {"every": "1s"},
        }
        if self.share_filter is not None:
            agreement["share_filter"] = self.share_filter
        document = {
            "server": {
                "host": "127.0.0.1",
                "port": self.port,
                "receiver": {"base_url": self.sharing},
            },
            "state": {"url": self.state_url},
            "instances": {
                self.local: {
                    "kind": "local",
                    "path": str(self.tracker_path),
                    "sharing_url": f"{self.base}/{self.local}",
                },
                self.nhd: nhd,
            },
            "agreements": {self.agreement_name: agreement},
        }
        self.config_path.write_text(yaml.safe_dump(document, sort_keys=False))

    # --- the serve process -----------------------------------------------------------------------

    def spawn(self) -> None:
        assert self.process is None or self.process.poll() is not None
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"\n===== serve start {self.starts} =====\n".encode())
            self.process = subprocess.Popen(
                [sys.executable, "-m", "nhd_bridge", "-c", str(self.config_path), "serve"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1", "NHD_BRIDGE_STATUS_TOKEN": STATUS},
            )

    def healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(
                f"serve of {self.folder.name} exited with {self.process.returncode}\n{self.logs()}"
            )
        try:
            return httpx.get(f"{self.base}/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def start(self) -> None:
        self.spawn()
        wait_until(self.healthy, f"{self.folder.name} serves /health", [self])

    def stop(self) -> None:
        """SIGTERM: the graceful stop a user (or systemd) does before editing the YAML."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=20)
        assert code == 0, f"serve of {self.folder.name} stopped with {code}\n{self.logs()}"

    def kill(self) -> None:
        """SIGKILL: no goodbye, no cleanup."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> None:
        """Fixture teardown: whatever state it is in, the process goes."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def logs(self) -> str:
        """The serve log without the test's own polling of /health and /status."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        lines = [line for line in text.splitlines() if not POLLING.search(line)]
        return f"----- serve log of {self.folder.name} ({self.log_path}) -----\n" + "\n".join(
            lines[-150:]
        )

    def last_run(self) -> str | None:
        """The id of the agreement's last finished run, as /status reports it."""
        try:
            answer = httpx.get(
                f"{self.base}/status", timeout=2, headers={"Authorization": f"Bearer {STATUS}"}
            ).json()
        except (httpx.HTTPError, ValueError):
            return None
        run = answer.get("agreements", {}).get(self.agreement_name)
        return run["run_id"] if run else None

    # --- what a user types -----------------------------------------------------------------------

    def cli(self, *args: str, expect: int = 0) -> str:
        result = CliRunner().invoke(main, ["-c", str(self.config_path), *args])
        assert result.exit_code == expect, (
            f"`nhd-bridge {' '.join(args)}` on {self.folder.name} exited {result.exit_code}, "
            f"not {expect}:\n{result.output}\n{result.exception!r}\n{self.logs()}"
        )
        return result.output

    def local_cli(self, *args: str) -> str:
        return self.cli("local", "--instance", self.local, *args)

    def create(self, subject: str, *options: str) -> int:
        output = self.local_cli("create", subject, *options)
        match = re.search(r"Created #(\d+)", output)
        assert match, output
        return int(match[1])

    def comment(self, ticket: int, body: str, *, private: bool = False) -> None:
        flags = ["--private"] if private else []
        self.local_cli("comment", str(ticket), body, "--author", f"{self.local} agent", *flags)

    # --- what the test reads ---------------------------------------------------------------------

    def tickets(self) -> list[TicketRecord]:
        with LocalTracker(LocalConfig(path=self.tracker_path)) as tracker:
            return tracker.list_tickets()

    def ticket(self, subject: str) -> TicketRecord | None:
        found = [ticket for ticket in self.tickets() if ticket.subject == subject]
        assert len(found) <= 1, f"{subject!r} is in {self.local} {len(found)} times"
        return found[0] if found else None

    @contextmanager
    def wire(self) -> Iterator[WireStore]:
        store = StateStore(self.state_url)
        try:
            yield WireStore(store)
        finally:
            store.close()


class Pair:
    """Two installations that know each other's URL, and nothing else yet."""

    def __init__(self, folder: Path, **desk_options: Any):
        eng_options = {k: v for k, v in desk_options.items() if k == "max_attempts"}
        self.desk = Installation(
            folder / "desk",
            local="desk",
            nhd="engineering",
            agreement="desk-to-engineering",
            we_share=True,
            **desk_options,
        )
        self.eng = Installation(
            folder / "eng",
            local="eng",
            nhd="helpdesk",
            agreement="from-helpdesk",
            we_share=False,
            **eng_options,
        )
        self.desk.partner, self.eng.partner = self.eng, self.desk
        self.sides = (self.desk, self.eng)
        for side in self.sides:
            side.write_config()

    def logs(self) -> str:
        return "\n".join(side.logs() for side in self.sides)

    def start(self, *sides: Installation) -> None:
        sides = sides or self.sides
        for side in sides:  # both processes import at the same time
            side.spawn()
        for side in sides:
            wait_until(side.healthy, f"{side.folder.name} serves /health", self.sides)

    def connect(
        self,
        *invite_flags: str,
        bind_before_accept: bool = False,
        before_receiver_binds: Callable[[], None] | None = None,
    ) -> str:
        """The agreement handshake a user does, and the uuid pasted into both YAML files, each
        followed by a restart of that side's serve. By default both sides bind it once it is
        accepted; ``bind_before_accept`` has the desk bind it while still pending (the accept then
        needs no restart there); ``before_receiver_binds`` runs once the desk is bound and eng not
        yet (eng's receiver already takes what the desk shares)."""
        desk, eng = self.desk, self.eng
        invite = ("agreements", "invite", "--instance", "engineering", "--name", "Help Desk Ltd")
        invited = desk.cli(*invite, *invite_flags)
        match = re.search(r"agreement ([0-9a-f]{40}) is pending", invited)
        assert match, invited
        uuid = match[1]
        assert f"instances.engineering.agreement: {uuid}" in invited
        if bind_before_accept:
            self.bind(uuid, desk)

        [line] = [row for row in eng.cli("agreements", "list").splitlines() if uuid in row]
        assert "pending" in line and "we are receiver" in line, line
        assert f"partner {desk.sharing}" in line and "'Help Desk Ltd'" in line, line
        accepted = eng.cli("agreements", "accept", uuid, "--name", "Engineering Inc")
        assert f"accepted agreement {uuid}" in accepted, accepted

        [line] = [row for row in desk.cli("agreements", "list").splitlines() if uuid in row]
        assert "accepted" in line and "we are sender" in line, line
        assert "'Engineering Inc'" in line, line

        if before_receiver_binds is not None:
            if not bind_before_accept:
                self.bind(uuid, desk)
            before_receiver_binds()
            self.bind(uuid, eng)
        else:
            self.bind(uuid, *[side for side in self.sides if side.wire_agreement != uuid])
        for side in self.sides:
            assert f"instance: {side.nhd}" in side.cli("agreements", "show", uuid)
        return uuid

    def bind(self, uuid: str, *sides: Installation) -> None:
        """`agreement: UUID` in the nhd instance's YAML, and a restart (SIGTERM, start): serve
        reads its YAML once, at start."""
        for side in sides:
            side.wire_agreement = uuid
            side.write_config()
            side.stop()
        self.start(*sides)

    def settle(self, rounds: int = 2) -> None:
        """Wait for ``rounds`` full runs of each side, each started after the previous round
        ended: whatever was going to cross (and come back, if anything echoed) has crossed."""
        for _ in range(rounds):
            wait_for_fresh_runs(self.sides)


def wait_until(
    condition: Callable[[], Any],
    what: str,
    sides: tuple[Installation, ...] | list[Installation],
    seconds: float = DEADLINE_SECONDS,
) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(side.logs() for side in sides)
            raise AssertionError(f"not within {seconds:.0f} s: {what}\n{logs}")
        time.sleep(0.1)


def wait_for_fresh_runs(sides: tuple[Installation, ...]) -> None:
    """A full run of every side that started after this call: the second run to finish after
    it did (runs of an agreement never overlap)."""
    for _ in range(2):
        before = {side: side.last_run() for side in sides}
        wait_until(
            lambda before=before: all(
                side.last_run() not in (None, before[side]) for side in sides
            ),
            "a new run on each side",
            sides,
        )


def visibility(ticket: TicketRecord | None) -> Counter[tuple[str, bool]]:
    """Each comment as (body, public), counted: a count above one is a duplicate."""
    assert ticket is not None
    return Counter((comment.body, comment.public) for comment in ticket.comments)


def bodies(ticket: TicketRecord | None) -> Counter[str]:
    assert ticket is not None
    return Counter(comment.body for comment in ticket.comments)


@pytest.fixture
def make_pair(tmp_path: Path) -> Iterator[Callable[..., Pair]]:
    made: list[Pair] = []

    def build(**options: Any) -> Pair:
        pair = Pair(tmp_path / f"pair{len(made)}", **options)
        made.append(pair)
        return pair

    yield build
    for pair in made:
        for side in pair.sides:
            side.terminate()
    for pair in made:
        # Shown by pytest only when the test failed.
        print(pair.logs())


# --- scenario A: full delegation -----------------------------------------------------------------


def test_full_delegation_between_two_serve_processes(make_pair: Callable[..., Pair]) -> None:
    pair = make_pair(share_filter="contains(tags, 'escalate')")
    desk, eng = pair.desk, pair.eng
    pair.start()
    assert "no agreements yet" in eng.cli("agreements", "list")

    uuid = pair.connect()

    shown = desk.cli("agreements", "show", uuid)
    assert "status: accepted" in shown and "delegation: full" in shown, shown
    assert "*** (hidden)" in shown
    checked = desk.cli("check", "--instance", "engineering")  # warnings only: exit 0
    assert f"engineering: ok agreement: {uuid} accepted; we are its sender" in checked, checked
    assert "engineering: WARN tls:" in checked, checked  # loopback is plain http
    assert f"engineering: ok partner: {eng.sharing} knows the agreement" in checked, checked

    # Share a ticket through the share filter; a ticket without the tag stays at the desk.
    desk.create("Internal only: coffee machine", "--requester", "Carl Customer")
    number = desk.create("Printer on fire", "--requester", "Rita Requester", "--tag", "escalate")
    desk.comment(number, "It is on fire.")
    copy = wait_until(
        lambda: eng.ticket("Printer on fire"), "the shared ticket reaches eng", pair.sides
    )
    assert copy.requester is not None and copy.requester.name == "Rita Requester"
    wait_until(
        lambda: bodies(eng.ticket("Printer on fire")) == {"It is on fire.": 1},
        "the first comment reaches eng",
        pair.sides,
    )
    eng_number = int(copy.local_id)
    explained = desk.cli("explain", f"desk:{number}")
    assert "copy in engineering" in explained and "copy in desk" in explained, explained
    assert "is not shared with anyone" in desk.cli("explain", "desk:1")

    # Comments both ways, public and private; status both ways.
    desk.comment(number, "Customer called again.", private=True)
    desk.local_cli("status", str(number), "pending")
    eng.comment(eng_number, "Unplug it, please.")
    eng.comment(eng_number, "Root cause: toner.", private=True)

    expected = {
        ("It is on fire.", True): 1,
        ("Customer called again.", False): 1,
        ("Unplug it, please.", True): 1,
        ("Root cause: toner.", False): 1,
    }
    for side, subject in ((desk, "Printer on fire"), (eng, "Printer on fire")):
        wait_until(
            lambda side=side, subject=subject: visibility(side.ticket(subject)) == expected,
            f"every comment once with its visibility in {side.local}",
            pair.sides,
        )
    wait_until(
        lambda: eng.ticket("Printer on fire").status == "pending",  # type: ignore[union-attr]
        "desk's status reaches eng",
        pair.sides,
    )
    eng.local_cli("status", str(eng_number), "solved")
    wait_until(
        lambda: desk.ticket("Printer on fire").status == "solved",  # type: ignore[union-attr]
        "eng's status reaches the desk",
        pair.sides,
    )

    pair.settle()  # no echo, no ping-pong: still once each, same status, nothing more shared
    for side in pair.sides:
        ticket = side.ticket("Printer on fire")
        assert visibility(ticket) == expected, pair.logs()
        assert ticket is not None and ticket.status == "solved", pair.logs()
    assert [t.subject for t in eng.tickets()] == ["Printer on fire"], pair.logs()

    # Unshare on the sender: the partner is told, answers 410 afterwards, nothing syncs any more.
    unshared = desk.cli("unshare", f"desk:{number}", "--agreement", "desk-to-engineering")
    match = UUID.search(unshared)
    assert match and "no longer synced" in unshared, unshared
    shared_uuid = match[0]
    with desk.wire() as wire:
        agreement = wire.get_agreement(uuid)
    assert agreement is not None
    headers = {
        "X-Ticket-Sharing-Token": f"{uuid}:{agreement.access_key}",
        "X-Ticket-Sharing-Version": "1",
    }
    for partner in (eng, desk):  # eng got the DELETE; desk refuses eng's updates too
        url = f"{partner.sharing}/tickets/{shared_uuid}"
        got = httpx.get(url, headers=headers, timeout=5)
        put = httpx.put(url, headers=headers, json={"uuid": shared_uuid, "status": "hold"})
        assert (got.status_code, put.status_code) == (410, 410), (got.text, put.text)

    desk.comment(number, "After the unshare, from the desk.")
    desk.local_cli("status", str(number), "open")
    eng.comment(eng_number, "After the unshare, from eng.")
    eng.local_cli("status", str(eng_number), "hold")
    pair.settle()
    desk_copy, eng_copy = desk.ticket("Printer on fire"), eng.ticket("Printer on fire")
    assert desk_copy is not None and eng_copy is not None
    assert "After the unshare, from eng." not in bodies(desk_copy), pair.logs()
    assert "After the unshare, from the desk." not in bodies(eng_copy), pair.logs()
    assert (desk_copy.status, eng_copy.status) == ("open", "hold"), pair.logs()
    assert "unshare" in desk.cli("log", "--agreement", "desk-to-engineering")
    assert "orphan" in eng.cli("log", "--agreement", "from-helpdesk")
    assert "parked" not in desk.cli("log", "--failed") + eng.cli("log", "--failed")


# --- scenario B: partial delegation --------------------------------------------------------------


def test_partial_delegation_between_two_serve_processes(make_pair: Callable[..., Pair]) -> None:
    pair = make_pair()
    desk, eng = pair.desk, pair.eng
    pair.start()

    numbers: list[int] = []

    def share_while_eng_is_unbound() -> None:
        numbers.append(desk.create("Billing question", "--status", "open"))
        desk.comment(numbers[0], "Charged twice.")

        def eng_holds_it() -> bool:
            with eng.wire() as wire:
                return wire.row_counts()["nhd_wire_comments"] == 1

        # eng's receiver stores the share. Accepting bound the agreement to eng's nhd instance
        # in the state store, so eng's running engine applies it without `agreement:` in YAML.
        wait_until(eng_holds_it, "eng's receiver stores the share", pair.sides)
        wait_until(
            lambda: eng.ticket("Billing question"), "unbound in YAML, it still lands", pair.sides
        )

    uuid = pair.connect("--partial", before_receiver_binds=share_while_eng_is_unbound)

    for side in pair.sides:
        assert "delegation: partial" in side.cli("agreements", "show", uuid)
    [number] = numbers
    copy = wait_until(
        lambda: eng.ticket("Billing question"), "the shared ticket reaches eng", pair.sides
    )
    eng_number = int(copy.local_id)
    assert copy.status == "open"

    eng.comment(eng_number, "Refund issued.")  # public at eng
    eng.local_cli("status", str(eng_number), "solved")
    desk.local_cli("status", str(number), "hold")
    wait_until(
        lambda: ("Refund issued.", False) in visibility(desk.ticket("Billing question")),
        "eng's public comment reaches the desk, private",
        pair.sides,
    )
    pair.settle()

    mine, theirs = desk.ticket("Billing question"), eng.ticket("Billing question")
    mine_expected = {("Charged twice.", True): 1, ("Refund issued.", False): 1}
    assert visibility(mine) == mine_expected, pair.logs()
    theirs_expected = {("Charged twice.", True): 1, ("Refund issued.", True): 1}
    assert visibility(theirs) == theirs_expected, pair.logs()
    assert mine is not None and theirs is not None
    assert (mine.status, theirs.status) == ("hold", "solved"), pair.logs()
    assert "partial delegation" in desk.cli("log", "--agreement", "desk-to-engineering")


# --- scenario C: crash safety --------------------------------------------------------------------


def test_sigkill_of_either_serve_mid_traffic_loses_and_duplicates_nothing(
    make_pair: Callable[..., Pair],
) -> None:
    # Enough retries (0.5 + 1 + 2 + 4 + 8 s) to ride out a partner's restart without parking.
    pair = make_pair(max_attempts=6)
    desk, eng = pair.desk, pair.eng
    pair.start()
    pair.connect(bind_before_accept=True)  # the desk picks the accept up without a restart
    subjects = [f"Outage {n}" for n in range(1, 5)]
    expected: dict[str, Counter[tuple[str, bool]]] = {subject: Counter() for subject in subjects}

    def comment(side: Installation, number: int, subject: str, body: str) -> None:
        public = len(body) % 2 == 1  # a mix of public replies and private notes
        side.comment(number, body, private=not public)
        expected[subject][(body, public)] += 1

    numbers = {}
    for subject in subjects:
        numbers[subject] = desk.create(subject)
        for n in range(3):
            comment(desk, numbers[subject], subject, f"{subject}: desk note {n}")

    # eng has just been pushed to: kill it before (or while) it applies what it stored.
    def eng_received() -> bool:
        with eng.wire() as wire:
            return wire.row_counts()["nhd_wire_tickets"] >= 1

    wait_until(eng_received, "desk pushes its first ticket to eng", pair.sides)
    eng.kill()
    for subject in subjects:  # the desk keeps working while its partner is down
        comment(desk, numbers[subject], subject, f"{subject}: desk while eng is down")
    eng.start()

    copies = wait_until(
        lambda: len(eng.tickets()) == len(subjects) and eng.tickets(),
        "every ticket reaches eng",
        pair.sides,
    )
    eng_numbers = {ticket.subject: int(ticket.local_id) for ticket in copies}

    # Comments flow both ways; the desk dies as soon as the first of eng's arrives there.
    for subject in subjects:
        comment(eng, eng_numbers[subject], subject, f"{subject}: eng reply")
        comment(desk, numbers[subject], subject, f"{subject}: desk follow-up")

    def desk_received() -> bool:
        with desk.wire() as wire, wire.engine.connect() as connection:
            from_eng = select(func.count()).where(wire_comments.c.origin == "partner")
            return bool(connection.execute(from_eng).scalar())

    wait_until(desk_received, "eng pushes a comment to the desk", pair.sides)
    desk.kill()
    for subject in subjects:
        comment(eng, eng_numbers[subject], subject, f"{subject}: eng while desk is down")
    desk.start()

    for side in pair.sides:
        for subject in subjects:
            wait_until(
                lambda side=side, subject=subject: (
                    visibility(side.ticket(subject)) == expected[subject]
                ),
                f"{subject} converges in {side.local}",
                pair.sides,
            )
    pair.settle()
    for side in pair.sides:
        assert sorted(t.subject for t in side.tickets()) == subjects, pair.logs()
        for subject in subjects:
            assert visibility(side.ticket(subject)) == expected[subject], pair.logs()
