"""The plugin hooks of nhd_bridge. Each is a module-level function; plugins implement them with
``@nhd_bridge.hookimpl``. Core calls them only through :class:`nhd_bridge.core.plugins.Plugins`.

Every hook is documented in ``docs/plugin-hooks.md``; a test fails when one is not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import click

    from nhd_bridge.core.adapter import Adapter, CommentDraft
    from nhd_bridge.core.run import Direction, RunSummary

PROJECT_NAME = "nhd_bridge"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def nhd_register_adapters(register: Callable[[str, type[Adapter]], None]) -> None:
    """Register adapter classes: call ``register("kind", AdapterClass)`` once per adapter.

    ``kind`` is what users write as ``kind:`` of an instance in the YAML.
    """


@hookspec
def nhd_register_commands(cli: click.Group) -> None:
    """Add commands to ``nhd-bridge``: ``cli.add_command(group)``, or ``@cli.command()``.

    Called when the command line first needs a command it does not have built in (``--help``
    listing them, or a command name it does not know). A built-in command keeps its name: a plugin
    command of the same name is never reached.
    """


@hookspec
def nhd_transform_ticket(direction: Direction, fields: dict[str, Any]) -> None:
    """Change the fields about to be written to ``direction.target`` (in the target's own terms:
    ``subject``, ``status``, ``tags``, ``custom_fields``). Mutate ``fields`` in place; deleting a
    key keeps that field out of this write."""


@hookspec
def nhd_transform_comment(direction: Direction, comment: CommentDraft) -> str | None:
    """Change a comment about to be written to ``direction.target`` by mutating ``comment``.

    Return a reason (a short sentence) to keep the comment out of the target altogether; the
    reason is journaled. Visibility can only be narrowed here: a private comment made public by a
    hook is written private, and the journal says so.
    """


@hookspec
def nhd_run_started(agreement: str, run_id: str) -> None:
    """An agreement run is starting."""


@hookspec
def nhd_run_finished(summary: RunSummary) -> None:
    """An agreement run finished (also after a failure); ``summary`` says what it did."""


@hookspec
def nhd_ticket_parked(agreement: str, shared_uuid: str, error: str) -> None:
    """A ticket's write failed and the ticket was parked for a later retry."""
