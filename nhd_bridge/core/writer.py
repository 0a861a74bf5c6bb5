"""Writing one ticket's plan: the adapters' writes and the bookkeeping around each of them.

The engine decides *what* a ticket needs (through the planner); this module does it, in the order
that keeps the promises of design.md §4: a pending link is committed before a remote create, the
links, snapshots and journal lines of a ticket are committed together after its writes, and a
write that fails parks the ticket after recording whatever did reach the target.
"""

from __future__ import annotations

import copy as copy_module
import fnmatch
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from nhd_bridge.core.adapter import (
    Adapter,
    AdapterError,
    AttachmentRef,
    AttachmentUpload,
    CommentDraft,
    PermanentError,
    TicketChanges,
    TicketDraft,
    TicketRecord,
    TransientError,
)
from nhd_bridge.core.model import nhd_uuid
from nhd_bridge.core.planner import (
    CommentEdit,
    CommentWrite,
    Copy,
    Note,
    Rules,
    Side,
    TicketPlan,
    record_written,
)
from nhd_bridge.core.plugins import Plugins
from nhd_bridge.core.run import Direction, RunSummary
from nhd_bridge.core.state import JournalEntry, StateStore, StateTx

log = logging.getLogger(__name__)

__all__ = [
    "IgnoredWrite",
    "TicketWriter",
    "UnexpectedFailure",
    "WorkItem",
    "journal_entry",
    "release_reused_id",
    "unexpected",
]


@dataclass
class WorkItem:
    """One ticket to handle in this pass: its plan and what the bookkeeping needs."""

    shared_uuid: str
    plan: TicketPlan
    origin: Copy
    counterpart: Copy | None
    sender_local_id: str
    new_comment_links: list[tuple[str, str, str]] = field(default_factory=list)


