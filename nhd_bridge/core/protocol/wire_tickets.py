"""The wire store's tickets and comments: what partners send us, and what we send them."""

from __future__ import annotations

import json
from typing import Any, Literal

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.engine import Connection

from nhd_bridge.core.model import Actor, Attachment, Comment, Ticket
from nhd_bridge.core.protocol.rules import incoming_comment_public
from nhd_bridge.core.protocol.wire_base import (
    AlreadyExists,
    Gone,
    NotFound,
    WireAgreement,
    WireBase,
    WireTicket,
    agreement_row,
)
from nhd_bridge.core.state.base import load_json, matching, stored_utc, utcnow
from nhd_bridge.core.state.schema import wire_agreements, wire_comments, wire_tickets

__all__ = ["WireTickets"]

Origin = Literal["partner", "local"]

# Ticket fields kept as columns, in the order they are compared and written.
_SCALAR_FIELDS = ("subject", "requested_at", "status", "original_id", "custom_status")


class WireTickets(WireBase):
    """Tickets under an agreement, with their comments in arrival order."""

    def get_ticket(self, agreement_uuid: str, ticket_uuid: str) -> WireTicket | None:
        with self.engine.connect() as connection:
            return _ticket(connection, agreement_uuid, ticket_uuid)

    def ticket_presence(
        self, agreement_uuid: str, ticket_uuid: str
    ) -> Literal["absent", "shared", "unshared"]:
        """Whether a ticket is held under an agreement, without loading its comments."""
        with self.engine.connect() as connection:
            row = _ticket_row(connection, agreement_uuid, ticket_uuid)
        if row is None:
            return "absent"
        return "unshared" if row.unshared_at is not None else "shared"

    def ticket_agreements(self, ticket_uuid: str) -> list[str]:
        """Every agreement a ticket uuid is held under (403 rather than 404 for the others)."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(wire_tickets.c.agreement_uuid).where(wire_tickets.c.uuid == ticket_uuid)
            )
            return sorted(row[0] for row in rows)

    def first_holders(self, ticket_uuids: list[str]) -> dict[str, str]:
        """For each ticket uuid, the agreement that first held it (earliest row, ties by
        agreement uuid). Ticket uuids are predictable, so a partner can share one before the
        partner it belongs to: whoever came later is told apart by its agreement."""
        if not ticket_uuids:
            return {}
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(
                    wire_tickets.c.uuid, wire_tickets.c.agreement_uuid, wire_tickets.c.created_at
                )
                .where(wire_tickets.c.uuid.in_(set(ticket_uuids)))
                .order_by(wire_tickets.c.created_at, wire_tickets.c.agreement_uuid)
            )
            first: dict[str, str] = {}
            for row in rows:
                first.setdefault(row.uuid, row.agreement_uuid)
        return first

    def receive_new_ticket(self, agreement_uuid: str, ticket: Ticket) -> WireTicket:
        """A partner's POST /tickets. An unshared ticket shared again is taken back in; a ticket
        still shared under this agreement is AlreadyExists."""
        with self._writing() as (connection, seq):
            agreement = agreement_row(connection, agreement_uuid)
            if agreement is None:
                raise NotFound(f"agreement {agreement_uuid} is unknown")
            existing = _ticket_row(connection, agreement_uuid, ticket.uuid)
            if existing is not None and existing.unshared_at is None:
                raise AlreadyExists(f"ticket {ticket.uuid} already exists")
            _write_ticket(connection, agreement, ticket, seq=seq, origin="partner")
            if existing is not None:
                _set_unshared(connection, agreement_uuid, ticket.uuid, None, seq=seq)
            found = _ticket(connection, agreement_uuid, ticket.uuid)
        assert found is not None
        return found

    def receive_ticket_update(self, agreement_uuid: str, ticket: Ticket) -> None:
        """A partner's PUT /tickets: only changed fields and new comment uuids are written.
        (Nothing is read back: a long-lived ticket has many comments, and an update answers
        in time independent of them.)"""
        with self._writing() as (connection, seq):
            agreement = agreement_row(connection, agreement_uuid)
            existing = _ticket_row(connection, agreement_uuid, ticket.uuid)
            if agreement is None or existing is None:
                raise NotFound(f"ticket {ticket.uuid} is unknown")
            if existing.unshared_at is not None:
                raise Gone(f"ticket {ticket.uuid} is no longer shared")
            _write_ticket(connection, agreement, ticket, seq=seq, origin="partner")

    def receive_unshare(self, agreement_uuid: str, ticket_uuid: str) -> None:
        """The sender's DELETE /tickets: kept, marked unshared. Repeating it changes nothing."""
        with self._writing() as (connection, seq):
            existing = _ticket_row(connection, agreement_uuid, ticket_uuid)
            if existing is None:
                raise NotFound(f"ticket {ticket_uuid} is unknown")
            if existing.unshared_at is None:
                _set_unshared(connection, agreement_uuid, ticket_uuid, "partner", seq=seq)

    def record_local_ticket(self, agreement_uuid: str, ticket: Ticket) -> WireTicket:
        """What we shared or sent under an agreement (the sender/engine side). Does not count as
        a partner change, and comments recorded here make later echoes of them no-ops."""
        with self._writing() as (connection, _seq):
            agreement = agreement_row(connection, agreement_uuid)
            if agreement is None:
                raise NotFound(f"agreement {agreement_uuid} is unknown")
            _write_ticket(connection, agreement, ticket, seq=None, origin="local")
            found = _ticket(connection, agreement_uuid, ticket.uuid)
        assert found is not None
        return found

    def mark_unshared(self, ticket_uuid: str, agreement_uuid: str | None = None) -> int:
        """Our own unshare (under one agreement, or all of them); returns the rows marked."""
        with self._writing() as (connection, _seq):
            query = update(wire_tickets).where(
                and_(wire_tickets.c.uuid == ticket_uuid, wire_tickets.c.unshared_at.is_(None))
            )
            if agreement_uuid is not None:
                query = query.where(wire_tickets.c.agreement_uuid == agreement_uuid)
            now = utcnow()
            return connection.execute(
                query.values(unshared_at=now, unshared_by="local", updated_at=now)
            ).rowcount

    def received_tickets_changed_since(
        self, agreement_uuid: str, cursor: int = 0, *, limit: int | None = None
    ) -> list[WireTicket]:
        """Tickets the partner changed after ``cursor``, oldest change first. Keep the last
        ``seq`` as the next cursor: commit order equals sequence order, so nothing is skipped."""
        with self.engine.connect() as connection:
            query = (
                select(wire_tickets.c.uuid)
                .where(
                    and_(
                        wire_tickets.c.agreement_uuid == agreement_uuid,
                        wire_tickets.c.change_seq > cursor,
                    )
                )
                .order_by(wire_tickets.c.change_seq)
            )
            if limit is not None:
                query = query.limit(limit)
            uuids = [row[0] for row in connection.execute(query)]
            tickets = [_ticket(connection, agreement_uuid, uuid) for uuid in uuids]
        return [ticket for ticket in tickets if ticket is not None]

    def row_counts(self) -> dict[str, int]:
        """Rows per wire table: diagnostics, and the tests' proof that a refusal wrote nothing."""
        with self.engine.connect() as connection:
            return {
                table.name: connection.execute(select(func.count()).select_from(table)).scalar_one()
                for table in (wire_agreements, wire_tickets, wire_comments)
            }


