"""The state store's tables and their versioned migrations (SQLAlchemy Core).

The schema version lives in ``nhd_meta``; :func:`migrate` applies every step newer than it, each
in its own transaction, so a store written by an older release is upgraded in place.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
    text,
)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import SchemaItem
from sqlalchemy.types import TypeEngine

metadata = MetaData()

UUID = String(64)
NAME = String(200)
LOCAL_ID = String(255)


def _table(name: str, *columns: SchemaItem) -> Table:
    return Table(name, metadata, *columns)


def _key(name: str, type_: TypeEngine[Any]) -> Column[Any]:
    """A column of the primary key."""
    return Column(name, type_, primary_key=True)


def _permissions() -> list[Column[bool]]:
    """What an agreement lets travel (§5), in its local and its wire record alike."""
    return [
        Column(name, Boolean, nullable=False)
        for name in ("allows_public_comments", "sync_tags", "sync_custom_fields")
    ]


def _moment(name: str, *, nullable: bool = False) -> Column[datetime]:
    """A point in time, stored with its zone (everything is stored in UTC)."""
    return Column(name, DateTime(timezone=True), nullable=nullable)


meta = _table(
    "nhd_meta",
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

agreements = _table(
    "nhd_agreements",
    _key("name", NAME),
    Column("uuid", UUID, nullable=False, unique=True),
    Column("sender", NAME, nullable=False),
    Column("receiver", NAME, nullable=False),
    Column("status", String(16), nullable=False),
    *_permissions(),
    Column("deactivated_by", String(16)),
    _moment("created_at"),
    _moment("updated_at"),
)

shared_tickets = _table(
    "nhd_shared_tickets",
    _key("uuid", UUID),
    Column("origin_instance", NAME, nullable=False),
    Column("original_id", String(255)),
    _moment("created_at"),
)

# Where each instance holds its copy. local_id is NULL while the create is in flight: that
# pending row is what lets a crashed run find the copy again instead of creating a second one.
ticket_links = _table(
    "nhd_ticket_links",
    _key("shared_uuid", UUID),
    _key("instance", NAME),
    Column("local_id", LOCAL_ID),
    Column("state", String(16), nullable=False),  # pending | linked | orphaned
    _moment("created_at"),
    _moment("updated_at"),
    UniqueConstraint("instance", "local_id", name="uq_ticket_link_local"),
)

# Which shared tickets travel under which agreement.
agreement_tickets = _table(
    "nhd_agreement_tickets",
    _key("agreement", NAME),
    _key("shared_uuid", UUID),
    Column("state", String(16), nullable=False),  # shared | unshared | orphaned
    _moment("shared_at"),
)

comment_links = _table(
    "nhd_comment_links",
    _key("comment_uuid", UUID),
    _key("instance", NAME),
    Column("shared_uuid", UUID, nullable=False),
    Column("local_id", LOCAL_ID),
    _moment("created_at"),
    Index("ix_comment_link_local", "instance", "local_id"),
    Index("ix_comment_link_ticket", "shared_uuid", "instance"),
)

# What one side of one agreement looked like when it was last synced: diffs are taken against it.
snapshots = _table(
    "nhd_snapshots",
    _key("agreement", NAME),
    _key("shared_uuid", UUID),
    _key("instance", NAME),
    Column("data", Text, nullable=False),
    _moment("updated_at"),
)

cursors = _table(
    "nhd_cursors",
    _key("agreement", NAME),
    _key("instance", NAME),
    Column("cursor", Text),
    _moment("updated_at"),
)

journal = _table(
    "nhd_journal",
    Column("id", Integer, primary_key=True, autoincrement=True),
    _moment("at"),
    Column("run_id", String(64), nullable=False),
    Column("agreement", NAME, nullable=False),
    Column("source", NAME),
    Column("target", NAME),
    Column("shared_uuid", UUID),
    Column("local_id", LOCAL_ID),
    Column("action", String(32), nullable=False),
    Column("outcome", String(16), nullable=False),  # written | skipped | conflict | failed
    Column("field", String(200)),
    Column("before", Text),
    Column("after", Text),
    Column("reason", Text),
    Index("ix_journal_ticket", "shared_uuid"),
    Index("ix_journal_run", "run_id"),
)

parked = _table(
    "nhd_parked",
    _key("agreement", NAME),
    _key("shared_uuid", UUID),
    Column("instance", NAME, nullable=False),
    Column("local_id", LOCAL_ID, nullable=False),
    Column("error", Text, nullable=False),
    Column("attempts", Integer, nullable=False),
    _moment("first_failed_at"),
    _moment("next_attempt_at"),
)

leases = _table(
    "nhd_leases",
    _key("agreement", NAME),
    Column("holder", String(200), nullable=False),
    _moment("expires_at"),
)

SCHEMA_VERSION_KEY = "schema_version"

V1_TABLES = [
    agreements,
    shared_tickets,
    ticket_links,
    agreement_tickets,
    comment_links,
    snapshots,
    cursors,
    journal,
    parked,
    leases,
]


def _create_v1(connection: Connection) -> None:
    metadata.create_all(connection, tables=V1_TABLES)


# --- version 2: what NHD partners sent us over the wire (core/protocol/wire_store.py) ------------
# Text rather than bounded strings wherever a partner chooses the value: an over-long name must
# not turn into a database error (a 5xx) on PostgreSQL. Keys are validated to fit UUID first.

wire_agreements = _table(
    "nhd_wire_agreements",
    _key("uuid", UUID),
    Column("our_role", String(16), nullable=False),  # sender | receiver: which side we are
    Column("name", Text),  # as the sender named it
    Column("receiver_name", Text),  # the name the receiver announced when answering
    Column("status", String(16), nullable=False),
    Column("sender_url", Text, nullable=False),
    Column("receiver_url", Text, nullable=False),
    Column("access_key", Text, nullable=False),
    Column("deactivated_by", String(16)),
    *_permissions(),
    _moment("created_at"),
    _moment("updated_at"),
)

# One row per (agreement, ticket): a ticket uuid may travel under several agreements (fan-out),
# and a token only ever reaches the rows of its own agreement.
wire_tickets = _table(
    "nhd_wire_tickets",
    _key("agreement_uuid", UUID),
    _key("uuid", UUID),
    Column("subject", Text),
    _moment("requested_at", nullable=True),
    Column("status", String(16)),
    Column("requester", Text),  # JSON actor
    Column("current_actor", Text),  # JSON actor of the latest update
    Column("tags", Text),  # JSON list, NULL when never synced
    Column("custom_fields", Text),  # JSON object, NULL when never synced
    Column("original_id", Text),
    Column("custom_status", Text),
    # Sequence number of the partner's latest change (0: only we wrote it); the engine's cursor.
    Column("change_seq", Integer, nullable=False),
    _moment("unshared_at", nullable=True),
    Column("unshared_by", String(16)),  # partner | local
    _moment("created_at"),
    _moment("updated_at"),
    Index("ix_wire_tickets_changes", "agreement_uuid", "change_seq"),
    Index("ix_wire_tickets_uuid", "uuid"),
)

# Keyed (agreement, ticket, comment uuid): a re-sent comment is a no-op, never a copy or an edit.
wire_comments = _table(
    "nhd_wire_comments",
    _key("agreement_uuid", UUID),
    _key("ticket_uuid", UUID),
    _key("uuid", UUID),
    Column("author", Text),  # JSON actor
    Column("body", Text, nullable=False),
    Column("html_body", Text),
    _moment("authored_at", nullable=True),
    Column("public", Boolean, nullable=False),
    Column("attachments", Text, nullable=False),  # JSON list
    Column("custom_fields", Text, nullable=False),  # JSON object
    Column("origin", String(16), nullable=False),  # partner | local
    Column("seq", Integer, nullable=False),  # change sequence it arrived with; 0 when local
    Column("position", Integer, nullable=False),  # arrival order within the ticket
    _moment("received_at"),
)

# A single counter row. Every wire write transaction bumps it first: that takes the write lock up
# front (so check-then-write is race-free on SQLite and PostgreSQL alike) and makes commit order
# equal sequence order, so a cursor never skips a change committed late. A database sequence or
# autoincrement would not give the second property.
wire_sequence = _table(
    "nhd_wire_sequence",
    Column("name", String(32), primary_key=True),
    Column("value", Integer, nullable=False),
)

WIRE_SEQUENCE_NAME = "changes"

V2_TABLES = [wire_agreements, wire_tickets, wire_comments, wire_sequence]


def _create_v2(connection: Connection) -> None:
    metadata.create_all(connection, tables=V2_TABLES)
    # SQLite runs CREATE TABLE outside the transaction: a worker that lost the race finds the
    # tables made and, if the winner got that far, the row too; inserting it again would fail.
    seeded = select(wire_sequence.c.name).where(wire_sequence.c.name == WIRE_SEQUENCE_NAME)
    if connection.execute(seeded).first() is None:
        connection.execute(wire_sequence.insert().values(name=WIRE_SEQUENCE_NAME, value=0))


# --- version 3: which nhd instance an accepted or sent agreement belongs to ----------------------
# Written by `nhd-bridge agreements accept/invite`, read by the nhd adapter on every call, so a
# running serve picks a new binding up without a reload. A YAML `agreement:` pin wins over it.
wire_bindings = _table(
    "nhd_wire_bindings",
    _key("instance", NAME),
    Column("agreement_uuid", UUID, nullable=False, unique=True),
    _moment("bound_at"),
)


def _create_v3(connection: Connection) -> None:
    metadata.create_all(connection, tables=[wire_bindings])


# The last outcome of each agreement's runs: how an operator (``/status``, ``/health``, ``log``)
# learns that an agreement has been failing, and since when.
agreement_health = _table(
    "nhd_agreement_health",
    _key("agreement", NAME),
    _moment("last_run_at"),
    _moment("last_ok_at", nullable=True),
    _moment("failing_since", nullable=True),
    Column("last_error", Text),
)


def _create_v4(connection: Connection) -> None:
    metadata.create_all(connection, tables=[agreement_health])


# Append-only: (version, step). A released step is never edited; a change is a new step.
MIGRATIONS: list[tuple[int, Callable[[Connection], None]]] = [
    (1, _create_v1),
    (2, _create_v2),
    (3, _create_v3),
    (4, _create_v4),
]
LATEST_VERSION = MIGRATIONS[-1][0]


def current_version(connection: Connection) -> int:
    row = connection.execute(select(meta.c.value).where(meta.c.key == SCHEMA_VERSION_KEY)).first()
    return int(row[0]) if row else 0


def migrate(engine: Engine) -> int:
    """Bring the schema to the latest version; returns the version it was at before.

    Two workers starting together on a new PostgreSQL store must not both create the tables: a
    session-level advisory lock makes the second wait and then find the work done. (SQLite
    serialises writers by itself.)"""
    if engine.dialect.name != "postgresql":
        return _migrate_retrying(engine)
    with engine.connect() as lock:
        lock.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
        try:
            return _migrate(engine)
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
            lock.commit()


def _migrate_retrying(engine: Engine, attempts: int = 30) -> int:
    """SQLite: a step and its version row commit together, so a worker that lost the race to
    create a table finds, on its next attempt, the step done and recorded. Several workers on a
    loaded machine can lose more than a few times in a row: up to ~10 s in all."""
    for attempt in range(attempts):
        try:
            return _migrate(engine)
        except DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(min(0.05 * (attempt + 1), 0.5))
    raise AssertionError("unreachable")


# An arbitrary 63-bit number naming "nhd_bridge schema migration" among advisory locks.
_MIGRATION_LOCK = 0x6E68645F6D696772


def _migrate(engine: Engine) -> int:
    with engine.begin() as connection:
        metadata.create_all(connection, tables=[meta])
        before = current_version(connection)
    if before > LATEST_VERSION:
        raise RuntimeError(
            f"the state store is at schema version {before}, newer than this nhd-bridge "
            f"understands ({LATEST_VERSION}); upgrade nhd-bridge"
        )
    for version, step in MIGRATIONS:
        if version <= before:
            continue
        with engine.begin() as connection:
            step(connection)
            if current_version(connection) == 0:
                connection.execute(meta.insert().values(key=SCHEMA_VERSION_KEY, value=str(version)))
            else:
                connection.execute(
                    meta.update().where(meta.c.key == SCHEMA_VERSION_KEY).values(value=str(version))
                )
    return before
