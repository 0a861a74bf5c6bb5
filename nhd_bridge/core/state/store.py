"""The state store: links, snapshots, cursors, journal, parked tickets and leases.

It owns the mapping between shared uuids and each instance's local ids; that mapping is what keeps
a bridge from creating duplicates. SQLite (WAL) by default; any SQLAlchemy URL works, PostgreSQL
(``postgresql+psycopg://``) when several workers share the work.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, overload

from sqlalchemy import Table, and_, create_engine, delete, event, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from nhd_bridge.core.state import schema
from nhd_bridge.core.state.opening import opening_errors
from nhd_bridge.core.state.schema import (
    agreement_health,
    agreement_tickets,
    agreements,
    comment_links,
    cursors,
    journal,
    leases,
    parked,
    shared_tickets,
    snapshots,
    ticket_links,
)

__all__ = [
    "AgreementHealth",
    "AgreementRow",
    "JournalEntry",
    "LinkRow",
    "ParkedRow",
    "StateStore",
    "StateTx",
    "stored_utc",
    "utcnow",
]


INSTALLATION_KEY = "installation_id"
_NATIVE_UPSERT: dict[str, Any] = {"sqlite": sqlite_insert, "postgresql": postgresql_insert}


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class LinkRow:
    shared_uuid: str
    instance: str
    local_id: str | None
    state: str


@dataclass(frozen=True)
class AgreementHealth:
    """How an agreement's runs have been going: ``failing_since`` is set while they fail."""

    agreement: str
    last_run_at: datetime
    last_ok_at: datetime | None
    failing_since: datetime | None
    last_error: str | None


@dataclass(frozen=True)
class AgreementRow:
    name: str
    uuid: str
    sender: str
    receiver: str
    status: str
    allows_public_comments: bool
    sync_tags: bool
    sync_custom_fields: bool
    deactivated_by: str | None


@dataclass
class JournalEntry:
    """One line of the journal: every write, skip, conflict and failure, with the reason."""

    agreement: str
    action: str
    outcome: str
    run_id: str = ""
    source: str | None = None
    target: str | None = None
    shared_uuid: str | None = None
    local_id: str | None = None
    field: str | None = None
    before: Any = None
    after: Any = None
    reason: str | None = None
    at: datetime | None = None
    id: int | None = None


@dataclass(frozen=True)
class ParkedRow:
    agreement: str
    shared_uuid: str
    instance: str
    local_id: str
    error: str
    attempts: int
    first_failed_at: datetime
    next_attempt_at: datetime


class StateStore:
    """Opens (and migrates) the store behind a SQLAlchemy URL."""

    def __init__(self, url: str):
        self.url = url
        # Any problem with the URL, the file or the server is one StateStoreError line.
        with opening_errors(url):
            self.engine: Engine = _make_engine(url)
            schema.migrate(self.engine)

    def __repr__(self) -> str:
        return f"<StateStore {self.engine.url.render_as_string(hide_password=True)}>"

    @contextmanager
    def transaction(self) -> Iterator[StateTx]:
        """One atomic unit of bookkeeping: everything in the block commits or nothing does."""
        with self.engine.begin() as connection:
            yield StateTx(connection)

    def read(self) -> StateTx:
        """A handle for reads outside a write transaction (each call commits on its own)."""
        return StateTx(None, self.engine)

    # --- leases: at most one run of an agreement at a time, across processes and machines -----

    def acquire_lease(self, agreement: str, holder: str, ttl: timedelta) -> bool:
        now = utcnow()
        with self.engine.begin() as connection:
            taken = connection.execute(
                update(leases)
                .where(leases.c.agreement == agreement)
                .where(or_(leases.c.expires_at < now, leases.c.holder == holder))
                .values(holder=holder, expires_at=now + ttl)
            ).rowcount
            if taken:
                return True
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    insert(leases).values(agreement=agreement, holder=holder, expires_at=now + ttl)
                )
            return True
        except IntegrityError:
            return False  # someone else holds a live lease

    def installation_id(self) -> str:
        """A random id made once per state store: what makes default NHD uuids of two separate
        installations differ (both may well have an instance called "support")."""
        with self.engine.begin() as connection:
            row = connection.execute(
                select(schema.meta.c.value).where(schema.meta.c.key == INSTALLATION_KEY)
            ).first()
            if row is not None:
                return str(row[0])
        candidate = uuid.uuid4().hex
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    insert(schema.meta).values(key=INSTALLATION_KEY, value=candidate)
                )
        except IntegrityError:
            pass  # another process made it first; use theirs
        with self.engine.begin() as connection:
            return str(
                connection.execute(
                    select(schema.meta.c.value).where(schema.meta.c.key == INSTALLATION_KEY)
                ).scalar_one()
            )

    def lease_holder(self, agreement: str) -> str | None:
        with self.engine.begin() as connection:
            row = connection.execute(
                select(leases.c.holder).where(leases.c.agreement == agreement)
            ).first()
        return row[0] if row else None

    def release_lease(self, agreement: str, holder: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                delete(leases).where(
                    and_(leases.c.agreement == agreement, leases.c.holder == holder)
                )
            )

    def close(self) -> None:
        self.engine.dispose()


