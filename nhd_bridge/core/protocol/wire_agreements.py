"""The wire store's agreements (what we sent and what partners sent us) and which nhd instance
holds each (schema v3)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, func, insert, select, update

from nhd_bridge.core.model import Agreement
from nhd_bridge.core.protocol.rules import Role, RuleViolation, plan_agreement_update
from nhd_bridge.core.protocol.wire_base import (
    AlreadyExists,
    NotFound,
    WireAgreement,
    WireBase,
    agreement_row,
)
from nhd_bridge.core.state.base import matching, utcnow
from nhd_bridge.core.state.schema import wire_agreements, wire_bindings, wire_tickets

__all__ = ["WireAgreements"]


class WireAgreements(WireBase):
    """Agreements: created, answered, updated under the §1.4 rules, pruned; and their bindings."""

    def list_agreements(self) -> list[WireAgreement]:
        """Every agreement we sent or received, oldest first."""
        with self.engine.connect() as connection:
            uuids = [
                row[0]
                for row in connection.execute(
                    select(wire_agreements.c.uuid).order_by(
                        wire_agreements.c.created_at, wire_agreements.c.uuid
                    )
                )
            ]
        return [found for uuid in uuids if (found := self.get_agreement(uuid)) is not None]

    def discard_pending_invite(self, uuid: str) -> None:
        """Roll back our own invite the partner never received (RT does the same); refused for
        anything that has been answered or carries tickets."""
        with self._writing() as (connection, _seq):
            row = agreement_row(connection, uuid)
            if row is None:
                return
            held = connection.execute(
                select(wire_tickets.c.uuid).where(wire_tickets.c.agreement_uuid == uuid).limit(1)
            ).first()
            if row.our_role != "sender" or row.status != "pending" or held is not None:
                raise RuleViolation(f"agreement {uuid} is no longer an unanswered invite of ours")
            connection.execute(delete(wire_agreements).where(wire_agreements.c.uuid == uuid))

    def prune_pending_invites(self, older_than: datetime) -> int:
        """Remove partners' invites nobody answered since ``older_than`` (nothing can be held
        under a pending agreement); returns how many. Keeps the pending list bounded."""
        with self._writing() as (connection, _seq):
            return connection.execute(
                delete(wire_agreements).where(
                    and_(
                        wire_agreements.c.our_role == "receiver",
                        wire_agreements.c.status == "pending",
                        wire_agreements.c.created_at < older_than,
                    )
                )
            ).rowcount

    def count_pending_invites(self) -> int:
        """Partners' invites waiting for our answer."""
        with self.engine.connect() as connection:
            return connection.execute(
                select(func.count())
                .select_from(wire_agreements)
                .where(matching(wire_agreements, our_role="receiver", status="pending"))
            ).scalar_one()

    def create_incoming_agreement(self, agreement: Agreement) -> WireAgreement:
        """A partner's invite (we are the receiver), stored pending. Validate it first."""
        return self._create_agreement(agreement, our_role="receiver")

    def create_outgoing_agreement(self, agreement: Agreement) -> WireAgreement:
        """Our own invite (we are the sender), recorded before it is POSTed to the receiver."""
        return self._create_agreement(agreement, our_role="sender")

    def _create_agreement(self, agreement: Agreement, *, our_role: Role) -> WireAgreement:
        if not (agreement.sender_url and agreement.receiver_url and agreement.access_key):
            raise ValueError("an agreement needs sender_url, receiver_url and access_key")
        now = utcnow()
        with self._writing() as (connection, _seq):
            if agreement_row(connection, agreement.uuid) is not None:
                raise AlreadyExists(f"agreement {agreement.uuid} already exists")
            connection.execute(
                insert(wire_agreements).values(
                    uuid=agreement.uuid,
                    our_role=our_role,
                    name=agreement.name,
                    status=agreement.status or "pending",
                    sender_url=agreement.sender_url,
                    receiver_url=agreement.receiver_url,
                    access_key=agreement.access_key,
                    deactivated_by=agreement.deactivated_by,
                    # §5: an absent permission flag means false, the least privilege.
                    allows_public_comments=bool(agreement.allows_public_comments),
                    sync_tags=bool(agreement.sync_tags),
                    sync_custom_fields=bool(agreement.sync_custom_fields),
                    created_at=now,
                    updated_at=now,
                )
            )
            found = agreement_row(connection, agreement.uuid)
        assert found is not None
        return found

    def get_agreement(self, uuid: str) -> WireAgreement | None:
        with self.engine.connect() as connection:
            return agreement_row(connection, uuid)

    def apply_partner_update(
        self, uuid: str, update_: Agreement, *, allow_reactivation: bool, strict: bool = False
    ) -> WireAgreement:
        """A partner's PUT /agreements: the §1.4 rules with the partner's role as the actor."""
        return self._update_agreement(
            uuid, update_, actor=None, allow_reactivation=allow_reactivation, strict=strict
        )

    def set_status(
        self, uuid: str, status: str, *, allow_reactivation: bool = False
    ) -> WireAgreement:
        """A local accept, decline, deactivate (or withdraw): the §1.4 rules with our role.
        Deactivating names us in ``deactivated_by``. Raises RuleViolation, NotFound, or
        NHDValidationError for a status outside the enum."""
        current = self.get_agreement(uuid)
        if current is None:
            raise NotFound(f"agreement {uuid} is unknown")
        change = Agreement.from_dict(
            {
                "uuid": uuid,
                "status": status,
                "deactivated_by": current.our_role if status == "inactive" else None,
            }
        )
        return self._update_agreement(
            uuid, change, actor=current.our_role, allow_reactivation=allow_reactivation
        )

    def _update_agreement(
        self,
        uuid: str,
        change: Agreement,
        *,
        actor: Role | None,
        allow_reactivation: bool,
        strict: bool = False,
    ) -> WireAgreement:
        with self._writing() as (connection, _seq):
            current = agreement_row(connection, uuid)
            if current is None:
                raise NotFound(f"agreement {uuid} is unknown")
            changes = plan_agreement_update(
                current.to_wire(),
                change,
                actor=actor or current.partner_role,
                allow_reactivation=allow_reactivation,
                strict=strict,
            )
            if changes:
                connection.execute(
                    update(wire_agreements)
                    .where(wire_agreements.c.uuid == uuid)
                    .values(**changes, updated_at=utcnow())
                )
            found = agreement_row(connection, uuid)
        assert found is not None
        return found

    def bind(self, instance: str, agreement_uuid: str) -> None:
        """Bind an agreement to an nhd instance, replacing the instance's earlier binding (one
        instance holds one agreement) and the agreement's binding to another instance."""
        with self._writing() as (connection, _seq):
            connection.execute(
                delete(wire_bindings).where(
                    (wire_bindings.c.instance == instance)
                    | (wire_bindings.c.agreement_uuid == agreement_uuid)
                )
            )
            connection.execute(
                insert(wire_bindings).values(
                    instance=instance, agreement_uuid=agreement_uuid, bound_at=utcnow()
                )
            )

    def bound_agreement(self, instance: str) -> str | None:
        with self.engine.connect() as connection:
            return connection.execute(
                select(wire_bindings.c.agreement_uuid).where(wire_bindings.c.instance == instance)
            ).scalar_one_or_none()

    def bindings(self) -> dict[str, str]:
        """Agreement uuid -> the instance bound to it."""
        with self.engine.connect() as connection:
            query = select(wire_bindings.c.agreement_uuid, wire_bindings.c.instance)
            return {uuid: instance for uuid, instance in connection.execute(query)}
