"""``local``: use the embedded local tracker by hand, the way people use a real tracker's UI.

With it you play the other side of a bridge: create a ticket, comment (publicly or privately, as
anyone, with files), change its status, tags and fields, and watch the bridge carry it across.
Safe to use while a bridge runs on the same file (see :mod:`nhd_bridge.adapters.local`).

The group is importable as :data:`local_group`; the local adapter's plugin adds it to ``nhd-bridge``
through the ``nhd_register_commands`` hook (:func:`register_commands`), with ``--instance NAME``.
It finds its tracker with ``--db PATH`` (or ``$NHD_LOCAL_DB``); a parent command can instead put a
:class:`LocalConfig` (the configured instance, with its status vocabulary) in
``ctx.meta[TRACKER_CONFIG_KEY]``, which is what ``--instance`` does.

On a terminal the output is rich tables and panels; piped, it is plain lines. A request the tracker
refuses (unknown ticket, unknown status, file over the limit) exits with code 2 and one line.
"""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

# The tracker, pydantic and rich are imported where they are used: mounting this group (listing
# `nhd-bridge`'s commands does) must not pay for them.
if TYPE_CHECKING:
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table

    from nhd_bridge.adapters.local.adapter import LocalConfig, LocalTracker, NewAttachment
    from nhd_bridge.core.adapter import CommentRecord, TicketRecord
    from nhd_bridge.core.model import Actor

__all__ = [
    "DB_ENVVAR",
    "TRACKER_CONFIG_KEY",
    "Refused",
    "local_group",
    "open_tracker",
    "register_commands",
]

DB_ENVVAR = "NHD_LOCAL_DB"
TRACKER_CONFIG_KEY = "nhd_bridge.local.config"


def open_tracker(path: Path) -> LocalTracker:
    """The local tracker in the SQLite file at ``path`` (created if missing), default settings."""
    from nhd_bridge.adapters.local.adapter import LocalConfig, LocalTracker

    return LocalTracker(LocalConfig(path=path))


# --- errors and output --------------------------------------------------------------------------


class Refused(click.ClickException):
    """A request the tracker cannot do as asked: exit code 2 (bad usage) and one line."""

    exit_code = 2


class _TrackerGroup(click.Group):
    """Turns the tracker's errors into one-line CLI errors for every command below it, so that
    no command needs its own try/except."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # --help and click's own errors: no tracker was opened, none is imported
        except Exception as error:
            from nhd_bridge.adapters.local.adapter import LocalTrackerError
            from nhd_bridge.core.adapter import AdapterError

            if isinstance(error, LocalTrackerError):
                raise Refused(str(error)) from error
            if isinstance(error, AdapterError):  # busy database, unreadable file: not usage
                raise click.ClickException(str(error)) from error
            raise


@dataclass
class _Session:
    """What the group's options say about the tracker; opened on the first command that needs
    it, so that ``--help`` never creates a database."""

    db_path: Path | None
    config: LocalConfig | None
    _tracker: LocalTracker | None = field(default=None, init=False)

    def tracker(self) -> LocalTracker:
        if self._tracker is None:
            self._tracker = self._open()
        return self._tracker

    def close(self) -> None:
        if self._tracker is not None:
            self._tracker.close()
            self._tracker = None

    def _open(self) -> LocalTracker:
        from pydantic import ValidationError

        from nhd_bridge.adapters.local.adapter import LocalTracker

        try:
            if self.db_path is not None:
                return open_tracker(self.db_path)
            if self.config is not None:
                return LocalTracker(self.config)
        except ValidationError as error:
            reasons = "; ".join(item["msg"] for item in error.errors(include_url=False))
            raise Refused(f"--db {self.db_path}: {reasons}") from None
        raise Refused(f"which tracker? give --db PATH or set {DB_ENVVAR}")


class _TicketId(click.ParamType):
    """A ticket id as people write it: ``12`` or ``#12``."""

    name = "TICKET"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        text = str(value).strip().removeprefix("#")
        if not (text.isascii() and text.isdigit()):
            self.fail(f"{value!r} is not a ticket id; use a number such as 12 or #12", param, ctx)
        return int(text)


TICKET = _TicketId()


# --- commands -----------------------------------------------------------------------------------


