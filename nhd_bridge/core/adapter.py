"""The adapter contract: what every tracker, help desk or CRM implements to join a bridge.

An adapter speaks its tracker's own terms (local ids, local status names, local field names); the
engine maps between two adapters through the NHD model and owns identity (NHD uuids), snapshots,
permissions and conflicts. An adapter never decides *whether* to write, only *how*.

How the contract fits the trackers we ship, with no special case in the engine:

- **Jira**: ``local_id`` is the issue key; ``changed_since`` runs JQL ``updated >= cursor -
  lookback ORDER BY updated`` and pages with ``nextPageToken`` (Cloud) or ``startAt`` (Data
  Center), comments coming with the search page. ``update(status=...)`` finds a path through the
  workflow's transitions (``capabilities.transitions``). A private comment is a comment restricted
  to the configured role or group (or ``internal`` on Jira Service Management). The breadcrumb is
  an issue property holding the shared uuid; a comment's breadcrumb is a comment property.
- **Salesforce**: ``local_id`` is the Case id; ``changed_since`` runs SOQL on ``SystemModstamp``; a
  comment is a CaseComment whose ``IsPublished`` is the visibility; the breadcrumb is an external-id
  field on Case, found again with ``find_by_shared_uuid``.
- **Declarative REST**: every method is an HTTP operation described in YAML; a tracker with no
  private comments declares ``private_comments=False`` and the engine never sends one there.
- **Local** (embedded) tracker: the reference implementation, with everything in SQLite.

Errors: raise :class:`TransientError` for what may work on retry (timeouts, 429, 5xx, connection
errors; set ``retry_after`` when the server said so), :class:`PermanentError` for what will not
(401, 403, validation), and return ``None`` from ``get``/``find_by_shared_uuid`` only when the
tracker positively says the ticket does not exist. A fetch that failed must raise, never return
an empty result: the engine treats "not there" and "could not look" very differently.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from nhd_bridge.core.model import Actor
from nhd_bridge.core.redaction import register_secrets_of

__all__ = [
    "Adapter",
    "AdapterConfig",
    "AdapterContext",
    "AdapterError",
    "AgreementTerms",
    "AttachmentRef",
    "AttachmentUpload",
    "Capabilities",
    "ChangePage",
    "CheckResult",
    "CommentDraft",
    "CommentRecord",
    "NotSupported",
    "PermanentError",
    "TicketChanges",
    "TicketDraft",
    "TicketRecord",
    "TransientError",
]


# --- errors -------------------------------------------------------------------------------------


class AdapterError(Exception):
    """A call to a tracker failed. The message is for a person: what failed and how to fix it."""


class TransientError(AdapterError):
    """May succeed on retry: timeouts, rate limits, 5xx, connection errors."""

    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(AdapterError):
    """Will not succeed by retrying as is: bad credentials, missing permission, rejected data."""


class NotSupported(AdapterError):
    """The tracker cannot do this at all (see :class:`Capabilities`)."""


# --- what adapters read -------------------------------------------------------------------------


@dataclass(frozen=True)
class AttachmentRef:
    """A file on a comment as the source tracker holds it; ``ref`` is the adapter's own handle
    (a URL, a path, an attachment id) that :meth:`Adapter.open_attachment` understands."""

    filename: str
    ref: str
    content_type: str | None = None
    size: int | None = None


@dataclass
class CommentRecord:
    """A comment as the tracker holds it. ``shared_uuid`` is the breadcrumb the bridge stored on
    the comment when it wrote it (``None`` for comments people wrote in this tracker)."""

    local_id: str
    body: str
    public: bool
    author: Actor | None = None
    authored_at: datetime | None = None
    html_body: str | None = None
    attachments: list[AttachmentRef] = field(default_factory=list)
    shared_uuid: str | None = None


@dataclass
class TicketRecord:
    """A ticket as the tracker holds it, with its comments, in the tracker's own terms.

    ``status`` is the tracker's own status name; ``custom_fields`` uses the tracker's field names;
    ``human_id`` is what people call the ticket ("PROJ-12", "#42") and travels as ``original_id``;
    ``shared_uuid`` is the breadcrumb the bridge stored when it created the ticket here.
    """

    local_id: str
    subject: str
    status: str
    updated_at: datetime
    requested_at: datetime | None = None
    requester: Actor | None = None
    human_id: str | None = None
    tags: list[str] = field(default_factory=list)
    custom_fields: dict[str, Any] = field(default_factory=dict)
    comments: list[CommentRecord] = field(default_factory=list)
    shared_uuid: str | None = None


@dataclass
class ChangePage:
    """One page of changed tickets and the cursor to resume *after* this page."""

    tickets: list[TicketRecord]
    cursor: str | None


# --- what adapters write ------------------------------------------------------------------------


@dataclass
class AttachmentUpload:
    """A file to attach, streamed from the source tracker: ``open()`` yields a binary stream."""

    filename: str
    open: Callable[[], AbstractContextManager[BinaryIO]]
    content_type: str | None = None
    size: int | None = None


@dataclass
class TicketDraft:
    """A ticket to create. ``shared_uuid`` must be stored on the new record as a breadcrumb, so that
    :meth:`Adapter.find_by_shared_uuid` finds it after a crash between create and commit."""

    shared_uuid: str
    subject: str
    status: str | None = None
    requester: Actor | None = None
    requested_at: datetime | None = None
    original_id: str | None = None
    tags: list[str] | None = None
    custom_fields: dict[str, Any] | None = None


@dataclass
class TicketChanges:
    """Fields to change on an existing ticket; ``None`` means "leave as it is". ``custom_fields``
    holds only the fields to set. A status is the target status: reaching it (through workflow
    transitions where the tracker has them) is the adapter's job."""

    subject: str | None = None
    status: str | None = None
    tags: list[str] | None = None
    custom_fields: dict[str, Any] | None = None

    def is_empty(self) -> bool:
        return (
            self.subject is None
            and self.status is None
            and self.tags is None
            and not self.custom_fields
        )


