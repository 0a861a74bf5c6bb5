"""The Jira adapter beyond the contract: limits and errors, reads, config, time zones, plugin."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest
from jira_harness import jira_options, jira_session
from pydantic import ValidationError

from nhd_bridge.adapters.jira.adapter import JiraAdapter, _shortest_path
from nhd_bridge.adapters.jira.config import JiraConfig
from nhd_bridge.core.adapter import (
    AttachmentUpload,
    CommentDraft,
    PermanentError,
    TicketDraft,
    TransientError,
)
from nhd_bridge.core.model import Actor
from nhd_bridge.core.plugins import Plugins

# --- limits and errors ----------------------------------------------------------------------------


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_429_is_a_transient_error_with_retry_after_and_no_sleep(deployment, request):
    with jira_session(deployment, request.node.name) as session:
        session.in_jira(lambda site: site.fail("GET", r"/search", 429))
        adapter = JiraAdapter("jira", session.config())
        started = time.monotonic()
        with pytest.raises(TransientError) as caught:
            list(adapter.changed_since(None))
        assert time.monotonic() - started < 2, "the library's retry loop slept"
        assert caught.value.retry_after == 17
        assert "HTTP 429" in str(caught.value) and "retry after 17s" in str(caught.value)


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_401_fails_the_preflight_with_a_hint_and_never_shows_the_secret(deployment, request):
    with jira_session(deployment, request.node.name) as session:
        session.in_jira(lambda site: site.fail("GET", r"/myself$", 401, times=2))
        config = session.config()
        adapter = JiraAdapter("jira", config)
        [result] = adapter.check()
        assert (result.name, result.ok) == ("authentication", False)
        assert "HTTP 401" in result.detail
        assert ("api_token" if deployment == "cloud" else "personal_access_token") in result.hint
        adapter = JiraAdapter("jira", config)
        with pytest.raises(PermanentError) as caught:
            list(adapter.changed_since("2025-03-03T09:00:00.000+00:00"))
        secret = (config.api_token or config.personal_access_token).get_secret_value()
        assert secret not in str(caught.value)
        assert "credentials" in str(caught.value)


def test_403_names_the_missing_permission(request):
    with jira_session("cloud", request.node.name) as session:
        session.in_jira(lambda site: site.fail("POST", r"/issue$", 403))
        adapter = JiraAdapter("jira", session.config())
        with pytest.raises(PermanentError, match="'Create Issues' permission in project NHD"):
            adapter.create(TicketDraft(shared_uuid="f" * 32, subject="Denied"))


def test_attachment_over_the_limit_is_refused_before_any_upload():
    config = JiraConfig.model_validate(
        jira_options("cloud", "https://nhd-test.atlassian.net", max_attachment_bytes=10)
    )
    adapter = JiraAdapter("jira", config)
    draft = CommentDraft(shared_uuid="c", body="big", public=True)
    draft.attachments = [AttachmentUpload("big.bin", lambda: None, size=11)]  # type: ignore[arg-type]
    with pytest.raises(PermanentError, match=r"larger than .* limit of 10 bytes"):
        adapter.add_comment("NHD-1", draft)  # no cassette: no request may be made


# --- reads --------------------------------------------------------------------------------------


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_truncated_comment_lists_are_completed_and_a_quiet_read_makes_no_issue_request(
    deployment, request
):
    with jira_session(deployment, request.node.name, comments_in_search=2) as session:
        adapter = JiraAdapter("jira", session.config())
        created = adapter.create(TicketDraft(shared_uuid="a" * 32, subject="Chatty"))
        for n in range(3):
            adapter.add_comment(
                created.local_id, CommentDraft(shared_uuid=f"{n:032x}", body=f"c{n}", public=True)
            )
        calls = _spy(adapter)
        [page] = list(adapter.changed_since(None))
        [ticket] = page.tickets
        assert [c.body for c in ticket.comments] == ["c0", "c1", "c2"]
        assert [c.shared_uuid for c in ticket.comments] == [f"{n:032x}" for n in range(3)]
        # Data Center's search does not return the issue property (``properties`` is not
        # declared there): an issue with the bridge's comments costs one read of it.
        property_read = ("GET", f"issue/{created.local_id}/properties/nhd.bridge")
        crumb = [] if deployment == "cloud" else [property_read]
        whoami = [] if deployment == "cloud" else [("GET", "myself")]  # whose comments are these
        assert calls == [
            ("GET", "search/jql" if deployment == "cloud" else "search"),
            *whoami,
            *crumb,
            ("GET", f"issue/{created.local_id}/comment"),
        ]

        calls.clear()
        list(adapter.changed_since(page.cursor))  # the same issue again (lookback)
        search = "search/jql" if deployment == "cloud" else "search"
        # No GET of the issue itself: only the part of the comments the page left out.
        assert calls == [
            *([("GET", "myself")] if deployment == "cloud" else []),  # the JQL date's time zone
            ("GET", search),
            *crumb,
            ("GET", f"issue/{created.local_id}/comment"),
        ]


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_private_comments_use_the_configured_restriction_or_jsm_internal_notes(deployment, request):
    jsm = deployment == "cloud"  # Cloud runs as Jira Service Management here
    with jira_session(deployment, request.node.name) as session:
        overrides: dict[str, Any] = {"jsm": True, "private_visibility": None} if jsm else {}
        adapter = JiraAdapter("jira", session.config(**overrides))
        assert adapter.capabilities.private_comments is True
        created = adapter.create(TicketDraft(shared_uuid="b" * 32, subject="Visibility"))
        public = adapter.add_comment(
            created.local_id, CommentDraft(shared_uuid="1" * 32, body="hello", public=True)
        )
        private = adapter.add_comment(
            created.local_id, CommentDraft(shared_uuid="2" * 32, body="agents", public=False)
        )
        record = adapter.get(created.local_id)
        assert record is not None
        flags = {c.local_id: c.public for c in record.comments}
        assert flags == {public: True, private: False}


def test_requester_without_a_match_leaves_the_reporter_to_jira_or_the_fallback():
    options = jira_options("cloud", "https://nhd-test.atlassian.net")
    adapter = JiraAdapter("jira", JiraConfig.model_validate(options))
    stranger = Actor(uuid="who-knows", name="Nobody Known")
    assert adapter._jira_user_for(stranger) is None  # omitted: never cleared
    mapped = Actor(uuid="nhd-contract-requester", name="Ada")
    assert adapter._jira_user_for(mapped) == "5f1a9c0e8b2d4a0069d1e002"
    with_fallback = JiraAdapter(
        "jira", JiraConfig.model_validate({**options, "fallback_user": "5f1a-fallback"})
    )
    assert with_fallback._jira_user_for(stranger) == "5f1a-fallback"


# --- JQL time -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "moment", "expected"),
    [
        ("UTC", datetime(2025, 3, 3, 9, 58, 59, tzinfo=UTC), "2025-03-03 09:58"),
        ("Europe/Berlin", datetime(2025, 3, 3, 9, 58, tzinfo=UTC), "2025-03-03 10:58"),
        ("America/New_York", datetime(2025, 7, 1, 3, 0, tzinfo=UTC), "2025-06-30 23:00"),
        # 01:30 happens twice in New York on 2 Nov 2025: go an hour earlier, never later.
        ("America/New_York", datetime(2025, 11, 2, 5, 30, tzinfo=UTC), "2025-11-02 00:30"),
    ],
)
def test_jql_dates_are_minutes_in_the_bridge_users_time_zone(zone, moment, expected):
    config = jira_options("datacenter", "https://jira.nhd-test.example", timezone=zone)
    adapter = JiraAdapter("jira", JiraConfig.model_validate(config))
    assert adapter._jql_time(moment) == expected


def test_read_jql_floors_the_lookback_and_keeps_the_share_filter():
    config = jira_options(
        "datacenter", "https://jira.nhd-test.example", timezone="UTC", jql="labels = escalate"
    )
    adapter = JiraAdapter("jira", JiraConfig.model_validate(config))
    assert adapter._read_jql(datetime(2025, 3, 3, 9, 58, tzinfo=UTC)) == (
        'project = "NHD" AND (labels = escalate) AND updated >= "2025-03-03 09:58" '
        "ORDER BY updated ASC, key ASC"
    )


def test_a_bad_cursor_is_refused_where_it_is_passed():
    adapter = JiraAdapter(
        "jira", JiraConfig.model_validate(jira_options("cloud", "https://nhd-test.atlassian.net"))
    )
    with pytest.raises(PermanentError, match="reset the agreement's cursor"):
        adapter.changed_since("not a time")


def test_transition_search_finds_the_shortest_known_path():
    graph: dict[str, dict[str, dict]] = {
        "to do": {"in progress": {}, "blocked": {}},
        "blocked": {"to do": {}},
        "in progress": {"review": {}, "to do": {}},
        "review": {"done": {}},
    }
    assert _shortest_path(graph, "to do", "done") == ["to do", "in progress", "review", "done"]
    assert _shortest_path(graph, "done", "to do") is None


# --- configuration and registration -------------------------------------------------------------


def test_config_needs_the_credentials_of_its_deployment():
    with pytest.raises(ValidationError, match="email and api_token"):
        JiraConfig(url="https://x.atlassian.net", deployment="cloud", project="X")
    with pytest.raises(ValidationError, match="personal_access_token"):
        JiraConfig(url="https://jira.example", deployment="datacenter", project="X")
    with pytest.raises(ValidationError, match="Cloud only"):
        JiraConfig.model_validate(
            {
                **jira_options("datacenter", "https://jira.example"),
                "jsm": True,
                "private_visibility": None,
            }
        )
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        JiraConfig.model_validate(
            {**jira_options("cloud", "https://x.atlassian.net"), "passwrod": "x"}
        )


def test_secrets_stay_out_of_repr_and_errors():
    options = jira_options("cloud", "https://x.atlassian.net", api_token="s3cr3t-t0ken")
    config = JiraConfig.model_validate(options)
    assert "s3cr3t-t0ken" not in repr(config) and "s3cr3t-t0ken" not in str(config)
    assert "s3cr3t-t0ken" not in repr(JiraAdapter("jira", config))


def test_capabilities_follow_the_instance():
    bare = jira_options("cloud", "https://x.atlassian.net", statuses=None, private_visibility=None)
    adapter = JiraAdapter("jira", JiraConfig.model_validate(bare))
    assert adapter.capabilities.transitions is True
    assert adapter.capabilities.statuses is None
    assert adapter.capabilities.private_comments is False
    assert adapter.capabilities.comment_author is False


def test_jira_is_registered_like_any_plugin():
    assert Plugins().adapter_class("jira") is JiraAdapter


def _spy(adapter: JiraAdapter) -> list[tuple[str, str]]:
    """Every REST request the adapter sends from now on, as (method, path under the API root),
    whether it goes through the library's public calls or the adapter's own."""
    calls: list[tuple[str, str]] = []
    session = adapter.client._session
    original = session.request

    def spying(method: str, url: str, **kwargs: Any) -> Any:
        path = url.split("?")[0].split("/rest/api/", 1)[-1].split("/", 1)[-1]
        calls.append((method.upper(), path))
        return original(method, url, **kwargs)

    session.request = spying  # type: ignore[method-assign]
    return calls
