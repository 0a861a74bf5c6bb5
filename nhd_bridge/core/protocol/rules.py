"""Pure protocol rules: tokens, uuids, roles, content types and agreement transitions.

Nothing here touches HTTP or the database, so every rule is tested directly and shared by the
receiver (a partner's request) and the store's local actions (accept, decline, deactivate).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from nhd_bridge.core.model import Agreement, Ticket

__all__ = [
    "ACCEPTED_CONTENT_TYPES",
    "RULE_FIELDS",
    "Role",
    "RuleViolation",
    "Token",
    "TokenError",
    "acceptable_content_type",
    "check_sizes",
    "check_transition",
    "clean_text",
    "incoming_comment_public",
    "keys_match",
    "other_role",
    "our_role_for",
    "parse_token",
    "plan_agreement_update",
    "same_base_url",
    "token_matches",
    "valid_access_key",
    "valid_uuid",
    "validate_invite",
    "validate_ticket_keys",
]

Role = Literal["sender", "receiver"]

# §6.1 [REC]: strict accepts only what RT emits; lenient what any sender plausibly emits while
# still fitting the 64-character key columns.
_STRICT_UUID = re.compile(r"[0-9A-Fa-f]{40}")
_LENIENT_UUID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_STRICT_KEY = re.compile(r"[0-9A-Fa-f]{40}")
_LENIENT_KEY = re.compile(r"[\x21-\x7e]{1,255}")  # visible ASCII: it travels in a header

ACCEPTED_CONTENT_TYPES = frozenset({"application/json", "text/x-json"})

# Agreement fields a PUT may carry; everything else on the model is ignored on update.
RULE_FIELDS = (
    "uuid",
    "name",
    "status",
    "sender_url",
    "receiver_url",
    "access_key",
    "deactivated_by",
    "sync_tags",
    "sync_custom_fields",
    "allows_public_comments",
)
_SENDER_ONLY_FIELDS = ("access_key", "sync_tags", "sync_custom_fields", "allows_public_comments")


class RuleViolation(ValueError):
    """The request is well-formed but breaks a protocol rule: the receiver answers 422."""


class TokenError(ValueError):
    """The token header is malformed (not ``uuid:key``): 422, as RT answers."""


@dataclass(frozen=True)
class Token:
    agreement_uuid: str
    access_key: str = ""

    def __repr__(self) -> str:  # the key is a secret: keep it out of logs and tracebacks
        return f"Token(agreement_uuid={self.agreement_uuid!r}, access_key=***)"


# --- identifiers, tokens, keys ------------------------------------------------------------------


def valid_uuid(value: object, *, strict: bool) -> bool:
    pattern = _STRICT_UUID if strict else _LENIENT_UUID
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def valid_access_key(value: object, *, strict: bool) -> bool:
    pattern = _STRICT_KEY if strict else _LENIENT_KEY
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def parse_token(header: str, *, strict: bool) -> Token:
    """Split ``X-Ticket-Sharing-Token`` on its first colon (§3); the left part must be a uuid."""
    agreement_uuid, colon, access_key = header.partition(":")
    if not colon:
        raise TokenError("X-Ticket-Sharing-Token must be '<agreement uuid>:<access key>'")
    if not valid_uuid(agreement_uuid, strict=strict):
        raise TokenError("the agreement uuid in X-Ticket-Sharing-Token is not a valid uuid")
    return Token(agreement_uuid, access_key)


def keys_match(given: str, stored: str) -> bool:
    """Constant-time comparison; bytes so that non-ASCII input cannot raise."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), stored.encode("utf-8"))


def token_matches(header: str, agreement_uuid: str, access_key: str) -> bool:
    return keys_match(header, f"{agreement_uuid}:{access_key}")


# --- roles and URLs -----------------------------------------------------------------------------


def other_role(role: Role) -> Role:
    return "receiver" if role == "sender" else "sender"


def _normalised_url(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url.strip())
    return parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/")


def same_base_url(first: str, second: str) -> bool:
    """Base URLs are opaque (§0.1) but compared without case in scheme/host or a trailing /."""
    try:
        return _normalised_url(first) == _normalised_url(second)
    except ValueError:  # urlsplit rejects e.g. a malformed IPv6 host
        return False


def our_role_for(base_url: str, sender_url: str, receiver_url: str) -> Role | None:
    """Which side of an agreement we are, judged from our own base URL; None if neither."""
    if same_base_url(receiver_url, base_url):
        return "receiver"
    if same_base_url(sender_url, base_url):
        return "sender"
    return None


def _http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.netloc)


