"""Deciding what one shared ticket needs, without touching any tracker or the store.

Given both copies of a ticket, each with its snapshot as last synced under an agreement, and the
agreement's rules, :func:`plan_ticket` says which fields and comments go which way, and why others
do not. Everything here is pure, so each rule of scenarios.md can be tested in isolation.

A *state* is the comparable form of one copy, keyed by canonical field names: ``subject``,
``status``, ``tags`` (when tags sync) and ``cf:<sender field name>`` for each mapped custom field.
A *snapshot* is the state of a copy as last synced, plus ``comments``: the shared uuids of every
comment already handled on that copy (copied, or deliberately kept out).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from nhd_bridge.core.adapter import (
    Capabilities,
    CommentDraft,
    CommentRecord,
    TicketChanges,
    TicketDraft,
    TicketRecord,
)
from nhd_bridge.core.config import AgreementConfig
from nhd_bridge.core.model import nhd_uuid
from nhd_bridge.core.run import Direction, Way

__all__ = [
    "CommentEdit",
    "CommentWrite",
    "Copy",
    "Note",
    "PlannedAction",
    "Rules",
    "ShareVerdict",
    "Side",
    "TicketPlan",
    "body_digest",
    "comment_uuids",
    "plan_ticket",
    "record_written",
    "share_verdict",
    "ticket_plans",
    "without_comments",
]

Role = Literal["sender", "receiver"]
CUSTOM = "cf:"


@dataclass(frozen=True)
class Side:
    """One side of an agreement as the planner needs it."""

    instance: str
    role: Role
    capabilities: Capabilities
    sharing_url: str
    closed_statuses: frozenset[str] = frozenset({"solved", "closed"})

    @property
    def way(self) -> Way:
        """The way a change read on this side travels."""
        return "outbound" if self.role == "sender" else "inbound"


@dataclass(frozen=True)
class Rules:
    """An agreement and its two sides: everything the planner needs to know about the link."""

    agreement: AgreementConfig
    sender: Side
    receiver: Side

    def other(self, side: Side) -> Side:
        return self.receiver if side.role == "sender" else self.sender

    def side(self, instance: str) -> Side:
        """The side this instance is on in this agreement."""
        return self.sender if instance == self.sender.instance else self.receiver

    def direction(self, agreement_name: str, source: Side) -> Direction:
        """The way a change read on ``source`` travels, as hooks are told it."""
        return Direction(agreement_name, source.instance, self.other(source).instance, source.way)

    @property
    def field_names(self) -> list[str]:
        names = ["subject", "status"]
        if self.agreement.sync_tags:
            names.append("tags")
        if self.agreement.sync_custom_fields:
            names += [CUSTOM + source for source in self.agreement.custom_fields]
        return names

    def local_field(self, name: str, side: Side) -> str:
        """A canonical custom-field name as the given side calls that field."""
        source_name = name.removeprefix(CUSTOM)
        if side.role == "sender":
            return source_name
        return self.agreement.custom_fields[source_name]

    def state_key(self, name: str, side: Side) -> str:
        """The key in :meth:`state` of a field as ``side`` names it (a custom field by its
        local name, as a :class:`FieldWrite` carries it)."""
        if name in ("subject", "status", "tags"):
            return name
        return _canonical_custom(self, name, side)

    def status_table(self, source: Side) -> dict[str, str] | None:
        maps = self.agreement.status_map
        return maps.outbound if source.way == "outbound" else maps.inbound

    def state(self, record: TicketRecord, side: Side) -> dict[str, Any]:
        """The comparable state of a copy: whitespace, order and empty values do not count."""
        state: dict[str, Any] = {
            "subject": " ".join(record.subject.split()),
            "status": record.status.strip(),
        }
        if self.agreement.sync_tags:
            state["tags"] = _normal_tags(record.tags)
        if self.agreement.sync_custom_fields:
            for source_name in self.agreement.custom_fields:
                local = self.local_field(CUSTOM + source_name, side)
                state[CUSTOM + source_name] = _normal_value(record.custom_fields.get(local))
        return state


@dataclass
class Copy:
    """One side's copy of the ticket: the record, its snapshot (None if never synced under this
    agreement) and the shared uuid of each of its comments by local comment id."""

    side: Side
    record: TicketRecord
    snapshot: dict[str, Any] | None
    uuids: dict[str, str]

    @property
    def comment_set(self) -> set[str]:
        return set(self.uuids.values())

    def bodies(self) -> dict[str, str]:
        """Digest of each comment's body by shared uuid: how an edit is noticed."""
        return {
            self.uuids[comment.local_id]: body_digest(comment.body)
            for comment in self.record.comments
        }

    def local_comment_ids(self) -> dict[str, str]:
        return {uuid: local_id for local_id, uuid in self.uuids.items()}


