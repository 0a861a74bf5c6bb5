"""The embedded local tracker: a small but real ticket tracker in one SQLite file.

Why it exists: with it, a bridge, the demo and every test run with no account anywhere. It is also
the reference adapter: if you are writing an adapter plugin, copy this module's shape.

The module has three layers, read top-down:

- :class:`LocalConfig`, the instance settings users write under ``kind: local`` in the YAML;
- :class:`LocalTracker`, the tracker itself (storage and domain API). It knows nothing about the
  bridge, so the CLI, the demo and tests use it directly, like people use a real tracker's UI;
- :class:`LocalAdapter`, a thin wrapper that speaks the :class:`~nhd_bridge.core.adapter.Adapter`
  contract over a ``LocalTracker``. A real adapter has the same split: the tracker is the remote
  API, the adapter translates.

How the contract maps onto the storage:

- **Cursor.** One global change sequence (a one-row counter table) is incremented in the same
  transaction as every change, and stamped on the changed ticket. ``changed_since(cursor)`` returns
  tickets whose sequence is greater than the cursor, so no change is ever missed and no clock is
  involved. A write that changes nothing does not take a number: otherwise a sync would see its own
  no-op writes as changes and churn forever.
- **Breadcrumbs.** The bridge's shared uuid is a column on tickets and comments; a unique index on
  the ticket column makes a second create with the same uuid fail loudly instead of duplicating.
- **Attachments** are files under ``attachments_dir`` with random names (the given filename is only
  data, never part of a path), streamed in chunks both ways, size-checked while copying.
- **Concurrency.** WAL journal mode, a busy timeout and ``BEGIN IMMEDIATE`` for writes let the CLI
  work on the file while a bridge runs; a lock serialises threads sharing one tracker object.
"""

from __future__ import annotations

import json
import mimetypes
import os
import re
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path, PureWindowsPath
from typing import Any, BinaryIO, Self, overload

from pydantic import Field, field_validator

from nhd_bridge.core.adapter import (
    Adapter,
    AdapterConfig,
    AdapterContext,
    AttachmentRef,
    AttachmentUpload,
    Capabilities,
    ChangePage,
    CheckResult,
    CommentDraft,
    CommentRecord,
    PermanentError,
    TicketChanges,
    TicketDraft,
    TicketRecord,
    TransientError,
)
from nhd_bridge.core.model import TICKET_STATUSES, Actor, nhd_uuid, parse_timestamp

__all__ = [
    "DEFAULT_MAX_ATTACHMENT_BYTES",
    "LocalAdapter",
    "LocalConfig",
    "LocalTracker",
    "LocalTrackerError",
    "NewAttachment",
    "UnknownTicket",
    "local_person",
]

DEFAULT_MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024

# How long a write waits for another process (the CLI, a second bridge) to release the file before
# giving up with a TransientError. Writes here take milliseconds; this only absorbs contention.
BUSY_TIMEOUT_SECONDS = 10.0

# Attachments are copied in chunks of this size, so a large file never sits whole in memory.
COPY_CHUNK_BYTES = 1024 * 1024

# Author and requester uuids for people typed in by hand (CLI, demo) are derived from their name
# under this pseudo sharing URL, the way NHD derives every uuid (nhd-spec.md §6.1). That uuid is
# the same in every installation, so it never leaves one: the adapter hands the engine the
# person's uuid minted from the instance's own sharing URL instead (see LocalAdapter.attach).
LOCAL_PEOPLE_URL = "nhd-local"

NewAttachment = tuple[str, str | None, BinaryIO]
"""A file to attach through :meth:`LocalTracker.add_comment`: filename, content type, stream."""


# --- configuration ------------------------------------------------------------------------------


