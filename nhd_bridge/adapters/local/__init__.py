"""The ``local`` plugin: the embedded local tracker (``kind: local``) and ``nhd-bridge local``.

The adapter and the tracker are :mod:`nhd_bridge.adapters.local.adapter`, the command group
:mod:`nhd_bridge.adapters.local.cli`; this module only registers them, importing each when it is
first needed, so that listing ``nhd-bridge``'s commands (which loads every plugin) stays quick.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from nhd_bridge.core.hookspecs import hookimpl
from nhd_bridge.core.lazy import lazy_exports

if TYPE_CHECKING:
    import click

    from nhd_bridge.adapters.local.adapter import (
        DEFAULT_MAX_ATTACHMENT_BYTES,
        LocalAdapter,
        LocalConfig,
        LocalTracker,
        LocalTrackerError,
        NewAttachment,
        UnknownTicket,
        local_person,
    )
    from nhd_bridge.core.adapter import Adapter

__all__ = [
    "DEFAULT_MAX_ATTACHMENT_BYTES",
    "LocalAdapter",
    "LocalConfig",
    "LocalTracker",
    "LocalTrackerError",
    "NewAttachment",
    "UnknownTicket",
    "local_person",
    "nhd_register_adapters",
    "nhd_register_commands",
]

__getattr__ = lazy_exports(__name__, __all__, [f"{__name__}.adapter"])


@hookimpl
def nhd_register_adapters(register: Callable[[str, type[Adapter]], None]) -> None:
    """Register ``kind: local``, exactly as a third-party plugin registers its adapter."""
    from nhd_bridge.adapters.local.adapter import LocalAdapter

    register("local", LocalAdapter)


@hookimpl
def nhd_register_commands(cli: click.Group) -> None:
    """``nhd-bridge local``: use a local tracker by hand (tickets, comments, statuses...)."""
    from nhd_bridge.adapters.local.cli import register_commands

    register_commands(cli)
