"""The adapter contract suite: every behaviour the engine relies on, as tests any adapter inherits.

Like singer-sdk's ``get_tap_test_class``, an adapter's whole conformance test is one class::

    import pytest
    from nhd_bridge.testing import AdapterContract

    class TestAcmeAdapter(AdapterContract):
        @pytest.fixture
        def adapter(self):
            adapter = AcmeAdapter("contract", AcmeConfig(url=..., token=...))
            yield adapter          # over an empty tracker (a fresh project, a sandbox, a cassette)
            adapter.close()

The suite uses only the public :class:`~nhd_bridge.core.adapter.Adapter` API. What
``adapter.capabilities`` says the tracker cannot do is skipped with the reason, not failed. The
class attributes below hold the sample data the tests write; override them where a tracker needs
other values (its own custom field names, people it knows, an id format for a missing ticket).
"""

from __future__ import annotations

import io
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from typing import Any, ClassVar
from uuid import uuid4

import pytest
from pydantic import BaseModel, SecretStr

from nhd_bridge.core.adapter import (
    Adapter,
    AdapterError,
    AttachmentUpload,
    ChangePage,
    CheckResult,
    CommentDraft,
    CommentRecord,
    PermanentError,
    TicketChanges,
    TicketDraft,
    TicketRecord,
)
from nhd_bridge.core.model import Actor

__all__ = ["AdapterContract"]


