"""Shared tickets and where each instance holds its copy: the mapping that keeps a bridge from
creating duplicates."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update

from nhd_bridge.core.state.base import TxBase, from_row, matching, utcnow
from nhd_bridge.core.state.schema import shared_tickets, ticket_links

__all__ = ["LinkRow", "LinkTx"]


@dataclass(frozen=True)
class LinkRow:
    shared_uuid: str
    instance: str
    local_id: str | None
    state: str


class LinkTx(TxBase):
    """Shared tickets, and the links from each to its copy on each instance."""

    def add_shared_ticket(self, uuid: str, origin_instance: str, original_id: str | None) -> None:
        # Insert-if-absent in one statement: two agreements on one instance may share the same
        # ticket at the same moment, and a read-then-insert would let the slower one fail.
        self._insert_absent(
            shared_tickets,
            ("uuid",),
            [
                {
                    "uuid": uuid,
                    "origin_instance": origin_instance,
                    "original_id": original_id,
                    "created_at": utcnow(),
                }
            ],
        )

    def shared_ticket_origin(self, uuid: str) -> tuple[str, str | None] | None:
        row = self._execute(select(shared_tickets).where(shared_tickets.c.uuid == uuid)).first()
        return (row.origin_instance, row.original_id) if row else None

    def links_for_locals(self, instance: str, local_ids: list[str]) -> dict[str, LinkRow]:
        """``link_for_local`` for a whole page of tickets in one query."""
        found: dict[str, LinkRow] = {}
        query = select(ticket_links).where(ticket_links.c.instance == instance)
        for row in self._rows_in(query, ticket_links.c.local_id, local_ids):
            link = _link(row)
            if link.local_id is not None:
                found[link.local_id] = link
        return found

    def link_for_local(self, instance: str, local_id: str) -> LinkRow | None:
        found = self._links_where(instance=instance, local_id=local_id)
        return found[0] if found else None

    def link(self, shared_uuid: str, instance: str) -> LinkRow | None:
        found = self._links_where(shared_uuid=shared_uuid, instance=instance)
        return found[0] if found else None

    def links(self, shared_uuid: str) -> list[LinkRow]:
        return self._links_where(shared_uuid=shared_uuid)

    def put_link(
        self, shared_uuid: str, instance: str, local_id: str | None, state: str
    ) -> list[str]:
        """Link ``local_id`` of ``instance`` to a shared ticket. A local id belongs to one shared
        ticket: another link still holding it is stale (its ticket was deleted and the tracker
        handed the id out again), so it is orphaned. Returns the shared uuids so displaced."""
        now = utcnow()
        displaced: list[str] = []
        if local_id is not None:
            holder = self.link_for_local(instance, local_id)
            if holder is not None and holder.shared_uuid != shared_uuid:
                self._execute(
                    update(ticket_links)
                    .where(
                        matching(ticket_links, shared_uuid=holder.shared_uuid, instance=instance)
                    )
                    .values(local_id=None, state="orphaned", updated_at=now)
                )
                displaced.append(holder.shared_uuid)
        self._upsert(
            ticket_links,
            {"shared_uuid": shared_uuid, "instance": instance},
            {"local_id": local_id, "state": state, "updated_at": now},
            created={"created_at": now},
        )
        return displaced

    def drop_link(self, shared_uuid: str, instance: str) -> None:
        self._execute(
            delete(ticket_links).where(
                matching(ticket_links, shared_uuid=shared_uuid, instance=instance)
            )
        )

    def pending_links(self, instance: str) -> list[LinkRow]:
        return self._links_where(instance=instance, state="pending")

    def instance_links(self, instance: str) -> list[LinkRow]:
        """Every link of one instance, oldest first: what ``doctor`` checks against the tracker."""
        return self._links_where(instance=instance)

    def _links_where(self, **key: str) -> list[LinkRow]:
        """The links whose columns have the values given, oldest first."""
        query = select(ticket_links).where(matching(ticket_links, **key))
        return [_link(row) for row in self._execute(query.order_by(ticket_links.c.created_at))]


def _link(row: Any) -> LinkRow:
    return from_row(LinkRow, row)
