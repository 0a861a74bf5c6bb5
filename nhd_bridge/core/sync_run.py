"""The state of one run of one agreement, and of reading one side in it: what every step of the
engine's passes needs to know, passed from step to step instead of kept on the engine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from nhd_bridge.core.adapter import TicketRecord
from nhd_bridge.core.failures import CircuitBreaker
from nhd_bridge.core.planner import Rules, Side
from nhd_bridge.core.run import RunSummary
from nhd_bridge.core.share_filter import ShareFilter
from nhd_bridge.core.state import LinkRow, ParkedRow, StateTx
from nhd_bridge.core.writer import WorkItem

__all__ = ["PageFacts", "PassState", "Progress", "SyncRun", "no_progress"]

# (agreement, what is happening, done so far, total when known) — for progress bars.
Progress = Callable[[str, str, int, int | None], None]


def no_progress(agreement: str, phase: str, done: int, total: int | None) -> None:
    return None


@dataclass
class SyncRun:
    """One run of one agreement: what every step of both passes needs to know."""

    rules: Rules
    summary: RunSummary
    dry_run: bool
    share_filter: ShareFilter
    closes: int = 0  # tickets closed by earlier passes, counted against max_closes_per_run
    breaker: CircuitBreaker = field(init=False)

    def __post_init__(self) -> None:
        self.breaker = CircuitBreaker(self.summary)

    @property
    def name(self) -> str:
        return self.summary.agreement

    @property
    def broken(self) -> str | None:
        """Why the circuit breaker stopped this run, if it did."""
        return self.breaker.broken


@dataclass
class PassState:
    """The mutable state of reading one side; ``reader`` is the store transaction of the page
    being planned (one connection for its bookkeeping reads, a fresh one per page so that a page
    sees what the pages before it wrote)."""

    side: Side
    cursor: str | None
    now: datetime
    parked: dict[str, ParkedRow]
    reader: StateTx | None = None
    seen: set[str] = field(default_factory=set)
    items: list[WorkItem] = field(default_factory=list)
    planned: list[WorkItem] = field(default_factory=list)
    confirmations: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    # A ticket left to be read again: the cursor stays before it for the rest of the pass.
    holds_cursor: bool = False


@dataclass
class PageFacts:
    """The bookkeeping of one page of changed tickets, read in a few queries instead of several
    per ticket. Tickets not in it (new shares) fall back to one query each."""

    links: dict[str, LinkRow]  # local id on this side -> its link
    states: dict[str, str]  # shared uuid -> state under this agreement
    snapshots: dict[str, dict[str, Any]]  # shared uuid -> this side's snapshot
    comment_links: dict[str, dict[str, dict[str, str | None]]]  # shared uuid -> links

    @classmethod
    def read(
        cls, reader: StateTx, agreement: str, side: Side, records: list[TicketRecord]
    ) -> PageFacts:
        links = reader.links_for_locals(side.instance, [record.local_id for record in records])
        shared = [link.shared_uuid for link in links.values()]
        return cls(
            links=links,
            states=reader.agreement_ticket_states(agreement, shared),
            snapshots=reader.snapshots_for(agreement, side.instance, shared),
            comment_links=reader.comment_links_for(shared),
        )