def acceptable_content_type(header: str | None) -> bool:
    """application/json, text/x-json (RT's) with any parameters, or no header at all (§3)."""
    if header is None or not header.strip():
        return True
    return header.split(";", 1)[0].strip().lower() in ACCEPTED_CONTENT_TYPES


def clean_text(values: Iterable[Any]) -> str | None:
    """Why a parsed JSON value cannot be stored, or None. NUL is refused by PostgreSQL text and
    a lone surrogate by every UTF-8 encoder; both would otherwise surface as a 5xx mid-write."""
    pending = list(values)
    while pending:  # iterative: the JSON may be nested as deep as the parser allowed
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str):
            if "\x00" in value:
                return "strings must not contain NUL characters"
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return "strings must be valid Unicode (no lone surrogates)"
    return None


# JSON numbers beyond 2**53 - 1 lose precision in JavaScript and most JSON stacks (RFC 8259 §6).
MAX_SAFE_INTEGER = 2**53 - 1
# Far beyond any real ticket, far below what makes a run slow or a row huge.
MAX_LIST_ITEMS = 1000
MAX_COMMENTS = 10_000
MAX_URL_CHARS = 8192
_URL_KEYS = frozenset({"url", "sender_url", "receiver_url"})


def check_sizes(data: Any) -> str | None:
    """Why a parsed JSON body is out of bounds, or None: numbers outside JSON's safe range,
    lists and objects over MAX_LIST_ITEMS entries (``comments``: MAX_COMMENTS), URLs over
    MAX_URL_CHARS characters. Checked before decoding, so nothing absurd is ever stored."""
    pending: list[tuple[str, Any]] = [("", data)]
    while pending:  # iterative: the JSON may be nested as deep as the parser allowed
        path, value = pending.pop()
        if isinstance(value, bool):
            continue
        if isinstance(value, int | float):
            if abs(value) > MAX_SAFE_INTEGER:
                return f"{path or 'a number'}: numbers must lie within ±(2**53 - 1)"
        elif isinstance(value, dict | list):
            limit = MAX_COMMENTS if path.endswith("comments") else MAX_LIST_ITEMS
            if len(value) > limit:
                return f"{path or 'the body'}: more than {limit} entries"
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                pending.append((f"{path}.{key}" if path else str(key), item))
        elif (
            isinstance(value, str)
            and path.rsplit(".", 1)[-1] in _URL_KEYS
            and len(value) > MAX_URL_CHARS
        ):
            return f"{path}: a url longer than {MAX_URL_CHARS} characters"
    return None


# --- invites (§2.1) -----------------------------------------------------------------------------


def validate_invite(agreement: Agreement, *, base_url: str, strict: bool) -> None:
    """An incoming POST /agreements: a pending invite naming us as its receiver."""
    if agreement.status != "pending":
        raise RuleViolation("a new agreement must have status 'pending'")
    if agreement.deactivated_by is not None:
        raise RuleViolation("a new agreement cannot be deactivated")
    for field in ("sender_url", "receiver_url"):
        value = getattr(agreement, field)
        if not value or not _http_url(value):
            raise RuleViolation(f"{field} must be an absolute http(s) URL")
    assert agreement.sender_url is not None and agreement.receiver_url is not None
    if not same_base_url(agreement.receiver_url, base_url):
        # An invite is always addressed to its receiver; RT also accepted sender_url == ours,
        # but a partner cannot invite us to be the sender of its own agreement.
        raise RuleViolation("receiver_url is not this help desk's sharing URL")
    if same_base_url(agreement.sender_url, base_url):
        raise RuleViolation("sender_url and receiver_url are both this help desk")
    if not valid_access_key(agreement.access_key, strict=strict):
        raise RuleViolation(
            "access_key must be 40 hex characters"
            if strict
            else "access_key must be 1-255 visible ASCII characters"
        )


# --- agreement transitions (§1.4) ---------------------------------------------------------------


