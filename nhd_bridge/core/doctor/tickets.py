"""The doctor's checks of tickets: interrupted creates, links to deleted or reused ids, copies
the store does not link, and tickets carrying one breadcrumb twice."""

from __future__ import annotations

from collections.abc import Iterable

from nhd_bridge.core.adapter import AdapterError
from nhd_bridge.core.doctor.base import Census, DoctorBase
from nhd_bridge.core.doctor.findings import Finding, FindingKind
from nhd_bridge.core.state import StateTx

__all__ = ["TicketChecks"]


class TicketChecks(DoctorBase):
    """Each instance's links against every ticket read from it."""

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
        self, read: StateTx, instance: str, involving: list[str], census: Census
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
                kind: FindingKind = "orphan-link"
                detail = (
                    f"the store links {instance}:{local_id}, which no longer exists; "
                    "--repair marks the shared ticket orphaned there (the other copy is kept)"
                )
            elif record.shared_uuid is not None and record.shared_uuid != link.shared_uuid:
                kind = "reused-id"
                detail = (
                    f"{instance}:{local_id} now carries the breadcrumb of shared ticket "
                    f"{record.shared_uuid[:12]}: the copy the store links was deleted and its id "
                    "given out again; --repair orphans the stale link"
                )
            else:
                continue
            yield Finding(
                kind=kind,
                agreement=owner,
                instance=instance,
                shared_uuid=link.shared_uuid,
                local_ids=(local_id,),
                detail=detail,
                repairable=True,
            )

    def _copies(
        self, read: StateTx, instance: str, involving: list[str], census: Census
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
