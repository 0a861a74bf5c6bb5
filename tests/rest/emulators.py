"""In-memory stand-ins for the GitHub Issues and Redmine REST APIs, for recording cassettes (and
the GitHub paging test, which checks the adapter's logic over them, not GitHub's behaviour).

We cannot reach github.com or a Redmine server from CI, so the cassettes under
``tests/cassettes/rest/`` were recorded against these emulators, which answer with the shapes,
status codes and headers each vendor documents:

- GitHub: https://docs.github.com/en/rest/issues/issues, /issues/comments, /search/search
  (``Link`` paging, ``since``/``sort``/``direction``, 201 on create, 404
  ``{"message": "Not Found"}``, ``x-ratelimit-*`` headers), every object with all the fields
  GitHub's OpenAPI description requires (``simple-user``, ``issue``, ``issue-comment``,
  ``full-repository``, ``issue-search-result-item``): ``tests/vendor`` validates the cassettes
  against that description;
- Redmine: https://www.redmine.org/projects/redmine/wiki/Rest_Issues (``issues.json`` with
  ``offset``/``limit``/``total_count``, ``updated_on=>=…``, ``cf_N=`` filters, journals with
  ``private_notes`` under ``include=journals``, 201 on create, 204 on update, 422
  ``{"errors": [...]}``).

Playback never uses them: tests run the cassettes with ``record_mode="none"``. To re-record
after a profile change:
``NHD_RECORD_REST_CASSETTES=1 pytest tests/rest/test_cassette_contracts.py``.
Timestamps come from a clock that ticks one second per write, so recordings are reproducible.
"""

from __future__ import annotations

import json
import re
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

import httpx

__all__ = ["GitHubEmulator", "RedmineEmulator"]

START = datetime(2024, 5, 6, 9, 0, 0, tzinfo=UTC)


