"""The Jira adapter on the paths and parameters Atlassian's descriptions declare (issue 10).

Each test here failed before its fix: the comment breadcrumb was read from a path Jira does not
have; crash recovery trusted a search that may not show an issue created moments before; Data
Center identity depended on ``properties=`` on ``/search``, which Data Center does not declare.
The simulator now serves only the documented paths, lags its search index on demand and ignores
Data Center's undeclared ``properties``, and ``tests/vendor`` holds the recorded traffic to the
descriptions themselves.
"""

from __future__ import annotations

from typing import Any

import pytest
from jira_harness import jira_options, jira_session

from nhd_bridge.adapters.jira import JiraAdapter
from nhd_bridge.adapters.jira.config import JiraConfig
from nhd_bridge.core.adapter import CommentDraft, TicketDraft

DEPLOYMENTS = ["cloud", "datacenter"]


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_a_bridge_comment_missing_from_the_index_is_known_by_its_documented_property(
    deployment, request
):
    with jira_session(deployment, request.node.name) as session:
        writer = JiraAdapter("jira", session.config())
        created = writer.create(TicketDraft(shared_uuid="1" * 32, subject="Crash after comment"))
        comment_id = writer.add_comment(
            created.local_id, CommentDraft(shared_uuid="2" * 32, body="written", public=True)
        )

        def crash_between_comment_and_index(site: Any) -> None:
            # The comment property went with the POST; the issue's index entry never came.
            assert site._comment_properties(comment_id)["nhd.bridge"]["uuid"] == "2" * 32
            site.issues[created.local_id].properties["nhd.bridge"]["comments"].clear()

        session.in_jira(crash_between_comment_and_index)
        reader = JiraAdapter("jira", session.config())
        calls = _spy(reader)
        ticket = reader.get(created.local_id)
        assert ticket is not None
        [comment] = ticket.comments
        assert comment.shared_uuid == "2" * 32, "the bridge's own comment taken for a person's"
        paths = [(method, path) for method, path, _ in calls]
        assert ("GET", f"comment/{comment_id}/properties/nhd.bridge") in paths


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_crash_recovery_finds_an_issue_the_search_index_does_not_show_yet(deployment, request):
    with jira_session(deployment, request.node.name) as session:
        writer = JiraAdapter("jira", session.config())
        writer.create(TicketDraft(shared_uuid="3" * 32, subject="Indexed long ago"))
        session.in_jira(lambda site: setattr(site, "index_lag", 10))
        fresh = writer.create(TicketDraft(shared_uuid="4" * 32, subject="Created, then crash"))

        recovering = JiraAdapter("jira", session.config())  # the next run, after the crash
        found = recovering.find_by_shared_uuid("4" * 32)
        assert found is not None, "a second create would follow: a duplicate"
        assert found.local_id == fresh.local_id
        assert found.shared_uuid == "4" * 32
        assert recovering.find_by_shared_uuid("5" * 32) is None


def test_datacenter_identity_needs_no_undeclared_search_parameter(request):
    with jira_session("datacenter", request.node.name) as session:
        adapter = JiraAdapter("jira", session.config(breadcrumb={"label": False}))
        created = adapter.create(TicketDraft(shared_uuid="6" * 32, subject="No label"))
        adapter.add_comment(
            created.local_id, CommentDraft(shared_uuid="7" * 32, body="mine", public=True)
        )
        sent = _spy(adapter)
        [page] = list(adapter.changed_since(None))
        [ticket] = page.tickets
        assert ticket.shared_uuid == "6" * 32
        assert [c.shared_uuid for c in ticket.comments] == ["7" * 32]
        found = adapter.find_by_shared_uuid("6" * 32)
        assert found is not None and found.local_id == created.local_id
        searches = [params for _, path, params in sent if path == "search"]
        assert searches and all("properties" not in params for params in searches)


def test_the_label_breadcrumb_is_the_data_center_default_and_off_on_cloud():
    dc = JiraConfig.model_validate(
        {**jira_options("datacenter", "https://jira.example"), "breadcrumb": {}}
    )
    cloud = JiraConfig.model_validate(
        {**jira_options("cloud", "https://x.atlassian.net"), "breadcrumb": {}}
    )
    assert dc.breadcrumb.label is True
    assert cloud.breadcrumb.label is False
    explicit = JiraConfig.model_validate(
        {**jira_options("datacenter", "https://jira.example"), "breadcrumb": {"label": False}}
    )
    assert explicit.breadcrumb.label is False


def _spy(adapter: JiraAdapter) -> list[tuple[str, str, Any]]:
    """Every ``(method, path, params)`` the adapter sends from now on (a live list)."""
    calls: list[tuple[str, str, Any]] = []
    original = adapter._json

    def spying(method: str, path: str, **kwargs: Any) -> Any:
        calls.append((method, path, kwargs.get("params") or {}))
        return original(method, path, **kwargs)

    adapter._json = spying  # type: ignore[method-assign]
    return calls