@dataclass
class Note:
    """Something the journal must say about this ticket: a skip, a conflict, a mapping gap."""

    action: str
    outcome: Literal["skipped", "conflict", "info"]
    reason: str
    source: str | None = None
    target: str | None = None
    field: str | None = None
    before: Any = None
    after: Any = None


@dataclass
class CommentWrite:
    """A comment to copy: its shared uuid, where it comes from and the draft for the target."""

    comment_uuid: str
    source: str
    target: str
    draft: CommentDraft
    original: CommentRecord


@dataclass
class CommentEdit:
    """An edited comment to carry over: the target's own comment id and the new body; with the
    body it replaces there and the comment's visibility, for ``plan``."""

    comment_uuid: str
    source: str
    target: str
    target_comment_id: str
    body: str
    replaced: str | None = None
    public: bool | None = None


@dataclass
class FieldWrite:
    """A field to change on one copy, with the value it had, for the journal."""

    target: str
    source: str
    name: str
    before: Any
    after: Any


@dataclass(frozen=True)
class PlannedAction:
    """One thing a plan does or reports, in a shape for machines (``nhd-bridge plan --json``).

    ``kind`` is ``create``, ``update``, ``comment``, ``edit`` (a comment's body), or a note's
    outcome: ``skipped``, ``conflict``, ``info``."""

    kind: str
    target: str | None
    source: str | None = None
    field: str | None = None
    before: Any = None
    after: Any = None
    visibility: Literal["public", "private"] | None = None
    comment: str | None = None  # the comment's shared uuid
    action: str | None = None  # what a note is about (status, comment, edit...)
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "target": self.target,
            "source": self.source,
            "field": self.field,
            "from": self.before,
            "to": self.after,
            "visibility": self.visibility,
            "comment": self.comment,
            "action": self.action,
            "reason": self.reason,
        }

    def describe(self) -> str:
        """One line for people."""
        if self.kind == "create":
            return f"create in {self.target}: {self.after!r}"
        if self.kind == "update":
            return f"set {self.field} in {self.target}: {self.before!r} → {self.after!r}"
        if self.kind == "comment":
            return f"add {self.visibility} comment {self.source} → {self.target}"
        if self.kind == "edit":
            visibility = f", {self.visibility}" if self.visibility else ""
            return (
                f"edit comment {(self.comment or '')[:12]} in {self.target} "
                f"(from {self.source}{visibility}): {self.before!r} → {self.after!r}"
            )
        return f"{self.kind} {self.action}: {self.reason}"


@dataclass
class TicketPlan:
    """Everything one agreement run will do for one shared ticket."""

    shared_uuid: str
    create: TicketDraft | None = None
    create_target: str | None = None
    fields: list[FieldWrite] = field(default_factory=list)
    comments: list[CommentWrite] = field(default_factory=list)
    edits: list[CommentEdit] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def writes(self) -> int:
        return (
            (1 if self.create else 0) + len(self.updates()) + len(self.comments) + len(self.edits)
        )

    def actions(self) -> list[PlannedAction]:
        """Every write and note of the plan, in the order the writer takes them."""
        actions: list[PlannedAction] = []
        if self.create is not None:
            actions.append(PlannedAction("create", self.create_target, after=self.create.subject))
        for write in self.fields:
            actions.append(
                PlannedAction(
                    "update", write.target, write.source, write.name, write.before, write.after
                )
            )
        for comment in self.comments:
            actions.append(
                PlannedAction(
                    "comment",
                    comment.target,
                    comment.source,
                    visibility=_visibility(comment.draft.public),
                    comment=comment.comment_uuid,
                )
            )
        for edit in self.edits:
            actions.append(
                PlannedAction(
                    "edit",
                    edit.target,
                    edit.source,
                    field="body",
                    before=edit.replaced,
                    after=edit.body,
                    visibility=None if edit.public is None else _visibility(edit.public),
                    comment=edit.comment_uuid,
                )
            )
        for note in self.notes:
            actions.append(
                PlannedAction(
                    note.outcome,
                    note.target,
                    note.source,
                    note.field,
                    note.before,
                    note.after,
                    action=note.action,
                    reason=note.reason,
                )
            )
        return actions

    def write_counts(self) -> dict[str, int]:
        """Writes by kind, as a run's summary counts them."""
        counts = {
            "create": 1 if self.create else 0,
            "update": len(self.updates()),
            "comment": len(self.comments),
            "edit": len(self.edits),
        }
        return {kind: count for kind, count in counts.items() if count}

    def updates(self) -> dict[str, TicketChanges]:
        """The field writes grouped into one change set per target instance."""
        grouped: dict[str, TicketChanges] = {}
        for write in self.fields:
            changes = grouped.setdefault(write.target, TicketChanges())
            if write.name == "subject":
                changes.subject = write.after
            elif write.name == "status":
                changes.status = write.after
            elif write.name == "tags":
                changes.tags = list(write.after or [])
            else:
                changes.custom_fields = {**(changes.custom_fields or {}), write.name: write.after}
        return grouped

    def closes_on(self, side: Side) -> bool:
        """Whether this plan moves the ticket into a closing status on ``side``."""
        if self.create is not None and self.create_target == side.instance:
            return False  # a copy born closed closes nothing that was open
        return any(
            write.target == side.instance
            and write.name == "status"
            and write.after in side.closed_statuses
            for write in self.fields
        )


