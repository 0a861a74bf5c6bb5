"""The Networked Help Desk objects (nhd-spec.md §4) and their JSON codec.

These are the wire objects, and also the lingua franca inside the bridge: every adapter's tickets
are compared and carried in these terms. Decoding follows the spec's interoperability rules:

- ``null`` is treated as absent (a Zendesk sender writes every declared field, unset ones as null),
  except ``deactivated_by`` on an agreement, where null means "cleared" (§4);
- unknown keys are ignored at every level (§4, conformance case 44);
- a comment without ``public`` is public (§4.3);
- timestamps are parsed in every form of §6.4 and emitted as ``YYYY-MM-DD HH:MM:SS +0000``.

Validation problems raise :class:`NHDValidationError`, whose message names the field and the reason.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

__all__ = [
    "AGREEMENT_STATUSES",
    "TICKET_STATUSES",
    "Actor",
    "Agreement",
    "Attachment",
    "Comment",
    "NHDValidationError",
    "Ticket",
    "format_timestamp",
    "nhd_uuid",
    "parse_timestamp",
]

TICKET_STATUSES: tuple[str, ...] = ("new", "open", "pending", "hold", "solved", "closed")
AGREEMENT_STATUSES: tuple[str, ...] = ("pending", "accepted", "declined", "inactive")


class NHDValidationError(ValueError):
    """An NHD object could not be decoded; ``problems`` lists ``(field path, reason)`` pairs."""

    def __init__(self, object_name: str, problems: list[tuple[str, str]]):
        self.object_name = object_name
        self.problems = problems
        details = "; ".join(f"{path or '(body)'}: {reason}" for path, reason in problems)
        super().__init__(f"invalid {object_name}: {details}")

    @classmethod
    def from_pydantic(cls, object_name: str, error: ValidationError) -> NHDValidationError:
        problems = []
        for item in error.errors(include_url=False):
            path = ".".join(str(part) for part in item["loc"])
            reason = item["msg"].removeprefix("Value error, ")
            problems.append((path, reason))
        return cls(object_name, problems)


# --- identifiers --------------------------------------------------------------------------------


def nhd_uuid(sharing_url: str, resource_type: str, local_id: str | int) -> str:
    """The NHD identifier of a resource: SHA-1 hex of ``<sharing url>/<type>/<id>`` (§6.1)."""
    return hashlib.sha1(f"{sharing_url}/{resource_type}/{local_id}".encode()).hexdigest()


# --- timestamps ---------------------------------------------------------------------------------

_TIMESTAMP = re.compile(
    r"^\s*(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)"
    r"\s*(?P<zone>Z|z|UTC|[+-]\d{2}:?\d{2})?\s*$"
)


def parse_timestamp(value: str | datetime) -> datetime:
    """Parse every timestamp form of §6.4 into an aware UTC datetime; a missing offset means UTC."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if not isinstance(value, str):
        raise ValueError(f"expected a timestamp string, got {type(value).__name__}")
    match = _TIMESTAMP.match(value)
    if match is None:
        raise ValueError(
            f"{value!r} is not a timestamp; use 'YYYY-MM-DD HH:MM:SS +0000' or ISO 8601"
        )
    clock = match["time"]
    if clock.count(":") == 1:
        clock += ":00"
    seconds_part = clock.split(".")
    if len(seconds_part) == 2:  # datetime takes at most microseconds
        clock = f"{seconds_part[0]}.{seconds_part[1][:6].ljust(6, '0')}"
    try:
        naive = datetime.fromisoformat(f"{match['date']}T{clock}")
    except ValueError as error:
        raise ValueError(f"{value!r} is not a valid date and time: {error}") from None
    zone = match["zone"]
    if zone is None or zone in {"Z", "z", "UTC"}:
        return naive.replace(tzinfo=UTC)
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise ValueError(f"{value!r} has an impossible UTC offset")
    offset = timedelta(hours=hours, minutes=minutes)
    try:
        return naive.replace(tzinfo=timezone(sign * offset)).astimezone(UTC)
    except OverflowError:  # e.g. year 1 with a positive offset lies before the calendar starts
        raise ValueError(f"{value!r} is out of the range of dates that can be stored") from None


def format_timestamp(value: datetime) -> str:
    """Emit the de-facto NHD form, in UTC: ``2010-11-24 22:13:54 +0000``."""
    utc = parse_timestamp(value)
    # %Y is not zero-padded below year 1000 on every platform; the format must parse back.
    return f"{utc.year:04d}-{utc:%m-%d %H:%M:%S} +0000"


Timestamp = Annotated[
    datetime,
    BeforeValidator(parse_timestamp),
    PlainSerializer(format_timestamp, return_type=str, when_used="json"),
]


# --- base ---------------------------------------------------------------------------------------