class LocalConfig(AdapterConfig):
    """Settings of a ``kind: local`` instance.

    Validation here is pure (no filesystem access): the config loader resolves relative paths
    against the YAML file *after* validation, so the filesystem is checked by
    :meth:`LocalAdapter.check` and when the tracker opens, on the final paths.
    """

    path: Path = Field(
        description="The tracker's SQLite file; it and its parent folders are created if missing."
    )
    attachments_dir: Path | None = Field(
        default=None,
        description="Folder holding attachment files; default: '<db stem>-attachments' beside "
        "the database file.",
    )
    statuses: list[str] = Field(
        default_factory=lambda: list(TICKET_STATUSES),
        description="The tracker's status vocabulary; other statuses are refused. The first one "
        "is the status of new tickets.",
    )
    page_size: int = Field(
        default=500, gt=0, description="Tickets per page when the bridge reads changes."
    )
    max_attachment_bytes: int | None = Field(
        default=DEFAULT_MAX_ATTACHMENT_BYTES,
        gt=0,
        description="Largest attachment accepted, in bytes; null for no limit.",
    )

    @field_validator("path")
    @classmethod
    def _a_real_file(cls, value: Path) -> Path:
        # sqlite3 would happily open ":memory:" or "" as a throwaway database, silently losing
        # every ticket at exit; a tracker must persist, so both are refused.
        if str(value) in {"", ".", ":memory:"}:
            raise ValueError(
                f"{str(value)!r} is not a database file; give a file path such as 'tracker.db'"
            )
        return value

    @field_validator("statuses")
    @classmethod
    def _a_usable_vocabulary(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one status; the first one is used for new tickets")
        seen: set[str] = set()
        for status in value:
            if not status.strip():
                raise ValueError("a status name cannot be blank")
            if status.casefold() in seen:
                raise ValueError(f"status {status!r} is listed twice (statuses ignore case)")
            seen.add(status.casefold())
        return value

    @property
    def attachments_folder(self) -> Path:
        """Where attachment files live: ``attachments_dir``, or the default beside the database.

        A property rather than a filled-in default, so that it follows ``path`` when the config
        loader rebases a relative ``path`` on the YAML file's folder.
        """
        if self.attachments_dir is not None:
            return self.attachments_dir
        return self.path.with_name(f"{self.path.stem}-attachments")


# --- errors -------------------------------------------------------------------------------------


class LocalTrackerError(PermanentError):
    """The local tracker refused a request: unknown ticket or status, a file over the limit...

    A :class:`PermanentError`, because retrying the same request cannot succeed.
    """


class UnknownTicket(LocalTrackerError):
    """No ticket has this id (it never existed, or it was deleted)."""

    def __init__(self, ticket_id: object, database: Path):
        self.ticket_id = ticket_id
        super().__init__(f"no ticket {_as_human_id(ticket_id)} in local tracker {database}")


def local_person(name: str, role: str | None = "agent") -> Actor:
    """An :class:`Actor` for someone typed in by hand: the same name always gets the same uuid."""
    return Actor(uuid=nhd_uuid(LOCAL_PEOPLE_URL, "users", name), name=name, role=role)


# --- the tracker --------------------------------------------------------------------------------


class LocalTracker:
    """A ticket tracker stored in one SQLite file plus a folder of attachment files.

    Usable on its own (``with LocalTracker(LocalConfig(path=...)) as tracker: ...``). Ticket ids
    are integers; methods also take them as text (``"12"``) or as the human id (``"#12"``).
    Tickets and comments come back as the contract's :class:`TicketRecord` and
    :class:`CommentRecord`, so what people see in the CLI is exactly what the bridge reads.
    Methods that change a ticket return ``True`` only when something actually changed.
    """

    def __init__(self, config: LocalConfig):
        self.config = config
        self.path = config.path
        self.attachments_dir = config.attachments_folder
        self._statuses = {status.casefold(): status for status in config.statuses}
        # One connection shared by every thread of this process (the server's scheduler may call
        # the adapter from worker threads); the lock makes sure only one uses it at a time.
        self._lock = threading.RLock()
        self.attachments_dir.mkdir(parents=True, exist_ok=True)
        self._db: sqlite3.Connection | None = _open_database(self.path)

    def __repr__(self) -> str:
        return f"<LocalTracker {str(self.path)!r}>"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database; closing the last connection also folds the WAL into the file."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    @property
    def statuses(self) -> tuple[str, ...]:
        return tuple(self.config.statuses)

    # --- tickets ------------------------------------------------------------------------------

    def create_ticket(
        self,
        subject: str,
        *,
        status: str | None = None,
        requester: Actor | None = None,
        tags: Iterable[str] = (),
        custom_fields: dict[str, Any] | None = None,
        shared_uuid: str | None = None,
        requested_at: datetime | None = None,
    ) -> TicketRecord:
        """Create a ticket; ``status`` defaults to the first status of the vocabulary."""
        fields = _Fields(
            subject=subject,
            status=self._status(status) if status is not None else self.config.statuses[0],
            tags=_canonical_tags(tags),
            custom_fields=_without_nulls(custom_fields or {}),
        )
        now = _now()
        with self._write() as db:
            if shared_uuid is not None:
                self._refuse_duplicate(db, shared_uuid)
            ticket_id = db.execute(
                """INSERT INTO tickets (subject, status, tags, custom_fields, requester_uuid,
                       requester_name, requester_role, requested_at, updated_at, change_seq,
                       shared_uuid)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    *fields.columns(),
                    *_actor_columns(requester),
                    _timestamp_text(requested_at or now),
                    _timestamp_text(now),
                    _next_change(db),
                    shared_uuid,
                ),
            ).lastrowid
            return _load_tickets(db, "id = ?", (ticket_id,))[0][1]

    def set_subject(self, ticket_id: int | str, subject: str) -> bool:
        return self.update_ticket(ticket_id, subject=subject)

    def set_status(self, ticket_id: int | str, status: str) -> bool:
        return self.update_ticket(ticket_id, status=status)

    def set_tags(self, ticket_id: int | str, tags: Iterable[str]) -> bool:
        return self.update_ticket(ticket_id, tags=tags)

    def add_tags(self, ticket_id: int | str, tags: Iterable[str]) -> bool:
        added = _canonical_tags(tags)
        return self._edit(ticket_id, lambda t: replace(t, tags=_canonical_tags((*t.tags, *added))))

    def remove_tags(self, ticket_id: int | str, tags: Iterable[str]) -> bool:
        removed = set(_canonical_tags(tags))
        return self._edit(
            ticket_id, lambda t: replace(t, tags=tuple(tag for tag in t.tags if tag not in removed))
        )

    def set_custom_field(self, ticket_id: int | str, name: str, value: Any) -> bool:
        """Set one custom field; ``None`` removes it (as in NHD, where null means absent)."""
        return self.update_ticket(ticket_id, custom_fields={name: value})

    def update_ticket(
        self,
        ticket_id: int | str,
        *,
        subject: str | None = None,
        status: str | None = None,
        tags: Iterable[str] | None = None,
        custom_fields: dict[str, Any] | None = None,
    ) -> bool:
        """Change several fields in one transaction; ``None`` leaves a field as it is.

        ``custom_fields`` holds only the fields to set; a ``None`` value removes that field.
        """
        # Validate before taking the write lock, so a bad value costs no one any waiting.
        new_status = self._status(status) if status is not None else None
        new_tags = _canonical_tags(tags) if tags is not None else None
        _encode_custom_fields(custom_fields or {})

        def apply(current: _Fields) -> _Fields:
            merged = {**current.custom_fields, **(custom_fields or {})}
            return _Fields(
                subject=current.subject if subject is None else subject,
                status=new_status or current.status,
                tags=current.tags if new_tags is None else new_tags,
                custom_fields=_without_nulls(merged),
            )

        return self._edit(ticket_id, apply)

    def delete_ticket(self, ticket_id: int | str) -> None:
        """Delete a ticket with its comments and attachment files; its id is never reused."""
        wanted = self._id(ticket_id)
        with self._write() as db:
            stored_names = [
                row["stored_name"]
                for row in db.execute(
                    """SELECT a.stored_name FROM attachments a
                       JOIN comments c ON c.id = a.comment_id WHERE c.ticket_id = ?""",
                    (wanted,),
                )
            ]
            # Comments and attachment rows go with it: ON DELETE CASCADE.
            if db.execute("DELETE FROM tickets WHERE id = ?", (wanted,)).rowcount == 0:
                raise UnknownTicket(ticket_id, self.path)
        # Files go only once the rows are gone for good; a file left behind by a failure here is
        # harmless garbage, whereas deleting first could leave rows pointing at nothing.
        _remove_files(self.attachments_dir, stored_names)

    # --- comments -----------------------------------------------------------------------------

    def add_comment(
        self,
        ticket_id: int | str,
        body: str,
        *,
        public: bool = True,
        author: Actor | None = None,
        html_body: str | None = None,
        attachments: Iterable[NewAttachment] = (),
        shared_uuid: str | None = None,
        authored_at: datetime | None = None,
    ) -> CommentRecord:
        """Add a comment with its attachments; ``authored_at`` defaults to now.

        ``attachments`` is consumed one file at a time, so it may be a generator that opens each
        stream only when its turn comes (what :class:`LocalAdapter` does with uploads).
        """
        wanted = self._id(ticket_id)
        with self._read() as db:
            self._require_ticket(db, wanted, ticket_id)  # fail before streaming any file
        # Files are copied before the write transaction, so a slow upload never holds the
        # database's write lock; if anything fails later, the copied files are removed again.
        stored = self._store_files(attachments)
        try:
            with self._write() as db:
                self._require_ticket(db, wanted, ticket_id)  # it may have gone meanwhile
                comment_id = db.execute(
                    """INSERT INTO comments (ticket_id, body, html_body, public, author_uuid,
                           author_name, author_role, authored_at, shared_uuid)
                       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        wanted,
                        body,
                        html_body,
                        public,
                        *_actor_columns(author),
                        _timestamp_text(authored_at or _now()),
                        shared_uuid,
                    ),
                ).lastrowid
                db.executemany(
                    """INSERT INTO attachments
                           (comment_id, filename, content_type, size, stored_name)
                       VALUES (?, ?, ?, ?, ?)""",
                    [(comment_id, *file.columns()) for file in stored],
                )
                _touch(db, wanted)
                return _load_comment(db, comment_id)
        except BaseException:
            _remove_files(self.attachments_dir, [file.stored_name for file in stored])
            raise

    def edit_comment(
        self,
        ticket_id: int | str,
        comment_id: int | str,
        body: str,
        *,
        html_body: str | None = None,
    ) -> bool:
        """Replace a comment's body. The old HTML body is dropped unless a new one is given:
        keeping it would show readers the text as it was before the edit."""
        wanted = self._id(ticket_id)
        with self._write() as db:
            self._require_ticket(db, wanted, ticket_id)
            row = db.execute(
                "SELECT body, html_body FROM comments WHERE id = ? AND ticket_id = ?",
                (_as_int(comment_id), wanted),
            ).fetchone()
            if row is None:
                raise LocalTrackerError(
                    f"ticket {_as_human_id(ticket_id)} has no comment {comment_id!r}"
                )
            if (row["body"], row["html_body"]) == (body, html_body):
                return False
            db.execute(
                "UPDATE comments SET body = ?, html_body = ? WHERE id = ?",
                (body, html_body, _as_int(comment_id)),
            )
            _touch(db, wanted)
        return True

    def open_attachment(self, ref: str) -> BinaryIO:
        """A binary stream (and context manager) of an attachment, by its ``AttachmentRef.ref``."""
        with self._read() as db:
            row = db.execute(
                "SELECT filename, stored_name FROM attachments WHERE id = ?", (_as_int(ref),)
            ).fetchone()
        if row is None:
            raise LocalTrackerError(f"no attachment {ref!r} in local tracker {self.path}")
        try:
            return open(self.attachments_dir / row["stored_name"], "rb")
        except FileNotFoundError:
            raise LocalTrackerError(
                f"the file of attachment {ref!r} ({row['filename']}) is missing from "
                f"{self.attachments_dir}; was the folder moved or cleaned?"
            ) from None

    # --- reading ------------------------------------------------------------------------------

    def get(self, ticket_id: int | str) -> TicketRecord | None:
        """The ticket with its comments, or ``None`` if there is no such ticket."""
        wanted = _as_int(ticket_id)
        if wanted is None:  # not even shaped like one of our ids: certainly not here
            return None
        with self._read() as db:
            found = _load_tickets(db, "id = ?", (wanted,))
        return found[0][1] if found else None

    def find_by_shared_uuid(self, shared_uuid: str) -> TicketRecord | None:
        with self._read() as db:
            found = _load_tickets(db, "shared_uuid = ?", (shared_uuid,))
        return found[0][1] if found else None

    def identity(self) -> str:
        """A random id made with this tracker's file: who it is, whatever path it moves to."""
        with self._read() as db:
            return str(db.execute("SELECT identity FROM tracker_identity").fetchone()[0])

    def list_tickets(self, status: str | None = None) -> list[TicketRecord]:
        """Every ticket (or those with ``status``) by id, with comments."""
        with self._read() as db:
            if status is None:
                found = _load_tickets(db, "1 = 1", ())
            else:
                found = _load_tickets(db, "status = ?", (self._status(status),))
        return sorted((ticket for _, ticket in found), key=lambda ticket: int(ticket.local_id))

    def changed_since(self, cursor: str | None) -> Iterator[ChangePage]:
        """Tickets changed after ``cursor`` (all when ``None``), oldest change first, in pages.

        Each page is read in one transaction, so a ticket and its comments are a consistent
        snapshot; a ticket changed while we page gets a higher number and shows up again later.
        """
        # Checked now rather than on the first next(): a bad cursor fails where it is passed.
        return self._pages_after(self._cursor_position(cursor))

    def _pages_after(self, after: int) -> Iterator[ChangePage]:
        while True:
            with self._read() as db:
                page = _load_tickets(db, "change_seq > ?", (after,), limit=self.config.page_size)
            if not page:
                return
            after = page[-1][0]
            yield ChangePage(tickets=[ticket for _, ticket in page], cursor=str(after))
            if len(page) < self.config.page_size:
                return

    # --- internals ----------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: several SELECTs see one snapshot, even while another process
        writes (WAL readers never wait for writers)."""
        with self._transaction("BEGIN") as db:
            yield db

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction. ``BEGIN IMMEDIATE`` takes the write lock up front: a deferred
        transaction that reads first and then writes can fail at once with "database is locked"
        when another process wrote in between, which no busy timeout can cure."""
        with self._transaction("BEGIN IMMEDIATE") as db:
            yield db

    @contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        with self._lock, _sqlite_errors(self.path):
            if self._db is None:
                raise LocalTrackerError(f"local tracker {self.path} is closed")
            db = self._db
            db.execute(begin)
            try:
                yield db
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:  # SQLite may already have rolled back (disk full...)
                    db.execute("ROLLBACK")
                raise

    def _edit(self, ticket_id: int | str, change: Callable[[_Fields], _Fields]) -> bool:
        """Read, change and write a ticket's fields in one transaction (so two processes adding
        tags at once both win); write and take a change number only if something differs."""
        wanted = self._id(ticket_id)
        with self._write() as db:
            row = db.execute(
                "SELECT subject, status, tags, custom_fields FROM tickets WHERE id = ?", (wanted,)
            ).fetchone()
            if row is None:
                raise UnknownTicket(ticket_id, self.path)
            current = _Fields.from_row(row)
            changed = change(current)
            if changed.columns() == current.columns():
                return False
            db.execute(
                "UPDATE tickets SET subject = ?, status = ?, tags = ?, custom_fields = ? "
                "WHERE id = ?",
                (*changed.columns(), wanted),
            )
            _touch(db, wanted)
        return True

    def _store_files(self, attachments: Iterable[NewAttachment]) -> list[_StoredFile]:
        """Copy every attachment to disk; on any failure, remove the ones already copied."""
        stored: list[_StoredFile] = []
        try:
            for filename, content_type, stream in attachments:
                stored.append(self._store_file(filename, content_type, stream))
        except BaseException:
            _remove_files(self.attachments_dir, [file.stored_name for file in stored])
            raise
        return stored

    def _store_file(self, filename: str, content_type: str | None, stream: BinaryIO) -> _StoredFile:
        display_name = _safe_filename(filename)
        stored_name = uuid.uuid4().hex  # never derived from the given name: no path tricks
        target = self.attachments_dir / stored_name
        limit = self.config.max_attachment_bytes
        self.attachments_dir.mkdir(parents=True, exist_ok=True)
        try:
            with open(target, "xb") as out:  # "x": never overwrite an existing file
                counter = _SizeLimitedWriter(out, limit)
                shutil.copyfileobj(stream, counter, COPY_CHUNK_BYTES)
        except BaseException as error:
            target.unlink(missing_ok=True)  # never leave a partial file behind
            if isinstance(error, _TooLarge):
                raise _too_large(display_name, limit) from None
            raise
        return _StoredFile(
            filename=display_name,
            content_type=content_type or mimetypes.guess_type(display_name)[0],
            size=counter.size,
            stored_name=stored_name,
        )

    def _status(self, name: str) -> str:
        """The vocabulary's spelling of ``name`` (matched ignoring case), or a clear refusal."""
        try:
            return self._statuses[name.casefold()]
        except KeyError:
            raise LocalTrackerError(
                f"unknown status {name!r}; this tracker's statuses are: "
                + ", ".join(self.config.statuses)
            ) from None

    def _id(self, ticket_id: int | str) -> int:
        wanted = _as_int(ticket_id)
        if wanted is None:
            raise UnknownTicket(ticket_id, self.path)
        return wanted

    def _require_ticket(self, db: sqlite3.Connection, wanted: int, given: int | str) -> None:
        if db.execute("SELECT 1 FROM tickets WHERE id = ?", (wanted,)).fetchone() is None:
            raise UnknownTicket(given, self.path)

    def _cursor_position(self, cursor: str | None) -> int:
        if cursor is None:
            return 0
        if not re.fullmatch(r"[0-9]+", cursor):
            raise PermanentError(
                f"invalid cursor {cursor!r} for local tracker {self.path}: expected a change "
                "number as returned in ChangePage.cursor; reset the agreement's cursor"
            )
        position = int(cursor)
        with self._read() as db:
            last = _last_change(db)
        if position > last:
            # A cursor from the future means the database was replaced (deleted, restored from
            # a backup): reading "after" it would silently skip every change until it catches up.
            raise PermanentError(
                f"cursor {position} is ahead of the last change ({last}) of local tracker "
                f"{self.path}: was the database file replaced? Run `nhd-bridge reset-cursor "
                "--instance NAME` to read every ticket again"
            )
        return position

    def _refuse_duplicate(self, db: sqlite3.Connection, shared_uuid: str) -> None:
        """One ticket per shared uuid: a second would be a duplicate of a shared ticket. (The
        unique index enforces it too; this check exists to say so in words.)"""
        row = db.execute("SELECT id FROM tickets WHERE shared_uuid = ?", (shared_uuid,)).fetchone()
        if row is not None:
            raise LocalTrackerError(
                f"ticket #{row['id']} of local tracker {self.path} already carries shared uuid "
                f"{shared_uuid}; creating another would duplicate it (find_by_shared_uuid finds it)"
            )


