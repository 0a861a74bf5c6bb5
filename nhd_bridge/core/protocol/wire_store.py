"""Durable record of the NHD wire: agreements, tickets and comments exchanged with partners.

Lives on the StateStore's engine (tables ``nhd_wire_*``, schema version 2). Each public write is
one transaction: the receiver answers only after it committed, so what a partner was told we have,
we have. Partner writes get a change sequence number; the engine reads them back with
:meth:`WireStore.received_tickets_changed_since` and keeps that number as its cursor.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.engine import Connection, Engine

from nhd_bridge.core.model import Actor, Agreement, Attachment, Comment, Ticket
from nhd_bridge.core.protocol.rules import (
    Role,
    RuleViolation,
    incoming_comment_public,
    other_role,
    plan_agreement_update,
)
from nhd_bridge.core.state import StateStore, stored_utc, utcnow
from nhd_bridge.core.state.schema import (
    WIRE_SEQUENCE_NAME,
    wire_agreements,
    wire_bindings,
    wire_comments,
    wire_sequence,
    wire_tickets,
)

__all__ = [
    "AlreadyExists",
    "Gone",
    "NotFound",
    "RuleViolation",
    "WireAgreement",
    "WireStore",
    "WireStoreError",
    "WireTicket",
]

Origin = Literal["partner", "local"]

# Ticket fields kept as columns, in the order they are compared and written.
_SCALAR_FIELDS = ("subject", "requested_at", "status", "original_id", "custom_status")


# One lock per SQLite database file, shared by every WireStore of this process.
_SQLITE_WRITERS: dict[str, threading.Lock] = {}


class WireStoreError(Exception):
    """A write was refused because of what is already stored."""


class AlreadyExists(WireStoreError):
    pass


class NotFound(WireStoreError):
    pass


class Gone(WireStoreError):
    """The ticket was unshared: the partner may no longer read or update it."""


@dataclass(frozen=True)
class WireAgreement:
    """One agreement as we hold it; ``our_role`` says which side of it we are."""

    uuid: str
    our_role: Role
    status: str
    sender_url: str
    receiver_url: str
    access_key: str = field(repr=False)
    name: str | None = None
    receiver_name: str | None = None
    deactivated_by: str | None = None
    allows_public_comments: bool = False
    sync_tags: bool = False
    sync_custom_fields: bool = False

    @property
    def partner_role(self) -> Role:
        return other_role(self.our_role)

    @property
    def partner_url(self) -> str:
        return self.receiver_url if self.our_role == "sender" else self.sender_url

    def to_wire(self) -> Agreement:
        return Agreement(
            uuid=self.uuid,
            name=self.name,
            status=self.status,  # type: ignore[arg-type]  # stored values are always valid
            sender_url=self.sender_url,
            receiver_url=self.receiver_url,
            access_key=self.access_key,
            deactivated_by=self.deactivated_by,  # type: ignore[arg-type]
            sync_tags=self.sync_tags,
            sync_custom_fields=self.sync_custom_fields,
            allows_public_comments=self.allows_public_comments,
        )


@dataclass(frozen=True)
class WireTicket:
    """A ticket under one agreement, with its comments in arrival order.

    ``seq`` is the change sequence of the partner's latest change (0: only we wrote it);
    ``comment_seqs`` gives each comment's arrival sequence (0 for comments we sent).
    """

    agreement_uuid: str
    ticket: Ticket
    seq: int
    unshared: bool
    comment_seqs: dict[str, int]
    updated_at: datetime


class WireStore:
    def __init__(self, state_store: StateStore):
        self.engine: Engine = state_store.engine
        # SQLite has one writer at a time; its busy handler backs off so far under load that a
        # request can starve for seconds. Queuing this process's writers on a lock is fair.
        self._writer: AbstractContextManager[Any] = (
            _SQLITE_WRITERS.setdefault(str(self.engine.url), threading.Lock())
            if self.engine.dialect.name == "sqlite"
            else nullcontext()
        )

    @contextmanager
    def _writing(self) -> Iterator[tuple[Connection, int]]:
        """A write transaction and its sequence number; see ``wire_sequence`` for why."""
        with self._writer, self.engine.begin() as connection:
            connection.execute(
                update(wire_sequence)
                .where(wire_sequence.c.name == WIRE_SEQUENCE_NAME)
                .values(value=wire_sequence.c.value + 1)
            )
            seq = connection.execute(
                select(wire_sequence.c.value).where(wire_sequence.c.name == WIRE_SEQUENCE_NAME)
            ).scalar_one()
            yield connection, seq

    # --- agreements -----------------------------------------------------------------------------

    def list_agreements(self) -> list[WireAgreement]:
        """Every agreement we sent or received, oldest first."""
        with self.engine.connect() as connection:
            uuids = [
                row[0]
                for row in connection.execute(
                    select(wire_agreements.c.uuid).order_by(
                        wire_agreements.c.created_at, wire_agreements.c.uuid
                    )
                )
            ]
        return [found for uuid in uuids if (found := self.get_agreement(uuid)) is not None]

    def discard_pending_invite(self, uuid: str) -> None:
        """Roll back our own invite the partner never received (RT does the same); refused for
        anything that has been answered or carries tickets."""
        with self._writing() as (connection, _seq):
            row = _agreement_row(connection, uuid)
            if row is None:
                return
            held = connection.execute(
                select(wire_tickets.c.uuid).where(wire_tickets.c.agreement_uuid == uuid).limit(1)
            ).first()
            if row.our_role != "sender" or row.status != "pending" or held is not None:
                raise RuleViolation(f"agreement {uuid} is no longer an unanswered invite of ours")
            connection.execute(delete(wire_agreements).where(wire_agreements.c.uuid == uuid))

    def prune_pending_invites(self, older_than: datetime) -> int:
        """Remove partners' invites nobody answered since ``older_than`` (nothing can be held
        under a pending agreement); returns how many. Keeps the pending list bounded."""
        with self._writing() as (connection, _seq):
            return connection.execute(
                delete(wire_agreements).where(
                    and_(
                        wire_agreements.c.our_role == "receiver",
                        wire_agreements.c.status == "pending",
                        wire_agreements.c.created_at < older_than,
                    )
                )
            ).rowcount

    def count_pending_invites(self) -> int:
        """Partners' invites waiting for our answer."""
        with self.engine.connect() as connection:
            return connection.execute(
                select(func.count())
                .select_from(wire_agreements)
                .where(
                    and_(
                        wire_agreements.c.our_role == "receiver",
                        wire_agreements.c.status == "pending",
                    )
                )
            ).scalar_one()

    def create_incoming_agreement(self, agreement: Agreement) -> WireAgreement:
        """A partner's invite (we are the receiver), stored pending. Validate it first."""
        return self._create_agreement(agreement, our_role="receiver")

    def create_outgoing_agreement(self, agreement: Agreement) -> WireAgreement:
        """Our own invite (we are the sender), recorded before it is POSTed to the receiver."""
        return self._create_agreement(agreement, our_role="sender")

    def _create_agreement(self, agreement: Agreement, *, our_role: Role) -> WireAgreement:
        if not (agreement.sender_url and agreement.receiver_url and agreement.access_key):
            raise ValueError("an agreement needs sender_url, receiver_url and access_key")
        now = utcnow()
        with self._writing() as (connection, _seq):
            if _agreement_row(connection, agreement.uuid) is not None:
                raise AlreadyExists(f"agreement {agreement.uuid} already exists")
            connection.execute(
                insert(wire_agreements).values(
                    uuid=agreement.uuid,
                    our_role=our_role,
                    name=agreement.name,
                    status=agreement.status or "pending",
                    sender_url=agreement.sender_url,
                    receiver_url=agreement.receiver_url,
                    access_key=agreement.access_key,
                    deactivated_by=agreement.deactivated_by,
                    # §5: an absent permission flag means false, the least privilege.
                    allows_public_comments=bool(agreement.allows_public_comments),
                    sync_tags=bool(agreement.sync_tags),
                    sync_custom_fields=bool(agreement.sync_custom_fields),
                    created_at=now,
                    updated_at=now,
                )
            )
            found = _agreement_row(connection, agreement.uuid)
        assert found is not None
        return found

    def get_agreement(self, uuid: str) -> WireAgreement | None:
        with self.engine.connect() as connection:
            return _agreement_row(connection, uuid)

    def apply_partner_update(
        self, uuid: str, update_: Agreement, *, allow_reactivation: bool, strict: bool = False
    ) -> WireAgreement:
        """A partner's PUT /agreements: the §1.4 rules with the partner's role as the actor."""
        return self._update_agreement(
            uuid, update_, actor=None, allow_reactivation=allow_reactivation, strict=strict
        )

    def set_status(
        self, uuid: str, status: str, *, allow_reactivation: bool = False
    ) -> WireAgreement:
        """A local accept, decline, deactivate (or withdraw): the §1.4 rules with our role.
        Deactivating names us in ``deactivated_by``. Raises RuleViolation, NotFound, or
        NHDValidationError for a status outside the enum."""
        current = self.get_agreement(uuid)
        if current is None:
            raise NotFound(f"agreement {uuid} is unknown")
        change = Agreement.from_dict(
            {
                "uuid": uuid,
                "status": status,
                "deactivated_by": current.our_role if status == "inactive" else None,
            }
        )
        return self._update_agreement(
            uuid, change, actor=current.our_role, allow_reactivation=allow_reactivation
        )

    def _update_agreement(
        self,
        uuid: str,
        change: Agreement,
        *,
        actor: Role | None,
        allow_reactivation: bool,
        strict: bool = False,
    ) -> WireAgreement:
        with self._writing() as (connection, _seq):
            current = _agreement_row(connection, uuid)
            if current is None:
                raise NotFound(f"agreement {uuid} is unknown")
            changes = plan_agreement_update(
                current.to_wire(),
                change,
                actor=actor or current.partner_role,
                allow_reactivation=allow_reactivation,
                strict=strict,
            )
            if changes:
                connection.execute(
                    update(wire_agreements)
                    .where(wire_agreements.c.uuid == uuid)
                    .values(**changes, updated_at=utcnow())
                )
            found = _agreement_row(connection, uuid)
        assert found is not None
        return found

    # --- bindings: which nhd instance holds an agreement (schema v3) ----------------------------

    def bind(self, instance: str, agreement_uuid: str) -> None:
        """Bind an agreement to an nhd instance, replacing the instance's earlier binding (one
        instance holds one agreement) and the agreement's binding to another instance."""
        with self._writing() as (connection, _seq):
            connection.execute(
                delete(wire_bindings).where(
                    (wire_bindings.c.instance == instance)
                    | (wire_bindings.c.agreement_uuid == agreement_uuid)
                )
            )
            connection.execute(
                insert(wire_bindings).values(
                    instance=instance, agreement_uuid=agreement_uuid, bound_at=utcnow()
                )
            )

    def bound_agreement(self, instance: str) -> str | None:
        with self.engine.connect() as connection:
            return connection.execute(
                select(wire_bindings.c.agreement_uuid).where(wire_bindings.c.instance == instance)
            ).scalar_one_or_none()

    def bindings(self) -> dict[str, str]:
        """Agreement uuid -> the instance bound to it."""
        with self.engine.connect() as connection:
            query = select(wire_bindings.c.agreement_uuid, wire_bindings.c.instance)
            return {uuid: instance for uuid, instance in connection.execute(query)}

    # --- tickets: what the partner sends --------------------------------------------------------

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
            agreement = _agreement_row(connection, agreement_uuid)
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
            agreement = _agreement_row(connection, agreement_uuid)
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

    # --- tickets: what we send ------------------------------------------------------------------

    def record_local_ticket(self, agreement_uuid: str, ticket: Ticket) -> WireTicket:
        """What we shared or sent under an agreement (the sender/engine side). Does not count as
        a partner change, and comments recorded here make later echoes of them no-ops."""
        with self._writing() as (connection, _seq):
            agreement = _agreement_row(connection, agreement_uuid)
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


