"""The journal: every write, skip, conflict and failure, with the reason."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select

from nhd_bridge.core.redaction import redact
from nhd_bridge.core.state.base import TxBase, from_row, load_json, utcnow
from nhd_bridge.core.state.schema import journal

__all__ = ["JournalEntry", "JournalTx"]


@dataclass
class JournalEntry:
    """One line of the journal: every write, skip, conflict and failure, with the reason."""

    agreement: str
    action: str
    outcome: str
    run_id: str = ""
    source: str | None = None
    target: str | None = None
    shared_uuid: str | None = None
    local_id: str | None = None
    field: str | None = None
    before: Any = None
    after: Any = None
    reason: str | None = None
    at: datetime | None = None
    id: int | None = None


class JournalTx(TxBase):
    """Writing and reading journal lines."""

    def record(self, entry: JournalEntry) -> None:
        self.record_many([entry])

    def record_many(self, entries: list[JournalEntry]) -> None:
        """Journal several lines in one statement (a ticket's writes are journaled together)."""
        if not entries:
            return
        now = utcnow()
        self._execute_many(
            insert(journal),
            [
                {
                    "at": entry.at or now,
                    "run_id": entry.run_id,
                    "agreement": entry.agreement,
                    "source": entry.source,
                    "target": entry.target,
                    "shared_uuid": entry.shared_uuid,
                    "local_id": entry.local_id,
                    "action": entry.action,
                    "outcome": entry.outcome,
                    "field": entry.field,
                    "before": _json_or_none(entry.before),
                    "after": _json_or_none(entry.after),
                    # Reasons quote trackers' errors, which may carry a URL with a key in it.
                    "reason": redact(entry.reason) if entry.reason else entry.reason,
                }
                for entry in entries
            ],
        )

    def journal(
        self,
        *,
        agreement: str | None = None,
        shared_uuid: str | None = None,
        run_id: str | None = None,
        outcome: str | None = None,
        limit: int = 100,
    ) -> list[JournalEntry]:
        """Newest last; at most ``limit`` of the newest matching entries."""
        query = select(journal).order_by(journal.c.id.desc()).limit(limit)
        for column, value in (
            (journal.c.agreement, agreement),
            (journal.c.shared_uuid, shared_uuid),
            (journal.c.run_id, run_id),
            (journal.c.outcome, outcome),
        ):
            if value is not None:
                query = query.where(column == value)
        rows = list(self._execute(query))
        return [
            replace(
                from_row(JournalEntry, row),
                before=load_json(row.before),
                after=load_json(row.after),
            )
            for row in reversed(rows)
        ]


def _json_or_none(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, ensure_ascii=False)
