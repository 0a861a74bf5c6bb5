"""Agreements as the store knows them, and which shared tickets travel under each."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy import func, select, update

from nhd_bridge.core.state.base import TxBase, from_row, matching, utcnow
from nhd_bridge.core.state.schema import agreement_tickets, agreements

__all__ = ["AgreementRow", "AgreementTx"]


@dataclass(frozen=True)
class AgreementRow:
    name: str
    uuid: str
    sender: str
    receiver: str
    status: str
    allows_public_comments: bool
    sync_tags: bool
    sync_custom_fields: bool
    deactivated_by: str | None


class AgreementTx(TxBase):
    """Agreements, and the state of each shared ticket under each agreement."""

    def upsert_agreement(self, row: AgreementRow) -> None:
        now = utcnow()
        values = {column: value for column, value in asdict(row).items() if column != "name"}
        self._upsert(
            agreements,
            {"name": row.name},
            {**values, "updated_at": now},
            created={"created_at": now},
        )

    def agreement(self, name: str) -> AgreementRow | None:
        found = self._execute(select(agreements).where(agreements.c.name == name)).first()
        if found is None:
            return None
        return from_row(AgreementRow, found)

    def share(self, agreement: str, shared_uuid: str) -> None:
        self._insert_absent(
            agreement_tickets,
            ("agreement", "shared_uuid"),
            [
                {
                    "agreement": agreement,
                    "shared_uuid": shared_uuid,
                    "state": "shared",
                    "shared_at": utcnow(),
                }
            ],
        )

    def set_agreement_ticket_state(self, agreement: str, shared_uuid: str, state: str) -> None:
        self._execute(
            update(agreement_tickets)
            .where(matching(agreement_tickets, agreement=agreement, shared_uuid=shared_uuid))
            .values(state=state)
        )

    def agreement_ticket_state(self, agreement: str, shared_uuid: str) -> str | None:
        state = self._value(agreement_tickets.c.state, agreement=agreement, shared_uuid=shared_uuid)
        return None if state is None else str(state)

    def agreement_ticket_states(self, agreement: str, shared_uuids: list[str]) -> dict[str, str]:
        query = select(agreement_tickets.c.shared_uuid, agreement_tickets.c.state).where(
            agreement_tickets.c.agreement == agreement
        )
        rows = self._rows_in(query, agreement_tickets.c.shared_uuid, shared_uuids)
        return {row.shared_uuid: row.state for row in rows}

    def agreements_of_ticket(self, shared_uuid: str) -> dict[str, str]:
        rows = self._execute(
            select(agreement_tickets.c.agreement, agreement_tickets.c.state).where(
                agreement_tickets.c.shared_uuid == shared_uuid
            )
        )
        return {row.agreement: row.state for row in rows}

    def count_shared(self, agreement: str) -> int:
        return int(
            self._execute(
                select(func.count()).where(agreement_tickets.c.agreement == agreement)
            ).scalar_one()
        )