class NHDObject(BaseModel):
    """Common decoding rules: unknown keys ignored, nulls dropped, errors that name the field."""

    # No validate_assignment: a before-validator that drops nulls would rebuild the object from
    # one field on every assignment. Objects are validated where they enter, in from_dict.
    model_config = ConfigDict(extra="ignore")

    # Fields where an explicit null carries meaning and must survive decoding.
    _null_is_meaningful: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {
                key: value
                for key, value in data.items()
                if value is not None or key in cls._null_is_meaningful
            }
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """Decode a parsed JSON value; raises :class:`NHDValidationError`."""
        if not isinstance(data, dict):
            raise NHDValidationError(
                cls._object_name(), [("", f"expected a JSON object, got {type(data).__name__}")]
            )
        try:
            return cls.model_validate(data)
        except ValidationError as error:
            raise NHDValidationError.from_pydantic(cls._object_name(), error) from None

    @classmethod
    def from_json(cls, text: str | bytes) -> Self:
        try:
            data = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise NHDValidationError(
                cls._object_name(), [("", f"not valid JSON: {error}")]
            ) from None
        return cls.from_dict(data)

    def to_dict(self, *, only_set: bool = False) -> dict[str, Any]:
        """Encode for the wire. By default every field is written, unset ones as null (as the
        Zendesk gem does); ``only_set`` writes just the fields given, for partial updates."""
        data = self.model_dump(mode="json")
        if only_set:
            # Only the top level is partial: a comment inside an update is always sent whole.
            data = {key: value for key, value in data.items() if key in self.model_fields_set}
        return data

    def to_json(self, *, only_set: bool = False) -> str:
        return json.dumps(self.to_dict(only_set=only_set), ensure_ascii=False)

    @classmethod
    def _object_name(cls) -> str:
        return cls.__name__.lower()


# --- objects ------------------------------------------------------------------------------------


class Actor(NHDObject):
    """A person: requester, comment author or the user performing an update (§4.4)."""

    uuid: str = Field(min_length=1)
    name: str = ""
    role: str | None = None

    @property
    def is_agent(self) -> bool:
        return self.role == "agent"


class Attachment(NHDObject):
    """A file on a comment, fetched by the receiver from ``url`` (§4.5)."""

    url: str = Field(min_length=1)
    filename: str = Field(min_length=1)
    content_type: str | None = None
    display_filename: str | None = None


class Comment(NHDObject):
    """A comment, identified by its uuid everywhere (§4.3). Absent ``public`` means public."""

    uuid: str = Field(min_length=1)
    author: Actor | None = None
    body: str = ""
    html_body: str | None = None
    authored_at: Timestamp | None = None
    public: bool = True
    attachments: list[Attachment] = Field(default_factory=list)
    custom_fields: dict[str, Any] = Field(default_factory=dict)


class Ticket(NHDObject):
    """A shared ticket (§4.2). On a partial update only ``uuid`` and the changed fields are set."""

    uuid: str = Field(min_length=1)
    subject: str | None = None
    requested_at: Timestamp | None = None
    status: str | None = None
    requester: Actor | None = None
    comments: list[Comment] = Field(default_factory=list)
    current_actor: Actor | None = None
    tags: list[str] | None = None
    original_id: str | None = None
    custom_fields: dict[str, Any] | None = None
    custom_status: str | None = None

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: str | None) -> str | None:
        if value is None:
            return None
        normalised = value.lower()
        if normalised not in TICKET_STATUSES:
            raise ValueError(
                f"{value!r} is not an NHD ticket status; use one of {', '.join(TICKET_STATUSES)}"
            )
        return normalised

    @field_validator("original_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        # Zendesk's ids are numbers in its own API; the NHD field is a string.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class Agreement(NHDObject):
    """A ticket-sharing agreement (§4.1). ``deactivated_by: null`` means "cleared"."""

    _null_is_meaningful: ClassVar[frozenset[str]] = frozenset({"deactivated_by"})

    uuid: str = Field(min_length=1)
    name: str | None = None
    status: Literal["pending", "accepted", "declined", "inactive"] | None = None
    sender_url: str | None = None
    receiver_url: str | None = None
    access_key: str | None = Field(default=None, repr=False)
    deactivated_by: Literal["sender", "receiver"] | None = None
    current_actor: Actor | None = None
    sync_tags: bool | None = None
    sync_custom_fields: bool | None = None
    allows_public_comments: bool | None = None

    @field_validator("status", mode="before")
    @classmethod
    def _status_case(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("deactivated_by", mode="before")
    @classmethod
    def _deactivated_by_case(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.lower() or None
        return value

    @property
    def token(self) -> str:
        """The ``X-Ticket-Sharing-Token`` value: ``<uuid>:<access_key>`` (§3)."""
        if not self.access_key:
            raise ValueError(f"agreement {self.uuid} has no access key")
        return f"{self.uuid}:{self.access_key}"

    # Least privilege: an absent permission flag means false (§5).
    @property
    def full_delegation(self) -> bool:
        return bool(self.allows_public_comments)
