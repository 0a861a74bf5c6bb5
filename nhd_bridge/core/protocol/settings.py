"""Settings of the NHD receiver endpoints (nhd-spec.md §2, §3)."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["DEFAULT_MAX_BODY_BYTES", "ReceiverSettings"]

# Above the largest realistic share: a 1,000-comment ticket of 16 KiB mails with their HTML is
# ~47 MiB of JSON (benchmarks/nhd_share_size.py); a body is held whole while it is parsed.
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024


class ReceiverSettings(BaseModel):
    """How the receiver presents itself and how strictly it reads what partners send."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(
        description="Our public sharing base URL as partners know it, e.g. "
        "https://us.example/sharing; an invite must name it as receiver_url."
    )
    path_prefix: str = Field(
        default="/sharing", description="Where the endpoints are mounted in this app."
    )
    strict: bool = Field(
        default=False,
        description="RT-style strictness: token required on the agreement POST, version header "
        "required, uuids must be 40 hex characters.",
    )
    allow_reactivation: bool = Field(
        default=False,
        description="Let the side that deactivated an agreement reactivate it (RT allows it, "
        "Zendesk does not).",
    )
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)
    read_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Longest a request body may take to arrive; a slower client gets 408.",
    )
    max_pending_invites: int = Field(
        default=100,
        gt=0,
        description="Invites waiting for an answer, in all; more are refused with 429 until "
        "some are accepted, declined or pruned.",
    )
    max_invites_per_source: int = Field(
        default=10,
        gt=0,
        description="Invites one client address may send per hour (429 above it).",
    )
    pending_invite_days: int = Field(
        default=30,
        gt=0,
        description="An invite nobody answered for this many days is removed.",
    )

    @field_validator("base_url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(f"{value!r} is not an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("path_prefix")
    @classmethod
    def _mount_path(cls, value: str) -> str:
        value = value.rstrip("/")
        if value and not value.startswith("/"):
            raise ValueError(f"{value!r} must start with '/' (or be empty to mount at the root)")
        return value
