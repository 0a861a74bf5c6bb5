"""Making agreements: fresh 40-hex uuids and access keys, and the invite a sender POSTs (§1.2).

Both identifiers are SHA-1 hex of fresh randomness, as [NODE] ``HashedUUID.random`` makes them and
as [RT] requires them (40 hex characters), so every partner accepts them, strict ones included.
"""

from __future__ import annotations

import hashlib
import secrets

from nhd_bridge.core.model import Actor, Agreement

__all__ = ["new_access_key", "new_agreement_uuid", "new_invite", "random_hex40"]


def random_hex40() -> str:
    """40 lowercase hex characters: SHA-1 of 32 bytes from the operating system's CSPRNG."""
    return hashlib.sha1(secrets.token_bytes(32)).hexdigest()


def new_agreement_uuid() -> str:
    return random_hex40()


def new_access_key() -> str:
    return random_hex40()


def new_invite(
    *,
    name: str,
    our_url: str,
    partner_url: str,
    allows_public_comments: bool = True,
    sync_tags: bool = False,
    sync_custom_fields: bool = False,
    current_actor: Actor | None = None,
    uuid: str | None = None,
    access_key: str | None = None,
) -> Agreement:
    """The invite we send as the agreement's sender: status ``pending``, our URL as
    ``sender_url``, the partner's as ``receiver_url``, every permission flag explicit (§5: an
    absent flag would mean false at the partner)."""
    return Agreement(
        uuid=uuid or new_agreement_uuid(),
        name=name,
        status="pending",
        sender_url=our_url.rstrip("/"),
        receiver_url=partner_url.rstrip("/"),
        access_key=access_key or new_access_key(),
        deactivated_by=None,
        current_actor=current_actor,
        allows_public_comments=allows_public_comments,
        sync_tags=sync_tags,
        sync_custom_fields=sync_custom_fields,
    )
