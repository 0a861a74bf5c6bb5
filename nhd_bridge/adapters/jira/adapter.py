"""Jira Cloud and Jira Data Center issues as shared tickets, on the ``jira`` library.

How the contract maps onto Jira (see ``docs/adapters/jira.md`` for the user's view):

- **Identity.** ``local_id`` and ``human_id`` are the issue key. The breadcrumb is the issue
  property ``nhd.bridge`` (``{"uuid": …, "comments": {comment id: {"uuid", "attachments"}}}``),
  written *in the create request itself* (``properties`` of ``POST /issue``), so no crash can
  leave an issue without it; optionally also a label, which makes crash recovery one JQL query.
- **Comment breadcrumbs** are comment properties written in the ``POST …/comment`` request. Jira's
  search does not return comment properties, so the issue property also keeps an index of the
  bridge's comments: a steady-state read needs no per-issue request. Only a comment written by the
  bridge's own account that is missing from the index (a crash between the two writes) costs one
  ``GET /comment/{id}/properties/nhd.bridge`` (Jira's documented place for comment properties).
- **Search and the breadcrumb.** Cloud's ``/search/jql`` returns the issue property (``properties``
  is declared there). Data Center's ``/search`` does not declare ``properties``, so the adapter
  does not rely on it: a page's issue whose property is needed (no label breadcrumb, or a comment
  by the bridge's account) costs one ``GET /issue/{key}/properties/nhd.bridge``, and the label
  breadcrumb is on by default on Data Center.
- **Crash recovery** (``find_by_shared_uuid``) must find an issue created moments before a crash,
  but Jira's search is eventually consistent (Cloud's description says so; a Data Center cluster
  indexes on each node). After the search, the issues newer than the newest key search knows are
  read one by one with ``GET /issue/{key}``, which is consistent (see ADR 0006).
- **Reads** run JQL ``project = X AND updated >= "<cursor - lookback>" ORDER BY updated ASC``,
  with comments and attachments in the page. JQL dates have minute precision and are read in the
  bridge user's profile time zone: the bound is floored to the minute, converted to that zone, and
  moved an hour earlier inside a DST fold. Cloud pages with ``nextPageToken`` (``/search/jql``);
  Data Center pages with ``startAt``, and moves the JQL bound up to the last page's minute as it
  goes, so an issue changing mid-read shifts at most the issues of one minute (re-read, never lost).
- **Status** is reached through transitions: a breadth-first search over the workflow graph learned
  from the transitions read at each visited status, exploring unknown statuses when no known path
  exists; the configured resolution is set on the transition into a closing status.
- **Errors.** The library's own retry loop is off (``max_retries=0``): a 429/503 becomes a
  :class:`TransientError` carrying ``Retry-After`` and the engine parks the ticket instead of this
  process sleeping. Messages never include the library's error text, which dumps request headers.
"""

from __future__ import annotations

import io
import json
import logging
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nhd_bridge.adapters.jira.config import JiraConfig
from nhd_bridge.adapters.jira.markup import (
    adf_to_html,
    adf_to_text,
    attachment_names_in_adf,
    attachment_names_in_wiki,
    text_to_adf,
    text_to_wiki,
    wiki_to_html,
    wiki_to_text,
)
from nhd_bridge.core.adapter import (
    Adapter,
    AdapterConfig,
    AdapterError,
    AttachmentRef,
    AttachmentUpload,
    Capabilities,
    ChangePage,
    CheckResult,
    CommentDraft,
    CommentRecord,
    PermanentError,
    TicketChanges,
    TicketDraft,
    TicketRecord,
    TransientError,
)
from nhd_bridge.core.http import is_retryable_status, parse_retry_after
from nhd_bridge.core.model import Actor, nhd_uuid, parse_timestamp

if TYPE_CHECKING:
    import requests
    from jira import JIRA, JIRAError

# The jira library (and requests under it) is imported when an adapter first talks to Jira: every
# run registers every installed adapter class, and one without a Jira instance should not pay
# 0.2 s for it. The plugin (this package's __init__) checks at load that the extra is installed.

__all__ = ["JiraAdapter", "JiraConfig"]

log = logging.getLogger(__name__)

COPY_CHUNK_BYTES = 1024 * 1024
COMMENT_PAGE = 100
# Crash recovery reads keys after the newest indexed one until this many in a row do not exist.
RECOVERY_MISSES = 3
RECOVERY_MAX_PROBES = 50
SYSTEM_FIELDS = ("summary", "status", "labels", "reporter", "created", "updated", "comment")
JSM_PROPERTY = "sd.public.comment"
PERMISSIONS = {
    "BROWSE_PROJECTS": "Browse Projects",
    "CREATE_ISSUES": "Create Issues",
    "EDIT_ISSUES": "Edit Issues",
    "TRANSITION_ISSUES": "Transition Issues",
    "ADD_COMMENTS": "Add Comments",
    "CREATE_ATTACHMENTS": "Create Attachments",
}


class _Missing(PermanentError):
    """Jira answered 404: the issue (or property) is not there."""


# --- the adapter --------------------------------------------------------------------------------