@click.group("local", cls=_TrackerGroup)
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar=DB_ENVVAR,
    help=f"The tracker's SQLite file (created if missing). Default: ${DB_ENVVAR}.",
)
@click.pass_context
def local_group(ctx: click.Context, db_path: Path | None) -> None:
    """Use the embedded local tracker by hand: tickets, comments, statuses, tags, fields."""
    session = _Session(db_path, ctx.meta.get(TRACKER_CONFIG_KEY))
    ctx.obj = session
    ctx.call_on_close(session.close)


@local_group.command("create")
@click.argument("subject")
@click.option("--status", help="Initial status (default: the first of the tracker's statuses).")
@click.option("--requester", metavar="NAME", help="Who asked (an end user).")
@click.option("--tag", "tags", multiple=True, help="A tag; repeat for several.")
@click.option(
    "--field",
    "fields",
    multiple=True,
    metavar="NAME=VALUE",
    help="A custom field (text); repeat for several.",
)
@click.pass_obj
def create_command(
    session: _Session,
    subject: str,
    status: str | None,
    requester: str | None,
    tags: tuple[str, ...],
    fields: tuple[str, ...],
) -> None:
    """Create a ticket."""
    from nhd_bridge.adapters.local.adapter import local_person

    ticket = session.tracker().create_ticket(
        subject,
        status=status,
        requester=local_person(requester, "end-user") if requester else None,
        tags=tags,
        custom_fields=dict(_name_value(item) for item in fields),
    )
    click.echo(f"Created {ticket.human_id}: {ticket.subject}")


@local_group.command("list")
@click.option("--status", help="Only tickets with this status.")
@click.pass_obj
def list_command(session: _Session, status: str | None) -> None:
    """List tickets, oldest first."""
    tickets = session.tracker().list_tickets(status=status)
    console = _console()
    if console.is_terminal:
        console.print(_ticket_table(tickets))
        return
    if not tickets:
        click.echo("No tickets.")
    width = max((len(ticket.status) for ticket in tickets), default=0)
    for ticket in tickets:
        tags = f"  [{', '.join(ticket.tags)}]" if ticket.tags else ""
        click.echo(f"{ticket.human_id}  {ticket.status:<{width}}  {ticket.subject}{tags}")


@local_group.command("show")
@click.argument("ticket_id", type=TICKET)
@click.pass_obj
def show_command(session: _Session, ticket_id: int) -> None:
    """Show a ticket with its comments."""
    ticket = _existing(session, ticket_id)
    console = _console()
    if console.is_terminal:
        console.print(_ticket_panel(ticket))
        for comment in ticket.comments:
            console.print(_comment_panel(comment))
        return
    click.echo(f"{ticket.human_id} {ticket.subject}")
    for label, value in _ticket_facts(ticket):
        click.echo(f"{label}: {value}")
    for comment in ticket.comments:
        click.echo("")
        click.echo(_comment_heading(comment))
        for line in comment.body.splitlines() or [""]:
            click.echo(f"    {line}")
        for attachment in _attachment_lines(comment):
            click.echo(f"    {attachment}")


@local_group.command("comment")
@click.argument("ticket_id", type=TICKET)
@click.argument("body")
@click.option("--private", is_flag=True, help="Visible to agents only.")
@click.option("--author", metavar="NAME", help="Who writes it.")
@click.option(
    "--role",
    type=click.Choice(["agent", "end-user"]),
    default="agent",
    show_default=True,
    help="The author's role: an agent, or the customer (end-user).",
)
@click.option(
    "--attach",
    "files",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file to attach; repeat for several.",
)
@click.pass_obj
def comment_command(
    session: _Session,
    ticket_id: int,
    body: str,
    private: bool,
    author: str | None,
    role: str,
    files: tuple[Path, ...],
) -> None:
    """Add a comment; BODY '-' reads it from standard input."""
    if body == "-":
        body = sys.stdin.read()
    from nhd_bridge.adapters.local.adapter import local_person

    comment = session.tracker().add_comment(
        ticket_id,
        body,
        public=not private,
        author=local_person(author, role) if author else None,
        attachments=_read_files(files),
    )
    visibility = "public" if comment.public else "private"
    files_note = f" with {len(comment.attachments)} file(s)" if comment.attachments else ""
    click.echo(f"Added {visibility} comment {comment.local_id} to #{ticket_id}{files_note}")


