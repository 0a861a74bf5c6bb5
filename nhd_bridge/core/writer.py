"""Writing one ticket's plan: the adapters' writes and the bookkeeping around each of them.

The engine decides *what* a ticket needs (through the planner); this module does it, in the order
that keeps the promises of design.md §4: a pending link is committed before a remote create, the
links, snapshots and journal lines of a ticket are committed together after its writes, and a
write that fails parks the ticket after recording whatever did reach the target.
"""

from __future__ import annotations

import copy as copy_module
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nhd_bridge.core.adapter import (
    Adapter,
    AdapterError,
    TicketChanges,
    TicketDraft,
    TicketRecord,
)
from nhd_bridge.core.comment_writer import CommentWriter
from nhd_bridge.core.failures import (
    IgnoredWrite,
    Parking,
    TicketCopy,
    UnexpectedFailure,
    unexpected,
)
from nhd_bridge.core.planner import (
    Copy,
    Note,
    Rules,
    TicketPlan,
    record_written,
)
from nhd_bridge.core.plugins import Plugins
from nhd_bridge.core.run import RunSummary
from nhd_bridge.core.run_journal import journal_entry, release_reused_id
from nhd_bridge.core.state import JournalEntry, StateStore, StateTx

log = logging.getLogger(__name__)

__all__ = [
    "IgnoredWrite",
    "TicketWriter",
    "UnexpectedFailure",
    "WorkItem",
    "WriteContext",
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

    @property
    def origin_copy(self) -> TicketCopy:
        """The copy whose change this item carries: a failed write parks the ticket there."""
        return TicketCopy(self.shared_uuid, self.origin.side.instance, self.origin.record.local_id)


@dataclass(frozen=True)
class WriteContext:
    """What the writer works with: the store for bookkeeping, the plugins' hooks, the adapter of
    each instance, and where a ticket whose write failed is parked."""

    store: StateStore
    plugins: Plugins
    adapter: Callable[[str], Adapter]
    parking: Parking


class TicketWriter:
    """Writes one ticket's plan through the adapters, with the bookkeeping around each write:
    pending links before creates, links and snapshots and journal lines after, parking on
    failure. Split from the engine, which decides *what* to write; this decides *how*."""

    def __init__(self, context: WriteContext):
        self.store = context.store
        self.plugins = context.plugins
        self.adapter = context.adapter
        self.parking = context.parking
        self.comments = CommentWriter(context.plugins, context.adapter)

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
                landed = self.comments.write(rules, item, write, target_id, summary, journal)
                written_comments += [(uuid, write.target, local) for uuid, local in landed]
                notes.setdefault(write.target, []).extend(
                    uuid for uuid, _ in landed if uuid != write.comment_uuid
                )
            for edit in plan.edits:
                self.comments.edit(item, edit, local_ids[edit.target], summary, journal)
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
                _commit_links(tx, item, created, written_comments, summary)
                # What did land is the baseline now: a retry must not take our own writes for
                # changes, nor a person's change made meanwhile for ours to overwrite.
                partial = _partial_snapshots(rules, item, written_fields, written_comments)
                for instance, snapshot in partial.items():
                    tx.put_snapshot(name, item.shared_uuid, instance, snapshot)
                tx.record_many(recovered + journal)
            self.parking.park(summary, item.origin_copy, error)
            return error
        snapshots = dict(plan.snapshots)
        for target, uuids in notes.items():
            if uuids and target in snapshots:
                # Our own notes are handled on their copy: never copied back as a person's.
                bodies = {**snapshots[target].get("bodies", {}), **dict.fromkeys(uuids)}
                snapshots[target] = {**snapshots[target], "comments": sorted(bodies)}
                snapshots[target]["bodies"] = bodies
        for target, changes in written_fields.items():
            # Hooks may have changed what was written; the snapshot holds what the target has.
            record_written(rules, snapshots[target], rules.side(target), changes)
        ignored = _ignored_writes(rules, item, held, snapshots, summary, journal)
        if created is not None:
            state = rules.state(created, rules.receiver)
            on_copy = [
                uuid for uuid, target, _ in written_comments if target == created_instance(item)
            ]
            state["comments"] = sorted(on_copy)
            state["bodies"] = dict.fromkeys(on_copy)  # confirmed when read back
            snapshots[rules.receiver.instance] = state
        with self.store.transaction() as tx:
            recovered = _recovered_comments(tx, item, summary)
            _commit_links(tx, item, created, written_comments, summary)
            for instance, snapshot in snapshots.items():
                tx.put_snapshot(name, item.shared_uuid, instance, snapshot)
            journal += [_note_entry(summary, item, note) for note in plan.notes]
            tx.record_many(recovered + journal)
            tx.unpark(name, item.shared_uuid)
        summary.conflicts += sum(1 for note in plan.notes if note.outcome == "conflict")
        for note in plan.notes:
            if note.outcome == "skipped":
                summary.skipped[note.action] += 1
        if ignored is not None:
            self.parking.park(summary, item.origin_copy, ignored)
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
        changes = TicketChanges(subject=ignored.get("subject"), status=ignored.get("status"))
        self.adapter(target).update(created.local_id, changes)
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
        direction = rules.direction(name, rules.sender)
        fields: dict[str, Any] = {
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
        fields: dict[str, Any] = {
            key: value
            for key, value in (
                ("subject", changes.subject),
                ("status", changes.status),
                ("tags", changes.tags),
                ("custom_fields", changes.custom_fields),
            )
            if value is not None
        }
        self.plugins.transform_ticket(rules.direction(name, source), fields)
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


# --- helpers ------------------------------------------------------------------------------------


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
    snapshots: dict[str, dict[str, Any]] = {
        instance: copy_module.deepcopy(c.snapshot)
        for instance, c in copies.items()
        if c.snapshot is not None
    }
    # A field written both ways (tags merged as sets) moves on only once every side took it:
    # otherwise both baselines stay, and the retry merges again from them.
    unfinished = {write.name for write in item.plan.fields if write.target not in written_fields}
    for target, changes in written_fields.items():
        kept = _without_fields(changes, unfinished)
        if target in snapshots:
            record_written(rules, snapshots[target], rules.side(target), kept)
        for write in item.plan.fields:
            source = copies.get(write.source)
            if write.target == target and source is not None and write.name not in unfinished:
                # The source's baseline moves to what it held when the write was planned: left
                # behind, a person setting the field back to it would look like no change.
                key = rules.state_key(write.name, rules.side(write.target))
                current = rules.state(source.record, source.side)
                if key in current:
                    snapshots[write.source][key] = current[key]
    for comment_uuid, target, _ in written_comments:
        for instance, snapshot in snapshots.items():
            digest = None if instance == target else copies[instance].bodies().get(comment_uuid)
            bodies = {**snapshot.get("bodies", {}), comment_uuid: digest}
            snapshot["bodies"] = bodies
            snapshot["comments"] = sorted(set(snapshot.get("comments", ())) | {comment_uuid})
    return snapshots


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
    journaled: set[tuple[str | None, str | None]] = set()
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
    journaled: set[tuple[str | None, str | None]],
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


def _written_value(changes: TicketChanges, name: str) -> Any:
    if name in ("subject", "status", "tags"):
        return getattr(changes, name)
    return (changes.custom_fields or {}).get(name)


def created_instance(item: WorkItem) -> str:
    assert item.plan.create_target is not None
    return item.plan.create_target


def _commit_links(
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


def _note_entry(summary: RunSummary, item: WorkItem, note: Note) -> JournalEntry:
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