class JiraAdapter(Adapter):
    """The bridge's view of one Jira project. Connects on first use, not in ``__init__``."""

    kind = "jira"
    config_model = JiraConfig
    capabilities = Capabilities(
        private_comments=False,
        attachments=True,
        tags=True,
        custom_fields=True,
        transitions=True,
        comment_author=False,  # Jira writes every comment as the bridge's account
        edit_comments=False,
        statuses=None,
    )

    def __init__(self, name: str, config: AdapterConfig):
        if not isinstance(config, JiraConfig):
            raise TypeError(f"JiraAdapter needs a JiraConfig, got {type(config).__name__}")
        super().__init__(name, config)
        self.config: JiraConfig = config
        self.capabilities = replace(
            type(self).capabilities,
            private_comments=config.jsm or config.private_visibility is not None,
            statuses=tuple(config.statuses) if config.statuses else None,
            max_attachment_bytes=config.max_attachment_bytes,
        )
        self.cloud = config.deployment == "cloud"
        self._client: JIRA | None = None
        self._me: dict[str, Any] | None = None
        self._field_list: list[dict[str, Any]] | None = None
        self._fields: dict[str, dict[str, Any]] | None = None  # NHD name → Jira field
        # Learned workflow: status (casefolded) → {target status (casefolded): transition}.
        self._workflow: dict[str, dict[str, dict[str, Any]]] = {}
        self._by_nhd = {user.nhd: user.jira for user in config.users}
        self._by_name = {user.name.casefold(): user.jira for user in config.users if user.name}
        self._by_jira = {user.jira: user.nhd for user in config.users}

    # --- connection -----------------------------------------------------------------------------

    @property
    def client(self) -> JIRA:
        if self._client is None:
            self._client = self._connect()
        return self._client

    def _connect(self) -> JIRA:
        config = self.config
        kwargs: dict[str, Any] = {
            "options": {"server": config.url, "rest_api_version": config.api_version},
            "get_server_info": False,  # the deployment is configured; no serverInfo round trip
            "max_retries": 0,  # never sleep here: a 429 parks the ticket (see module doc)
            "timeout": config.timeout_seconds,
            "logging": False,  # the library logs response headers on errors at DEBUG
        }
        if config.deployment == "cloud":
            assert config.email and config.api_token
            kwargs["basic_auth"] = (config.email, config.api_token.get_secret_value())
        elif config.personal_access_token is not None:
            kwargs["token_auth"] = config.personal_access_token.get_secret_value()
        else:
            assert config.username and config.password
            kwargs["basic_auth"] = (config.username, config.password.get_secret_value())
        from jira import JIRA

        client = JIRA(**kwargs)
        if self.cloud:
            client.deploymentType = "Cloud"  # what serverInfo would have said
        return client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- reading --------------------------------------------------------------------------------

    def changed_since(self, cursor: str | None) -> Iterator[ChangePage]:
        since = self._parse_cursor(cursor)  # a bad cursor fails here, not on first next()
        return self._pages(since)

    def _pages(self, since: datetime | None) -> Iterator[ChangePage]:
        lookback = timedelta(minutes=self.config.lookback_minutes)
        lower = _floor_minute(since - lookback) if since is not None else None
        yielded: dict[str, str] = {}  # key → updated, so a re-read page yields only news
        token: str | None = None
        offset = 0
        while True:
            jql = self._read_jql(lower)
            if self.cloud:
                page = self._search_cloud(jql, token)
                token = page.get("nextPageToken")
                last = not token or page.get("isLast") is True
            else:
                page = self._search_dc(jql, offset)
                issues = page.get("issues") or []
                last = not issues or offset + len(issues) >= int(page.get("total", 0))
            issues = page.get("issues") or []
            new = [issue for issue in issues if yielded.get(issue["key"]) != _updated(issue)]
            for issue in new:
                yielded[issue["key"]] = _updated(issue)
            if new:
                records = [self._record(self._with_crumb(issue)) for issue in new]
                yield ChangePage(records, cursor=_cursor_text(records[-1].updated_at))
            if last:
                return
            if not self.cloud:
                bound = _floor_minute(parse_timestamp(_updated(issues[-1])))
                if lower is None or bound > lower:
                    lower, offset = bound, 0  # keyset step: restart at the page's last minute
                else:
                    offset += len(issues)

    def get(self, local_id: str) -> TicketRecord | None:
        try:
            issue = self._issue(local_id, f"reading issue {local_id}")
        except _Missing:
            return None
        return self._record(issue)

    def find_by_shared_uuid(self, shared_uuid: str) -> TicketRecord | None:
        crumb = self.config.breadcrumb
        if crumb.label:
            jql = f"{self._project_jql()} AND labels = {_jql_string(self._label(shared_uuid))}"
        else:
            days = crumb.recovery_window_days
            jql = f"{self._project_jql()} AND created >= -{days}d ORDER BY created DESC"
        token: str | None = None
        offset = 0
        while True:
            if self.cloud:
                page = self._search_cloud(jql, token)
                token = page.get("nextPageToken")
                last = not token
            else:
                page = self._search_dc(jql, offset)
                offset += len(page.get("issues") or [])
                last = not page.get("issues") or offset >= int(page.get("total", 0))
            for issue in page.get("issues") or []:
                full = self._with_crumb(issue)
                if self._shared_uuid(full) == shared_uuid:
                    return self._record(full)
            if last:
                break
        return self._find_after_newest_indexed(shared_uuid)

    def _find_after_newest_indexed(self, shared_uuid: str) -> TicketRecord | None:
        """The issues search may not show yet, read directly: keys after the newest one search
        knows, upwards, until ``RECOVERY_MISSES`` keys in a row do not exist.

        Search is eventually consistent; ``GET /issue/{key}`` is not. Cloud's ``reconcileIssues``
        would make search consistent, but only for issue ids the caller already knows, and the id
        of an issue created just before a crash is exactly what was lost. Keys are numbered in
        creation order within a project, so the fresh issue is among the keys after the newest
        indexed one (a deleted issue leaves a gap, hence several misses before stopping).
        """
        newest = self._newest_indexed_number()
        misses = 0
        for number in range(newest + 1, newest + 1 + RECOVERY_MAX_PROBES):
            key = f"{self.config.project}-{number}"
            try:
                issue = self._issue(key, f"looking for a just-created issue ({key})")
            except _Missing:
                misses += 1
                if misses >= RECOVERY_MISSES:
                    return None
                continue
            misses = 0
            if self._shared_uuid(issue) == shared_uuid:
                return self._record(issue)
        return None

    def _newest_indexed_number(self) -> int:
        jql = f"project = {_jql_string(self.config.project)} ORDER BY key DESC"
        page = (
            self._search_cloud(jql, None, limit=1, fields=["created"])
            if self.cloud
            else self._search_dc(jql, 0, limit=1, fields=["created"])
        )
        for issue in page.get("issues") or []:
            number = str(issue.get("key", "")).rpartition("-")[2]
            if number.isdigit():
                return int(number)
        return 0

    # --- writing --------------------------------------------------------------------------------

    def create(self, draft: TicketDraft) -> TicketRecord:
        fields: dict[str, Any] = {
            "project": {"key": self.config.project},
            "issuetype": {"name": self.config.issue_type},
            "summary": _one_line(draft.subject),
            "labels": self._labels(draft.tags or [], draft.shared_uuid),
        }
        reporter = self._jira_user_for(draft.requester)
        if reporter is not None and self.config.set_reporter:
            fields["reporter"] = self._user_ref(reporter)
        fields.update(self._custom_values(draft.custom_fields or {}))
        body = {
            "fields": fields,
            # The breadcrumb travels in the create request: no window without it.
            "properties": [
                {"key": self._crumb_key, "value": {"uuid": draft.shared_uuid, "comments": {}}}
            ],
        }
        # Not create_issue(): it sends no ``properties`` (the breadcrumb must travel in this very
        # request) and reads the issue back, one more request per ticket.
        created = self._json(
            "POST", "issue", action="creating an issue", permission="CREATE_ISSUES", body=body
        )
        key = created["key"]
        record = self.get(key)
        if record is None:
            raise TransientError(f"issue {key} was created but cannot be read back yet; retry")
        if draft.status and draft.status.casefold() != record.status.casefold():
            self._reach_status(key, record.status, draft.status)
            record = self.get(key) or record
        return record

    def update(self, local_id: str, changes: TicketChanges) -> None:
        if changes.is_empty():
            return
        fields: dict[str, Any] = {}
        if changes.subject is not None:
            fields["summary"] = _one_line(changes.subject)
        if changes.tags is not None:
            fields["labels"] = self._labels(changes.tags, self._label_uuid_of(local_id))
        fields.update(self._custom_values(changes.custom_fields or {}))
        if fields:
            # Not Issue.update(): it needs the issue read first, one more request per ticket.
            self._json(
                "PUT",
                f"issue/{quote(local_id)}",
                action=f"editing issue {local_id}",
                permission="EDIT_ISSUES",
                body={"fields": fields},
            )
        if changes.status is not None:
            action = f"reading the status of {local_id}"
            issue = self._issue(local_id, action, "status", crumb=False)
            current = issue["fields"]["status"]["name"]
            if current.casefold() != changes.status.casefold():
                self._reach_status(local_id, current, changes.status)

    def add_comment(self, local_id: str, draft: CommentDraft) -> str:
        limit = self.config.max_attachment_bytes
        for upload in draft.attachments:  # refuse before streaming anything
            if limit is not None and upload.size is not None and upload.size > limit:
                raise PermanentError(_too_large(upload.filename, limit))
        attachment_ids = [self._upload(local_id, upload) for upload in draft.attachments]
        crumb = {"uuid": draft.shared_uuid, "attachments": attachment_ids}
        body: dict[str, Any] = {
            "body": text_to_adf(draft.body) if self.cloud else text_to_wiki(draft.body),
            "properties": [{"key": self._crumb_key, "value": crumb}],
        }
        if self.config.jsm:
            body["properties"].append(
                {"key": JSM_PROPERTY, "value": {"internal": not draft.public}}
            )
        elif not draft.public:
            visibility = self.config.private_visibility
            if visibility is None:
                raise PermanentError(
                    f"{self.name}: a private comment cannot be written: configure "
                    "private_visibility (a role or group) or jsm: true"
                )
            body["visibility"] = {"type": visibility.type, "value": visibility.value}
        # Not add_comment(): it sends no ``properties``, and the comment's breadcrumb must
        # travel in the request that creates the comment.
        comment = self._json(
            "POST",
            f"issue/{quote(local_id)}/comment",
            action=f"commenting on {local_id}",
            permission="ADD_COMMENTS",
            body=body,
        )
        self._index_comment(local_id, comment["id"], crumb)
        return str(comment["id"])

    def open_attachment(self, ref: AttachmentRef) -> BinaryIO:
        if self.cloud:
            path = f"attachment/content/{quote(ref.ref)}"
            url = self.client._get_url(path)
            params: dict[str, str] | None = {"redirect": "false"}
        else:
            url = f"{self.config.url}/secure/attachment/{quote(ref.ref)}/{quote(ref.filename)}"
            params = None
        import requests
        from jira import JIRAError
        from jira.resilientsession import parse_error_msg

        session = self.client._session
        with self._errors(f"downloading attachment {ref.filename!r}", "BROWSE_PROJECTS"):
            # Past ResilientSession.request on purpose: it reads ``response.content`` of every
            # answer, which would pull the whole file into memory before we see a byte.
            response = requests.Session.request(
                session, "GET", url, params=params, stream=True, timeout=self.config.timeout_seconds
            )
            if not response.ok:
                text = parse_error_msg(response)
                response.close()
                raise JIRAError(text, status_code=response.status_code, response=response)
        return _LimitedDownload(response, ref.filename, self.config.max_attachment_bytes)  # type: ignore[return-value]

    # --- preflight ------------------------------------------------------------------------------

    def tracker_identity(self) -> str:
        # The site and the project: the same from every installation, whatever the store holds.
        return f"jira/{self.config.url.rstrip('/')}/{self.config.project}"

    def check(self) -> list[CheckResult]:
        results: list[CheckResult] = []
        try:
            me = self._myself()
        except AdapterError as error:
            return [CheckResult("authentication", False, str(error), hint=self._auth_hint())]
        who = me.get("accountId") or me.get("name")
        results.append(
            CheckResult("authentication", True, f"signed in as {me.get('displayName')} ({who})")
        )
        results.append(self._check_step("permissions", self._check_permissions))
        results.append(self._check_step("project and issue type", self._check_project))
        results.append(self._check_step("field map", self._check_fields))
        results.append(self._check_step("create screen", self._check_create_screen))
        results.append(self._check_step("edit screen and transitions", self._check_sample_issue))
        results.append(self._check_step("statuses", self._check_statuses))
        return results

    def _check_step(self, name: str, step: Callable[[], CheckResult]) -> CheckResult:
        try:
            return step()
        except AdapterError as error:
            return CheckResult(
                name, False, str(error), hint="see the message; docs/adapters/jira.md"
            )

    def _check_permissions(self) -> CheckResult:
        # Required on Cloud; not declared on Data Center, which returns them all.
        wanted = ",".join(PERMISSIONS) if self.cloud else None
        answer = self._public(
            "reading the bridge user's permissions",
            None,
            lambda: self.client.my_permissions(self.config.project, permissions=wanted),
        )
        held = answer.get("permissions") or {}
        missing = [
            label
            for key, label in PERMISSIONS.items()
            if not held.get(key, {}).get("havePermission")
        ]
        if missing:
            return CheckResult(
                "permissions",
                False,
                f"missing in project {self.config.project}: {', '.join(missing)}",
                hint="grant them to the bridge user in the project's permission scheme",
            )
        return CheckResult("permissions", True, "all needed project permissions are held")

    def _check_project(self) -> CheckResult:
        project = self._project()
        names = [kind.get("name") for kind in project.get("issueTypes") or []]
        if self._issue_type(project) is None:
            return CheckResult(
                "project and issue type",
                False,
                f"project {self.config.project} has no issue type {self.config.issue_type!r}",
                hint=f"set issue_type to one of: {', '.join(map(str, names))}",
            )
        return CheckResult(
            "project and issue type",
            True,
            f"{project.get('name')} ({self.config.project}), issue type {self.config.issue_type}",
        )

    def _check_fields(self) -> CheckResult:
        resolved = self._field_map()
        shown = ", ".join(f"{name} → {field['id']}" for name, field in resolved.items())
        return CheckResult("field map", True, shown or "no custom fields mapped")

    def _check_create_screen(self) -> CheckResult:
        issue_type = self._issue_type(self._project())
        if issue_type is None:
            return CheckResult("create screen", False, "unknown issue type", hint="fix issue_type")
        # Not createmeta_fieldtypes(): deprecated, refused on Cloud, and it asks for serverInfo.
        meta = self._json(
            "GET",
            f"issue/createmeta/{quote(self.config.project)}/issuetypes/{issue_type['id']}",
            action="reading the create screen",
            permission="CREATE_ISSUES",
            params={"maxResults": 200},
        )
        on_screen = {item.get("fieldId") for item in meta.get("fields") or meta.get("values") or []}
        wanted = {"summary", "labels", *(field["id"] for field in self._field_map().values())}
        if self.config.set_reporter and (self.config.users or self.config.fallback_user):
            wanted.add("reporter")
        missing = sorted(wanted - on_screen)
        if missing:
            return CheckResult(
                "create screen",
                False,
                f"not on the create screen of {self.config.issue_type}: {', '.join(missing)}",
                hint="add them to the project's create screen (or set set_reporter: false)",
            )
        return CheckResult("create screen", True, "every written field is on the create screen")

    def _check_sample_issue(self) -> CheckResult:
        name = "edit screen and transitions"
        page = (
            self._search_cloud(self._read_jql(None), None, limit=1, fields=["status"])
            if self.cloud
            else self._search_dc(self._read_jql(None), 0, limit=1, fields=["status"])
        )
        issues = page.get("issues") or []
        if not issues:
            return CheckResult(
                name, True, "no issue yet to check the edit screen against", level="warning"
            )
        key = issues[0]["key"]
        meta = self._public("reading the edit screen", None, lambda: self.client.editmeta(key))
        editable = set((meta.get("fields") or {}).keys())
        wanted = {"summary", "labels", *(field["id"] for field in self._field_map().values())}
        missing = sorted(wanted - editable)
        transitions = self._transitions(key)
        moves = ", ".join(f"{t['name']} → {t['to']['name']}" for t in transitions) or "none"
        if missing:
            return CheckResult(
                name,
                False,
                f"not editable on {key}: {', '.join(missing)}",
                hint="add them to the edit screen of the issue type",
            )
        status = issues[0]["fields"]["status"]["name"]
        return CheckResult(name, True, f"{key} ({status}): editable; transitions: {moves}")

    def _check_statuses(self) -> CheckResult:
        wanted = set(self.config.statuses or []) | set(self.config.resolutions)
        if not wanted:
            return CheckResult("statuses", True, "no statuses configured (open-ended)")
        issue_types = self._public(
            "reading the project's statuses",
            None,
            lambda: self.client.issue_types_for_project(self.config.project),
        )
        known: set[str] = set()
        for issue_type in (kind.raw for kind in issue_types):
            if issue_type.get("name") == self.config.issue_type:
                known |= {status["name"].casefold() for status in issue_type.get("statuses") or []}
        missing = sorted(status for status in wanted if status.casefold() not in known)
        if missing:
            return CheckResult(
                "statuses",
                False,
                f"not in the workflow of {self.config.issue_type}: {', '.join(missing)}",
                hint="fix statuses/resolutions, or the agreement's status_map",
            )
        return CheckResult("statuses", True, "every configured status is in the workflow")

    # --- records --------------------------------------------------------------------------------

    def _record(self, issue: dict[str, Any]) -> TicketRecord:
        fields = issue.get("fields") or {}
        key = issue["key"]
        crumb = _crumb(issue, self._crumb_key)
        index: dict[str, Any] = crumb.get("comments") or {}
        attachments = {str(item["id"]): item for item in fields.get("attachment") or []}
        by_name: dict[str, list[dict[str, Any]]] = {}
        for item in attachments.values():
            by_name.setdefault(item.get("filename", ""), []).append(item)
        claimed = {str(ref) for entry in index.values() for ref in entry.get("attachments") or []}
        comments = [
            self._comment_record(key, raw, index.get(str(raw["id"])), attachments, by_name, claimed)
            for raw in self._all_comments(key, fields.get("comment"))
        ]
        return TicketRecord(
            local_id=key,
            human_id=key,
            subject=fields.get("summary") or "",
            status=(fields.get("status") or {}).get("name", ""),
            updated_at=parse_timestamp(fields["updated"]),
            requested_at=parse_timestamp(fields["created"]) if fields.get("created") else None,
            requester=self._actor(fields.get("reporter")),
            tags=sorted(self._visible_labels(fields.get("labels") or [])),
            custom_fields=self._custom_read(fields),
            comments=comments,
            shared_uuid=self._shared_uuid(issue),
        )

    def _comment_record(
        self,
        key: str,
        raw: dict[str, Any],
        entry: dict[str, Any] | None,
        attachments: dict[str, dict[str, Any]],
        by_name: dict[str, list[dict[str, Any]]],
        claimed: set[str],
    ) -> CommentRecord:
        comment_id = str(raw["id"])
        body = raw.get("body")
        if self.cloud or isinstance(body, dict):
            text, markup, names = (
                adf_to_text(body),
                adf_to_html(body),
                attachment_names_in_adf(body),
            )
        else:
            text, markup = wiki_to_text(body or ""), wiki_to_html(body or "")
            names = attachment_names_in_wiki(body or "")
        if self.config.jsm:
            public = raw.get("jsdPublic", True) is not False
        else:
            public = raw.get("visibility") is None
        if entry is None and self._is_me(raw.get("author")):
            entry = self._comment_crumb(key, comment_id)  # a crash came between the two writes
        shared_uuid = (entry or {}).get("uuid")
        if entry is not None:
            files = [
                attachments[str(ref)]
                for ref in entry.get("attachments") or []
                if str(ref) in attachments
            ]
        else:  # a person's comment: the files it shows or links, by name
            files = []
            for name in names:
                candidates = [
                    item for item in by_name.get(name, []) if str(item["id"]) not in claimed
                ]
                if candidates:
                    files.append(candidates[-1])
        return CommentRecord(
            local_id=comment_id,
            body=text,
            html_body=markup or None,
            public=public,
            author=self._actor(raw.get("author")),
            authored_at=parse_timestamp(raw["created"]) if raw.get("created") else None,
            attachments=[
                AttachmentRef(
                    filename=item.get("filename", "attachment"),
                    ref=str(item["id"]),
                    content_type=item.get("mimeType"),
                    size=item.get("size"),
                )
                for item in files
            ],
            shared_uuid=shared_uuid,
        )

    def _all_comments(self, key: str, block: dict[str, Any] | None) -> list[dict[str, Any]]:
        """The comments a page brought, plus the rest when Jira truncated the list."""
        comments = list((block or {}).get("comments") or [])
        total = int((block or {}).get("total", len(comments)))
        while len(comments) < total:
            # Not comments(): it cannot start at an offset, and only the missing part is read.
            page = self._json(
                "GET",
                f"issue/{quote(key)}/comment",
                action=f"reading the comments of {key}",
                permission="BROWSE_PROJECTS",
                params={"startAt": len(comments), "maxResults": COMMENT_PAGE},
            )
            more = page.get("comments") or []
            if not more:
                break
            comments += more
            total = int(page.get("total", total))
        return comments

    def _comment_crumb(self, key: str, comment_id: str) -> dict[str, Any] | None:
        try:
            # The library has no call for a comment's properties.
            answer = self._json(
                "GET",
                f"comment/{quote(comment_id)}/properties/{self._crumb_key}",
                action=f"reading the breadcrumb of comment {comment_id} on {key}",
                permission="BROWSE_PROJECTS",
            )
        except _Missing:
            return None
        value = answer.get("value")
        return value if isinstance(value, dict) else None

    def _with_crumb(self, issue: dict[str, Any]) -> dict[str, Any]:
        """A search result with its issue property: Data Center's search does not declare
        ``properties``, so the property is read where it is documented, when it is needed (no
        label to carry the uuid, or a comment by the bridge's account that the index names)."""
        if self.cloud or "properties" in issue:
            return issue
        fields = issue.get("fields") or {}
        comments = (fields.get("comment") or {}).get("comments") or []
        label = self.config.breadcrumb.label and any(
            str(label).startswith(self.config.breadcrumb.label_prefix)
            for label in fields.get("labels") or []
        )
        if label and not any(self._is_me(comment.get("author")) for comment in comments):
            return issue
        key = issue["key"]
        try:
            value = self._issue_property(key, f"reading the bridge property of {key}")
        except _Missing:
            value = None
        return {**issue, "properties": {self._crumb_key: value} if isinstance(value, dict) else {}}

    def _index_comment(self, key: str, comment_id: str, crumb: dict[str, Any]) -> None:
        """Add a comment to the issue property's index (read back with every search page)."""
        action = f"updating the bridge property of {key}"
        try:
            value = self._issue_property(key, action, permission=None) or {}
        except _Missing:
            value = {}
        value.setdefault("comments", {})[comment_id] = crumb
        self._public(
            action,
            "EDIT_ISSUES",
            lambda: self.client.add_issue_property(key, self._crumb_key, value),
        )

    def _issue_property(
        self, key: str, action: str, permission: str | None = "BROWSE_PROJECTS"
    ) -> Any:
        """The value of the issue's bridge property (``_Missing`` when it has none)."""
        found = self._public(
            action, permission, lambda: self.client.issue_property(key, self._crumb_key)
        )
        return found.raw.get("value")

    # --- people ---------------------------------------------------------------------------------

    def _actor(self, user: dict[str, Any] | None) -> Actor | None:
        if not user:
            return None
        ident = user.get("accountId") if self.cloud else user.get("name") or user.get("key")
        if not ident:
            return None
        uuid = self._by_jira.get(ident) or nhd_uuid(self.config.url, "users", ident)
        return Actor(uuid=uuid, name=user.get("displayName") or "")

    def _jira_user_for(self, actor: Actor | None) -> str | None:
        if actor is not None:
            found = self._by_nhd.get(actor.uuid)
            if found is None and actor.name:
                found = self._by_name.get(actor.name.casefold())
            if found is not None:
                return found
        return self.config.fallback_user  # None: leave Jira's default, never clear

    def _user_ref(self, ident: str) -> dict[str, str]:
        return {"accountId": ident} if self.cloud else {"name": ident}

    def _is_me(self, user: dict[str, Any] | None) -> bool:
        if not user:
            return False
        me = self._myself()
        field = "accountId" if self.cloud else "name"
        return bool(user.get(field)) and user.get(field) == me.get(field)

    def _myself(self) -> dict[str, Any]:
        if self._me is None:
            self._me = self._public("signing in (GET /myself)", None, lambda: self.client.myself())
        return self._me

    # --- fields and labels ----------------------------------------------------------------------

    @property
    def _crumb_key(self) -> str:
        return self.config.breadcrumb.property

    def _label(self, shared_uuid: str) -> str:
        return f"{self.config.breadcrumb.label_prefix}{shared_uuid}"

    def _labels(self, tags: list[str], shared_uuid: str | None) -> list[str]:
        labels = sorted({"-".join(tag.split()) for tag in tags if tag.strip()})
        if self.config.breadcrumb.label and shared_uuid:
            labels.append(self._label(shared_uuid))
        return labels

    def _visible_labels(self, labels: list[str]) -> list[str]:
        if not self.config.breadcrumb.label:
            return list(labels)
        prefix = self.config.breadcrumb.label_prefix
        return [label for label in labels if not label.startswith(prefix)]

    def _label_uuid_of(self, key: str) -> str | None:
        """The shared uuid to keep as a label when the labels are replaced."""
        if not self.config.breadcrumb.label:
            return None
        issue = self._issue(key, f"reading issue {key}", "labels")
        return self._shared_uuid(issue)

    def _shared_uuid(self, issue: dict[str, Any]) -> str | None:
        uuid = _crumb(issue, self._crumb_key).get("uuid")
        if uuid:
            return str(uuid)
        if self.config.breadcrumb.label:
            prefix = self.config.breadcrumb.label_prefix
            for label in (issue.get("fields") or {}).get("labels") or []:
                if label.startswith(prefix):
                    return label[len(prefix) :]
        return None

    def _read_fields(self) -> list[str]:
        return [*SYSTEM_FIELDS, "attachment", *(f["id"] for f in self._field_map().values())]

    def _field_map(self) -> dict[str, dict[str, Any]]:
        """The configured field map, each resolved to its Jira field (by id or by name)."""
        if self._fields is None:
            if not self.config.fields:
                self._fields = {}
                return self._fields
            known = self._public("reading the field list", None, lambda: self.client.fields())
            resolved: dict[str, dict[str, Any]] = {}
            for name, wanted in self.config.fields.items():
                by_id = [field for field in known if field.get("id") == wanted]
                by_name = [
                    f for f in known if str(f.get("name", "")).casefold() == wanted.casefold()
                ]
                matches = by_id or by_name
                if len(matches) != 1:
                    ids = ", ".join(field["id"] for field in matches) or "none"
                    raise PermanentError(
                        f"{self.name}: fields.{name}: Jira field {wanted!r} matches {ids}; give "
                        "its id (customfield_…) as listed by GET /rest/api/2/field"
                    )
                resolved[name] = matches[0]
            self._fields = resolved
        return self._fields

    def _custom_values(self, values: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        fields = self._field_map() if values else {}
        for name, value in values.items():
            if name not in fields:
                raise PermanentError(
                    f"{self.name}: custom field {name!r} is not in this instance's fields map; "
                    f"add it (fields: {{{name}: customfield_…}})"
                )
            out[fields[name]["id"]] = self._encode(fields[name], value)
        return out

    def _encode(self, field: dict[str, Any], value: Any) -> Any:
        if value is None:
            return None
        schema = field.get("schema") or {}
        kind, items = schema.get("type"), schema.get("items")
        if kind == "option":
            return {"value": str(value)}
        if kind == "array" and items == "option":
            return [{"value": str(item)} for item in _as_list(value)]
        if kind == "array":
            return [str(item) for item in _as_list(value)]
        if kind == "user":
            return self._user_ref(str(value))
        if kind == "string" and self.cloud and str(schema.get("custom", "")).endswith(":textarea"):
            return text_to_adf(str(value))
        return value

    def _custom_read(self, fields: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, field in self._field_map().items():
            raw = fields.get(field["id"])
            if raw is None:
                continue
            if isinstance(raw, dict) and raw.get("type") == "doc":
                out[name] = adf_to_text(raw)
            elif isinstance(raw, dict):
                out[name] = raw.get("value", raw.get("accountId", raw.get("name")))
            elif isinstance(raw, list):
                out[name] = [
                    item.get("value", item) if isinstance(item, dict) else item for item in raw
                ]
            else:
                out[name] = raw
        return out

    # --- transitions ----------------------------------------------------------------------------

    def _reach_status(self, key: str, current: str, target: str) -> None:
        """Walk the workflow to ``target``: a known path when there is one (breadth-first over
        the transitions seen so far), else explore a status not seen yet."""
        start, goal = current, target.casefold()
        visited = [current.casefold()]
        for _ in range(self.config.max_transition_steps):
            available = self._transitions(key)
            here = current.casefold()
            self._workflow[here] = {t["to"]["name"].casefold(): t for t in available}
            path = _shortest_path(self._workflow, here, goal)
            if path is not None:
                move = self._workflow[here][path[1]]
            else:
                unexplored = [
                    t
                    for t in available
                    if t["to"]["name"].casefold() not in self._workflow
                    and t["to"]["name"].casefold() not in visited
                ]
                if not unexplored:
                    raise PermanentError(
                        f"{self.name}: no transition path from {start!r} to {target!r} for issue "
                        f"{key} (now in {current!r}); transitions seen: {self._workflow_text()}. "
                        "Check the workflow or the agreement's status_map"
                    )
                move = unexplored[0]
            self._transition(key, move)
            current = move["to"]["name"]
            visited.append(current.casefold())
            if current.casefold() == goal:
                return
        raise PermanentError(
            f"{self.name}: {target!r} was not reached from {start!r} within "
            f"{self.config.max_transition_steps} transitions; issue {key} is now in {current!r} "
            "(raise max_transition_steps if the workflow is longer)"
        )

    def _transitions(self, key: str) -> list[dict[str, Any]]:
        transitions = self._public(
            f"reading the transitions of {key}",
            "TRANSITION_ISSUES",
            lambda: self.client.transitions(key, expand="transitions.fields"),
        )
        return list(transitions or [])

    def _transition(self, key: str, move: dict[str, Any]) -> None:
        body: dict[str, Any] = {"transition": {"id": str(move["id"])}}
        resolution = self.config.resolutions.get(move["to"]["name"])
        if resolution and "resolution" in (move.get("fields") or {}):
            body["fields"] = {"resolution": {"name": resolution}}
        # Not transition_issue(): its body differs (the id as a number, always a ``fields``
        # object), and the vendor check and the cassettes hold this request.
        self._json(
            "POST",
            f"issue/{quote(key)}/transitions",
            action=f"moving {key} to {move['to']['name']!r} ({move['name']})",
            permission="TRANSITION_ISSUES",
            body=body,
        )

    def _workflow_text(self) -> str:
        return "; ".join(
            f"{status} → {', '.join(targets) or 'nothing'}"
            for status, targets in self._workflow.items()
        )

    # --- search ---------------------------------------------------------------------------------

    def _project_jql(self) -> str:
        jql = f"project = {_jql_string(self.config.project)}"
        if self.config.jql:
            jql += f" AND ({self.config.jql})"
        return jql

    def _read_jql(self, lower: datetime | None) -> str:
        jql = self._project_jql()
        if lower is not None:
            jql += f" AND updated >= {_jql_string(self._jql_time(lower))}"
        return jql + " ORDER BY updated ASC, key ASC"

    def _jql_time(self, moment: datetime) -> str:
        """``moment`` as JQL reads it: minutes, in the bridge user's time zone; an hour earlier
        when that local time happens twice (autumn DST fold), so the window never shrinks."""
        zone = self._zone()
        local = moment.astimezone(zone)
        naive = local.replace(tzinfo=None)
        first = naive.replace(tzinfo=zone, fold=0).utcoffset()
        second = naive.replace(tzinfo=zone, fold=1).utcoffset()
        if first != second:
            local -= abs((first or timedelta()) - (second or timedelta()))
        return local.strftime("%Y-%m-%d %H:%M")

    def _zone(self) -> ZoneInfo:
        name = self.config.timezone or self._myself().get("timeZone") or "UTC"
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise PermanentError(
                f"{self.name}: unknown time zone {name!r}; set timezone: to the bridge user's "
                "Jira profile time zone (an IANA name such as Europe/Berlin)"
            ) from None

    def _search_cloud(
        self,
        jql: str,
        token: str | None,
        *,
        limit: int | None = None,
        fields: list[str] | None = None,
    ) -> dict[str, Any]:
        # GET /search/jql as the library's enhanced_search_issues(json_result=True) sends it,
        # minus its JQL-name translation, which costs a GET /field on every new client.
        params: dict[str, Any] = {
            "jql": jql,
            "maxResults": limit or self.config.page_size,
            "fields": ",".join(fields or self._read_fields()),
            "properties": self._crumb_key,
        }
        if token:
            params["nextPageToken"] = token
        # Not enhanced_search_issues(): it requests pages until ``maxResults`` issues are in,
        # and the reader needs each answer (its nextPageToken) to keep its cursor.
        return self._json(
            "GET",
            "search/jql",
            action="searching issues",
            permission="BROWSE_PROJECTS",
            params=params,
        )

    def _search_dc(
        self,
        jql: str,
        offset: int,
        *,
        limit: int | None = None,
        fields: list[str] | None = None,
    ) -> dict[str, Any]:
        # No ``properties``: Data Center's /search does not declare it (see _with_crumb).
        params = {
            "jql": jql,
            "startAt": offset,
            "maxResults": limit or self.config.page_size,
            "fields": ",".join(fields or self._read_fields()),
        }
        # Not search_issues(): it adds validateQuery and requests further pages by itself, and
        # the reader moves the JQL bound between pages (see the module docstring).
        return self._json(
            "GET", "search", action="searching issues", permission="BROWSE_PROJECTS", params=params
        )

    def _project(self) -> dict[str, Any]:
        project = self._public(
            f"reading project {self.config.project}",
            "BROWSE_PROJECTS",
            lambda: self.client.project(self.config.project),
        )
        return dict(project.raw)

    def _issue_type(self, project: dict[str, Any]) -> dict[str, Any] | None:
        for kind in project.get("issueTypes") or []:
            if str(kind.get("name", "")).casefold() == self.config.issue_type.casefold():
                return kind
        return None

    def _parse_cursor(self, cursor: str | None) -> datetime | None:
        if cursor is None:
            return None
        try:
            return parse_timestamp(cursor)
        except ValueError:
            raise PermanentError(
                f"invalid cursor {cursor!r} for Jira instance {self.name}: expected a timestamp "
                "as returned in ChangePage.cursor; reset the agreement's cursor"
            ) from None

    # --- attachments ----------------------------------------------------------------------------

    def _upload(self, key: str, upload: AttachmentUpload) -> str:
        """Stream one file to Jira: copied to a spooled file (memory up to 1 MiB, then disk) with
        the size limit enforced while copying, then sent as a streamed multipart body."""
        limit = self.config.max_attachment_bytes
        with tempfile.SpooledTemporaryFile(max_size=COPY_CHUNK_BYTES) as spool:
            with upload.open() as source:
                copied = 0
                while chunk := source.read(COPY_CHUNK_BYTES):
                    copied += len(chunk)
                    if limit is not None and copied > limit:
                        raise PermanentError(_too_large(upload.filename, limit))
                    spool.write(chunk)
            spool.seek(0)
            content_type = upload.content_type or "application/octet-stream"
            from requests_toolbelt import MultipartEncoder

            encoder = MultipartEncoder(fields={"file": (upload.filename, spool, content_type)})
            # Not add_attachment(): it labels every file application/octet-stream and refuses an
            # empty one; this sends the file's own content type.
            url = self.client._get_url(f"issue/{quote(key)}/attachments")
            with self._errors(f"attaching {upload.filename!r} to {key}", "CREATE_ATTACHMENTS"):
                response = self.client._session.post(
                    url,
                    data=encoder,
                    headers={"Content-Type": encoder.content_type, "X-Atlassian-Token": "no-check"},
                )
        answer = response.json()
        item = answer[0] if isinstance(answer, list) else answer
        return str(item["id"])

    # --- HTTP -----------------------------------------------------------------------------------

    def _json(
        self,
        method: str,
        path: str,
        *,
        action: str,
        permission: str | None = None,
        params: dict[str, Any] | None = None,
        body: Any = None,
    ) -> Any:
        # The library's session and URL, for the requests its public calls cannot send as they
        # are (each caller says why); the errors and retries stay the library's and ours.
        url = self.client._get_url(path)
        data = json.dumps(body) if body is not None else None
        with self._errors(action, permission):
            response = self.client._session.request(method, url, params=params, data=data)
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise TransientError(
                f"{self.name}: {action}: Jira answered HTTP {response.status_code} with a body "
                "that is not JSON (a proxy or maintenance page?)"
            ) from None

    def _issue(
        self, key: str, action: str, fields: str | None = None, *, crumb: bool = True
    ) -> Any:
        """``GET /issue/{key}`` with only these fields (default: what a read needs) and, with
        ``crumb``, the bridge property in the answer."""
        fields = fields or ",".join(self._read_fields())
        properties = self._crumb_key if crumb else None
        found = self._public(
            action,
            "BROWSE_PROJECTS",
            lambda: self.client.issue(key, fields=fields, properties=properties),
        )
        return found.raw

    def _public(self, action: str, permission: str | None, call: Callable[[], Any]) -> Any:
        """A call of the library's public API, failing as :meth:`_json` does."""
        with self._errors(action, permission):
            try:
                return call()
            except ValueError:  # the library's json_loads re-raises a body that is not JSON
                raise TransientError(
                    f"{self.name}: {action}: Jira answered with a body that is not JSON (a proxy "
                    "or maintenance page?)"
                ) from None

    @contextmanager
    def _errors(self, action: str, permission: str | None = None) -> Iterator[None]:
        """Jira's failures in the contract's terms, with messages for a person."""
        import requests
        from jira import JIRAError

        try:
            yield
        except JIRAError as error:
            raise self._translate(error, action, permission) from None
        except requests.Timeout:
            raise TransientError(f"{self.name}: {action}: Jira did not answer in time") from None
        except requests.ConnectionError as error:
            reason = type(error).__name__
            raise TransientError(
                f"{self.name}: {action}: cannot reach {self.config.url} ({reason})"
            ) from None

    def _translate(self, error: JIRAError, action: str, permission: str | None) -> AdapterError:
        status = error.status_code or 0
        response = error.response
        headers = response.headers if response is not None else {}
        said = (error.text or "").strip()
        detail = f": {said}" if said else ""
        where = f"{self.name}: {action}"
        if status in (429, 503):
            retry_after = parse_retry_after(headers.get("Retry-After"))
            wait = f"; retry after {retry_after:.0f}s" if retry_after is not None else ""
            why = "rate limited" if status == 429 else "unavailable"
            return TransientError(
                f"{where}: Jira is {why} (HTTP {status}){wait}", retry_after=retry_after
            )
        if is_retryable_status(status) or status == 0:
            return TransientError(f"{where}: Jira failed (HTTP {status}){detail}")
        if status == 401:
            return PermanentError(
                f"{where}: Jira rejected the credentials (HTTP 401). {self._auth_hint()}"
            )
        if status == 403:
            needed = PERMISSIONS.get(permission or "", "the needed")
            return PermanentError(
                f"{where}: permission denied (HTTP 403){detail}. The bridge user needs the "
                f"'{needed}' permission in project {self.config.project}"
            )
        if status == 404:
            return _Missing(f"{where}: not found (HTTP 404){detail}")
        return PermanentError(f"{where}: Jira refused it (HTTP {status}){detail}")

    def _auth_hint(self) -> str:
        if self.cloud:
            return (
                "Check email and api_token (create one at "
                "https://id.atlassian.com/manage-profile/security/api-tokens)"
            )
        return "Check personal_access_token (or username/password) and that the account is active"


# --- helpers ------------------------------------------------------------------------------------


class _LimitedDownload(io.RawIOBase):
    """An attachment's bytes straight from the HTTP response, stopped at the size limit."""

    def __init__(self, response: requests.Response, filename: str, limit: int | None):
        self._response = response
        self._raw = response.raw
        self._raw.decode_content = True
        self._filename = filename
        self._limit = limit
        self._read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._raw.read(len(buffer))
        self._read += len(data)
        if self._limit is not None and self._read > self._limit:
            raise PermanentError(_too_large(self._filename, self._limit))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._response.close()
        super().close()


def _shortest_path(
    graph: dict[str, dict[str, dict[str, Any]]], start: str, goal: str
) -> list[str] | None:
    queue: deque[list[str]] = deque([[start]])
    seen = {start}
    while queue:
        path = queue.popleft()
        for target in graph.get(path[-1], {}):
            if target in seen:
                continue
            if target == goal:
                return [*path, target]
            seen.add(target)
            queue.append([*path, target])
    return None


def _crumb(issue: dict[str, Any], key: str) -> dict[str, Any]:
    value = (issue.get("properties") or {}).get(key)
    return value if isinstance(value, dict) else {}


def _updated(issue: dict[str, Any]) -> str:
    return str(issue["fields"]["updated"])


def _floor_minute(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(second=0, microsecond=0)


def _cursor_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def _jql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _one_line(text: str) -> str:
    return " ".join(text.split())[:255]


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple | set) else [value]


def _too_large(filename: str, limit: int) -> str:
    return (
        f"attachment {filename!r} is larger than this Jira instance's limit of {limit} bytes "
        "(max_attachment_bytes)"
    )
