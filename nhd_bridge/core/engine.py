"""One run of one agreement, both directions (design.md §3 and §4).

For each side in turn (sender first): read the changes since that side's cursor, find the tickets
this agreement carries (or should start carrying), plan each with :mod:`nhd_bridge.core.planner`,
then write the plans through the adapters with the bookkeeping around every write:

- a pending link is committed *before* a remote create, and the create leaves the shared uuid on
  the remote record, so a crash in between is recovered by lookup, never by a second create;
- a comment carries its shared uuid as a breadcrumb, so a crash after writing it and before its
  link was stored finds it again on the target instead of writing it twice;
- links, snapshots and journal lines of one ticket are committed in one transaction after its
  writes; the cursor moves only after every ticket it covers was committed or parked;
- a ticket whose write fails is parked with backoff; later changes to it wait behind it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid as uuid_module
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jmespath

from nhd_bridge.core.adapter import (
    Adapter,
    AdapterContext,
    AdapterError,
    TicketRecord,
    TransientError,
)
from nhd_bridge.core.config import AgreementConfig, LoadedConfig
from nhd_bridge.core.model import nhd_uuid
from nhd_bridge.core.planner import (
    Copy,
    Rules,
    Side,
    comment_uuids,
    plan_ticket,
)
from nhd_bridge.core.run import RunSummary
from nhd_bridge.core.state import (
    AgreementRow,
    JournalEntry,
    LinkRow,
    ParkedRow,
    StateStore,
    StateTx,
    utcnow,
)
from nhd_bridge.core.writer import TicketWriter, WorkItem, journal_entry

__all__ = ["AgreementBusy", "AgreementRefused", "Progress", "SyncEngine", "WorkItem"]

log = logging.getLogger(__name__)

# First retry of a parked ticket; it doubles with each failure up to an hour. Short, because the
# usual cause is a partner restarting or a dropped connection, and the ticket waits meanwhile.
PARK_BACKOFF = timedelta(seconds=5)
# A run renews its lease as it goes; a worker that dies loses it after this long at most.
LEASE_TTL = timedelta(minutes=5)
LEASE_RENEW_EVERY = timedelta(minutes=1)


# (agreement, what is happening, done so far, total when known) — for progress bars.
Progress = Callable[[str, str, int, int | None], None]


def _no_progress(agreement: str, phase: str, done: int, total: int | None) -> None:
    return None


class AgreementBusy(Exception):
    """Another run of this agreement holds its lease."""


class AgreementRefused(Exception):
    """The agreement may not run as configured (for example a reactivation)."""


@dataclass
class _Run:
    """One run of one agreement: what every step of both passes needs to know."""

    rules: Rules
    summary: RunSummary
    dry_run: bool
    share_filter: Any  # a compiled JMESPath expression, or None to share every ticket
    handled: set[str] = field(default_factory=set)  # tickets planned in an earlier pass
    closes: int = 0  # tickets closed by earlier passes, counted against max_closes_per_run

    @property
    def name(self) -> str:
        return self.summary.agreement


@dataclass
class _Pass:
    """The mutable state of reading one side; ``reader`` is one store connection for all the
    bookkeeping reads of the pass (a connection per read was the slowest part of a big sync)."""

    side: Side
    cursor: str | None
    reader: StateTx
    now: datetime
    parked: dict[str, ParkedRow]
    seen: set[str] = field(default_factory=set)
    items: list[WorkItem] = field(default_factory=list)
    confirmations: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


@dataclass
class _PageFacts:
    """The bookkeeping of one page of changed tickets, read in a few queries instead of several
    per ticket. Tickets not in it (new shares) fall back to one query each."""

    links: dict[str, LinkRow]  # local id on this side -> its link
    states: dict[str, str]  # shared uuid -> state under this agreement
    snapshots: dict[str, dict[str, Any]]  # shared uuid -> this side's snapshot
    comment_links: dict[str, dict[str, dict[str, str | None]]]  # shared uuid -> links

    @classmethod
    def read(
        cls, reader: StateTx, agreement: str, side: Side, records: list[TicketRecord]
    ) -> _PageFacts:
        links = reader.links_for_locals(side.instance, [record.local_id for record in records])
        shared = [link.shared_uuid for link in links.values()]
        return cls(
            links=links,
            states=reader.agreement_ticket_states(agreement, shared),
            snapshots=reader.snapshots_for(agreement, side.instance, shared),
            comment_links=reader.comment_links_for(shared),
        )


class SyncEngine:
    """Runs agreements of one configuration against one state store."""

    def __init__(
        self,
        config: LoadedConfig,
        store: StateStore,
        *,
        adapters: dict[str, Adapter] | None = None,
        clock: Callable[[], datetime] = utcnow,
        holder: str | None = None,
        progress: Progress | None = None,
    ):
        self.config = config
        self.store = store
        self.plugins = config.plugins
        self._adapters: dict[str, Adapter] = {}
        self._installation: str | None = None
        self._clock = clock
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}"
        self._lease_renewed = clock()
        self._progress = progress or _no_progress
        self._stop = threading.Event()
        self._writer = TicketWriter(store, self.plugins, self.adapter, self._park)
        for instance, adapter in (adapters or {}).items():
            self._adopt(instance, adapter)

    # --- public ---------------------------------------------------------------------------------

    def adapter(self, instance: str) -> Adapter:
        if instance not in self._adapters:
            kind = self.config.bridge.instances[instance].kind
            adapter_class = self.plugins.adapter_class(kind)
            self._adopt(instance, adapter_class(instance, self.config.adapter_configs[instance]))
        return self._adapters[instance]

    def _adopt(self, instance: str, adapter: Adapter) -> None:
        adapter.attach(AdapterContext(instance, self._sharing_url(instance), self.store))
        self._adapters[instance] = adapter

    def _sharing_url(self, instance: str) -> str:
        if self._installation is None:
            self._installation = self.store.installation_id()
        return self.config.sharing_url(instance, self._installation)

    def run(self, agreement: str, *, dry_run: bool = False) -> RunSummary:
        summary, _ = self._run(agreement, dry_run=dry_run)
        return summary

    def plan(self, agreement: str) -> tuple[RunSummary, list[WorkItem]]:
        """What the next run would write; nothing is written anywhere."""
        return self._run(agreement, dry_run=True)

    def request_stop(self) -> None:
        """Finish the ticket being written, then stop; the cursor stays where it is, so the next
        run reads again what this one did not get to (a graceful SIGTERM)."""
        self._stop.set()

    def unshare(self, agreement: str, instance: str, local_id: str) -> str:
        """Stop syncing one ticket under one agreement; both copies stay as they are.

        Returns the shared uuid. Raises ``LookupError`` when the ticket is not shared there."""
        read = self.store.read()
        link = read.link_for_local(instance, local_id)
        state = read.agreement_ticket_state(agreement, link.shared_uuid) if link else None
        if link is None or state is None:
            raise LookupError(f"{instance}:{local_id} is not shared under agreement {agreement}")
        if state == "unshared":
            return link.shared_uuid
        self._unshare_copy(agreement, link.shared_uuid)
        with self.store.transaction() as tx:
            tx.set_agreement_ticket_state(agreement, link.shared_uuid, "unshared")
            tx.unpark(agreement, link.shared_uuid)
            tx.record(
                JournalEntry(
                    agreement=agreement,
                    run_id="unshare",
                    action="unshare",
                    outcome="info",
                    source=instance,
                    shared_uuid=link.shared_uuid,
                    local_id=local_id,
                    reason="unshared on request: both copies stay, nothing syncs between them",
                )
            )
        return link.shared_uuid

    def _unshare_copy(self, agreement: str, shared_uuid: str) -> None:
        """Tell the receiver's side first (a native partner gets its DELETE); if that fails the
        ticket stays shared, so no side believes in a share the other has ended."""
        receiver = self.config.bridge.agreements[agreement].receiver
        copy = self.store.read().link(shared_uuid, receiver)
        if copy is not None and copy.local_id is not None:
            self.adapter(receiver).unshare(copy.local_id)

    def run_all(self, *, dry_run: bool = False) -> list[RunSummary]:
        return [self.run(name, dry_run=dry_run) for name in self.config.bridge.agreements]

    def close(self) -> None:
        for adapter in self._adapters.values():
            adapter.close()

    # --- one run --------------------------------------------------------------------------------

    def _run(self, name: str, *, dry_run: bool) -> tuple[RunSummary, list[WorkItem]]:
        agreement = self._effective_agreement(name)
        summary = RunSummary(agreement=name, run_id=uuid_module.uuid4().hex[:16], dry_run=dry_run)
        self._sync_agreement_row(name, agreement, dry_run)
        if agreement.status != "accepted":
            summary.skipped["agreement " + agreement.status] += 1
            summary.errors.append(
                f"agreement {name} is {agreement.status}: nothing syncs until it is accepted"
            )
            return summary, []
        if not dry_run:
            self._take_lease(name)
        planned: list[WorkItem] = []
        self.plugins.run_started(name, summary.run_id)
        try:
            rules = self._rules(name, agreement)
            run = _Run(rules, summary, dry_run, _compiled_filter(agreement.share_filter))
            forced = set() if dry_run else self._recover_pending(rules, summary)
            for side in (rules.sender, rules.receiver):
                planned += self._pass(run, side, forced)
                forced = set()
        finally:
            if not dry_run:
                self.store.release_lease(name, self.holder)
            self.plugins.run_finished(summary)
        return summary, planned

    def _effective_agreement(self, name: str) -> AgreementConfig:
        """The YAML agreement, with the terms a side negotiated on the wire taking precedence."""
        agreement = self.config.bridge.agreements[name]
        for instance in (agreement.sender, agreement.receiver):
            terms = self.adapter(instance).agreement_terms()
            if terms is not None:
                agreement = agreement.model_copy(
                    update={
                        "status": terms.status,
                        "allows_public_comments": terms.allows_public_comments,
                        "sync_tags": terms.sync_tags,
                        "sync_custom_fields": terms.sync_custom_fields,
                    }
                )
        return agreement

    def _take_lease(self, name: str) -> None:
        if self.store.acquire_lease(name, self.holder, LEASE_TTL):
            self._lease_renewed = self._clock()
            return
        holder = self.store.lease_holder(name)
        if holder and _dead_local_process(holder):
            # Killed on this machine: its lease would block every run until it expires.
            self.store.release_lease(name, holder)
            if self.store.acquire_lease(name, self.holder, LEASE_TTL):
                self._lease_renewed = self._clock()
                return
        raise AgreementBusy(
            f"agreement {name} is being run by {holder or 'another worker'}; try later"
        )

    def _renew_lease(self, name: str) -> None:
        now = self._clock()
        if now - self._lease_renewed >= LEASE_RENEW_EVERY:
            if not self.store.acquire_lease(name, self.holder, LEASE_TTL):
                raise AgreementBusy(f"agreement {name}: lost the lease to another worker")
            self._lease_renewed = now

    def _sync_agreement_row(self, name: str, agreement: AgreementConfig, dry_run: bool) -> None:
        stored = self.store.read().agreement(name)
        if stored and stored.status == "inactive" and agreement.status == "accepted":
            raise AgreementRefused(
                f"agreement {name} was deactivated and cannot be reactivated; "
                "create a new agreement (a new name) to share again"
            )
        if dry_run:
            return
        row = AgreementRow(
            name=name,
            uuid=stored.uuid
            if stored
            else nhd_uuid(self._sharing_url(agreement.sender), "agreements", name),
            sender=agreement.sender,
            receiver=agreement.receiver,
            status=agreement.status,
            allows_public_comments=agreement.allows_public_comments,
            sync_tags=agreement.sync_tags,
            sync_custom_fields=agreement.sync_custom_fields,
            deactivated_by=stored.deactivated_by if stored else None,
        )
        if stored != row:
            with self.store.transaction() as tx:
                tx.upsert_agreement(row)

    def _rules(self, name: str, agreement: AgreementConfig) -> Rules:
        def side(instance: str, role: Any) -> Side:
            config = self.config.bridge.instances[instance]
            return Side(
                instance=instance,
                role=role,
                capabilities=self.adapter(instance).capabilities,
                sharing_url=self._sharing_url(instance),
                closed_statuses=frozenset(config.closed_statuses),
            )

        rules = Rules(
            agreement, side(agreement.sender, "sender"), side(agreement.receiver, "receiver")
        )
        _check_status_maps(name, rules)
        return rules

    # --- crash recovery -------------------------------------------------------------------------

    def _recover_pending(self, rules: Rules, summary: RunSummary) -> set[str]:
        """Finish creates a crashed run left pending: find the copy by its breadcrumb."""
        name = summary.agreement
        forced: set[str] = set()
        for side in (rules.sender, rules.receiver):
            for link in self.store.read().pending_links(side.instance):
                if self.store.read().agreement_ticket_state(name, link.shared_uuid) is None:
                    continue
                try:
                    found = self.adapter(side.instance).find_by_shared_uuid(link.shared_uuid)
                except AdapterError as error:
                    summary.errors.append(f"recovery lookup on {side.instance} failed: {error}")
                    continue
                with self.store.transaction() as tx:
                    if found is None:
                        tx.drop_link(link.shared_uuid, side.instance)
                        reason = "a create was interrupted before it happened; it will be redone"
                    else:
                        tx.put_link(link.shared_uuid, side.instance, found.local_id, "linked")
                        reason = f"an interrupted create had succeeded: linked {found.local_id}"
                    tx.record(
                        journal_entry(
                            summary,
                            action="recover",
                            outcome="info",
                            target=side.instance,
                            shared_uuid=link.shared_uuid,
                            local_id=found.local_id if found else None,
                            reason=reason,
                        )
                    )
                forced.add(link.shared_uuid)
        return forced

    # --- one side -------------------------------------------------------------------------------

    def _pass(self, run: _Run, side: Side, forced: set[str]) -> list[WorkItem]:
        name = run.name
        with self.store.transaction() as reader:
            work = _Pass(
                side,
                reader.cursor(name, side.instance),
                reader,
                now=self._clock(),
                parked={row.shared_uuid: row for row in reader.parked(name)},
            )
            if not self._collect(run, work, forced):
                return []
        if not self._within_close_limit(run, work):
            return []
        if run.dry_run:
            for item in work.items:  # what would be written, so a dry run's summary says it
                run.summary.writes.update(item.plan.write_counts())
            return work.items
        phase = f"writing changes from {side.instance}"
        for done, item in enumerate(work.items, start=1):
            if self._stop.is_set():
                run.summary.errors.append(f"stopped on request after {done - 1} tickets")
                return work.items[: done - 1]
            self._renew_lease(name)
            self._writer.execute(run.rules, item, run.summary)
            self._progress(name, phase, done, len(work.items))
        with self.store.transaction() as tx:
            for shared_uuid, instance, snapshot in work.confirmations:
                tx.put_snapshot(name, shared_uuid, instance, snapshot)
            tx.put_cursor(name, side.instance, work.cursor)
        return work.items

    def _collect(self, run: _Run, work: _Pass, forced: set[str]) -> bool:
        """Read one side's changes and plan every ticket they touch; False if the read failed."""
        summary, side = run.summary, work.side
        try:
            for page in self.adapter(side.instance).changed_since(work.cursor):
                facts = _PageFacts.read(work.reader, run.name, side, page.tickets)
                for record in page.tickets:
                    summary.tickets_seen += 1
                    self._consider(run, work, record, facts)
                    self._progress(run.name, f"reading {side.instance}", summary.tickets_seen, None)
                if page.cursor is not None:
                    work.cursor = page.cursor
                if not run.dry_run:
                    self._renew_lease(run.name)
                if self._stop.is_set():
                    summary.errors.append(f"stopped on request while reading {side.instance}")
                    return False
        except AdapterError as error:
            # A failed read changes nothing anywhere: no closes, no deletions, cursor kept.
            message = (
                f"reading changes from {side.instance} failed: {error}; nothing was written "
                f"because of it and the next run reads again"
            )
            summary.errors.append(message)
            if not run.dry_run:
                self._journal_failure(run.name, summary, side.instance, None, None, "read", message)
            return False

        due = {uuid for uuid, row in work.parked.items() if row.next_attempt_at <= work.now}
        for shared_uuid in forced | due:
            if shared_uuid not in work.seen and shared_uuid not in run.handled:
                self._consider_again(run, work, shared_uuid)
        run.handled |= work.seen
        return True

    def _consider(self, run: _Run, work: _Pass, record: TicketRecord, facts: _PageFacts) -> None:
        """Whether this agreement carries (or should start carrying) a changed ticket."""
        side, read = work.side, work.reader
        link = facts.links.get(record.local_id)
        shared_uuid = link.shared_uuid if link else None
        state = facts.states.get(shared_uuid) if shared_uuid else None
        if state is None:
            if side.role != "sender" or not _matches(run.share_filter, record):
                return
            if link is None and record.shared_uuid and read.link(record.shared_uuid, side.instance):
                return  # our own copy whose link another agreement is still recovering
            # A ticket that already has an NHD identity (one a native partner shared with us)
            # keeps it; a ticket born here gets one minted from this instance's sharing URL.
            shared_uuid = (
                shared_uuid
                or record.shared_uuid
                or nhd_uuid(side.sharing_url, "tickets", record.local_id)
            )
            if read.link(shared_uuid, run.rules.other(side).instance) is not None:
                return  # already bridged to that instance under another agreement
        elif state != "shared":
            return
        assert shared_uuid is not None
        # A ticket planned in the other side's pass is looked at again: usually it is only the
        # echo of our writes, but a person may have changed it after we read it.
        if shared_uuid in work.seen:
            return
        work.seen.add(shared_uuid)
        row = work.parked.get(shared_uuid)
        if row is not None and row.next_attempt_at > work.now:
            run.summary.skipped["waiting behind a parked failure"] += 1
            return
        if row is not None:
            run.summary.retried += 1
        self._prepare(run, work, record, shared_uuid, facts)

    def _consider_again(self, run: _Run, work: _Pass, shared_uuid: str) -> None:
        """A parked ticket due for retry, or one whose create was recovered: read it afresh."""
        side = work.side
        link = work.reader.link(shared_uuid, side.instance)
        local_id = link.local_id if link else None
        parked = work.parked.get(shared_uuid)
        if local_id is None and parked is not None and parked.instance == side.instance:
            local_id = parked.local_id
        if local_id is None:
            return
        work.seen.add(shared_uuid)
        try:
            record = self.adapter(side.instance).get(local_id)
        except AdapterError as error:
            self._park(run.rules, run.summary, shared_uuid, side.instance, local_id, error)
            return
        if record is None:
            self._orphan(run.summary, shared_uuid, side.instance, local_id)
            return
        if parked is not None:
            run.summary.retried += 1
        self._prepare(run, work, record, shared_uuid)

    def _prepare(
        self,
        run: _Run,
        work: _Pass,
        record: TicketRecord,
        shared_uuid: str,
        facts: _PageFacts | None = None,
    ) -> None:
        """Plan one ticket, reading the other copy only when this one changed."""
        rules, summary, side, read = run.rules, run.summary, work.side, work.reader
        if facts is not None and shared_uuid in facts.comment_links:
            links = facts.comment_links[shared_uuid]
            snapshot = facts.snapshots.get(shared_uuid)
        else:
            links = read.comment_links(shared_uuid)
            snapshot = read.snapshot(run.name, shared_uuid, side.instance)
        uuids, missing = comment_uuids(record, side, links.get(side.instance, {}))
        copy = Copy(side, record, snapshot, uuids)
        if copy.snapshot is not None:
            change = _change_kind(rules, copy)
            if change == "none":
                return  # an echo of our own writes, or a change nothing here carries
            if change == "confirm":
                # Our own writes read back: their stored text becomes the baseline for edits.
                work.confirmations.append((shared_uuid, side.instance, _confirmed(copy)))
                return
        other_side = rules.other(side)
        other_link = read.link(shared_uuid, other_side.instance)
        counterpart: Copy | None = None
        missing_links = [(u, side.instance, lid) for u, lid in missing]
        if other_link is not None and other_link.local_id is not None:
            try:
                other_record = self.adapter(other_side.instance).get(other_link.local_id)
            except AdapterError as error:
                self._park(rules, summary, shared_uuid, side.instance, record.local_id, error)
                return
            if other_record is None:
                self._orphan(summary, shared_uuid, other_side.instance, other_link.local_id)
                return
            other_uuids, other_missing = comment_uuids(
                other_record, other_side, links.get(other_side.instance, {})
            )
            counterpart = Copy(
                other_side,
                other_record,
                read.snapshot(run.name, shared_uuid, other_side.instance),
                other_uuids,
            )
            missing_links += [(u, other_side.instance, lid) for u, lid in other_missing]
        elif other_link is not None:
            # A create on the other side is still pending (its recovery lookup failed): creating
            # now could make a second copy. Wait until recovery has found it or ruled it out.
            summary.skipped["waiting for crash recovery"] += 1
            return
        elif side.role == "receiver":
            return  # the sender's copy is gone; the sender pass handles it
        if side.role == "sender":
            plan = plan_ticket(rules, shared_uuid, copy, counterpart)
            sender_local = record.local_id
        else:
            assert counterpart is not None
            plan = plan_ticket(rules, shared_uuid, counterpart, copy)
            sender_local = counterpart.record.local_id
        work.items.append(
            WorkItem(
                shared_uuid=shared_uuid,
                plan=plan,
                origin=copy,
                counterpart=counterpart,
                sender_local_id=sender_local,
                new_comment_links=missing_links,
            )
        )

    def _within_close_limit(self, run: _Run, work: _Pass) -> bool:
        rules, summary = run.rules, run.summary
        limit = rules.agreement.max_closes_per_run
        closing = sum(
            1
            for item in work.items
            if item.plan.closes_on(rules.sender) or item.plan.closes_on(rules.receiver)
        )
        if run.closes + closing <= limit:
            run.closes += closing
            return True
        message = (
            f"this run would close {run.closes + closing} tickets, more than "
            f"max_closes_per_run ({limit}) allows; nothing from {work.side.instance} was "
            f"written. If this is intended, raise max_closes_per_run for agreement "
            f"{summary.agreement} and run again"
        )
        summary.errors.append(message)
        if not run.dry_run:
            self._journal_failure(
                summary.agreement, summary, work.side.instance, None, None, "guard", message
            )
        return False

    # --- failures -------------------------------------------------------------------------------

    def _park(
        self,
        rules: Rules,
        summary: RunSummary,
        shared_uuid: str,
        instance: str,
        local_id: str,
        error: AdapterError,
    ) -> None:
        backoff = PARK_BACKOFF
        if isinstance(error, TransientError) and error.retry_after:
            backoff = max(backoff, timedelta(seconds=error.retry_after))
        with self.store.transaction() as tx:
            row = tx.park(summary.agreement, shared_uuid, instance, local_id, str(error), backoff)
            tx.record(
                journal_entry(
                    summary,
                    action="park",
                    outcome="failed",
                    source=instance,
                    shared_uuid=shared_uuid,
                    local_id=local_id,
                    reason=f"{error} (attempt {row.attempts}; next try after "
                    f"{row.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC)",
                )
            )
        summary.parked += 1
        summary.errors.append(f"ticket {local_id} of {instance} parked: {error}")
        self.plugins.ticket_parked(summary.agreement, shared_uuid, str(error))

    def _orphan(self, summary: RunSummary, shared_uuid: str, instance: str, local_id: str) -> None:
        """A copy was deleted: the other copy stays, the link is marked and journaled."""
        with self.store.transaction() as tx:
            tx.put_link(shared_uuid, instance, local_id, "orphaned")
            tx.set_agreement_ticket_state(summary.agreement, shared_uuid, "orphaned")
            tx.unpark(summary.agreement, shared_uuid)
            tx.record(
                journal_entry(
                    summary,
                    action="orphan",
                    outcome="info",
                    target=instance,
                    shared_uuid=shared_uuid,
                    local_id=local_id,
                    reason=f"ticket {local_id} was deleted in {instance}; the other copy is kept "
                    "and no longer syncs",
                )
            )
        summary.skipped["orphaned"] += 1

    def _journal_failure(
        self,
        agreement: str,
        summary: RunSummary,
        instance: str | None,
        shared_uuid: str | None,
        local_id: str | None,
        action: str,
        reason: str,
    ) -> None:
        with self.store.transaction() as tx:
            tx.record(
                JournalEntry(
                    agreement=agreement,
                    run_id=summary.run_id,
                    action=action,
                    outcome="failed",
                    source=instance,
                    shared_uuid=shared_uuid,
                    local_id=local_id,
                    reason=reason,
                )
            )