# --- rows -> objects ----------------------------------------------------------------------------


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _ticket_row(connection: Connection, agreement_uuid: str, ticket_uuid: str) -> Any:
    return connection.execute(
        select(wire_tickets).where(
            matching(wire_tickets, agreement_uuid=agreement_uuid, uuid=ticket_uuid)
        )
    ).first()


def _ticket(connection: Connection, agreement_uuid: str, ticket_uuid: str) -> WireTicket | None:
    row = _ticket_row(connection, agreement_uuid, ticket_uuid)
    if row is None:
        return None
    comment_rows = list(
        connection.execute(
            select(wire_comments)
            .where(matching(wire_comments, agreement_uuid=agreement_uuid, ticket_uuid=ticket_uuid))
            .order_by(wire_comments.c.position)
        )
    )
    comments = [
        Comment(
            uuid=c.uuid,
            author=Actor.model_validate(load_json(c.author)) if c.author else None,
            body=c.body,
            html_body=c.html_body,
            authored_at=stored_utc(c.authored_at),
            public=bool(c.public),
            attachments=[Attachment.model_validate(a) for a in load_json(c.attachments)],
            custom_fields=load_json(c.custom_fields),
        )
        for c in comment_rows
    ]
    ticket = Ticket(
        uuid=row.uuid,
        subject=row.subject,
        requested_at=stored_utc(row.requested_at),
        status=row.status,
        requester=Actor.model_validate(load_json(row.requester)) if row.requester else None,
        comments=comments,
        current_actor=Actor.model_validate(load_json(row.current_actor))
        if row.current_actor
        else None,
        tags=load_json(row.tags),
        original_id=row.original_id,
        custom_fields=load_json(row.custom_fields),
        custom_status=row.custom_status,
    )
    return WireTicket(
        agreement_uuid=agreement_uuid,
        ticket=ticket,
        seq=row.change_seq,
        unshared=row.unshared_at is not None,
        comment_seqs={c.uuid: c.seq for c in comment_rows},
        updated_at=stored_utc(row.updated_at),
    )


