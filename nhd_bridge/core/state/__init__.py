"""The state store (SQLAlchemy Core): SQLite by default, PostgreSQL when workers share the work."""

from nhd_bridge.core.state.agreements import AgreementRow
from nhd_bridge.core.state.base import stored_utc, utcnow
from nhd_bridge.core.state.health import AgreementHealth
from nhd_bridge.core.state.journal import JournalEntry
from nhd_bridge.core.state.links import LinkRow
from nhd_bridge.core.state.opening import StateStoreError, check_store
from nhd_bridge.core.state.parking import ParkedRow
from nhd_bridge.core.state.store import StateStore, StateTx

__all__ = [
    "AgreementHealth",
    "AgreementRow",
    "JournalEntry",
    "LinkRow",
    "ParkedRow",
    "StateStore",
    "StateStoreError",
    "StateTx",
    "check_store",
    "stored_utc",
    "utcnow",
]
