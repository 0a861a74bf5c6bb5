"""Crash recovery at the start of a run: a create is committed as a *pending* link before it is
sent, and leaves the shared uuid on the remote record; a run that died in between left the link
pending, and the next one finds the copy by that breadcrumb instead of creating a second one."""

from __future__ import annotations

from collections.abc import Callable

from nhd_bridge.core.adapter import Adapter, AdapterError
from nhd_bridge.core.planner import Rules
from nhd_bridge.core.run import RunSummary
from nhd_bridge.core.run_journal import journal_entry, release_reused_id
from nhd_bridge.core.state import StateStore

__all__ = ["recover_pending_creates"]


def recover_pending_creates(
    store: StateStore, adapter: Callable[[str], Adapter], rules: Rules, summary: RunSummary
) -> set[str]:
    """Finish creates a crashed run left pending: find the copy by its breadcrumb. Returns the
    shared uuids recovered, which the run plans again whether or not they changed."""
    name = summary.agreement
    forced: set[str] = set()
    for side in (rules.sender, rules.receiver):
        for link in store.read().pending_links(side.instance):
            if store.read().agreement_ticket_state(name, link.shared_uuid) is None:
                continue
            try:
                found = adapter(side.instance).find_by_shared_uuid(link.shared_uuid)
            except AdapterError as error:
                summary.errors.append(f"recovery lookup on {side.instance} failed: {error}")
                continue
            with store.transaction() as tx:
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