# --- objects -> rows ----------------------------------------------------------------------------


def _ticket_changes(existing: Any, ticket: Ticket, agreement: WireAgreement) -> dict[str, Any]:
    """Columns whose incoming value differs from the stored one (an omitted field is no change).
    Tags and custom fields count only when the agreement syncs them (§5)."""
    present = ticket.model_fields_set
    wanted: dict[str, Any] = {}
    for name in _SCALAR_FIELDS:
        if name in present:
            wanted[name] = getattr(ticket, name)
    if "requester" in present and ticket.requester is not None:
        wanted["requester"] = _dump(ticket.requester.to_dict())
    if agreement.sync_tags and "tags" in present:
        wanted["tags"] = _dump(ticket.tags)
    if agreement.sync_custom_fields and "custom_fields" in present:
        wanted["custom_fields"] = _dump(ticket.custom_fields)
    if existing is None:
        return wanted
    changes = {}
    for name, value in wanted.items():
        stored = existing._mapping[name]
        if name == "requested_at":
            stored = stored_utc(stored)
        if value != stored:
            changes[name] = value
    return changes


def _write_ticket(
    connection: Connection,
    agreement: WireAgreement,
    ticket: Ticket,
    *,
    seq: int | None,
    origin: Origin,
) -> None:
    """Upsert the ticket's changed fields and insert its unseen comments. ``seq`` is None for
    our own writes, which must not look like partner changes to the engine."""
    existing = _ticket_row(connection, agreement.uuid, ticket.uuid)
    changes = _ticket_changes(existing, ticket, agreement)
    added = _add_comments(connection, agreement, ticket, seq=seq or 0, origin=origin)
    now = utcnow()
    if ticket.current_actor is not None:
        # Who acted last is remembered but is not, by itself, a change to report.
        changes_with_actor = {**changes, "current_actor": _dump(ticket.current_actor.to_dict())}
    else:
        changes_with_actor = dict(changes)
    changed = bool(changes) or added > 0
    if existing is None:
        connection.execute(
            insert(wire_tickets).values(
                agreement_uuid=agreement.uuid,
                uuid=ticket.uuid,
                change_seq=seq or 0,
                created_at=now,
                updated_at=now,
                **changes_with_actor,
            )
        )
        return
    values = dict(changes_with_actor)
    if changed:
        values["updated_at"] = now
        if seq is not None:
            values["change_seq"] = seq
    if values:
        connection.execute(
            update(wire_tickets)
            .where(matching(wire_tickets, agreement_uuid=agreement.uuid, uuid=ticket.uuid))
            .values(**values)
        )


def _add_comments(
    connection: Connection,
    agreement: WireAgreement,
    ticket: Ticket,
    *,
    seq: int,
    origin: Origin,
) -> int:
    """Insert comments whose uuid is new for this (agreement, ticket); returns how many.
    A known uuid is skipped whatever its body says: a re-send never edits (§6.2)."""
    key = matching(wire_comments, agreement_uuid=agreement.uuid, ticket_uuid=ticket.uuid)
    known = {row[0] for row in connection.execute(select(wire_comments.c.uuid).where(key))}
    position = connection.execute(
        select(func.coalesce(func.max(wire_comments.c.position), 0)).where(key)
    ).scalar_one()
    now = utcnow()
    added = 0
    for comment in ticket.comments:
        if comment.uuid in known:
            continue
        known.add(comment.uuid)
        position += 1
        public = comment.public
        if origin == "partner":
            public = incoming_comment_public(
                public,
                our_role=agreement.our_role,
                allows_public_comments=agreement.allows_public_comments,
            )
        connection.execute(
            insert(wire_comments).values(
                agreement_uuid=agreement.uuid,
                ticket_uuid=ticket.uuid,
                uuid=comment.uuid,
                author=_dump(comment.author.to_dict()) if comment.author else None,
                body=comment.body,
                html_body=comment.html_body,
                authored_at=comment.authored_at,
                public=public,
                attachments=_dump([a.to_dict() for a in comment.attachments]),
                custom_fields=_dump(comment.custom_fields if agreement.sync_custom_fields else {}),
                origin=origin,
                seq=seq,
                position=position,
                received_at=now,
            )
        )
        added += 1
    return added


def _set_unshared(
    connection: Connection, agreement_uuid: str, ticket_uuid: str, by: str | None, *, seq: int
) -> None:
    connection.execute(
        update(wire_tickets)
        .where(matching(wire_tickets, agreement_uuid=agreement_uuid, uuid=ticket_uuid))
        .values(
            unshared_at=utcnow() if by else None,
            unshared_by=by,
            change_seq=seq,
            updated_at=utcnow(),
        )
    )
