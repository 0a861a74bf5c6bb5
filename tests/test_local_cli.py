"""The ``local`` CLI: using the embedded tracker by hand."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from rich.console import Console

from nhd_bridge.adapters.local import LocalConfig, LocalTracker
from nhd_bridge.adapters.local import cli as local_cli
from nhd_bridge.adapters.local.cli import TRACKER_CONFIG_KEY, local_group, open_tracker


@pytest.fixture(autouse=True)
def plain_output(monkeypatch: pytest.MonkeyPatch) -> None:
    # Whatever the developer's shell forces, these tests read the plain, piped output.
    for variable in ("FORCE_COLOR", "TTY_COMPATIBLE", local_cli.DB_ENVVAR):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "desk.db"


def run(db: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(local_group, ["--db", str(db), *args], input=input)


def ok(db: Path, *args: str, input: str | None = None) -> str:
    result = run(db, *args, input=input)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result.stdout


def refused(result: Result) -> str:
    """A refusal: exit code 2 and exactly one line saying why."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    message = result.stderr.strip()
    assert "\n" not in message, f"expected one line, got:\n{message}"
    return message


@pytest.fixture
def tracker(db: Path) -> Iterator[LocalTracker]:
    with open_tracker(db) as tracker:
        yield tracker


# --- the happy paths ----------------------------------------------------------------------------


def test_create_then_list(db: Path) -> None:
    assert ok(db, "create", "Printer on fire", "--tag", "vip", "--tag", "hardware") == (
        "Created #1: Printer on fire\n"
    )
    ok(db, "create", "Invoice wrong", "--status", "pending")
    assert ok(db, "list").splitlines() == [
        "#1  new      Printer on fire  [hardware, vip]",
        "#2  pending  Invoice wrong",
    ]
    assert ok(db, "list", "--status", "pending").splitlines() == ["#2  pending  Invoice wrong"]


def test_list_of_an_empty_tracker_says_so(db: Path) -> None:
    assert ok(db, "list") == "No tickets.\n"


def test_create_stores_requester_and_fields(db: Path, tracker: LocalTracker) -> None:
    ok(db, "create", "Fields", "--requester", "Ada", "--field", "severity=high", "--field", "a=b=c")
    ticket = tracker.get(1)
    assert ticket is not None and ticket.requester is not None
    assert (ticket.requester.name, ticket.requester.role) == ("Ada", "end-user")
    assert ticket.custom_fields == {"severity": "high", "a": "b=c"}


def test_show_prints_the_ticket_and_its_comments(db: Path, tmp_path: Path) -> None:
    log = tmp_path / "printer.txt"
    log.write_bytes(b"smoke\n")
    ok(db, "create", "Printer on fire", "--requester", "Ada", "--field", "severity=high")
    ok(db, "comment", "1", "We are on it.\nHang on.", "--author", "Grace", "--attach", str(log))
    ok(db, "comment", "#1", "Agents only", "--private")
    lines = ok(db, "show", "1").splitlines()
    assert lines[0] == "#1 Printer on fire"
    assert "status: new" in lines
    assert "requester: Ada (end-user)" in lines
    assert 'field severity: "high"' in lines
    public = next(line for line in lines if line.startswith("comment 1 "))
    private = next(line for line in lines if line.startswith("comment 2 "))
    assert "public · Grace (agent)" in public
    assert "PRIVATE" in private
    assert "    We are on it." in lines and "    Hang on." in lines
    assert "    attached: printer.txt (text/plain, 6 bytes)" in lines


def test_comment_options_reach_the_tracker(db: Path, tmp_path: Path, tracker: LocalTracker) -> None:
    first, second = tmp_path / "a.bin", tmp_path / "b.txt"
    first.write_bytes(bytes(range(256)))
    second.write_text("two")
    ok(db, "create", "Files")
    output = ok(
        db,
        "comment",
        "1",
        "Two files",
        "--private",
        "--attach",
        str(first),
        "--attach",
        str(second),
    )
    assert output == "Added private comment 1 to #1 with 2 file(s)\n"
    [comment] = tracker.get(1).comments  # type: ignore[union-attr]
    assert comment.public is False and comment.author is None and comment.shared_uuid is None
    assert [ref.filename for ref in comment.attachments] == ["a.bin", "b.txt"]
    with tracker.open_attachment(comment.attachments[0].ref) as stream:
        assert stream.read() == bytes(range(256))


