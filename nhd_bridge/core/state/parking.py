"""Parked tickets: a ticket whose sync keeps failing waits, with exponential backoff, instead of
failing every run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, insert, select, update

from nhd_bridge.core.redaction import redact
from nhd_bridge.core.state.base import TxBase, from_row, matching, utcnow
from nhd_bridge.core.state.schema import parked

__all__ = ["ParkedRow", "ParkingTx"]


@dataclass(frozen=True)
class ParkedRow:
    agreement: str
    shared_uuid: str
    instance: str
    local_id: str
    error: str
    attempts: int
    first_failed_at: datetime
    next_attempt_at: datetime


class ParkingTx(TxBase):
    """Parking, backing off and releasing tickets per agreement."""

    def park(
        self,
        agreement: str,
        shared_uuid: str,
        instance: str,
        local_id: str,
        error: str,
        backoff: timedelta,
        *,
        max_backoff: timedelta = timedelta(hours=1),
    ) -> ParkedRow:
        """Park a ticket, or push an already parked one further back (exponential backoff)."""
        now = utcnow()
        existing = self.parked_entry(agreement, shared_uuid)
        attempts = existing.attempts + 1 if existing else 1
        delay = min(backoff * (2 ** (attempts - 1)), max_backoff)
        values = {
            "instance": instance,
            "local_id": local_id,
            "error": redact(error),
            "attempts": attempts,
            "next_attempt_at": now + delay,
        }
        if existing:
            self._execute(
                update(parked)
                .where(matching(parked, agreement=agreement, shared_uuid=shared_uuid))
                .values(**values)
            )
        else:
            self._execute(
                insert(parked).values(
                    agreement=agreement, shared_uuid=shared_uuid, first_failed_at=now, **values
                )
            )
        found = self.parked_entry(agreement, shared_uuid)
        assert found is not None
        return found

    def unpark(self, agreement: str, shared_uuid: str) -> None:
        self._execute(
            delete(parked).where(matching(parked, agreement=agreement, shared_uuid=shared_uuid))
        )

    def parked_entry(self, agreement: str, shared_uuid: str) -> ParkedRow | None:
        row = self._execute(
            select(parked).where(matching(parked, agreement=agreement, shared_uuid=shared_uuid))
        ).first()
        return from_row(ParkedRow, row) if row else None

    def parked(self, agreement: str | None = None) -> list[ParkedRow]:
        query = select(parked).order_by(parked.c.first_failed_at)
        if agreement is not None:
            query = query.where(parked.c.agreement == agreement)
        return [from_row(ParkedRow, row) for row in self._execute(query)]
