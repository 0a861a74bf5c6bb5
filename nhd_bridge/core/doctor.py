"""``nhd-bridge doctor``: what the state store lost or never had, checked against the trackers.

The engine trusts the store for identity: which local ticket is the copy of which shared ticket,
which comment of one copy is which comment of the other. A store restored from an old backup, a
crash not recovered yet, a person deleting or copying tickets: each leaves the store and the
trackers disagreeing. :class:`Doctor` reads every ticket of every instance of the agreements it
examines and reports each disagreement as a :class:`Finding`; :meth:`Doctor.repair` fixes in the
store those it can, with a journal line each (action ``doctor``). It never deletes or changes a
ticket or a comment in a tracker: a duplicate is reported, with its local id, for a person to
delete.
"""

from __future__ import annotations

import os
import re
import socket
import uuid as uuid_module
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Literal, get_args

from nhd_bridge.core.adapter import Adapter, AdapterError, TicketRecord
from nhd_bridge.core.config import LoadedConfig
from nhd_bridge.core.engine import LEASE_TTL
from nhd_bridge.core.planner import Side, comment_uuids
from nhd_bridge.core.run import RunSummary
from nhd_bridge.core.state import JournalEntry, LinkRow, StateStore, StateTx
from nhd_bridge.core.writer import release_reused_id

__all__ = ["Doctor", "Finding", "FindingKind", "describe"]

FindingKind = Literal[
    "pending-link",
    "reused-id",
    "orphan-link",
    "unlinked-copy",
    "duplicate-copy",
    "unlinked-comment",
    "duplicate-comment",
]
# The order findings are reported and repaired in: a pending link is settled before the copies
# carrying its breadcrumb are looked at, a stale link is orphaned before its id is linked again.
KIND_ORDER: tuple[FindingKind, ...] = get_args(FindingKind)
# Kinds whose extra tickets or comments only a person can delete: they stay until someone does.
FOR_A_PERSON: frozenset[str] = frozenset({"duplicate-copy", "duplicate-comment"})


@dataclass(frozen=True)
class Finding:
    """One disagreement between the store and a tracker.

    ``local_ids`` are ticket ids of ``instance`` (for ``duplicate-copy`` the one to keep first),
    or, for the comment kinds, comment ids on ticket ``ticket_id`` (the one to keep first), whose
    shared comment is ``comment_uuid``. ``detail`` says what is wrong and what to do about it."""

    kind: FindingKind
    agreement: str
    instance: str
    shared_uuid: str
    local_ids: tuple[str, ...]
    detail: str
    repairable: bool
    ticket_id: str | None = None
    comment_uuid: str | None = None

    @property
    def key(self) -> tuple[str, str, str, tuple[str, ...]]:
        """What the finding is about: the same after a repair rewrote its detail."""
        return (self.kind, self.instance, self.shared_uuid, self.local_ids)

    @property
    def needs_a_person(self) -> bool:
        """Whether something stays to be done in a tracker once the store is repaired."""
        return self.kind in FOR_A_PERSON and len(self.local_ids) > 1


@dataclass
class _Census:
    """One full read of an instance: every ticket's breadcrumb, and the whole record of the
    tickets the store links (only those, to bound memory on a large tracker)."""

    breadcrumbs: dict[str, str | None] = field(default_factory=dict)
    records: dict[str, TicketRecord] = field(default_factory=dict)

    def holders(self) -> dict[str, list[str]]:
        """Local ids by the breadcrumb they carry, lowest id first."""
        found: dict[str, list[str]] = {}
        for local_id, breadcrumb in self.breadcrumbs.items():
            if breadcrumb is not None:
                found.setdefault(breadcrumb, []).append(local_id)
        return {uuid: sorted(ids, key=_natural) for uuid, ids in found.items()}