def test_a_comment_can_be_written_as_the_customer(db: Path, tracker: LocalTracker) -> None:
    ok(db, "create", "Customer speaks", "--requester", "Ann")
    ok(db, "comment", "1", "It smokes.", "--author", "Ann", "--role", "end-user")
    ticket = tracker.get(1)
    assert ticket is not None and ticket.requester is not None
    assert ticket.comments[0].author == ticket.requester  # same name, same person


def test_comment_body_dash_reads_standard_input(db: Path, tracker: LocalTracker) -> None:
    ok(db, "create", "Stdin")
    ok(db, "comment", "1", "-", input="piped\ntext\n")
    assert tracker.get(1).comments[0].body == "piped\ntext\n"  # type: ignore[union-attr]


def test_status_changes_and_says_when_nothing_changed(db: Path) -> None:
    ok(db, "create", "Status")
    assert ok(db, "status", "1", "Solved") == "#1 status solved\n"
    assert ok(db, "status", "1", "solved") == "#1 unchanged: status solved\n"


def test_tags_are_added_and_removed(db: Path) -> None:
    ok(db, "create", "Tags", "--tag", "a")
    assert ok(db, "tag", "add", "1", "c", "b") == "#1 tags a, b, c\n"
    assert ok(db, "tag", "remove", "1", "a", "c") == "#1 tags b\n"
    assert ok(db, "tag", "remove", "1", "b") == "#1 no tags\n"
    assert ok(db, "tag", "remove", "1", "b") == "#1 unchanged: no tags\n"


def test_fields_are_set_as_text_or_json_and_unset(db: Path, tracker: LocalTracker) -> None:
    ok(db, "create", "Fields")
    assert ok(db, "field", "1", "severity", "high") == '#1 severity = "high"\n'
    assert ok(db, "field", "1", "count", "3", "--json") == "#1 count = 3\n"
    assert ok(db, "field", "1", "count", "3") == '#1 count = "3"\n'  # text unless --json
    assert ok(db, "field", "1", "severity", "--unset") == "#1 severity not set\n"
    assert tracker.get(1).custom_fields == {"count": "3"}  # type: ignore[union-attr]


def test_delete_with_yes(db: Path, tracker: LocalTracker) -> None:
    ok(db, "create", "Doomed")
    assert ok(db, "delete", "1", "--yes") == "Deleted #1\n"
    assert tracker.get(1) is None


def test_delete_asks_first(db: Path, tracker: LocalTracker) -> None:
    ok(db, "create", "Maybe")
    declined = run(db, "delete", "1", input="n\n")
    assert declined.exit_code == 1 and "Delete #1 'Maybe' and its 0 comment(s)?" in declined.stdout
    assert tracker.get(1) is not None
    ok(db, "delete", "1", input="y\n")
    assert tracker.get(1) is None


def test_the_database_can_come_from_the_environment(db: Path) -> None:
    result = CliRunner().invoke(
        local_group, ["create", "From env"], env={local_cli.DB_ENVVAR: str(db)}
    )
    assert result.exit_code == 0, result.stderr
    assert db.exists()


def test_a_parent_command_can_hand_over_a_configured_instance(tmp_path: Path) -> None:
    # How the main CLI picks a tracker by instance name: its config, with its statuses.
    config = LocalConfig(path=tmp_path / "inst.db", statuses=["Triage", "Done"])

    @click.group()
    @click.pass_context
    def main(ctx: click.Context) -> None:
        ctx.meta[TRACKER_CONFIG_KEY] = config

    main.add_command(local_group)
    runner = CliRunner()
    created = runner.invoke(main, ["local", "create", "Configured"])
    assert created.stdout == "Created #1: Configured\n", created.stderr
    assert runner.invoke(main, ["local", "status", "1", "done"]).stdout == "#1 status Done\n"


