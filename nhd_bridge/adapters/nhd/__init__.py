"""The ``nhd`` plugin: native Networked Help Desk peers (``kind: nhd``) and
``nhd-bridge agreements``.

The adapter is :mod:`nhd_bridge.adapters.nhd.adapter`, the command group
:mod:`nhd_bridge.adapters.nhd.cli`; this module only registers them, importing each when it is
first needed, so that listing ``nhd-bridge``'s commands (which loads every plugin) stays quick.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from nhd_bridge.core.hookspecs import hookimpl
from nhd_bridge.core.lazy import lazy_exports

if TYPE_CHECKING:
    import click

    from nhd_bridge.adapters.nhd.adapter import (
        NhdAdapter,
        NhdConfig,
        policy_for,
        scoped_uuid,
        sender_for,
    )
    from nhd_bridge.core.adapter import Adapter

__all__ = [
    "NhdAdapter",
    "NhdConfig",
    "nhd_register_adapters",
    "nhd_register_commands",
    "policy_for",
    "scoped_uuid",
    "sender_for",
]

__getattr__ = lazy_exports(__name__, __all__, [f"{__name__}.adapter"])


@hookimpl
def nhd_register_adapters(register: Callable[[str, type[Adapter]], None]) -> None:
    """Register ``kind: nhd``, exactly as a third-party plugin registers its adapter."""
    from nhd_bridge.adapters.nhd.adapter import NhdAdapter

    register("nhd", NhdAdapter)


@hookimpl
def nhd_register_commands(cli: click.Group) -> None:
    """``nhd-bridge agreements``: invite, accept, decline and deactivate NHD agreements."""
    from nhd_bridge.adapters.nhd.cli import register_commands

    register_commands(cli)