# --- the adapter --------------------------------------------------------------------------------


class LocalAdapter(Adapter):
    """The bridge's view of a :class:`LocalTracker`: the contract, translated one call each.

    The tracker is opened on first use, not in ``__init__``: building an adapter must not
    create database files (a command may build adapters it never calls).
    """

    kind = "local"
    config_model = LocalConfig
    capabilities = Capabilities(
        private_comments=True,
        attachments=True,
        tags=True,
        custom_fields=True,
        transitions=False,
        comment_author=True,
        edit_comments=True,
        statuses=TICKET_STATUSES,
        max_attachment_bytes=DEFAULT_MAX_ATTACHMENT_BYTES,
        unique_breadcrumbs=True,
    )

    def __init__(self, name: str, config: AdapterConfig):
        if not isinstance(config, LocalConfig):
            raise TypeError(f"LocalAdapter needs a LocalConfig, got {type(config).__name__}")
        super().__init__(name, config)
        self.config: LocalConfig = config
        # The status vocabulary and size limit are per instance, so the capabilities are too.
        self.capabilities = replace(
            type(self).capabilities,
            statuses=tuple(config.statuses),
            max_attachment_bytes=config.max_attachment_bytes,
        )
        self._tracker: LocalTracker | None = None
        self._opening = threading.Lock()
        self._people_url: str | None = None

    def attach(self, context: AdapterContext) -> None:
        # Hand-typed people get uuids from the instance's sharing URL, as tickets and comments
        # do: "alice" of two installations must not be one person to a partner (§4.4, §6.1).
        self._people_url = context.sharing_url

    @property
    def tracker(self) -> LocalTracker:
        """The tracker, opened (and created if missing) on first use."""
        with self._opening:
            if self._tracker is None:
                self._tracker = LocalTracker(self.config)
            return self._tracker

    def tracker_identity(self) -> str:
        return f"local/{self.tracker.identity()}"

    def check(self) -> list[CheckResult]:
        """Preflight without side effects: nothing is created, only looked at."""
        return [
            _check_database(self.config.path),
            _check_folder("attachments folder", self.config.attachments_folder),
        ]

    def changed_since(self, cursor: str | None) -> Iterator[ChangePage]:
        pages = self.tracker.changed_since(cursor)
        return (replace(page, tickets=[self._people(t) for t in page.tickets]) for page in pages)

    def get(self, local_id: str) -> TicketRecord | None:
        return self._people(self.tracker.get(local_id))

    def create(self, draft: TicketDraft) -> TicketRecord:
        # draft.original_id has no home here: the state store keeps the link to the twin.
        return self.tracker.create_ticket(
            draft.subject,
            status=draft.status,
            requester=draft.requester,
            tags=draft.tags or (),
            custom_fields=draft.custom_fields,
            shared_uuid=draft.shared_uuid,
            requested_at=draft.requested_at,
        )

    def update(self, local_id: str, changes: TicketChanges) -> None:
        if changes.is_empty():
            return
        self.tracker.update_ticket(
            local_id,
            subject=changes.subject,
            status=changes.status,
            tags=changes.tags,
            custom_fields=changes.custom_fields,
        )

    def add_comment(self, local_id: str, draft: CommentDraft) -> str:
        for upload in draft.attachments:  # refuse before streaming anything
            self._check_declared_size(upload)
        comment = self.tracker.add_comment(
            local_id,
            draft.body,
            public=draft.public,
            author=draft.author,
            html_body=draft.html_body,
            attachments=_opened_one_at_a_time(draft.attachments),
            shared_uuid=draft.shared_uuid,
            authored_at=draft.authored_at,
        )
        return comment.local_id

    def find_by_shared_uuid(self, shared_uuid: str) -> TicketRecord | None:
        return self._people(self.tracker.find_by_shared_uuid(shared_uuid))

    @overload
    def _people(self, record: TicketRecord) -> TicketRecord: ...
    @overload
    def _people(self, record: None) -> None: ...
    def _people(self, record: TicketRecord | None) -> TicketRecord | None:
        """The record with hand-typed people's uuids minted from this instance's sharing URL."""
        if record is None or self._people_url is None:
            return record
        return replace(
            record,
            requester=_installation_person(record.requester, self._people_url),
            comments=[
                replace(c, author=_installation_person(c.author, self._people_url))
                for c in record.comments
            ],
        )

    def edit_comment(self, local_id: str, comment_local_id: str, body: str) -> None:
        self.tracker.edit_comment(local_id, comment_local_id, body)

    def open_attachment(self, ref: AttachmentRef) -> BinaryIO:
        return self.tracker.open_attachment(ref.ref)

    def close(self) -> None:
        with self._opening:
            if self._tracker is not None:
                self._tracker.close()
                self._tracker = None

    def _check_declared_size(self, upload: AttachmentUpload) -> None:
        limit = self.config.max_attachment_bytes
        if limit is not None and upload.size is not None and upload.size > limit:
            raise _too_large(_safe_filename(upload.filename), limit)