def _load(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _agreement_row(connection: Connection, uuid: str) -> WireAgreement | None:
    row = connection.execute(select(wire_agreements).where(wire_agreements.c.uuid == uuid)).first()
    if row is None:
        return None
    return WireAgreement(
        uuid=row.uuid,
        our_role=row.our_role,
        status=row.status,
        sender_url=row.sender_url,
        receiver_url=row.receiver_url,
        access_key=row.access_key,
        name=row.name,
        receiver_name=row.receiver_name,
        deactivated_by=row.deactivated_by,
        allows_public_comments=bool(row.allows_public_comments),
        sync_tags=bool(row.sync_tags),
        sync_custom_fields=bool(row.sync_custom_fields),
    )


def _ticket_row(connection: Connection, agreement_uuid: str, ticket_uuid: str) -> Any:
    return connection.execute(
        select(wire_tickets).where(
            and_(
                wire_tickets.c.agreement_uuid == agreement_uuid,
                wire_tickets.c.uuid == ticket_uuid,
            )
        )
    ).first()


def _ticket(connection: Connection, agreement_uuid: str, ticket_uuid: str) -> WireTicket | None:
    row = _ticket_row(connection, agreement_uuid, ticket_uuid)
    if row is None:
        return None
    comment_rows = list(
        connection.execute(
            select(wire_comments)
            .where(
                and_(
                    wire_comments.c.agreement_uuid == agreement_uuid,
                    wire_comments.c.ticket_uuid == ticket_uuid,
                )
            )
            .order_by(wire_comments.c.position)
        )
    )
    comments = [
        Comment(
            uuid=c.uuid,
            author=Actor.model_validate(_load(c.author)) if c.author else None,
            body=c.body,
            html_body=c.html_body,
            authored_at=stored_utc(c.authored_at),
            public=bool(c.public),
            attachments=[Attachment.model_validate(a) for a in _load(c.attachments)],
            custom_fields=_load(c.custom_fields),
        )
        for c in comment_rows
    ]
    ticket = Ticket(
        uuid=row.uuid,
        subject=row.subject,
        requested_at=stored_utc(row.requested_at),
        status=row.status,
        requester=Actor.model_validate(_load(row.requester)) if row.requester else None,
        comments=comments,
        current_actor=Actor.model_validate(_load(row.current_actor)) if row.current_actor else None,
        tags=_load(row.tags),
        original_id=row.original_id,
        custom_fields=_load(row.custom_fields),
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
            .where(
                and_(
                    wire_tickets.c.agreement_uuid == agreement.uuid,
                    wire_tickets.c.uuid == ticket.uuid,
                )
            )
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
    key = and_(
        wire_comments.c.agreement_uuid == agreement.uuid,
        wire_comments.c.ticket_uuid == ticket.uuid,
    )
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
        .where(
            and_(
                wire_tickets.c.agreement_uuid == agreement_uuid,
                wire_tickets.c.uuid == ticket_uuid,
            )
        )
        .values(
            unshared_at=utcnow() if by else None,
            unshared_by=by,
            change_seq=seq,
            updated_at=utcnow(),
        )
    )
