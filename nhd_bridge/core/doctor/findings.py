"""What ``nhd-bridge doctor`` reports: one :class:`Finding` per disagreement between the store and
a tracker, and how each is described on the terminal."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = ["FOR_A_PERSON", "KIND_ORDER", "Finding", "FindingKind", "describe", "natural", "where"]

FindingKind = Literal[
    "pending-link",
    "reused-id",
    "orphan-link",
    "unlinked-copy",
    "duplicate-copy",
    "unlinked-comment",
    "duplicate-comment",
]
# The order findings are reported and repaired in: a pending link is settled before the copies
# carrying its breadcrumb are looked at, a stale link is orphaned before its id is linked again.
KIND_ORDER: tuple[FindingKind, ...] = get_args(FindingKind)
# Kinds whose extra tickets or comments only a person can delete: they stay until someone does.
FOR_A_PERSON: frozenset[str] = frozenset({"duplicate-copy", "duplicate-comment"})


@dataclass(frozen=True)
class Finding:
    """One disagreement between the store and a tracker.

    ``local_ids`` are ticket ids of ``instance`` (for ``duplicate-copy`` the one to keep first),
    or, for the comment kinds, comment ids on ticket ``ticket_id`` (the one to keep first), whose
    shared comment is ``comment_uuid``. ``detail`` says what is wrong and what to do about it."""

    kind: FindingKind
    agreement: str
    instance: str
    shared_uuid: str
    local_ids: tuple[str, ...]
    detail: str
    repairable: bool
    ticket_id: str | None = None
    comment_uuid: str | None = None

    @property
    def key(self) -> tuple[str, str, str, tuple[str, ...]]:
        """What the finding is about: the same after a repair rewrote its detail."""
        return (self.kind, self.instance, self.shared_uuid, self.local_ids)

    @property
    def needs_a_person(self) -> bool:
        """Whether something stays to be done in a tracker once the store is repaired."""
        return self.kind in FOR_A_PERSON and len(self.local_ids) > 1


def where(finding: Finding) -> str:
    if finding.ticket_id is not None:
        return f"{finding.instance}:{finding.ticket_id} comment {', '.join(finding.local_ids)}"
    return f"{finding.instance}:{', '.join(finding.local_ids) or '(none)'}"


def natural(local_id: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting "9" before "10" and "PROJ-9" before "PROJ-10": lower ids are older."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part)
        for part in re.split(r"(\d+)", local_id)
        if part
    )


def describe(finding: Finding, *, repaired: bool = False) -> str:
    """One line for the terminal: kind, where, which shared ticket, what to do (or was done)."""
    done = "repaired: " if repaired else ""
    return f"{finding.kind} {where(finding)} {finding.shared_uuid[:12]} — {done}{finding.detail}"