# --- storage helpers ----------------------------------------------------------------------------

# Each step brings the schema from version N to N + 1 (``PRAGMA user_version``). Released steps are
# never edited: a change is a new step appended at the end, so every existing file can follow.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        # The global change counter behind cursors; one row, incremented by every change.
        """CREATE TABLE change_counter (
               only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
               last_change INTEGER NOT NULL
           )""",
        "INSERT INTO change_counter (only_row, last_change) VALUES (1, 0)",
        # AUTOINCREMENT: ids of deleted tickets are never reused, so "#12" can never come to name
        # a different ticket than the one a bridge linked to.
        """CREATE TABLE tickets (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               subject TEXT NOT NULL,
               status TEXT NOT NULL,
               tags TEXT NOT NULL DEFAULT '[]',
               custom_fields TEXT NOT NULL DEFAULT '{}',
               requester_uuid TEXT,
               requester_name TEXT,
               requester_role TEXT,
               requested_at TEXT NOT NULL,
               updated_at TEXT NOT NULL,
               change_seq INTEGER NOT NULL UNIQUE,
               shared_uuid TEXT
           )""",
        """CREATE UNIQUE INDEX tickets_by_shared_uuid ON tickets (shared_uuid)
           WHERE shared_uuid IS NOT NULL""",
        "CREATE INDEX tickets_by_status ON tickets (status)",
        """CREATE TABLE comments (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               ticket_id INTEGER NOT NULL REFERENCES tickets (id) ON DELETE CASCADE,
               body TEXT NOT NULL,
               html_body TEXT,
               public INTEGER NOT NULL CHECK (public IN (0, 1)),
               author_uuid TEXT,
               author_name TEXT,
               author_role TEXT,
               authored_at TEXT NOT NULL,
               shared_uuid TEXT
           )""",
        "CREATE INDEX comments_by_ticket ON comments (ticket_id, authored_at, id)",
        """CREATE INDEX comments_by_shared_uuid ON comments (shared_uuid)
           WHERE shared_uuid IS NOT NULL""",
        """CREATE TABLE attachments (
               id INTEGER PRIMARY KEY AUTOINCREMENT,
               comment_id INTEGER NOT NULL REFERENCES comments (id) ON DELETE CASCADE,
               filename TEXT NOT NULL,
               content_type TEXT,
               size INTEGER NOT NULL,
               stored_name TEXT NOT NULL UNIQUE
           )""",
        "CREATE INDEX attachments_by_comment ON attachments (comment_id)",
    ),
    (
        # The tracker's own identity, made once with the file: the bridge mints uuids from it,
        # so that a lost state store finds the same uuids (and the copies carrying them).
        """CREATE TABLE tracker_identity (
               only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
               identity TEXT NOT NULL
           )""",
        "INSERT INTO tracker_identity (only_row, identity) VALUES (1, lower(hex(randomblob(16))))",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)


