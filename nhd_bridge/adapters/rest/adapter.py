"""The declarative REST adapter: a tracker with a JSON REST API, connected by writing YAML only.

Every method of the :class:`~nhd_bridge.core.adapter.Adapter` contract is one or two HTTP
operations described in the instance's YAML (usually by naming a shipped profile and overriding a
few keys). The adapter has these parts, each in its own file:

- ``config.py``: :class:`RestConfig`, the settings, with profiles deep-merged under them;
- ``template.py``: the template language of URLs and bodies (``{{ JMESPath }}`` holes,
  values inserted as JSON values, never spliced as text);
- ``http.py``: retries, rate limits, ETags and error messages;
- ``paging.py``: one model per pagination style, and the walk over a list's pages;
- ``auth.py``: one model per auth type, each building the ``httpx.Auth`` that signs calls;
- this module: :class:`RestAdapter`, which builds each call's context, reads documents into
  records through the profile's JMESPath mappings, and keeps the cursor.

How the contract maps onto a REST API:

- **Cursor.** ``changed_since`` asks for tickets updated at or after the last ``updated_at`` it saw,
  minus ``changes.lookback_seconds`` (late commits, clock skew, second-resolution dates). To keep
  that overlap from coming back run after run, the cursor also holds a fingerprint of each ticket
  it returned inside the window; a ticket read again with the same fingerprint is not returned. A
  ticket that changed within the same second changes its fingerprint, so it is never missed.
  Every page's cursor is safe to store once that page is written; with keyset paging (Redmine,
  by id) a mid-read cursor resumes the read where it stopped (ADR 0007).
- **Lost answers.** A write that is not idempotent is never repeated blindly: after a lost
  answer its breadcrumb is looked for, and if it is not there the work is parked for the
  engine's next pass, which reads before it writes (``_resolve``).
- **Breadcrumbs** are a field (``ticket.shared_uuid``: a Roundup property, a Redmine custom field)
  or a text marker inside the body (``marker: "<!-- nhd:{uuid} -->"`` on GitHub), read back by
  the same mapping. ``find_by_shared_uuid`` checks each candidate's breadcrumb itself, so a search
  that matches loosely can never link the wrong ticket.
- **Comments** are read with ``list_comments`` or from the ticket document; a comment that is its
  own object is created with ``add_comment`` and linked to the ticket with ``link_comment``.
  Where the tracker has no private comments (``capabilities.private_comments: false``) the engine
  never sends one, and this adapter refuses one if it comes anyway.
- **Values**: ``value_maps`` translate the tracker's values (ids, states) to the names the bridge
  and the agreements' status maps use, both ways.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any, BinaryIO

import httpx

from nhd_bridge.adapters.rest.config import BasicAuth, Operation, RestConfig
from nhd_bridge.adapters.rest.http import AmbiguousWrite, RestClient
from nhd_bridge.adapters.rest.template import TemplateError, search
from nhd_bridge.core.adapter import (
    Adapter,
    AdapterConfig,
    AdapterContext,
    AdapterError,
    AttachmentRef,
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
from nhd_bridge.core.model import Actor, nhd_uuid, parse_timestamp

__all__ = ["RestAdapter", "RestConfig"]

log = logging.getLogger(__name__)

CURSOR_VERSION = 2
# The cursor keeps fingerprints of at most this many tickets from the lookback window; beyond
# that, tickets are simply read again (correct, only slower).
MAX_CURSOR_FINGERPRINTS = 2000
ISO_SEND_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
FILTER_SLACK = timedelta(seconds=1)
# The local id of the comment a ticket's description is read as (ticket.description).
DESCRIPTION_PREFIX = "description-"


class RestAdapter(Adapter):
    """An adapter whose every call is described by a :class:`RestConfig`."""

    kind = "rest"
    config_model = RestConfig

    def __init__(
        self,
        name: str,
        config: AdapterConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] | None = None,
    ):
        if not isinstance(config, RestConfig):
            raise TypeError(f"RestAdapter needs a RestConfig, got {type(config).__name__}")
        super().__init__(name, config)
        self.config: RestConfig = config
        # Capabilities come from the profile, so they are per instance.
        self.capabilities = config.capabilities.build()
        self._transport = transport
        self._sleep = sleep
        self._client: RestClient | None = None
        self._people_url: str | None = None

    def attach(self, context: AdapterContext) -> None:
        # The tracker's user ids ("redmine-user-7") are the same in every Redmine: a person's
        # uuid is minted from this instance's sharing URL, as tickets and comments are (§4.4).
        self._people_url = context.sharing_url

    def tracker_identity(self) -> str:
        # The API root and the profile's variables (the project): the same from every
        # installation and after a lost state store.
        scope = ",".join(f"{key}={value}" for key, value in sorted(self.config.vars.items()))
        return f"rest/{self.config.base_url.rstrip('/')}/{scope}"

    def __repr__(self) -> str:
        profile = f" profile={self.config.profile}" if self.config.profile else ""
        return f"<RestAdapter {self.name!r} {self.config.base_url}{profile}>"

    @property
    def client(self) -> RestClient:
        """The HTTP client, opened on first use (``nhd-bridge validate`` builds adapters)."""
        if self._client is None:
            extra = {"sleep": self._sleep} if self._sleep is not None else {}
            self._client = RestClient(self.config, transport=self._transport, **extra)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- preflight ------------------------------------------------------------------------------

    def _person(self, value: Any) -> Actor | None:
        return _actor(value, self._people_url)

    def check(self) -> list[CheckResult]:
        results: list[CheckResult] = []
        operations = self.config.operations
        probe = operations.check or operations.list_changed
        try:
            self.client.call(probe, self._context(since=None), what="preflight")
            results.append(CheckResult("api reachable", True, f"{self.config.base_url} answered"))
        except AdapterError as error:
            results.append(
                CheckResult(
                    "api reachable",
                    False,
                    str(error),
                    hint="check base_url, auth and that the API user may read tickets",
                )
            )
        if operations.find_by_uuid is None:
            results.append(
                CheckResult(
                    "breadcrumb lookup",
                    False,
                    "operations.find_by_uuid is not set: recovering an interrupted create reads "
                    "every ticket",
                    hint="describe a search by the breadcrumb field",
                    level="warning",
                )
            )
        if self.capabilities.attachments and not (
            operations.upload_attachment or operations.download_attachment
        ):
            results.append(
                CheckResult(
                    "attachments",
                    False,
                    "capabilities.attachments is true but no attachment operation is described",
                    hint="add upload_attachment/download_attachment or set it to false",
                )
            )
        paging = operations.list_changed.pagination
        if paging.style != "none" and not paging.stable_order:
            results.append(
                CheckResult(
                    "changes read in a stable order",
                    False,
                    f"operations.list_changed pages by position (pagination style "
                    f"{paging.style}) and stable_order is not set: if the list is sorted by "
                    "update time, a ticket changed during a read pushes another out of every "
                    "page, and that one's change is missed",
                    hint="sort the list by id or creation time and set pagination.stable_order: "
                    "true (docs/adrs/0007-reads-that-survive-moving-pages.md)",
                    level="warning",
                )
            )
        return results

    # --- reading --------------------------------------------------------------------------------

    def changed_since(self, cursor: str | None) -> Iterator[ChangePage]:
        """Tickets changed since the cursor, a page at a time.

        Each page's cursor covers only what was yielded so far: committed after that page's
        tickets are written, it never skips a ticket of a later page. Over a stable order
        (keyset paging, or pages with ``stable_order``; ADR 0007) it holds where the read is
        (``resume``) and the cursor of the read as it started; the last page, empty, carries
        the next read's cursor. A ticket whose ``updated_at`` in the list is the one an earlier
        read saw, read after that second had passed (the tracker's ``Date``), is not read again
        (``refetch`` costs nothing idle).
        """
        state = _parse_cursor(cursor)
        since, seen, resume = state.since, state.seen, state.resume
        lookback = timedelta(seconds=self.config.changes.lookback_seconds)
        query_since = since - lookback if since is not None else None
        context = self._context(since=self._send_date(query_since))
        operation = self.config.operations.list_changed
        paging = operation.pagination
        stable = paging.stable_order
        newest = resume.newest if resume else since
        started = resume.started if resume else None
        position = resume.key if resume and stable else None
        pages = self.client.read_pages(
            operation, context, what="listing changed tickets", start_key=position
        )
        for items, answer in pages:
            if started is None:
                started = _server_date(answer.response)
            tickets: list[TicketRecord] = []
            for listed in items:
                local_id = self._id_of(listed)
                document = listed
                read_at = started
                if self.config.changes.refetch:
                    if self._unchanged_since_read(listed, seen.get(local_id), lookback):
                        continue
                    fetched = self._document_answer(local_id)
                    if fetched is None:
                        continue  # deleted between the list and the read
                    document, read_at = fetched
                fingerprint = _fingerprint(document)
                record = self._record(document)
                unchanged = seen.get(local_id, Seen("", "")).fingerprint == fingerprint
                seen[local_id] = Seen(fingerprint, record.updated_at.isoformat(), _iso(read_at))
                if unchanged:
                    continue  # read before, unchanged: the lookback overlap
                tickets.append(record)
                if newest is None or record.updated_at > newest:
                    newest = record.updated_at
            if stable:
                # Across pages the order is the list's (ids); within a page, oldest change first.
                tickets.sort(key=lambda ticket: ticket.updated_at)
                position = paging.position_after(position, items)
                if position is None:
                    # Nowhere to resume (or nothing read): a run stopping here reads it again.
                    yield ChangePage(tickets, _cursor(since, seen, lookback))
                    continue
                progress = Resume(key=position, newest=newest, started=started)
                yield ChangePage(tickets, _cursor(since, seen, lookback, progress))
            else:
                yield ChangePage(tickets, _cursor(newest, seen, lookback))
        if stable:
            # The next read starts when this one began, by the tracker's clock: every change
            # made before then was listed (by id, nothing shifts), and one made during the read
            # behind its position has a later updated_at. Starting at the newest updated_at
            # seen instead would skip the latter, and re-list the last changes on every idle
            # poll. The lookback covers commits that land late.
            following = started if started is not None else newest
            yield ChangePage([], _cursor(following, seen, lookback))

    def _unchanged_since_read(self, listed: Any, prior: Seen | None, lookback: timedelta) -> bool:
        """Whether a listed ticket is the one read before: same ``updated_at``, and that read
        came after the second of that ``updated_at`` (and the lookback) had passed, so no later
        change can hide behind the same second."""
        if prior is None or prior.read_at is None:
            return False
        try:
            listed_updated = self._date(search(self.config.ticket.updated_at, listed))
        except (TemplateError, ValueError, TypeError):
            return False
        if listed_updated is None or listed_updated != parse_timestamp(prior.updated_at):
            return False
        margin = timedelta(seconds=1) + lookback
        return parse_timestamp(prior.read_at) >= listed_updated + margin

    def get(self, local_id: str) -> TicketRecord | None:
        document = self._document(local_id)
        return None if document is None else self._record(document)

    def find_by_shared_uuid(self, shared_uuid: str) -> TicketRecord | None:
        operation = self.config.operations.find_by_uuid
        if operation is None:
            pages = self.changed_since(None)
            candidates = (t for page in pages for t in page.tickets)
            return next((t for t in candidates if t.shared_uuid == shared_uuid), None)
        context = self._context(shared_uuid=shared_uuid)
        for items in self.client.pages(operation, context, what="finding a ticket by breadcrumb"):
            for listed in items:
                # Search results may be thin or loose: read each one and check its breadcrumb.
                record = self.get(self._id_of(listed))
                if record is not None and record.shared_uuid == shared_uuid:
                    return record
        return None

    # --- writing --------------------------------------------------------------------------------

    def create(self, draft: TicketDraft) -> TicketRecord:
        """Create, then return the ticket as the tracker holds it.

        A lost answer (:class:`AmbiguousWrite`) is resolved by the breadcrumb: the ticket found
        by ``find_by_uuid`` is the one created; when none is found, the work is parked (see
        :meth:`_resolve`), never written a second time blindly. A
        field the tracker ignores on create (``create_ignores``) is set by an update right after,
        and the ticket read again: the record returned is the truth, never the wish."""
        self._refuse_unknown_status(draft.status, "creating a ticket")
        status = self._to_tracker("status", draft.status)
        context = self._context(
            shared_uuid=draft.shared_uuid,
            marker=self._marker(self.config.ticket.marker, draft.shared_uuid),
            subject=draft.subject,
            status=status,
            tags=list(draft.tags) if draft.tags is not None else None,
            custom_fields=self._custom_fields_out(draft.custom_fields),
            requester=draft.requester.model_dump() if draft.requester else None,
            requested_at=self._send_date(draft.requested_at),
            original_id=draft.original_id,
        )
        operation = self.config.operations.create
        what = "creating a ticket"
        record = None
        try:
            answer = self.client.call(operation, context, what=what)
        except AmbiguousWrite as error:
            found = partial(self.find_by_shared_uuid, draft.shared_uuid)
            record = self._resolve(what, error, found, draft.shared_uuid)
        else:
            local_id = self._result_id(operation, answer)
            record = self.get(local_id) if local_id is not None else None
            if record is None:
                # No id in the answer (or not readable yet): the breadcrumb finds it.
                record = self.find_by_shared_uuid(draft.shared_uuid)
        if record is None:
            raise PermanentError(
                "creating a ticket: the tracker accepted it but it cannot be read back; check "
                "operations.create.result and operations.get"
            )
        ignored = TicketChanges(
            subject=draft.subject
            if "subject" in self.config.create_ignores and record.subject != draft.subject
            else None,
            status=draft.status
            if "status" in self.config.create_ignores
            and draft.status is not None
            and record.status != draft.status
            else None,
        )
        if not ignored.is_empty():
            try:
                self.update(record.local_id, ignored)
                record = self.get(record.local_id) or record
            except AdapterError as error:
                # The ticket exists: returning it as it is (not raising) lets the engine link it
                # and see that what it meant differs from what the tracker holds.
                log.warning(
                    "creating a ticket: %s ignores %s on create and setting it after failed: %s",
                    self.name,
                    ", ".join(self.config.create_ignores),
                    error,
                )
        return record

    def update(self, local_id: str, changes: TicketChanges) -> None:
        if changes.is_empty():
            return
        self._refuse_unknown_status(changes.status, f"updating ticket {local_id}")
        operations = self.config.operations
        status = self._to_tracker("status", changes.status)
        if operations.set_status is not None and status is not None:
            self.client.call(
                operations.set_status,
                self._context(id=local_id, status=status),
                what=f"changing the status of ticket {local_id}",
            )
            status = None
        custom = self._custom_fields_out(changes.custom_fields)
        if changes.subject is None and status is None and changes.tags is None and not custom:
            return
        context = self._context(
            id=local_id,
            subject=changes.subject,
            status=status,
            tags=list(changes.tags) if changes.tags is not None else None,
            custom_fields=custom or None,
        )
        self.client.call(operations.update, context, what=f"updating ticket {local_id}")

    def _refuse_unknown_status(self, status: str | None, what: str) -> None:
        """A status outside ``capabilities.statuses`` is refused before anything is sent: the
        tracker might take it as something else (a Redmine status id it cannot parse)."""
        statuses = self.capabilities.statuses
        if status is not None and statuses is not None and status not in statuses:
            raise PermanentError(
                f"{what}: {self.name} has no status {status!r}; its statuses "
                f"(capabilities.statuses) are {', '.join(statuses)}"
            )

    def add_comment(self, local_id: str, draft: CommentDraft) -> str:
        """Write a comment once, whatever the network does.

        A lost answer (:class:`AmbiguousWrite`) of a write that is not idempotent is resolved
        by the comment's breadcrumb: the ticket is read again and a comment carrying it is the
        one written; none is parked (:meth:`_resolve`). Where a comment is its own object
        linked in a second call (``link_comment``), an object carrying the breadcrumb that was
        never linked (a crash or a lost answer between the two calls) is found by
        ``find_comment_by_uuid`` and linked, not written again."""
        if not draft.public and not self.capabilities.private_comments:
            raise PermanentError(
                f"{self.name} has no private comments (capabilities.private_comments is false); "
                "a private comment is never written where everyone could read it"
            )
        operations = self.config.operations
        what = f"adding a comment to ticket {local_id}"
        comment_id = None
        if operations.link_comment is not None and operations.find_comment_by_uuid is not None:
            comment_id = self._comment_object_by_breadcrumb(draft.shared_uuid)
        attachments: list[dict[str, Any]] = []
        if comment_id is None and draft.attachments:
            attachments = self._upload(local_id, draft)
        context = self._context(
            id=local_id,
            shared_uuid=draft.shared_uuid,
            marker=self._marker(self.config.comment.marker, draft.shared_uuid),
            body=draft.body,
            html_body=draft.html_body,
            public=draft.public,
            author=draft.author.model_dump() if draft.author else None,
            authored_at=self._send_date(draft.authored_at),
            attachments=attachments,
        )
        if comment_id is None:
            try:
                answer = self.client.call(operations.add_comment, context, what=what)
            except AmbiguousWrite as error:
                if operations.link_comment is None:
                    find = partial(self._find_comment, local_id, draft.shared_uuid)
                elif operations.find_comment_by_uuid is not None:
                    find = partial(self._comment_object_by_breadcrumb, draft.shared_uuid)
                else:
                    raise  # no way to tell here; the engine's next read decides
                comment_id = self._resolve(what, error, find, draft.shared_uuid)
            else:
                comment_id = self._result_id(operations.add_comment, answer)
                if operations.link_comment is None and comment_id is None:
                    comment_id = self._comment_id_by_breadcrumb(local_id, draft.shared_uuid)
        if operations.link_comment is not None:
            context["comment"] = {"id": comment_id}
            self.client.call(operations.link_comment, context, what=f"{what} (linking it)")
        assert comment_id is not None
        return comment_id

    def edit_comment(self, local_id: str, comment_local_id: str, body: str) -> None:
        operation = self.config.operations.edit_comment
        if operation is None or not self.capabilities.edit_comments:
            raise NotSupported(f"{self.name} cannot edit comments (no edit_comment operation)")
        shared_uuid = None
        if self.config.comment.marker:
            record = self.get(local_id)
            for comment in record.comments if record else []:
                if comment.local_id == comment_local_id:
                    shared_uuid = comment.shared_uuid
        context = self._context(
            id=local_id,
            comment_id=comment_local_id,
            body=body,
            shared_uuid=shared_uuid,
            marker=self._marker(self.config.comment.marker, shared_uuid),
        )
        self.client.call(operation, context, what=f"editing comment {comment_local_id}")

    def open_attachment(self, ref: AttachmentRef) -> AbstractContextManager[BinaryIO]:
        operation = self.config.operations.download_attachment
        if operation is None:
            raise NotSupported(f"{self.name} cannot read attachments (no download operation)")
        answer = self.client.call(
            operation,
            self._context(ref=ref.ref, filename=ref.filename),
            what=f"downloading attachment {ref.filename!r}",
        )
        assert answer is not None
        return io.BytesIO(answer.response.content)

    # --- helpers: calls -------------------------------------------------------------------------

    def _document(self, local_id: str) -> Any:
        fetched = self._document_answer(local_id)
        return None if fetched is None else fetched[0]

    def _document_answer(self, local_id: str) -> tuple[dict[str, Any], datetime | None] | None:
        """The ticket's document and the tracker's ``Date`` of the answer (when it was read)."""
        operation = self.config.operations.get
        answer = self.client.call(
            operation,
            self._context(id=local_id),
            what=f"reading ticket {local_id}",
            allow_not_found=True,
        )
        if answer is None:
            return None
        document = search(operation.result, answer.data) if operation.result else answer.data
        if not isinstance(document, dict):
            raise PermanentError(
                f"reading ticket {local_id}: operations.get.result gave "
                f"{type(document).__name__}, not an object; check it against the API's answer"
            )
        return document, _server_date(answer.response)

    def _upload(self, local_id: str, draft: CommentDraft) -> list[dict[str, Any]]:
        operation = self.config.operations.upload_attachment
        if operation is None or not self.capabilities.attachments:
            raise NotSupported(f"{self.name} does not take attachments")
        limit = self.capabilities.max_attachment_bytes
        uploaded = []
        for upload in draft.attachments:
            if limit is not None and upload.size is not None and upload.size > limit:
                raise PermanentError(
                    f"attachment {upload.filename!r} is {upload.size} bytes, over the "
                    f"{limit}-byte limit of {self.name}"
                )
            kind = upload.content_type or "application/octet-stream"
            context = self._context(
                id=local_id, filename=upload.filename, content_type=kind, size=upload.size
            )
            with ExitStack() as stack:
                stream = stack.enter_context(upload.open())
                files = None
                content = None
                if operation.body_type == "multipart":
                    files = [(operation.file_field, (upload.filename, stream, kind))]
                else:
                    content = stream.read()
                answer = self.client.call(
                    operation,
                    context,
                    what=f"uploading attachment {upload.filename!r}",
                    files=files,
                    content=content,
                )
            uploaded.append(
                {
                    "id": self._result_id(operation, answer),
                    "filename": upload.filename,
                    "content_type": kind,
                    "size": upload.size,
                }
            )
        return uploaded

    def _resolve(
        self, what: str, error: AmbiguousWrite, find: Callable[[], Any], shared_uuid: str
    ) -> Any:
        """After a lost answer: what the tracker holds, found by its breadcrumb.

        Not found is no proof the write did not happen: a request that timed out may still be
        on its way, and a second write now would make two. So nothing is written again here:
        a :class:`TransientError` parks the work, and the engine's next pass reads the ticket
        first (a pending create is recovered by ``find_by_shared_uuid``, a comment whose
        breadcrumb is there is not written again, ADR 0004) and writes only what is missing.
        A failed look-up is a :class:`TransientError` too."""
        log.info("%s: %s; looking for its breadcrumb %s", what, error, shared_uuid)
        try:
            found = find()
        except AdapterError as lookup:
            raise TransientError(
                f"{what}: the answer was lost ({error}) and looking for the breadcrumb failed "
                f"({lookup}); it is looked for again before any new write"
            ) from None
        if found is None:
            raise TransientError(
                f"{what}: the answer was lost ({error}) and nothing carries the breadcrumb "
                f"{shared_uuid} yet; the next pass reads again before writing"
            )
        return found

    def _find_comment(self, local_id: str, shared_uuid: str) -> str | None:
        record = self.get(local_id)
        for comment in reversed(record.comments if record else []):
            if comment.shared_uuid == shared_uuid:
                return comment.local_id
        return None

    def _comment_object_by_breadcrumb(self, shared_uuid: str) -> str | None:
        """The id of a comment object carrying the breadcrumb, linked or not (two-step writes)."""
        operation = self.config.operations.find_comment_by_uuid
        assert operation is not None
        context = self._context(shared_uuid=shared_uuid)
        what = "finding a comment by breadcrumb"
        for items in self.client.pages(operation, context, what=what):
            for item in items:
                comment = self._comment(item)
                if comment.shared_uuid == shared_uuid:
                    return comment.local_id
        return None

    def _comment_id_by_breadcrumb(self, local_id: str, shared_uuid: str) -> str:
        found = self._find_comment(local_id, shared_uuid)
        if found is not None:
            return found
        raise PermanentError(
            f"adding a comment to ticket {local_id}: the tracker gave no comment id and the "
            "comment is not found by its breadcrumb; check operations.add_comment.result and "
            "comment.shared_uuid / comment.marker"
        )

    def _result_id(self, operation: Operation, answer: Any) -> str | None:
        if answer is None or operation.result is None:
            return None
        value = search(operation.result, answer.data)
        return None if value is None else str(value)

    def _context(self, **values: Any) -> dict[str, Any]:
        auth = self.config.auth
        context: dict[str, Any] = {
            "vars": self.config.vars,
            "base_url": self.config.base_url,
            "origin": self.config.origin,
            "auth": {"username": auth.username} if isinstance(auth, BasicAuth) else {},
        }
        context.update(values)
        if "id" in values:
            context["ticket_id"] = values["id"]
        return context

    # --- helpers: reading documents -------------------------------------------------------------

    def _id_of(self, document: Any) -> str:
        value = search(self.config.ticket.id, document)
        if value is None:
            raise PermanentError(
                f"ticket.id ({self.config.ticket.id!r}) found no id in a ticket document; "
                "check it against the API's answer"
            )
        return str(value)

    def _record(self, document: dict[str, Any]) -> TicketRecord:
        mapping = self.config.ticket
        local_id = self._id_of(document)
        try:
            updated = self._date(search(mapping.updated_at, document))
            if updated is None:
                raise PermanentError(
                    f"ticket {local_id}: ticket.updated_at ({mapping.updated_at!r}) found no "
                    "date; the bridge needs it to order changes"
                )
            human_id = search(mapping.human_id, document)
            tags = search(mapping.tags, document) or []
            custom = search(mapping.custom_fields, document) or {}
            return TicketRecord(
                local_id=local_id,
                subject=_text(search(mapping.subject, document)),
                status=self._from_tracker("status", search(mapping.status, document)) or "",
                updated_at=updated,
                requested_at=self._date(search(mapping.requested_at, document)),
                requester=self._person(search(mapping.requester, document)),
                human_id=None if human_id is None else str(human_id),
                tags=[str(tag) for tag in tags],
                custom_fields={
                    str(name): self._from_tracker(str(name), value)
                    for name, value in dict(custom).items()
                },
                comments=self._description(document, local_id) + self._comments(document, local_id),
                shared_uuid=self._breadcrumb(search(mapping.shared_uuid, document), mapping.marker),
            )
        except (TemplateError, ValueError, TypeError) as error:
            raise PermanentError(
                f"ticket {local_id} could not be read with the profile's mappings: {error}"
            ) from None

    def _description(self, document: dict[str, Any], local_id: str) -> list[CommentRecord]:
        """The ticket's description as its first comment (the NHD model has no description):
        local id ``description-<ticket id>``, public, by the requester, at the creation time."""
        mapping = self.config.ticket
        if mapping.description is None:
            return []
        text = _text(search(mapping.description, document))
        if mapping.marker:
            text = _strip_marker(text, mapping.marker)
        if not text.strip():
            return []
        return [
            CommentRecord(
                local_id=f"{DESCRIPTION_PREFIX}{local_id}",
                body=text,
                public=True,
                author=self._person(search(mapping.requester, document)),
                authored_at=self._date(search(mapping.requested_at, document)),
            )
        ]

    def _comments(self, document: dict[str, Any], local_id: str) -> list[CommentRecord]:
        operation = self.config.operations.list_comments
        if operation is not None:
            context = self._context(id=local_id, ticket=document)
            if operation.when is not None and not search(operation.when, context):
                return []
            what = f"reading the comments of ticket {local_id}"
            listed = [
                c for items in self.client.pages(operation, context, what=what) for c in items
            ]
        else:
            listed = search(self.config.ticket.comments, document) or []
        return [self._comment(item) for item in listed]

    def _comment(self, document: Any) -> CommentRecord:
        mapping = self.config.comment
        body = _text(search(mapping.body, document))
        if mapping.shared_uuid or not mapping.marker:
            shared_uuid = self._breadcrumb(search(mapping.shared_uuid, document), mapping.marker)
        else:
            # Only where the bridge puts it: the body's last line, exactly. A person quoting a
            # bridged comment ("> [nhd:...]") writes a new comment, never the quoted one.
            shared_uuid = _last_line_marker(body, mapping.marker)
        if mapping.marker and shared_uuid is not None and not mapping.shared_uuid:
            body = "\n".join(body.splitlines()[:-1]).rstrip()
        refs = search(mapping.attachments, document) or []
        return CommentRecord(
            local_id=str(search(mapping.id, document)),
            body=body,
            public=bool(search(mapping.public, document)),
            author=self._person(search(mapping.author, document)),
            authored_at=self._date(search(mapping.authored_at, document)),
            html_body=search(mapping.html_body, document),
            attachments=[
                AttachmentRef(
                    filename=str(ref["filename"]),
                    ref=str(ref["ref"]),
                    content_type=ref.get("content_type"),
                    size=int(ref["size"]) if ref.get("size") is not None else None,
                )
                for ref in refs
                if isinstance(ref, dict) and ref.get("ref") is not None
            ],
            shared_uuid=shared_uuid,
        )

    def _breadcrumb(self, value: Any, marker: str | None) -> str | None:
        if value in (None, ""):
            return None
        if marker is None:
            return str(value)
        # A line of its own that is the marker, never one quoted ("> <!-- nhd:... -->").
        pattern = _marker_pattern(marker)
        for line in str(value).splitlines():
            found = pattern.fullmatch(line.strip())
            if found:
                return found["uuid"]
        return None

    def _marker(self, marker: str | None, shared_uuid: str | None) -> str | None:
        if marker is None or shared_uuid is None:
            return None
        return marker.replace("{uuid}", shared_uuid)

    def _date(self, value: Any) -> datetime | None:
        if value in (None, ""):
            return None
        fmt = self.config.dates.format
        if fmt and isinstance(value, str):
            parsed = datetime.strptime(value, fmt)
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        return parse_timestamp(value)

    def _send_date(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        fmt = self.config.dates.send_format or self.config.dates.format or ISO_SEND_FORMAT
        return parse_timestamp(value).strftime(fmt)

    # --- helpers: values ------------------------------------------------------------------------

    def _from_tracker(self, field: str, value: Any) -> Any:
        table = self.config.value_maps.get(field)
        if table is None or value is None:
            return value
        return table.get(str(value), value)

    def _to_tracker(self, field: str, value: Any) -> Any:
        table = self.config.value_maps.get(field)
        if table is None or value is None:
            return value
        for tracker_value, name in table.items():
            if name == value:
                return tracker_value
        return value

    def _custom_fields_out(self, fields: dict[str, Any] | None) -> dict[str, Any] | None:
        if fields is None:
            return None
        return {name: self._to_tracker(name, value) for name, value in fields.items()}


# --- helpers ------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _actor(value: Any, people_url: str | None) -> Actor | None:
    if not isinstance(value, dict) or value.get("uuid") in (None, ""):
        return None
    uuid = str(value["uuid"])
    return Actor(
        uuid=nhd_uuid(people_url, "users", uuid) if people_url else uuid,
        name=_text(value.get("name")),
        role=value.get("role"),
    )


def _marker_pattern(marker: str) -> re.Pattern[str]:
    before, _, after = marker.partition("{uuid}")
    return re.compile(re.escape(before) + r"(?P<uuid>[A-Za-z0-9_.:-]+)" + re.escape(after))


def _last_line_marker(body: str, marker: str) -> str | None:
    lines = body.rstrip().splitlines()
    found = _marker_pattern(marker).fullmatch(lines[-1].strip()) if lines else None
    return found["uuid"] if found else None


def _strip_marker(body: str, marker: str) -> str:
    """The text without the bridge's marker lines (a ticket body: GitHub's description)."""
    pattern = _marker_pattern(marker)
    kept = [line for line in body.splitlines() if not pattern.fullmatch(line.strip())]
    return "\n".join(kept).rstrip()


def _fingerprint(document: Any) -> str:
    text = json.dumps(document, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha1(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Seen:
    """A ticket as a read saw it: its fingerprint, its ``updated_at``, when the tracker answered."""

    fingerprint: str
    updated_at: str
    read_at: str | None = None


@dataclass(frozen=True)
class Resume:
    """Where an unfinished resumable read is: its position (the last key, or the items read),
    the newest ``updated_at`` so far and the tracker's time when the read began."""

    key: Any
    newest: datetime | None
    started: datetime | None


