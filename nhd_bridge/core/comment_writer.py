"""Writing one ticket's comments and comment edits: hooks, attachments, and the private note on
attachments left behind. Part of :class:`nhd_bridge.core.writer.TicketWriter`, which calls it in
the order of the plan and keeps the bookkeeping.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from nhd_bridge.core.adapter import Adapter, AttachmentRef, AttachmentUpload, CommentDraft
from nhd_bridge.core.model import nhd_uuid
from nhd_bridge.core.planner import CommentEdit, CommentWrite, Rules, Side
from nhd_bridge.core.plugins import Plugins
from nhd_bridge.core.run import RunSummary
from nhd_bridge.core.run_journal import journal_entry
from nhd_bridge.core.state import JournalEntry

if TYPE_CHECKING:
    from nhd_bridge.core.writer import WorkItem

__all__ = ["CommentWriter"]


class CommentWriter:
    """Copies comments and their edits to the other copy through its adapter."""

    def __init__(self, plugins: Plugins, adapter: Callable[[str], Adapter]):
        self.plugins = plugins
        self.adapter = adapter

    def write(
        self,
        rules: Rules,
        item: WorkItem,
        write: CommentWrite,
        local_id: str,
        summary: RunSummary,
        journal: list[JournalEntry],
    ) -> list[tuple[str, str]]:
        """Copy one comment; returns ``(uuid, local id)`` of what was written: the comment, and
        the private note on attachments left behind when it went apart from the comment."""
        name = summary.agreement
        source = rules.side(write.source)
        target = rules.other(source)
        direction = rules.direction(name, source)
        draft = write.draft
        was_private = not draft.public
        reason = self.plugins.transform_comment(direction, draft)
        entry = journal_entry(
            summary,
            action="comment",
            outcome="written",
            source=source.instance,
            target=target.instance,
            shared_uuid=item.shared_uuid,
            after={"comment": write.comment_uuid, "public": draft.public},
        )
        if reason:
            entry.outcome, entry.reason = "skipped", f"kept out by a plugin: {reason}"
            journal.append(entry)
            summary.skipped["comment"] += 1
            return []
        if was_private and draft.public:
            draft.public = False  # a hook may narrow visibility, never widen it
            entry.reason = "a plugin tried to make a private comment public; it stays private"
        left_out = self._attachments(rules, source, target, write, draft)
        note: CommentDraft | None = None
        if left_out and draft.public and target.capabilities.private_comments:
            # Why a file stayed behind is for agents: a private note beside the public comment.
            note = CommentDraft(
                shared_uuid=nhd_uuid(target.sharing_url, "attachment-notes", write.comment_uuid),
                body="\n".join(left_out),
                public=False,
            )
        elif left_out:
            draft.body = "\n\n".join([draft.body, *left_out])
        local = self.adapter(target.instance).add_comment(local_id, draft)
        summary.writes["comment"] += 1
        entry.local_id = local_id
        entry.after = {"comment": write.comment_uuid, "public": draft.public, "local_id": local}
        entry.reason = entry.reason or (
            f"{'public' if draft.public else 'private'} comment from {source.instance}"
        )
        journal.append(entry)
        written = [(write.comment_uuid, local)]
        if note is not None:
            note_id = self.adapter(target.instance).add_comment(local_id, note)
            written.append((note.shared_uuid, note_id))
            summary.writes["comment"] += 1
            journal.append(
                journal_entry(
                    summary,
                    action="comment",
                    outcome="written",
                    source=source.instance,
                    target=target.instance,
                    shared_uuid=item.shared_uuid,
                    local_id=local_id,
                    after={"comment": note.shared_uuid, "public": False, "local_id": note_id},
                    reason=f"private note: attachments of comment {write.comment_uuid[:12]} "
                    "were not copied",
                )
            )
        return written

    def edit(
        self,
        item: WorkItem,
        edit: CommentEdit,
        local_id: str,
        summary: RunSummary,
        journal: list[JournalEntry],
    ) -> None:
        self.adapter(edit.target).edit_comment(local_id, edit.target_comment_id, edit.body)
        summary.writes["edit"] += 1
        journal.append(
            journal_entry(
                summary,
                action="edit",
                outcome="written",
                source=edit.source,
                target=edit.target,
                shared_uuid=item.shared_uuid,
                local_id=local_id,
                after={"comment": edit.comment_uuid, "local_id": edit.target_comment_id},
                reason=f"comment edited on {edit.source}",
            )
        )

    def _attachments(
        self, rules: Rules, source: Side, target: Side, write: CommentWrite, draft: CommentDraft
    ) -> list[str]:
        """Put the attachments the target may take on the draft; returns a line for each one
        left behind, naming nothing of our own configuration (customers may read it)."""
        policy = rules.agreement.attachments
        left_out: list[str] = []
        for ref in write.original.attachments:
            why = _attachment_refusal(ref, policy.max_bytes, policy.allowed_types, target)
            if why:
                left_out.append(f"[attachment {ref.filename!r} was not copied: {why}]")
                continue
            opener = partial(self.adapter(source.instance).open_attachment, ref)
            draft.attachments.append(
                AttachmentUpload(
                    filename=ref.filename,
                    open=opener,
                    content_type=ref.content_type,
                    size=ref.size,
                )
            )
        return left_out


# --- helpers ------------------------------------------------------------------------------------


def _attachment_refusal(
    ref: AttachmentRef, max_bytes: int, allowed: list[str] | None, target: Side
) -> str | None:
    if not target.capabilities.attachments:
        # Read by the customer on a public comment: name nothing of our own configuration.
        return "attachments cannot be sent to this help desk"
    limit = min(max_bytes, target.capabilities.max_attachment_bytes or max_bytes)
    if ref.size is not None and ref.size > limit:
        return f"it is {_size(ref.size)}, over the {_size(limit)} limit"
    if allowed is not None:
        kind = ref.content_type or "application/octet-stream"
        if not any(fnmatch.fnmatch(kind, pattern) for pattern in allowed):
            return f"type {kind} is not in the agreement's allowed_types"
    return None


def _size(count: int) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if count < 1024 or unit == "MiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return f"{count} bytes"
