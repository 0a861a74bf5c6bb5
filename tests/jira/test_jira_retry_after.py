"""Jira's Retry-After in every form a server sends, through the adapter's own calls.

A rate limit must come back as a TransientError the engine parks; a date the old parser could
not subtract (``-0000`` gives a naive datetime) raised TypeError, which escaped the engine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
import requests
from requests.adapters import BaseAdapter

from nhd_bridge.adapters.jira import JiraAdapter
from nhd_bridge.adapters.jira.config import JiraConfig
from nhd_bridge.core.adapter import TransientError

URL = "https://jira.example.test"


class Answers(BaseAdapter):
    """A transport that answers every request with one status and headers, sending nothing."""

    def __init__(self, status: int, headers: dict[str, str]):
        super().__init__()
        self.status, self.headers, self.requests = status, headers, 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.requests += 1
        response = requests.Response()
        response.status_code = self.status
        response.headers.update({"Content-Type": "application/json", **self.headers})
        response._content = b'{"errorMessages": ["slow down"]}'
        response.url, response.request = str(request.url), request
        return response

    def close(self) -> None:
        pass


def adapter_answering(status: int, retry_after: str) -> tuple[JiraAdapter, Answers]:
    config = JiraConfig.model_validate(
        {
            "url": URL,
            "deployment": "datacenter",
            "project": "NHD",
            "issue_type": "Task",
            "personal_access_token": "test-personal-access-token",
        }
    )
    adapter = JiraAdapter("jira", config)
    answers = Answers(status, {"Retry-After": retry_after})
    adapter.client._session.mount(URL, answers)
    return adapter, answers


def in_an_hour(zone: str) -> str:
    moment = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1)
    return format_datetime(moment, usegmt=True).replace(" GMT", f" {zone}")


@pytest.mark.parametrize("zone", ["-0000", "+0000", "GMT", "UTC"])
def test_a_rate_limit_until_an_http_date_parks_the_work_for_that_long(zone):
    adapter, answers = adapter_answering(429, in_an_hour(zone))
    with pytest.raises(TransientError) as caught:
        adapter.get("NHD-1")
    assert caught.value.retry_after is not None
    assert 3590 <= caught.value.retry_after <= 3600
    assert answers.requests == 1  # no retry loop here: the engine parks the ticket


def test_an_unreadable_retry_after_is_a_rate_limit_without_a_wait():
    adapter, _answers = adapter_answering(503, "soon, probably")
    with pytest.raises(TransientError) as caught:
        adapter.get("NHD-1")
    assert caught.value.retry_after is None and "HTTP 503" in str(caught.value)
