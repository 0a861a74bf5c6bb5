"""The embedded local tracker: its storage and domain API, its adapter, and the contract suite."""

from __future__ import annotations

import io
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import BinaryIO

import pytest
from pydantic import ValidationError

import nhd_bridge.adapters.local as local_plugin
from nhd_bridge.adapters.local import (
    DEFAULT_MAX_ATTACHMENT_BYTES,
    LocalAdapter,
    LocalConfig,
    LocalTracker,
    LocalTrackerError,
    UnknownTicket,
    local_person,
)
from nhd_bridge.adapters.local import adapter as local
from nhd_bridge.core.adapter import (
    AdapterConfig,
    AttachmentUpload,
    CommentDraft,
    PermanentError,
    TicketChanges,
    TicketDraft,
    TransientError,
)
from nhd_bridge.core.model import TICKET_STATUSES, Actor
from nhd_bridge.core.plugins import Plugins
from nhd_bridge.testing import AdapterContract, registered_plugin

# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def config(tmp_path: Path) -> LocalConfig:
    return LocalConfig(path=tmp_path / "tracker.db")


@pytest.fixture
def tracker(config: LocalConfig) -> Iterator[LocalTracker]:
    with LocalTracker(config) as tracker:
        yield tracker


@pytest.fixture
def adapter(config: LocalConfig) -> Iterator[LocalAdapter]:
    adapter = LocalAdapter("helpdesk", config)
    yield adapter
    adapter.close()


def _last_cursor(tracker: LocalTracker) -> str | None:
    pages = list(tracker.changed_since(None))
    return pages[-1].cursor if pages else None


def _changed_ids(tracker: LocalTracker, cursor: str | None) -> list[str]:
    return [ticket.local_id for page in tracker.changed_since(cursor) for ticket in page.tickets]


def _file(content: bytes, name: str = "notes.txt") -> local.NewAttachment:
    return (name, None, io.BytesIO(content))


class _Chunky(io.RawIOBase):
    """A stream that hands out its bytes in small reads, like a network response."""

    def __init__(self, size: int, chunk: int = 1000):
        self.remaining = size
        self.chunk = chunk
        self.reads = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        self.reads += 1
        count = min(self.remaining, self.chunk if size < 0 else min(size, self.chunk))
        self.remaining -= count
        return b"x" * count


# --- configuration ------------------------------------------------------------------------------


def test_config_defaults_follow_the_nhd_vocabulary_and_a_25_mib_limit(tmp_path: Path) -> None:
    config = LocalConfig(path=tmp_path / "desk.db")
    assert config.statuses == list(TICKET_STATUSES)
    assert config.page_size == 500
    assert config.max_attachment_bytes == DEFAULT_MAX_ATTACHMENT_BYTES == 25 * 1024 * 1024
    assert config.attachments_folder == tmp_path / "desk-attachments"


def test_default_attachments_folder_follows_a_rebased_path(tmp_path: Path) -> None:
    # The config loader rebases relative paths on the YAML folder with model_copy, after
    # validation: the default folder must follow, not stay computed from the relative path.
    config = LocalConfig(path=Path("data/desk.db"))
    rebased = config.model_copy(update={"path": tmp_path / "data/desk.db"})
    assert rebased.attachments_folder == tmp_path / "data/desk-attachments"


