"""The state store: links, snapshots, cursors, journal, parked tickets and leases.

It owns the mapping between shared uuids and each instance's local ids; that mapping is what keeps
a bridge from creating duplicates. SQLite (WAL) by default; any SQLAlchemy URL works, PostgreSQL
(``postgresql+psycopg://``) when several workers share the work. Each concern's reads and writes
live in a module of its own (links, agreements, comments, snapshots, journal, health, parking);
:class:`StateTx` brings them together in one transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, delete, event, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from nhd_bridge.core.state import schema
from nhd_bridge.core.state.agreements import AgreementTx
from nhd_bridge.core.state.base import matching, utcnow
from nhd_bridge.core.state.comments import CommentLinkTx
from nhd_bridge.core.state.health import HealthTx
from nhd_bridge.core.state.journal import JournalTx
from nhd_bridge.core.state.links import LinkTx
from nhd_bridge.core.state.opening import opening_errors
from nhd_bridge.core.state.parking import ParkingTx
from nhd_bridge.core.state.schema import leases
from nhd_bridge.core.state.snapshots import SnapshotTx

__all__ = ["StateStore", "StateTx"]


INSTALLATION_KEY = "installation_id"


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
                delete(leases).where(matching(leases, agreement=agreement, holder=holder))
            )

    def close(self) -> None:
        self.engine.dispose()


class StateTx(LinkTx, AgreementTx, CommentLinkTx, SnapshotTx, JournalTx, HealthTx, ParkingTx):
    """Reads and writes of the store inside one transaction (or autocommitting reads)."""


# --- helpers ------------------------------------------------------------------------------------


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
