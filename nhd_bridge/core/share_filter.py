"""An agreement's share filter: which tickets of the sender it starts sharing (design.md §3)."""

from __future__ import annotations

from typing import Any

# Both codes: types-jmespath is not installed everywhere, and where it is the ignore is unused.
import jmespath  # type: ignore[import-untyped, unused-ignore]

from nhd_bridge.core.adapter import TicketRecord

__all__ = ["ShareFilter", "share_filter_document"]


class ShareFilter:
    """A compiled JMESPath expression over a ticket's document; no expression shares every
    ticket."""

    def __init__(self, expression: str | None):
        self._compiled: Any = jmespath.compile(expression) if expression else None

    def matches(self, record: TicketRecord) -> bool:
        if self._compiled is None:
            return True
        return bool(self._compiled.search(share_filter_document(record)))


def share_filter_document(record: TicketRecord) -> dict[str, Any]:
    """The document a share filter is evaluated against."""
    return {
        "subject": record.subject,
        "status": record.status,
        "tags": list(record.tags),
        "custom_fields": dict(record.custom_fields),
        "requester": record.requester.model_dump() if record.requester else None,
        "id": record.human_id or record.local_id,
    }
