"""Small value types that describe one agreement run; shared by the engine, hooks and the CLI."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Direction", "RunSummary", "Way"]

# The way a change travels in an agreement: ``outbound`` from the sender to the receiver,
# ``inbound`` back. The one spelling of direction: hooks get it in a Direction, status maps
# (``status_map.outbound``) are keyed by it.
Way = Literal["outbound", "inbound"]


@dataclass(frozen=True)
class Direction:
    """One way of one agreement: changes read on ``source`` are written to ``target``.

    ``outbound`` is the sender-to-receiver way of the agreement, inbound the way back.
    """

    agreement: str
    source: str
    target: str
    way: Way

    def __str__(self) -> str:
        return f"{self.source} → {self.target}"


@dataclass
class RunSummary:
    """What one run of one agreement did; ``writes`` counts by action (create, comment, ...)."""

    agreement: str
    run_id: str
    tickets_seen: int = 0
    writes: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    conflicts: int = 0
    parked: int = 0  # parked by this run
    still_parked: int = 0  # parked when the run ended, by this run or an earlier one
    retried: int = 0
    errors: list[str] = field(default_factory=list)
    failure: str | None = None  # why the agreement's run as a whole failed (not one ticket)
    dry_run: bool = False

    @property
    def total_writes(self) -> int:
        return sum(self.writes.values())
