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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
from nhd_bridge.core.config import AgreementConfig, LoadedConfig, status_map_problems
from nhd_bridge.core.model import nhd_uuid
from nhd_bridge.core.planner import (
    Copy,
    Rules,
    ShareVerdict,
    Side,
    comment_uuids,
    plan_ticket,
    share_verdict,
    without_comments,
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
from nhd_bridge.core.writer import (
    IgnoredWrite,
    TicketWriter,
    WorkItem,
    journal_entry,
    release_reused_id,
    unexpected,
)

__all__ = ["AgreementBusy", "AgreementRefused", "Progress", "SyncEngine", "WorkItem"]

log = logging.getLogger(__name__)

# First retry of a parked ticket; it doubles with each failure up to an hour. Short, because the
# usual cause is a partner restarting or a dropped connection, and the ticket waits meanwhile.
PARK_BACKOFF = timedelta(seconds=5)
# A run renews its lease as it goes; a worker that dies loses it after this long at most.
LEASE_TTL = timedelta(minutes=5)
LEASE_RENEW_EVERY = timedelta(minutes=1)
# Transient failures in a row after which a run stops rather than try every remaining ticket
# against a tracker that is down or throttling.
BREAKER_FAILURES = 3


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
    closes: int = 0  # tickets closed by earlier passes, counted against max_closes_per_run
    failures: int = 0  # transient failures in a row, for the circuit breaker
    broken: str | None = None  # why the breaker stopped this run

    @property
    def name(self) -> str:
        return self.summary.agreement


@dataclass
class _Pass:
    """The mutable state of reading one side; ``reader`` is the store transaction of the page
    being planned (one connection for its bookkeeping reads, a fresh one per page so that a page
    sees what the pages before it wrote)."""

    side: Side
    cursor: str | None
    now: datetime
    parked: dict[str, ParkedRow]
    reader: StateTx | None = None
    seen: set[str] = field(default_factory=set)
    items: list[WorkItem] = field(default_factory=list)
    planned: list[WorkItem] = field(default_factory=list)
    confirmations: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    # A ticket left to be read again: the cursor stays before it for the rest of the pass.
    holds_cursor: bool = False


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
        self._sharing_urls: dict[str, str] = {}
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
        url = self.config.sharing_url(instance, self._installation_id, adapter.tracker_identity())
        self._sharing_urls[instance] = url
        adapter.attach(AdapterContext(instance, url, self.store))
        self._adapters[instance] = adapter

    def sharing_url(self, instance: str) -> str:
        """The base the uuids of this instance are minted from (ADR 0001)."""
        self.adapter(instance)
        return self._sharing_urls[instance]

    def _installation_id(self) -> str:
        if self._installation is None:
            self._installation = self.store.installation_id()
        return self._installation

    def run(self, agreement: str, *, dry_run: bool = False) -> RunSummary:
        summary, _ = self._run(agreement, dry_run=dry_run)
        return summary

    def _record_outcome(self, agreement: str, failure: str | None) -> None:
        """Keep how the agreement's runs go, for /status, /health and the operator."""
        with self.store.transaction() as tx:
            tx.record_run_outcome(agreement, failure)

    def plan(self, agreement: str) -> tuple[RunSummary, list[WorkItem]]:
        """What the next run would write; nothing is written anywhere."""
        return self._run(agreement, dry_run=True)

    def share_verdict(self, agreement: str, record: TicketRecord) -> ShareVerdict:
        """Whether a run of ``agreement`` would start sharing ``record`` (a ticket of its sender
        not shared yet), and why: the terms and share filter exactly as a run applies them."""
        terms = self._effective_agreement(agreement)
        matched = _matches(_compiled_filter(terms.share_filter), record)
        return share_verdict(agreement, terms, matched)

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
            planned = self._passes(name, agreement, summary, dry_run)
        except Exception as error:
            if not dry_run:
                self._record_outcome(name, f"{type(error).__name__}: {error}")
            raise
        else:
            if not dry_run:
                self._record_outcome(name, summary.failure)
        finally:
            if not dry_run:
                self.store.release_lease(name, self.holder)
            self.plugins.run_finished(summary)
        return summary, planned

    def _passes(
        self, name: str, agreement: AgreementConfig, summary: RunSummary, dry_run: bool
    ) -> list[WorkItem]:
        planned: list[WorkItem] = []
        rules = self._rules(name, agreement)
        run = _Run(rules, summary, dry_run, _compiled_filter(agreement.share_filter))
        forced = set() if dry_run else self._recover_pending(rules, summary)
        for side in (rules.sender, rules.receiver):
            planned += self._pass(run, side, forced)
            forced = set()
        if not dry_run:
            summary.still_parked = len(self.store.read().parked(name))
        return planned

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
            else nhd_uuid(self.sharing_url(agreement.sender), "agreements", name),
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
                sharing_url=self.sharing_url(instance),
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
                        displaced = tx.put_link(
                            link.shared_uuid, side.instance, found.local_id, "linked"
                        )
                        release_reused_id(tx, summary, side.instance, found.local_id, displaced)
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
        """Read one side's changes page by page; each page's tickets are written and its cursor
        committed before the next page is read, so a read broken off half way (a 429, a tracker
        going down) keeps what it did and the next run starts where it stopped. Then the parked
        tickets of this side whose backoff ended are retried."""
        if run.broken:
            return []
        read = self.store.read()
        work = _Pass(
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
                    self._consider_again(run, work, shared_uuid)
        self._settle(run, work, None)
        return work.planned

    def _read_pages(self, run: _Run, work: _Pass) -> bool:
        """Plan and write every page of changes; False if the pass must stop here."""
        summary, side = run.summary, work.side
        try:
            for page in self.adapter(side.instance).changed_since(work.cursor):
                with self.store.transaction() as reader:
                    work.reader = reader
                    facts = _PageFacts.read(reader, run.name, side, page.tickets)
                    for record in _latest(page.tickets):
                        summary.tickets_seen += 1
                        self._consider(run, work, record, facts)
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
                self._journal_failure(run.name, summary, side.instance, None, None, "read", message)
            return False
        return True

    def _settle(self, run: _Run, work: _Pass, cursor: str | None) -> bool:
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
            self._renew_lease(name)
            self._note_outcome(run, self._writer.execute(run.rules, item, run.summary))
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

    def _park_in_run(
        self, run: _Run, shared_uuid: str, instance: str, local_id: str, error: AdapterError
    ) -> None:
        """Park a ticket whose read failed, counting the failure for the circuit breaker."""
        self._park(run.rules, run.summary, shared_uuid, instance, local_id, error)
        self._note_outcome(run, error)

    def _note_outcome(self, run: _Run, error: AdapterError | None) -> None:
        """A circuit breaker: after a few failures in a row that say a tracker is unreachable or
        refusing service, the run stops instead of trying every remaining ticket against it."""
        if not isinstance(error, TransientError) or isinstance(error, IgnoredWrite):
            run.failures = 0
            return
        run.failures += 1
        if run.failures >= BREAKER_FAILURES and not run.broken:
            run.broken = (
                f"stopped after {run.failures} consecutive failures (last: {error}); the "
                "remaining tickets wait for the next run"
            )
            run.summary.errors.append(run.broken)
            run.summary.failure = run.summary.failure or run.broken

    def _consider(self, run: _Run, work: _Pass, record: TicketRecord, facts: _PageFacts) -> None:
        """Whether this agreement carries (or should start carrying) a changed ticket."""
        side, read = work.side, work.reader
        assert read is not None
        link = facts.links.get(record.local_id)
        if link is not None and record.shared_uuid and record.shared_uuid != link.shared_uuid:
            self._reused_id(run, side, link, record)
            link = None
        shared_uuid = link.shared_uuid if link else None
        state = facts.states.get(shared_uuid) if shared_uuid else None
        if state is None:
            if side.role != "sender" or not _matches(run.share_filter, record):
                return
            if link is None and record.shared_uuid and read.link(record.shared_uuid, side.instance):
                return  # our own copy whose link another agreement is still recovering
            if link is not None and self._origin_shares_it_there(run, side, link.shared_uuid, read):
                return
            if link is None and self._may_be_another_agreements_copy(run, side, record, read):
                run.summary.skipped["waiting for another agreement to adopt its copies"] += 1
                work.holds_cursor = True
                return
            # A ticket that already has an NHD identity (one a native partner shared with us)
            # keeps it; a ticket born here gets one minted from this instance's sharing URL.
            shared_uuid = shared_uuid or record.shared_uuid or self._mint(side, record, read)
            if read.link(shared_uuid, run.rules.other(side).instance) is not None:
                return  # already bridged to that instance under another agreement
        elif state != "shared":
            return
        assert shared_uuid is not None
        # A ticket met again later in the same read (it changed while the pages were read) is
        # planned again: its first sighting was written already, and the snapshot says what.
        work.seen.add(shared_uuid)
        row = work.parked.get(shared_uuid)
        if row is not None and row.next_attempt_at > work.now:
            run.summary.skipped["waiting behind a parked failure"] += 1
            return
        if row is not None:
            run.summary.retried += 1
        with self._parked_on_surprise(run, shared_uuid, side.instance, record.local_id):
            self._prepare(run, work, record, shared_uuid, facts, retry=row is not None)

    def _origin_shares_it_there(
        self, run: _Run, side: Side, shared_uuid: str, read: StateTx
    ) -> bool:
        """A copy made here may be shared onward (a re-share, A → B → D), but not to an instance
        its origin shares it with directly: that agreement carries it, under its own terms. Run
        in the order A → C, C → B, A → B, the re-share reached B first and A → B never carried
        the ticket; a comment C's agent wrote, kept home under partial delegation, reached B."""
        origin = read.shared_ticket_origin(shared_uuid)
        if origin is None or origin[0] == side.instance:
            return False
        target = run.rules.other(side).instance
        return any(
            other.sender == origin[0] and other.receiver == target
            for name, other in self.config.bridge.agreements.items()
            if name != run.name
        )

    def _may_be_another_agreements_copy(
        self, run: _Run, side: Side, record: TicketRecord, read: StateTx
    ) -> bool:
        """Whether a ticket carrying a uuid this instance did not mint may be a copy that another
        agreement of this bridge made here, which that agreement has not adopted yet. The store
        knows such copies by their links; a store that was lost or is new learns them when each
        agreement has run once (its pass adopts the copies it made). Until then, sharing the copy
        onward would adopt, under this agreement, the copies another one made elsewhere, and
        carry comments past the terms that kept them home."""
        if record.shared_uuid is None:
            return False
        if record.shared_uuid == nhd_uuid(side.sharing_url, "tickets", record.local_id):
            return False  # minted here: this instance's own ticket
        receiver = run.rules.other(side).instance
        for name, other in self.config.bridge.agreements.items():
            if name == run.name or other.receiver not in (side.instance, receiver):
                continue
            health = read.health(name)
            if health is None or health.last_ok_at is None:
                return True
        return False

    def _mint(self, side: Side, record: TicketRecord, read: StateTx) -> str:
        """The uuid of a ticket born here: derived from the sharing URL and the local id, so that
        every run (and a crash recovery) finds the same one. Derived uuids are predictable: if
        another ticket of this instance already holds it (a partner shared one under it first),
        this ticket gets a random one instead of colliding."""
        derived = nhd_uuid(side.sharing_url, "tickets", record.local_id)
        holder = read.link(derived, side.instance)
        if holder is None or holder.local_id in (None, record.local_id):
            return derived
        return nhd_uuid(side.sharing_url, "tickets", f"{record.local_id}/{uuid_module.uuid4()}")

    @contextmanager
    def _parked_on_surprise(
        self, run: _Run, shared_uuid: str, instance: str, local_id: str
    ) -> Iterator[None]:
        """Anything a ticket's content makes fail (a bug of ours or an adapter's included) parks
        that ticket with the error in the journal; the rest of the agreement flows on."""
        try:
            yield
        except Exception as error:
            log.exception("planning %s:%s failed", instance, local_id)
            self._park(run.rules, run.summary, shared_uuid, instance, local_id, unexpected(error))

    def _reused_id(self, run: _Run, side: Side, link: LinkRow, record: TicketRecord) -> None:
        """The id the store links to one shared ticket now holds a ticket with another
        breadcrumb: the tracker handed out a deleted ticket's id again."""
        if run.dry_run:
            return
        with self.store.transaction() as tx:
            tx.put_link(link.shared_uuid, side.instance, None, "orphaned")
            release_reused_id(tx, run.summary, side.instance, record.local_id, [link.shared_uuid])

    def _consider_again(self, run: _Run, work: _Pass, shared_uuid: str) -> None:
        """A parked ticket due for retry, or one whose create was recovered: read it afresh."""
        side, read = work.side, work.reader
        assert read is not None
        link = read.link(shared_uuid, side.instance)
        local_id = link.local_id if link else None
        parked = read.parked_entry(run.name, shared_uuid)
        if parked is not None and parked.next_attempt_at > work.now:
            run.summary.skipped["waiting behind a parked failure"] += 1
            return
        if local_id is None and parked is not None and parked.instance == side.instance:
            local_id = parked.local_id
        if local_id is None:
            return
        work.seen.add(shared_uuid)
        try:
            record = self.adapter(side.instance).get(local_id)
        except AdapterError as error:
            self._park_in_run(run, shared_uuid, side.instance, local_id, error)
            return
        if record is None:
            self._orphan(run.summary, shared_uuid, side.instance, local_id)
            return
        if parked is not None:
            run.summary.retried += 1
        with self._parked_on_surprise(run, shared_uuid, side.instance, local_id):
            self._prepare(run, work, record, shared_uuid, retry=True)

    def _prepare(
        self,
        run: _Run,
        work: _Pass,
        record: TicketRecord,
        shared_uuid: str,
        facts: _PageFacts | None = None,
        *,
        retry: bool = False,
    ) -> None:
        """Plan one ticket, reading the other copy only when this one changed (or when it is
        retried: a parked change may sit on either copy)."""
        rules, summary, side, read = run.rules, run.summary, work.side, work.reader
        assert read is not None
        if facts is not None and shared_uuid in facts.comment_links:
            links = facts.comment_links[shared_uuid]
            snapshot = facts.snapshots.get(shared_uuid)
        else:
            links = read.comment_links(shared_uuid)
            snapshot = read.snapshot(run.name, shared_uuid, side.instance)
        uuids, missing, duplicates = comment_uuids(record, side, links.get(side.instance, {}))
        record = self._without_duplicates(run, side, shared_uuid, record, duplicates)
        copy = Copy(side, record, snapshot, uuids)
        other_side = rules.other(side)
        other_link = read.link(shared_uuid, other_side.instance)
        # Unchanged since the snapshot needs nothing only where the other copy exists: a share
        # whose create never happened (a crash, a refusal) has a snapshot and no copy yet.
        copied = other_link is not None and other_link.local_id is not None
        if copy.snapshot is not None and copied and not retry:
            change = _change_kind(rules, copy)
            if change == "none":
                return  # an echo of our own writes, or a change nothing here carries
            if change == "confirm":
                # Our own writes read back: their stored text becomes the baseline for edits.
                work.confirmations.append((shared_uuid, side.instance, _confirmed(copy)))
                return
        counterpart: Copy | None = None
        missing_links = [(u, side.instance, lid) for u, lid in missing]
        if other_link is not None and other_link.state == "orphaned":
            return  # the other copy was deleted; the journal said so when it was found
        other_record: TicketRecord | None = None
        if other_link is not None and other_link.local_id is not None:
            try:
                other_record = self.adapter(other_side.instance).get(other_link.local_id)
            except AdapterError as error:
                self._park_in_run(run, shared_uuid, side.instance, record.local_id, error)
                return
            if other_record is None:
                self._orphan(summary, shared_uuid, other_side.instance, other_link.local_id)
                return
        elif other_link is not None:
            # A create on the other side is still pending (its recovery lookup failed): creating
            # now could make a second copy. Wait until recovery has found it or ruled it out.
            summary.skipped["waiting for crash recovery"] += 1
            return
        elif side.role == "receiver":
            return  # the sender's copy is gone; the sender pass handles it
        else:
            try:
                other_record = self._existing_copy(run, side, shared_uuid, record)
            except AdapterError as error:
                self._park_in_run(run, shared_uuid, side.instance, record.local_id, error)
                return
        if other_record is not None:
            other_uuids, other_missing, other_duplicates = comment_uuids(
                other_record, other_side, links.get(other_side.instance, {})
            )
            other_record = self._without_duplicates(
                run, other_side, shared_uuid, other_record, other_duplicates
            )
            counterpart = Copy(
                other_side,
                other_record,
                read.snapshot(run.name, shared_uuid, other_side.instance),
                other_uuids,
            )
            missing_links += [(u, other_side.instance, lid) for u, lid in other_missing]
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

    def _existing_copy(
        self, run: _Run, side: Side, shared_uuid: str, record: TicketRecord
    ) -> TicketRecord | None:
        """Before a ticket is shared, the receiver is asked for a copy already carrying its uuid:
        one made before the state store was lost or replaced, or by another installation. It is
        adopted — linked, and planned as a counterpart so that its comments are matched by
        their breadcrumbs — instead of created a second time."""
        receiver = run.rules.other(side).instance
        found = self.adapter(receiver).find_by_shared_uuid(shared_uuid)
        if found is None or run.dry_run:
            return found
        with self.store.transaction() as tx:
            tx.add_shared_ticket(shared_uuid, side.instance, record.human_id or record.local_id)
            tx.put_link(shared_uuid, side.instance, record.local_id, "linked")
            displaced = tx.put_link(shared_uuid, receiver, found.local_id, "linked")
            release_reused_id(tx, run.summary, receiver, found.local_id, displaced)
            tx.share(run.name, shared_uuid)
            tx.record(
                journal_entry(
                    run.summary,
                    action="adopt",
                    outcome="info",
                    source=side.instance,
                    target=receiver,
                    shared_uuid=shared_uuid,
                    local_id=found.local_id,
                    reason=f"{receiver} already holds {found.local_id}, a copy of "
                    f"{record.local_id} carrying its uuid (made before the state store was lost "
                    "or replaced): adopted and linked instead of created again",
                )
            )
        return found

    def _without_duplicates(
        self,
        run: _Run,
        side: Side,
        shared_uuid: str,
        record: TicketRecord,
        duplicates: list[tuple[str, str]],
    ) -> TicketRecord:
        """Comments that repeat another's breadcrumb are left out of the sync and journaled, so
        that the operator can delete them; the run carries on."""
        if duplicates and not run.dry_run:
            with self.store.transaction() as tx:
                tx.record_many(
                    [
                        journal_entry(
                            run.summary,
                            action="duplicate",
                            outcome="skipped",
                            source=side.instance,
                            shared_uuid=shared_uuid,
                            local_id=record.local_id,
                            after={"comment": comment_uuid, "local_id": local_id},
                            reason=f"comment {local_id} on {side.instance} ticket "
                            f"{record.local_id} is a duplicate: it carries the breadcrumb of "
                            f"comment {comment_uuid[:12]}, which another comment there stands "
                            "for; it is not synced (delete it there if it is unwanted)",
                        )
                        for local_id, comment_uuid in duplicates
                    ]
                )
        return without_comments(record, {local_id for local_id, _ in duplicates})

    def _within_close_limit(self, run: _Run, side: Side, items: list[WorkItem]) -> bool:
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
            self._journal_failure(
                summary.agreement, summary, side.instance, None, None, "guard", message
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
    """Refuse what ``validate`` refuses (one check serves both): a status map naming a status
    the target does not have would fail on every write; one naming a status the source does not
    have would never match."""
    errors = [
        problem
        for problem in status_map_problems(
            name,
            rules.agreement,
            rules.sender.capabilities.statuses,
            rules.receiver.capabilities.statuses,
        )
        if problem.level == "error"
    ]
    if errors:
        where = ".".join(errors[0].path[2:])
        raise AgreementRefused(f"agreement {name}: {where}: {errors[0].message}")


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


def _latest(records: list[TicketRecord]) -> list[TicketRecord]:
    """A page's tickets, each once, with its newest content."""
    latest: dict[str, TicketRecord] = {}
    for record in records:
        latest.pop(record.local_id, None)
        latest[record.local_id] = record
    return list(latest.values())


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
