"""Test kit for nhd_bridge and for adapter plugins.

- :class:`AdapterContract`: the contract suite an adapter's tests subclass.
- :class:`FakeTracker`, :class:`FakeAdapter`, :class:`FakeConfig`: an in-memory tracker, so that
  engine tests need no I/O.
- :func:`registered_plugin`: register a plugin for the duration of one test.
- :class:`FaultProxy`: a loopback HTTP proxy that loses answers, rate-limits, fails, resets and
  delays chosen requests on their way to a real tracker.

``AdapterContract`` is imported on first use, because it needs pytest: the fake tracker stays
usable where pytest is not installed (a demo bridge listing ``nhd_bridge.testing.fake`` under
``plugins:``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nhd_bridge.testing.fake import FakeAdapter, FakeConfig, FakeTracker
from nhd_bridge.testing.faultproxy import FaultProxy
from nhd_bridge.testing.plugins import registered_plugin

if TYPE_CHECKING:
    from nhd_bridge.testing.contract import AdapterContract

__all__ = [
    "AdapterContract",
    "FakeAdapter",
    "FakeConfig",
    "FakeTracker",
    "FaultProxy",
    "registered_plugin",
]


def __getattr__(name: str) -> Any:
    if name == "AdapterContract":
        from nhd_bridge.testing.contract import AdapterContract

        return AdapterContract
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
