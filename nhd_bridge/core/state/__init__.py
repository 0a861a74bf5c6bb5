"""The state store (SQLAlchemy Core): SQLite by default, PostgreSQL when workers share the work."""

from nhd_bridge.core.state.opening import StateStoreError, check_store
from nhd_bridge.core.state.store import (
    AgreementHealth,
    AgreementRow,
    JournalEntry,
    LinkRow,
    ParkedRow,
    StateStore,
    StateTx,
    stored_utc,
    utcnow,
)

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
