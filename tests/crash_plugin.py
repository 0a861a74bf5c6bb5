"""A plugin for crash tests: a local tracker that kills its own process right after a write.

``NHD_CRASH_AFTER`` names the adapter method (``create`` or ``add_comment``) after whose Nth call
(``NHD_CRASH_COUNT``, default 1) the process receives SIGKILL: the write reached the tracker, and
the bridge never got to record it. Loaded through the YAML ``plugins:`` list.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

from nhd_bridge import Adapter, hookimpl
from nhd_bridge.adapters.local import LocalAdapter

_calls: dict[str, int] = {}


def _maybe_die(method: str) -> None:
    if os.environ.get("NHD_CRASH_AFTER") != method:
        return
    _calls[method] = _calls.get(method, 0) + 1
    if _calls[method] >= int(os.environ.get("NHD_CRASH_COUNT", "1")):
        os.kill(os.getpid(), signal.SIGKILL)


class CrashingLocalAdapter(LocalAdapter):
    kind = "crashing_local"

    def create(self, draft: Any) -> Any:
        created = super().create(draft)
        _maybe_die("create")
        return created

    def add_comment(self, local_id: str, draft: Any) -> str:
        written = super().add_comment(local_id, draft)
        _maybe_die("add_comment")
        return written


@hookimpl
def nhd_register_adapters(register: Callable[[str, type[Adapter]], None]) -> None:
    register("crashing_local", CrashingLocalAdapter)