class _Clock:
    def __init__(self) -> None:
        self.now = START

    def tick(self) -> str:
        self.now += timedelta(seconds=1)
        return self.now.strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(status: int, data: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    body = b"" if data is None else json.dumps(data).encode()
    base = {"Content-Type": "application/json; charset=utf-8"} if data is not None else {}
    return httpx.Response(status, content=body, headers={**base, **(headers or {})})


def _query(request: httpx.Request) -> dict[str, list[str]]:
    return parse_qs(request.url.query.decode(), keep_blank_values=True)


# --- GitHub -------------------------------------------------------------------------------------


class GitHubEmulator:
    """One repository's issues and comments, as the GitHub REST API serves them."""

    def __init__(self, owner: str = "acme", repo: str = "support") -> None:
        self.owner, self.repo = owner, repo
        self.clock = _Clock()
        self.issues: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, dict[str, Any]] = {}
        self.next_comment = 1_201_000_001
        self.user = _simple_user("nhd-bridge-bot", 9_001)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        path = request.url.path
        prefix = f"/repos/{self.owner}/{self.repo}"
        headers = {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4990",
            "x-ratelimit-reset": "1714989600",
            "x-github-api-version-selected": "2022-11-28",
        }
        if not request.headers.get("Authorization", "").startswith("Bearer "):
            return _json(401, {"message": "Requires authentication", "status": "401"}, headers)
        body = json.loads(request.content) if request.content else {}
        if path == prefix and request.method == "GET":
            return _json(200, self._repository(), headers)
        if path == f"{prefix}/issues":
            if request.method == "POST":
                return _json(201, self._create(body), headers)
            return self._list(request, _in_requested_order(request, self.issues), headers)
        if match := re.fullmatch(rf"{prefix}/issues/(\d+)", path):
            issue = self.issues.get(int(match[1]))
            if issue is None:
                return _json(404, _not_found(), headers)
            if request.method == "PATCH":
                for key in ("title", "state", "body"):
                    if key in body:
                        issue[key] = body[key]
                if "labels" in body:
                    issue["labels"] = [_label(name) for name in body["labels"]]
                if "state" in body:
                    issue["closed_at"] = self.clock.now.strftime("%Y-%m-%dT%H:%M:%SZ")
                issue["updated_at"] = self.clock.tick()
            return _json(200, issue, headers)
        if match := re.fullmatch(rf"{prefix}/issues/(\d+)/comments", path):
            issue = self.issues.get(int(match[1]))
            if issue is None:
                return _json(404, _not_found(), headers)
            if request.method == "POST":
                return _json(201, self._comment(issue, body["body"]), headers)
            listed = [c for c in self.comments.values() if c["issue_url"].endswith(f"/{match[1]}")]
            return self._list(request, listed, headers)
        if match := re.fullmatch(rf"{prefix}/issues/comments/(\d+)", path):
            comment = self.comments[int(match[1])]
            comment["body"] = body["body"]
            comment["updated_at"] = self.clock.tick()
            return _json(200, comment, headers)
        if path == "/search/issues":
            wanted = re.match(r'"([^"]+)"', _query(request)["q"][0])
            found = [
                {**issue, "score": 1.0}
                for issue in self.issues.values()
                if wanted and wanted[1] in (issue["body"] or "")
            ]
            answer = {
                "total_count": len(found),
                "incomplete_results": False,
                "items": found,
                "search_type": "lexical",  # a quoted phrase is never searched semantically
            }
            return _json(200, answer, headers)
        return _json(404, _not_found(), headers)

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        number = len(self.issues) + 1
        now = self.clock.tick()
        base = f"https://api.github.com/repos/{self.owner}/{self.repo}"
        issue = {
            "id": 2_100_000_000 + number,
            "node_id": f"I_kwDOemulated{number}",
            "url": f"{base}/issues/{number}",
            "repository_url": base,
            "labels_url": f"{base}/issues/{number}/labels{{/name}}",
            "comments_url": f"{base}/issues/{number}/comments",
            "events_url": f"{base}/issues/{number}/events",
            "html_url": f"https://github.com/{self.owner}/{self.repo}/issues/{number}",
            "number": number,
            "state": "open",
            "state_reason": None,
            "title": body["title"],
            "body": body.get("body"),
            "user": self.user,
            "labels": [_label(name) for name in body.get("labels") or []],
            "assignee": None,
            "assignees": [],
            "milestone": None,
            "locked": False,
            "comments": 0,
            "closed_at": None,
            "created_at": now,
            "updated_at": now,
            "author_association": "OWNER",
        }
        self.issues[number] = issue
        return issue

    def _repository(self) -> dict[str, Any]:
        """``GET /repos/{owner}/{repo}`` as ``full-repository``, for a small private repo."""
        api = f"https://api.github.com/repos/{self.owner}/{self.repo}"
        listed = {
            name: f"{api}/{name}"
            for name in (
                "assignees",
                "branches",
                "collaborators",
                "comments",
                "commits",
                "contributors",
                "deployments",
                "downloads",
                "events",
                "forks",
                "hooks",
                "issues",
                "keys",
                "labels",
                "languages",
                "merges",
                "milestones",
                "notifications",
                "pulls",
                "releases",
                "stargazers",
                "statuses",
                "subscribers",
                "subscription",
                "tags",
                "teams",
                "trees",
                "blobs",
                "contents",
                "compare",
            )
        }
        templated = {
            "archive_url": f"{api}/{{archive_format}}{{/ref}}",
            "assignees_url": f"{api}/assignees{{/user}}",
            "blobs_url": f"{api}/git/blobs{{/sha}}",
            "branches_url": f"{api}/branches{{/branch}}",
            "collaborators_url": f"{api}/collaborators{{/collaborator}}",
            "comments_url": f"{api}/comments{{/number}}",
            "commits_url": f"{api}/commits{{/sha}}",
            "compare_url": f"{api}/compare/{{base}}...{{head}}",
            "contents_url": f"{api}/contents/{{+path}}",
            "git_commits_url": f"{api}/git/commits{{/sha}}",
            "git_refs_url": f"{api}/git/refs{{/sha}}",
            "git_tags_url": f"{api}/git/tags{{/sha}}",
            "issue_comment_url": f"{api}/issues/comments{{/number}}",
            "issue_events_url": f"{api}/issues/events{{/number}}",
            "issues_url": f"{api}/issues{{/number}}",
            "keys_url": f"{api}/keys{{/key_id}}",
            "labels_url": f"{api}/labels{{/name}}",
            "milestones_url": f"{api}/milestones{{/number}}",
            "notifications_url": f"{api}/notifications{{?since,all,participating}}",
            "pulls_url": f"{api}/pulls{{/number}}",
            "releases_url": f"{api}/releases{{/id}}",
            "statuses_url": f"{api}/statuses/{{sha}}",
            "trees_url": f"{api}/git/trees{{/sha}}",
        }
        urls = {f"{name}_url": url for name, url in listed.items()} | templated
        open_issues = sum(1 for issue in self.issues.values() if issue["state"] == "open")
        return {
            "id": 801_234_567,
            "node_id": "R_kgDOemulated",
            "name": self.repo,
            "full_name": f"{self.owner}/{self.repo}",
            "private": True,
            "owner": _simple_user(self.owner, 7_001, kind="Organization"),
            "html_url": f"https://github.com/{self.owner}/{self.repo}",
            "description": "Customer support tickets",
            "fork": False,
            "url": api,
            **urls,
            "git_url": f"git://github.com/{self.owner}/{self.repo}.git",
            "ssh_url": f"git@github.com:{self.owner}/{self.repo}.git",
            "clone_url": f"https://github.com/{self.owner}/{self.repo}.git",
            "svn_url": f"https://github.com/{self.owner}/{self.repo}",
            "mirror_url": None,
            "homepage": None,
            "language": None,
            "forks_count": 0,
            "forks": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "watchers": 0,
            "size": 12,
            "default_branch": "main",
            "open_issues_count": open_issues,
            "open_issues": open_issues,
            "has_issues": True,
            "has_projects": False,
            "has_wiki": False,
            "has_pages": False,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "visibility": "private",
            "license": None,
            "pushed_at": "2024-05-01T08:00:00Z",
            "created_at": "2024-04-02T08:00:00Z",
            "updated_at": "2024-05-01T08:00:00Z",
            "network_count": 0,
            "subscribers_count": 1,
        }

    def _comment(self, issue: dict[str, Any], text: str) -> dict[str, Any]:
        comment_id = self.next_comment
        self.next_comment += 1
        now = self.clock.tick()
        comment = {
            "id": comment_id,
            "node_id": f"IC_kwDOemulated{comment_id}",
            "url": f"{issue['url'].rsplit('/', 1)[0]}/comments/{comment_id}",
            "html_url": f"{issue['html_url']}#issuecomment-{comment_id}",
            "issue_url": issue["url"],
            "body": text,
            "user": self.user,
            "created_at": now,
            "updated_at": now,
            "author_association": "OWNER",
        }
        self.comments[comment_id] = comment
        issue["comments"] += 1
        issue["updated_at"] = now
        return comment

    def _list(
        self, request: httpx.Request, items: list[dict[str, Any]], headers: dict[str, str]
    ) -> httpx.Response:
        query = _query(request)
        since = query.get("since", [None])[0]
        if since:
            items = [item for item in items if item["updated_at"] >= since]
        per_page = int(query.get("per_page", ["30"])[0])
        page = int(query.get("page", ["1"])[0])
        chunk = items[(page - 1) * per_page : page * per_page]
        links = {}
        if page * per_page < len(items):
            flat = {key: values[0] for key, values in query.items()}
            links["next"] = (
                f"{request.url.copy_with(query=None)}?{urlencode({**flat, 'page': page + 1})}"
            )
            last = (len(items) + per_page - 1) // per_page
            links["last"] = (
                f"{request.url.copy_with(query=None)}?{urlencode({**flat, 'page': last})}"
            )
        if links:
            headers = {**headers, "Link": ", ".join(f'<{u}>; rel="{r}"' for r, u in links.items())}
        return _json(200, chunk, headers)