def _open_database(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) and migrate the database, with the settings every connection
    needs: foreign keys are off by default in SQLite and must be turned on per connection."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with _sqlite_errors(path):
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly
        # what the code says, not what the sqlite3 module guesses.
        db = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA foreign_keys = ON")
            # WAL: readers (the CLI) never block the bridge's writer and vice versa.
            db.execute("PRAGMA journal_mode = WAL")
            _migrate(db, path)
        except BaseException:
            db.close()
            raise
    return db


def _migrate(db: sqlite3.Connection, path: Path) -> None:
    if _schema_version(db, path) == SCHEMA_VERSION:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        # Read again under the write lock: another process may have migrated meanwhile.
        version = _schema_version(db, path)
        for statements in _MIGRATIONS[version:]:
            for statement in statements:
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _schema_version(db: sqlite3.Connection, path: Path) -> int:
    version: int = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise LocalTrackerError(
            f"local tracker {path} has schema version {version}, newer than this nhd_bridge "
            f"understands ({SCHEMA_VERSION}); upgrade nhd_bridge"
        )
    return version


@contextmanager
def _sqlite_errors(path: Path) -> Iterator[None]:
    """Translate sqlite3 errors into the contract's: a busy database is worth a retry, anything
    else (not a database, read-only file, disk full) is not."""
    try:
        yield
    except sqlite3.OperationalError as error:
        if error.sqlite_errorcode & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            raise TransientError(
                f"local tracker {path} is busy (another process is writing); try again"
            ) from error
        raise PermanentError(f"local tracker {path}: {error}") from error
    except sqlite3.DatabaseError as error:
        raise PermanentError(f"local tracker {path}: {error}") from error


