"""What each side looked like when last synced (diffs are taken against it), and where each
agreement's reading of each instance stopped."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import and_, select

from nhd_bridge.core.state.base import TxBase, chunks, matching, utcnow
from nhd_bridge.core.state.schema import cursors, snapshots

__all__ = ["SnapshotTx"]


class SnapshotTx(TxBase):
    """Snapshots per (agreement, shared ticket, instance) and cursors per (agreement, instance)."""

    def snapshot(self, agreement: str, shared_uuid: str, instance: str) -> dict[str, Any] | None:
        row = self._execute(
            select(snapshots.c.data).where(
                matching(snapshots, agreement=agreement, shared_uuid=shared_uuid, instance=instance)
            )
        ).first()
        return json.loads(row[0]) if row else None

    def snapshots_for(
        self, agreement: str, instance: str, shared_uuids: list[str]
    ) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for chunk in chunks(shared_uuids):
            rows = self._execute(
                select(snapshots.c.shared_uuid, snapshots.c.data).where(
                    and_(
                        snapshots.c.agreement == agreement,
                        snapshots.c.instance == instance,
                        snapshots.c.shared_uuid.in_(chunk),
                    )
                )
            )
            found.update({row.shared_uuid: json.loads(row.data) for row in rows})
        return found

    def put_snapshot(
        self, agreement: str, shared_uuid: str, instance: str, data: dict[str, Any]
    ) -> None:
        self._upsert(
            snapshots,
            {"agreement": agreement, "shared_uuid": shared_uuid, "instance": instance},
            {"data": json.dumps(data, sort_keys=True, default=str), "updated_at": utcnow()},
        )

    def cursor(self, agreement: str, instance: str) -> str | None:
        row = self._execute(
            select(cursors.c.cursor).where(
                matching(cursors, agreement=agreement, instance=instance)
            )
        ).first()
        return row[0] if row else None

    def put_cursor(self, agreement: str, instance: str, cursor: str | None) -> None:
        self._upsert(
            cursors,
            {"agreement": agreement, "instance": instance},
            {"cursor": cursor, "updated_at": utcnow()},
        )