def _label(name: str) -> dict[str, Any]:
    return {"id": zlib.crc32(name.encode()), "name": name, "color": "ededed", "default": False}


def _simple_user(login: str, user_id: int, kind: str = "User") -> dict[str, Any]:
    """A ``simple-user`` with every field GitHub's description requires."""
    api = f"https://api.github.com/users/{login}"
    return {
        "login": login,
        "id": user_id,
        "node_id": f"U_kgDOemulated{user_id}",
        "avatar_url": f"https://avatars.githubusercontent.com/u/{user_id}?v=4",
        "gravatar_id": "",
        "url": api,
        "html_url": f"https://github.com/{login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": kind,
        "user_view_type": "public",
        "site_admin": False,
    }


def _not_found() -> dict[str, str]:
    return {
        "message": "Not Found",
        "documentation_url": "https://docs.github.com/rest/issues/issues#get-an-issue",
        "status": "404",
    }


def _in_requested_order(request: httpx.Request, issues: dict[int, Any]) -> list[dict[str, Any]]:
    """GitHub's ``sort`` (``created``, the default, or ``updated``) and ``direction`` (default
    ``desc``); ties in issue-number order."""
    query = _query(request)
    field = "updated_at" if query.get("sort", ["created"])[0] == "updated" else "created_at"
    ordered = sorted(issues.values(), key=lambda issue: (issue[field], issue["number"]))
    return ordered if query.get("direction", ["desc"])[0] == "asc" else ordered[::-1]


# --- Redmine ------------------------------------------------------------------------------------

REDMINE_STATUSES = {
    1: ("New", False),
    2: ("In Progress", False),
    3: ("Resolved", False),
    4: ("Feedback", False),
    5: ("Closed", True),
    6: ("Rejected", True),
}


