"""The ``rest`` plugin: generic REST trackers described in YAML (``kind: rest``).

The adapter is :mod:`nhd_bridge.adapters.rest.adapter`; this module only registers it, importing
it when the first run asks for adapters, so that listing ``nhd-bridge``'s commands (which loads
every plugin) does not pay for httpx and the profile models.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from nhd_bridge.core.hookspecs import hookimpl
from nhd_bridge.core.lazy import lazy_exports

if TYPE_CHECKING:
    from nhd_bridge.adapters.rest.adapter import RestAdapter, RestConfig
    from nhd_bridge.core.adapter import Adapter

__all__ = ["RestAdapter", "RestConfig", "nhd_register_adapters"]

__getattr__ = lazy_exports(__name__, __all__, [f"{__name__}.adapter"])


@hookimpl
def nhd_register_adapters(register: Callable[[str, type[Adapter]], None]) -> None:
    """Register ``kind: rest``, exactly as a third-party plugin registers its adapter."""
    from nhd_bridge.adapters.rest.adapter import RestAdapter

    register("rest", RestAdapter)
