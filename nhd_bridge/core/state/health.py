"""How each agreement's runs have been going: what ``/status``, ``/health`` and ``log`` report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from nhd_bridge.core.redaction import redact
from nhd_bridge.core.state.base import TxBase, from_row, utcnow
from nhd_bridge.core.state.schema import agreement_health

__all__ = ["AgreementHealth", "HealthTx"]


@dataclass(frozen=True)
class AgreementHealth:
    """How an agreement's runs have been going: ``failing_since`` is set while they fail."""

    agreement: str
    last_run_at: datetime
    last_ok_at: datetime | None
    failing_since: datetime | None
    last_error: str | None


class HealthTx(TxBase):
    """The last outcome of each agreement's runs."""

    def record_run_outcome(self, agreement: str, error: str | None) -> None:
        """The outcome of one run: ``error`` is why it failed, ``None`` if it did not."""
        now = utcnow()
        found = self.health(agreement)
        values: dict[str, Any]
        if error is None:
            values = {
                "last_run_at": now,
                "last_ok_at": now,
                "failing_since": None,
                "last_error": None,
            }
        else:
            since = found.failing_since if found and found.failing_since else now
            values = {
                "last_run_at": now,
                "failing_since": since,
                "last_error": redact(error)[:4000],
            }
        self._upsert(agreement_health, {"agreement": agreement}, values)

    def health(self, agreement: str) -> AgreementHealth | None:
        row = self._execute(
            select(agreement_health).where(agreement_health.c.agreement == agreement)
        ).first()
        return from_row(AgreementHealth, row) if row else None

    def all_health(self) -> list[AgreementHealth]:
        rows = self._execute(select(agreement_health).order_by(agreement_health.c.agreement))
        return [from_row(AgreementHealth, row) for row in rows]