class TicketWriter:
    """Writes one ticket's plan through the adapters, with the bookkeeping around each write:
    pending links before creates, links and snapshots and journal lines after, parking on
    failure. Split from the engine, which decides *what* to write; this decides *how*."""

    def __init__(
        self,
        store: StateStore,
        plugins: Plugins,
        adapter: Callable[[str], Adapter],
        park: Callable[[Rules, RunSummary, str, str, str, AdapterError], None],
    ):
        self.store = store
        self.plugins = plugins
        self.adapter = adapter
        self._park = park

    def execute(self, rules: Rules, item: WorkItem, summary: RunSummary) -> AdapterError | None:
        """Write one ticket's plan; returns the error that parked it, if one did."""
        name = summary.agreement
        plan = item.plan
        journal: list[JournalEntry] = []
        local_ids = {item.origin.side.instance: item.origin.record.local_id}
        if item.counterpart is not None:
            local_ids[item.counterpart.side.instance] = item.counterpart.record.local_id
        written_comments: list[tuple[str, str, str]] = []
        written_fields: dict[str, TicketChanges] = {}
        created: TicketRecord | None = None
        try:
            if plan.create is not None:
                created, written_draft = self._create(rules, item, summary, journal)
                local_ids[rules.receiver.instance] = created.local_id
            for target, changes in plan.updates().items():
                written_fields[target] = self._update(
                    rules, item, target, changes, local_ids[target], summary, journal
                )
            notes: dict[str, list[str]] = {}  # target -> uuids of the bridge's own private notes
            for write in plan.comments:
                target_id = local_ids[write.target]
                written = self._comment(rules, item, write, target_id, summary, journal)
                written_comments += [(uuid, write.target, local) for uuid, local in written]
                notes.setdefault(write.target, []).extend(
                    uuid for uuid, _ in written if uuid != write.comment_uuid
                )
            for edit in plan.edits:
                self._edit(item, edit, local_ids[edit.target], summary, journal)
            if created is not None:
                created = self._verify_create(rules, item, created, written_draft, summary, journal)
            held = {
                target: self._verify(target, local_ids[target], _meant(changes))
                for target, changes in written_fields.items()
            }
        except Exception as caught:
            # Whatever went wrong, what did reach a tracker is recorded and the ticket is parked
            # with the reason; an error that is not an adapter's own is a surprise worth a trace.
            error = caught if isinstance(caught, AdapterError) else unexpected(caught)
            if not isinstance(caught, AdapterError):
                log.exception("writing ticket %s failed", item.shared_uuid)
            with self.store.transaction() as tx:
                recovered = _recovered_comments(tx, item, summary)
                self._commit_links(tx, item, created, written_comments, summary)
                # What did land is the baseline now: a retry must not take our own writes for
                # changes, nor a person's change made meanwhile for ours to overwrite.
                partial = _partial_snapshots(rules, item, written_fields, written_comments)
                for instance, snapshot in partial.items():
                    tx.put_snapshot(name, item.shared_uuid, instance, snapshot)
                tx.record_many(recovered + journal)
            failing = item.origin
            self._park(
                rules,
                summary,
                item.shared_uuid,
                failing.side.instance,
                failing.record.local_id,
                error,
            )
            return error
        snapshots = dict(plan.snapshots)
        for target, uuids in notes.items():
            if uuids and target in snapshots:
                # Our own notes are handled on their copy: never copied back as a person's.
                bodies = {**snapshots[target].get("bodies", {}), **dict.fromkeys(uuids)}
                snapshots[target] = {**snapshots[target], "comments": sorted(bodies)}
                snapshots[target]["bodies"] = bodies
        for target, written in written_fields.items():
            side = rules.side(target)
            # Hooks may have changed what was written; the snapshot holds what the target has.
            record_written(rules, snapshots[target], side, written)
        ignored = _ignored_writes(rules, item, held, snapshots, summary, journal)
        if created is not None:
            state = rules.state(created, rules.receiver)
            written = [
                uuid for uuid, target, _ in written_comments if target == created_instance(item)
            ]
            state["comments"] = sorted(written)
            state["bodies"] = dict.fromkeys(written)  # confirmed when read back
            snapshots[rules.receiver.instance] = state
        with self.store.transaction() as tx:
            recovered = _recovered_comments(tx, item, summary)
            self._commit_links(tx, item, created, written_comments, summary)
            for instance, snapshot in snapshots.items():
                tx.put_snapshot(name, item.shared_uuid, instance, snapshot)
            journal += [self._notejournal_entry(summary, item, note) for note in plan.notes]
            tx.record_many(recovered + journal)
            tx.unpark(name, item.shared_uuid)
        summary.conflicts += sum(1 for note in plan.notes if note.outcome == "conflict")
        for note in plan.notes:
            if note.outcome == "skipped":
                summary.skipped[note.action] += 1
        if ignored is not None:
            origin = item.origin
            origin_instance, origin_local = origin.side.instance, origin.record.local_id
            self._park(rules, summary, item.shared_uuid, origin_instance, origin_local, ignored)
        return ignored

    def _verify(self, target: str, local_id: str, meant: dict[str, str]) -> dict[str, str]:
        """What the tracker holds of the fields we meant to set, where it differs (a tracker may
        answer a write with success and ignore a field: Redmine with a status its workflow
        refuses). Reads the ticket back only when a verifiable field was written."""
        if not meant:
            return {}
        record = self.adapter(target).get(local_id)
        if record is None:
            return {}
        held = _held(record)
        return {
            field_name: held[field_name]
            for field_name, value in meant.items()
            if held[field_name] != value
        }

    def _verify_create(
        self,
        rules: Rules,
        item: WorkItem,
        created: TicketRecord,
        draft: TicketDraft,
        summary: RunSummary,
        journal: list[JournalEntry],
    ) -> TicketRecord:
        """A field the create ignored (Redmine takes no status on create) is set by an update
        right away; the record returned is what the tracker holds afterwards."""
        meant = _meant(TicketChanges(subject=draft.subject, status=draft.status))
        held = _held(created)
        ignored = {key: value for key, value in meant.items() if held[key] != value}
        if not ignored:
            return created
        target = rules.receiver.instance
        self.adapter(target).update(created.local_id, TicketChanges(**ignored))
        summary.writes["update"] += 1
        journal.append(
            journal_entry(
                summary,
                action="verify",
                outcome="info",
                target=target,
                shared_uuid=item.shared_uuid,
                local_id=created.local_id,
                before={key: held[key] for key in ignored},
                after=ignored,
                reason=f"{target} ignored {', '.join(sorted(ignored))} on create; set by an update",
            )
        )
        return self.adapter(target).get(created.local_id) or created

    def _create(
        self, rules: Rules, item: WorkItem, summary: RunSummary, journal: list[JournalEntry]
    ) -> tuple[TicketRecord, TicketDraft]:
        """Create the receiver's copy; returns it with the draft written (hooks applied)."""
        name = summary.agreement
        draft = item.plan.create
        assert draft is not None
        direction = Direction(name, rules.sender.instance, rules.receiver.instance, "outbound")
        fields = {
            "subject": draft.subject,
            "status": draft.status,
            "tags": draft.tags,
            "custom_fields": draft.custom_fields,
        }
        self.plugins.transform_ticket(direction, fields)
        draft = TicketDraft(
            shared_uuid=draft.shared_uuid,
            subject=fields.get("subject") or draft.subject,
            status=fields.get("status"),
            requester=draft.requester,
            requested_at=draft.requested_at,
            original_id=draft.original_id,
            tags=fields.get("tags"),
            custom_fields=fields.get("custom_fields"),
        )
        # The pending link goes in first: if we die after the create, the next run looks the
        # copy up by its breadcrumb instead of creating a second one.
        with self.store.transaction() as tx:
            tx.add_shared_ticket(item.shared_uuid, rules.sender.instance, draft.original_id)
            tx.put_link(item.shared_uuid, rules.sender.instance, item.sender_local_id, "linked")
            tx.put_link(item.shared_uuid, rules.receiver.instance, None, "pending")
            tx.share(name, item.shared_uuid)
            # Baselines before the create, so that a copy found later by its breadcrumb (the
            # answer was lost, the run died) is compared with what we created, and a person's
            # change to it since is carried back instead of overwritten.
            for instance, snapshot in _before_create(rules, item, draft).items():
                tx.put_snapshot(name, item.shared_uuid, instance, snapshot)
        created = self.adapter(rules.receiver.instance).create(draft)
        summary.writes["create"] += 1
        journal.append(
            journal_entry(
                summary,
                action="create",
                outcome="written",
                source=rules.sender.instance,
                target=rules.receiver.instance,
                shared_uuid=item.shared_uuid,
                local_id=created.local_id,
                after={"subject": draft.subject, "status": draft.status},
                reason=f"shared {item.sender_local_id} of {rules.sender.instance}",
            )
        )
        return created, draft

    def _update(
        self,
        rules: Rules,
        item: WorkItem,
        target: str,
        changes: TicketChanges,
        local_id: str,
        summary: RunSummary,
        journal: list[JournalEntry],
    ) -> TicketChanges:
        name = summary.agreement
        source = rules.other(rules.side(target))
        way = "outbound" if source.role == "sender" else "inbound"
        fields = {
            key: value
            for key, value in (
                ("subject", changes.subject),
                ("status", changes.status),
                ("tags", changes.tags),
                ("custom_fields", changes.custom_fields),
            )
            if value is not None
        }
        self.plugins.transform_ticket(Direction(name, source.instance, target, way), fields)
        changes = TicketChanges(**fields)
        if changes.is_empty():
            return changes
        self.adapter(target).update(local_id, changes)
        summary.writes["update"] += 1
        for write in item.plan.fields:
            if write.target == target:
                journal.append(
                    journal_entry(
                        summary,
                        action="update",
                        outcome="written",
                        source=write.source,
                        target=target,
                        shared_uuid=item.shared_uuid,
                        local_id=local_id,
                        field=write.name,
                        before=write.before,
                        after=_written_value(changes, write.name),
                        reason=f"{write.name} changed on {write.source}",
                    )
                )
        return changes

    def _comment(
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
        direction = Direction(name, source.instance, target.instance, _way(source))
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

    def _edit(
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

    def _commit_links(
        self,
        tx: StateTx,
        item: WorkItem,
        created: TicketRecord | None,
        written_comments: list[tuple[str, str, str]],
        summary: RunSummary,
    ) -> None:
        if created is not None:
            instance = created_instance(item)
            displaced = tx.put_link(item.shared_uuid, instance, created.local_id, "linked")
            release_reused_id(tx, summary, instance, created.local_id, displaced)
        tx.add_comment_links(item.shared_uuid, item.new_comment_links + written_comments)

    def _notejournal_entry(self, summary: RunSummary, item: WorkItem, note: Note) -> JournalEntry:
        return journal_entry(
            summary,
            action=note.action,
            outcome=note.outcome,
            source=note.source,
            target=note.target,
            shared_uuid=item.shared_uuid,
            field=note.field,
            before=note.before,
            after=note.after,
            reason=note.reason,
        )


# --- helpers ------------------------------------------------------------------------------------


class UnexpectedFailure(PermanentError):
    """An error no adapter meant to raise: a bug, or content nothing expected."""


def unexpected(error: Exception) -> UnexpectedFailure:
    return UnexpectedFailure(f"unexpected {type(error).__name__}: {error}")


class IgnoredWrite(TransientError):
    """The tracker answered a write with success but holds something else: retried later."""


def _meant(changes: TicketChanges) -> dict[str, str]:
    """The written fields a read-back can check, normalised as snapshots are."""
    meant = {}
    if changes.subject is not None:
        meant["subject"] = " ".join(changes.subject.split())
    if changes.status is not None:
        meant["status"] = changes.status.strip()
    return meant


def _held(record: TicketRecord) -> dict[str, str]:
    """What a tracker holds of the fields a read-back checks, normalised as ``_meant`` is."""
    return _meant(TicketChanges(subject=record.subject, status=record.status))


def _ignored_writes(
    rules: Rules,
    item: WorkItem,
    held: dict[str, dict[str, str]],
    snapshots: dict[str, dict[str, Any]],
    summary: RunSummary,
    journal: list[JournalEntry],
) -> IgnoredWrite | None:
    """Journal every field a target did not take. Its snapshot keeps what the target holds (so it
    is not read as a person's change there) and the source's snapshot forgets the field (so the
    source's value is planned again when the ticket is retried)."""
    failures = []
    for target, fields in held.items():
        for field_name, actual in fields.items():
            write = next(
                (w for w in item.plan.fields if w.target == target and w.name == field_name), None
            )
            if write is not None and actual != write.before:
                # Neither what we wrote nor what was there: a person changed it meanwhile. The
                # snapshot keeps what we wrote, so the next read carries their change back.
                continue
            source = write.source if write else rules.other(rules.side(target)).instance
            snapshots[target][field_name] = actual
            snapshots.get(source, {}).pop(field_name, None)
            reason = (
                f"{target} answered the write of {field_name} with success but holds "
                f"{actual!r}; it will be tried again"
            )
            failures.append(reason)
            journal.append(
                journal_entry(
                    summary,
                    action="verify",
                    outcome="failed",
                    source=source,
                    target=target,
                    shared_uuid=item.shared_uuid,
                    field=field_name,
                    before=actual,
                    after=write.after if write else None,
                    reason=reason,
                )
            )
    return IgnoredWrite("; ".join(failures)) if failures else None


def _before_create(rules: Rules, item: WorkItem, draft: TicketDraft) -> dict[str, dict[str, Any]]:
    """The snapshots a create starts from: the sender's fields as shared and the draft's on the
    receiver, no comment handled yet on either. Nothing when the draft sets no status (what the
    receiver will hold is then unknown)."""
    if draft.status is None:
        return {}
    meant = TicketRecord(
        local_id="",
        subject=draft.subject,
        status=draft.status,
        updated_at=item.origin.record.updated_at,
        tags=list(draft.tags or []),
        custom_fields=dict(draft.custom_fields or {}),
    )
    empty: dict[str, Any] = {"comments": [], "bodies": {}}
    return {
        rules.sender.instance: {**rules.state(item.origin.record, rules.sender), **empty},
        rules.receiver.instance: {**rules.state(meant, rules.receiver), **empty},
    }


def _partial_snapshots(
    rules: Rules,
    item: WorkItem,
    written_fields: dict[str, TicketChanges],
    written_comments: list[tuple[str, str, str]],
) -> dict[str, dict[str, Any]]:
    """After a write failed part way: each copy's snapshot moved on by exactly what landed. The
    field written takes its written value on the target and its current value on the source; a
    comment written is handled on both. Copies without a snapshot keep none."""
    copies = {
        copy.side.instance: copy
        for copy in (item.origin, item.counterpart)
        if copy is not None and copy.snapshot is not None
    }
    snapshots = {instance: copy_module.deepcopy(c.snapshot) for instance, c in copies.items()}
    # A field written both ways (tags merged as sets) moves on only once every side took it:
    # otherwise both baselines stay, and the retry merges again from them.
    unfinished = {write.name for write in item.plan.fields if write.target not in written_fields}
    for target, changes in written_fields.items():
        kept = _without_fields(changes, unfinished)
        if target in snapshots:
            record_written(rules, snapshots[target], rules.side(target), kept)
        for write in item.plan.fields:
            source = copies.get(write.source)
            if (
                write.target == target
                and source is not None
                and write.name in _PLAIN_FIELDS
                and write.name not in unfinished
            ):
                current = rules.state(source.record, source.side)
                snapshots[write.source][write.name] = current[write.name]
    for comment_uuid, target, _ in written_comments:
        for instance, snapshot in snapshots.items():
            digest = None if instance == target else copies[instance].bodies().get(comment_uuid)
            bodies = {**snapshot.get("bodies", {}), comment_uuid: digest}
            snapshot["bodies"] = bodies
            snapshot["comments"] = sorted(set(snapshot.get("comments", ())) | {comment_uuid})
    return snapshots


_PLAIN_FIELDS = frozenset({"subject", "status", "tags"})


def _without_fields(changes: TicketChanges, names: set[str]) -> TicketChanges:
    """The changes, less the named fields (custom fields by their local name)."""
    custom = {k: v for k, v in (changes.custom_fields or {}).items() if k not in names}
    return TicketChanges(
        subject=None if "subject" in names else changes.subject,
        status=None if "status" in names else changes.status,
        tags=None if "tags" in names else changes.tags,
        custom_fields=custom or None,
    )


def _recovered_comments(tx: StateTx, item: WorkItem, summary: RunSummary) -> list[JournalEntry]:
    """Journal lines for comments an interrupted run wrote without recording them (it died, or
    the answer was lost, before its bookkeeping commit). Such a comment is one being linked now
    that carries as its breadcrumb the uuid of a comment the bridge knows elsewhere (on the other
    copy, or linked on another instance of the ticket): that breadcrumb is where the bridge wrote
    it. A write the journal already has is not journaled again."""
    copies = {copy.side.instance: copy for copy in (item.origin, item.counterpart) if copy}
    entries: list[JournalEntry] = []
    known: dict[str, dict[str, str | None]] | None = None
    journaled: set[tuple[str | None, str]] = set()
    for comment_uuid in dict.fromkeys(uuid for uuid, _, _ in item.new_comment_links):
        for instance, copy in copies.items():
            local_id = copy.local_comment_ids().get(comment_uuid)
            comment = next((c for c in copy.record.comments if c.local_id == local_id), None)
            if comment is None or comment.shared_uuid != comment_uuid:
                continue
            if known is None:
                known = tx.comment_links(item.shared_uuid)
            elsewhere = any(
                comment_uuid in other.comment_set
                for name, other in copies.items()
                if name != instance
            ) or any(comment_uuid in links for name, links in known.items() if name != instance)
            if not elsewhere:
                continue  # a partner's own comment arriving with its uuid, not a write of ours
            entry = _recovered(tx, item, summary, instance, comment_uuid, local_id, journaled)
            if entry is not None:
                entries.append(entry)
    return entries


def _recovered(
    tx: StateTx,
    item: WorkItem,
    summary: RunSummary,
    instance: str,
    comment_uuid: str,
    local_id: str | None,
    journaled: set[tuple[str | None, str]],
) -> JournalEntry | None:
    """The journal line of one recovered comment write, unless the journal has its write."""
    if not journaled:
        journaled.add(("", ""))  # read the ticket's journal once
        journaled.update(
            (entry.target, entry.after.get("comment"))
            for entry in tx.journal(shared_uuid=item.shared_uuid, limit=100_000)
            if entry.action in ("comment", "recover") and isinstance(entry.after, dict)
        )
    if (instance, comment_uuid) in journaled:
        return None
    journaled.add((instance, comment_uuid))
    copy = item.origin if item.origin.side.instance == instance else item.counterpart
    assert copy is not None
    return journal_entry(
        summary,
        action="recover",
        outcome="info",
        target=instance,
        shared_uuid=item.shared_uuid,
        local_id=copy.record.local_id,
        after={"comment": comment_uuid, "local_id": local_id},
        reason=f"comment {local_id} on {instance} was written by a run that was interrupted "
        "before it recorded the write; found by its breadcrumb and linked, not written again",
    )


def release_reused_id(
    tx: StateTx, summary: RunSummary, instance: str, local_id: str, displaced: list[str]
) -> None:
    """A tracker handed out the id of a deleted ticket again: the shared tickets whose copy it
    was are orphaned there (their other copies stay) and the journal says why."""
    for shared_uuid in displaced:
        for agreement in tx.agreements_of_ticket(shared_uuid):
            tx.set_agreement_ticket_state(agreement, shared_uuid, "orphaned")
        tx.record(
            journal_entry(
                summary,
                action="reused-id",
                outcome="info",
                target=instance,
                shared_uuid=shared_uuid,
                local_id=local_id,
                reason=f"{instance} gave id {local_id} to another ticket: the copy this shared "
                "ticket had there was deleted, so it is orphaned there and no longer syncs",
            )
        )


def _written_value(changes: TicketChanges, name: str) -> Any:
    if name in ("subject", "status", "tags"):
        return getattr(changes, name)
    return (changes.custom_fields or {}).get(name)


def journal_entry(summary: RunSummary, **fields: Any) -> JournalEntry:
    """A journal line of this run."""
    return JournalEntry(agreement=summary.agreement, run_id=summary.run_id, **fields)


def created_instance(item: WorkItem) -> str:
    assert item.plan.create_target is not None
    return item.plan.create_target


def _way(source: Side) -> Any:
    return "outbound" if source.role == "sender" else "inbound"


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
