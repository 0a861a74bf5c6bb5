"""The ``jira`` plugin: Jira Cloud and Data Center issues (``kind: jira``).

The adapter is :mod:`nhd_bridge.adapters.jira.adapter`; this module only registers it, importing
it when the first run asks for adapters, so that listing ``nhd-bridge``'s commands (which loads
every plugin) does not pay for it. A missing ``jira`` extra still fails here, at plugin load, with
the module's name, so that ``nhd-bridge adapters`` lists the plugin as unavailable and says why.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.util import find_spec
from typing import TYPE_CHECKING

from nhd_bridge.core.hookspecs import hookimpl
from nhd_bridge.core.lazy import lazy_exports

if TYPE_CHECKING:
    from nhd_bridge.adapters.jira.adapter import JiraAdapter, JiraConfig
    from nhd_bridge.core.adapter import Adapter

for _module in ("jira", "requests", "requests_toolbelt"):
    if find_spec(_module) is None:
        raise ModuleNotFoundError(f"No module named {_module!r}", name=_module)

__all__ = ["JiraAdapter", "JiraConfig", "nhd_register_adapters"]

__getattr__ = lazy_exports(__name__, __all__, [f"{__name__}.adapter"])


@hookimpl
def nhd_register_adapters(register: Callable[[str, type[Adapter]], None]) -> None:
    """Register ``kind: jira``, exactly as a third-party plugin registers its adapter."""
    from nhd_bridge.adapters.jira.adapter import JiraAdapter

    register("jira", JiraAdapter)
