"""What each side looked like when last synced (diffs are taken against it), and where each
agreement's reading of each instance stopped."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from nhd_bridge.core.state.base import TxBase, matching, utcnow
from nhd_bridge.core.state.schema import cursors, snapshots

__all__ = ["SnapshotTx"]


class SnapshotTx(TxBase):
    """Snapshots per (agreement, shared ticket, instance) and cursors per (agreement, instance)."""

    def snapshot(self, agreement: str, shared_uuid: str, instance: str) -> dict[str, Any] | None:
        data = self._value(
            snapshots.c.data, agreement=agreement, shared_uuid=shared_uuid, instance=instance
        )
        return None if data is None else json.loads(data)

    def snapshots_for(
        self, agreement: str, instance: str, shared_uuids: list[str]
    ) -> dict[str, dict[str, Any]]:
        query = select(snapshots.c.shared_uuid, snapshots.c.data).where(
            matching(snapshots, agreement=agreement, instance=instance)
        )
        rows = self._rows_in(query, snapshots.c.shared_uuid, shared_uuids)
        return {row.shared_uuid: json.loads(row.data) for row in rows}

    def put_snapshot(
        self, agreement: str, shared_uuid: str, instance: str, data: dict[str, Any]
    ) -> None:
        self._upsert(
            snapshots,
            {"agreement": agreement, "shared_uuid": shared_uuid, "instance": instance},
            {"data": json.dumps(data, sort_keys=True, default=str), "updated_at": utcnow()},
        )

    def cursor(self, agreement: str, instance: str) -> str | None:
        cursor = self._value(cursors.c.cursor, agreement=agreement, instance=instance)
        return None if cursor is None else str(cursor)

    def put_cursor(self, agreement: str, instance: str, cursor: str | None) -> None:
        self._upsert(
            cursors,
            {"agreement": agreement, "instance": instance},
            {"cursor": cursor, "updated_at": utcnow()},
        )