def test_explicit_attachments_dir_is_used(tmp_path: Path) -> None:
    config = LocalConfig(path=tmp_path / "desk.db", attachments_dir=tmp_path / "files")
    assert config.attachments_folder == tmp_path / "files"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"path": ":memory:"}, "not a database file"),
        ({"path": ""}, "not a database file"),
        ({"statuses": []}, "at least one status"),
        ({"statuses": ["open", " "]}, "cannot be blank"),
        ({"statuses": ["open", "Open"]}, "listed twice"),
        ({"page_size": 0}, "greater than 0"),
        ({"max_attachment_bytes": 0}, "greater than 0"),
        ({"colour": "blue"}, "Extra inputs are not permitted"),
    ],
)
def test_config_refuses_unusable_values_with_a_clear_message(
    tmp_path: Path, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        LocalConfig.model_validate({"path": str(tmp_path / "t.db"), **options})


def test_config_accepts_no_attachment_limit(tmp_path: Path) -> None:
    assert (
        LocalConfig(path=tmp_path / "t.db", max_attachment_bytes=None).max_attachment_bytes is None
    )


# --- opening the database -----------------------------------------------------------------------


def test_opening_creates_the_database_its_folders_and_the_attachments_folder(
    tmp_path: Path,
) -> None:
    config = LocalConfig(path=tmp_path / "deep" / "er" / "desk.db")
    with LocalTracker(config):
        assert config.path.is_file()
        assert (tmp_path / "deep" / "er" / "desk-attachments").is_dir()


def test_database_uses_wal_foreign_keys_and_a_schema_version(tracker: LocalTracker) -> None:
    with closing(sqlite3.connect(tracker.path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA user_version").fetchone()[0] == local.SCHEMA_VERSION >= 1
    with tracker._read() as db:  # foreign keys are per connection: check the tracker's own
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_tickets_survive_reopening(config: LocalConfig) -> None:
    with LocalTracker(config) as tracker:
        tracker.create_ticket("Persistent", tags=["kept"])
    with LocalTracker(config) as tracker:
        ticket = tracker.get(1)
    assert ticket is not None and ticket.subject == "Persistent" and ticket.tags == ["kept"]


def test_a_database_from_a_newer_version_is_refused(config: LocalConfig) -> None:
    LocalTracker(config).close()
    with closing(sqlite3.connect(config.path)) as db:
        db.execute(f"PRAGMA user_version = {local.SCHEMA_VERSION + 1}")
        db.commit()
    with pytest.raises(LocalTrackerError, match="newer than this nhd_bridge"):
        LocalTracker(config)


def test_a_file_that_is_not_a_database_is_a_permanent_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_text("just some text, long enough to be read as a database header\n" * 20)
    with pytest.raises(PermanentError, match="not a database"):
        LocalTracker(LocalConfig(path=path))


def test_a_closed_tracker_says_so(config: LocalConfig) -> None:
    tracker = LocalTracker(config)
    tracker.close()
    with pytest.raises(LocalTrackerError, match="is closed"):
        tracker.get(1)


# --- creating and reading tickets ---------------------------------------------------------------


def test_create_stores_every_field_and_returns_the_ticket(tracker: LocalTracker) -> None:
    requester = local_person("Ada Lovelace", "end-user")
    asked = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    ticket = tracker.create_ticket(
        "Printer on fire",
        status="open",
        requester=requester,
        tags=["vip", "billing", "vip"],
        custom_fields={"severity": "high", "count": 3, "gone": None},
        shared_uuid="shared-1",
        requested_at=asked,
    )
    assert ticket.local_id == "1"
    assert ticket.human_id == "#1"
    assert ticket.subject == "Printer on fire"
    assert ticket.status == "open"
    assert ticket.requester == requester
    assert ticket.requested_at == asked
    assert ticket.tags == ["billing", "vip"]  # a set: sorted, no repeats
    assert ticket.custom_fields == {"severity": "high", "count": 3}  # None means absent
    assert ticket.shared_uuid == "shared-1"
    assert ticket.comments == []
    assert ticket.updated_at.tzinfo is not None
    assert tracker.get("1") == tracker.get("#1") == tracker.get(1) == ticket


def test_new_tickets_take_the_first_status_of_the_vocabulary(tmp_path: Path) -> None:
    config = LocalConfig(path=tmp_path / "t.db", statuses=["Triage", "Doing", "Done"])
    with LocalTracker(config) as tracker:
        assert tracker.create_ticket("Default").status == "Triage"


def test_statuses_match_ignoring_case_and_are_stored_as_the_vocabulary_spells_them(
    tracker: LocalTracker,
) -> None:
    assert tracker.create_ticket("Shouting", status="SOLVED").status == "solved"


def test_an_unknown_status_is_refused_naming_the_known_ones(tracker: LocalTracker) -> None:
    with pytest.raises(LocalTrackerError, match=r"unknown status 'done'.*new, open, pending"):
        tracker.create_ticket("Nope", status="done")
    ticket = tracker.create_ticket("Yes")
    with pytest.raises(LocalTrackerError, match="unknown status 'done'"):
        tracker.set_status(ticket.local_id, "done")
    with pytest.raises(LocalTrackerError, match="unknown status"):
        tracker.list_tickets(status="done")


def test_naive_datetimes_are_taken_as_utc(tracker: LocalTracker) -> None:
    ticket = tracker.create_ticket("Naive", requested_at=datetime(2024, 1, 2, 3, 4, 5))
    assert ticket.requested_at == datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_other_timezones_are_stored_in_utc(tracker: LocalTracker) -> None:
    paris = datetime(2024, 1, 2, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    ticket = tracker.create_ticket("Paris", requested_at=paris)
    assert ticket.requested_at is not None
    assert ticket.requested_at.utcoffset() == timedelta(0)
    assert ticket.requested_at == paris


def test_a_second_ticket_with_the_same_shared_uuid_is_refused(tracker: LocalTracker) -> None:
    tracker.create_ticket("First", shared_uuid="same")
    with pytest.raises(LocalTrackerError, match=r"#1 .* already carries shared uuid same"):
        tracker.create_ticket("Second", shared_uuid="same")
    assert [t.subject for t in tracker.list_tickets()] == ["First"]


def test_tags_given_as_one_string_are_refused(tracker: LocalTracker) -> None:
    with pytest.raises(LocalTrackerError, match="list of strings"):
        tracker.create_ticket("Tags", tags="urgent")


def test_blank_tags_are_refused(tracker: LocalTracker) -> None:
    with pytest.raises(LocalTrackerError, match="non-blank"):
        tracker.create_ticket("Tags", tags=["ok", "  "])


def test_custom_fields_json_cannot_hold_are_refused_naming_the_field(
    tracker: LocalTracker,
) -> None:
    with pytest.raises(LocalTrackerError, match="custom field 'when'"):
        tracker.create_ticket("Fields", custom_fields={"when": datetime.now(UTC)})
    with pytest.raises(LocalTrackerError, match="custom field 'ratio'"):
        tracker.create_ticket("Fields", custom_fields={"ratio": float("nan")})


def test_get_of_unknown_or_malformed_ids_is_none(tracker: LocalTracker) -> None:
    tracker.create_ticket("Only one")
    assert tracker.get(2) is None
    assert tracker.get("abc") is None
    assert tracker.get("-1") is None


def test_list_tickets_by_id_and_by_status(tracker: LocalTracker) -> None:
    first = tracker.create_ticket("First", status="open")
    tracker.create_ticket("Second", status="solved")
    tracker.create_ticket("Third", status="open")
    tracker.set_subject(first.local_id, "First, changed last")  # list order is by id regardless
    assert [t.subject for t in tracker.list_tickets()] == ["First, changed last", "Second", "Third"]
    assert [t.local_id for t in tracker.list_tickets(status="Open")] == ["1", "3"]


def test_find_by_shared_uuid(tracker: LocalTracker) -> None:
    tracker.create_ticket("Decoy", shared_uuid="decoy")
    wanted = tracker.create_ticket("Wanted", shared_uuid="wanted")
    assert tracker.find_by_shared_uuid("wanted") == wanted
    assert tracker.find_by_shared_uuid("nobody") is None


# --- unknown tickets ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "write",
    [
        lambda t: t.set_status(42, "open"),
        lambda t: t.set_subject("42", "x"),
        lambda t: t.add_tags("#42", ["x"]),
        lambda t: t.remove_tags(42, ["x"]),
        lambda t: t.set_tags(42, ["x"]),
        lambda t: t.set_custom_field(42, "x", 1),
        lambda t: t.add_comment(42, "hello"),
        lambda t: t.edit_comment(42, 1, "hello"),
        lambda t: t.delete_ticket(42),
    ],
)
def test_writes_to_an_unknown_ticket_name_its_id(
    tracker: LocalTracker, write: Callable[[LocalTracker], object]
) -> None:
    with pytest.raises(UnknownTicket, match="no ticket #42 in local tracker") as caught:
        write(tracker)
    assert isinstance(caught.value, LocalTrackerError)
    assert isinstance(caught.value, PermanentError)
    assert caught.value.ticket_id in (42, "42", "#42")


def test_a_malformed_id_is_an_unknown_ticket(tracker: LocalTracker) -> None:
    with pytest.raises(UnknownTicket, match="no ticket 'PROJ-1'"):
        tracker.set_status("PROJ-1", "open")


# --- changes and the change sequence ------------------------------------------------------------


def test_every_kind_of_write_brings_the_ticket_back_in_changed_since(
    tracker: LocalTracker,
) -> None:
    ticket = tracker.create_ticket("Watched", tags=["a"])
    other = tracker.create_ticket("Bystander")
    comment = tracker.add_comment(ticket.local_id, "First")
    writes = [
        lambda: tracker.set_subject(ticket.local_id, "Watched, renamed"),
        lambda: tracker.set_status(ticket.local_id, "pending"),
        lambda: tracker.add_tags(ticket.local_id, ["b"]),
        lambda: tracker.remove_tags(ticket.local_id, ["a"]),
        lambda: tracker.set_tags(ticket.local_id, ["c"]),
        lambda: tracker.set_custom_field(ticket.local_id, "severity", "low"),
        lambda: tracker.set_custom_field(ticket.local_id, "severity", None),
        lambda: tracker.add_comment(ticket.local_id, "More"),
        lambda: tracker.edit_comment(ticket.local_id, comment.local_id, "First, edited"),
    ]
    for write in writes:
        cursor = _last_cursor(tracker)
        before = tracker.get(ticket.local_id)
        assert write() is not False, "the write should report a change"
        assert _changed_ids(tracker, cursor) == [ticket.local_id]
        after = tracker.get(ticket.local_id)
        assert before is not None and after is not None
        assert after.updated_at >= before.updated_at
    assert other.local_id not in _changed_ids(tracker, "2")


def test_a_write_that_changes_nothing_takes_no_change_number(tracker: LocalTracker) -> None:
    ticket = tracker.create_ticket("Stable", status="open", tags=["a", "b"], custom_fields={"n": 1})
    comment = tracker.add_comment(ticket.local_id, "Same", html_body="<p>Same</p>")
    cursor = _last_cursor(tracker)
    before = tracker.get(ticket.local_id)
    assert tracker.set_subject(ticket.local_id, "Stable") is False
    assert tracker.set_status(ticket.local_id, "OPEN") is False
    assert tracker.set_tags(ticket.local_id, ["b", "a", "a"]) is False  # a reordering
    assert tracker.add_tags(ticket.local_id, ["a"]) is False
    assert tracker.remove_tags(ticket.local_id, ["zzz"]) is False
    assert tracker.set_custom_field(ticket.local_id, "n", 1) is False
    assert tracker.set_custom_field(ticket.local_id, "absent", None) is False
    assert tracker.update_ticket(ticket.local_id) is False
    assert (
        tracker.edit_comment(ticket.local_id, comment.local_id, "Same", html_body="<p>Same</p>")
        is False
    )
    assert _changed_ids(tracker, cursor) == []
    assert tracker.get(ticket.local_id) == before


def test_true_replacing_1_is_a_change(tracker: LocalTracker) -> None:
    # Equal in Python, different in JSON and in every other tracker: it must not be swallowed.
    ticket = tracker.create_ticket("Flags", custom_fields={"flag": 1})
    assert tracker.set_custom_field(ticket.local_id, "flag", True) is True
    assert tracker.get(ticket.local_id).custom_fields == {"flag": True}  # type: ignore[union-attr]


def test_update_ticket_changes_several_fields_under_one_change_number(
    tracker: LocalTracker,
) -> None:
    ticket = tracker.create_ticket("Several", custom_fields={"keep": "me", "change": "me"})
    cursor = _last_cursor(tracker)
    assert tracker.update_ticket(
        ticket.local_id,
        subject="Several, changed",
        status="hold",
        tags=["x"],
        custom_fields={"change": "done"},
    )
    assert _last_cursor(tracker) == str(int(cursor or 0) + 1)
    updated = tracker.get(ticket.local_id)
    assert updated is not None
    assert (updated.subject, updated.status, updated.tags) == ("Several, changed", "hold", ["x"])
    assert updated.custom_fields == {"keep": "me", "change": "done"}


def test_changed_since_pages_in_change_order_with_the_last_change_as_cursor(
    tmp_path: Path,
) -> None:
    with LocalTracker(LocalConfig(path=tmp_path / "t.db", page_size=3)) as tracker:
        for n in range(7):
            tracker.create_ticket(f"Ticket {n}")
        tracker.set_subject(1, "Ticket 0, changed last")
        pages = list(tracker.changed_since(None))
    assert [[t.local_id for t in page.tickets] for page in pages] == [
        ["2", "3", "4"],
        ["5", "6", "7"],
        ["1"],
    ]
    assert [page.cursor for page in pages] == ["4", "7", "8"]


def test_changed_since_from_the_last_cursor_is_empty(tracker: LocalTracker) -> None:
    tracker.create_ticket("Seen")
    assert list(tracker.changed_since(_last_cursor(tracker))) == []


def test_changed_since_an_empty_tracker_yields_no_page(tracker: LocalTracker) -> None:
    assert list(tracker.changed_since(None)) == []
    assert list(tracker.changed_since("0")) == []


def test_a_ticket_changed_while_paging_comes_again_later_not_never(tmp_path: Path) -> None:
    with LocalTracker(LocalConfig(path=tmp_path / "t.db", page_size=2)) as tracker:
        for n in range(4):
            tracker.create_ticket(f"Ticket {n}")
        pages = tracker.changed_since(None)
        first = next(pages)
        tracker.add_comment(first.tickets[0].local_id, "Meanwhile")
        rest = [t.local_id for page in pages for t in page.tickets]
    assert rest == ["3", "4", first.tickets[0].local_id]


@pytest.mark.parametrize("cursor", ["abc", "-1", "1.5", "", " 3"])
def test_an_invalid_cursor_is_a_permanent_error(tracker: LocalTracker, cursor: str) -> None:
    with pytest.raises(PermanentError, match="invalid cursor"):
        tracker.changed_since(cursor)


def test_a_cursor_ahead_of_the_database_is_refused(tracker: LocalTracker) -> None:
    # A replaced database file would otherwise hide every change until it caught up.
    tracker.create_ticket("Only change")
    with pytest.raises(PermanentError, match="ahead of the last change"):
        tracker.changed_since("99")


def test_a_page_costs_the_same_few_queries_however_many_comments(tmp_path: Path) -> None:
    with LocalTracker(LocalConfig(path=tmp_path / "t.db", page_size=50)) as tracker:
        for n in range(120):
            ticket = tracker.create_ticket(f"Ticket {n}")
            for c in range(3):
                tracker.add_comment(ticket.local_id, f"Comment {c}", attachments=[_file(b"x")])
        statements: list[str] = []
        # The tracker's own connection: count what one changed_since issues.
        assert tracker._db is not None
        tracker._db.set_trace_callback(statements.append)
        pages = list(tracker.changed_since(None))
        tracker._db.set_trace_callback(None)
    assert [len(page.tickets) for page in pages] == [50, 50, 20]
    tickets = [ticket for page in pages for ticket in page.tickets]
    assert all(len(t.comments) == 3 and len(t.comments[0].attachments) == 1 for t in tickets)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 3 * len(pages)  # tickets, comments, attachments: per page, not ticket


# --- comments -----------------------------------------------------------------------------------


def test_add_comment_stores_visibility_author_html_and_breadcrumb(tracker: LocalTracker) -> None:
    ticket = tracker.create_ticket("Comments")
    author = local_person("Grace Hopper")
    written = datetime(2024, 3, 4, 5, 6, 7, 890000, tzinfo=UTC)
    comment = tracker.add_comment(
        ticket.local_id,
        "Agents only",
        public=False,
        author=author,
        html_body="<p>Agents only</p>",
        shared_uuid="comment-uuid",
        authored_at=written,
    )
    assert comment.public is False
    assert comment.author == author
    assert comment.html_body == "<p>Agents only</p>"
    assert comment.shared_uuid == "comment-uuid"
    assert comment.authored_at == written
    stored = tracker.get(ticket.local_id)
    assert stored is not None and stored.comments == [comment]


def test_comments_people_write_have_no_breadcrumb(tracker: LocalTracker) -> None:
    ticket = tracker.create_ticket("By hand")
    assert tracker.add_comment(ticket.local_id, "Typed in").shared_uuid is None


def test_comments_are_listed_by_authored_time_then_id(tracker: LocalTracker) -> None:
    ticket = tracker.create_ticket("History")
    now = datetime.now(UTC)
    tracker.add_comment(ticket.local_id, "second", authored_at=now)
    tracker.add_comment(ticket.local_id, "first (imported late)", authored_at=now - timedelta(1))
    tracker.add_comment(ticket.local_id, "third", authored_at=now)
    stored = tracker.get(ticket.local_id)
    assert stored is not None
    assert [c.body for c in stored.comments] == ["first (imported late)", "second", "third"]


def test_people_are_named_with_stable_uuids() -> None:
    assert local_person("Ada").uuid == local_person("Ada", "end-user").uuid
    assert local_person("Ada").uuid != local_person("Grace").uuid
    assert local_person("Ada").role == "agent"


def test_edit_comment_replaces_the_body_and_drops_stale_html(tracker: LocalTracker) -> None:
    ticket = tracker.create_ticket("Typo")
    comment = tracker.add_comment(
        ticket.local_id, "Teh", public=False, html_body="<p>Teh</p>", shared_uuid="c1"
    )
    assert tracker.edit_comment(ticket.local_id, comment.local_id, "The") is True
    stored = tracker.get(ticket.local_id)
    assert stored is not None
    edited = stored.comments[0]
    assert (edited.body, edited.html_body, edited.public, edited.shared_uuid) == (
        "The",
        None,
        False,
        "c1",
    )


def test_edit_comment_of_another_ticket_is_refused(tracker: LocalTracker) -> None:
    first = tracker.create_ticket("First")
    second = tracker.create_ticket("Second")
    comment = tracker.add_comment(first.local_id, "Mine")
    with pytest.raises(LocalTrackerError, match="ticket #2 has no comment"):
        tracker.edit_comment(second.local_id, comment.local_id, "Hijacked")


def test_a_comment_on_a_deleted_ticket_is_refused(tracker: LocalTracker) -> None:
    ticket = tracker.create_ticket("Doomed")
    tracker.delete_ticket(ticket.local_id)
    with pytest.raises(UnknownTicket):
        tracker.add_comment(ticket.local_id, "Too late")


# --- attachments --------------------------------------------------------------------------------


def test_attachments_are_stored_under_a_generated_name_and_read_back(
    tracker: LocalTracker,
) -> None:
    ticket = tracker.create_ticket("Files")
    content = bytes(range(256)) * 10
    comment = tracker.add_comment(
        ticket.local_id, "Logs", attachments=[("printer.log", "text/plain", io.BytesIO(content))]
    )
    [ref] = comment.attachments
    assert (ref.filename, ref.content_type, ref.size) == ("printer.log", "text/plain", len(content))
    stored = list(tracker.attachments_dir.iterdir())
    assert len(stored) == 1 and stored[0].name != "printer.log"
    with tracker.open_attachment(ref.ref) as stream:
        assert stream.read() == content


def test_the_given_filename_is_never_a_path(tracker: LocalTracker, tmp_path: Path) -> None:
    ticket = tracker.create_ticket("Sneaky")
    comment = tracker.add_comment(
        ticket.local_id,
        "Look",
        attachments=[
            _file(b"1", "../../escape.txt"),
            _file(b"2", "C:\\Windows\\evil.exe"),
            _file(b"3", ".."),
            _file(b"4", "bell\x07.txt"),
        ],
    )
    names = [ref.filename for ref in comment.attachments]
    assert names == ["escape.txt", "evil.exe", "attachment", "bell.txt"]
    assert not (tmp_path / "escape.txt").exists()
    assert {p.parent for p in tracker.attachments_dir.iterdir()} == {tracker.attachments_dir}


def test_content_type_is_guessed_from_the_filename_when_not_given(tracker: LocalTracker) -> None:
    ticket = tracker.create_ticket("Guess")
    comment = tracker.add_comment(ticket.local_id, "Pic", attachments=[_file(b"png", "a.png")])
    assert comment.attachments[0].content_type == "image/png"


def test_attachments_stream_in_chunks(tmp_path: Path) -> None:
    config = LocalConfig(path=tmp_path / "t.db", max_attachment_bytes=None)
    with LocalTracker(config) as tracker:
        ticket = tracker.create_ticket("Big")
        size = 3 * local.COPY_CHUNK_BYTES + 17
        source = _Chunky(size, chunk=64 * 1024)
        comment = tracker.add_comment(
            ticket.local_id,
            "Dump",
            attachments=[("dump.bin", None, source)],  # type: ignore[list-item]
        )
        assert comment.attachments[0].size == size
        assert source.reads > 3  # never read whole
        with tracker.open_attachment(comment.attachments[0].ref) as stream:
            assert len(stream.read()) == size


def test_an_attachment_over_the_limit_is_refused_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    config = LocalConfig(path=tmp_path / "t.db", max_attachment_bytes=1000)
    with LocalTracker(config) as tracker:
        ticket = tracker.create_ticket("Limits")
        cursor = _last_cursor(tracker)
        exactly = tracker.add_comment(ticket.local_id, "ok", attachments=[_file(b"x" * 1000)])
        assert exactly.attachments[0].size == 1000
        cursor = _last_cursor(tracker)
        with pytest.raises(LocalTrackerError, match=r"'huge.bin' is larger than .* 1000 bytes"):
            tracker.add_comment(
                ticket.local_id,
                "too big",
                attachments=[_file(b"small", "small.txt"), _file(b"x" * 1001, "huge.bin")],
            )
        assert len(list(tracker.attachments_dir.iterdir())) == 1  # only the accepted one
        stored = tracker.get(ticket.local_id)
        assert stored is not None and [c.body for c in stored.comments] == ["ok"]
        assert _changed_ids(tracker, cursor) == []


def test_a_failing_source_stream_leaves_no_file_and_no_comment(tracker: LocalTracker) -> None:
    class Broken(io.RawIOBase):
        def readable(self) -> bool:
            return True

        def read(self, size: int = -1) -> bytes:
            raise ConnectionError("source went away")

    ticket = tracker.create_ticket("Flaky source")
    with pytest.raises(ConnectionError):
        tracker.add_comment(
            ticket.local_id,
            "half",
            attachments=[_file(b"fine"), ("broken.bin", None, Broken())],  # type: ignore[list-item]
        )
    assert list(tracker.attachments_dir.iterdir()) == []
    assert tracker.get(ticket.local_id).comments == []  # type: ignore[union-attr]


def test_opening_an_unknown_attachment_is_refused(tracker: LocalTracker) -> None:
    with pytest.raises(LocalTrackerError, match="no attachment '7'"):
        tracker.open_attachment("7")


def test_a_missing_attachment_file_is_explained(tracker: LocalTracker) -> None:
    ticket = tracker.create_ticket("Cleaned up")
    comment = tracker.add_comment(ticket.local_id, "f", attachments=[_file(b"1", "gone.txt")])
    for path in tracker.attachments_dir.iterdir():
        path.unlink()
    with pytest.raises(LocalTrackerError, match=r"\(gone.txt\) is missing"):
        tracker.open_attachment(comment.attachments[0].ref)


# --- deleting -----------------------------------------------------------------------------------


def test_delete_removes_the_ticket_its_comments_and_files_and_never_reuses_the_id(
    tracker: LocalTracker,
) -> None:
    doomed = tracker.create_ticket("Doomed", shared_uuid="doomed")
    tracker.add_comment(doomed.local_id, "with a file", attachments=[_file(b"bye")])
    kept = tracker.create_ticket("Kept")
    tracker.add_comment(kept.local_id, "with a file", attachments=[_file(b"stay")])
    tracker.delete_ticket(doomed.local_id)
    assert tracker.get(doomed.local_id) is None
    assert tracker.find_by_shared_uuid("doomed") is None
    assert len(list(tracker.attachments_dir.iterdir())) == 1
    with tracker._read() as db:
        assert db.execute("SELECT count(*) FROM comments").fetchone()[0] == 1
        assert db.execute("SELECT count(*) FROM attachments").fetchone()[0] == 1
    assert tracker.create_ticket("Newer").local_id == "3"


# --- concurrency --------------------------------------------------------------------------------


def test_a_second_process_sees_and_makes_changes_while_the_first_is_open(
    config: LocalConfig,
) -> None:
    with LocalTracker(config) as bridge, LocalTracker(config) as cli:
        ticket = bridge.create_ticket("Shared file")
        cli.add_comment(ticket.local_id, "From the CLI")
        seen = bridge.get(ticket.local_id)
        assert seen is not None and [c.body for c in seen.comments] == ["From the CLI"]
        assert _changed_ids(bridge, "1") == [ticket.local_id]


def test_a_database_locked_past_the_busy_timeout_is_a_transient_error(
    config: LocalConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local, "BUSY_TIMEOUT_SECONDS", 0.05)
    with LocalTracker(config) as tracker:
        with closing(sqlite3.connect(config.path, isolation_level=None)) as other:
            other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
            with pytest.raises(TransientError, match="busy"):
                tracker.create_ticket("Blocked")
            assert tracker.list_tickets() == []  # WAL: reading still works meanwhile
            other.execute("ROLLBACK")
        assert tracker.create_ticket("Unblocked").local_id == "1"


def test_threads_can_share_one_tracker(tracker: LocalTracker) -> None:
    ticket = tracker.create_ticket("Busy")
    errors: list[BaseException] = []

    def comment(n: int) -> None:
        try:
            for i in range(10):
                tracker.add_comment(ticket.local_id, f"thread {n} comment {i}")
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=comment, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(tracker.get(ticket.local_id).comments) == 40  # type: ignore[union-attr]


# --- the adapter --------------------------------------------------------------------------------


def test_the_adapter_is_registered_through_the_plugin_hook() -> None:
    plugins = Plugins(load_entry_points=False)
    with registered_plugin(plugins, local_plugin):
        assert plugins.adapter_class("local") is LocalAdapter


def test_the_entry_point_registers_the_local_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NHD_BRIDGE_PLUGINS", "local")
    assert Plugins().adapter_class("local") is LocalAdapter


def test_capabilities_follow_the_instance_config(tmp_path: Path) -> None:
    config = LocalConfig(
        path=tmp_path / "t.db", statuses=["Open", "Closed"], max_attachment_bytes=10
    )
    capabilities = LocalAdapter("desk", config).capabilities
    assert capabilities.statuses == ("Open", "Closed")
    assert capabilities.max_attachment_bytes == 10
    assert capabilities.private_comments and capabilities.attachments
    assert capabilities.tags and capabilities.custom_fields
    assert capabilities.comment_author and capabilities.edit_comments
    assert not capabilities.transitions
    assert LocalAdapter.capabilities.statuses == TICKET_STATUSES  # the class keeps the defaults


def test_the_adapter_wants_a_local_config() -> None:
    with pytest.raises(TypeError, match="needs a LocalConfig"):
        LocalAdapter("desk", AdapterConfig())


def test_building_and_checking_the_adapter_creates_no_file(config: LocalConfig) -> None:
    adapter = LocalAdapter("desk", config)
    results = adapter.check()
    assert [(r.name, r.ok) for r in results] == [("database", True), ("attachments folder", True)]
    assert all("will be created" in r.detail for r in results)
    assert not config.path.exists() and not config.attachments_folder.exists()
    adapter.close()


def test_check_passes_on_a_tracker_in_use(adapter: LocalAdapter) -> None:
    adapter.create(TicketDraft(shared_uuid="s", subject="In use"))
    results = adapter.check()
    assert all(r.ok for r in results), results
    assert f"schema version {local.SCHEMA_VERSION}" in results[0].detail


def test_check_explains_a_folder_given_as_the_database(tmp_path: Path) -> None:
    (tmp_path / "desk.db").mkdir()
    [database, _] = LocalAdapter("desk", LocalConfig(path=tmp_path / "desk.db")).check()
    assert not database.ok and "is a folder" in database.detail and database.hint


def test_check_explains_a_file_given_as_the_attachments_folder(tmp_path: Path) -> None:
    (tmp_path / "files").write_text("not a folder")
    config = LocalConfig(path=tmp_path / "t.db", attachments_dir=tmp_path / "files")
    [_, folder] = LocalAdapter("desk", config).check()
    assert not folder.ok and "is a file" in folder.detail and folder.hint


def test_check_explains_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    (tmp_path / "t.db").write_text("hello\n" * 200)
    [database, _] = LocalAdapter("desk", LocalConfig(path=tmp_path / "t.db")).check()
    assert not database.ok and "not a database" in database.detail


def test_check_explains_a_database_from_a_newer_version(config: LocalConfig) -> None:
    LocalTracker(config).close()
    with closing(sqlite3.connect(config.path)) as db:
        db.execute("PRAGMA user_version = 99")
        db.commit()
    [database, _] = LocalAdapter("desk", config).check()
    assert not database.ok and "newer" in database.detail and database.hint == "upgrade nhd_bridge"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_check_explains_a_read_only_folder(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        [database, _] = LocalAdapter("desk", LocalConfig(path=locked / "t.db")).check()
        assert not database.ok and database.hint
    finally:
        locked.chmod(0o700)


def test_adapter_create_update_and_find(adapter: LocalAdapter) -> None:
    requester = Actor(uuid="u-1", name="Ada", role="end-user")
    created = adapter.create(
        TicketDraft(
            shared_uuid="shared",
            subject="Bridged",
            status="pending",
            requester=requester,
            original_id="PROJ-7",
            tags=["x"],
            custom_fields={"a": 1},
        )
    )
    assert (created.human_id, created.status, created.requester) == ("#1", "pending", requester)
    adapter.update(created.local_id, TicketChanges(status="solved", custom_fields={"b": 2}))
    found = adapter.find_by_shared_uuid("shared")
    assert found is not None
    assert (found.status, found.custom_fields) == ("solved", {"a": 1, "b": 2})


def test_adapter_update_with_nothing_to_change_is_not_a_change(adapter: LocalAdapter) -> None:
    created = adapter.create(TicketDraft(shared_uuid="s", subject="Still"))
    cursor = list(adapter.changed_since(None))[-1].cursor
    adapter.update(created.local_id, TicketChanges())
    adapter.update(created.local_id, TicketChanges(subject="Still", custom_fields={}))
    assert list(adapter.changed_since(cursor)) == []


def test_adapter_refuses_an_unknown_status_permanently(adapter: LocalAdapter) -> None:
    created = adapter.create(TicketDraft(shared_uuid="s", subject="Status"))
    with pytest.raises(PermanentError, match="unknown status 'Done'"):
        adapter.update(created.local_id, TicketChanges(status="Done"))


def test_adapter_comments_with_attachments_round_trip(adapter: LocalAdapter) -> None:
    created = adapter.create(TicketDraft(shared_uuid="s", subject="Files"))
    upload = AttachmentUpload(
        filename="report.pdf", open=lambda: io.BytesIO(b"%PDF-1.7"), content_type=None, size=8
    )
    comment_id = adapter.add_comment(
        created.local_id,
        CommentDraft(shared_uuid="c", body="See attached", public=False, attachments=[upload]),
    )
    record = adapter.get(created.local_id)
    assert record is not None
    [comment] = record.comments
    assert (comment.local_id, comment.public, comment.shared_uuid) == (comment_id, False, "c")
    [ref] = comment.attachments
    assert (ref.filename, ref.content_type, ref.size) == ("report.pdf", "application/pdf", 8)
    with adapter.open_attachment(ref) as stream:
        assert stream.read() == b"%PDF-1.7"


def test_adapter_opens_uploads_one_at_a_time(adapter: LocalAdapter) -> None:
    open_now = 0
    most_open = 0

    @contextmanager
    def opener(content: bytes) -> Iterator[BinaryIO]:
        nonlocal open_now, most_open
        open_now += 1
        most_open = max(most_open, open_now)
        try:
            yield io.BytesIO(content)
        finally:
            open_now -= 1

    uploads = [
        AttachmentUpload(filename=f"f{n}.txt", open=lambda n=n: opener(b"%d" % n)) for n in range(3)
    ]
    created = adapter.create(TicketDraft(shared_uuid="s", subject="Streams"))
    adapter.add_comment(
        created.local_id, CommentDraft(shared_uuid="c", body="3", public=True, attachments=uploads)
    )
    assert (most_open, open_now) == (1, 0)


def test_adapter_refuses_a_declared_oversize_upload_without_opening_it(tmp_path: Path) -> None:
    adapter = LocalAdapter("desk", LocalConfig(path=tmp_path / "t.db", max_attachment_bytes=5))
    opened: list[str] = []

    def never() -> BinaryIO:
        opened.append("yes")
        return io.BytesIO(b"")

    created = adapter.create(TicketDraft(shared_uuid="s", subject="Too big"))
    upload = AttachmentUpload(filename="big.iso", open=never, size=6)
    with pytest.raises(PermanentError, match=r"'big\.iso' is larger than .* 5 bytes"):
        adapter.add_comment(
            created.local_id,
            CommentDraft(shared_uuid="c", body="x", public=True, attachments=[upload]),
        )
    assert opened == []
    adapter.close()


def test_adapter_edits_comments(adapter: LocalAdapter) -> None:
    created = adapter.create(TicketDraft(shared_uuid="s", subject="Edits"))
    comment_id = adapter.add_comment(
        created.local_id, CommentDraft(shared_uuid="c", body="Old", public=True)
    )
    adapter.edit_comment(created.local_id, comment_id, "New")
    assert adapter.get(created.local_id).comments[0].body == "New"  # type: ignore[union-attr]


def test_adapter_get_of_a_foreign_id_is_none(adapter: LocalAdapter) -> None:
    assert adapter.get("PROJ-12") is None


def test_adapter_reopens_after_close(adapter: LocalAdapter) -> None:
    created = adapter.create(TicketDraft(shared_uuid="s", subject="Reopen"))
    adapter.close()
    assert adapter.get(created.local_id) is not None


# --- the contract suite -------------------------------------------------------------------------


class TestLocalAdapterContract(AdapterContract):
    """The shared adapter contract, over a fresh tracker; a small page size exercises paging."""

    @pytest.fixture
    def adapter(self, tmp_path: Path) -> Iterator[LocalAdapter]:
        adapter = LocalAdapter("contract", LocalConfig(path=tmp_path / "contract.db", page_size=3))
        yield adapter
        adapter.close()