class AdapterContract:
    """Base class of an adapter's contract tests; a subclass provides the ``adapter`` fixture.

    Not named ``Test...`` so that pytest collects it only through the subclasses.
    """

    #: Statuses the tests use when ``capabilities.statuses`` is not set: NHD's own.
    fallback_statuses: ClassVar[tuple[str, ...]] = ("open", "pending", "solved")
    #: Tags a ticket is created with, and the ones an update replaces them with.
    contract_tags: ClassVar[tuple[str, ...]] = ("billing", "vip")
    contract_replacement_tags: ClassVar[tuple[str, ...]] = ("urgent",)
    #: Custom fields a ticket is created with (two or more), and a change to some of them only.
    contract_custom_fields: ClassVar[dict[str, Any]] = {"severity": "high", "region": "emea"}
    contract_custom_field_change: ClassVar[dict[str, Any]] = {"severity": "low"}
    #: People the tracker can hold; ``None`` skips the checks that need them.
    contract_requester: ClassVar[Actor | None] = Actor(
        uuid="nhd-contract-requester", name="Ada Lovelace", role="end-user"
    )
    contract_author: ClassVar[Actor | None] = Actor(
        uuid="nhd-contract-author", name="Grace Hopper", role="agent"
    )
    #: A well-formed local id that no ticket has.
    unknown_local_id: ClassVar[str] = "999999999"
    #: Tickets created to check pagination; the fixture's page size should be smaller.
    pagination_ticket_count: ClassVar[int] = 7
    #: Tickets that may come back when resuming from the last cursor with nothing changed (the
    #: boundary); ``None`` for adapters whose lookback window re-reads every recent change.
    max_boundary_rereads: ClassVar[int | None] = 1
    #: A string that is not a cursor of this tracker; ``changed_since`` must refuse it.
    unknown_cursor: ClassVar[str] = "not-a-cursor-of-this-tracker"
    #: Breadcrumbs are random by default, so runs against a shared sandbox cannot meet; replayed
    #: cassettes need the same ones every run: ``True`` numbers them 1, 2, 3... in each test.
    deterministic_uuids: ClassVar[bool] = False

    # --- create and get -------------------------------------------------------------------------

    def test_create_returns_the_stored_ticket_with_its_breadcrumb(self, adapter: Adapter) -> None:
        draft = self._draft("Printer on fire")
        record = adapter.create(draft)
        assert isinstance(record, TicketRecord)
        assert isinstance(record.local_id, str) and record.local_id, "create gave no local_id"
        assert record.subject == draft.subject
        assert isinstance(record.status, str) and record.status, "a created ticket has a status"
        assert record.shared_uuid == draft.shared_uuid, (
            "create must store the shared uuid as a breadcrumb and return it"
        )
        if record.human_id is not None:
            assert record.human_id.strip(), "human_id, when given, is what people call the ticket"

    def test_created_ticket_reads_back_as_created(self, adapter: Adapter) -> None:
        draft = self._draft(
            "Invoice shows the wrong VAT rate",
            status=self._statuses(adapter)[0],
            requester=self.contract_requester,
            tags=self._tags(adapter, self.contract_tags),
            custom_fields=self._custom_fields(adapter, self.contract_custom_fields),
        )
        created = adapter.create(draft)
        record = adapter.get(created.local_id)
        assert record is not None, f"get({created.local_id!r}) lost the ticket just created"
        assert record.local_id == created.local_id
        assert record.subject == draft.subject
        assert record.status == draft.status
        assert record.shared_uuid == draft.shared_uuid
        if self.contract_requester is not None:
            _assert_same_person(record.requester, self.contract_requester, "requester")
        if adapter.capabilities.tags:
            assert sorted(record.tags) == sorted(self.contract_tags)
        if adapter.capabilities.custom_fields:
            _assert_fields_hold(record.custom_fields, self.contract_custom_fields)

    def test_timestamps_are_timezone_aware(self, adapter: Adapter) -> None:
        created = adapter.create(self._draft("Timestamps"))
        adapter.add_comment(created.local_id, self._comment("When was this?", public=True))
        record = _get(adapter, created.local_id)
        # A naive time is read as local time somewhere down the line, and then the diff churns.
        assert record.updated_at.tzinfo is not None, "updated_at must carry a UTC offset"
        if record.requested_at is not None:
            assert record.requested_at.tzinfo is not None, "requested_at must carry a UTC offset"
        for comment in record.comments:
            if comment.authored_at is not None:
                assert comment.authored_at.tzinfo is not None, "authored_at must carry an offset"

    def test_get_of_an_unknown_ticket_is_none(self, adapter: Adapter) -> None:
        assert adapter.get(self.unknown_local_id) is None, (
            "get must return None when the tracker says there is no such ticket"
        )

    # --- breadcrumbs ----------------------------------------------------------------------------

    def test_find_by_shared_uuid_finds_the_created_ticket(self, adapter: Adapter) -> None:
        adapter.create(self._draft("Decoy"))
        draft = self._draft("Find me after a crash")
        created = adapter.create(draft)
        found = adapter.find_by_shared_uuid(draft.shared_uuid)
        assert found is not None, (
            "find_by_shared_uuid must find a ticket by the breadcrumb create stored; without it "
            "a crash between create and commit makes a duplicate"
        )
        assert found.local_id == created.local_id
        assert found.shared_uuid == draft.shared_uuid

    def test_a_second_create_with_one_breadcrumb_is_refused(self, adapter: Adapter) -> None:
        """Where the tracker declares ``unique_breadcrumbs``, the engine may count on it: a create
        repeated with a breadcrumb a ticket already carries (a retry after a lost answer, a
        pending link whose lookup failed) is refused, and the first ticket stays the only one."""
        _require(adapter, "unique_breadcrumbs")
        draft = self._draft("Created once")
        first = adapter.create(draft)
        with pytest.raises(PermanentError):
            adapter.create(replace(draft, subject="Created twice"))
        found = adapter.find_by_shared_uuid(draft.shared_uuid)
        assert found is not None and found.local_id == first.local_id, (
            "after a refused second create, find_by_shared_uuid must still find the first ticket"
        )

    def test_find_by_unknown_shared_uuid_is_none(self, adapter: Adapter) -> None:
        adapter.create(self._draft("Someone else's ticket"))
        assert adapter.find_by_shared_uuid(self.new_shared_uuid()) is None

    # --- comments -------------------------------------------------------------------------------

    def test_public_comment_comes_back_public_with_its_breadcrumb(self, adapter: Adapter) -> None:
        created = adapter.create(self._draft("Public comment"))
        draft = self._comment("We are on it.", public=True)
        comment_id = adapter.add_comment(created.local_id, draft)
        comment = _comment(_get(adapter, created.local_id), comment_id)
        assert comment.public is True
        assert comment.body.strip() == draft.body
        assert comment.shared_uuid == draft.shared_uuid, (
            "add_comment must store the comment's shared uuid as a breadcrumb"
        )

    def test_private_comment_stays_private(self, adapter: Adapter) -> None:
        _require(adapter, "private_comments")
        created = adapter.create(self._draft("Private comment"))
        public = self._comment("Dear customer, we are looking into it.", public=True)
        private = self._comment("Agents only: the customer is on the old plan.", public=False)
        public_id = adapter.add_comment(created.local_id, public)
        private_id = adapter.add_comment(created.local_id, private)
        record = _get(adapter, created.local_id)
        assert _comment(record, private_id).public is False, "a private comment came back public"
        assert _comment(record, private_id).body.strip() == private.body
        assert _comment(record, private_id).shared_uuid == private.shared_uuid
        assert _comment(record, public_id).public is True

    def test_comment_author_is_kept(self, adapter: Adapter) -> None:
        _require(adapter, "comment_author")
        if self.contract_author is None:
            pytest.skip("contract_author is None: no person this tracker knows to write as")
        created = adapter.create(self._draft("Comment author"))
        draft = self._comment("Signed by me.", public=True, author=self.contract_author)
        comment_id = adapter.add_comment(created.local_id, draft)
        comment = _comment(_get(adapter, created.local_id), comment_id)
        _assert_same_person(comment.author, self.contract_author, "comment author")

    def test_comments_come_back_in_chronological_order(self, adapter: Adapter) -> None:
        created = adapter.create(self._draft("Three comments"))
        bodies = ["First, the printer smoked.", "Second, it caught fire.", "Third, it is out."]
        ids = [
            adapter.add_comment(created.local_id, self._comment(body, public=True))
            for body in bodies
        ]
        record = _get(adapter, created.local_id)
        listed = [comment.local_id for comment in record.comments if comment.local_id in ids]
        assert listed == ids, "comments must be listed oldest first"
        assert [comment.body.strip() for comment in _in_order(record, ids)] == bodies
        times = [c.authored_at for c in _in_order(record, ids) if c.authored_at is not None]
        assert times == sorted(times), "authored_at must not go backwards along the comments"

    def test_edited_comment_reads_back_with_the_new_body(self, adapter: Adapter) -> None:
        _require(adapter, "edit_comments")
        created = adapter.create(self._draft("Edited comment"))
        draft = self._comment("Teh typo.", public=True)
        comment_id = adapter.add_comment(created.local_id, draft)
        adapter.edit_comment(created.local_id, comment_id, "The typo, fixed.")
        comment = _comment(_get(adapter, created.local_id), comment_id)
        assert comment.body.strip() == "The typo, fixed."
        assert comment.public is True, "editing a comment must not change its visibility"
        assert comment.shared_uuid == draft.shared_uuid, "editing must keep the breadcrumb"

    def test_attachment_round_trips_bytes_and_filename(self, adapter: Adapter) -> None:
        _require(adapter, "attachments")
        # Every byte value, so that a text decode or newline translation on the way shows.
        content = bytes(range(256)) * 8
        limit = adapter.capabilities.max_attachment_bytes
        if limit is not None:
            content = content[:limit]
        upload = AttachmentUpload(
            filename="printer-log.bin",
            open=lambda: io.BytesIO(content),
            content_type="application/octet-stream",
            size=len(content),
        )
        created = adapter.create(self._draft("Attachment"))
        draft = self._comment("Log attached.", public=True)
        draft.attachments = [upload]
        comment_id = adapter.add_comment(created.local_id, draft)
        comment = _comment(_get(adapter, created.local_id), comment_id)
        assert [ref.filename for ref in comment.attachments] == [upload.filename]
        with adapter.open_attachment(comment.attachments[0]) as stream:
            assert stream.read() == content, "the attachment's bytes changed on the way"

    # --- updates --------------------------------------------------------------------------------

    def test_updating_the_subject_leaves_status_and_tags_alone(self, adapter: Adapter) -> None:
        status = self._statuses(adapter)[0]
        tags = self._tags(adapter, self.contract_tags)
        fields = self._custom_fields(adapter, self.contract_custom_fields)
        created = adapter.create(
            self._draft("Old subject", status=status, tags=tags, custom_fields=fields)
        )
        adapter.update(created.local_id, TicketChanges(subject="Contract: New subject"))
        record = _get(adapter, created.local_id)
        assert record.subject == "Contract: New subject"
        assert record.status == status, "changing the subject must not touch the status"
        if tags is not None:
            assert sorted(record.tags) == sorted(tags), "changing the subject touched the tags"
        if fields:
            _assert_fields_hold(record.custom_fields, fields)

    def test_updating_the_status_leaves_the_subject_alone(self, adapter: Adapter) -> None:
        statuses = self._statuses(adapter)
        if len(statuses) < 2:
            pytest.skip("the tracker has a single status: nothing to change it to")
        draft = self._draft("Status change", status=statuses[0])
        created = adapter.create(draft)
        adapter.update(created.local_id, TicketChanges(status=statuses[1]))
        record = _get(adapter, created.local_id)
        assert record.status == statuses[1]
        assert record.subject == draft.subject, "changing the status touched the subject"

    def test_updating_tags_replaces_them(self, adapter: Adapter) -> None:
        _require(adapter, "tags")
        draft = self._draft("Tags", tags=list(self.contract_tags))
        created = adapter.create(draft)
        adapter.update(created.local_id, TicketChanges(tags=list(self.contract_replacement_tags)))
        record = _get(adapter, created.local_id)
        assert sorted(record.tags) == sorted(self.contract_replacement_tags), (
            "tags in an update are the new set, not additions"
        )
        assert record.subject == draft.subject

    def test_updating_custom_fields_sets_only_the_given_keys(self, adapter: Adapter) -> None:
        _require(adapter, "custom_fields")
        created = adapter.create(
            self._draft("Custom fields", custom_fields=dict(self.contract_custom_fields))
        )
        change = dict(self.contract_custom_field_change)
        adapter.update(created.local_id, TicketChanges(custom_fields=change))
        record = _get(adapter, created.local_id)
        _assert_fields_hold(record.custom_fields, {**self.contract_custom_fields, **change})

    # --- changes and cursors --------------------------------------------------------------------

    def test_changes_since_none_include_every_created_ticket(self, adapter: Adapter) -> None:
        created = {adapter.create(self._draft(f"Ticket {n}")).local_id for n in range(3)}
        seen = _ids(_read_all(adapter, None))
        assert created <= set(seen), f"changed_since(None) missed {sorted(created - set(seen))}"

    def test_ticket_updated_after_the_cursor_reappears(self, adapter: Adapter) -> None:
        first = adapter.create(self._draft("Before the cursor"))
        adapter.create(self._draft("Also before the cursor"))
        cursor = _last_cursor(_read_all(adapter, None))
        adapter.update(first.local_id, TicketChanges(subject="Contract: Changed after cursor"))
        resumed = {ticket.local_id: ticket for ticket in _tickets(_read_all(adapter, cursor))}
        assert first.local_id in resumed, (
            "a ticket changed after the cursor must come back when resuming from it"
        )
        assert resumed[first.local_id].subject == "Contract: Changed after cursor"

    def test_a_new_comment_brings_its_ticket_back(self, adapter: Adapter) -> None:
        created = adapter.create(self._draft("Quiet ticket"))
        cursor = _last_cursor(_read_all(adapter, None))
        draft = self._comment("Anyone there?", public=True)
        adapter.add_comment(created.local_id, draft)
        resumed = {ticket.local_id: ticket for ticket in _tickets(_read_all(adapter, cursor))}
        assert created.local_id in resumed, "a new comment is a change: the ticket must come back"
        bodies = [comment.body.strip() for comment in resumed[created.local_id].comments]
        assert draft.body in bodies, "the changed ticket must come with its new comment"

    def test_resuming_from_the_last_cursor_rereads_at_most_the_boundary(
        self, adapter: Adapter
    ) -> None:
        if self.max_boundary_rereads is None:
            pytest.skip("max_boundary_rereads is None: this adapter re-reads a lookback window")
        for n in range(4):
            adapter.create(self._draft(f"Read once {n}"))
        cursor = _last_cursor(_read_all(adapter, None))
        reread = _ids(_read_all(adapter, cursor))
        assert len(reread) <= self.max_boundary_rereads, (
            f"nothing changed after the cursor, yet {len(reread)} tickets came back: "
            "changed_since ignores its cursor or returns a cursor from before the page's end"
        )

    def test_a_full_read_sees_every_ticket_exactly_once(self, adapter: Adapter) -> None:
        count = self.pagination_ticket_count
        created = {adapter.create(self._draft(f"Paged {n}")).local_id for n in range(count)}
        pages = _read_all(adapter, None)
        seen = _ids(pages)
        repeated = sorted(local_id for local_id, n in Counter(seen).items() if n > 1)
        assert not repeated, f"tickets {repeated} came twice in one read: pages overlap"
        assert set(seen) == created, (
            f"missing {sorted(created - set(seen))}, unexpected {sorted(set(seen) - created)} "
            "(the fixture must give an empty tracker)"
        )
        assert all(page.cursor is not None for page in pages), "every page must carry a cursor"
        if len(pages) < 2:
            pytest.skip(
                f"all {count} tickets came in one page: set a smaller page size in the "
                "fixture to test pagination"
            )

    def test_resuming_from_a_page_cursor_reads_every_later_ticket(self, adapter: Adapter) -> None:
        count = self.pagination_ticket_count
        created = {adapter.create(self._draft(f"Paged resume {n}")).local_id for n in range(count)}
        first = next(iter(adapter.changed_since(None)), None)
        assert first is not None and first.cursor is not None, "a first page with a cursor"
        if created <= {ticket.local_id for ticket in first.tickets}:
            pytest.skip(
                f"all {count} tickets came in one page: set a smaller page size in the fixture"
            )
        # A run that stops after this page (a fault on the next one, a SIGTERM) keeps this
        # cursor; a cursor of "now" would skip the pages it never read, for good.
        later = set(_ids(_read_all(adapter, first.cursor)))
        unread = created - {ticket.local_id for ticket in first.tickets}
        assert unread <= later, (
            f"tickets {sorted(unread - later)} were on later pages, yet resuming from the first "
            "page's cursor skips them: a page's cursor must say how far that page got"
        )

    def test_an_update_moves_updated_at_forward(self, adapter: Adapter) -> None:
        created = adapter.create(self._draft("Updated at"))
        before = _get(adapter, created.local_id).updated_at
        adapter.update(created.local_id, TicketChanges(subject="Contract: Updated at, changed"))
        after = _get(adapter, created.local_id).updated_at
        if after == before:
            # A tracker counting whole seconds: the update may share the create's second.
            time.sleep(1.05)
            adapter.update(created.local_id, TicketChanges(subject="Contract: Changed again"))
            after = _get(adapter, created.local_id).updated_at
        assert after > before, (
            "updated_at did not move on update: the newest-wins conflict policy and every "
            "time-based cursor depend on it"
        )

    def test_an_unknown_cursor_is_refused(self, adapter: Adapter) -> None:
        adapter.create(self._draft("Unknown cursor"))
        with pytest.raises(AdapterError):
            # Reading from the start instead would re-send everything; reading nothing would
            # lose everything: a cursor the tracker did not make is an error.
            _read_all(adapter, self.unknown_cursor)

    def test_changes_come_oldest_first(self, adapter: Adapter) -> None:
        # Within a page. Across pages an adapter may follow a stable order (by id) that a change
        # made during the read cannot shift (ADR 0007); each page's cursor is what counts.
        first = adapter.create(self._draft("Oldest"))
        adapter.create(self._draft("Middle"))
        adapter.update(first.local_id, TicketChanges(subject="Contract: Oldest, changed last"))
        for page in _read_all(adapter, None):
            times = [ticket.updated_at for ticket in page.tickets]
            assert times == sorted(times), "changed_since must yield a page oldest change first"

    # --- statuses, secrets, preflight -----------------------------------------------------------

    def test_reported_statuses_are_declared_in_capabilities(self, adapter: Adapter) -> None:
        declared = adapter.capabilities.statuses
        if declared is None:
            pytest.skip("capabilities.statuses is not set: the tracker's statuses are open-ended")
        created = [
            adapter.create(self._draft(f"In {status}", status=status)) for status in declared
        ]
        created.append(adapter.create(self._draft("Default status")))
        reported = {record.status for record in created}
        reported |= {ticket.status for ticket in _tickets(_read_all(adapter, None))}
        reported |= {_get(adapter, record.local_id).status for record in created}
        undeclared = reported - set(declared)
        assert not undeclared, f"statuses {sorted(undeclared)} are not in capabilities.statuses"

    def test_a_status_outside_capabilities_is_refused(self, adapter: Adapter) -> None:
        declared = adapter.capabilities.statuses
        if declared is None:
            pytest.skip("capabilities.statuses is not set: the tracker's statuses are open-ended")
        unknown = "contract-no-such-status"
        assert unknown not in declared
        with pytest.raises(AdapterError):
            adapter.create(self._draft("Unknown status on create", status=unknown))
        created = adapter.create(self._draft("Unknown status on update"))
        with pytest.raises(AdapterError):
            adapter.update(created.local_id, TicketChanges(status=unknown))
        assert _get(adapter, created.local_id).status in declared

    def test_repr_hides_secrets(self, adapter: Adapter) -> None:
        secrets = [secret for secret in _secret_values(adapter.config) if secret]
        if not secrets:
            pytest.skip("the adapter's config holds no SecretStr value to leak")
        shown = {
            "repr(adapter)": repr(adapter),
            "str(adapter)": str(adapter),
            "repr(adapter.config)": repr(adapter.config),
            "str(adapter.config)": str(adapter.config),
        }
        for where, text in shown.items():
            for secret in secrets:
                assert secret not in text, f"{where} shows a secret from the config"

    def test_check_returns_check_results(self, adapter: Adapter) -> None:
        results = adapter.check()
        assert isinstance(results, list)
        assert all(isinstance(result, CheckResult) for result in results), (
            "check() must return CheckResult items"
        )

    # --- sample data ----------------------------------------------------------------------------

    def new_shared_uuid(self) -> str:
        """A breadcrumb for a draft: random, or numbered per test (``deterministic_uuids``)."""
        if not self.deterministic_uuids:
            return _new_uuid()
        # pytest makes a new instance of the class for every test: the numbering restarts.
        self._numbered = getattr(self, "_numbered", 0) + 1
        return f"{self._numbered:032x}"

    def _draft(self, subject: str, **fields: Any) -> TicketDraft:
        """A ticket draft with a fresh breadcrumb."""
        return TicketDraft(
            shared_uuid=self.new_shared_uuid(), subject=f"Contract: {subject}", **fields
        )

    def _comment(self, body: str, *, public: bool, author: Actor | None = None) -> CommentDraft:
        return CommentDraft(
            shared_uuid=self.new_shared_uuid(), body=body, public=public, author=author
        )

    def _statuses(self, adapter: Adapter) -> tuple[str, ...]:
        return adapter.capabilities.statuses or self.fallback_statuses

    def _tags(self, adapter: Adapter, tags: Iterable[str]) -> list[str] | None:
        return list(tags) if adapter.capabilities.tags else None

    def _custom_fields(self, adapter: Adapter, fields: dict[str, Any]) -> dict[str, Any] | None:
        return dict(fields) if adapter.capabilities.custom_fields else None