def ticket_plans(planned: Iterable[tuple[str, TicketPlan]]) -> list[tuple[str, TicketPlan]]:
    """One plan per shared ticket, from the ``(shared uuid, plan)`` of a dry run, in order; plans
    with no write and no note are left out. A dry run plans a ticket changed on both sides in each
    side's pass, from the same two copies, so the first plan of a ticket is the whole of it."""
    plans: dict[str, TicketPlan] = {}
    for shared_uuid, plan in planned:
        if shared_uuid not in plans and (plan.writes or plan.notes):
            plans[shared_uuid] = plan
    return list(plans.items())


def _visibility(public: bool) -> Literal["public", "private"]:
    return "public" if public else "private"


def comment_uuids(
    record: TicketRecord, side: Side, links: dict[str, str | None]
) -> tuple[dict[str, str], list[tuple[str, str]], list[tuple[str, str]]]:
    """Shared uuid of every comment on one copy, the ``(uuid, local id)`` links the store lacks,
    and the ``(local id, uuid)`` of duplicates. A comment is known by its link, else by the
    breadcrumb we left when we wrote it (a crash came between the write and the link), else a
    person wrote it here and it gets a uuid minted from this instance's sharing URL.

    Two comments carrying one breadcrumb (a write repeated after a lost answer, or a person's
    copy) are one shared comment: the linked one, else the first, stands for it; the others are
    duplicates, left out of the sync so that they are neither linked nor copied anywhere."""
    by_local = {local: uuid for uuid, local in links.items() if local is not None}
    claimed = {uuid: local for local, uuid in by_local.items()}
    uuids: dict[str, str] = {}
    missing: list[tuple[str, str]] = []
    duplicates: list[tuple[str, str]] = []
    for comment in record.comments:
        uuid = by_local.get(comment.local_id)
        if uuid is None:
            uuid = comment.shared_uuid or nhd_uuid(side.sharing_url, "comments", comment.local_id)
            if claimed.get(uuid, comment.local_id) != comment.local_id:
                duplicates.append((comment.local_id, uuid))
                continue
            claimed[uuid] = comment.local_id
            missing.append((uuid, comment.local_id))
        uuids[comment.local_id] = uuid
    return uuids, missing, duplicates


def without_comments(record: TicketRecord, local_ids: set[str]) -> TicketRecord:
    """The record as the sync sees it: duplicate comments left out."""
    if not local_ids:
        return record
    kept = [comment for comment in record.comments if comment.local_id not in local_ids]
    return dataclasses.replace(record, comments=kept)


# --- starting to share ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ShareVerdict:
    """Whether a run of an agreement starts sharing a ticket of its sender that it does not carry
    yet, and the rule that decides it (what ``nhd-bridge explain`` prints)."""

    agreement: str
    shares: bool
    reason: str


def share_verdict(name: str, agreement: AgreementConfig, matches_filter: bool) -> ShareVerdict:
    """The verdict for a ticket of ``agreement``'s sender, given whether the engine's share filter
    matched it: only an accepted agreement shares, and only the tickets its filter lets through."""
    if agreement.status != "accepted":
        return ShareVerdict(name, False, f"agreement is {agreement.status}; nothing is shared")
    if not matches_filter:
        return ShareVerdict(name, False, f"does not match share_filter {agreement.share_filter!r}")
    return ShareVerdict(name, True, "matches; it will be shared on the next run")


