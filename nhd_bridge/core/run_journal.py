"""Journal lines a run writes, shared by every part of the engine that records what it did."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nhd_bridge.core.run import RunSummary
from nhd_bridge.core.state import JournalEntry, StateTx

__all__ = ["journal_entry", "orphan_under", "release_reused_id"]


def journal_entry(summary: RunSummary, **fields: Any) -> JournalEntry:
    """A journal line of this run."""
    return JournalEntry(agreement=summary.agreement, run_id=summary.run_id, **fields)


def release_reused_id(
    tx: StateTx, summary: RunSummary, instance: str, local_id: str, displaced: list[str]
) -> None:
    """A tracker handed out the id of a deleted ticket again: the shared tickets whose copy it
    was are orphaned there (their other copies stay) and the journal says why."""
    for shared_uuid in displaced:
        orphan_under(tx, tx.agreements_of_ticket(shared_uuid), shared_uuid)
        tx.record(
            journal_entry(
                summary,
                action="reused-id",
                outcome="info",
                target=instance,
                shared_uuid=shared_uuid,
                local_id=local_id,
                reason=f"{instance} gave id {local_id} to another ticket: the copy this shared "
                "ticket had there was deleted, so it is orphaned there and no longer syncs",
            )
        )


def orphan_under(tx: StateTx, agreements: Iterable[str], shared_uuid: str) -> None:
    """The shared ticket no longer syncs under these agreements (a copy was deleted, or its id
    went to another ticket); a retry parked for it would have nothing left to do."""
    for agreement in agreements:
        tx.set_agreement_ticket_state(agreement, shared_uuid, "orphaned")
        tx.unpark(agreement, shared_uuid)
