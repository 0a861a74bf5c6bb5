"""Which comment of one copy is which comment of the other: comment uuid -> local comment id."""

from __future__ import annotations

from sqlalchemy import delete, select

from nhd_bridge.core.state.base import TxBase, matching, utcnow
from nhd_bridge.core.state.schema import comment_links

__all__ = ["CommentLinkTx"]


class CommentLinkTx(TxBase):
    """Links of shared comments to their local comments, per instance."""

    def comment_links(self, shared_uuid: str) -> dict[str, dict[str, str | None]]:
        """``{instance: {comment_uuid: local_id or None while pending}}`` for one ticket."""
        rows = self._execute(
            select(comment_links).where(comment_links.c.shared_uuid == shared_uuid)
        )
        links: dict[str, dict[str, str | None]] = {}
        for row in rows:
            links.setdefault(row.instance, {})[row.comment_uuid] = row.local_id
        return links

    def comment_links_for(
        self, shared_uuids: list[str]
    ) -> dict[str, dict[str, dict[str, str | None]]]:
        """``comment_links`` for many tickets: ``{shared uuid: {instance: {uuid: local}}}``."""
        found: dict[str, dict[str, dict[str, str | None]]] = {uuid: {} for uuid in shared_uuids}
        for row in self._rows_in(select(comment_links), comment_links.c.shared_uuid, shared_uuids):
            found[row.shared_uuid].setdefault(row.instance, {})[row.comment_uuid] = row.local_id
        return found

    def put_comment_link(
        self, comment_uuid: str, instance: str, shared_uuid: str, local_id: str | None
    ) -> None:
        self._upsert(
            comment_links,
            {"comment_uuid": comment_uuid, "instance": instance},
            {"local_id": local_id},
            created={"shared_uuid": shared_uuid, "created_at": utcnow()},
        )

    def add_comment_links(self, shared_uuid: str, rows: list[tuple[str, str, str]]) -> None:
        """Link several comments of one ticket: ``(comment uuid, instance, local id)`` rows.
        Rows already linked are updated; the new ones go in with one statement."""
        if not rows:
            return
        # Existing links are looked up by their own key, whichever ticket they were made for.
        existing = {
            (row.comment_uuid, row.instance): row.local_id
            for row in self._execute(
                select(comment_links).where(
                    comment_links.c.comment_uuid.in_({uuid for uuid, _, _ in rows})
                )
            )
        }
        fresh = []
        for comment_uuid, instance, local_id in dict.fromkeys(rows):
            if (comment_uuid, instance) in existing:
                if existing[(comment_uuid, instance)] != local_id:
                    self.put_comment_link(comment_uuid, instance, shared_uuid, local_id)
            else:
                fresh.append(
                    {
                        "comment_uuid": comment_uuid,
                        "instance": instance,
                        "shared_uuid": shared_uuid,
                        "local_id": local_id,
                        "created_at": utcnow(),
                    }
                )
        self._insert_absent(comment_links, ("comment_uuid", "instance"), fresh)

    def drop_comment_link(self, comment_uuid: str, instance: str) -> None:
        self._execute(
            delete(comment_links).where(
                matching(comment_links, comment_uuid=comment_uuid, instance=instance)
            )
        )