def _next_change(db: sqlite3.Connection) -> int:
    """Take the next number of the global change sequence (inside the caller's transaction)."""
    db.execute("UPDATE change_counter SET last_change = last_change + 1")
    return _last_change(db)


def _last_change(db: sqlite3.Connection) -> int:
    last: int = db.execute("SELECT last_change FROM change_counter").fetchone()[0]
    return last


def _touch(db: sqlite3.Connection, ticket_id: int) -> None:
    """Record that a ticket changed: a new change number and update time."""
    db.execute(
        "UPDATE tickets SET change_seq = ?, updated_at = ? WHERE id = ?",
        (_next_change(db), _timestamp_text(_now()), ticket_id),
    )


def _load_tickets(
    db: sqlite3.Connection, where: str, params: Sequence[Any], *, limit: int = -1
) -> list[tuple[int, TicketRecord]]:
    """Tickets matching ``where`` in change order, each with its change number, comments and
    attachments: three queries in all, however many tickets (a sync reads thousands).

    ``where`` is always a constant from this module, never user input; values go in ``params``.
    """
    # The same ticket selection feeds all three queries. Inside the caller's transaction they see
    # one snapshot, and change_seq is unique, so the selection (even with LIMIT) is the same each
    # time. SQLite's LIMIT -1 means no limit.
    chosen = f"SELECT id FROM tickets WHERE {where} ORDER BY change_seq LIMIT ?"
    selection = (*params, limit)
    tickets = db.execute(
        f"SELECT * FROM tickets WHERE {where} ORDER BY change_seq LIMIT ?", selection
    ).fetchall()
    if not tickets:
        return []
    attachments: dict[int, list[AttachmentRef]] = {}
    for row in db.execute(
        f"""SELECT a.* FROM attachments a JOIN comments c ON c.id = a.comment_id
            WHERE c.ticket_id IN ({chosen}) ORDER BY a.id""",
        selection,
    ):
        attachments.setdefault(row["comment_id"], []).append(_attachment_ref(row))
    comments: dict[int, list[CommentRecord]] = {}
    for row in db.execute(
        f"SELECT * FROM comments WHERE ticket_id IN ({chosen}) ORDER BY authored_at, id",
        selection,
    ):
        record = _comment_record(row, attachments.get(row["id"], []))
        comments.setdefault(row["ticket_id"], []).append(record)
    return [
        (row["change_seq"], _ticket_record(row, comments.get(row["id"], []))) for row in tickets
    ]