@dataclass
class CommentDraft:
    """A comment to add. ``shared_uuid`` must be stored on the comment as a breadcrumb (a comment
    property, a hidden marker, a column) and read back as ``CommentRecord.shared_uuid``. Where the
    tracker cannot set the author, the engine has already written who wrote it into ``body``."""

    shared_uuid: str
    body: str
    public: bool
    author: Actor | None = None
    authored_at: datetime | None = None
    html_body: str | None = None
    attachments: list[AttachmentUpload] = field(default_factory=list)


# --- capabilities and preflight -----------------------------------------------------------------


@dataclass(frozen=True)
class Capabilities:
    """What the tracker can hold. The engine reads these instead of asking which adapter it is."""

    private_comments: bool = True
    attachments: bool = True
    tags: bool = True
    custom_fields: bool = True
    transitions: bool = False
    comment_author: bool = True
    edit_comments: bool = False
    statuses: tuple[str, ...] | None = None
    max_attachment_bytes: int | None = None
    #: The tracker itself refuses a second ticket carrying one shared uuid (a unique index). Most
    #: SaaS trackers cannot; there the pending-link lookup of ADR 0004 keeps creates single.
    unique_breadcrumbs: bool = False


@dataclass(frozen=True)
class CheckResult:
    """One preflight finding; ``hint`` says how to fix a failure."""

    name: str
    ok: bool
    detail: str = ""
    hint: str = ""
    level: Literal["error", "warning"] = "error"


@dataclass(frozen=True)
class AgreementTerms:
    """Terms an adapter imposes on the agreements it takes part in. A native NHD partner
    negotiates them on the wire; they then override what the YAML says."""

    status: Literal["pending", "accepted", "declined", "inactive"]
    allows_public_comments: bool
    sync_tags: bool
    sync_custom_fields: bool


@dataclass(frozen=True)
class AdapterContext:
    """What the engine hands an adapter that keeps bookkeeping of its own (``attach``)."""

    instance: str
    sharing_url: str
    state: Any  # nhd_bridge.core.state.StateStore; typed loosely to keep this module leaf-level