# --- planning -----------------------------------------------------------------------------------


def plan_ticket(rules: Rules, shared_uuid: str, sender: Copy, receiver: Copy | None) -> TicketPlan:
    """Plan one ticket under one agreement. ``receiver`` is ``None`` when it is not shared yet."""
    plan = TicketPlan(shared_uuid)
    if receiver is None:
        _plan_share(rules, plan, sender)
        return plan
    _plan_fields(rules, plan, sender, receiver)
    _plan_comments(rules, plan, sender, receiver)
    _plan_comments(rules, plan, receiver, sender)
    for copy in (sender, receiver):
        plan.snapshots[copy.side.instance] = _snapshot_after(rules, plan, copy)
    return plan


def _plan_share(rules: Rules, plan: TicketPlan, sender: Copy) -> None:
    record, target = sender.record, rules.receiver
    status = _translate_status(rules, record.status, sender.side, target)
    if status is _UNMAPPABLE:
        plan.notes.append(_unmappable_note(rules, "status", record.status, sender.side, target))
        status = None
    draft = TicketDraft(
        shared_uuid=plan.shared_uuid,
        subject=record.subject,
        status=status,
        requester=record.requester,
        requested_at=record.requested_at,
        original_id=record.human_id or record.local_id,
    )
    if rules.agreement.sync_tags and target.capabilities.tags:
        draft.tags = _normal_tags(record.tags)
    if rules.agreement.sync_custom_fields and target.capabilities.custom_fields:
        draft.custom_fields = {
            rules.local_field(CUSTOM + name, target): value
            for name in rules.agreement.custom_fields
            if (value := _normal_value(record.custom_fields.get(name))) is not None
        }
    plan.create, plan.create_target = draft, target.instance
    # Every comment of the sender is new to a copy that does not exist yet.
    blank = TicketRecord(local_id="", subject="", status="", updated_at=record.updated_at)
    _plan_comments(rules, plan, sender, Copy(target, blank, None, {}))
    plan.snapshots[sender.side.instance] = _snapshot_after(rules, plan, sender)


def _plan_fields(rules: Rules, plan: TicketPlan, sender: Copy, receiver: Copy) -> None:
    states = {
        sender.side.instance: rules.state(sender.record, sender.side),
        receiver.side.instance: rules.state(receiver.record, receiver.side),
    }
    # Without a snapshot (a copy linked by crash recovery) the sender's values are the truth.
    changed: dict[str, Callable[[str], bool]] = {
        sender.side.instance: lambda name: (
            sender.snapshot is None
            or sender.snapshot.get(name) != states[sender.side.instance][name]
        ),
        receiver.side.instance: lambda name: (
            receiver.snapshot is not None
            and receiver.snapshot.get(name) != states[receiver.side.instance][name]
        ),
    }
    for name in rules.field_names:
        s_changed = changed[sender.side.instance](name)
        r_changed = changed[receiver.side.instance](name)
        if not (s_changed or r_changed):
            continue
        if name == "status" and not rules.agreement.allows_public_comments:
            for copy, moved in ((sender, s_changed), (receiver, r_changed)):
                if moved and copy.snapshot is not None:
                    plan.notes.append(
                        Note(
                            "status",
                            "skipped",
                            "partial delegation: a status change stays on the side that made it",
                            source=copy.side.instance,
                            target=rules.other(copy.side).instance,
                            field="status",
                            after=states[copy.side.instance]["status"],
                        )
                    )
            continue
        merges = name == "tags" and "tags" not in rules.agreement.conflicts.fields
        if merges and s_changed and r_changed:
            _merge_tags(rules, plan, sender, receiver, states)
            continue
        winner, loser = _winner(rules, name, sender, receiver, s_changed, r_changed)
        won = states[winner.side.instance][name]
        lost = states[loser.side.instance][name]
        value = _translate(rules, name, won, winner.side, loser.side)
        if value is _UNMAPPABLE:
            plan.notes.append(_unmappable_note(rules, name, won, winner.side, loser.side))
            continue
        if value == lost:
            continue  # both sides already agree
        if s_changed and r_changed:
            policy = rules.agreement.conflicts.for_field(name.removeprefix(CUSTOM))
            plan.notes.append(
                Note(
                    name,
                    "conflict",
                    f"both sides changed {name}; policy {policy!r} kept "
                    f"{winner.side.instance}'s value, {loser.side.instance}'s was overwritten",
                    source=winner.side.instance,
                    target=loser.side.instance,
                    field=name,
                    before=lost,
                    after=won,
                )
            )
        if not _target_holds(name, loser.side):
            continue
        local_name = rules.local_field(name, loser.side) if name.startswith(CUSTOM) else name
        plan.fields.append(
            FieldWrite(loser.side.instance, winner.side.instance, local_name, lost, value)
        )