class RedmineEmulator:
    """One project's issues, with an ``nhd_uuid`` issue custom field, as Redmine 5 serves them."""

    def __init__(self, project: str = "support", uuid_field_id: int = 7) -> None:
        self.project, self.uuid_field_id = project, uuid_field_id
        self.clock = _Clock()
        self.issues: dict[int, dict[str, Any]] = {}
        self.next_journal = 501
        self.user = {"id": 5, "name": "NHD Bridge"}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        request.read()
        if request.headers.get("X-Redmine-API-Key") is None:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="Redmine API"'})
        path = request.url.path
        body = json.loads(request.content) if request.content else {}
        if path == f"/projects/{self.project}.json":
            return _json(200, {"project": {"id": 1, "name": "Support", "identifier": self.project}})
        if path == "/issues.json" and request.method == "POST":
            issue, errors = self._create(body.get("issue", {}))
            return _json(422, {"errors": errors}) if errors else _json(201, {"issue": issue})
        if path == "/issues.json":
            return self._list(request)
        if match := re.fullmatch(r"/issues/(\d+)\.json", path):
            issue = self.issues.get(int(match[1]))
            if issue is None:
                return httpx.Response(404)
            if request.method == "PUT":
                errors = self._update(issue, body.get("issue", {}))
                return _json(422, {"errors": errors}) if errors else httpx.Response(204)
            shown = {k: v for k, v in issue.items() if k != "journals"}
            if "journals" in _query(request).get("include", [""])[0].split(","):
                shown["journals"] = issue["journals"]
            return _json(200, {"issue": shown})
        return httpx.Response(404)

    def _create(self, fields: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
        if not fields.get("subject"):
            return {}, ["Subject cannot be blank"]
        number = len(self.issues) + 1
        now = self.clock.tick()
        status_id = 1  # like a stock Redmine workflow: status_id on create is ignored
        issue = {
            "id": number,
            "project": {"id": 1, "name": "Support"},
            "tracker": {"id": 3, "name": "Support"},
            "status": _status(status_id),
            "priority": {"id": 2, "name": "Normal"},
            "author": self.user,
            "subject": fields["subject"],
            "description": fields.get("description", ""),
            "start_date": now[:10],
            "due_date": None,
            "done_ratio": 0,
            "is_private": False,
            "estimated_hours": None,
            "custom_fields": [{"id": self.uuid_field_id, "name": "nhd_uuid", "value": ""}],
            "created_on": now,
            "updated_on": now,
            "closed_on": None,
            "journals": [],
        }
        for field in fields.get("custom_fields") or []:
            if int(field["id"]) == self.uuid_field_id:
                issue["custom_fields"][0]["value"] = field["value"]
        self.issues[number] = issue
        return issue, []

    def _update(self, issue: dict[str, Any], fields: dict[str, Any]) -> list[str]:
        if "subject" in fields and not fields["subject"]:
            return ["Subject cannot be blank"]
        now = self.clock.tick()
        details = []
        if "subject" in fields:
            details.append(_detail("subject", issue["subject"], fields["subject"]))
            issue["subject"] = fields["subject"]
        if "status_id" in fields:
            new = _status(int(fields["status_id"]))
            details.append(_detail("status_id", str(issue["status"]["id"]), str(new["id"])))
            issue["status"] = new
            issue["closed_on"] = now if new["is_closed"] else None
        if fields.get("notes") or details:
            issue["journals"].append(
                {
                    "id": self.next_journal,
                    "user": self.user,
                    "notes": fields.get("notes", ""),
                    "created_on": now,
                    "updated_on": now,
                    "private_notes": bool(fields.get("private_notes", False)),
                    "details": details,
                }
            )
            self.next_journal += 1
        issue["updated_on"] = now
        return []

    def _list(self, request: httpx.Request) -> httpx.Response:
        query = {key: values[0] for key, values in _query(request).items()}
        if query.get("sort") == "id":
            items = sorted(self.issues.values(), key=lambda i: i["id"])
        else:
            items = sorted(self.issues.values(), key=lambda i: (i["updated_on"], i["id"]))
        if "issue_id" in query:
            lowest = int(query["issue_id"].removeprefix(">="))
            items = [item for item in items if item["id"] >= lowest]
        if "updated_on" in query:
            bound = query["updated_on"].removeprefix(">=")
            items = [item for item in items if item["updated_on"] >= bound]
        wanted = query.get(f"cf_{self.uuid_field_id}")
        if wanted is not None:
            items = [item for item in items if item["custom_fields"][0]["value"] == wanted]
        offset, limit = int(query.get("offset", 0)), int(query.get("limit", 25))
        page = [{k: v for k, v in item.items() if k != "journals"} for item in items]
        return _json(
            200,
            {
                "issues": page[offset : offset + limit],
                "total_count": len(items),
                "offset": offset,
                "limit": limit,
            },
        )


def _status(status_id: int) -> dict[str, Any]:
    name, closed = REDMINE_STATUSES[status_id]
    return {"id": status_id, "name": name, "is_closed": closed}


def _detail(name: str, old: str, new: str) -> dict[str, str]:
    return {"property": "attr", "name": name, "old_value": old, "new_value": new}