@local_group.command("status")
@click.argument("ticket_id", type=TICKET)
@click.argument("status")
@click.pass_obj
def status_command(session: _Session, ticket_id: int, status: str) -> None:
    """Change a ticket's status."""
    changed = session.tracker().set_status(ticket_id, status)
    _report(session, ticket_id, changed, lambda ticket: f"status {ticket.status}")


@local_group.group("tag")
def tag_group() -> None:
    """Add or remove tags."""


@tag_group.command("add")
@click.argument("ticket_id", type=TICKET)
@click.argument("tags", nargs=-1, required=True)
@click.pass_obj
def tag_add_command(session: _Session, ticket_id: int, tags: tuple[str, ...]) -> None:
    """Add tags to a ticket."""
    changed = session.tracker().add_tags(ticket_id, tags)
    _report(session, ticket_id, changed, _tags_text)


@tag_group.command("remove")
@click.argument("ticket_id", type=TICKET)
@click.argument("tags", nargs=-1, required=True)
@click.pass_obj
def tag_remove_command(session: _Session, ticket_id: int, tags: tuple[str, ...]) -> None:
    """Remove tags from a ticket."""
    changed = session.tracker().remove_tags(ticket_id, tags)
    _report(session, ticket_id, changed, _tags_text)


@local_group.command("field")
@click.argument("ticket_id", type=TICKET)
@click.argument("name")
@click.argument("value", required=False)
@click.option("--json", "as_json", is_flag=True, help="Read VALUE as JSON (numbers, lists...).")
@click.option("--unset", is_flag=True, help="Remove the field.")
@click.pass_obj
def field_command(
    session: _Session,
    ticket_id: int,
    name: str,
    value: str | None,
    as_json: bool,
    unset: bool,
) -> None:
    """Set (or --unset) a custom field; VALUE is text unless --json."""
    if unset == (value is not None):
        raise Refused("give either a VALUE or --unset")
    parsed = None if unset else _field_value(value, as_json=as_json)
    changed = session.tracker().set_custom_field(ticket_id, name, parsed)
    _report(session, ticket_id, changed, lambda ticket: _field_text(ticket, name))


@local_group.command("delete")
@click.argument("ticket_id", type=TICKET)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def delete_command(session: _Session, ticket_id: int, yes: bool) -> None:
    """Delete a ticket with its comments and files, for good."""
    ticket = _existing(session, ticket_id)
    if not yes:
        click.confirm(
            f"Delete {ticket.human_id} {ticket.subject!r} and its "
            f"{len(ticket.comments)} comment(s)?",
            abort=True,
        )
    session.tracker().delete_ticket(ticket_id)
    click.echo(f"Deleted {ticket.human_id}")


# --- helpers ------------------------------------------------------------------------------------


def _console() -> Console:
    # Made per command, not at import: it must see the stdout of this invocation (a test runner,
    # a pipe), and rich then decides "terminal or not" the standard way (TTY, NO_COLOR...).
    from nhd_bridge.core.terminal import SafeConsole

    return SafeConsole(highlight=False)


def _existing(session: _Session, ticket_id: int) -> TicketRecord:
    ticket = session.tracker().get(ticket_id)
    if ticket is None:
        raise Refused(f"no ticket #{ticket_id} in local tracker {session.tracker().path}")
    return ticket


def _report(
    session: _Session, ticket_id: int, changed: bool, describe: Callable[[TicketRecord], str]
) -> None:
    """One line after a change: the new value, or that nothing needed changing."""
    ticket = _existing(session, ticket_id)
    prefix = "" if changed else "unchanged: "
    click.echo(f"{ticket.human_id} {prefix}{describe(ticket)}")


def _tags_text(ticket: TicketRecord) -> str:
    return f"tags {', '.join(ticket.tags)}" if ticket.tags else "no tags"


def _field_text(ticket: TicketRecord, name: str) -> str:
    if name not in ticket.custom_fields:
        return f"{name} not set"
    return f"{name} = {json.dumps(ticket.custom_fields[name], ensure_ascii=False)}"


