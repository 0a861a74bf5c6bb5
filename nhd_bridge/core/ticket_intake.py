"""Taking in one changed ticket of one side: whether the agreement carries it (or should start
carrying it), and if so its plan, with both copies read and the comments matched by their links
or breadcrumbs. What is planned is handed back as a :class:`WorkItem` for the side's pass to
write; nothing here writes to a tracker.
"""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Callable
from typing import Any

from nhd_bridge.core.adapter import Adapter, AdapterError, TicketRecord
from nhd_bridge.core.failures import Failures, TicketCopy
from nhd_bridge.core.model import nhd_uuid
from nhd_bridge.core.other_agreements import OtherAgreements
from nhd_bridge.core.planner import Copy, Rules, Side, comment_uuids, plan_ticket, without_comments
from nhd_bridge.core.run_journal import journal_entry, release_reused_id
from nhd_bridge.core.state import LinkRow, StateStore, StateTx
from nhd_bridge.core.sync_run import PageFacts, PassState, SyncRun
from nhd_bridge.core.writer import WorkItem

__all__ = ["TicketIntake"]


class TicketIntake:
    """Turns a side's changed tickets into work items; parks a ticket whose reading fails."""

    def __init__(
        self,
        store: StateStore,
        adapter: Callable[[str], Adapter],
        failures: Failures,
        others: OtherAgreements,
    ):
        self.store = store
        self.adapter = adapter
        self.failures = failures
        self.others = others

    def consider(
        self, run: SyncRun, work: PassState, record: TicketRecord, facts: PageFacts
    ) -> None:
        """Whether this agreement carries (or should start carrying) a changed ticket."""
        side, read = work.side, work.reader
        assert read is not None
        link = facts.links.get(record.local_id)
        if link is not None and record.shared_uuid and record.shared_uuid != link.shared_uuid:
            self._reused_id(run, side, link, record)
            link = None
        # Where this side links the record's breadcrumb, when the record itself is not linked.
        placed = (
            read.link(record.shared_uuid, side.instance)
            if link is None and record.shared_uuid
            else None
        )
        if placed is not None and placed.state == "pending":
            # A copy a create made moments before a crash, its link not recovered yet: a
            # person's change to it is read again once it is linked, not passed over for good.
            run.summary.skipped["waiting for crash recovery"] += 1
            work.holds_cursor = True
            return
        shared_uuid = link.shared_uuid if link else None
        state = facts.states.get(shared_uuid) if shared_uuid else None
        if state is None:
            if side.role != "sender" or not run.share_filter.matches(record):
                return
            if placed is not None:
                return  # its breadcrumb is linked here to another ticket, or orphaned
            target = run.rules.other(side).instance
            if link is not None and self.others.origin_shares_it_there(
                run.name, target, link.shared_uuid, side, read
            ):
                return
            if link is None and self.others.may_have_made(run.name, record, side, read):
                run.summary.skipped["waiting for another agreement to adopt its copies"] += 1
                work.holds_cursor = True
                return
            # A ticket that already has an NHD identity (one a native partner shared with us)
            # keeps it; a ticket born here gets one minted from this instance's sharing URL.
            shared_uuid = shared_uuid or record.shared_uuid or self._mint(side, record, read)
            if read.link(shared_uuid, target) is not None:
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
        with self.failures.parked_on_surprise(
            run.summary, TicketCopy(shared_uuid, side.instance, record.local_id)
        ):
            self._prepare(run, work, record, shared_uuid, facts, retry=row is not None)

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

    def _reused_id(self, run: SyncRun, side: Side, link: LinkRow, record: TicketRecord) -> None:
        """The id the store links to one shared ticket now holds a ticket with another
        breadcrumb: the tracker handed out a deleted ticket's id again."""
        if run.dry_run:
            return
        with self.store.transaction() as tx:
            tx.put_link(link.shared_uuid, side.instance, None, "orphaned")
            release_reused_id(tx, run.summary, side.instance, record.local_id, [link.shared_uuid])

    def consider_again(self, run: SyncRun, work: PassState, shared_uuid: str) -> None:
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
            failed = TicketCopy(shared_uuid, side.instance, local_id)
            self.failures.park_read_failure(run.breaker, failed, error)
            return
        if record is None:
            self.failures.orphan(run.summary, TicketCopy(shared_uuid, side.instance, local_id))
            return
        if parked is not None:
            run.summary.retried += 1
        with self.failures.parked_on_surprise(
            run.summary, TicketCopy(shared_uuid, side.instance, local_id)
        ):
            self._prepare(run, work, record, shared_uuid, retry=True)

    def _prepare(
        self,
        run: SyncRun,
        work: PassState,
        record: TicketRecord,
        shared_uuid: str,
        facts: PageFacts | None = None,
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
                failed = TicketCopy(shared_uuid, side.instance, record.local_id)
                self.failures.park_read_failure(run.breaker, failed, error)
                return
            if other_record is None:
                gone = TicketCopy(shared_uuid, other_side.instance, other_link.local_id)
                self.failures.orphan(summary, gone)
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
                failed = TicketCopy(shared_uuid, side.instance, record.local_id)
                self.failures.park_read_failure(run.breaker, failed, error)
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
        self, run: SyncRun, side: Side, shared_uuid: str, record: TicketRecord
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
        run: SyncRun,
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


# --- helpers ------------------------------------------------------------------------------------


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