@dataclass
class CursorState:
    since: datetime | None
    seen: dict[str, Seen]
    resume: Resume | None


def _parse_cursor(cursor: str | None) -> CursorState:
    if not cursor:
        return CursorState(None, {}, None)
    try:
        data = json.loads(cursor)
        since = parse_timestamp(data["since"]) if data.get("since") else None
        seen = {
            str(k): Seen(str(v[0]), str(v[1]), str(v[2]) if len(v) > 2 and v[2] else None)
            for k, v in (data.get("seen") or {}).items()
        }
        resume = None
        if data.get("resume"):
            raw = data["resume"]
            resume = Resume(
                key=raw["key"],
                newest=parse_timestamp(raw["newest"]) if raw.get("newest") else None,
                started=parse_timestamp(raw["started"]) if raw.get("started") else None,
            )
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        raise PermanentError(
            f"the stored cursor {cursor[:80]!r} was not written by the REST adapter; reset this "
            "instance's cursor to read everything again"
        ) from None
    return CursorState(since, seen, resume)


def _cursor(
    since: datetime | None,
    seen: dict[str, Seen],
    lookback: timedelta,
    resume: Resume | None = None,
) -> str:
    kept: dict[str, Seen] = {}
    if since is not None:
        # The next read lists from since - lookback, and a second-resolution ">=" filter may
        # return a second more (Redmine's does): fingerprints cover that too.
        horizon = since - lookback - FILTER_SLACK
        recent = [(k, v) for k, v in seen.items() if parse_timestamp(v.updated_at) >= horizon]
        recent.sort(key=lambda item: item[1].updated_at, reverse=True)
        kept = dict(recent[:MAX_CURSOR_FINGERPRINTS])
        if resume is None:
            seen.clear()
            seen.update(kept)
    if resume is not None:
        # Mid-read: what this read saw is kept whole until it ends (the window is not known).
        kept = dict(list(seen.items())[-MAX_CURSOR_FINGERPRINTS:])
    data: dict[str, Any] = {
        "v": CURSOR_VERSION,
        "since": since.isoformat() if since is not None else None,
        "seen": {k: [v.fingerprint, v.updated_at, v.read_at] for k, v in kept.items()},
    }
    if resume is not None:
        data["resume"] = {
            "key": resume.key,
            "newest": _iso(resume.newest),
            "started": _iso(resume.started),
        }
    return json.dumps(data, separators=(",", ":"))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _server_date(response: httpx.Response) -> datetime | None:
    """The tracker's clock, from the answer's ``Date`` header (whole seconds, rounded down)."""
    value = response.headers.get("Date")
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).astimezone(UTC)
    except (TypeError, ValueError):
        return None