def _name_value(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name.strip():
        raise Refused(f"--field {item!r}: write it as NAME=VALUE")
    return name.strip(), value


def _field_value(value: str | None, *, as_json: bool) -> Any:
    if not as_json:
        return value
    try:
        return json.loads(value or "")
    except json.JSONDecodeError as error:
        raise Refused(f"--json: {value!r} is not JSON ({error.msg})") from None


def _read_files(paths: Iterable[Path]) -> Iterator[NewAttachment]:
    """Open each file only while the tracker copies it."""
    for path in paths:
        with path.open("rb") as stream:
            yield path.name, None, stream


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def _person(actor: Actor | None) -> str:
    if actor is None:
        return "-"
    return f"{actor.name or actor.uuid} ({actor.role})" if actor.role else actor.name or actor.uuid


def _ticket_facts(ticket: TicketRecord) -> list[tuple[str, str]]:
    facts = [
        ("status", ticket.status),
        ("requester", _person(ticket.requester)),
        ("requested", _when(ticket.requested_at)),
        ("updated", _when(ticket.updated_at)),
        ("tags", ", ".join(ticket.tags) or "-"),
    ]
    facts += [
        (f"field {name}", json.dumps(value, ensure_ascii=False))
        for name, value in sorted(ticket.custom_fields.items())
    ]
    if ticket.shared_uuid:
        facts.append(("shared uuid", ticket.shared_uuid))
    return facts


def _comment_heading(comment: CommentRecord) -> str:
    visibility = "public" if comment.public else "PRIVATE"
    return (
        f"comment {comment.local_id} · {visibility} · {_person(comment.author)} · "
        f"{_when(comment.authored_at)}"
    )


def _attachment_lines(comment: CommentRecord) -> list[str]:
    return [
        f"attached: {ref.filename} ({ref.content_type or 'unknown type'}, {ref.size} bytes)"
        for ref in comment.attachments
    ]


def _ticket_table(tickets: list[TicketRecord]) -> Table:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"{len(tickets)} ticket(s)", title_justify="left")
    table.add_column("ID", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Subject", ratio=3)
    table.add_column("Requester", ratio=1)
    table.add_column("Tags", ratio=1)
    table.add_column("Comments", justify="right", no_wrap=True)
    table.add_column("Updated (UTC)", no_wrap=True)
    for ticket in tickets:
        table.add_row(
            ticket.human_id,
            escape(ticket.status),
            escape(ticket.subject),
            escape(ticket.requester.name if ticket.requester else ""),
            escape(", ".join(ticket.tags)),
            str(len(ticket.comments)),
            ticket.updated_at.strftime("%Y-%m-%d %H:%M"),
        )
    return table


def _ticket_panel(ticket: TicketRecord) -> Panel:
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    for label, value in _ticket_facts(ticket):
        facts.add_row(label, escape(value))
    return Panel(facts, title=f"{ticket.human_id} {escape(ticket.subject)}", title_align="left")


def _comment_panel(comment: CommentRecord) -> Panel:
    from rich.console import Group
    from rich.markup import escape
    from rich.panel import Panel

    # Private comments stand out: mistaking one for public is how things leak to customers.
    style = "green" if comment.public else "yellow"
    parts: list[Any] = [escape(comment.body)]
    parts += [f"[dim]{escape(line)}[/dim]" for line in _attachment_lines(comment)]
    return Panel(
        Group(*parts),
        title=escape(_comment_heading(comment)),
        title_align="left",
        border_style=style,
    )


# --- in the main command line -------------------------------------------------------------------


def register_commands(cli: click.Group) -> None:
    """Add ``local`` to the ``nhd-bridge`` group, with ``--instance NAME`` to pick a configured
    local instance instead of ``--db``. A copy of the group gets the option, so that
    :data:`local_group` stays as it is however often the main CLI is built."""
    mounted = copy.copy(local_group)
    mounted.params = [_INSTANCE_OPTION, *local_group.params]
    cli.add_command(mounted, name="local")


def _pick_instance(ctx: click.Context, _param: click.Parameter, name: str | None) -> None:
    if name is None:
        return
    from nhd_bridge.cli import UsageFailure, load, require_instance

    config = load(ctx)
    require_instance(config, name)
    kind = config.bridge.instances[name].kind
    if kind != "local":
        raise UsageFailure(
            f"instance {name!r} is a {kind!r} instance; "
            "`nhd-bridge local` works on instances of kind local"
        )
    ctx.meta[TRACKER_CONFIG_KEY] = config.adapter_configs[name]


_INSTANCE_OPTION = click.Option(
    ["--instance"],
    metavar="NAME",
    callback=_pick_instance,
    expose_value=False,
    is_eager=True,
    help="A local instance of the configuration (instead of --db).",
)