class StateTx:
    """Reads and writes of the store inside one transaction (or autocommitting reads)."""

    def __init__(self, connection: Connection | None, engine: Engine | None = None):
        self._connection = connection
        self._engine = engine

    def _execute(self, statement: Any) -> Any:
        if self._connection is not None:
            return self._connection.execute(statement)
        assert self._engine is not None
        with self._engine.begin() as connection:
            result = connection.execute(statement)
            return _Buffered(result.fetchall() if result.returns_rows else [], result.rowcount)

    def _upsert(
        self,
        table: Table,
        key: dict[str, Any],
        values: dict[str, Any],
        *,
        created: dict[str, Any] | None = None,
    ) -> None:
        """Insert the row, or update ``values`` where ``key`` already exists, in one statement
        (``ON CONFLICT`` on SQLite and PostgreSQL; update-then-insert elsewhere)."""
        dialect = self._dialect()
        if dialect in _NATIVE_UPSERT:
            statement = _native_upsert(dialect, table, tuple(key), tuple(values))
            self._execute_with(statement, {**key, **values, **(created or {})})
            return
        condition = and_(*(table.c[column] == value for column, value in key.items()))
        if not self._execute(update(table).where(condition).values(**values)).rowcount:
            self._execute(insert(table).values(**key, **values, **(created or {})))

    def _execute_with(self, statement: Any, parameters: dict[str, Any]) -> None:
        if self._connection is not None:
            self._connection.execute(statement, parameters)
            return
        assert self._engine is not None
        with self._engine.begin() as connection:
            connection.execute(statement, parameters)

    def _insert_absent(
        self, table: Table, key: tuple[str, ...], rows: list[dict[str, Any]]
    ) -> None:
        """Insert the rows whose key is not there yet, in one statement that cannot fail on a row
        another transaction inserted meanwhile (``ON CONFLICT DO NOTHING``)."""
        if not rows:
            return
        dialect = self._dialect()
        if dialect in _NATIVE_UPSERT:
            statement = _NATIVE_UPSERT[dialect](table).on_conflict_do_nothing(
                index_elements=list(key)
            )
            self._execute_many(statement, rows)
            return
        for row in rows:
            condition = and_(*(table.c[column] == row[column] for column in key))
            if self._execute(select(*(table.c[column] for column in key)).where(condition)).first():
                continue
            self._execute(insert(table).values(**row))

    def _dialect(self) -> str:
        bind = self._connection if self._connection is not None else self._engine
        assert bind is not None
        return bind.dialect.name

    def _execute_many(self, statement: Any, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if self._connection is not None:
            self._connection.execute(statement, rows)
            return
        assert self._engine is not None
        with self._engine.begin() as connection:
            connection.execute(statement, rows)

    # --- agreements -----------------------------------------------------------------------------

    def upsert_agreement(self, row: AgreementRow) -> None:
        now = utcnow()
        self._upsert(
            agreements,
            {"name": row.name},
            {
                "uuid": row.uuid,
                "sender": row.sender,
                "receiver": row.receiver,
                "status": row.status,
                "allows_public_comments": row.allows_public_comments,
                "sync_tags": row.sync_tags,
                "sync_custom_fields": row.sync_custom_fields,
                "deactivated_by": row.deactivated_by,
                "updated_at": now,
            },
            created={"created_at": now},
        )

    def agreement(self, name: str) -> AgreementRow | None:
        found = self._execute(select(agreements).where(agreements.c.name == name)).first()
        if found is None:
            return None
        return AgreementRow(
            name=found.name,
            uuid=found.uuid,
            sender=found.sender,
            receiver=found.receiver,
            status=found.status,
            allows_public_comments=bool(found.allows_public_comments),
            sync_tags=bool(found.sync_tags),
            sync_custom_fields=bool(found.sync_custom_fields),
            deactivated_by=found.deactivated_by,
        )

    # --- shared tickets and links ---------------------------------------------------------------

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
        for chunk in _chunks(local_ids):
            rows = self._execute(
                select(ticket_links).where(
                    and_(ticket_links.c.instance == instance, ticket_links.c.local_id.in_(chunk))
                )
            )
            for row in rows:
                link = _link(row)
                if link is not None and link.local_id is not None:
                    found[link.local_id] = link
        return found

    def agreement_ticket_states(self, agreement: str, shared_uuids: list[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for chunk in _chunks(shared_uuids):
            rows = self._execute(
                select(agreement_tickets.c.shared_uuid, agreement_tickets.c.state).where(
                    and_(
                        agreement_tickets.c.agreement == agreement,
                        agreement_tickets.c.shared_uuid.in_(chunk),
                    )
                )
            )
            found.update({row.shared_uuid: row.state for row in rows})
        return found

    def snapshots_for(
        self, agreement: str, instance: str, shared_uuids: list[str]
    ) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(shared_uuids):
            rows = self._execute(
                select(snapshots.c.shared_uuid, snapshots.c.data).where(
                    and_(
                        snapshots.c.agreement == agreement,
                        snapshots.c.instance == instance,
                        snapshots.c.shared_uuid.in_(chunk),
                    )
                )
            )
            found.update({row.shared_uuid: json.loads(row.data) for row in rows})
        return found

    def comment_links_for(
        self, shared_uuids: list[str]
    ) -> dict[str, dict[str, dict[str, str | None]]]:
        """``comment_links`` for many tickets: ``{shared uuid: {instance: {uuid: local}}}``."""
        found: dict[str, dict[str, dict[str, str | None]]] = {uuid: {} for uuid in shared_uuids}
        for chunk in _chunks(shared_uuids):
            rows = self._execute(
                select(comment_links).where(comment_links.c.shared_uuid.in_(chunk))
            )
            for row in rows:
                found[row.shared_uuid].setdefault(row.instance, {})[row.comment_uuid] = row.local_id
        return found

    def link_for_local(self, instance: str, local_id: str) -> LinkRow | None:
        row = self._execute(
            select(ticket_links).where(
                and_(ticket_links.c.instance == instance, ticket_links.c.local_id == local_id)
            )
        ).first()
        return _link(row)

    def link(self, shared_uuid: str, instance: str) -> LinkRow | None:
        row = self._execute(
            select(ticket_links).where(
                and_(ticket_links.c.shared_uuid == shared_uuid, ticket_links.c.instance == instance)
            )
        ).first()
        return _link(row)

    def links(self, shared_uuid: str) -> list[LinkRow]:
        rows = self._execute(
            select(ticket_links)
            .where(ticket_links.c.shared_uuid == shared_uuid)
            .order_by(ticket_links.c.created_at)
        )
        return [link for row in rows if (link := _link(row)) is not None]

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
                        and_(
                            ticket_links.c.shared_uuid == holder.shared_uuid,
                            ticket_links.c.instance == instance,
                        )
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
                and_(ticket_links.c.shared_uuid == shared_uuid, ticket_links.c.instance == instance)
            )
        )

    def pending_links(self, instance: str) -> list[LinkRow]:
        rows = self._execute(
            select(ticket_links).where(
                and_(ticket_links.c.instance == instance, ticket_links.c.state == "pending")
            )
        )
        return [link for row in rows if (link := _link(row)) is not None]

    # --- which tickets an agreement carries -----------------------------------------------------

    def share(self, agreement: str, shared_uuid: str) -> None:
        self._insert_absent(
            agreement_tickets,
            ("agreement", "shared_uuid"),
            [
                {
                    "agreement": agreement,
                    "shared_uuid": shared_uuid,
                    "state": "shared",
                    "shared_at": utcnow(),
                }
            ],
        )

    def set_agreement_ticket_state(self, agreement: str, shared_uuid: str, state: str) -> None:
        self._execute(
            update(agreement_tickets)
            .where(
                and_(
                    agreement_tickets.c.agreement == agreement,
                    agreement_tickets.c.shared_uuid == shared_uuid,
                )
            )
            .values(state=state)
        )

    def agreement_ticket_state(self, agreement: str, shared_uuid: str) -> str | None:
        row = self._execute(
            select(agreement_tickets.c.state).where(
                and_(
                    agreement_tickets.c.agreement == agreement,
                    agreement_tickets.c.shared_uuid == shared_uuid,
                )
            )
        ).first()
        return row[0] if row else None

    def agreements_of_ticket(self, shared_uuid: str) -> dict[str, str]:
        rows = self._execute(
            select(agreement_tickets.c.agreement, agreement_tickets.c.state).where(
                agreement_tickets.c.shared_uuid == shared_uuid
            )
        )
        return {row.agreement: row.state for row in rows}

    def count_shared(self, agreement: str) -> int:
        return self._execute(
            select(func.count()).where(agreement_tickets.c.agreement == agreement)
        ).scalar_one()

    # --- comments -------------------------------------------------------------------------------

    def comment_links(self, shared_uuid: str) -> dict[str, dict[str, str | None]]:
        """``{instance: {comment_uuid: local_id or None while pending}}`` for one ticket."""
        rows = self._execute(
            select(comment_links).where(comment_links.c.shared_uuid == shared_uuid)
        )
        links: dict[str, dict[str, str | None]] = {}
        for row in rows:
            links.setdefault(row.instance, {})[row.comment_uuid] = row.local_id
        return links

    def put_comment_link(
        self, comment_uuid: str, instance: str, shared_uuid: str, local_id: str | None
    ) -> None:
        self._upsert(
            comment_links,
            {"comment_uuid": comment_uuid, "instance": instance},
            {"local_id": local_id},
            created={"shared_uuid": shared_uuid, "created_at": utcnow()},
        )

    def add_comment_links(self, shared_uuid: str, rows: list[tuple[str, str, str]]) -> None:
        """Link several comments of one ticket: ``(comment uuid, instance, local id)`` rows.
        Rows already linked are updated; the new ones go in with one statement."""
        if not rows:
            return
        # Existing links are looked up by their own key, whichever ticket they were made for.
        existing = {
            (row.comment_uuid, row.instance): row.local_id
            for row in self._execute(
                select(comment_links).where(
                    comment_links.c.comment_uuid.in_({uuid for uuid, _, _ in rows})
                )
            )
        }
        fresh = []
        for comment_uuid, instance, local_id in dict.fromkeys(rows):
            if (comment_uuid, instance) in existing:
                if existing[(comment_uuid, instance)] != local_id:
                    self.put_comment_link(comment_uuid, instance, shared_uuid, local_id)
            else:
                fresh.append(
                    {
                        "comment_uuid": comment_uuid,
                        "instance": instance,
                        "shared_uuid": shared_uuid,
                        "local_id": local_id,
                        "created_at": utcnow(),
                    }
                )
        self._insert_absent(comment_links, ("comment_uuid", "instance"), fresh)

    def drop_comment_link(self, comment_uuid: str, instance: str) -> None:
        self._execute(
            delete(comment_links).where(
                and_(
                    comment_links.c.comment_uuid == comment_uuid,
                    comment_links.c.instance == instance,
                )
            )
        )

    # --- snapshots and cursors ------------------------------------------------------------------

    def snapshot(self, agreement: str, shared_uuid: str, instance: str) -> dict[str, Any] | None:
        row = self._execute(
            select(snapshots.c.data).where(
                and_(
                    snapshots.c.agreement == agreement,
                    snapshots.c.shared_uuid == shared_uuid,
                    snapshots.c.instance == instance,
                )
            )
        ).first()
        return json.loads(row[0]) if row else None

    def put_snapshot(
        self, agreement: str, shared_uuid: str, instance: str, data: dict[str, Any]
    ) -> None:
        self._upsert(
            snapshots,
            {"agreement": agreement, "shared_uuid": shared_uuid, "instance": instance},
            {"data": json.dumps(data, sort_keys=True, default=str), "updated_at": utcnow()},
        )

    def cursor(self, agreement: str, instance: str) -> str | None:
        row = self._execute(
            select(cursors.c.cursor).where(
                and_(cursors.c.agreement == agreement, cursors.c.instance == instance)
            )
        ).first()
        return row[0] if row else None

    def put_cursor(self, agreement: str, instance: str, cursor: str | None) -> None:
        self._upsert(
            cursors,
            {"agreement": agreement, "instance": instance},
            {"cursor": cursor, "updated_at": utcnow()},
        )

    def record(self, entry: JournalEntry) -> None:
        self.record_many([entry])

    def record_many(self, entries: list[JournalEntry]) -> None:
        """Journal several lines in one statement (a ticket's writes are journaled together)."""
        if not entries:
            return
        now = utcnow()
        self._execute_many(
            insert(journal),
            [
                {
                    "at": entry.at or now,
                    "run_id": entry.run_id,
                    "agreement": entry.agreement,
                    "source": entry.source,
                    "target": entry.target,
                    "shared_uuid": entry.shared_uuid,
                    "local_id": entry.local_id,
                    "action": entry.action,
                    "outcome": entry.outcome,
                    "field": entry.field,
                    "before": _json_or_none(entry.before),
                    "after": _json_or_none(entry.after),
                    "reason": entry.reason,
                }
                for entry in entries
            ],
        )

    def journal(
        self,
        *,
        agreement: str | None = None,
        shared_uuid: str | None = None,
        run_id: str | None = None,
        outcome: str | None = None,
        limit: int = 100,
    ) -> list[JournalEntry]:
        """Newest last; at most ``limit`` of the newest matching entries."""
        query = select(journal).order_by(journal.c.id.desc()).limit(limit)
        for column, value in (
            (journal.c.agreement, agreement),
            (journal.c.shared_uuid, shared_uuid),
            (journal.c.run_id, run_id),
            (journal.c.outcome, outcome),
        ):
            if value is not None:
                query = query.where(column == value)
        rows = list(self._execute(query))
        return [
            JournalEntry(
                id=row.id,
                at=stored_utc(row.at),
                run_id=row.run_id,
                agreement=row.agreement,
                source=row.source,
                target=row.target,
                shared_uuid=row.shared_uuid,
                local_id=row.local_id,
                action=row.action,
                outcome=row.outcome,
                field=row.field,
                before=_load_or_none(row.before),
                after=_load_or_none(row.after),
                reason=row.reason,
            )
            for row in reversed(rows)
        ]

    # --- how each agreement's runs went ---------------------------------------------------------

    def record_run_outcome(self, agreement: str, error: str | None) -> None:
        """The outcome of one run: ``error`` is why it failed, ``None`` if it did not."""
        now = utcnow()
        found = self.health(agreement)
        if error is None:
            values = {
                "last_run_at": now,
                "last_ok_at": now,
                "failing_since": None,
                "last_error": None,
            }
        else:
            since = found.failing_since if found and found.failing_since else now
            values = {"last_run_at": now, "failing_since": since, "last_error": error[:4000]}
        self._upsert(agreement_health, {"agreement": agreement}, values)

    def health(self, agreement: str) -> AgreementHealth | None:
        row = self._execute(
            select(agreement_health).where(agreement_health.c.agreement == agreement)
        ).first()
        return _health(row) if row else None

    def all_health(self) -> list[AgreementHealth]:
        rows = self._execute(select(agreement_health).order_by(agreement_health.c.agreement))
        return [_health(row) for row in rows]

    # --- parked tickets -------------------------------------------------------------------------

    def park(
        self,
        agreement: str,
        shared_uuid: str,
        instance: str,
        local_id: str,
        error: str,
        backoff: timedelta,
        *,
        max_backoff: timedelta = timedelta(hours=1),
    ) -> ParkedRow:
        """Park a ticket, or push an already parked one further back (exponential backoff)."""
        now = utcnow()
        existing = self.parked_entry(agreement, shared_uuid)
        attempts = existing.attempts + 1 if existing else 1
        delay = min(backoff * (2 ** (attempts - 1)), max_backoff)
        values = {
            "instance": instance,
            "local_id": local_id,
            "error": error,
            "attempts": attempts,
            "next_attempt_at": now + delay,
        }
        if existing:
            self._execute(
                update(parked)
                .where(and_(parked.c.agreement == agreement, parked.c.shared_uuid == shared_uuid))
                .values(**values)
            )
        else:
            self._execute(
                insert(parked).values(
                    agreement=agreement, shared_uuid=shared_uuid, first_failed_at=now, **values
                )
            )
        found = self.parked_entry(agreement, shared_uuid)
        assert found is not None
        return found

    def unpark(self, agreement: str, shared_uuid: str) -> None:
        self._execute(
            delete(parked).where(
                and_(parked.c.agreement == agreement, parked.c.shared_uuid == shared_uuid)
            )
        )

    def parked_entry(self, agreement: str, shared_uuid: str) -> ParkedRow | None:
        row = self._execute(
            select(parked).where(
                and_(parked.c.agreement == agreement, parked.c.shared_uuid == shared_uuid)
            )
        ).first()
        return _parked(row) if row else None

    def parked(self, agreement: str | None = None) -> list[ParkedRow]:
        query = select(parked).order_by(parked.c.first_failed_at)
        if agreement is not None:
            query = query.where(parked.c.agreement == agreement)
        return [_parked(row) for row in self._execute(query)]


# --- helpers ------------------------------------------------------------------------------------


class _Buffered:
    """Rows of an autocommitted statement, kept after its connection went back to the pool."""

    def __init__(self, rows: list[Any], rowcount: int):
        self._rows = rows
        self.rowcount = rowcount

    def __iter__(self) -> Iterator[Any]:
        return iter(self._rows)

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def scalar_one(self) -> Any:
        return self._rows[0][0]


def _make_engine(url: str) -> Engine:
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


@functools.cache
def _native_upsert(
    dialect: str, table: Table, key: tuple[str, ...], updated: tuple[str, ...]
) -> Any:
    """An INSERT .. ON CONFLICT DO UPDATE built once per shape and run with parameters: building
    statements per call was a third of the bookkeeping time of a large first sync."""
    statement = _NATIVE_UPSERT[dialect](table)
    return statement.on_conflict_do_update(
        index_elements=list(key), set_={column: statement.excluded[column] for column in updated}
    )


def _chunks(values: list[str], size: int = 500) -> list[list[str]]:
    # Bounded IN lists: SQLite limits bound parameters per statement.
    return [values[start : start + size] for start in range(0, len(values), size)]


def _link(row: Any) -> LinkRow | None:
    if row is None:
        return None
    return LinkRow(row.shared_uuid, row.instance, row.local_id, row.state)


def _health(row: Any) -> AgreementHealth:
    return AgreementHealth(
        agreement=row.agreement,
        last_run_at=stored_utc(row.last_run_at),
        last_ok_at=stored_utc(row.last_ok_at),
        failing_since=stored_utc(row.failing_since),
        last_error=row.last_error,
    )


def _parked(row: Any) -> ParkedRow:
    return ParkedRow(
        agreement=row.agreement,
        shared_uuid=row.shared_uuid,
        instance=row.instance,
        local_id=row.local_id,
        error=row.error,
        attempts=row.attempts,
        first_failed_at=stored_utc(row.first_failed_at),
        next_attempt_at=stored_utc(row.next_attempt_at),
    )


@overload
def stored_utc(value: datetime) -> datetime: ...
@overload
def stored_utc(value: None) -> None: ...
def stored_utc(value: datetime | None) -> datetime | None:
    """A datetime read from the store, made aware: SQLite hands back naive ones, and everything
    stored is UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, ensure_ascii=False)


def _load_or_none(text: str | None) -> Any:
    return None if text is None else json.loads(text)
