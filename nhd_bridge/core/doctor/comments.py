"""The doctor's checks of comments: comments of both copies of a ticket against their links."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from nhd_bridge.core.adapter import TicketRecord
from nhd_bridge.core.agreement_terms import side_of
from nhd_bridge.core.doctor.base import DoctorBase
from nhd_bridge.core.doctor.findings import Finding
from nhd_bridge.core.planner import Side, comment_uuids
from nhd_bridge.core.state import StateTx

__all__ = ["CommentChecks"]


class CommentChecks(DoctorBase):
    """Comments carrying a shared comment's breadcrumb that the store does not link, or twice."""

    def _comments(self, read: StateTx, name: str) -> Iterable[Finding]:
        """Comments of both copies of each ticket the agreement syncs, against their links."""
        sender, receiver = self._sides(name)
        sent, received = self._censuses.get(sender), self._censuses.get(receiver)
        if sent is None or received is None:
            return
        censuses = sent, received
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
        return side_of(self.config, self._adapter, self._sharing_url, instance, role)

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