def _load_comment(db: sqlite3.Connection, comment_id: int | None) -> CommentRecord:
    row = db.execute("SELECT * FROM comments WHERE id = ?", (comment_id,)).fetchone()
    attachments = db.execute(
        "SELECT * FROM attachments WHERE comment_id = ? ORDER BY id", (comment_id,)
    )
    return _comment_record(row, [_attachment_ref(attachment) for attachment in attachments])


def _ticket_record(row: sqlite3.Row, comments: list[CommentRecord]) -> TicketRecord:
    fields = _Fields.from_row(row)
    return TicketRecord(
        local_id=str(row["id"]),
        human_id=f"#{row['id']}",
        subject=fields.subject,
        status=fields.status,
        tags=list(fields.tags),
        custom_fields=fields.custom_fields,
        requester=_actor(row, "requester"),
        requested_at=datetime.fromisoformat(row["requested_at"]),
        updated_at=datetime.fromisoformat(row["updated_at"]),
        comments=comments,
        shared_uuid=row["shared_uuid"],
    )


def _comment_record(row: sqlite3.Row, attachments: list[AttachmentRef]) -> CommentRecord:
    return CommentRecord(
        local_id=str(row["id"]),
        body=row["body"],
        html_body=row["html_body"],
        public=bool(row["public"]),
        author=_actor(row, "author"),
        authored_at=datetime.fromisoformat(row["authored_at"]),
        attachments=attachments,
        shared_uuid=row["shared_uuid"],
    )


def _attachment_ref(row: sqlite3.Row) -> AttachmentRef:
    return AttachmentRef(
        filename=row["filename"],
        ref=str(row["id"]),
        content_type=row["content_type"],
        size=row["size"],
    )


def _installation_person(actor: Actor | None, people_url: str) -> Actor | None:
    """A person typed in by hand (their uuid is ``local_person``'s) with the uuid of this
    installation's instance; everyone else (a partner's people) keeps their own uuid."""
    if actor is None or actor.uuid != nhd_uuid(LOCAL_PEOPLE_URL, "users", actor.name):
        return actor
    return actor.model_copy(update={"uuid": nhd_uuid(people_url, "users", actor.name)})


def _actor(row: sqlite3.Row, prefix: str) -> Actor | None:
    if row[f"{prefix}_uuid"] is None:
        return None
    return Actor(
        uuid=row[f"{prefix}_uuid"], name=row[f"{prefix}_name"] or "", role=row[f"{prefix}_role"]
    )


def _actor_columns(actor: Actor | None) -> tuple[str | None, str | None, str | None]:
    if actor is None:
        return (None, None, None)
    return (actor.uuid, actor.name, actor.role)


@dataclass(frozen=True)
class _Fields:
    """The editable fields of a ticket, decoded. Compared through :meth:`columns`, the encoded
    form, so that ``1`` and ``True`` (equal in Python, different in JSON) count as a change."""

    subject: str
    status: str
    tags: tuple[str, ...]
    custom_fields: dict[str, Any]

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> _Fields:
        return cls(
            subject=row["subject"],
            status=row["status"],
            tags=tuple(json.loads(row["tags"])),
            custom_fields=json.loads(row["custom_fields"]),
        )

    def columns(self) -> tuple[str, str, str, str]:
        return (
            self.subject,
            self.status,
            json.dumps(list(self.tags), ensure_ascii=False),
            _encode_custom_fields(self.custom_fields),
        )


@dataclass(frozen=True)
class _StoredFile:
    """An attachment copied to disk, waiting for its database row."""

    filename: str
    content_type: str | None
    size: int
    stored_name: str

    def columns(self) -> tuple[str, str | None, int, str]:
        return (self.filename, self.content_type, self.size, self.stored_name)


# --- value helpers ------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


