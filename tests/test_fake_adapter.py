"""The fake tracker passes the adapter contract, and does what engine tests rely on beyond it."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

import nhd_bridge.testing
from nhd_bridge import (
    Actor,
    AdapterConfig,
    AttachmentUpload,
    Capabilities,
    CommentDraft,
    NotSupported,
    PermanentError,
    TicketChanges,
    TicketDraft,
    TransientError,
    hookimpl,
)
from nhd_bridge.core.plugins import PluginError, Plugins
from nhd_bridge.testing import (
    AdapterContract,
    FakeAdapter,
    FakeConfig,
    FakeTracker,
    registered_plugin,
)
from nhd_bridge.testing import fake as fake_module

SECRET = "s3cret-token-for-the-contract"


@pytest.fixture(autouse=True)
def fresh_trackers() -> Iterator[None]:
    FakeTracker.reset_all()
    yield
    FakeTracker.reset_all()


class TestFakeAdapter(AdapterContract):
    @pytest.fixture
    def adapter(self) -> Iterator[FakeAdapter]:
        # A page size below pagination_ticket_count, so pages really split.
        adapter = FakeAdapter("contract", FakeConfig(page_size=3, token=SecretStr(SECRET)))
        yield adapter
        adapter.close()


class TestFakeAdapterWithFewCapabilities(AdapterContract):
    """The suite skips what a tracker cannot hold, and checks declared statuses."""

    @pytest.fixture
    def adapter(self) -> Iterator[FakeAdapter]:
        config = FakeConfig(
            private_comments=False,
            attachments=False,
            tags=False,
            custom_fields=False,
            comment_author=False,
            edit_comments=False,
            statuses=["New", "In Progress", "Done"],
            page_size=2,
        )
        adapter = FakeAdapter("contract-few", config)
        yield adapter
        adapter.close()


# --- helpers ------------------------------------------------------------------------------------


def draft(subject: str = "Printer on fire", shared_uuid: str = "uuid-1") -> TicketDraft:
    return TicketDraft(shared_uuid=shared_uuid, subject=subject)


def comment(
    body: str = "Hello", *, public: bool = True, shared_uuid: str = "c-uuid"
) -> CommentDraft:
    return CommentDraft(shared_uuid=shared_uuid, body=body, public=public)


@pytest.fixture
def adapter() -> FakeAdapter:
    return FakeAdapter("alpha", FakeConfig(page_size=2))


@pytest.fixture
def tracker(adapter: FakeAdapter) -> FakeTracker:
    return adapter.tracker


# --- sharing by name ----------------------------------------------------------------------------


def test_adapter_and_test_share_the_tracker_by_name() -> None:
    ticket_id = FakeTracker.named("alpha").create_ticket("Made by a person")
    adapter = FakeAdapter("alpha", FakeConfig())
    record = adapter.get(ticket_id)
    assert record is not None and record.subject == "Made by a person"
    assert adapter.tracker is FakeTracker.named("alpha")


def test_reset_all_starts_every_tracker_empty() -> None:
    FakeTracker.named("alpha").create_ticket("Old data")
    FakeTracker.reset_all()
    assert FakeTracker.named("alpha").tickets() == []


def test_adapter_without_config_gets_the_defaults() -> None:
    adapter = FakeAdapter("alpha")
    assert adapter.config == FakeConfig()


def test_adapter_refuses_another_adapters_config() -> None:
    with pytest.raises(TypeError, match="FakeConfig"):
        FakeAdapter("alpha", AdapterConfig())


# --- capabilities -------------------------------------------------------------------------------


def test_capabilities_follow_the_instance_config() -> None:
    limited = FakeAdapter("a", FakeConfig(private_comments=False, statuses=["New", "Done"]))
    full = FakeAdapter("b", FakeConfig())
    assert limited.capabilities.private_comments is False
    assert limited.capabilities.statuses == ("New", "Done")
    assert full.capabilities.private_comments is True
    assert full.capabilities.statuses is None
    assert FakeAdapter.capabilities == Capabilities(), "the class default must not change"


def test_private_comment_where_there_are_none_is_refused() -> None:
    adapter = FakeAdapter("alpha", FakeConfig(private_comments=False))
    created = adapter.create(draft())
    with pytest.raises(PermanentError, match="private"):
        adapter.add_comment(created.local_id, comment(public=False))
    assert adapter.tracker.ticket(created.local_id).comments == []


def test_status_outside_the_declared_statuses_is_refused() -> None:
    adapter = FakeAdapter("alpha", FakeConfig(statuses=["New", "Done"]))
    created = adapter.create(draft())
    assert created.status == "New", "a ticket starts in the first declared status"
    with pytest.raises(PermanentError, match="no status 'solved'"):
        adapter.update(created.local_id, TicketChanges(status="solved"))


def test_tags_and_fields_where_there_are_none_are_refused() -> None:
    adapter = FakeAdapter("alpha", FakeConfig(tags=False, custom_fields=False))
    created = adapter.create(draft())
    with pytest.raises(PermanentError, match="tags"):
        adapter.update(created.local_id, TicketChanges(tags=["vip"]))
    with pytest.raises(PermanentError, match="custom fields"):
        adapter.update(created.local_id, TicketChanges(custom_fields={"severity": "high"}))


def test_attachment_over_the_size_limit_is_refused() -> None:
    adapter = FakeAdapter("alpha", FakeConfig(max_attachment_bytes=3))
    created = adapter.create(draft())
    too_big = comment()
    too_big.attachments = [AttachmentUpload("big.bin", open=lambda: io.BytesIO(b"1234"))]
    with pytest.raises(PermanentError, match="at most 3"):
        adapter.add_comment(created.local_id, too_big)


def test_editing_comments_where_it_is_not_possible_is_not_supported() -> None:
    adapter = FakeAdapter("alpha", FakeConfig(edit_comments=False))
    created = adapter.create(draft())
    comment_id = adapter.add_comment(created.local_id, comment())
    with pytest.raises(NotSupported):
        adapter.edit_comment(created.local_id, comment_id, "changed")


def test_without_comment_author_the_integration_user_writes() -> None:
    anonymous = FakeAdapter("beta", FakeConfig(comment_author=False))
    created = anonymous.create(draft())
    signed = comment()
    signed.author = Actor(uuid="u1", name="Grace")
    comment_id = anonymous.add_comment(created.local_id, signed)
    [stored] = anonymous.tracker.ticket(created.local_id).comments
    assert stored.local_id == comment_id
    assert stored.author is None


# --- writes and reads ---------------------------------------------------------------------------


def test_upload_streams_are_read_and_stored_as_bytes(adapter: FakeAdapter) -> None:
    created = adapter.create(draft())
    with_file = comment()
    with_file.attachments = [
        AttachmentUpload("log.txt", open=lambda: io.BytesIO(b"line\r\n"), content_type="text/plain")
    ]
    adapter.add_comment(created.local_id, with_file)
    [stored] = adapter.tracker.ticket(created.local_id).comments
    [ref] = stored.attachments
    assert (ref.filename, ref.content_type, ref.size) == ("log.txt", "text/plain", 6)
    assert adapter.tracker.attachment(ref.ref) == b"line\r\n"


def test_reads_return_copies(adapter: FakeAdapter, tracker: FakeTracker) -> None:
    ticket_id = tracker.create_ticket(
        "Original", tags=["a"], custom_fields={"nested": {"k": 1}}, comments=["first"]
    )
    record = adapter.get(ticket_id)
    assert record is not None
    record.subject = "Mutated"
    record.tags.append("b")
    record.custom_fields["nested"]["k"] = 2
    record.comments[0].body = "rewritten"
    stored = tracker.ticket(ticket_id)
    assert stored.subject == "Original"
    assert stored.tags == ["a"]
    assert stored.custom_fields == {"nested": {"k": 1}}
    assert stored.comments[0].body == "first"


def test_writes_copy_the_drafts(adapter: FakeAdapter) -> None:
    tags = ["a"]
    ticket_draft = TicketDraft(shared_uuid="u", subject="S", tags=tags)
    created = adapter.create(ticket_draft)
    tags.append("b")
    assert adapter.tracker.ticket(created.local_id).tags == ["a"]


def test_update_of_a_missing_ticket_is_a_permanent_error(adapter: FakeAdapter) -> None:
    with pytest.raises(PermanentError, match="no ticket '42'"):
        adapter.update("42", TicketChanges(subject="x"))


def test_an_empty_update_changes_nothing(adapter: FakeAdapter, tracker: FakeTracker) -> None:
    created = adapter.create(draft())
    cursor = tracker.cursor
    adapter.update(created.local_id, TicketChanges())
    assert tracker.cursor == cursor


def test_deleted_ticket_is_gone_for_the_adapter(adapter: FakeAdapter, tracker: FakeTracker) -> None:
    created = adapter.create(draft())
    tracker.delete_ticket(created.local_id)
    assert adapter.get(created.local_id) is None
    assert adapter.find_by_shared_uuid("uuid-1") is None
    assert list(adapter.changed_since(None)) == []


def test_an_unreadable_cursor_is_a_permanent_error(adapter: FakeAdapter) -> None:
    with pytest.raises(PermanentError, match="not a cursor"):
        adapter.changed_since("yesterday")


# --- acting as a person -------------------------------------------------------------------------


def test_each_change_by_a_person_moves_the_cursor_and_the_time(tracker: FakeTracker) -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    tracker.clock = lambda: now
    ticket_id = tracker.create_ticket("Clocked")
    for change in (
        lambda: tracker.set_status(ticket_id, "pending"),
        lambda: tracker.set_field(ticket_id, "severity", "high"),
        lambda: tracker.set_tags(ticket_id, ["vip"]),
        lambda: tracker.set_subject(ticket_id, "Clocked again"),
        lambda: tracker.add_comment(ticket_id, "Note", public=False),
    ):
        before = tracker.cursor
        now += timedelta(minutes=1)
        change()
        assert int(tracker.cursor) == int(before) + 1
        assert tracker.ticket(ticket_id).updated_at == now
    record = tracker.ticket(ticket_id)
    assert (record.status, record.tags, record.subject) == ("pending", ["vip"], "Clocked again")
    assert record.custom_fields == {"severity": "high"}
    assert record.comments[0].public is False


def test_changes_by_a_person_come_after_the_cursor(
    adapter: FakeAdapter, tracker: FakeTracker
) -> None:
    quiet = tracker.create_ticket("Quiet")
    busy = tracker.create_ticket("Busy")
    cursor = [page.cursor for page in adapter.changed_since(None)][-1]
    tracker.add_comment(busy, "New comment")
    resumed = [ticket.local_id for page in adapter.changed_since(cursor) for ticket in page.tickets]
    assert resumed == [busy]
    assert quiet not in resumed


def test_person_comments_with_files_can_be_opened(
    adapter: FakeAdapter, tracker: FakeTracker
) -> None:
    ticket_id = tracker.create_ticket("Files")
    tracker.add_comment(ticket_id, "See attached", attachments={"shot.png": b"\x89PNG"})
    [ref] = tracker.ticket(ticket_id).comments[0].attachments
    with adapter.open_attachment(ref) as stream:
        assert stream.read() == b"\x89PNG"


def test_person_comments_carry_no_breadcrumb(tracker: FakeTracker) -> None:
    requester = Actor(uuid="req", name="Ada")
    ticket_id = tracker.create_ticket("Mine", requester=requester, comments=["Help"])
    record = tracker.ticket(ticket_id)
    assert record.shared_uuid is None
    assert record.comments[0].shared_uuid is None
    assert record.comments[0].author == requester


def test_unknown_ticket_is_a_key_error_for_the_person(tracker: FakeTracker) -> None:
    with pytest.raises(KeyError, match="no ticket '7'"):
        tracker.ticket("7")


# --- fault injection and call counting ----------------------------------------------------------


def test_fail_next_fails_once_then_works(adapter: FakeAdapter, tracker: FakeTracker) -> None:
    tracker.fail_next("create", TransientError("503 from the fake", retry_after=2))
    with pytest.raises(TransientError) as raised:
        adapter.create(draft())
    assert raised.value.retry_after == 2
    assert tracker.tickets() == [], "a failed create must not write"
    adapter.create(draft())
    assert len(tracker.tickets()) == 1
    assert tracker.calls["create"] == 2, "failed calls count too, like requests that reached it"


def test_fail_next_can_fail_several_times(adapter: FakeAdapter, tracker: FakeTracker) -> None:
    tracker.fail_next("get", TransientError("timeout"), times=2)
    for _ in range(2):
        with pytest.raises(TransientError):
            adapter.get("1")
    assert adapter.get("1") is None


def test_fail_next_without_a_count_fails_until_cleared(
    adapter: FakeAdapter, tracker: FakeTracker
) -> None:
    tracker.fail_next("get", TransientError("down"), times=None)
    for _ in range(5):
        with pytest.raises(TransientError):
            adapter.get("1")
    tracker.clear_faults()
    assert adapter.get("1") is None


def test_fail_next_when_picks_the_call_by_its_arguments(
    adapter: FakeAdapter, tracker: FakeTracker
) -> None:
    first = adapter.create(draft(shared_uuid="u1")).local_id
    second = adapter.create(draft(shared_uuid="u2")).local_id
    tracker.fail_next(
        "add_comment", PermanentError("locked"), when=lambda local_id, **_: local_id == second
    )
    adapter.add_comment(first, comment())
    with pytest.raises(PermanentError, match="locked"):
        adapter.add_comment(second, comment())
    adapter.add_comment(second, comment())
    assert len(tracker.ticket(second).comments) == 1


def test_fail_after_writes_then_raises(adapter: FakeAdapter, tracker: FakeTracker) -> None:
    tracker.fail_after("create", TransientError("connection reset after the write"))
    with pytest.raises(TransientError):
        adapter.create(draft(shared_uuid="crash-uuid"))
    recovered = adapter.find_by_shared_uuid("crash-uuid")
    assert recovered is not None, "the write happened: the breadcrumb finds it"


def test_fail_after_on_a_comment_keeps_the_comment(
    adapter: FakeAdapter, tracker: FakeTracker
) -> None:
    created = adapter.create(draft())
    tracker.fail_after("add_comment", TransientError("lost response"))
    with pytest.raises(TransientError):
        adapter.add_comment(created.local_id, comment(shared_uuid="comment-crumb"))
    [stored] = tracker.ticket(created.local_id).comments
    assert stored.shared_uuid == "comment-crumb"


def test_a_read_can_break_halfway_through_the_pages(
    adapter: FakeAdapter, tracker: FakeTracker
) -> None:
    for n in range(5):
        tracker.create_ticket(f"Ticket {n}")
    tracker.fail_next(
        "changed_since_page", TransientError("page 2 timed out"), when=lambda cursor: cursor != "0"
    )
    pages = adapter.changed_since(None)
    assert len(next(pages).tickets) == 2
    with pytest.raises(TransientError, match="page 2"):
        next(pages)


def test_a_failing_changed_since_raises_when_called(
    adapter: FakeAdapter, tracker: FakeTracker
) -> None:
    tracker.fail_next("changed_since", TransientError("search is down"))
    with pytest.raises(TransientError):
        adapter.changed_since(None)


def test_fault_on_an_unknown_call_is_refused(tracker: FakeTracker) -> None:
    with pytest.raises(ValueError, match="no adapter call 'add_coment'"):
        tracker.fail_next("add_coment", TransientError("x"))


def test_calls_count_pages_and_close(adapter: FakeAdapter, tracker: FakeTracker) -> None:
    for n in range(4):
        tracker.create_ticket(f"Ticket {n}")
    list(adapter.changed_since(None))
    adapter.close()
    # Four tickets in pages of two: the third fetch finds the end.
    assert tracker.calls["changed_since"] == 1
    assert tracker.calls["changed_since_page"] == 3
    assert tracker.calls["close"] == 1
    assert adapter.closed


# --- plugin registration ------------------------------------------------------------------------


def test_registered_plugin_adds_the_fake_kind_for_the_block_only() -> None:
    plugins = Plugins(load_entry_points=False)
    with registered_plugin(plugins, fake_module) as plugin:
        assert plugin is fake_module
        assert plugins.adapter_class("fake") is FakeAdapter
    with pytest.raises(PluginError, match="unknown adapter kind 'fake'"):
        plugins.adapter_class("fake")
    assert plugins.plugin_names == []


def test_registered_plugin_unregisters_when_the_block_raises() -> None:
    plugins = Plugins(load_entry_points=False)
    with pytest.raises(RuntimeError), registered_plugin(plugins, fake_module, name="the-fake"):
        assert plugins.plugin_names == ["the-fake"]
        raise RuntimeError("test failed inside")
    assert plugins.plugin_names == []


def test_registered_plugin_takes_back_a_plugin_that_fails_validation() -> None:
    class MisspelledArgument:
        @hookimpl
        def nhd_register_adapters(self, registrar):  # type: ignore[no-untyped-def]
            """Wrong argument name: pluggy refuses it."""

    plugins = Plugins(load_entry_points=False)
    with (
        pytest.raises(Exception, match="registrar"),
        registered_plugin(plugins, MisspelledArgument()),
    ):
        pass
    assert plugins.plugin_names == []


def test_testing_package_exports_its_public_api() -> None:
    assert sorted(nhd_bridge.testing.__all__) == [
        "AdapterContract",
        "FakeAdapter",
        "FakeConfig",
        "FakeTracker",
        "FaultProxy",
        "registered_plugin",
    ]
    for name in nhd_bridge.testing.__all__:
        assert getattr(nhd_bridge.testing, name) is not None