class Doctor:
    """Examines (and repairs) the store of one configuration against its trackers.

    ``adapter_for`` is the engine's ``adapter``, so that adapters are built and attached the way a
    sync does; ``sharing_url`` is the engine's ``sharing_url``, from which the uuids of
    comments people wrote are minted."""

    def __init__(
        self,
        config: LoadedConfig,
        store: StateStore,
        adapter_for: Callable[[str], Adapter],
        sharing_url: Callable[[str], str],
    ):
        self.config = config
        self.store = store
        self._adapter = adapter_for
        self._sharing_url = sharing_url
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        # What could not be looked at or repaired, one line each: a tracker that could not be
        # read is never taken for an empty one.
        self.errors: list[str] = []
        self._censuses: dict[str, _Census | None] = {}
        self._links: dict[str, list[LinkRow]] = {}

    # --- examining ------------------------------------------------------------------------------

    def examine(self, agreements: Iterable[str] | None = None) -> list[Finding]:
        """Every finding under the agreements named (all by default), in repair order."""
        names = list(agreements or self.config.bridge.agreements)
        self.errors, self._censuses, self._links = [], {}, {}
        read = self.store.read()
        findings: dict[tuple[object, ...], Finding] = {}

        def keep(found: Iterable[Finding]) -> None:
            for finding in found:
                findings.setdefault(finding.key, finding)

        for instance in self._instances(names):
            self._links[instance] = read.instance_links(instance)
            census = self._read_all(instance)
            involving = [name for name in names if instance in self._sides(name)]
            keep(self._pending_links(read, instance, involving))
            if census is not None:
                keep(self._stale_links(read, instance, involving, census))
                keep(self._copies(read, instance, involving, census))
        for name in names:
            keep(self._comments(read, name))
        return sorted(findings.values(), key=lambda finding: KIND_ORDER.index(finding.kind))

    def _instances(self, names: list[str]) -> list[str]:
        return list(dict.fromkeys(instance for name in names for instance in self._sides(name)))

    def _sides(self, name: str) -> tuple[str, str]:
        agreement = self.config.bridge.agreements[name]
        return agreement.sender, agreement.receiver

    def _read_all(self, instance: str) -> _Census | None:
        """Every ticket of the instance (``changed_since(None)``, every page)."""
        linked = {link.local_id for link in self._links[instance] if link.local_id is not None}
        census = _Census()
        try:
            for page in self._adapter(instance).changed_since(None):
                for record in page.tickets:
                    census.breadcrumbs[record.local_id] = record.shared_uuid
                    if record.local_id in linked:
                        census.records[record.local_id] = record  # a later sighting is newer
        except AdapterError as error:
            self.errors.append(
                f"{instance}: reading every ticket failed: {error}; its copies and comments were "
                "not examined"
            )
            census = None
        self._censuses[instance] = census
        return census

    def _ticket(self, instance: str, local_id: str, census: _Census) -> TicketRecord | None:
        """A linked ticket: from the full read, else asked for (a ticket outside what the read
        covers, or deleted; only ``get`` can say which)."""
        if local_id not in census.records:
            record = self._adapter(instance).get(local_id)
            if record is None:
                return None
            census.records[local_id] = record
            census.breadcrumbs[local_id] = record.shared_uuid
        return census.records[local_id]

    def _pending_links(
        self, read: StateTx, instance: str, involving: list[str]
    ) -> Iterable[Finding]:
        for link in self._links[instance]:
            if link.state != "pending":
                continue
            states = read.agreements_of_ticket(link.shared_uuid)
            owner = next((name for name in involving if name in states), None)
            if owner is None and states:
                continue  # an agreement not examined carries it
            # A pending link no agreement carries is never recovered by a sync: it is ours.
            yield Finding(
                kind="pending-link",
                agreement=owner or involving[0],
                instance=instance,
                shared_uuid=link.shared_uuid,
                local_ids=(),
                detail=f"a create on {instance} was interrupted and its outcome is not known; "
                "--repair looks the copy up by its breadcrumb and links it, or drops the link "
                "if there is none",
                repairable=True,
            )

    def _stale_links(
        self, read: StateTx, instance: str, involving: list[str], census: _Census
    ) -> Iterable[Finding]:
        """Linked ids whose ticket is gone (orphan) or now another shared ticket's (reused)."""
        linked = [
            link for link in self._links[instance] if link.state == "linked" and link.local_id
        ]
        owners = self._owners(read, involving, [link.shared_uuid for link in linked])
        for link in linked:
            owner, local_id = owners.get(link.shared_uuid), link.local_id
            if owner is None or local_id is None:
                continue  # no examined agreement syncs it any more
            try:
                record = self._ticket(instance, local_id, census)
            except AdapterError as error:
                self.errors.append(f"{instance}:{local_id}: could not be read: {error}")
                continue
            if record is None:
                yield Finding(
                    kind="orphan-link",
                    agreement=owner,
                    instance=instance,
                    shared_uuid=link.shared_uuid,
                    local_ids=(local_id,),
                    detail=f"the store links {instance}:{local_id}, which no longer exists; "
                    "--repair marks the shared ticket orphaned there (the other copy is kept)",
                    repairable=True,
                )
            elif record.shared_uuid is not None and record.shared_uuid != link.shared_uuid:
                yield Finding(
                    kind="reused-id",
                    agreement=owner,
                    instance=instance,
                    shared_uuid=link.shared_uuid,
                    local_ids=(local_id,),
                    detail=f"{instance}:{local_id} now carries the breadcrumb of shared ticket "
                    f"{record.shared_uuid[:12]}: the copy the store links was deleted and its id "
                    "given out again; --repair orphans the stale link",
                    repairable=True,
                )

    def _copies(
        self, read: StateTx, instance: str, involving: list[str], census: _Census
    ) -> Iterable[Finding]:
        """Tickets carrying one breadcrumb twice, or a carried one the store does not link."""
        holders = census.holders()
        links = {link.shared_uuid: link for link in self._links[instance]}
        owners = self._owners(read, involving, list(holders))
        for shared_uuid, local_ids in holders.items():
            link, owner = links.get(shared_uuid), owners.get(shared_uuid)
            linked = (
                link.local_id
                if link and link.state == "linked" and link.local_id in local_ids
                else None
            )
            if len(local_ids) > 1:
                keep = linked or local_ids[0]
                others = [local_id for local_id in local_ids if local_id != keep]
                yield self._duplicate_copy(instance, shared_uuid, keep, others, owner, linked)
            elif owner is not None and link is None:
                yield Finding(
                    kind="unlinked-copy",
                    agreement=owner,
                    instance=instance,
                    shared_uuid=shared_uuid,
                    local_ids=(local_ids[0],),
                    detail=f"{instance}:{local_ids[0]} carries the breadcrumb of a shared ticket "
                    f"agreement {owner} carries, but the store does not link it; --repair links it",
                    repairable=True,
                )

    def _duplicate_copy(
        self,
        instance: str,
        shared_uuid: str,
        keep: str,
        others: list[str],
        owner: str | None,
        linked: str | None,
    ) -> Finding:
        delete = f"delete {', '.join(f'{instance}:{other}' for other in others)} in {instance}"
        if linked is not None:
            how = f"the store links {instance}:{keep}; {delete}"
        elif owner is not None:
            how = f"--repair links {instance}:{keep} (the lowest id); then {delete}"
        else:
            how = (
                f"no agreement examined carries this shared ticket; keep {instance}:{keep} "
                f"(the lowest id) and {delete}"
            )
        return Finding(
            kind="duplicate-copy",
            agreement=owner or self._first_agreement(instance),
            instance=instance,
            shared_uuid=shared_uuid,
            local_ids=(keep, *others),
            detail=f"{len(others) + 1} tickets of {instance} carry the breadcrumb of one shared "
            f"ticket: {how} (doctor never deletes a ticket)",
            repairable=linked is None and owner is not None,
        )

    def _comments(self, read: StateTx, name: str) -> Iterable[Finding]:
        """Comments of both copies of each ticket the agreement syncs, against their links."""
        sender, receiver = self._sides(name)
        censuses = self._censuses.get(sender), self._censuses.get(receiver)
        if censuses[0] is None or censuses[1] is None:
            return
        copies = [
            {
                link.shared_uuid: link.local_id
                for link in self._links[instance]
                if link.state == "linked" and link.local_id is not None
            }
            for instance in (sender, receiver)
        ]
        both = [uuid for uuid in copies[0] if uuid in copies[1]]
        shared = [
            uuid
            for uuid, state in read.agreement_ticket_states(name, both).items()
            if state == "shared"
        ]
        sides = (self._side(sender, "sender"), self._side(receiver, "receiver"))
        comment_links = read.comment_links_for(shared)
        for shared_uuid in shared:
            records = [
                census.records.get(copy[shared_uuid])
                for census, copy in zip(censuses, copies, strict=True)
            ]
            if any(
                record is None or record.shared_uuid not in (None, shared_uuid)
                for record in records
            ):
                continue  # a copy deleted or reused: reported as such above
            pairs = list(zip(sides, records, strict=True))
            yield from self._compare_comments(name, shared_uuid, pairs, comment_links[shared_uuid])

    def _side(self, instance: str, role: Literal["sender", "receiver"]) -> Side:
        capabilities = self._adapter(instance).capabilities
        return Side(instance, role, capabilities, self._sharing_url(instance))

    def _compare_comments(
        self,
        name: str,
        shared_uuid: str,
        pairs: list[tuple[Side, TicketRecord | None]],
        links: dict[str, dict[str, str | None]],
    ) -> Iterable[Finding]:
        known = []
        for side, record in pairs:
            assert record is not None
            known.append(comment_uuids(record, side, links.get(side.instance, {})))
        for index, (side, record) in enumerate(pairs):
            assert record is not None
            uuids, missing, duplicates = known[index]
            other_side = pairs[1 - index][0]
            other = {uuid: local for local, uuid in known[1 - index][0].items()}
            here = {uuid: local for local, uuid in uuids.items()}
            linked_here = links.get(side.instance, {})
            # The store links a shared comment to a comment no longer on the copy: the first
            # comment carrying its breadcrumb is that shared comment, not a duplicate of it.
            stale: dict[str, str] = {}
            for local, uuid in duplicates:
                if uuid not in here:
                    stale.setdefault(uuid, local)
            for comment_uuid, local in [*missing, *stale.items()]:
                if comment_uuid not in other and comment_uuid not in stale:
                    continue  # not on the other copy yet: the next sync carries it
                where = f"comment {local} on {side.instance}:{record.local_id}"
                twin = (
                    f" (comment {other[comment_uuid]} of {other_side.instance})"
                    if comment_uuid in other
                    else ""
                )
                gone = linked_here.get(comment_uuid)
                why = (
                    f"the store links it to comment {gone}, which is no longer there"
                    if gone is not None
                    else "the store has no link for it"
                )
                yield Finding(
                    kind="unlinked-comment",
                    agreement=name,
                    instance=side.instance,
                    shared_uuid=shared_uuid,
                    local_ids=(local,),
                    ticket_id=record.local_id,
                    comment_uuid=comment_uuid,
                    detail=f"{where} carries shared comment {comment_uuid[:12]}{twin}, but "
                    f"{why}; --repair links it",
                    repairable=True,
                )
            repeated: dict[str, list[str]] = {}
            for local, comment_uuid in duplicates:
                if comment_uuid not in stale or stale[comment_uuid] != local:
                    repeated.setdefault(comment_uuid, []).append(local)
            for comment_uuid, extra in repeated.items():
                keep = here.get(comment_uuid) or stale.get(comment_uuid)
                ids = (keep, *extra) if keep else tuple(extra)
                yield Finding(
                    kind="duplicate-comment",
                    agreement=name,
                    instance=side.instance,
                    shared_uuid=shared_uuid,
                    local_ids=ids,
                    ticket_id=record.local_id,
                    comment_uuid=comment_uuid,
                    detail=f"{len(ids)} comments on {side.instance}:{record.local_id} carry the "
                    f"breadcrumb of comment {comment_uuid[:12]}; {ids[0]} stands for it and the "
                    f"others ({', '.join(extra)}) are not synced: delete them in "
                    f"{side.instance} (doctor never deletes a comment)",
                    repairable=False,
                )

    def _owners(self, read: StateTx, involving: list[str], uuids: list[str]) -> dict[str, str]:
        """For each shared uuid, the first examined agreement that syncs it (state shared)."""
        owners: dict[str, str] = {}
        for name in involving:
            for uuid, state in read.agreement_ticket_states(name, uuids).items():
                if state == "shared":
                    owners.setdefault(uuid, name)
        return owners

    def _first_agreement(self, instance: str) -> str:
        return next(name for name in self.config.bridge.agreements if instance in self._sides(name))

    # --- repairing ------------------------------------------------------------------------------

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
                        self.errors.append(f"{_where(finding)}: repair failed: {error}")
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
        [local_id] = finding.local_ids
        if not self._still_linked(finding, local_id):
            return None
        record = self._adapter(finding.instance).get(local_id)
        if record is None or record.shared_uuid in (None, finding.shared_uuid):
            return None
        done = (
            f"{finding.instance}:{local_id} is now another shared ticket's copy: the stale link "
            "is orphaned and the shared ticket no longer syncs there"
        )
        with self.store.transaction() as tx:
            tx.put_link(finding.shared_uuid, finding.instance, None, "orphaned")
            self._orphan_under_agreements(tx, finding, run_id, local_id, done, everywhere=True)
        return done

    def _orphan(self, finding: Finding, run_id: str) -> str | None:
        """What a sync does when it meets a deleted copy: the link and the agreement's ticket
        are marked orphaned; the other copy is kept."""
        [local_id] = finding.local_ids
        if not self._still_linked(finding, local_id):
            return None
        if self._adapter(finding.instance).get(local_id) is not None:
            return None
        done = (
            f"ticket {local_id} was deleted in {finding.instance}; the shared ticket is orphaned "
            "there, the other copy is kept and no longer syncs"
        )
        with self.store.transaction() as tx:
            tx.put_link(finding.shared_uuid, finding.instance, local_id, "orphaned")
            self._orphan_under_agreements(tx, finding, run_id, local_id, done, everywhere=False)
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

    # --- repair helpers -------------------------------------------------------------------------

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
        for name, state in tx.agreements_of_ticket(finding.shared_uuid).items():
            if not everywhere and (
                state != "shared" or finding.instance not in self._known_sides(name)
            ):
                continue
            tx.set_agreement_ticket_state(name, finding.shared_uuid, "orphaned")
            tx.unpark(name, finding.shared_uuid)
            tx.record(self._entry(replace(finding, agreement=name), run_id, local_id, done))

    def _known_sides(self, name: str) -> tuple[str, ...]:
        agreement = self.config.bridge.agreements.get(name)
        return (agreement.sender, agreement.receiver) if agreement else ()

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


def _where(finding: Finding) -> str:
    if finding.ticket_id is not None:
        return f"{finding.instance}:{finding.ticket_id} comment {', '.join(finding.local_ids)}"
    return f"{finding.instance}:{', '.join(finding.local_ids) or '(none)'}"


def _natural(local_id: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting "9" before "10" and "PROJ-9" before "PROJ-10": lower ids are older."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part)
        for part in re.split(r"(\d+)", local_id)
        if part
    )


def describe(finding: Finding, *, repaired: bool = False) -> str:
    """One line for the terminal: kind, where, which shared ticket, what to do (or was done)."""
    done = "repaired: " if repaired else ""
    return f"{finding.kind} {_where(finding)} {finding.shared_uuid[:12]} — {done}{finding.detail}"