def _merge_tags(
    rules: Rules, plan: TicketPlan, sender: Copy, receiver: Copy, states: dict[str, Any]
) -> None:
    """Tags changed on both sides merge as sets: every addition and every removal made on
    either side since its snapshot is kept, so no side's change is lost to the other's."""
    merged: set[str] = set()
    removed: set[str] = set()
    for copy in (sender, receiver):
        now = set(states[copy.side.instance]["tags"] or [])
        before = set((copy.snapshot or {}).get("tags") or [])
        merged |= now
        removed |= before - now
    result = sorted(merged - removed)
    plan.notes.append(
        Note(
            "tags",
            "info",
            "both sides changed tags; merged as sets (additions and removals of both kept)",
            field="tags",
            after=result,
        )
    )
    for copy in (sender, receiver):
        current = states[copy.side.instance]["tags"] or []
        if current != result and _target_holds("tags", copy.side):
            other = rules.other(copy.side).instance
            plan.fields.append(FieldWrite(copy.side.instance, other, "tags", current, result))


def _winner(
    rules: Rules, name: str, sender: Copy, receiver: Copy, s_changed: bool, r_changed: bool
) -> tuple[Copy, Copy]:
    if s_changed != r_changed:
        return (sender, receiver) if s_changed else (receiver, sender)
    policy = rules.agreement.conflicts.for_field(name.removeprefix(CUSTOM))
    if policy == "sender":
        return sender, receiver
    if policy == "receiver":
        return receiver, sender
    # "newest": the copy updated last wins; a tie goes to the sender, who owns the ticket.
    if receiver.record.updated_at > sender.record.updated_at:
        return receiver, sender
    return sender, receiver


_UNMAPPABLE: Any = object()


def _translate(rules: Rules, name: str, value: Any, source: Side, target: Side) -> Any:
    if name == "status":
        return _translate_status(rules, value, source, target)
    return value


def _translate_status(rules: Rules, value: str, source: Side, target: Side) -> Any:
    table = rules.status_table(source)
    if table is not None:
        return table.get(value, _UNMAPPABLE)
    allowed = target.capabilities.statuses
    if allowed is not None and value not in allowed:
        return _UNMAPPABLE
    return value


def _unmappable_note(rules: Rules, name: str, value: Any, source: Side, target: Side) -> Note:
    return Note(
        name,
        "skipped",
        f"{name} {value!r} of {source.instance} cannot be mapped to {target.instance}; "
        f"{target.instance} keeps its value. Add {value!r} to the agreement's "
        f"status_map.{source.way}",
        source=source.instance,
        target=target.instance,
        field=name,
        after=value,
    )


def _target_holds(name: str, target: Side) -> bool:
    if name == "tags":
        return target.capabilities.tags
    if name.startswith(CUSTOM):
        return target.capabilities.custom_fields
    return True


def _plan_comments(rules: Rules, plan: TicketPlan, source: Copy, target: Copy) -> None:
    handled = set(source.snapshot["comments"]) if source.snapshot else set()
    on_target = target.comment_set
    for comment in source.record.comments:
        uuid = source.uuids[comment.local_id]
        if uuid in on_target:
            _plan_edit(plan, source, target, comment, uuid)
            continue
        if uuid in handled:
            continue
        public = comment.public
        if public and source.side.role == "receiver" and not rules.agreement.allows_public_comments:
            public = False
            plan.notes.append(
                Note(
                    "comment",
                    "info",
                    "partial delegation: the receiver's public comment arrives private",
                    source=source.side.instance,
                    target=target.side.instance,
                    after=uuid,
                )
            )
        if not public and not target.side.capabilities.private_comments:
            plan.notes.append(
                Note(
                    "comment",
                    "skipped",
                    f"private comment kept out: {target.side.instance} has no private comments",
                    source=source.side.instance,
                    target=target.side.instance,
                    after=uuid,
                )
            )
            continue
        draft = CommentDraft(
            shared_uuid=uuid,
            body=_attributed_body(comment, source.side, target.side),
            public=public,
            author=comment.author,
            authored_at=comment.authored_at,
            html_body=comment.html_body,
        )
        plan.comments.append(
            CommentWrite(uuid, source.side.instance, target.side.instance, draft, comment)
        )