def check_transition(
    old: str,
    new: str,
    *,
    actor: Role,
    requested_deactivated_by: str | None,
    stored_deactivated_by: str | None,
    allow_reactivation: bool,
) -> None:
    """Raise RuleViolation unless ``actor`` may move the agreement from ``old`` to ``new``."""
    if old == "pending" and new in {"accepted", "declined"}:
        if actor != "receiver":
            raise RuleViolation(f"only the receiver may set an invite to {new}")
        if requested_deactivated_by is not None:
            raise RuleViolation(f"deactivated_by must not be set when the status becomes {new}")
        return
    if new == "inactive" and old in {"accepted", "pending"}:
        if old == "pending" and actor != "sender":
            raise RuleViolation("only the sender may withdraw a pending invite; decline it")
        if requested_deactivated_by != actor:
            raise RuleViolation(f"deactivated_by must name the side deactivating it: {actor!r}")
        return
    if old == "inactive" and new == "accepted":
        if not allow_reactivation:
            raise RuleViolation(
                "a deactivated agreement cannot be reactivated; create a new agreement"
            )
        if actor != stored_deactivated_by:
            raise RuleViolation("only the side that deactivated the agreement may reactivate it")
        if requested_deactivated_by is not None:
            raise RuleViolation("deactivated_by must be cleared when reactivating")
        return
    raise RuleViolation(f"an agreement cannot go from {old} to {new}")


def plan_agreement_update(
    current: Agreement,
    update: Agreement,
    *,
    actor: Role,
    allow_reactivation: bool,
    strict: bool = False,
) -> dict[str, Any]:
    """The column changes an agreement PUT makes, or RuleViolation.

    ``update`` is the decoded body: nulls were already dropped as absent (except
    ``deactivated_by``), so only its set fields are requests. A field equal to the stored value is
    dropped before the rules run, as RT does, so a Zendesk-style full-object PUT is a no-op.
    The receiver's ``name`` is its own display name (§4.1); it is kept as ``receiver_name``.
    """
    requested = {field for field in update.model_fields_set if field in RULE_FIELDS}
    changes = {
        field: getattr(update, field)
        for field in requested
        if getattr(update, field) != getattr(current, field)
    }
    if "uuid" in changes:
        raise RuleViolation("an agreement's uuid can never change")
    moved = [field for field in ("sender_url", "receiver_url") if field in changes]
    if moved:
        # Where we send (the token included) is fixed when the agreement is made; a partner
        # that could move it could point our calls anywhere. A new agreement moves it.
        raise RuleViolation(
            f"{' and '.join(moved)} cannot change: an agreement's URLs are fixed when it is "
            "made; to move, make a new agreement"
        )
    if actor == "receiver":
        if "sender_url" in changes:
            raise RuleViolation("the receiver may not change sender_url")
        for field in _SENDER_ONLY_FIELDS:
            if field in changes:
                raise RuleViolation(f"only the sender may change {field}")
        if "name" in changes:
            changes["receiver_name"] = changes.pop("name")
    elif "receiver_url" in changes:
        raise RuleViolation("the sender may not change receiver_url")
    for field in ("sender_url", "receiver_url"):
        if field in changes and not _http_url(changes[field]):
            raise RuleViolation(f"{field} must be an absolute http(s) URL")
    if "access_key" in changes and not valid_access_key(changes["access_key"], strict=strict):
        raise RuleViolation("access_key is not a valid access key")

    new_status = changes.get("status")
    if new_status is None:
        if "deactivated_by" in changes:
            raise RuleViolation("deactivated_by may change only together with status")
        return changes
    assert current.status is not None
    requested_deactivated_by = update.deactivated_by if "deactivated_by" in requested else None
    if new_status == "inactive" and requested_deactivated_by is None and not strict:
        requested_deactivated_by = _inferred_deactivated_by(actor)
    check_transition(
        current.status,
        new_status,
        actor=actor,
        requested_deactivated_by=requested_deactivated_by,
        stored_deactivated_by=current.deactivated_by,
        allow_reactivation=allow_reactivation,
    )
    changes["deactivated_by"] = requested_deactivated_by if new_status == "inactive" else None
    return changes


def _inferred_deactivated_by(actor: Role) -> Role:
    """Zendesk's client has no ``deactivated_by`` field (ticket_sharing gem, agreement.rb), so its
    deactivation is a PUT with ``status: inactive`` alone. Lenient mode takes the side the token
    authenticated as the one deactivating: the only value the rule would accept anyway."""
    return actor


# --- tickets ------------------------------------------------------------------------------------


def validate_ticket_keys(ticket: Ticket, *, strict: bool) -> None:
    """Comment uuids become part of a key: hold them to the same rule as ticket uuids."""
    for index, comment in enumerate(ticket.comments):
        if not valid_uuid(comment.uuid, strict=strict):
            raise RuleViolation(f"comments.{index}.uuid is not a valid uuid")


def incoming_comment_public(public: bool, *, our_role: Role, allows_public_comments: bool) -> bool:
    """§5 [REC]: under partial delegation a public comment from the receiver is kept, private."""
    if our_role == "sender" and not allows_public_comments:
        return False
    return public