# --- helpers ------------------------------------------------------------------------------------


def _new_uuid() -> str:
    return uuid4().hex


def _require(adapter: Adapter, capability: str) -> None:
    if not getattr(adapter.capabilities, capability):
        pytest.skip(f"capabilities.{capability} is false for {type(adapter).__name__}")


def _get(adapter: Adapter, local_id: str) -> TicketRecord:
    record = adapter.get(local_id)
    assert record is not None, f"get({local_id!r}) lost a ticket this test created"
    return record


def _comment(record: TicketRecord, comment_id: str) -> CommentRecord:
    for comment in record.comments:
        if comment.local_id == comment_id:
            return comment
    listed = [comment.local_id for comment in record.comments]
    raise AssertionError(
        f"comment {comment_id!r} (the id add_comment returned) is not on ticket "
        f"{record.local_id!r}, which lists {listed}"
    )


def _in_order(record: TicketRecord, comment_ids: list[str]) -> list[CommentRecord]:
    return [comment for comment in record.comments if comment.local_id in comment_ids]


def _read_all(adapter: Adapter, cursor: str | None) -> list[ChangePage]:
    return list(adapter.changed_since(cursor))


def _tickets(pages: list[ChangePage]) -> list[TicketRecord]:
    return [ticket for page in pages for ticket in page.tickets]


