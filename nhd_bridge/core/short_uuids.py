"""Short uuids: the first characters of a uuid name it wherever the CLI asks for one.

``nhd-bridge log`` and ``plan`` print the first 12 characters of a shared ticket's uuid; an
operator pastes them into ``explain``, ``log --ticket`` or ``unshare``. A prefix that only one
uuid in the state store starts with is that uuid; one that several start with is refused with
the candidates, never guessed; one that none starts with is left as typed, so the command says
"no such ticket" in its own words.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from sqlalchemy import or_, select

from nhd_bridge.core.state import schema

if TYPE_CHECKING:
    from sqlalchemy import Column

    from nhd_bridge.core.state import StateStore

__all__ = ["MINIMUM_PREFIX", "AmbiguousUuid", "expand_agreement_uuid", "expand_ticket_uuid"]

# Shorter prefixes match too much to be meant; the CLI prints 12.
MINIMUM_PREFIX = 6
# How many candidates an ambiguous prefix lists.
SHOWN_CANDIDATES = 10
_UUID_TEXT = re.compile(r"[0-9A-Fa-f-]+")


class AmbiguousUuid(ValueError):
    """A prefix that several uuids start with."""

    def __init__(self, prefix: str, what: str, candidates: list[str]):
        self.prefix, self.candidates = prefix, candidates
        shown = ", ".join(candidates[:SHOWN_CANDIDATES])
        hidden = len(candidates) - SHOWN_CANDIDATES
        more = f" and {hidden} more" if hidden > 0 else ""
        super().__init__(
            f"{prefix!r} is the start of {len(candidates)} {what} uuids: {shown}{more}; "
            "give more characters"
        )


def expand_ticket_uuid(store: StateStore, text: str) -> str:
    """The shared ticket uuid that ``text`` is, or is the unique start of (links, tickets and
    the journal are searched, so a ticket known only to the journal is found too)."""
    columns = [
        schema.shared_tickets.c.uuid,
        schema.ticket_links.c.shared_uuid,
        schema.journal.c.shared_uuid,
    ]
    return _expand(store, text, "shared ticket", columns)


def expand_agreement_uuid(store: StateStore, text: str) -> str:
    """The NHD agreement uuid that ``text`` is, or is the unique start of."""
    return _expand(store, text, "agreement", [schema.wire_agreements.c.uuid])


def _expand(store: StateStore, text: str, what: str, columns: list[Column[str]]) -> str:
    if len(text) < MINIMUM_PREFIX or not _UUID_TEXT.fullmatch(text):
        return text  # not a uuid or a prefix of one (e.g. INSTANCE:ID): the caller decides
    # Only hex digits and dashes reach LIKE, so no wildcard needs escaping.
    patterns = {f"{text}%", f"{text.lower()}%"}
    found: set[str] = set()
    with store.engine.connect() as connection:
        for column in columns:
            query = select(column).where(or_(*(column.like(p) for p in patterns))).distinct()
            found.update(row[0] for row in connection.execute(query) if row[0])
    for whole in (text, text.lower()):
        if whole in found:
            return whole  # a whole uuid is itself, whatever else starts with it
    if len(found) > 1:
        raise AmbiguousUuid(text, what, sorted(found))
    return found.pop() if found else text
