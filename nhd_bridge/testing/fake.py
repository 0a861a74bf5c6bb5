"""An in-memory tracker and its adapter: the seam that lets engine tests run without any I/O.

What httpx's ``MockTransport`` is to an HTTP client, :class:`FakeAdapter` is to the engine: a
complete implementation of the adapter contract over plain Python data, so that a test can set up
two trackers, run an agreement, and look at what arrived, in milliseconds.

Two sides of one tracker:

- :class:`FakeTracker` is the data, and the methods a test uses to act *as a person in that
  tracker* (open a ticket, write a comment, close it) and to inject faults into the adapter side.
- :class:`FakeAdapter` is what the engine talks to. It is built from config like every adapter
  (``FakeAdapter(name, FakeConfig(...))``) and finds its data with ``FakeTracker.named(name)``, so a
  test and an engine that builds adapters itself share the same tracker::

      FakeTracker.reset_all()
      alpha = FakeTracker.named("alpha")
      ticket_id = alpha.create_ticket("Printer on fire", tags=["hardware"])
      run_the_bridge(config)                          # builds FakeAdapter("alpha", ...) inside
      [copy] = FakeTracker.named("beta").tickets()
      assert copy.subject == "Printer on fire"

The registry of named trackers lives in this process only: a bridge run in a subprocess does not
see it.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import itertools
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, BinaryIO, ClassVar, Literal, TypeVar

from pydantic import Field, SecretStr

from nhd_bridge.core.adapter import (
    Adapter,
    AdapterConfig,
    AttachmentRef,
    AttachmentUpload,
    Capabilities,
    ChangePage,
    CheckResult,
    CommentDraft,
    CommentRecord,
    NotSupported,
    PermanentError,
    TicketChanges,
    TicketDraft,
    TicketRecord,
    TransientError,
)
from nhd_bridge.core.hookspecs import hookimpl
from nhd_bridge.core.model import Actor

__all__ = [
    "FAULTABLE_CALLS",
    "FakeAdapter",
    "FakeConfig",
    "FakeTracker",
    "FaultKind",
    "FaultPlan",
    "Personality",
    "SimulatedCrash",
    "nhd_register_adapters",
]

DEFAULT_STATUS = "open"
_T = TypeVar("_T")

#: Adapter calls a fault can be injected into. ``changed_since`` fails when called, before any
#: page; ``changed_since_page`` fails when one page is fetched, which is how a test makes a read
#: break halfway through.
FAULTABLE_CALLS: frozenset[str] = frozenset(
    {
        "add_comment",
        "changed_since",
        "changed_since_page",
        "check",
        "create",
        "edit_comment",
        "find_by_shared_uuid",
        "get",
        "open_attachment",
        "update",
    }
)


class FakeConfig(AdapterConfig):
    """Configuration of a fake tracker: which capabilities it has, and how it pages.

    ``token`` holds no meaning; it is there so that the contract suite's check that secrets stay
    out of ``repr()`` has a secret to look for.
    """

    private_comments: bool = True
    attachments: bool = True
    tags: bool = True
    custom_fields: bool = True
    comment_author: bool = True
    edit_comments: bool = True
    statuses: list[str] | None = Field(default=None, min_length=1)
    page_size: int = Field(default=50, ge=1)
    max_attachment_bytes: int | None = Field(default=None, ge=0)
    #: Refuse a create whose breadcrumb a ticket already carries, as a tracker with a unique
    #: index on it does (the local tracker). Off by default: a SaaS tracker accepts the second.
    unique_breadcrumbs: bool = False
    token: SecretStr | None = None

    def to_capabilities(self) -> Capabilities:
        return Capabilities(
            private_comments=self.private_comments,
            attachments=self.attachments,
            tags=self.tags,
            custom_fields=self.custom_fields,
            comment_author=self.comment_author,
            edit_comments=self.edit_comments,
            statuses=tuple(self.statuses) if self.statuses is not None else None,
            max_attachment_bytes=self.max_attachment_bytes,
            unique_breadcrumbs=self.unique_breadcrumbs,
        )


# --- personalities and planned faults -----------------------------------------------------------


@dataclass(frozen=True)
class Personality:
    """How a real tracker misbehaves, one independent switch each; the default is the tidy fake
    every older test relies on. ``nhd_bridge.testing.personalities`` holds presets modelled on
    what Redmine, Roundup, Jira and RT showed.

    - ``idempotent_comment_writes``: a comment write carrying a breadcrumb that the ticket already
      holds returns that comment instead of adding one (an idempotency key). Off, as on every real
      tracker seen: each request that reaches the tracker appends a comment.
    - ``blind_retries``: the *adapter* resends a write that failed with a :class:`TransientError`
      this many times, as a generic HTTP client with retries does (``rest_http`` before issue 8).
      With a lost answer and non-idempotent comments, that is how one comment becomes two.
    - ``two_step_comments``: a comment is a message created first and linked to the ticket in a
      second write (Roundup's ``POST msg`` then ``PATCH issue``). A crash or a lost answer
      between the two leaves an unlinked message carrying the breadcrumb
      (:meth:`FakeTracker.unlinked_comments`); the fake's adapter then links that message
      instead of writing another, as the REST adapter does over Roundup.
    - ``reuses_ids``: a new ticket takes the id after the highest one left, so the id of a deleted
      newest ticket is handed out again (Redmine on SQLite).
    - ``offset_pages_by_update``: ``changed_since`` lists tickets ordered by their last change and
      fetches offset pages, each evaluated when fetched; a ticket changed during the read moves to
      the end and every later one shifts up a place, so one is never listed (Redmine's
      ``sort=updated_on`` with ``offset``).
    - ``ignored_on_create``: fields a create accepts and drops (``status``: Redmine and Jira put a
      new ticket in the workflow's first status whatever was asked).
    - ``private_comments``: off, the tracker has no private comments at all (Roundup): the adapter's
      capabilities say so and a person cannot write one.
    - ``comment_edits``: off, comments cannot be edited (RT transactions, NHD comments).
    - ``transitions``: status changes only along these edges (``{from: (to, ...)}``, Jira); the
      adapter walks the shortest path, one write per hop, and refuses an unreachable status.
    """

    idempotent_comment_writes: bool = False
    blind_retries: int = 0
    two_step_comments: bool = False
    reuses_ids: bool = False
    offset_pages_by_update: bool = False
    ignored_on_create: frozenset[str] = frozenset()
    private_comments: bool = True
    comment_edits: bool = True
    transitions: Mapping[str, tuple[str, ...]] | None = None

    def __post_init__(self) -> None:
        unknown = set(self.ignored_on_create) - {"status", "tags", "custom_fields"}
        if unknown:
            raise ValueError(
                f"ignored_on_create names {sorted(unknown)}; a create can ignore only status, "
                "tags or custom_fields"
            )
        if self.blind_retries < 0:
            raise ValueError(f"blind_retries must be 0 or more, not {self.blind_retries}")


#: What a planned fault does. ``rate_limit``: 429, a :class:`TransientError` with ``retry_after``;
#: ``server_error``: a 5xx before anything happened; ``lost_answer``: the write happened and the
#: caller gets a :class:`TransientError` (a read timeout, a 502 from a proxy after the server
#: acted); ``crash_before`` / ``crash_after``: the process dies (:class:`SimulatedCrash`) before
#: the write, or after it happened and before anyone heard of it.
FaultKind = Literal["rate_limit", "server_error", "lost_answer", "crash_before", "crash_after"]
FAULT_KINDS: tuple[FaultKind, ...] = (
    "rate_limit",
    "server_error",
    "lost_answer",
    "crash_before",
    "crash_after",
)


class SimulatedCrash(BaseException):
    """The bridge process died here. A ``BaseException`` so that no ``except Exception`` or
    ``except AdapterError`` in the engine can swallow it: like ``SIGKILL``, it ends the run; the
    test then throws away every in-memory object and reopens the state store from its file."""


@dataclass
class FaultPlan:
    """Faults by position, counted from when the plan is set (1-based).

    ``calls[n]`` hits the n-th adapter call of any kind, read or write (only ``rate_limit`` and
    ``server_error`` make sense there); ``writes[k]`` hits the k-th write boundary: a create, an
    update, one transition hop, a comment write (both steps with ``two_step_comments``), a comment
    edit. Each planned fault fires once.
    """

    calls: dict[int, FaultKind] = field(default_factory=dict)
    writes: dict[int, FaultKind] = field(default_factory=dict)
    retry_after: float = 2.0

    def __post_init__(self) -> None:
        for where, plan in (("calls", self.calls), ("writes", self.writes)):
            for position, kind in plan.items():
                if position < 1 or kind not in FAULT_KINDS:
                    raise ValueError(
                        f"FaultPlan.{where}[{position}] = {kind!r}: positions start at 1 and a "
                        f"fault is one of {', '.join(FAULT_KINDS)}"
                    )
        for position, kind in self.calls.items():
            if kind not in ("rate_limit", "server_error"):
                raise ValueError(
                    f"FaultPlan.calls[{position}] = {kind!r}: a fault on any call is rate_limit "
                    "or server_error; put lost answers and crashes in writes"
                )


# --- the tracker --------------------------------------------------------------------------------


class FakeTracker:
    """The data of one in-memory tracker, shared by name between adapters and tests.

    Every change to a ticket, by a person or through the adapter, takes the next number of the
    tracker's change counter; that number is the ticket's change sequence and the adapter's cursor
    is the last sequence a reader has seen. ``clock`` gives ``updated_at`` and ``authored_at``
    times; replace it to make times predictable.

    ``calls`` counts the adapter calls made on this tracker by method name (failed ones included,
    like requests reaching a server), plus ``changed_since_page`` per page fetched and ``close``.
    """

    _registry: ClassVar[dict[str, FakeTracker]] = {}
    _registry_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, name: str = "fake", *, clock: Callable[[], datetime] | None = None):
        self.name = name
        self.clock: Callable[[], datetime] = clock or _utc_now
        self.calls: Counter[str] = Counter()
        self._tickets: dict[str, _StoredTicket] = {}
        self._attachments: dict[str, _StoredAttachment] = {}
        self._faults: list[_Fault] = []
        self._change_counter = 0
        self._ticket_numbers = itertools.count(1)
        self._comment_numbers = itertools.count(1)
        self._attachment_numbers = itertools.count(1)
        self.personality = Personality()
        self._fault_plan = FaultPlan()
        self._planned_calls = 0
        self._planned_writes = 0
        self._unlinked: list[tuple[str, _StoredComment]] = []
        self._read_hooks: deque[Callable[[], None]] = deque()
        # The engine may write from several threads; a re-entrant lock keeps each change whole.
        self._lock = threading.RLock()

    def __repr__(self) -> str:
        return f"<FakeTracker {self.name!r} tickets={len(self._tickets)}>"

    # --- shared by name -------------------------------------------------------------------------

    @classmethod
    def named(cls, name: str) -> FakeTracker:
        """The tracker called ``name``, created empty on first use."""
        with cls._registry_lock:
            if name not in cls._registry:
                cls._registry[name] = cls(name)
            return cls._registry[name]

    @classmethod
    def reset_all(cls) -> None:
        """Forget every named tracker; adapters built before keep their (now private) tracker."""
        with cls._registry_lock:
            cls._registry.clear()

    # --- acting as a person in this tracker -----------------------------------------------------

    def create_ticket(
        self,
        subject: str,
        status: str = DEFAULT_STATUS,
        requester: Actor | None = None,
        tags: Iterable[str] = (),
        custom_fields: Mapping[str, Any] | None = None,
        comments: Iterable[str] = (),
    ) -> str:
        """Open a ticket as its requester; each of ``comments`` is a public comment by them."""
        with self._lock:
            ticket = self._insert_ticket(
                subject=subject,
                status=status,
                requester=requester,
                requested_at=None,
                tags=list(tags),
                custom_fields=dict(custom_fields or {}),
                shared_uuid=None,
            )
            for body in comments:
                self.add_comment(ticket.local_id, body, public=True, author=requester)
            return ticket.local_id

    def add_comment(
        self,
        local_id: str,
        body: str,
        public: bool = True,
        author: Actor | None = None,
        *,
        attachments: Mapping[str, bytes] | None = None,
    ) -> str:
        """Write a comment, with files given as ``{filename: content}``; returns its id."""
        if not public and not self.personality.private_comments:
            raise ValueError(f"fake tracker {self.name!r} has no private comments")
        with self._lock:
            ticket = self._stored(local_id)
            files = [
                self._store_attachment(filename, bytes(content), None)
                for filename, content in (attachments or {}).items()
            ]
            comment = self._insert_comment(
                ticket,
                body=body,
                public=public,
                author=author,
                authored_at=None,
                html_body=None,
                attachments=files,
                shared_uuid=None,
            )
            return comment.local_id

    def edit_comment(self, local_id: str, comment_id: str, body: str) -> None:
        with self._lock:
            ticket = self._stored(local_id)
            ticket.comment(comment_id).body = body
            self._touch(ticket)

    def set_subject(self, local_id: str, subject: str) -> None:
        self._change(local_id, subject=subject)

    def set_status(self, local_id: str, status: str) -> None:
        self._change(local_id, status=status)

    def set_field(self, local_id: str, name: str, value: Any) -> None:
        """Set one custom field (by the tracker's own field name)."""
        self._change(local_id, custom_fields={name: value})

    def set_tags(self, local_id: str, tags: Iterable[str]) -> None:
        self._change(local_id, tags=list(tags))

    def delete_ticket(self, local_id: str) -> None:
        """Delete a ticket and its files: the adapter's ``get`` returns ``None`` for it after."""
        with self._lock:
            ticket = self._tickets.pop(self._stored(local_id).local_id)
            for comment in ticket.comments:
                for attachment in comment.attachments:
                    self._attachments.pop(attachment.ref, None)

    # --- looking at this tracker ----------------------------------------------------------------

    def ticket(self, local_id: str) -> TicketRecord:
        """A copy of one ticket as stored; ``KeyError`` if there is no such ticket."""
        with self._lock:
            return self._stored(local_id).to_record()

    def tickets(self) -> list[TicketRecord]:
        """Copies of every ticket, oldest first."""
        with self._lock:
            return [ticket.to_record() for ticket in self._tickets.values()]

    def attachment(self, ref: str) -> bytes:
        """The content of a stored file, by the ``ref`` of its :class:`AttachmentRef`."""
        with self._lock:
            if ref not in self._attachments:
                raise KeyError(f"fake tracker {self.name!r} holds no attachment {ref!r}")
            return self._attachments[ref].content

    def unlinked_comments(self) -> list[tuple[str, CommentRecord]]:
        """``(ticket id, comment)`` of messages a two-step comment write created and never linked:
        invisible in the ticket, but they carry the breadcrumb (``two_step_comments``)."""
        with self._lock:
            return [(ticket_id, comment.to_record()) for ticket_id, comment in self._unlinked]

    @property
    def cursor(self) -> str:
        """The cursor of a reader who has seen every change made so far."""
        return str(self._change_counter)

    # --- fault injection ------------------------------------------------------------------------

    def fail_next(
        self,
        method_name: str,
        error: Exception,
        times: int | None = 1,
        when: Callable[..., bool] | None = None,
    ) -> None:
        """Make the next ``times`` matching adapter calls raise ``error`` without doing anything.

        ``when`` is called with the call's arguments by name (``when=lambda local_id, **_:
        local_id == "3"``) and a call matches only if it returns true. ``times=None`` fails every
        matching call until :meth:`clear_faults`.
        """
        self._add_fault(method_name, error, times, when, after=False)

    def fail_after(
        self,
        method_name: str,
        error: Exception,
        times: int | None = 1,
        when: Callable[..., bool] | None = None,
    ) -> None:
        """Like :meth:`fail_next`, but the call does its work first and raises after: the write
        reached the tracker and the caller never heard, as in a crash or a lost response."""
        self._add_fault(method_name, error, times, when, after=True)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
            self._fault_plan = FaultPlan()
            self._read_hooks.clear()

    def plan_faults(self, plan: FaultPlan) -> None:
        """Replace the planned faults; call and write positions count from now."""
        with self._lock:
            self._fault_plan = copy.deepcopy(plan)
            self._planned_calls = 0
            self._planned_writes = 0

    def during_next_read(self, action: Callable[[], None]) -> None:
        """Run ``action`` (a person changing a ticket) between two pages of the next paged read
        that has a second page: the "ticket updated while the bridge reads" case."""
        with self._lock:
            self._read_hooks.append(action)

    @contextmanager
    def _write_step(self, step: str) -> Iterator[None]:
        """One write boundary: a planned fault may stop it before, or lose its answer after."""
        with self._lock:
            self._planned_writes += 1
            kind = self._fault_plan.writes.pop(self._planned_writes, None)
        if kind in ("rate_limit", "server_error", "crash_before"):
            raise self._planned_error(kind, step)
        yield
        if kind in ("lost_answer", "crash_after"):
            raise self._planned_error(kind, step)

    def _planned_error(self, kind: str, call: str) -> BaseException:
        if kind == "rate_limit":
            retry_after = self._fault_plan.retry_after
            return TransientError(
                f"fake tracker {self.name!r}: 429 Too Many Requests on {call} "
                f"(Retry-After: {retry_after:g})",
                retry_after=retry_after,
            )
        if kind == "server_error":
            return TransientError(f"fake tracker {self.name!r}: 503 on {call}")
        if kind == "lost_answer":
            return TransientError(
                f"fake tracker {self.name!r}: no answer to {call} (read timed out); the tracker "
                "may have acted"
            )
        return SimulatedCrash(f"simulated crash at {call} ({kind}) on {self.name!r}")

    def _add_fault(
        self,
        method_name: str,
        error: Exception,
        times: int | None,
        when: Callable[..., bool] | None,
        *,
        after: bool,
    ) -> None:
        if method_name not in FAULTABLE_CALLS:
            known = ", ".join(sorted(FAULTABLE_CALLS))
            raise ValueError(f"no adapter call {method_name!r} to fail; use one of {known}")
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 (or None for always), not {times}")
        with self._lock:
            self._faults.append(_Fault(method_name, error, times, when, after))

    def _before(self, method_name: str, **arguments: Any) -> None:
        """Count an adapter call and raise a fault injected to happen before it."""
        with self._lock:
            self.calls[method_name] += 1
            error = self._take_fault(method_name, arguments, after=False)
            self._planned_calls += 1
            kind = self._fault_plan.calls.pop(self._planned_calls, None)
        if error is not None:
            raise error
        if kind is not None:
            raise self._planned_error(kind, method_name)

    def _after(self, method_name: str, **arguments: Any) -> None:
        """Raise a fault injected to happen once the call has done its work."""
        with self._lock:
            error = self._take_fault(method_name, arguments, after=True)
        if error is not None:
            raise error

    def _take_fault(
        self, method_name: str, arguments: dict[str, Any], *, after: bool
    ) -> Exception | None:
        for fault in self._faults:
            if fault.after is after and fault.matches(method_name, arguments):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                return fault.error
        return None

    # --- storage, shared by both sides ----------------------------------------------------------

    def _stored(self, local_id: str) -> _StoredTicket:
        try:
            return self._tickets[local_id]
        except KeyError:
            raise KeyError(f"fake tracker {self.name!r} has no ticket {local_id!r}") from None

    def _find(self, local_id: str) -> _StoredTicket | None:
        return self._tickets.get(local_id)

    def _carrying(self, shared_uuid: str) -> _StoredTicket | None:
        """The ticket carrying this breadcrumb; the caller holds the lock."""
        return next((t for t in self._tickets.values() if t.shared_uuid == shared_uuid), None)

    def _insert_ticket(
        self,
        *,
        subject: str,
        status: str,
        requester: Actor | None,
        requested_at: datetime | None,
        tags: list[str],
        custom_fields: dict[str, Any],
        shared_uuid: str | None,
    ) -> _StoredTicket:
        if self.personality.reuses_ids:
            # The highest id left plus one, as SQLite hands out rowids without AUTOINCREMENT.
            number = max((int(local_id) for local_id in self._tickets), default=0) + 1
        else:
            number = next(self._ticket_numbers)
        now = self.clock()
        ticket = _StoredTicket(
            local_id=str(number),
            human_id=f"#{number}",
            subject=subject,
            status=status,
            requester=_copy_actor(requester),
            requested_at=requested_at or now,
            tags=list(tags),
            custom_fields=copy.deepcopy(custom_fields),
            shared_uuid=shared_uuid,
            updated_at=now,
        )
        self._tickets[ticket.local_id] = ticket
        self._touch(ticket)
        return ticket

    def _insert_comment(
        self,
        ticket: _StoredTicket,
        *,
        body: str,
        public: bool,
        author: Actor | None,
        authored_at: datetime | None,
        html_body: str | None,
        attachments: list[_StoredAttachment],
        shared_uuid: str | None,
    ) -> _StoredComment:
        comment = self._new_comment(
            body=body,
            public=public,
            author=author,
            authored_at=authored_at,
            html_body=html_body,
            attachments=attachments,
            shared_uuid=shared_uuid,
        )
        ticket.comments.append(comment)
        self._touch(ticket)
        return comment

    def _new_comment(
        self,
        *,
        body: str,
        public: bool,
        author: Actor | None,
        authored_at: datetime | None,
        html_body: str | None,
        attachments: list[_StoredAttachment],
        shared_uuid: str | None,
    ) -> _StoredComment:
        return _StoredComment(
            local_id=f"c{next(self._comment_numbers)}",
            body=body,
            public=public,
            author=_copy_actor(author),
            authored_at=authored_at or self.clock(),
            html_body=html_body,
            attachments=attachments,
            shared_uuid=shared_uuid,
        )

    def _store_attachment(
        self, filename: str, content: bytes, content_type: str | None
    ) -> _StoredAttachment:
        attachment = _StoredAttachment(
            ref=f"a{next(self._attachment_numbers)}",
            filename=filename,
            content=content,
            content_type=content_type,
        )
        self._attachments[attachment.ref] = attachment
        return attachment

    def _change(
        self,
        local_id: str,
        *,
        subject: str | None = None,
        status: str | None = None,
        tags: list[str] | None = None,
        custom_fields: Mapping[str, Any] | None = None,
    ) -> None:
        with self._lock:
            ticket = self._stored(local_id)
            if subject is not None:
                ticket.subject = subject
            if status is not None:
                ticket.status = status
            if tags is not None:
                ticket.tags = list(tags)
            if custom_fields:
                ticket.custom_fields.update(copy.deepcopy(dict(custom_fields)))
            self._touch(ticket)

    def _touch(self, ticket: _StoredTicket) -> None:
        self._change_counter += 1
        ticket.change_seq = self._change_counter
        ticket.updated_at = self.clock()

    def _changed_after(self, change_seq: int, limit: int | None) -> list[_StoredTicket]:
        changed = (ticket for ticket in self._tickets.values() if ticket.change_seq > change_seq)
        return sorted(changed, key=lambda ticket: ticket.change_seq)[:limit]

    def _between_pages(self) -> None:
        with self._lock:
            action = self._read_hooks.popleft() if self._read_hooks else None
        if action is not None:
            action()


# --- the adapter --------------------------------------------------------------------------------


class FakeAdapter(Adapter):
    """The adapter over a :class:`FakeTracker`: the whole contract, no I/O.

    It is as strict as a picky tracker, so that engine bugs surface: writing what the capabilities
    exclude (a private comment where there are none, tags, custom fields, files, a status outside
    ``statuses``) raises :class:`PermanentError` instead of being silently dropped.
    """

    kind = "fake"
    config_model = FakeConfig

    def __init__(
        self, name: str, config: FakeConfig | None = None, *, tracker: FakeTracker | None = None
    ):
        config = config if config is not None else FakeConfig()
        if not isinstance(config, FakeConfig):
            raise TypeError(f"FakeAdapter needs a FakeConfig, got {type(config).__name__}")
        super().__init__(name, config)
        self.config: FakeConfig = config
        # Per instance, unlike real adapters: one test may want two fakes that differ.
        self.tracker = tracker if tracker is not None else FakeTracker.named(name)
        personality = self.tracker.personality
        capabilities = config.to_capabilities()
        self.capabilities = dataclasses.replace(  # type: ignore[misc]
            capabilities,
            private_comments=capabilities.private_comments and personality.private_comments,
            edit_comments=capabilities.edit_comments and personality.comment_edits,
            transitions=personality.transitions is not None,
        )
        self.closed = False

    def check(self) -> list[CheckResult]:
        self.tracker._before("check")
        results = [
            CheckResult(
                name="tracker reachable",
                ok=True,
                detail=f"fake tracker {self.tracker.name!r} holds {len(self.tracker.tickets())}"
                " tickets",
            )
        ]
        self.tracker._after("check")
        return results

    def changed_since(self, cursor: str | None) -> Iterator[ChangePage]:
        # Not a generator itself, so that a fault on the call surfaces when it is made.
        self.tracker._before("changed_since", cursor=cursor)
        after = self._parse_cursor(cursor)
        self.tracker._after("changed_since", cursor=cursor)
        return self._pages_after(after)

    def get(self, local_id: str) -> TicketRecord | None:
        self.tracker._before("get", local_id=local_id)
        with self.tracker._lock:
            ticket = self.tracker._find(local_id)
            record = ticket.to_record() if ticket is not None else None
        self.tracker._after("get", local_id=local_id)
        return record

    def create(self, draft: TicketDraft) -> TicketRecord:
        return self._retrying(lambda: self._create(draft))

    def _create(self, draft: TicketDraft) -> TicketRecord:
        self.tracker._before("create", draft=draft)
        tags = self._accepted_tags(draft.tags)
        custom_fields = self._accepted_custom_fields(draft.custom_fields)
        status = self._accepted_status(draft.status) if draft.status else self._initial_status()
        ignored = self.tracker.personality.ignored_on_create
        with self.tracker._write_step("create"), self.tracker._lock:
            if draft.shared_uuid is not None and self.capabilities.unique_breadcrumbs:
                self._refuse_duplicate(draft.shared_uuid)
            ticket = self.tracker._insert_ticket(
                subject=draft.subject,
                status=self._initial_status() if "status" in ignored else status,
                requester=draft.requester,
                requested_at=draft.requested_at,
                tags=[] if "tags" in ignored else tags or [],
                custom_fields={} if "custom_fields" in ignored else custom_fields or {},
                shared_uuid=draft.shared_uuid,
            )
            record = ticket.to_record()
        self.tracker._after("create", draft=draft)
        return record

    def _refuse_duplicate(self, shared_uuid: str) -> None:
        holder = self.tracker._carrying(shared_uuid)
        if holder is not None:
            raise PermanentError(
                f"fake tracker {self.name!r}: ticket {holder.local_id} already carries shared uuid "
                f"{shared_uuid}; creating another would duplicate it (unique_breadcrumbs: true)"
            )

    def update(self, local_id: str, changes: TicketChanges) -> None:
        self._retrying(lambda: self._update(local_id, changes))

    def _update(self, local_id: str, changes: TicketChanges) -> None:
        self.tracker._before("update", local_id=local_id, changes=changes)
        ticket = self._existing(local_id)
        status = self._accepted_status(changes.status) if changes.status is not None else None
        tags = self._accepted_tags(changes.tags)
        custom_fields = self._accepted_custom_fields(changes.custom_fields)
        hops = self._transition_path(ticket.status, status)
        if hops is not None:
            for hop in hops:
                with self.tracker._write_step("update: transition"):
                    self.tracker._change(local_id, status=hop)
            status = None
        rest = TicketChanges(
            subject=changes.subject, status=status, tags=tags, custom_fields=custom_fields
        )
        if not rest.is_empty():
            with self.tracker._write_step("update"):
                self.tracker._change(
                    local_id,
                    subject=changes.subject,
                    status=status,
                    tags=tags,
                    custom_fields=custom_fields,
                )
        self.tracker._after("update", local_id=local_id, changes=changes)

    def add_comment(self, local_id: str, draft: CommentDraft) -> str:
        return self._retrying(lambda: self._add_comment(local_id, draft))

    def _add_comment(self, local_id: str, draft: CommentDraft) -> str:
        self.tracker._before("add_comment", local_id=local_id, draft=draft)
        ticket = self._existing(local_id)
        if not draft.public and not self.capabilities.private_comments:
            raise PermanentError(
                f"fake tracker {self.name!r} has no private comments (private_comments: false); "
                "the engine must never send one here"
            )
        personality = self.tracker.personality
        if personality.idempotent_comment_writes and draft.shared_uuid is not None:
            for existing in ticket.comments:
                if existing.shared_uuid == draft.shared_uuid:
                    self.tracker._after("add_comment", local_id=local_id, draft=draft)
                    return existing.local_id
        files = self._read_uploads(draft.attachments)
        arguments = {
            "body": draft.body,
            "public": draft.public,
            # Without comment_author the tracker posts as the integration user, as Jira
            # does without "act as"; the engine has written the author into the body.
            "author": draft.author if self.capabilities.comment_author else None,
            "authored_at": draft.authored_at,
            "html_body": draft.html_body,
            "shared_uuid": draft.shared_uuid,
        }
        if personality.two_step_comments:
            comment = self._two_step_comment(local_id, files, arguments)
        else:
            with self.tracker._write_step("add_comment"), self.tracker._lock:
                comment = self.tracker._insert_comment(
                    self.tracker._stored(local_id),
                    attachments=self._stored_files(files),
                    **arguments,
                )
        self.tracker._after("add_comment", local_id=local_id, draft=draft)
        return comment.local_id

    def _two_step_comment(
        self,
        local_id: str,
        files: list[tuple[AttachmentUpload, bytes]],
        arguments: dict[str, Any],
    ) -> _StoredComment:
        tracker = self.tracker
        # As the REST adapter does over Roundup (find_comment_by_uuid): a message a crash or a
        # lost answer left unlinked carries the breadcrumb, and is linked instead of written again.
        message = self._unlinked_message(local_id, arguments["shared_uuid"])
        if message is None:
            with tracker._write_step("add_comment: create message"), tracker._lock:
                message = tracker._new_comment(attachments=self._stored_files(files), **arguments)
                tracker._unlinked.append((local_id, message))
        with tracker._write_step("add_comment: link message"), tracker._lock:
            tracker._unlinked.remove((local_id, message))
            ticket = tracker._stored(local_id)
            ticket.comments.append(message)
            tracker._touch(ticket)
        return message

    def _unlinked_message(self, local_id: str, shared_uuid: str | None) -> _StoredComment | None:
        if shared_uuid is None:
            return None
        with self.tracker._lock:
            return next(
                (
                    message
                    for on, message in self.tracker._unlinked
                    if on == local_id and message.shared_uuid == shared_uuid
                ),
                None,
            )

    def edit_comment(self, local_id: str, comment_local_id: str, body: str) -> None:
        self._retrying(lambda: self._edit_comment(local_id, comment_local_id, body))

    def _edit_comment(self, local_id: str, comment_local_id: str, body: str) -> None:
        arguments = {"local_id": local_id, "comment_local_id": comment_local_id, "body": body}
        self.tracker._before("edit_comment", **arguments)
        if not self.capabilities.edit_comments:
            raise NotSupported(f"fake tracker {self.name!r} cannot edit comments")
        ticket = self._existing(local_id)
        if not any(comment.local_id == comment_local_id for comment in ticket.comments):
            raise PermanentError(f"ticket {local_id!r} has no comment {comment_local_id!r}")
        with self.tracker._write_step("edit_comment"):
            self.tracker.edit_comment(local_id, comment_local_id, body)
        self.tracker._after("edit_comment", **arguments)

    def tracker_identity(self) -> str:
        return f"fake/{self.tracker.name}"

    def find_by_shared_uuid(self, shared_uuid: str) -> TicketRecord | None:
        self.tracker._before("find_by_shared_uuid", shared_uuid=shared_uuid)
        with self.tracker._lock:
            found = self.tracker._carrying(shared_uuid)
            record = found.to_record() if found is not None else None
        self.tracker._after("find_by_shared_uuid", shared_uuid=shared_uuid)
        return record

    def open_attachment(self, ref: AttachmentRef) -> AbstractContextManager[BinaryIO]:
        self.tracker._before("open_attachment", ref=ref)
        if not self.capabilities.attachments:
            raise NotSupported(f"fake tracker {self.name!r} holds no attachments")
        try:
            content = self.tracker.attachment(ref.ref)
        except KeyError as error:
            raise PermanentError(str(error.args[0])) from None
        self.tracker._after("open_attachment", ref=ref)
        return io.BytesIO(content)

    def close(self) -> None:
        self.tracker.calls["close"] += 1
        self.closed = True

    # --- helpers --------------------------------------------------------------------------------

    def _pages_after(self, change_seq: int) -> Iterator[ChangePage]:
        if self.tracker.personality.offset_pages_by_update:
            yield from self._offset_pages_after(change_seq)
            return
        # Keyset paging on the change sequence: a ticket changed while pages are being read moves
        # behind the reader and is met again, never skipped.
        page_size = self.config.page_size
        pages = 0
        while True:
            if pages:
                self.tracker._between_pages()
            self.tracker._before("changed_since_page", cursor=str(change_seq))
            with self.tracker._lock:
                changed = self.tracker._changed_after(change_seq, page_size)
                records = [ticket.to_record() for ticket in changed]
                if changed:
                    change_seq = changed[-1].change_seq
            self.tracker._after("changed_since_page", cursor=str(change_seq))
            if not records:
                return
            pages += 1
            yield ChangePage(tickets=records, cursor=str(change_seq))
            if len(records) < page_size:
                return

    def _offset_pages_after(self, after: int) -> Iterator[ChangePage]:
        # What an adapter over "updated since T, sort by update, offset N" gets: each page is
        # evaluated when it is fetched, so a ticket changed during the read moves to the end and
        # the one behind it slips into a page already read. The cursor is the newest change seen.
        page_size = self.config.page_size
        offset, newest = 0, after
        while True:
            if offset:
                self.tracker._between_pages()
            self.tracker._before("changed_since_page", cursor=str(after))
            with self.tracker._lock:
                changed = self.tracker._changed_after(after, None)[offset : offset + page_size]
                records = [ticket.to_record() for ticket in changed]
                newest = max([newest, *(ticket.change_seq for ticket in changed)])
            self.tracker._after("changed_since_page", cursor=str(after))
            if not records:
                return
            offset += page_size
            yield ChangePage(tickets=records, cursor=str(newest))
            if len(records) < page_size:
                return

    def _retrying(self, write: Callable[[], _T]) -> _T:
        """A write, resent after a transient failure as often as ``blind_retries`` says."""
        for _ in range(self.tracker.personality.blind_retries):
            try:
                return write()
            except TransientError:
                continue
        return write()

    def _transition_path(self, current: str, wanted: str | None) -> list[str] | None:
        """The statuses to walk through to reach ``wanted``; ``None`` without a workflow."""
        workflow = self.tracker.personality.transitions
        if workflow is None or wanted is None:
            return None
        paths: dict[str, list[str]] = {current: []}
        queue = deque([current])
        while queue:
            status = queue.popleft()
            if status == wanted:
                return paths[status]
            for following in workflow.get(status, ()):
                if following not in paths:
                    paths[following] = [*paths[status], following]
                    queue.append(following)
        raise PermanentError(
            f"fake tracker {self.name!r} has no transition path from {current!r} to {wanted!r}"
        )

    def _stored_files(self, files: list[tuple[AttachmentUpload, bytes]]) -> list[_StoredAttachment]:
        return [
            self.tracker._store_attachment(upload.filename, content, upload.content_type)
            for upload, content in files
        ]

    def _parse_cursor(self, cursor: str | None) -> int:
        if cursor is None:
            return 0
        try:
            return int(cursor)
        except ValueError:
            raise PermanentError(
                f"{cursor!r} is not a cursor of fake tracker {self.name!r}; its cursors are "
                "change numbers such as '12'"
            ) from None

    def _existing(self, local_id: str) -> _StoredTicket:
        with self.tracker._lock:
            ticket = self.tracker._find(local_id)
        if ticket is None:
            raise PermanentError(f"fake tracker {self.name!r} has no ticket {local_id!r}")
        return ticket

    def _initial_status(self) -> str:
        statuses = self.capabilities.statuses
        return statuses[0] if statuses else DEFAULT_STATUS

    def _accepted_status(self, status: str) -> str:
        statuses = self.capabilities.statuses
        if statuses is not None and status not in statuses:
            raise PermanentError(
                f"fake tracker {self.name!r} has no status {status!r}; its statuses are "
                f"{', '.join(statuses)}"
            )
        return status

    def _accepted_tags(self, tags: list[str] | None) -> list[str] | None:
        if tags and not self.capabilities.tags:
            raise PermanentError(f"fake tracker {self.name!r} has no tags (tags: false)")
        return list(tags) if tags is not None else None

    def _accepted_custom_fields(self, fields: dict[str, Any] | None) -> dict[str, Any] | None:
        if fields and not self.capabilities.custom_fields:
            raise PermanentError(
                f"fake tracker {self.name!r} has no custom fields (custom_fields: false)"
            )
        return copy.deepcopy(fields) if fields is not None else None

    def _read_uploads(
        self, uploads: list[AttachmentUpload]
    ) -> list[tuple[AttachmentUpload, bytes]]:
        if uploads and not self.capabilities.attachments:
            raise PermanentError(
                f"fake tracker {self.name!r} holds no attachments (attachments: false)"
            )
        files = []
        for upload in uploads:
            with upload.open() as stream:
                content = stream.read()
            limit = self.capabilities.max_attachment_bytes
            if limit is not None and len(content) > limit:
                raise PermanentError(
                    f"{upload.filename!r} is {len(content)} bytes; fake tracker {self.name!r} "
                    f"takes at most {limit}"
                )
            files.append((upload, content))
        return files


@hookimpl
def nhd_register_adapters(register: Callable[[str, type[Adapter]], None]) -> None:
    register(FakeAdapter.kind, FakeAdapter)


# --- stored data --------------------------------------------------------------------------------


@dataclass
class _Fault:
    method_name: str
    error: Exception
    remaining: int | None
    when: Callable[..., bool] | None
    after: bool

    def matches(self, method_name: str, arguments: dict[str, Any]) -> bool:
        if method_name != self.method_name:
            return False
        return self.when is None or bool(self.when(**arguments))


@dataclass
class _StoredAttachment:
    ref: str
    filename: str
    content: bytes
    content_type: str | None

    def to_ref(self) -> AttachmentRef:
        return AttachmentRef(
            filename=self.filename,
            ref=self.ref,
            content_type=self.content_type,
            size=len(self.content),
        )


@dataclass
class _StoredComment:
    local_id: str
    body: str
    public: bool
    author: Actor | None
    authored_at: datetime
    html_body: str | None
    attachments: list[_StoredAttachment]
    shared_uuid: str | None

    def to_record(self) -> CommentRecord:
        return CommentRecord(
            local_id=self.local_id,
            body=self.body,
            public=self.public,
            author=_copy_actor(self.author),
            authored_at=self.authored_at,
            html_body=self.html_body,
            attachments=[attachment.to_ref() for attachment in self.attachments],
            shared_uuid=self.shared_uuid,
        )


@dataclass
class _StoredTicket:
    local_id: str
    human_id: str
    subject: str
    status: str
    requester: Actor | None
    requested_at: datetime
    tags: list[str]
    custom_fields: dict[str, Any]
    shared_uuid: str | None
    updated_at: datetime
    change_seq: int = 0
    comments: list[_StoredComment] = field(default_factory=list)

    def comment(self, comment_id: str) -> _StoredComment:
        for comment in self.comments:
            if comment.local_id == comment_id:
                return comment
        raise KeyError(f"ticket {self.local_id!r} has no comment {comment_id!r}")

    def to_record(self) -> TicketRecord:
        return TicketRecord(
            local_id=self.local_id,
            subject=self.subject,
            status=self.status,
            updated_at=self.updated_at,
            requested_at=self.requested_at,
            requester=_copy_actor(self.requester),
            human_id=self.human_id,
            tags=list(self.tags),
            custom_fields=copy.deepcopy(self.custom_fields),
            comments=[comment.to_record() for comment in self.comments],
            shared_uuid=self.shared_uuid,
        )


def _copy_actor(actor: Actor | None) -> Actor | None:
    return actor.model_copy(deep=True) if actor is not None else None


def _utc_now() -> datetime:
    return datetime.now(UTC)