class AdapterConfig(BaseModel):
    """Base of every adapter's configuration model: unknown keys are errors, secrets are
    ``pydantic.SecretStr`` so that they never reach logs or ``repr()``."""

    model_config = ConfigDict(extra="forbid")


# --- the contract -------------------------------------------------------------------------------


class Adapter(abc.ABC):
    """Base class of every adapter. Subclasses set ``kind``, ``config_model``, ``capabilities``
    and implement the abstract methods; ``nhd_bridge.testing.AdapterContract`` checks them."""

    kind: ClassVar[str]
    config_model: ClassVar[type[AdapterConfig]] = AdapterConfig
    capabilities: ClassVar[Capabilities] = Capabilities()

    def __init__(self, name: str, config: AdapterConfig):
        self.name = name
        self.config = config
        # HTTP libraries log URLs; a key in a query string must not reach the log with them.
        register_secrets_of(config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"

    def check(self) -> list[CheckResult]:
        """Preflight: credentials, permissions, project/fields/transitions reachable."""
        return []

    @abc.abstractmethod
    def changed_since(self, cursor: str | None) -> Iterator[ChangePage]:
        """Tickets changed since ``cursor`` (all tickets when ``None``), in pages. Each page
        carries a cursor that, stored once that page is written, resumes after it and skips no
        change of a later page; the engine relies on nothing else about the order (within a
        page, oldest change first is kind to a reader of the journal). Re-reading a boundary is
        fine (the engine diffs against snapshots); missing a change is not: apply any lookback
        here, and page over an order that a change made during the read cannot shift (ADR
        0007)."""

    @abc.abstractmethod
    def get(self, local_id: str) -> TicketRecord | None:
        """One ticket with its comments; ``None`` only if the tracker says it does not exist."""

    @abc.abstractmethod
    def create(self, draft: TicketDraft) -> TicketRecord:
        """Create a ticket carrying ``draft.shared_uuid`` as a breadcrumb; return it as stored."""

    @abc.abstractmethod
    def update(self, local_id: str, changes: TicketChanges) -> None:
        """Apply the given field changes; fields left ``None`` are not touched."""

    @abc.abstractmethod
    def add_comment(self, local_id: str, draft: CommentDraft) -> str:
        """Add a comment with its visibility, author and attachments; return its local id."""

    @abc.abstractmethod
    def find_by_shared_uuid(self, shared_uuid: str) -> TicketRecord | None:
        """The ticket carrying this breadcrumb, if any: how a crash after create is recovered."""

    def unshare(self, local_id: str) -> None:
        """The sender stops sharing this copy. Trackers keep the copy and need do nothing (the
        engine stops syncing it); a native NHD partner is told (DELETE, nhd-spec.md §2.7)."""

    def edit_comment(self, local_id: str, comment_local_id: str, body: str) -> None:
        """Replace a comment's body (only where ``capabilities.edit_comments``)."""
        raise NotSupported(f"{self.kind} cannot edit comments")

    def open_attachment(self, ref: AttachmentRef) -> AbstractContextManager[BinaryIO]:
        """A binary stream of an attachment listed on a ``CommentRecord``."""
        raise NotSupported(f"{self.kind} cannot read attachments")

    def attach(self, context: AdapterContext) -> None:
        """Called once by the engine before any other call, with the state store. Most adapters
        keep nothing there and ignore it; a native NHD partner keeps its wire mirror there."""

    def agreement_terms(self) -> AgreementTerms | None:
        """Terms negotiated outside the YAML (NHD's agreement flags); ``None`` for most."""
        return None

    def tracker_identity(self) -> str | None:
        """A stable name of the tracker (and project) this instance reads, the same from every
        installation and after any loss of the state store: its URL and project, or an id kept
        in the tracker itself. The default sharing URL, from which ticket and comment uuids are
        minted, is built from it, so that uuids survive a lost store. ``None``: the engine falls
        back to an id kept in the state store (uuids then change with the store)."""
        return None

    def close(self) -> None:
        """Release connections; called once when the run is over."""
