"""Settings of a ``kind: rest`` instance: a tracker's JSON REST API described in YAML.

A user names a shipped *profile* (``roundup``, ``github``, ``redmine``) and gives the few settings
that are theirs: ``base_url``, ``auth``, perhaps ``vars``. Every other key of the profile can be
overridden one by one: the user's YAML is deep-merged over the profile (mappings merge key by key,
anything else replaces; ``null`` removes an optional operation). Without a profile, the whole
description is written in the instance itself. ``docs/adapters/rest.md`` walks through each key.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from nhd_bridge.adapters.rest.auth import (
    ApiKeyAuth,
    Auth,
    BasicAuth,
    BearerAuth,
    NoAuth,
    OAuth2ClientCredentials,
)
from nhd_bridge.adapters.rest.paging import KeysetPaging, NoPaging, Paging, paging_from, settings_of
from nhd_bridge.adapters.rest.profiles import load_profile, profile_names
from nhd_bridge.adapters.rest.template import TemplateError, compile_expression, expressions_in
from nhd_bridge.core.adapter import AdapterConfig, Capabilities

__all__ = [
    "ApiKeyAuth",
    "BasicAuth",
    "BearerAuth",
    "CapabilitiesConfig",
    "CommentMapping",
    "NoAuth",
    "OAuth2ClientCredentials",
    "Operation",
    "Operations",
    "Pagination",
    "Paging",
    "RestConfig",
    "TicketMapping",
    "deep_merge",
]

HttpMethod = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- operations ---------------------------------------------------------------------------------


def Pagination(**settings: Any) -> Paging:
    """The paging model of ``settings`` by their ``style`` (see :mod:`.paging`); named as the
    one class that held every style's settings was, so that code building one still does."""
    model: Paging = paging_from(settings)
    return model


class NotFound(_Strict):
    """When an answer means "no such ticket" (``get`` returns ``None``), rather than an error.

    ``when`` (JMESPath over the error body) guards against a wrong URL that also answers 404."""

    status: list[int] = Field(default_factory=lambda: [404])
    when: str | None = None


class Operation(_Strict):
    """One HTTP call: method, URL template, query parameters, headers and body templates."""

    method: HttpMethod = "GET"
    url: str = Field(description="relative to base_url; {{ }} values are percent-encoded")
    params: dict[str, Any] = Field(default_factory=dict, description="a list value repeats it")
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    body_type: Literal["json", "form", "multipart", "raw"] = "json"
    file_field: str = Field(default="file", description="multipart: the file's field name")
    items: str | None = Field(default=None, description="JMESPath to the listed documents")
    result: str | None = Field(
        default=None, description="JMESPath to the document (get) or the new id (create, comment)"
    )
    when: str | None = Field(default=None, description="JMESPath; falsy = skip this call")
    pagination: Paging = Field(default_factory=NoPaging)
    not_found: NotFound | None = None
    etag: bool | None = Field(default=None, description="override the instance's etag setting")
    idempotent: bool | None = Field(
        default=None,
        description="may the request be sent again after it may have reached the server? "
        "Default: GET, PUT and DELETE yes, POST and PATCH no. A write that is not is never "
        "repeated blindly: after a lost answer the adapter looks for its breadcrumb first",
    )

    @field_validator("pagination", mode="before")
    @classmethod
    def _paging_by_style(cls, value: Any) -> Any:
        return paging_from(value)

    @property
    def is_idempotent(self) -> bool:
        if self.idempotent is not None:
            return self.idempotent
        return self.method in {"GET", "PUT", "DELETE"}


class Operations(_Strict):
    """The tracker's API, one operation per thing the bridge does."""

    list_changed: Operation = Field(description="tickets changed since {{ since }}, oldest first")
    get: Operation
    find_by_uuid: Operation | None = Field(
        default=None, description="tickets whose breadcrumb is {{ shared_uuid }}"
    )
    create: Operation
    update: Operation
    set_status: Operation | None = Field(
        default=None, description="when a status change is its own call (workflows)"
    )
    list_comments: Operation | None = None
    add_comment: Operation
    link_comment: Operation | None = Field(
        default=None, description="where a comment is its own object linked to the ticket"
    )
    find_comment_by_uuid: Operation | None = Field(
        default=None,
        description="comment objects whose breadcrumb is {{ shared_uuid }} (with link_comment): "
        "one written but never linked, by a crash or a lost answer, is linked, not written again",
    )
    edit_comment: Operation | None = None
    upload_attachment: Operation | None = None
    download_attachment: Operation | None = None
    check: Operation | None = Field(default=None, description="a cheap authenticated read")


