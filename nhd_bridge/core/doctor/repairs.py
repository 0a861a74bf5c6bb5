"""The doctor's repairs: each fixes in the store what a finding says, after checking again that it
still holds, with a journal line (action ``doctor``). No repair touches a tracker."""

from __future__ import annotations

import uuid as uuid_module
from collections.abc import Iterable
from dataclasses import replace

from nhd_bridge.core.adapter import AdapterError
from nhd_bridge.core.doctor.base import DoctorBase
from nhd_bridge.core.doctor.findings import Finding, where
from nhd_bridge.core.engine import LEASE_TTL
from nhd_bridge.core.run import RunSummary
from nhd_bridge.core.run_journal import orphan_under, release_reused_id
from nhd_bridge.core.state import JournalEntry, StateTx

__all__ = ["Repairs"]


class Repairs(DoctorBase):
    """Repairing findings in the store, under each agreement's lease."""

    def repair(self, findings: Iterable[Finding]) -> list[Finding]:
        """Repair what can be repaired in the store; returns those findings, each ``detail``
        saying what was done. Each agreement's lease is held meanwhile, so that no sync writes
        between a check and its repair; every condition is checked again before it is acted on."""
        run_id = f"doctor-{uuid_module.uuid4().hex[:10]}"
        by_agreement: dict[str, list[Finding]] = {}
        for finding in findings:
            if finding.repairable:
                by_agreement.setdefault(finding.agreement, []).append(finding)
        repaired: list[Finding] = []
        for name, group in by_agreement.items():
            if not self.store.acquire_lease(name, self.holder, LEASE_TTL):
                holder = self.store.lease_holder(name) or "another worker"
                self.errors.append(f"agreement {name} is being run by {holder}; repair it later")
                continue
            try:
                for finding in group:
                    try:
                        done = self._repair(finding, run_id)
                    except AdapterError as error:
                        self.errors.append(f"{where(finding)}: repair failed: {error}")
                        continue
                    if done is not None:
                        repaired.append(replace(finding, detail=done))
            finally:
                self.store.release_lease(name, self.holder)
        return repaired

    def _repair(self, finding: Finding, run_id: str) -> str | None:
        repairs = {
            "pending-link": self._settle_pending,
            "reused-id": self._release_reused,
            "orphan-link": self._orphan,
            "unlinked-copy": self._link_copy,
            "duplicate-copy": self._link_copy,
            "unlinked-comment": self._link_comment,
        }
        return repairs[finding.kind](finding, run_id)

    def _settle_pending(self, finding: Finding, run_id: str) -> str | None:
        """What a sync's crash recovery does: the copy found by its breadcrumb is linked; with
        none, the create never happened and the link goes, so that sync creates the copy."""
        instance, shared_uuid = finding.instance, finding.shared_uuid
        link = self.store.read().link(shared_uuid, instance)
        if link is None or link.state != "pending":
            return None
        found = self._adapter(instance).find_by_shared_uuid(shared_uuid)
        with self.store.transaction() as tx:
            if found is None:
                tx.drop_link(shared_uuid, instance)
                done = (
                    f"no ticket of {instance} carries its breadcrumb: the create never happened; "
                    "the link is dropped and sync creates the copy when it reads the ticket next"
                )
            else:
                displaced = tx.put_link(shared_uuid, instance, found.local_id, "linked")
                self._release(tx, finding.agreement, run_id, instance, found.local_id, displaced)
                done = f"the interrupted create had succeeded: linked {instance}:{found.local_id}"
            local_id = found.local_id if found else None
            tx.record(self._entry(finding, run_id, local_id, done))
        return done

    def _release_reused(self, finding: Finding, run_id: str) -> str | None:
        return self._orphan_link(finding, run_id, reused=True)

    def _orphan(self, finding: Finding, run_id: str) -> str | None:
        return self._orphan_link(finding, run_id, reused=False)

    def _orphan_link(self, finding: Finding, run_id: str, *, reused: bool) -> str | None:
        """What a sync does when it meets a deleted copy (the link and the agreement's ticket are
        marked orphaned; the other copy is kept), or a copy's id given to another shared ticket
        (the stale link is orphaned under every agreement)."""
        [local_id] = finding.local_ids
        if not self._still_linked(finding, local_id):
            return None
        record = self._adapter(finding.instance).get(local_id)
        if reused and (record is None or record.shared_uuid in (None, finding.shared_uuid)):
            return None
        if not reused and record is not None:
            return None
        done = (
            f"{finding.instance}:{local_id} is now another shared ticket's copy: the stale link "
            "is orphaned and the shared ticket no longer syncs there"
            if reused
            else f"ticket {local_id} was deleted in {finding.instance}; the shared ticket is "
            "orphaned there, the other copy is kept and no longer syncs"
        )
        with self.store.transaction() as tx:
            kept_id = None if reused else local_id
            tx.put_link(finding.shared_uuid, finding.instance, kept_id, "orphaned")
            self._orphan_under_agreements(tx, finding, run_id, local_id, done, everywhere=reused)
        return done

    def _link_copy(self, finding: Finding, run_id: str) -> str | None:
        """Link the copy to keep (the first local id) if the store links none of them."""
        instance, shared_uuid = finding.instance, finding.shared_uuid
        keep = finding.local_ids[0]
        read = self.store.read()
        if read.agreement_ticket_state(finding.agreement, shared_uuid) != "shared":
            return None
        link = read.link(shared_uuid, instance)
        if link is not None and link.state == "linked" and link.local_id in finding.local_ids:
            return None
        record = self._adapter(instance).get(keep)
        if record is None or record.shared_uuid != shared_uuid:
            return None
        done = f"linked {instance}:{keep}, which carries the shared ticket's breadcrumb"
        others = [f"{instance}:{local_id}" for local_id in finding.local_ids[1:]]
        if others:
            done += f"; delete {', '.join(others)} in {instance} (doctor never deletes a ticket)"
        with self.store.transaction() as tx:
            displaced = tx.put_link(shared_uuid, instance, keep, "linked")
            self._release(tx, finding.agreement, run_id, instance, keep, displaced)
            tx.record(self._entry(finding, run_id, keep, done))
        return done

    def _link_comment(self, finding: Finding, run_id: str) -> str | None:
        [local_id] = finding.local_ids
        assert finding.comment_uuid is not None and finding.ticket_id is not None
        links = self.store.read().comment_links(finding.shared_uuid)
        if links.get(finding.instance, {}).get(finding.comment_uuid) == local_id:
            return None
        done = (
            f"linked comment {local_id} on {finding.instance}:{finding.ticket_id} to shared "
            f"comment {finding.comment_uuid[:12]}"
        )
        with self.store.transaction() as tx:
            tx.add_comment_links(
                finding.shared_uuid, [(finding.comment_uuid, finding.instance, local_id)]
            )
            tx.record(self._entry(finding, run_id, finding.ticket_id, done))
        return done

    def _still_linked(self, finding: Finding, local_id: str) -> bool:
        link = self.store.read().link(finding.shared_uuid, finding.instance)
        return link is not None and link.state == "linked" and link.local_id == local_id

    def _orphan_under_agreements(
        self,
        tx: StateTx,
        finding: Finding,
        run_id: str,
        local_id: str,
        done: str,
        *,
        everywhere: bool,
    ) -> None:
        """Mark the shared ticket orphaned under the agreements that sync it on this instance
        (``everywhere``: under every agreement, as a sync does for a reused id)."""
        names = [
            name
            for name, state in tx.agreements_of_ticket(finding.shared_uuid).items()
            if everywhere or (state == "shared" and finding.instance in self._known_sides(name))
        ]
        orphan_under(tx, names, finding.shared_uuid)
        for name in names:
            tx.record(self._entry(replace(finding, agreement=name), run_id, local_id, done))

    def _release(
        self,
        tx: StateTx,
        agreement: str,
        run_id: str,
        instance: str,
        local_id: str,
        displaced: list[str],
    ) -> None:
        """Linking an id another shared ticket's link still held orphans that one, as in a sync."""
        release_reused_id(
            tx, RunSummary(agreement=agreement, run_id=run_id), instance, local_id, displaced
        )

    @staticmethod
    def _entry(finding: Finding, run_id: str, local_id: str | None, done: str) -> JournalEntry:
        return JournalEntry(
            agreement=finding.agreement,
            run_id=run_id,
            action="doctor",
            outcome="info",
            target=finding.instance,
            shared_uuid=finding.shared_uuid,
            local_id=local_id,
            reason=f"{finding.kind}: {done}",
        )
