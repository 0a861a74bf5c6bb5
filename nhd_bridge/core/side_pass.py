"""Reading one side of an agreement in one run: its changes page by page, each page planned
(through :class:`TicketIntake`), written (through :class:`TicketWriter`) and its cursor committed
before the next page is read; then the side's parked tickets whose backoff ended."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from nhd_bridge.core.adapter import Adapter, AdapterError, TicketRecord
from nhd_bridge.core.failures import Failures
from nhd_bridge.core.leases import AgreementLease
from nhd_bridge.core.planner import Side
from nhd_bridge.core.state import StateStore
from nhd_bridge.core.sync_run import PageFacts, PassState, Progress, SyncRun
from nhd_bridge.core.ticket_intake import TicketIntake
from nhd_bridge.core.writer import TicketWriter, WorkItem

__all__ = ["SidePass"]


class SidePass:
    """Reads, plans and writes the changes of one side of an agreement at a time."""

    def __init__(
        self,
        store: StateStore,
        adapter: Callable[[str], Adapter],
        intake: TicketIntake,
        writer: TicketWriter,
        failures: Failures,
        lease: AgreementLease,
        *,
        clock: Callable[[], datetime],
        stop: threading.Event,
        progress: Progress,
    ):
        self.store = store
        self.adapter = adapter
        self.intake = intake
        self.writer = writer
        self.failures = failures
        self.lease = lease
        self._clock = clock
        self._stop = stop
        self._progress = progress

    def read_side(self, run: SyncRun, side: Side, forced: set[str]) -> list[WorkItem]:
        """Read one side's changes page by page; each page's tickets are written and its cursor
        committed before the next page is read, so a read broken off half way (a 429, a tracker
        going down) keeps what it did and the next run starts where it stopped. Then the parked
        tickets of this side whose backoff ended are retried."""
        if run.broken:
            return []
        read = self.store.read()
        work = PassState(
            side,
            read.cursor(run.name, side.instance),
            now=self._clock(),
            parked={row.shared_uuid: row for row in read.parked(run.name)},
        )
        if not self._read_pages(run, work):
            return work.planned
        with self.store.transaction() as reader:
            work.reader = reader
            due = [
                row.shared_uuid
                for row in reader.parked(run.name)
                if row.instance == side.instance and row.next_attempt_at <= work.now
            ]
            for shared_uuid in dict.fromkeys([*forced, *due]):
                if shared_uuid not in work.seen and not run.broken:
                    self.intake.consider_again(run, work, shared_uuid)
        self._settle(run, work, None)
        return work.planned

    def _read_pages(self, run: SyncRun, work: PassState) -> bool:
        """Plan and write every page of changes; False if the pass must stop here."""
        summary, side = run.summary, work.side
        try:
            for page in self.adapter(side.instance).changed_since(work.cursor):
                with self.store.transaction() as reader:
                    work.reader = reader
                    facts = PageFacts.read(reader, run.name, side, page.tickets)
                    for record in _latest(page.tickets):
                        summary.tickets_seen += 1
                        self.intake.consider(run, work, record, facts)
                        seen = summary.tickets_seen
                        self._progress(run.name, f"reading {side.instance}", seen, None)
                        if run.broken:
                            return False
                if not self._settle(run, work, page.cursor):
                    return False
                if self._stop.is_set():
                    summary.errors.append(f"stopped on request while reading {side.instance}")
                    return False
        except AdapterError as error:
            # A failed read changes nothing more: the pages before it are kept, no closes, no
            # deletions, and the next run reads again from the last committed page.
            message = (
                f"reading changes from {side.instance} failed: {error}; what was read before it "
                f"is kept and the next run reads on from there"
            )
            summary.errors.append(message)
            summary.failure = summary.failure or message
            if not run.dry_run:
                self.failures.journal_run_failure(summary, side.instance, "read", message)
            return False
        return True

    def _settle(self, run: SyncRun, work: PassState, cursor: str | None) -> bool:
        """Write what the page planned, then commit the confirmations and the page's cursor."""
        items, work.items = work.items, []
        if not self._within_close_limit(run, work.side, items):
            return False
        if run.dry_run:
            # Nothing is written, so a ticket met again in a later page is planned again from
            # the same snapshots: its latest plan replaces the earlier one.
            for item in items:
                run.summary.writes.update(item.plan.write_counts())
            again = {item.shared_uuid for item in items}
            work.planned = [i for i in work.planned if i.shared_uuid not in again] + items
            return True
        name = run.name
        for done, item in enumerate(items, start=1):
            if self._stop.is_set():
                run.summary.errors.append(f"stopped on request after {done - 1} tickets")
                work.planned += items[: done - 1]
                return False
            self.lease.renew(name)
            run.breaker.note(self.writer.execute(run.rules, item, run.summary))
            self._progress(name, f"writing changes from {work.side.instance}", done, len(items))
            if run.broken:
                work.planned += items[:done]
                return False
        work.planned += items
        with self.store.transaction() as tx:
            for shared_uuid, instance, snapshot in work.confirmations:
                tx.put_snapshot(name, shared_uuid, instance, snapshot)
            if cursor is not None and not work.holds_cursor:
                tx.put_cursor(name, work.side.instance, cursor)
        work.confirmations = []
        return True

    def _within_close_limit(self, run: SyncRun, side: Side, items: list[WorkItem]) -> bool:
        rules, summary = run.rules, run.summary
        limit = rules.agreement.max_closes_per_run
        closing = sum(
            1
            for item in items
            if item.plan.closes_on(rules.sender) or item.plan.closes_on(rules.receiver)
        )
        if run.closes + closing <= limit:
            run.closes += closing
            return True
        message = (
            f"this run would close {run.closes + closing} tickets, more than "
            f"max_closes_per_run ({limit}) allows; nothing more from {side.instance} was "
            f"written. If this is intended, raise max_closes_per_run for agreement "
            f"{summary.agreement} and run again"
        )
        summary.errors.append(message)
        if not run.dry_run:
            self.failures.journal_run_failure(summary, side.instance, "guard", message)
        return False


# --- helpers ------------------------------------------------------------------------------------


def _latest(records: list[TicketRecord]) -> list[TicketRecord]:
    """A page's tickets, each once, with its newest content."""
    latest: dict[str, TicketRecord] = {}
    for record in records:
        latest.pop(record.local_id, None)
        latest[record.local_id] = record
    return list(latest.values())
