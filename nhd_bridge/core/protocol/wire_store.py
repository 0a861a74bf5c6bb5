"""Durable record of the NHD wire: agreements, tickets and comments exchanged with partners.

Lives on the StateStore's engine (tables ``nhd_wire_*``, schema version 2). Each public write is
one transaction: the receiver answers only after it committed, so what a partner was told we have,
we have. Partner writes get a change sequence number; the engine reads them back with
:meth:`WireStore.received_tickets_changed_since` and keeps that number as its cursor.
"""

from __future__ import annotations

from nhd_bridge.core.protocol.rules import RuleViolation
from nhd_bridge.core.protocol.wire_agreements import WireAgreements
from nhd_bridge.core.protocol.wire_base import (
    AlreadyExists,
    Gone,
    NotFound,
    WireAgreement,
    WireStoreError,
    WireTicket,
)
from nhd_bridge.core.protocol.wire_tickets import WireTickets

__all__ = [
    "AlreadyExists",
    "Gone",
    "NotFound",
    "RuleViolation",
    "WireAgreement",
    "WireStore",
    "WireStoreError",
    "WireTicket",
]


class WireStore(WireAgreements, WireTickets):
    """Agreements, bindings, tickets and comments exchanged with NHD partners."""
