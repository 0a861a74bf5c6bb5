"""What every part of the wire store builds on: the records it hands out, its errors, and the
write transaction that numbers each change."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from nhd_bridge.core.model import Agreement, Ticket
from nhd_bridge.core.protocol.rules import Role, other_role
from nhd_bridge.core.state import StateStore
from nhd_bridge.core.state.base import from_row
from nhd_bridge.core.state.schema import WIRE_SEQUENCE_NAME, wire_agreements, wire_sequence

__all__ = [
    "AlreadyExists",
    "Gone",
    "NotFound",
    "WireAgreement",
    "WireBase",
    "WireStoreError",
    "WireTicket",
    "agreement_row",
]

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


class WireBase:
    """The store's engine, and its write transactions (see ``wire_sequence`` for why each one
    takes a sequence number first)."""

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


def agreement_row(connection: Connection, uuid: str) -> WireAgreement | None:
    row = connection.execute(select(wire_agreements).where(wire_agreements.c.uuid == uuid)).first()
    return None if row is None else from_row(WireAgreement, row)