def test_the_cli_works_while_a_bridge_holds_the_tracker_open(
    db: Path, tracker: LocalTracker
) -> None:
    ticket = tracker.create_ticket("Open in the bridge")
    ok(db, "comment", ticket.local_id, "From the CLI")
    assert [c.body for c in tracker.get(1).comments] == ["From the CLI"]  # type: ignore[union-attr]


def test_rich_output_on_a_terminal(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        local_cli, "_console", lambda: Console(force_terminal=True, width=120, color_system=None)
    )
    ok(db, "create", "Printer [on] fire", "--tag", "vip")
    ok(db, "comment", "1", "Secret", "--private", "--author", "Grace")
    table = ok(db, "list")
    assert "┃ ID" in table and "Status" in table and "Printer [on] fire" in table
    panels = ok(db, "show", "1")
    assert "╭─ #1 Printer [on] fire" in panels  # markup in data is shown, not interpreted
    assert "PRIVATE · Grace (agent)" in panels and "Secret" in panels


def test_help_creates_no_database(db: Path) -> None:
    assert "Use the embedded local tracker" in ok(db, "--help")
    assert "Add a comment" in ok(db, "comment", "--help")
    assert not db.exists()


# --- refusals: exit code 2, one line ------------------------------------------------------------


def test_an_unknown_ticket_is_refused(db: Path) -> None:
    for command in (
        ["show", "9"],
        ["status", "9", "open"],
        ["comment", "9", "hi"],
        ["tag", "add", "9", "x"],
        ["field", "9", "f", "v"],
        ["delete", "9", "--yes"],
    ):
        assert refused(run(db, *command)).startswith("Error: no ticket #9 in local tracker")


def test_an_unknown_status_is_refused_naming_the_known_ones(db: Path) -> None:
    ok(db, "create", "Status")
    message = refused(run(db, "status", "1", "done"))
    assert (
        "unknown status 'done'" in message and "new, open, pending, hold, solved, closed" in message
    )
    assert "unknown status" in refused(run(db, "create", "x", "--status", "done"))
    assert "unknown status" in refused(run(db, "list", "--status", "done"))


def test_a_malformed_ticket_id_is_bad_usage(db: Path) -> None:
    result = run(db, "show", "PROJ-1")
    assert result.exit_code == 2 and "'PROJ-1' is not a ticket id" in result.stderr


def test_no_database_given_is_refused(tmp_path: Path) -> None:
    message = refused(CliRunner().invoke(local_group, ["list"]))
    assert "give --db PATH or set NHD_LOCAL_DB" in message


def test_an_in_memory_database_is_refused(db: Path) -> None:
    assert "not a database file" in refused(run(Path(":memory:"), "list"))


def test_field_needs_a_value_or_unset(db: Path) -> None:
    ok(db, "create", "Fields")
    assert "either a VALUE or --unset" in refused(run(db, "field", "1", "f"))
    assert "either a VALUE or --unset" in refused(run(db, "field", "1", "f", "v", "--unset"))
    assert "is not JSON" in refused(run(db, "field", "1", "f", "{oops", "--json"))


def test_a_malformed_field_option_is_refused(db: Path) -> None:
    assert "NAME=VALUE" in refused(run(db, "create", "x", "--field", "novalue"))


def test_an_attachment_over_the_limit_is_refused(db: Path, tmp_path: Path) -> None:
    config = LocalConfig(path=db, max_attachment_bytes=3)

    @click.group()
    @click.pass_context
    def main(ctx: click.Context) -> None:
        ctx.meta[TRACKER_CONFIG_KEY] = config

    main.add_command(local_group)
    big = tmp_path / "big.bin"
    big.write_bytes(b"four")
    runner = CliRunner()
    runner.invoke(main, ["local", "create", "Limit"])
    message = refused(runner.invoke(main, ["local", "comment", "1", "x", "--attach", str(big)]))
    assert "'big.bin' is larger than this tracker's limit of 3 bytes" in message


def test_open_tracker_opens_with_default_settings(db: Path) -> None:
    with open_tracker(db) as tracker:
        assert isinstance(tracker, LocalTracker) and tracker.path == db
        assert tracker.statuses[0] == "new"
