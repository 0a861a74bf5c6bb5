"""Plugin loading and the one typed facade through which core calls hooks.

Plugins come from the ``nhd_bridge`` entry-point group (the built-in adapters are registered there
exactly like third-party ones) and from module paths listed under ``plugins:`` in the YAML.
``NHD_BRIDGE_PLUGINS`` (comma-separated entry-point names) restricts which entry points load;
set it to an empty string to load none.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pluggy

from nhd_bridge.core import hookspecs

if TYPE_CHECKING:
    import click

    from nhd_bridge.core.adapter import Adapter, CommentDraft
    from nhd_bridge.core.run import Direction, RunSummary

__all__ = ["ENTRY_POINT_GROUP", "PluginError", "Plugins", "UnavailablePlugin"]

ENTRY_POINT_GROUP = "nhd_bridge"
ALLOWLIST_VARIABLE = "NHD_BRIDGE_PLUGINS"

log = logging.getLogger(__name__)


class PluginError(Exception):
    """A plugin could not be loaded or registered something invalid."""


@dataclass(frozen=True)
class UnavailablePlugin:
    """An entry point that failed to import, typically because an optional extra is missing."""

    name: str
    reason: str


class Plugins:
    """The plugin manager behind a typed API. Nothing else in nhd_bridge touches ``pm.hook``."""

    def __init__(self, *, load_entry_points: bool = True, modules: Iterable[str] = ()):
        self._pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self._pm.add_hookspecs(hookspecs)
        self.unavailable: list[UnavailablePlugin] = []
        self._adapters: dict[str, type[Adapter]] | None = None
        if load_entry_points:
            self._load_entry_points()
        for module_path in modules:
            self.load_module(module_path)

    # --- loading --------------------------------------------------------------------------------

    def _load_entry_points(self) -> None:
        allowlist = os.environ.get(ALLOWLIST_VARIABLE)
        allowed = None if allowlist is None else {n.strip() for n in allowlist.split(",") if n}
        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            if allowed is not None and entry_point.name not in allowed:
                continue
            if self._pm.get_plugin(entry_point.name) is not None:
                continue
            try:
                plugin = entry_point.load()
            except ImportError as error:
                # An adapter whose optional extra is not installed: list it, do not fail.
                reason = _unavailable_reason(entry_point.name, error)
                self.unavailable.append(UnavailablePlugin(entry_point.name, reason))
                continue
            self.register(plugin, name=entry_point.name)

    def load_module(self, module_path: str) -> ModuleType:
        """Import ``module_path`` and register it as a plugin (the YAML ``plugins:`` list)."""
        try:
            module = importlib.import_module(module_path)
        except ImportError as error:
            raise PluginError(
                f"plugin module {module_path!r} could not be imported: {error}; "
                "check the name and that it is installed in this environment"
            ) from error
        if self._pm.get_plugin(module_path) is None and not self._pm.is_registered(module):
            self.register(module, name=module_path)
        return module

    def register(self, plugin: object, name: str | None = None) -> None:
        try:
            self._pm.register(plugin, name=name)
            self._pm.check_pending()
        except pluggy.PluginValidationError as error:
            # pluggy has already added it; a half-registered plugin must not linger.
            if self._pm.is_registered(plugin):
                self._pm.unregister(plugin)
            label = name or getattr(plugin, "__name__", repr(plugin))
            raise PluginError(
                f"plugin {label!r} is not valid: {error}; hook names must match "
                "docs/plugin-hooks.md (for example nhd_register_adapters)"
            ) from None
        self._adapters = None

    def unregister(self, plugin: object | None = None, name: str | None = None) -> None:
        self._pm.unregister(plugin, name=name)
        self._adapters = None

    @property
    def plugin_names(self) -> list[str]:
        return sorted(name for name, _ in self._pm.list_name_plugin())

    # --- typed hook calls -----------------------------------------------------------------------

    def adapters(self) -> dict[str, type[Adapter]]:
        """Every registered adapter class by kind."""
        if self._adapters is None:
            # Imported here: listing the CLI's commands loads plugins and never asks for adapters.
            from nhd_bridge.core.adapter import Adapter

            found: dict[str, type[Adapter]] = {}

            def register(kind: str, adapter_class: type[Adapter]) -> None:
                if not (isinstance(adapter_class, type) and issubclass(adapter_class, Adapter)):
                    raise PluginError(f"adapter {kind!r} is not a subclass of nhd_bridge.Adapter")
                if kind in found and found[kind] is not adapter_class:
                    raise PluginError(
                        f"two plugins register adapter kind {kind!r}: "
                        f"{found[kind].__module__} and {adapter_class.__module__}"
                    )
                found[kind] = adapter_class

            self._pm.hook.nhd_register_adapters(register=register)
            self._adapters = found
        return dict(self._adapters)

    def adapter_class(self, kind: str) -> type[Adapter]:
        adapters = self.adapters()
        if kind not in adapters:
            known = ", ".join(sorted(adapters)) or "none"
            missing = next((u for u in self.unavailable if u.name == kind), None)
            if missing is not None:
                raise PluginError(
                    f"adapter kind {kind!r} is not available: plugin {kind!r} failed to load: "
                    f"{missing.reason}"
                )
            raise PluginError(f"unknown adapter kind {kind!r}; known kinds: {known}")
        return adapters[kind]

    def register_commands(self, cli: click.Group) -> None:
        """Let every plugin add its commands to ``cli`` (the ``nhd-bridge`` group)."""
        self._pm.hook.nhd_register_commands(cli=cli)

    def transform_ticket(self, direction: Direction, fields: dict[str, Any]) -> None:
        self._pm.hook.nhd_transform_ticket(direction=direction, fields=fields)

    def transform_comment(self, direction: Direction, comment: CommentDraft) -> str | None:
        """Let plugins change a comment; the first reason to keep it out wins."""
        reasons = self._pm.hook.nhd_transform_comment(direction=direction, comment=comment)
        return next((reason for reason in reasons if reason), None)

    def run_started(self, agreement: str, run_id: str) -> None:
        self._pm.hook.nhd_run_started(agreement=agreement, run_id=run_id)

    def run_finished(self, summary: RunSummary) -> None:
        self._pm.hook.nhd_run_finished(summary=summary)

    def ticket_parked(self, agreement: str, shared_uuid: str, error: str) -> None:
        self._pm.hook.nhd_ticket_parked(agreement=agreement, shared_uuid=shared_uuid, error=error)


def _unavailable_reason(name: str, error: ImportError) -> str:
    """The import error, and the extra that installs what is missing when it is one of ours."""
    from nhd_bridge.core.extras import EXTRA_OF_PLUGIN, install_command

    extra = EXTRA_OF_PLUGIN.get(name)  # a third-party plugin's needs are its own to say
    if extra is None:
        return str(error)
    return f"{error}; install it with {install_command(extra)}"