# --- helpers ------------------------------------------------------------------------------------


def _check_status_maps(name: str, rules: Rules) -> None:
    """A status map naming a status the target does not have would fail on every write."""
    maps = rules.agreement.status_map
    for way, table, target in (
        ("outbound", maps.outbound, rules.receiver),
        ("inbound", maps.inbound, rules.sender),
    ):
        known = target.capabilities.statuses
        if table is None or known is None:
            continue
        unknown = sorted({value for value in table.values() if value not in known})
        if unknown:
            raise AgreementRefused(
                f"agreement {name}: status_map.{way} maps to {', '.join(map(repr, unknown))}, "
                f"which {target.instance} does not have; its statuses: {', '.join(known)}"
            )


def _dead_local_process(holder: str) -> bool:
    """Whether a lease holder ``host:pid`` is a process of this machine that no longer runs."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _compiled_filter(expression: str | None) -> Any:
    return jmespath.compile(expression) if expression else None


def _matches(share_filter: Any, record: TicketRecord) -> bool:
    if share_filter is None:
        return True
    document = {
        "subject": record.subject,
        "status": record.status,
        "tags": list(record.tags),
        "custom_fields": dict(record.custom_fields),
        "requester": record.requester.model_dump() if record.requester else None,
        "id": record.human_id or record.local_id,
    }
    return bool(share_filter.search(document))


def _change_kind(rules: Rules, copy: Copy) -> str:
    """``none``: nothing moved since the snapshot; ``confirm``: only our own comment writes read
    back for the first time; ``changed``: a field, a new comment or an edit to carry over."""
    snapshot = copy.snapshot
    assert snapshot is not None
    state = rules.state(copy.record, copy.side)
    if any(snapshot.get(key) != value for key, value in state.items()):
        return "changed"
    if not copy.comment_set <= set(snapshot.get("comments", ())):
        return "changed"
    known = snapshot.get("bodies")
    if known is None:
        return "none"
    kind = "none"
    for uuid, digest in copy.bodies().items():
        recorded = known.get(uuid)
        if recorded is None:
            kind = "confirm"
        elif recorded != digest:
            return "changed"
    return kind


def _confirmed(copy: Copy) -> dict[str, Any]:
    assert copy.snapshot is not None
    return {**copy.snapshot, "bodies": {**copy.snapshot["bodies"], **copy.bodies()}}