def _plan_edit(
    plan: TicketPlan, source: Copy, target: Copy, comment: CommentRecord, uuid: str
) -> None:
    """Carry a comment edit over where both sides can; never duplicate a comment for it."""
    before = (source.snapshot or {}).get("bodies", {}).get(uuid)
    if before is None or before == body_digest(comment.body):
        return
    target_before = (target.snapshot or {}).get("bodies", {}).get(uuid)
    if target_before is not None and target_before != target.bodies().get(uuid):
        if source.side.role == "receiver":
            return  # the sender's direction, planned first, has already reported it
        plan.notes.append(
            Note(
                "edit",
                "conflict",
                "the comment was edited on both sides; each side keeps its own text",
                source=source.side.instance,
                target=target.side.instance,
                after=uuid,
            )
        )
        return
    if not target.side.capabilities.edit_comments:
        plan.notes.append(
            Note(
                "edit",
                "skipped",
                f"a comment edit on {source.side.instance} cannot be carried to "
                f"{target.side.instance}, which cannot edit comments (NHD comments are "
                "immutable); the original text stays there",
                source=source.side.instance,
                target=target.side.instance,
                after=uuid,
            )
        )
        return
    target_comment_id = target.local_comment_ids()[uuid]
    replaced = next(
        (c.body for c in target.record.comments if c.local_id == target_comment_id), None
    )
    plan.edits.append(
        CommentEdit(
            comment_uuid=uuid,
            source=source.side.instance,
            target=target.side.instance,
            target_comment_id=target_comment_id,
            body=_attributed_body(comment, source.side, target.side),
            replaced=replaced,
            public=comment.public,
        )
    )


def _attributed_body(comment: CommentRecord, source: Side, target: Side) -> str:
    """Where the target cannot set the author, the body says who wrote it and where."""
    if target.capabilities.comment_author or comment.author is None:
        return comment.body
    who = comment.author.name or comment.author.uuid
    return f"{who} wrote on {source.instance}:\n\n{comment.body}"


def _snapshot_after(rules: Rules, plan: TicketPlan, copy: Copy) -> dict[str, Any]:
    state = rules.state(copy.record, copy.side)
    changes = plan.updates().get(copy.side.instance)
    if changes is not None:
        record_written(rules, state, copy.side, changes)
    bodies: dict[str, str | None] = dict(copy.bodies())
    # What we write is confirmed when we next read it back: a tracker may store a body slightly
    # differently from what it was sent (markup, whitespace), and that is not an edit.
    written: list[CommentEdit | CommentWrite] = [*plan.edits, *plan.comments]
    for write in written:
        if write.target == copy.side.instance:
            bodies[write.comment_uuid] = None
    state["comments"] = sorted(bodies)
    state["bodies"] = bodies
    return state


def record_written(rules: Rules, state: dict[str, Any], side: Side, changes: TicketChanges) -> None:
    """Put what was written to ``side`` into its state, so it is not read back as a change."""
    if changes.subject is not None:
        state["subject"] = " ".join(changes.subject.split())
    if changes.status is not None:
        state["status"] = changes.status.strip()
    if changes.tags is not None and "tags" in state:
        state["tags"] = _normal_tags(changes.tags)
    for name, value in (changes.custom_fields or {}).items():
        canonical = _canonical_custom(rules, name, side)
        if canonical in state:
            state[canonical] = _normal_value(value)


def body_digest(body: str) -> str:
    """A short digest of a comment body; trailing whitespace does not make an edit."""
    normalised = "\n".join(line.rstrip() for line in body.strip().splitlines())
    return hashlib.sha1(normalised.encode()).hexdigest()[:16]


def _canonical_custom(rules: Rules, local_name: str, side: Side) -> str:
    if side.role == "sender":
        return CUSTOM + local_name
    for source_name, target_name in rules.agreement.custom_fields.items():
        if target_name == local_name:
            return CUSTOM + source_name
    return CUSTOM + local_name


def _normal_tags(tags: list[str]) -> list[str]:
    return sorted({tag.strip() for tag in tags if tag.strip()})


def _normal_value(value: Any) -> Any:
    if isinstance(value, str):
        value = value.strip()
    if value in ("", [], {}):
        return None
    return value
