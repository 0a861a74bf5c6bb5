"""What a run does when a ticket or a tracker fails: park the ticket, orphan a deleted copy,
journal a run-level failure, and stop the run when a tracker keeps failing (design.md §4).

A ticket whose write or read fails is *parked* with backoff: later changes to it wait behind it,
and it is retried once the backoff ends. The rest of the agreement flows on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from nhd_bridge.core.adapter import AdapterError, PermanentError, TransientError
from nhd_bridge.core.plugins import Plugins
from nhd_bridge.core.run import RunSummary
from nhd_bridge.core.run_journal import journal_entry, orphan_under
from nhd_bridge.core.state import StateStore

__all__ = [
    "BREAKER_FAILURES",
    "PARK_BACKOFF",
    "CircuitBreaker",
    "Failures",
    "IgnoredWrite",
    "Parking",
    "TicketCopy",
    "UnexpectedFailure",
    "unexpected",
]

# The engine's parts log as the engine: operators' log filters and alerts name that logger.
log = logging.getLogger("nhd_bridge.core.engine")

# First retry of a parked ticket; it doubles with each failure up to an hour. Short, because the
# usual cause is a partner restarting or a dropped connection, and the ticket waits meanwhile.
PARK_BACKOFF = timedelta(seconds=5)
# Transient failures in a row after which a run stops rather than try every remaining ticket
# against a tracker that is down or throttling.
BREAKER_FAILURES = 3


class UnexpectedFailure(PermanentError):
    """An error no adapter meant to raise: a bug, or content nothing expected."""


def unexpected(error: Exception) -> UnexpectedFailure:
    return UnexpectedFailure(f"unexpected {type(error).__name__}: {error}")


class IgnoredWrite(TransientError):
    """The tracker answered a write with success but holds something else: retried later."""


@dataclass(frozen=True)
class TicketCopy:
    """One copy of a shared ticket: the shared uuid, the instance holding the copy, and the
    copy's id there. A ticket is parked, or orphaned, by the copy where it failed."""

    shared_uuid: str
    instance: str
    local_id: str


class Parking(Protocol):
    """How whoever writes or reads a ticket parks it when that fails."""

    def park(self, summary: RunSummary, copy: TicketCopy, error: AdapterError) -> None: ...


@dataclass
class CircuitBreaker:
    """After a few failures in a row that say a tracker is unreachable or refusing service, the
    run stops instead of trying every remaining ticket against it."""

    summary: RunSummary
    failures: int = 0  # transient failures in a row
    broken: str | None = None  # why the breaker stopped this run

    def note(self, error: AdapterError | None) -> None:
        """Count one ticket's outcome: ``None`` (it went through) closes the breaker again."""
        if not isinstance(error, TransientError) or isinstance(error, IgnoredWrite):
            self.failures = 0
            return
        self.failures += 1
        if self.failures >= BREAKER_FAILURES and not self.broken:
            self.broken = (
                f"stopped after {self.failures} consecutive failures (last: {error}); the "
                "remaining tickets wait for the next run"
            )
            self.summary.errors.append(self.broken)
            self.summary.failure = self.summary.failure or self.broken


class Failures:
    """Parks, orphans and journals failures in the state store; tells plugins of parked tickets."""

    def __init__(self, store: StateStore, plugins: Plugins):
        self.store = store
        self.plugins = plugins

    def park(self, summary: RunSummary, copy: TicketCopy, error: AdapterError) -> None:
        backoff = PARK_BACKOFF
        if isinstance(error, TransientError) and error.retry_after:
            backoff = max(backoff, timedelta(seconds=error.retry_after))
        shared_uuid, instance, local_id = copy.shared_uuid, copy.instance, copy.local_id
        with self.store.transaction() as tx:
            row = tx.park(summary.agreement, shared_uuid, instance, local_id, str(error), backoff)
            tx.record(
                journal_entry(
                    summary,
                    action="park",
                    outcome="failed",
                    source=instance,
                    shared_uuid=shared_uuid,
                    local_id=local_id,
                    reason=f"{error} (attempt {row.attempts}; next try after "
                    f"{row.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC)",
                )
            )
        summary.parked += 1
        summary.errors.append(f"ticket {local_id} of {instance} parked: {error}")
        self.plugins.ticket_parked(summary.agreement, shared_uuid, str(error))

    def park_read_failure(
        self, breaker: CircuitBreaker, copy: TicketCopy, error: AdapterError
    ) -> None:
        """Park a ticket whose read failed, counting the failure for the circuit breaker."""
        self.park(breaker.summary, copy, error)
        breaker.note(error)

    @contextmanager
    def parked_on_surprise(self, summary: RunSummary, copy: TicketCopy) -> Iterator[None]:
        """Anything a ticket's content makes fail (a bug of ours or an adapter's included) parks
        that ticket with the error in the journal; the rest of the agreement flows on."""
        try:
            yield
        except Exception as error:
            log.exception("planning %s:%s failed", copy.instance, copy.local_id)
            self.park(summary, copy, unexpected(error))

    def orphan(self, summary: RunSummary, copy: TicketCopy) -> None:
        """A copy was deleted: the other copy stays, the link is marked and journaled."""
        shared_uuid, instance, local_id = copy.shared_uuid, copy.instance, copy.local_id
        with self.store.transaction() as tx:
            tx.put_link(shared_uuid, instance, local_id, "orphaned")
            orphan_under(tx, [summary.agreement], shared_uuid)
            tx.record(
                journal_entry(
                    summary,
                    action="orphan",
                    outcome="info",
                    target=instance,
                    shared_uuid=shared_uuid,
                    local_id=local_id,
                    reason=f"ticket {local_id} was deleted in {instance}; the other copy is kept "
                    "and no longer syncs",
                )
            )
        summary.skipped["orphaned"] += 1

    def journal_run_failure(
        self, summary: RunSummary, instance: str, action: str, reason: str
    ) -> None:
        """A failure of the run on one side (a read broken off, a guard), not of one ticket."""
        with self.store.transaction() as tx:
            tx.record(
                journal_entry(
                    summary,
                    action=action,
                    outcome="failed",
                    source=instance,
                    shared_uuid=None,
                    local_id=None,
                    reason=reason,
                )
            )
