"""The adapter contract suite, run on cassettes of Jira Cloud (v3) and Jira Data Center (v2)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest
from jira_harness import jira_session

from nhd_bridge.adapters.jira import JiraAdapter
from nhd_bridge.testing import AdapterContract


class _JiraContract(AdapterContract):
    deterministic_uuids = True
    deployment: ClassVar[str]
    unknown_local_id = "NHD-999"
    # JQL has minute precision: every read re-reads the lookback window before the cursor.
    max_boundary_rereads = None

    @pytest.fixture
    def adapter(self, request: pytest.FixtureRequest) -> Iterator[JiraAdapter]:
        with jira_session(self.deployment, request.node.name) as session:
            adapter = JiraAdapter("contract", session.config())
            yield adapter
            adapter.close()


class TestJiraCloudContract(_JiraContract):
    """Cloud: REST v3 (ADF bodies), /search/jql with nextPageToken, role visibility, breadcrumb
    in the issue property only (crash recovery scans recent issues)."""

    deployment = "cloud"


class TestJiraDataCenterContract(_JiraContract):
    """Data Center: REST v2 (wiki markup), /search with startAt, group visibility, breadcrumb
    in the issue property and a label."""

    deployment = "datacenter"