def _timestamp_text(value: datetime) -> str:
    """UTC ISO text with fixed microseconds, so that text order is time order in SQL.
    Naive datetimes are taken as UTC, as everywhere in nhd_bridge."""
    return parse_timestamp(value).isoformat(timespec="microseconds")


def _as_int(ticket_id: object) -> int | None:
    """An id given as ``12``, ``"12"`` or ``"#12"``; ``None`` when it cannot be one of ours."""
    if isinstance(ticket_id, int) and not isinstance(ticket_id, bool):
        return ticket_id
    if isinstance(ticket_id, str) and re.fullmatch(r"#?[0-9]+", ticket_id.strip()):
        return int(ticket_id.strip().lstrip("#"))
    return None


def _as_human_id(ticket_id: object) -> str:
    number = _as_int(ticket_id)
    return f"#{number}" if number is not None else repr(ticket_id)


def _canonical_tags(tags: Iterable[str]) -> tuple[str, ...]:
    """Tags are a set: stored sorted and without repeats, so that a reordering is not a change."""
    if isinstance(tags, str):  # "urgent" would otherwise become the tags u, r, g, e, n, t
        raise LocalTrackerError(f"tags must be a list of strings, got the string {tags!r}")
    cleaned = set()
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip():
            raise LocalTrackerError(f"a tag must be a non-blank string, got {tag!r}")
        cleaned.add(tag.strip())
    return tuple(sorted(cleaned))


def _without_nulls(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in fields.items() if value is not None}


def _encode_custom_fields(fields: dict[str, Any]) -> str:
    """Canonical JSON (sorted keys); a value JSON cannot hold is refused, naming the field."""
    for name, value in fields.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise LocalTrackerError(
                f"custom field {name!r} cannot be stored: {error}; use text, numbers, booleans, "
                "lists or objects"
            ) from None
    return json.dumps(fields, sort_keys=True, ensure_ascii=False)


def _safe_filename(filename: str) -> str:
    """The name to show for an attachment: no folders (of either OS), no control characters."""
    name = PureWindowsPath(filename).name  # PureWindowsPath splits on both "/" and "\"
    name = "".join(char for char in name if char.isprintable()).strip()
    return name if name not in {"", ".", ".."} else "attachment"


class _TooLarge(Exception):
    """Raised mid-copy by :class:`_SizeLimitedWriter`; turned into a LocalTrackerError."""


class _SizeLimitedWriter:
    """Counts bytes on their way to disk, so an oversized file stops at the limit rather than
    after filling the disk with the whole thing."""

    def __init__(self, out: BinaryIO, limit: int | None):
        self.out = out
        self.limit = limit
        self.size = 0

    def write(self, chunk: bytes) -> int:
        self.size += len(chunk)
        if self.limit is not None and self.size > self.limit:
            raise _TooLarge
        return self.out.write(chunk)


def _too_large(filename: str, limit: int | None) -> LocalTrackerError:
    return LocalTrackerError(
        f"attachment {filename!r} is larger than this tracker's limit of {limit} bytes "
        "(max_attachment_bytes)"
    )


def _opened_one_at_a_time(uploads: Iterable[AttachmentUpload]) -> Iterator[NewAttachment]:
    """Open each upload only while it is being copied: with many attachments, the source is
    never asked to hold all its streams (HTTP responses, say) open at once."""
    for upload in uploads:
        with upload.open() as stream:
            yield upload.filename, upload.content_type, stream


def _remove_files(folder: Path, stored_names: Iterable[str]) -> None:
    for stored_name in stored_names:
        with suppress(OSError):  # best effort: an orphaned file is garbage, not damage
            (folder / stored_name).unlink(missing_ok=True)


# --- preflight helpers --------------------------------------------------------------------------


def _check_database(path: Path) -> CheckResult:
    name = "database"
    if path.is_dir():
        return CheckResult(
            name, False, f"{path} is a folder", hint="set path to a file, e.g. tracker.db"
        )
    if not path.exists():
        return _check_creatable(name, path)
    # SQLite writes its -wal and -shm files beside the database: the folder must be writable too.
    if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
        return CheckResult(
            name,
            False,
            f"{path} or its folder is not writable",
            hint="give the bridge's user write access to both",
        )
    try:
        # Read-only: a preflight looks, it does not migrate or create anything.
        uri = f"{path.resolve().as_uri()}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True)) as db:
            version = db.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as error:
        return CheckResult(
            name, False, f"{path}: {error}", hint="point path at a local tracker database"
        )
    if version > SCHEMA_VERSION:
        return CheckResult(
            name,
            False,
            f"{path} has schema version {version}, newer than this nhd_bridge ({SCHEMA_VERSION})",
            hint="upgrade nhd_bridge",
        )
    return CheckResult(name, True, f"{path} is writable (schema version {version})")


def _check_folder(name: str, path: Path) -> CheckResult:
    if path.exists() and not path.is_dir():
        return CheckResult(name, False, f"{path} is a file", hint="set attachments_dir to a folder")
    if not path.exists():
        return _check_creatable(name, path)
    if not os.access(path, os.W_OK | os.X_OK):
        return CheckResult(
            name, False, f"{path} is not writable", hint="give the bridge's user write access"
        )
    return CheckResult(name, True, f"{path} is writable")


def _check_creatable(name: str, path: Path) -> CheckResult:
    """A missing file or folder is fine if its nearest existing ancestor lets us create it."""
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if ancestor.is_dir() and os.access(ancestor, os.W_OK | os.X_OK):
        return CheckResult(name, True, f"{path} will be created on first use")
    return CheckResult(
        name,
        False,
        f"{path} does not exist and cannot be created under {ancestor}",
        hint=f"create it, or give the bridge's user write access to {ancestor}",
    )
