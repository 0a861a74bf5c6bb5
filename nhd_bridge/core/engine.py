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

The engine is a façade over its parts: :mod:`~nhd_bridge.core.adapter_pool` (an adapter per
instance), :mod:`~nhd_bridge.core.leases` (one run of an agreement at a time),
:mod:`~nhd_bridge.core.agreement_terms` (what the agreement is for this run),
:mod:`~nhd_bridge.core.recovery` (creates a crashed run left pending),
:mod:`~nhd_bridge.core.side_pass` and :mod:`~nhd_bridge.core.ticket_intake` (reading, planning
and writing one side), :mod:`~nhd_bridge.core.writer` (one ticket's writes) and
:mod:`~nhd_bridge.core.failures` (parking, orphans, the circuit breaker).
"""

from __future__ import annotations

import os
import socket
import threading
import uuid as uuid_module
from collections.abc import Callable
from datetime import datetime

from nhd_bridge.core.adapter import Adapter, TicketRecord
from nhd_bridge.core.adapter_pool import AdapterPool
from nhd_bridge.core.agreement_terms import (
    AgreementRefused,
    agreement_rules,
    effective_agreement,
    sync_agreement_row,
)
from nhd_bridge.core.config import AgreementConfig, LoadedConfig
from nhd_bridge.core.failures import Failures
from nhd_bridge.core.leases import LEASE_TTL, AgreementBusy, AgreementLease
from nhd_bridge.core.other_agreements import OtherAgreements
from nhd_bridge.core.planner import ShareVerdict, share_verdict
from nhd_bridge.core.recovery import recover_pending_creates
from nhd_bridge.core.run import RunSummary
from nhd_bridge.core.share_filter import ShareFilter
from nhd_bridge.core.side_pass import SidePass
from nhd_bridge.core.state import JournalEntry, StateStore, utcnow
from nhd_bridge.core.sync_run import Progress, SyncRun, no_progress
from nhd_bridge.core.ticket_intake import TicketIntake
from nhd_bridge.core.writer import TicketWriter, WorkItem, WriteContext

__all__ = [
    "LEASE_TTL",
    "AgreementBusy",
    "AgreementRefused",
    "Progress",
    "SyncEngine",
    "WorkItem",
]


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
        self._clock = clock
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}"
        self._stop = threading.Event()
        self._adapters = AdapterPool(config, store, adapters)
        self._lease = AgreementLease(store, self.holder, self._now)
        failures = Failures(store, self.plugins)
        writer = TicketWriter(WriteContext(store, self.plugins, self.adapter, failures))
        self._sides = SidePass(
            store,
            self.adapter,
            TicketIntake(store, self.adapter, failures, OtherAgreements(config.bridge.agreements)),
            writer,
            failures,
            self._lease,
            clock=self._now,
            stop=self._stop,
            progress=progress or no_progress,
        )

    # --- public ---------------------------------------------------------------------------------

    def adapter(self, instance: str) -> Adapter:
        return self._adapters.adapter(instance)

    def sharing_url(self, instance: str) -> str:
        """The base the uuids of this instance are minted from (ADR 0001)."""
        return self._adapters.sharing_url(instance)

    def run(self, agreement: str, *, dry_run: bool = False) -> RunSummary:
        summary, _ = self._run(agreement, dry_run=dry_run)
        return summary

    def plan(self, agreement: str) -> tuple[RunSummary, list[WorkItem]]:
        """What the next run would write; nothing is written anywhere."""
        return self._run(agreement, dry_run=True)

    def share_verdict(self, agreement: str, record: TicketRecord) -> ShareVerdict:
        """Whether a run of ``agreement`` would start sharing ``record`` (a ticket of its sender
        not shared yet), and why: the terms and share filter exactly as a run applies them."""
        terms = effective_agreement(self.config, self.adapter, agreement)
        matched = ShareFilter(terms.share_filter).matches(record)
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
        self._adapters.close()

    # --- one run --------------------------------------------------------------------------------

    def _now(self) -> datetime:
        # Read through the attribute on every call: a test may move the clock of a live engine.
        return self._clock()

    def _run(self, name: str, *, dry_run: bool) -> tuple[RunSummary, list[WorkItem]]:
        agreement = effective_agreement(self.config, self.adapter, name)
        summary = RunSummary(agreement=name, run_id=uuid_module.uuid4().hex[:16], dry_run=dry_run)
        sync_agreement_row(self.store, self.sharing_url, name, agreement, dry_run)
        if agreement.status != "accepted":
            summary.skipped["agreement " + agreement.status] += 1
            summary.errors.append(
                f"agreement {name} is {agreement.status}: nothing syncs until it is accepted"
            )
            return summary, []
        if not dry_run:
            self._lease.take(name)
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
                self._lease.release(name)
            self.plugins.run_finished(summary)
        return summary, planned

    def _passes(
        self, name: str, agreement: AgreementConfig, summary: RunSummary, dry_run: bool
    ) -> list[WorkItem]:
        planned: list[WorkItem] = []
        rules = agreement_rules(self.config, self.adapter, self.sharing_url, name, agreement)
        run = SyncRun(rules, summary, dry_run, ShareFilter(agreement.share_filter))
        forced = (
            set() if dry_run else recover_pending_creates(self.store, self.adapter, rules, summary)
        )
        for side in (rules.sender, rules.receiver):
            planned += self._sides.read_side(run, side, forced)
            forced = set()
        if not dry_run:
            summary.still_parked = len(self.store.read().parked(name))
        return planned

    def _record_outcome(self, agreement: str, failure: str | None) -> None:
        """Keep how the agreement's runs go, for /status, /health and the operator."""
        with self.store.transaction() as tx:
            tx.record_run_outcome(agreement, failure)
