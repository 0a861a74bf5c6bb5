"""A small Jira site on loopback, used only to (re)generate the cassettes in tests/cassettes/jira/.

Nothing here runs in a normal test run: the tests replay cassettes. With ``NHD_JIRA_RECORD=sim``
the same tests run against this simulator over real HTTP, and vcrpy records the traffic, which is
how the committed cassettes were made. Every response follows Atlassian's documented shapes for
Jira Cloud REST v3 and Jira Data Center REST v2, checked field by field against real recordings
(the public Jira Cloud and Jira Server 7.12 traffic in ``../shared/reference-recordings/jira``;
``tests/jira/test_cassette_shapes.py`` keeps the cassettes to those shapes):

- user objects: ``accountId``/``accountType`` on Cloud; ``name``/``key`` on Data Center;
- timestamps in the user's time zone, ``2019-02-27T10:47:36.123+0100``;
- an issue's comment block is ``{comments, self, maxResults, total, startAt}`` on Cloud and has no
  ``self`` on Data Center; ``/field`` entries have a ``key`` on Cloud only;
- transitions carry ``hasScreen``/``isGlobal``/… on Cloud and ``opsbarSequence`` on Data Center;
- ``204`` with an empty body for edits (``application/json``) and transitions (``text/html``);
- a JSON *array* from an attachment upload, which needs ``X-Atlassian-Token: no-check``;
- errors as ``{"errorMessages": [...], "errors": {...}}``; a 401 as Jira sends it (JSON
  ``{"message", "status-code"}`` on Data Center, plain text on Cloud) with ``WWW-Authenticate``;
- the response headers of each deployment (``Atl-Traceid``/``X-Arequestid``/``X-Ratelimit-*``
  behind Atlassian's edge on Cloud; ``X-AREQUESTID``/``X-AUSERNAME``/``X-ASEN`` and a session,
  which the harness drops, on Data Center), and a 429's ``Retry-After`` with the rate-limit
  headers each deployment documents.

The simulated clock moves 7.125 seconds per write, so recordings are deterministic.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import uuid
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlparse
from zoneinfo import ZoneInfo

CLOUD_SITE = "https://nhd-test.atlassian.net"
DC_SITE = "https://jira.nhd-test.example"

STATUSES = {
    "To Do": ("10000", 2, "new", "blue-gray", "To Do"),
    "In Progress": ("3", 4, "indeterminate", "yellow", "In Progress"),
    "Done": ("10001", 3, "done", "green", "Done"),
}
# The project's workflow: no direct way from To Do to Done.
WORKFLOW = {
    "To Do": [("11", "Start progress", "In Progress")],
    "In Progress": [("21", "Stop progress", "To Do"), ("31", "Resolve", "Done")],
    "Done": [("41", "Reopen", "To Do")],
}
CUSTOM_FIELDS = {
    "customfield_10050": ("Severity", {"type": "option", "custom": "select", "customId": 10050}),
    "customfield_10051": ("Region", {"type": "string", "custom": "textfield", "customId": 10051}),
}
SEVERITY_OPTIONS = {"low": "10061", "medium": "10062", "high": "10063"}  # value → option id
SYSTEM_SCHEMAS = {
    "summary": {"type": "string", "system": "summary"},
    "status": {"type": "status", "system": "status"},
    "labels": {"type": "array", "items": "string", "system": "labels"},
    "reporter": {"type": "user", "system": "reporter"},
    "created": {"type": "datetime", "system": "created"},
    "updated": {"type": "datetime", "system": "updated"},
    "resolution": {"type": "resolution", "system": "resolution"},
    "comment": {"type": "comments-page", "system": "comment"},
    "attachment": {"type": "array", "items": "attachment", "system": "attachment"},
    "issuetype": {"type": "issuetype", "system": "issuetype"},
    "project": {"type": "project", "system": "project"},
}
# Field id → (name, schema, operations) on a create, edit or transition screen.
FIELD_META: dict[str, tuple[str, dict[str, Any], list[str]]] = {
    "summary": ("Summary", SYSTEM_SCHEMAS["summary"], ["set"]),
    "issuetype": ("Issue Type", SYSTEM_SCHEMAS["issuetype"], []),
    "project": ("Project", SYSTEM_SCHEMAS["project"], ["set"]),
    "reporter": ("Reporter", SYSTEM_SCHEMAS["reporter"], ["set"]),
    "labels": ("Labels", SYSTEM_SCHEMAS["labels"], ["add", "set", "remove"]),
    "resolution": ("Resolution", SYSTEM_SCHEMAS["resolution"], ["set"]),
    "customfield_10050": (
        "Severity",
        {
            "type": "option",
            "custom": "com.atlassian.jira.plugin.system.customfieldtypes:select",
            "customId": 10050,
        },
        ["set"],
    ),
    "customfield_10051": (
        "Region",
        {
            "type": "string",
            "custom": "com.atlassian.jira.plugin.system.customfieldtypes:textfield",
            "customId": 10051,
        },
        ["set"],
    ),
}
ISSUE_TYPES = {  # name → (id, description, avatar id)
    "Task": ("10002", "A small, distinct piece of work.", 10318),
    "Bug": ("10004", "A problem or error.", 10303),
}


@dataclass
class User:
    account_id: str
    name: str
    key: str
    display: str
    email: str


BRIDGE = User(
    "5f1a9c0e8b2d4a0069d1e001", "nhd-bridge", "JIRAUSER10100", "NHD Bridge", "bridge@example.com"
)
ADA = User("5f1a9c0e8b2d4a0069d1e002", "ada", "JIRAUSER10101", "Ada Lovelace", "ada@example.com")
CAROL = User(
    "5f1a9c0e8b2d4a0069d1e003", "carol", "JIRAUSER10102", "Carol Engineer", "carol@example.com"
)
USERS = [BRIDGE, ADA, CAROL]
# What Data Center's /mypermissions answers with no filter: every permission (a selection here).
DC_PERMISSIONS = [
    "BROWSE_PROJECTS",
    "CREATE_ISSUES",
    "EDIT_ISSUES",
    "TRANSITION_ISSUES",
    "ADD_COMMENTS",
    "CREATE_ATTACHMENTS",
    "ASSIGN_ISSUES",
    "DELETE_ISSUES",
]


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    status: int
    times: int = 1


@dataclass
class Issue:
    id: int
    key: str
    fields: dict[str, Any]
    created: datetime
    updated: datetime
    status: str = "To Do"
    resolution: str | None = None
    comments: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[dict[str, Any]] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    comment_properties: dict[str, dict[str, Any]] = field(default_factory=dict)


class JiraSite:
    """State of one simulated site; ``serve()`` exposes it on 127.0.0.1."""

    def __init__(self, deployment: str, *, comments_in_search: int = 20):
        self.cloud = deployment == "cloud"
        self.site = CLOUD_SITE if self.cloud else DC_SITE
        self.version = "3" if self.cloud else "2"
        self.zone = ZoneInfo("Europe/Berlin" if self.cloud else "America/New_York")
        self.now = datetime(2025, 3, 3, 9, 0, 0, tzinfo=UTC)
        self.issues: dict[str, Issue] = {}
        self.attachment_bytes: dict[str, bytes] = {}
        self.next_issue = 10000
        self.next_comment = 10100
        self.next_attachment = 10200
        self.request_number = 0
        self.request: tuple[str, str] = ("GET", "")  # method and path being answered
        self.faults: list[Fault] = []
        self.comments_in_search = comments_in_search
        # Search is eventually consistent (Cloud's /search/jql says so; a Data Center cluster
        # indexes on each node): a new issue stays out of the next ``index_lag`` searches.
        self.index_lag = 0
        self.unindexed: dict[str, int] = {}  # key → searches it is still missing from
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # --- test controls ------------------------------------------------------------------------

    def fail(self, method: str, path: str, status: int, times: int = 1) -> None:
        self.faults.append(Fault(method, re.compile(path), status, times))

    def human_comment(
        self, key: str, body: Any, *, author: User = CAROL, visibility: dict | None = None
    ) -> str:
        """A comment a person wrote in Jira's UI (not through the API the bridge uses)."""
        with self.lock:
            return self._add_comment(self.issues[key], body, author, visibility, [])

    def human_transition(self, key: str, status: str) -> None:
        with self.lock:
            issue = self.issues[key]
            issue.status = status
            self._touch(issue)

    def serve(self) -> str:
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with site.lock:
                    status, headers, payload = site.handle(
                        self.command, self.path, dict(self.headers), body
                    )
                self.send_response_only(status)  # no Server/Date of http.server's own
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- dispatch -----------------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        self.request_number += 1
        url = urlparse(target)
        path = unquote(url.path)
        self.request = (method, path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        for fault in self.faults:
            if fault.times and fault.method == method and fault.path.search(path):
                fault.times -= 1
                return self._fault(fault.status)
        if not any(k.lower() == "authorization" for k in headers):
            return self._fault(401)
        api = f"/rest/api/{self.version}/"
        try:
            if path.startswith("/secure/attachment/") and not self.cloud:
                return self._download(path.split("/")[3])
            if not path.startswith(api):
                return self._error(404, "Not found")
            route = path[len(api) :]
            data = json.loads(body) if body and "json" in headers.get("Content-Type", "") else None
            return self._route(method, route, query, data, headers, body)
        except KeyError:
            # Jira's words for an unknown key or id (and for an issue the user may not browse).
            return self._error(404, "Issue does not exist or you do not have permission to see it.")

    def _route(self, method, route, query, data, headers, body):
        parts = route.split("/")
        if route == "serverInfo":
            return self._ok(self._server_info())
        if route == "myself":
            return self._ok(self._user(BRIDGE, full=True))
        if route == "field":
            return self._ok(self._field_list())
        if route == "mypermissions":
            # Cloud requires ``permissions``; Data Center does not declare it and returns all.
            wanted = query["permissions"].split(",") if self.cloud else DC_PERMISSIONS
            return self._ok(
                {
                    "permissions": {
                        key: {
                            "id": str(n),
                            "key": key,
                            "name": key.replace("_", " ").title(),
                            "type": "PROJECT",
                            "description": "",
                            "havePermission": True,
                        }
                        for n, key in enumerate(wanted, 10)
                    }
                }
            )
        if parts[0] == "project" and len(parts) == 2:
            return self._ok(self._project())
        if parts[0] == "project" and parts[2:] == ["statuses"]:
            return self._ok(self._project_statuses())
        if route.startswith("issue/createmeta/"):
            return self._ok(self._createmeta())
        search = "search/jql" if self.cloud else "search"  # the other one is not declared
        if route == search and method == "GET":
            return self._ok(self._search(route, query))
        if parts[0] == "comment" and len(parts) == 4 and parts[2] == "properties":
            # GET/PUT /comment/{commentId}/properties/{propertyKey}, where Jira documents them.
            stored = self._comment_properties(parts[1])
            if method == "PUT":
                created = parts[3] not in stored
                stored[parts[3]] = data
                return (201 if created else 200), self._headers(), b""
            if parts[3] not in stored:
                return self._error(404, f"The property with key '{parts[3]}' does not exist.")
            return self._ok({"key": parts[3], "value": stored[parts[3]]})
        if route == "issue" and method == "POST":
            return self._create(data)
        if parts[0] == "issue" and len(parts) >= 2:
            issue = self._issue(parts[1])
            rest = parts[2:]
            if not rest and method == "GET":
                return self._ok(
                    self._issue_json(issue, query.get("fields"), query.get("properties"))
                )
            if not rest and method == "PUT":
                return self._edit(issue, data)
            if rest == ["editmeta"]:
                return self._ok(self._editmeta())
            if rest == ["transitions"] and method == "GET":
                return self._ok(self._transitions(issue, query))
            if rest == ["transitions"] and method == "POST":
                return self._transition(issue, data)
            if rest == ["comment"] and method == "GET":
                return self._ok(self._comment_page(issue, query))
            if rest == ["comment"] and method == "POST":
                return self._post_comment(issue, data)
            if len(rest) == 2 and rest[0] == "properties":
                if method == "PUT":
                    created = rest[1] not in issue.properties
                    issue.properties[rest[1]] = data
                    return (201 if created else 200), self._headers(), b""
                if rest[1] not in issue.properties:
                    return self._error(404, f"The property with key '{rest[1]}' does not exist.")
                return self._ok({"key": rest[1], "value": issue.properties[rest[1]]})
            if rest == ["attachments"] and method == "POST":
                if not any(
                    k.lower() == "x-atlassian-token" and v == "no-check" for k, v in headers.items()
                ):
                    # Jira's XSRF check refuses a multipart POST without the header.
                    headers_out = self._headers()
                    headers_out["Content-Type"] = "text/plain;charset=UTF-8"
                    return 403, headers_out, b"XSRF check failed"
                return self._upload(issue, headers, body)
        if parts[:2] == ["attachment", "content"] and self.cloud:
            return self._download(parts[2])
        return self._error(404, "Not found")

    # --- writes -------------------------------------------------------------------------------

    def _tick(self) -> datetime:
        self.now += timedelta(seconds=7, milliseconds=125)  # real timestamps have milliseconds
        return self.now

    def _touch(self, issue: Issue) -> None:
        issue.updated = self._tick()

    def _create(self, data: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        fields = dict(data["fields"])
        if not fields.get("summary"):
            return self._error(400, None, {"summary": "You must specify a summary of the issue."})
        if errors := _field_errors(fields):
            return self._error(400, None, errors)
        self.next_issue += 1
        number = len(self.issues) + 1
        key = f"{fields['project']['key']}-{number}"
        now = self._tick()
        reporter = BRIDGE
        if "reporter" in fields:
            ident = fields.pop("reporter")
            reporter = next(
                u for u in USERS if ident in ({"accountId": u.account_id}, {"name": u.name})
            )
        stored = {
            "summary": fields["summary"],
            "labels": sorted(fields.get("labels") or []),
            "reporter": reporter,
            **{k: v for k, v in fields.items() if k.startswith("customfield_")},
        }
        issue = Issue(self.next_issue, key, stored, now, now)
        for prop in data.get("properties") or []:
            issue.properties[prop["key"]] = prop["value"]
        self.issues[key] = issue
        if self.index_lag:
            self.unindexed[key] = self.index_lag
        return (
            201,
            self._headers(),
            _json({"id": str(issue.id), "key": key, "self": f"{self._api()}issue/{issue.id}"}),
        )

    def _edit(self, issue: Issue, data: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        if errors := _field_errors(data["fields"]):
            return self._error(400, None, errors)
        for name, value in data["fields"].items():
            if name == "labels":
                value = sorted(value)
            issue.fields[name] = value
        self._touch(issue)
        return 204, self._headers(), b""  # Cloud answers an edit with a JSON content type

    def _transition(self, issue: Issue, data: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        wanted = str(data["transition"]["id"])
        for tid, _name, target in WORKFLOW[issue.status]:
            if tid == wanted:
                issue.status = target
                resolution = ((data.get("fields") or {}).get("resolution") or {}).get("name")
                issue.resolution = resolution if target == "Done" else None
                self._touch(issue)
                return 204, self._headers(content_type="text/html;charset=UTF-8"), b""
        return self._error(
            400,
            f"Transition id '{wanted}' is not valid for this issue.",
        )

    def _post_comment(
        self, issue: Issue, data: dict[str, Any]
    ) -> tuple[int, dict[str, str], bytes]:
        comment_id = self._add_comment(
            issue, data["body"], BRIDGE, data.get("visibility"), data.get("properties") or []
        )
        comment = next(c for c in issue.comments if c["id"] == comment_id)
        return 201, self._headers(), _json(self._comment_json(issue, comment))

    def _add_comment(self, issue, body, author, visibility, properties) -> str:
        self.next_comment += 1
        now = self._tick()
        comment = {"id": str(self.next_comment), "body": body, "author": author, "created": now}
        if visibility:
            comment["visibility"] = dict(visibility)
        issue.comments.append(comment)
        issue.comment_properties[comment["id"]] = {p["key"]: p["value"] for p in properties}
        issue.updated = now
        return comment["id"]

    def _upload(self, issue: Issue, headers: dict[str, str], body: bytes):
        content_type = next(v for k, v in headers.items() if k.lower() == "content-type")
        boundary = content_type.split("boundary=")[1].strip('"').encode()
        parts = []
        for chunk in body.split(b"--" + boundary)[1:-1]:
            head, _, payload = chunk[2:].partition(b"\r\n\r\n")
            head_text = head.decode()
            if not re.search(r'\bname="file"', head_text):
                continue  # Jira reads the parts named "file" and nothing else
            filename = re.search(r'filename="([^"]*)"', head_text)[1]
            part_type = re.search(r"Content-Type: (\S+)", head_text, re.I)
            parts.append(
                (filename, part_type[1] if part_type else "application/octet-stream", payload[:-2])
            )
        created = []
        for filename, part_type, payload in parts:
            self.next_attachment += 1
            attachment_id = str(self.next_attachment)
            self.attachment_bytes[attachment_id] = payload
            item = {
                "id": attachment_id,
                "filename": filename,
                "author": BRIDGE,
                "created": self._tick(),
                "size": len(payload),
                "mimeType": part_type,
            }
            issue.attachments.append(item)
            created.append(self._attachment_json(item))
        issue.updated = self.now
        return 200, self._headers(), _json(created)

    def _download(self, attachment_id: str):
        payload = self.attachment_bytes[attachment_id]
        item = next(
            a for i in self.issues.values() for a in i.attachments if a["id"] == attachment_id
        )
        headers = self._headers(content_type=item["mimeType"])
        headers["Content-Disposition"] = "attachment; filename*=UTF-8''" + quote(item["filename"])
        return 200, headers, payload

    # --- reads --------------------------------------------------------------------------------

    def _search(self, route: str, query: dict[str, str]) -> dict[str, Any]:
        matches, order = self._jql(query["jql"])
        matches = [issue for issue in matches if issue.key not in self.unindexed]
        for key in list(self.unindexed):
            self.unindexed[key] -= 1
            if not self.unindexed[key]:
                del self.unindexed[key]
        matches.sort(key=order)
        size = int(query.get("maxResults", 50))
        fields = query.get("fields")
        # Only Cloud's /search/jql declares ``properties``; Data Center's /search ignores it.
        properties = query.get("properties") if self.cloud else None
        if route == "search":  # Data Center: startAt paging
            start = int(query.get("startAt", 0))
            page = matches[start : start + size]
            return {
                "expand": "schema,names",
                "startAt": start,
                "maxResults": size,
                "total": len(matches),
                "issues": [self._issue_json(i, fields, properties, search=True) for i in page],
            }
        start = (
            int(base64.urlsafe_b64decode(query["nextPageToken"]).split(b":")[1])
            if query.get("nextPageToken")
            else 0
        )
        page = matches[start : start + size]
        result: dict[str, Any] = {
            "issues": [self._issue_json(i, fields, properties, search=True) for i in page]
        }
        if start + size < len(matches):
            token = f"offset:{start + size}:{zlib.crc32(query['jql'].encode()):08x}"
            result["nextPageToken"] = base64.urlsafe_b64encode(token.encode()).decode()
            result["isLast"] = False
        else:
            result["isLast"] = True
        return result

    def _jql(self, jql: str):
        text, _, order_text = jql.partition(" ORDER BY ")
        clauses = [c.strip() for c in text.split(" AND ")]
        issues = list(self.issues.values())
        for clause in clauses:
            if m := re.fullmatch(r'project = "([^"]+)"', clause):
                issues = [i for i in issues if i.key.split("-")[0] == m[1]]
            elif m := re.fullmatch(r'updated >= "(\d{4}-\d{2}-\d{2} \d{2}:\d{2})"', clause):
                bound = datetime.strptime(m[1], "%Y-%m-%d %H:%M").replace(tzinfo=self.zone)
                issues = [i for i in issues if i.updated >= bound]
            elif m := re.fullmatch(r'labels = "([^"]+)"', clause):
                issues = [i for i in issues if m[1] in i.fields["labels"]]
            elif m := re.fullmatch(r"created >= -(\d+)d", clause):
                bound = self.now - timedelta(days=int(m[1]))
                issues = [i for i in issues if i.created >= bound]
            else:
                raise ValueError(f"the simulator does not understand JQL clause {clause!r}")
        if order_text.startswith("key DESC"):
            return issues, lambda i: -int(i.key.rsplit("-", 1)[1])
        if order_text.startswith("created DESC"):
            return issues, lambda i: (-i.created.timestamp(), -i.id)
        return issues, lambda i: (i.updated, i.id)

    def _issue_json(
        self, issue: Issue, fields: str | None, properties: str | None, *, search: bool = False
    ):
        wanted = set((fields or "*all").split(","))
        everything = "*all" in wanted or "*navigable" in wanted
        values: dict[str, Any] = {
            "summary": issue.fields["summary"],
            "status": self._status(issue.status),
            "labels": issue.fields["labels"],
            "reporter": self._user(issue.fields["reporter"]),
            "created": self._time(issue.created),
            "updated": self._time(issue.updated),
            "resolution": self._resolution(issue.resolution),
            "comment": self._comment_block(issue, search),
            "attachment": [self._attachment_json(a) for a in issue.attachments],
            "issuetype": self._issue_type("Task"),
            "project": self._project(short=True),
        }
        for field_id in CUSTOM_FIELDS:
            values[field_id] = issue.fields.get(field_id)
        if issue.fields.get("customfield_10050") is not None:
            values["customfield_10050"] = self._option(issue.fields["customfield_10050"]["value"])
        chosen = {k: v for k, v in values.items() if everything or k in wanted}
        if search:  # the issues of a search page
            expand = "operations,versionedRepresentations,editmeta,changelog,renderedFields"
        else:  # GET /issue/{key}
            expand = (
                "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"
            )
            if self.cloud:  # the site runs Jira Service Management: its request type field
                expand += ",customfield_10010.requestTypePractice"
        result: dict[str, Any] = {
            "expand": expand,
            "id": str(issue.id),
            "self": f"{self._api()}issue/{issue.id}",
            "key": issue.key,
            "fields": chosen,
        }
        if properties:
            result["properties"] = {
                k: issue.properties[k] for k in properties.split(",") if k in issue.properties
            }
        return result

    def _comment_properties(self, comment_id: str) -> dict[str, Any]:
        for issue in self.issues.values():
            if comment_id in issue.comment_properties:
                return issue.comment_properties[comment_id]
        raise KeyError(comment_id)  # answered as Jira's 404

    def _comment_block(self, issue: Issue, search: bool) -> dict[str, Any]:
        shown = issue.comments[: self.comments_in_search] if search else issue.comments
        block: dict[str, Any] = {"comments": [self._comment_json(issue, c) for c in shown]}
        if self.cloud:  # Jira Server/Data Center has no self link on the block
            block["self"] = f"{self._api()}issue/{issue.id}/comment"
        block.update({"maxResults": len(shown), "total": len(issue.comments), "startAt": 0})
        return block

    def _comment_page(self, issue: Issue, query: dict[str, str]) -> dict[str, Any]:
        start = int(query.get("startAt", 0))
        size = int(query.get("maxResults", 5000))
        page = issue.comments[start : start + size]
        return {
            "startAt": start,
            "maxResults": size,
            "total": len(issue.comments),
            "comments": [self._comment_json(issue, c) for c in page],
        }

    def _comment_json(self, issue: Issue, comment: dict[str, Any]) -> dict[str, Any]:
        result = {
            "self": f"{self._api()}issue/{issue.id}/comment/{comment['id']}",
            "id": comment["id"],
            "author": self._user(comment["author"]),
            "body": comment["body"],
            "updateAuthor": self._user(comment["author"]),
            "created": self._time(comment["created"]),
            "updated": self._time(comment["created"]),
        }
        if "visibility" in comment:
            visibility = {k: comment["visibility"][k] for k in ("type", "value")}
            if self.cloud:  # a role's name; a group's id (Cloud groups are known by id)
                visibility["identifier"] = (
                    visibility["value"]
                    if visibility["type"] == "role"
                    else str(uuid.uuid5(uuid.NAMESPACE_URL, f"group:{visibility['value']}"))
                )
            result["visibility"] = visibility
        if self.cloud:  # Cloud sends it on every comment, JSM project or not
            internal = issue.comment_properties.get(comment["id"], {}).get("sd.public.comment")
            result["jsdPublic"] = not (internal or {}).get("internal", False)
        return result

    def _transitions(self, issue: Issue, query: dict[str, str]) -> dict[str, Any]:
        with_fields = "transitions.fields" in query.get("expand", "")
        result = []
        for sequence, (tid, name, target) in enumerate(WORKFLOW[issue.status], 1):
            item: dict[str, Any] = {"id": tid, "name": name}
            if self.cloud:
                item["to"] = self._status(target)
                item.update(
                    {
                        "hasScreen": target == "Done",
                        "isGlobal": False,
                        "isInitial": False,
                        "isAvailable": True,
                        "isConditional": False,
                        "isLooped": False,
                    }
                )
            else:  # Data Center's TransitionBean: no hasScreen/isGlobal/…, an opsbar position
                item["opsbarSequence"] = sequence * 10
                item["to"] = self._status(target)
            if with_fields:
                item["fields"] = (
                    {"resolution": self._field_meta("resolution", required=True)}
                    if target == "Done"
                    else {}
                )
            result.append(item)
        return {"expand": "transitions", "transitions": result}

    def _field_meta(
        self, field_id: str, *, required: bool = False, with_field_id: bool = False
    ) -> dict[str, Any]:
        """One field of a screen (createmeta, editmeta, a transition's screen)."""
        name, schema, operations = FIELD_META[field_id]
        meta: dict[str, Any] = {"required": required, "schema": dict(schema), "name": name}
        if self.cloud:
            meta["key"] = field_id
        if with_field_id or not self.cloud:
            meta["fieldId"] = field_id
        meta.update({"hasDefaultValue": False, "operations": list(operations)})
        if field_id == "resolution":
            meta["allowedValues"] = [self._resolution(r) for r in ("Done", "Won't Do")]
        elif field_id == "customfield_10050":
            meta["allowedValues"] = [self._option(value) for value in SEVERITY_OPTIONS]
        elif field_id == "issuetype":
            meta["allowedValues"] = [self._issue_type("Task")]
        elif field_id == "project":
            meta["allowedValues"] = [self._project(short=True)]
        return meta

    def _editmeta(self) -> dict[str, Any]:
        ids = ["summary", "labels", "reporter", *CUSTOM_FIELDS]
        return {"fields": {key: self._field_meta(key, required=key == "summary") for key in ids}}

    def _createmeta(self) -> dict[str, Any]:
        ids = ["summary", "issuetype", "project", "reporter", "labels", *CUSTOM_FIELDS]
        items = [
            self._field_meta(
                key, required=key in ("summary", "issuetype", "project"), with_field_id=True
            )
            for key in ids
        ]
        if self.cloud:  # PageOfCreateMetaIssueTypeWithField
            return {"maxResults": 200, "startAt": 0, "total": len(items), "fields": items}
        return {
            "maxResults": 200,
            "startAt": 0,
            "total": len(items),
            "isLast": True,
            "values": items,
        }

    def _field_list(self) -> list[dict[str, Any]]:
        # (id, name, orderable, navigable, searchable, clause names) as Jira lists them.
        system = [
            ("issuekey", "Key", False, True, False, ["id", "issue", "issuekey", "key"]),
            ("summary", "Summary", True, True, True, ["summary"]),
            ("status", "Status", False, True, True, ["status"]),
            ("labels", "Labels", True, True, True, ["labels"]),
            ("reporter", "Reporter", True, True, True, ["reporter"]),
            ("created", "Created", False, True, True, ["created", "createdDate"]),
            ("updated", "Updated", False, True, True, ["updated", "updatedDate"]),
            ("resolution", "Resolution", True, True, True, ["resolution"]),
            ("comment", "Comment", True, False, True, ["comment"]),
            ("attachment", "Attachment", True, False, True, ["attachments"]),
        ]
        listing = []
        for fid, name, orderable, navigable, searchable, clauses in system:
            entry: dict[str, Any] = {"id": fid}
            if self.cloud:  # Jira Server/Data Center lists no key
                entry["key"] = fid
            entry.update(
                {
                    "name": name,
                    "custom": False,
                    "orderable": orderable,
                    "navigable": navigable,
                    "searchable": searchable,
                    "clauseNames": clauses,
                }
            )
            if fid in SYSTEM_SCHEMAS:  # the issue key has no schema
                entry["schema"] = dict(SYSTEM_SCHEMAS[fid])
            listing.append(entry)
        for fid, (name, _schema) in CUSTOM_FIELDS.items():
            entry = {"id": fid}
            if self.cloud:
                entry["key"] = fid
            entry.update(
                {
                    "name": name,
                    "custom": True,
                    "orderable": True,
                    "navigable": True,
                    "searchable": True,
                    "clauseNames": [f"cf[{fid.split('_')[1]}]", name],
                    "schema": _custom_schema(fid),
                }
            )
            listing.append(entry)
        return listing

    def _server_info(self) -> dict[str, Any]:
        server_time = self._time(self.now)
        if self.cloud:
            return {
                "baseUrl": self.site,
                "displayUrl": self.site,
                "displayUrlServicedeskHelpCenter": self.site,
                "displayUrlConfluence": self.site,
                "version": "1001.0.0-SNAPSHOT",
                "versionNumbers": [1001, 0, 0],
                "deploymentType": "Cloud",
                "buildNumber": 100287,
                "buildDate": "2025-02-24T13:05:26.000+0100",
                "serverTime": server_time,
                "scmInfo": "0139ea21e0f8b5dafbd2e1eb33923e0c468b7f69",
                "serverTitle": "Jira",
                "defaultLocale": {"locale": "en_US"},
                "serverTimeZone": "Etc/UTC",
            }
        return {
            "baseUrl": self.site,
            "version": "9.12.15",
            "versionNumbers": [9, 12, 15],
            "deploymentType": "Server",  # what Data Center reports too
            "buildNumber": 9120015,
            "buildDate": "2024-10-01T00:00:00.000-0400",
            "serverTime": server_time,
            "scmInfo": "5ef91d760d7124da5ebec5c16a948a4a807698df",
            "serverTitle": "Jira",
        }

    def _avatars(self, kind: str, avatar_id: int) -> dict[str, str]:
        base = f"{self.site}/secure/{kind}avatar?avatarId={avatar_id}"
        return {
            "48x48": base,
            "24x24": base.replace("?", "?size=small&"),
            "16x16": base.replace("?", "?size=xsmall&"),
            "32x32": base.replace("?", "?size=medium&"),
        }

    def _project(self, *, short: bool = False) -> dict[str, Any]:
        project: dict[str, Any] = {
            "self": f"{self._api()}project/10000",
            "id": "10000",
            "key": "NHD",
            "name": "NHD Support",
        }
        if self.cloud:
            project.update({"projectTypeKey": "software", "simplified": False})
        project["avatarUrls"] = self._avatars("project", 10324)
        if short:
            return project
        return {
            "expand": "description,lead,issueTypes,url,projectKeys,permissions,insight",
            **project,
            "projectTypeKey": "software",
            "description": "",
            "lead": self._user(BRIDGE),
            "components": [],
            "issueTypes": [self._issue_type("Task"), self._issue_type("Bug")],
            "assigneeType": "UNASSIGNED",
            "versions": [],
            "roles": {
                "Developers": f"{self._api()}project/10000/role/10002",
                "Administrators": f"{self._api()}project/10000/role/10003",
            },
        }

    def _issue_type(self, name: str) -> dict[str, Any]:
        type_id, description, avatar = ISSUE_TYPES[name]
        result: dict[str, Any] = {
            "self": f"{self._api()}issuetype/{type_id}",
            "id": type_id,
            "description": description,
            "iconUrl": f"{self.site}/secure/viewavatar?size=medium&avatarId={avatar}"
            "&avatarType=issuetype",
            "name": name,
            "subtask": False,
            "avatarId": avatar,
        }
        if self.cloud:
            result["hierarchyLevel"] = 0
        return result

    def _project_statuses(self) -> list[dict[str, Any]]:
        return [
            {
                "self": f"{self._api()}issuetype/10002",
                "id": "10002",
                "name": "Task",
                "subtask": False,
                "statuses": [self._status(name) for name in STATUSES],
            }
        ]

    # --- shapes -------------------------------------------------------------------------------

    def _api(self) -> str:
        return f"{self.site}/rest/api/{self.version}/"

    def _issue(self, ref: str) -> Issue:
        """An issue by key or by id, as Jira accepts both; KeyError when there is none."""
        if ref in self.issues:
            return self.issues[ref]
        for issue in self.issues.values():
            if str(issue.id) == ref:
                return issue
        raise KeyError(ref)

    def _time(self, moment: datetime) -> str:
        local = moment.astimezone(self.zone)
        return (
            local.strftime("%Y-%m-%dT%H:%M:%S.")
            + f"{local.microsecond // 1000:03d}"
            + local.strftime("%z")
        )

    def _status(self, name: str) -> dict[str, Any]:
        sid, cid, ckey, color, cname = STATUSES[name]
        return {
            "self": f"{self._api()}status/{sid}",
            "description": "",
            "iconUrl": f"{self.site}/",
            "name": name,
            "id": sid,
            "statusCategory": {
                "self": f"{self._api()}statuscategory/{cid}",
                "id": cid,
                "key": ckey,
                "colorName": color,
                "name": cname,
            },
        }

    def _resolution(self, name: str | None) -> dict[str, Any] | None:
        if name is None:
            return None
        rid = {"Done": "10000", "Won't Do": "10001"}[name]
        return {
            "self": f"{self._api()}resolution/{rid}",
            "id": rid,
            "description": "",
            "name": name,
        }

    def _option(self, value: str) -> dict[str, Any]:
        option_id = SEVERITY_OPTIONS[value]
        return {
            "self": f"{self._api()}customFieldOption/{option_id}",
            "value": value,
            "id": option_id,
        }

    def _user(self, user: User, *, full: bool = False) -> dict[str, Any]:
        avatars = {
            size: f"https://avatar.example/{user.key}/{size[:2]}"
            for size in ("48x48", "24x24", "16x16", "32x32")
        }
        if self.cloud:
            result = {
                "self": f"{self._api()}user?accountId={quote(user.account_id)}",
                "accountId": user.account_id,
                "emailAddress": user.email,
                "avatarUrls": avatars,
                "displayName": user.display,
                "active": True,
                "timeZone": "Europe/Berlin",
                "accountType": "atlassian",
            }
        else:
            result = {
                "self": f"{self._api()}user?username={quote(user.name)}",
                "name": user.name,
                "key": user.key,
                "emailAddress": user.email,
                "avatarUrls": avatars,
                "displayName": user.display,
                "active": True,
                "timeZone": "America/New_York",
            }
            if full:
                result["deleted"] = False
        if full:
            result.update(
                {
                    "locale": "en_US",
                    "groups": {"size": 2, "items": []},
                    "applicationRoles": {"size": 1, "items": []},
                    "expand": "groups,applicationRoles",
                }
            )
        return result

    def _attachment_json(self, item: dict[str, Any]) -> dict[str, Any]:
        content = (
            f"{self._api()}attachment/content/{item['id']}"
            if self.cloud
            else f"{self.site}/secure/attachment/{item['id']}/{quote(item['filename'])}"
        )
        return {
            "self": f"{self._api()}attachment/{item['id']}",
            "id": item["id"],
            "filename": item["filename"],
            "author": self._user(item["author"]),
            "created": self._time(item["created"]),
            "size": item["size"],
            "mimeType": item["mimeType"],
            "content": content,
        }

    def _headers(self, *, content_type: str = "application/json;charset=UTF-8") -> dict[str, str]:
        """The headers of an answer, as each deployment sends them (the real recordings'
        headers, less the CDN's own on Cloud)."""
        stamp = self.now.strftime("%a, %d %b %Y %H:%M:%S GMT")
        number = self.request_number
        if self.cloud:
            trace = hashlib.sha256(f"trace:{number}".encode()).hexdigest()[:32]
            limit = _cloud_rate_limit(*self.request)
            return {
                "Date": stamp,
                "Content-Type": content_type,
                "Server": "AtlassianEdge",
                "Atl-Request-Id": str(uuid.UUID(trace)),
                "Atl-Traceid": trace,
                "Cache-Control": "no-cache, no-store, no-transform",
                "Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
                "Timing-Allow-Origin": "*",
                "Vary": "Accept-Encoding",
                "X-Aaccountid": quote(BRIDGE.account_id),
                "X-Arequestid": hashlib.sha256(f"request:{number}".encode()).hexdigest()[:32],
                "X-Content-Type-Options": "nosniff",
                "X-Ratelimit-Limit": str(limit),
                "X-Ratelimit-Remaining": str(limit - 1),
                "X-Xss-Protection": "1; mode=block",
            }
        local = self.now.astimezone(self.zone)
        session = hashlib.sha256(f"session:{self.site}".encode()).hexdigest()[:7]
        return {
            "Cache-Control": "no-cache, no-store, no-transform",
            "Content-Security-Policy": "frame-ancestors 'self'",
            "Content-Type": content_type,
            "Date": stamp,
            # A session comes with every authenticated answer; the harness drops it.
            "Set-Cookie": f"JSESSIONID={session.upper()}; Path=/; HttpOnly",
            "Vary": "User-Agent",
            "X-AREQUESTID": f"{local.hour * 60 + local.minute}x{1000 + number}x1",
            "X-ASEN": "SEN-L12345678",
            "X-ASESSIONID": session,
            "X-AUSERNAME": BRIDGE.name,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "SAMEORIGIN",
            "X-Seraph-LoginReason": "OK",
            "X-XSS-Protection": "1; mode=block",
        }

    def _ok(self, payload: Any) -> tuple[int, dict[str, str], bytes]:
        return 200, self._headers(), _json(payload)

    def _error(self, status: int, message: str | None, errors: dict | None = None):
        payload = {"errorMessages": [message] if message else [], "errors": errors or {}}
        return status, self._headers(), _json(payload)

    def _fault(self, status: int) -> tuple[int, dict[str, str], bytes]:
        headers = self._headers()
        if status == 429:
            retry_after = 17
            if self.cloud:  # developer.atlassian.com/cloud/jira/platform/rate-limiting
                reset = self.now + timedelta(seconds=retry_after)
                headers.pop("X-Ratelimit-Limit")
                headers.pop("X-Ratelimit-Remaining")
                headers.update(
                    {
                        "Retry-After": str(retry_after),
                        "X-RateLimit-Limit": "350",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%MZ"),
                        "X-RateLimit-NearLimit": "true",
                        "RateLimit-Reason": "jira-burst-based",
                    }
                )
            else:  # Jira Data Center's rate limiting (a token bucket per user)
                headers.update(
                    {
                        "Retry-After": str(retry_after),
                        "X-RateLimit-Limit": "100",
                        "X-RateLimit-Remaining": "0",
                        "X-RateLimit-Interval-Seconds": "1",
                        "X-RateLimit-FillRate": "10",
                    }
                )
            return 429, headers, _json({"errorMessages": ["Rate limit exceeded."], "errors": {}})
        if status == 401:
            realm = quote(self.site, safe="")
            if self.cloud:
                # An anonymous answer: no account header and no rate limit of the account.
                for name in ("X-Aaccountid", "X-Ratelimit-Limit", "X-Ratelimit-Remaining"):
                    headers.pop(name)
                headers["Content-Type"] = "text/plain;charset=UTF-8"
                headers["WWW-Authenticate"] = f'OAuth realm="{realm}"'
                headers["X-Seraph-LoginReason"] = "AUTHENTICATED_FAILED"
                return 401, headers, b"Client must be authenticated to access this resource."
            # As jira-server-7.12-v2__oca__myself-401-unauthorized.yaml: no session, anonymous.
            for name in ("Set-Cookie", "X-ASESSIONID", "X-Seraph-LoginReason"):
                headers.pop(name)
            headers.update(
                {
                    "Cache-Control": "no-transform",
                    "WWW-Authenticate": f'OAuth realm="{realm}"',
                    "X-AUSERNAME": "anonymous",
                }
            )
            message = "Client must be authenticated to access this resource."
            return 401, headers, _json({"message": message, "status-code": 401})
        if status == 403:
            return (
                status,
                headers,
                _json(
                    {
                        "errorMessages": [
                            "You do not have permission to create issues in this project."
                        ],
                        "errors": {},
                    }
                ),
            )
        return status, headers, _json({"errorMessages": [f"HTTP {status}"], "errors": {}})


def _field_errors(fields: dict[str, Any]) -> dict[str, str]:
    """Jira's 400 ``errors`` for values it refuses (a select list takes one of its options)."""
    option = fields.get("customfield_10050")
    if option is not None and option.get("value") not in SEVERITY_OPTIONS:
        return {"customfield_10050": f"Option value '{option.get('value')}' is not valid"}
    return {}


def _cloud_rate_limit(method: str, path: str) -> int:
    """``X-Ratelimit-Limit`` as Jira Cloud sent it per kind of request in
    jira-cloud-v2__defectdojo__create-update-issue_transition_ratelimit-headers.yaml."""
    if method == "POST":
        return 200
    if method in ("PUT", "DELETE"):
        return 300
    if re.search(r"/issue/[^/]+$", path):
        return 400
    return 350


def _custom_schema(field_id: str) -> dict[str, Any]:
    _name, schema = CUSTOM_FIELDS[field_id]
    return {
        "type": schema["type"],
        "custom": f"com.atlassian.jira.plugin.system.customfieldtypes:{schema['custom']}",
        "customId": schema["customId"],
    }


def _json(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
