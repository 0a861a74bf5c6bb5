"""Settings of a ``kind: jira`` instance (Jira Cloud or Jira Data Center).

Validation is pure (no network): :meth:`JiraAdapter.check` looks at the site. Secrets are
``SecretStr`` so they never reach ``repr()``, logs or error messages.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from nhd_bridge.core.adapter import AdapterConfig

__all__ = ["Breadcrumb", "JiraConfig", "JiraUser", "Visibility"]

DEFAULT_MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Visibility(_Strict):
    """Who may read a private comment: a project role or a group."""

    type: Literal["role", "group"]
    value: str = Field(min_length=1, description="the role or group name, e.g. Developers")


class JiraUser(_Strict):
    """One person known on both sides."""

    nhd: str = Field(min_length=1, description="the NHD actor uuid")
    jira: str = Field(min_length=1, description="accountId on Cloud, username on Data Center")
    name: str | None = Field(
        default=None, description="also match actors with this display name (writing only)"
    )


class Breadcrumb(_Strict):
    """Where the shared uuid is left on a Jira issue."""

    property: str = Field(
        default="nhd.bridge",
        pattern=r"^[A-Za-z0-9._-]{1,255}$",
        description="issue and comment property key holding the shared uuid",
    )
    label: bool | None = Field(
        default=None,
        description="also add a label '<label_prefix><uuid>': makes find_by_shared_uuid one JQL "
        "query instead of a scan of recently created issues. Default: true on Data Center "
        "(whose search does not return issue properties), false on Cloud",
    )
    label_prefix: str = Field(default="nhd-", pattern=r"^\S*$")
    recovery_window_days: int = Field(
        default=30,
        gt=0,
        description="without a label, how far back (by creation) crash recovery scans",
    )


class JiraConfig(AdapterConfig):
    """Settings of a ``kind: jira`` instance."""

    url: str = Field(description="site URL, e.g. https://acme.atlassian.net")
    deployment: Literal["cloud", "datacenter"] = Field(
        description="cloud: e-mail + API token, REST v3 (ADF); datacenter: PAT or basic, REST v2"
    )
    email: str | None = Field(default=None, description="Cloud: the bridge user's e-mail")
    api_token: SecretStr | None = Field(default=None, description="Cloud: an API token")
    personal_access_token: SecretStr | None = Field(
        default=None, description="Data Center: a personal access token (Bearer)"
    )
    username: str | None = Field(default=None, description="Data Center basic auth")
    password: SecretStr | None = Field(default=None, description="Data Center basic auth")

    project: str = Field(min_length=1, description="project key, e.g. SUP")
    issue_type: str = Field(default="Task", description="issue type of created issues")
    jql: str | None = Field(
        default=None, description="extra JQL ANDed to every read: the share filter on Jira's side"
    )
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="NHD custom field name → Jira field id (customfield_10042) or field name",
    )
    statuses: list[str] | None = Field(
        default=None,
        description="the workflow's statuses the bridge may report and set; declares "
        "capabilities.statuses (unset: open-ended)",
    )
    resolutions: dict[str, str] = Field(
        default_factory=dict,
        description="closing status → resolution set on the transition into it",
    )
    max_transition_steps: int = Field(
        default=4, ge=1, le=20, description="longest transition path tried to reach a status"
    )
    users: list[JiraUser] = Field(default_factory=list)
    fallback_user: str | None = Field(
        default=None,
        description="reporter of created issues whose requester is not in users (accountId or "
        "username); unset: Jira's default (the bridge user)",
    )
    set_reporter: bool = Field(
        default=True, description="set the reporter on create (needs 'Modify Reporter')"
    )
    private_visibility: Visibility | None = Field(
        default=None, description="restriction that makes a comment private"
    )
    jsm: bool = Field(
        default=False,
        description="Jira Service Management: private = internal note (sd.public.comment)",
    )
    breadcrumb: Breadcrumb = Field(default_factory=Breadcrumb)
    lookback_minutes: int = Field(
        default=2, ge=1, description="re-read window before the cursor (JQL has minute precision)"
    )
    timezone: str | None = Field(
        default=None,
        description="the bridge user's Jira profile time zone (JQL dates are read in it); "
        "default: asked from /myself",
    )
    page_size: int = Field(default=50, gt=0, le=100, description="issues per search page")
    max_attachment_bytes: int | None = Field(default=DEFAULT_MAX_ATTACHMENT_BYTES, gt=0)
    timeout_seconds: float = Field(default=30.0, gt=0)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("give the site URL with its scheme, e.g. https://acme.atlassian.net")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _credentials(self) -> Self:
        if self.deployment == "cloud":
            if not (self.email and self.api_token):
                raise ValueError("deployment cloud needs email and api_token")
        elif not (self.personal_access_token or (self.username and self.password)):
            raise ValueError(
                "deployment datacenter needs personal_access_token, or username and password"
            )
        if self.jsm and self.deployment != "cloud":
            # Data Center's comment JSON does not say whether a comment is internal: reading
            # every internal note as public would leak it, so refuse rather than guess.
            raise ValueError(
                "jsm: true is supported on Jira Cloud only; on Data Center use private_visibility"
            )
        if self.jsm and self.private_visibility is not None:
            raise ValueError("give either jsm: true or private_visibility, not both")
        if self.breadcrumb.label is None:
            self.breadcrumb.label = self.deployment == "datacenter"
        return self

    @property
    def api_version(self) -> str:
        return "3" if self.deployment == "cloud" else "2"