def _ids(pages: list[ChangePage]) -> list[str]:
    return [ticket.local_id for ticket in _tickets(pages)]


def _last_cursor(pages: list[ChangePage]) -> str:
    assert pages, "changed_since(None) returned no page although tickets exist"
    cursor = pages[-1].cursor
    assert cursor is not None, "the last page must carry the cursor to resume from"
    return cursor


def _assert_same_person(actual: Actor | None, expected: Actor, role: str) -> None:
    assert actual is not None, f"the {role} was lost"
    assert actual.uuid == expected.uuid, f"the {role} came back as {actual.uuid!r}"


def _assert_fields_hold(actual: dict[str, Any], expected: dict[str, Any]) -> None:
    # Only the keys written: a tracker may have fields of its own on every ticket.
    differing = {
        key: actual.get(key) for key, value in expected.items() if actual.get(key) != value
    }
    assert not differing, f"custom fields {differing} differ from what was written: {expected}"


def _secret_values(value: Any) -> list[str]:
    """Every SecretStr value inside a config, nested models and collections included."""
    if isinstance(value, SecretStr):
        return [value.get_secret_value()]
    if isinstance(value, BaseModel):
        return [
            s for name in type(value).model_fields for s in _secret_values(getattr(value, name))
        ]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _secret_values(item)]
    if isinstance(value, list | tuple | set | frozenset):
        return [s for item in value for s in _secret_values(item)]
    return []