# --- reading ------------------------------------------------------------------------------------


class TicketMapping(_Strict):
    """JMESPath expressions reading a ticket document (from ``get`` or ``list_changed``)."""

    id: str = "id"
    human_id: str | None = None
    subject: str = "title"
    status: str = "status"
    updated_at: str = "updated_at"
    requested_at: str | None = None
    requester: str | None = Field(default=None, description="gives {uuid, name, role}")
    tags: str | None = None
    custom_fields: str | None = Field(default=None, description="gives an object")
    shared_uuid: str | None = Field(default=None, description="where the breadcrumb is read")
    marker: str | None = Field(
        default=None,
        description="breadcrumb written as text, e.g. '<!-- nhd:{uuid} -->'; found inside the "
        "shared_uuid value",
    )
    comments: str | None = Field(
        default=None, description="comments inside the ticket document (no list_comments call)"
    )
    description: str | None = Field(
        default=None,
        description="the ticket's description (Redmine's description, GitHub's body); read as "
        "the ticket's first comment, whose local id is 'description-<ticket id>'",
    )


class CommentMapping(_Strict):
    """JMESPath expressions reading one comment document."""

    id: str = "id"
    body: str = "body"
    html_body: str | None = None
    public: str = Field(default="`true`", description="gives a boolean")
    author: str | None = Field(default=None, description="gives {uuid, name, role}")
    authored_at: str | None = None
    shared_uuid: str | None = None
    marker: str | None = Field(
        default=None, description="breadcrumb written into the body; removed again when read"
    )
    attachments: str | None = Field(
        default=None, description="gives [{filename, ref, content_type, size}]"
    )


class CapabilitiesConfig(_Strict):
    """What the tracker can hold (see :class:`nhd_bridge.core.adapter.Capabilities`)."""

    private_comments: bool = False
    attachments: bool = False
    tags: bool = False
    custom_fields: bool = False
    transitions: bool = False
    comment_author: bool = False
    edit_comments: bool = False
    statuses: list[str] | None = None
    max_attachment_bytes: int | None = Field(default=None, gt=0)

    def build(self) -> Capabilities:
        values = self.model_dump()
        values["statuses"] = tuple(self.statuses) if self.statuses is not None else None
        return Capabilities(**values)


class ChangesConfig(_Strict):
    """How ``changed_since`` reads."""

    lookback_seconds: float = Field(
        default=2.0,
        ge=0,
        description="re-read this much before the cursor (clock skew, late commits); what was "
        "already read unchanged is not returned again",
    )
    refetch: bool = Field(
        default=False,
        description="read every listed ticket again with `get` (thin list items); not when its "
        "ticket.updated_at is what an earlier read saw after that second had passed",
    )


class DatesConfig(_Strict):
    """How the tracker writes dates. ``format`` is a strptime/strftime pattern; ``None`` = ISO."""

    format: str | None = None
    send_format: str | None = Field(
        default=None, description="format of dates sent ({{ since }}); default: format or ISO"
    )


class ErrorsConfig(_Strict):
    message: str | None = Field(
        default=None, description="JMESPath to the human message in an error body"
    )


class RetryConfig(_Strict):
    attempts: int = Field(default=3, ge=1, description="tries per call on 5xx/connection errors")
    backoff_seconds: float = Field(default=0.5, ge=0)
    max_backoff_seconds: float = Field(default=10.0, ge=0)
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_wait_seconds: float = Field(
        default=30.0,
        ge=0,
        description="longest a call waits in total for rate limits (429 / Retry-After) before "
        "it gives up and the engine parks the work",
    )


# --- the whole instance -------------------------------------------------------------------------


class RestConfig(AdapterConfig):
    """Settings of a ``kind: rest`` instance (a profile's keys, merged with the user's)."""

    profile: str | None = Field(
        default=None, description=f"a shipped profile to start from: {', '.join(profile_names())}"
    )
    description: str | None = Field(default=None, description="free text, for people")
    base_url: str = Field(description="the API root; operation URLs are relative to it")
    auth: Auth = Field(default_factory=NoAuth)
    headers: dict[str, str] = Field(
        default_factory=dict, description="sent with every call; templates over base_url, origin"
    )
    vars: dict[str, Any] = Field(
        default_factory=dict, description="your own values for templates ({{ vars.project }})"
    )
    etag: bool = Field(default=False, description="read the ETag and send If-Match on writes")
    operations: Operations
    create_ignores: list[Literal["subject", "status"]] = Field(
        default_factory=list,
        description="fields the tracker ignores on create (Redmine: status); set right after by "
        "an update, and read back",
    )
    ticket: TicketMapping = Field(default_factory=TicketMapping)
    comment: CommentMapping = Field(default_factory=CommentMapping)
    value_maps: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="per field (status, a custom field): tracker value -> name the bridge uses",
    )
    capabilities: CapabilitiesConfig = Field(default_factory=CapabilitiesConfig)
    changes: ChangesConfig = Field(default_factory=ChangesConfig)
    dates: DatesConfig = Field(default_factory=DatesConfig)
    errors: ErrorsConfig = Field(default_factory=ErrorsConfig)
    retries: RetryConfig = Field(default_factory=RetryConfig)
    verify_tls: bool = True

    @model_validator(mode="before")
    @classmethod
    def _merge_profile(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("profile") is None:
            return data
        name = data["profile"]
        if not isinstance(name, str):
            raise ValueError("profile must be the name of a shipped profile")
        profile = load_profile(name)
        auth = data.get("auth")
        if isinstance(auth, dict) and auth.get("type", "") != profile.get("auth", {}).get("type"):
            profile.pop("auth", None)  # another kind of auth: none of the profile's keys apply
        _keep_paging_settings_of_the_users_style(profile, data)
        return deep_merge(profile, data)

    @field_validator("base_url")
    @classmethod
    def _absolute(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError(f"{value!r} is not an absolute http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("value_maps", mode="before")
    @classmethod
    def _text_keys(cls, value: Any) -> Any:
        # YAML reads `1: New` with an integer key; tracker values are compared as text.
        if isinstance(value, dict):
            return {
                field: {str(k): str(v) for k, v in table.items()}
                if isinstance(table, dict)
                else table
                for field, table in value.items()
            }
        return value

    @model_validator(mode="after")
    def _expressions_compile(self) -> RestConfig:
        for where, expression in _expressions(self):
            try:
                compile_expression(expression)
            except TemplateError as error:
                raise ValueError(f"{where}: {error}") from None
        return self

    @property
    def origin(self) -> str:
        """``scheme://host[:port]`` of base_url, for APIs that check an ``Origin`` header."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.netloc}"


def deep_merge(base: Any, override: Any) -> Any:
    """``override`` over ``base``: mappings merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return override


def _keep_paging_settings_of_the_users_style(profile: dict[str, Any], data: dict[str, Any]) -> None:
    """Where the user pages an operation in another style than the profile, only the profile's
    settings that the user's style has too (``page_size``, ``size_param``) still apply."""
    operations = data.get("operations")
    if not isinstance(operations, dict):
        return
    for name, operation in operations.items():
        ours = operation.get("pagination") if isinstance(operation, dict) else None
        theirs = profile.get("operations", {}).get(name)
        theirs = theirs.get("pagination") if isinstance(theirs, dict) else None
        if not (isinstance(ours, dict) and isinstance(theirs, dict) and "style" in ours):
            continue
        if ours["style"] != theirs.get("style", "none"):
            keep = settings_of(ours["style"]) - {"style"}
            profile["operations"][name]["pagination"] = {
                key: value for key, value in theirs.items() if key in keep
            }


def _expressions(config: RestConfig) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for name in Operations.model_fields:
        operation: Operation | None = getattr(config.operations, name)
        if operation is None:
            continue
        where = f"operations.{name}"
        for part in ("url", "params", "headers", "body"):
            found += [(f"{where}.{part}", e) for e in expressions_in(getattr(operation, part))]
        for part in ("items", "result", "when"):
            value = getattr(operation, part)
            if value is not None:
                found.append((f"{where}.{part}", value))
        paging = operation.pagination
        found += [(f"{where}.pagination.{k}", v) for k, v in paging.expressions().items()]
        if isinstance(paging, KeysetPaging):
            found += [
                (f"{where}.pagination.key_value", e) for e in expressions_in(paging.key_value)
            ]
        if operation.not_found is not None and operation.not_found.when is not None:
            found.append((f"{where}.not_found.when", operation.not_found.when))
    for section in ("ticket", "comment"):
        mapping = getattr(config, section)
        for part in type(mapping).model_fields:
            value = getattr(mapping, part)
            if value is not None and part != "marker":
                found.append((f"{section}.{part}", value))
    found += [("headers", e) for e in expressions_in(config.headers)]
    if config.errors.message is not None:
        found.append(("errors.message", config.errors.message))
    return found
