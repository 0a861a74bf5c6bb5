"""Cassette harness of the Jira adapter tests (imported by ``conftest.py`` and the tests).

Normal runs replay ``tests/cassettes/jira/<deployment>/<test>.yaml`` with vcrpy in record mode
``none``: any request not in the cassette fails the test, and so does a recorded request the code
no longer makes (``all_played`` is checked at the end), so a cassette is an exact script of the
adapter's traffic. Requests match on method, URL (query order-insensitive) and body (JSON compared
parsed; multipart compared with its random boundary masked).

``NHD_JIRA_RECORD=sim`` re-records every cassette against the loopback simulator in
``jira_sim.py`` (that is how the committed cassettes were made); ``NHD_JIRA_RECORD=live`` records
against a real site from ``JIRA_URL``/``JIRA_EMAIL``/``JIRA_API_TOKEN`` (Cloud) or
``JIRA_PAT`` (Data Center) — see docs/adapters/jira.md. Credentials never reach a cassette:
``Authorization`` and cookies are filtered, session headers (``Set-Cookie``, ``X-ASESSIONID``)
dropped, and the real host is rewritten to the placeholder site. Multipart upload bodies are
stored as plain bytes with a fixed boundary. ``test_cassette_shapes.py`` loads every cassette with
a safe YAML loader and checks all of this, and the shapes of the recorded bodies.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import vcr
from jira_sim import ADA, CLOUD_SITE, DC_SITE, JiraSite
from vcr.request import Request

from nhd_bridge.adapters.jira.config import JiraConfig

CASSETTES = Path(__file__).resolve().parents[1] / "cassettes" / "jira"
# What a multipart upload's random boundary becomes in a cassette, so re-recording is stable.
BOUNDARY = "0" * 32
RECORD = os.environ.get("NHD_JIRA_RECORD", "")
SITES = {"cloud": CLOUD_SITE, "datacenter": DC_SITE}


def jira_options(deployment: str, url: str, **overrides: Any) -> dict[str, Any]:
    """The YAML options of the test instance (placeholder credentials when replaying)."""
    cloud = deployment == "cloud"
    options: dict[str, Any] = {
        "url": url,
        "deployment": deployment,
        "project": os.environ.get("JIRA_PROJECT", "NHD") if RECORD == "live" else "NHD",
        "issue_type": "Task",
        "fields": {"severity": "Severity", "region": "customfield_10051"},
        "statuses": ["To Do", "In Progress", "Done"],
        "resolutions": {"Done": "Done"},
        "users": [{"nhd": "nhd-contract-requester", "jira": ADA.account_id if cloud else ADA.name}],
        "private_visibility": {"type": "role", "value": "Developers"}
        if cloud
        else {"type": "group", "value": "jira-developers"},
        "page_size": 3,
    }
    if cloud:
        options["email"] = os.environ.get("JIRA_EMAIL", "bridge@example.com")
        options["api_token"] = os.environ.get("JIRA_API_TOKEN", "test-api-token")
    else:
        options["personal_access_token"] = os.environ.get("JIRA_PAT", "test-personal-access-token")
    options.update(overrides)
    return options


class JiraSession:
    """One test's site: a URL to configure, and (when recording against the simulator) the
    simulated site itself, for what people do in Jira's UI between bridge runs."""

    def __init__(self, deployment: str, url: str, site: JiraSite | None):
        self.deployment = deployment
        self.url = url
        self.site = site

    def options(self, **overrides: Any) -> dict[str, Any]:
        return jira_options(self.deployment, self.url, **overrides)

    def config(self, **overrides: Any) -> JiraConfig:
        return JiraConfig.model_validate(self.options(**overrides))

    def in_jira(self, action: Callable[[JiraSite], Any]) -> None:
        """A person acting in Jira: done on the simulator while recording; already in the
        cassette's responses when replaying."""
        if self.site is not None:
            action(self.site)
        elif RECORD == "live":
            pytest.skip("this test needs a person acting in Jira between runs")


@contextmanager
def jira_session(
    deployment: str, test_name: str, *, comments_in_search: int = 20
) -> Iterator[JiraSession]:
    placeholder = SITES[deployment]
    path = CASSETTES / deployment / f"{_file_name(test_name)}.yaml"
    site: JiraSite | None = None
    if RECORD == "sim":
        site = JiraSite(deployment, comments_in_search=comments_in_search)
        url = site.serve()
    elif RECORD == "live":
        url = os.environ["JIRA_URL"].rstrip("/")
    else:
        url = placeholder  # no cassette file: the test must make no request at all
    if RECORD:
        path.unlink(missing_ok=True)  # record mode "all" would append to the old recording
    recorder = _recorder(url, placeholder)
    try:
        with recorder.use_cassette(str(path)) as cassette:
            yield JiraSession(deployment, url, site)
            if not RECORD:
                unplayed = [
                    f"{request.method} {request.uri}"
                    for index, request in enumerate(cassette.requests)
                    if not cassette.play_counts[index]
                ]
                left = len(unplayed)
                assert not left, f"{left} recorded requests were not made: {unplayed[:5]}"
    finally:
        if site is not None:
            site.stop()


def _file_name(test_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", test_name)


def _recorder(url: str, placeholder: str) -> vcr.VCR:
    def scrub_request(request: Any) -> Any:
        if url != placeholder:
            request.uri = request.uri.replace(url, placeholder, 1)
        body = request.body
        if hasattr(body, "read"):
            # A streamed upload: stored as plain bytes (not as a pickled BytesIO, which only an
            # unsafe YAML loader can read back), with a fixed multipart boundary.
            data = body.read()
            boundary = re.match(rb"--([0-9a-f]{32})\r\n", data)
            if boundary:
                data = data.replace(boundary[1], BOUNDARY.encode())
                request.headers["Content-Type"] = request.headers["Content-Type"].replace(
                    boundary[1].decode(), BOUNDARY
                )
            request = Request(request.method, request.uri, data, request.headers)
        return request

    def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
        headers = response.get("headers") or {}
        for name in list(headers):
            if name.lower() in {"set-cookie", "x-asessionid"}:
                del headers[name]
        if url != placeholder:
            body = response.get("body", {}).get("string")
            if isinstance(body, bytes) and url.encode() in body:
                response["body"]["string"] = body.replace(url.encode(), placeholder.encode())
        return response

    recorder = vcr.VCR(
        record_mode="all" if RECORD else "none",
        match_on=["method", "scheme", "host", "port", "path", "query", "jira_body"],
        filter_headers=["authorization", "cookie"],
        before_record_request=scrub_request,
        before_record_response=scrub_response,
        decode_compressed_response=True,
    )
    recorder.register_matcher("jira_body", _same_body)
    return recorder


def _same_body(recorded: Any, sent: Any) -> None:
    left, right = _comparable(recorded.body), _comparable(sent.body)
    assert left == right, f"bodies differ:\n  recorded {left!r}\n  sent     {right!r}"


def _comparable(body: Any) -> Any:
    if body is None or body == b"" or body == "":
        return None
    if hasattr(body, "read"):
        body = body.read()
    if isinstance(body, str):
        body = body.encode()
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        pass
    boundary = re.match(rb"--([0-9a-f]{32})\r\n", body)
    if boundary:
        return body.replace(boundary[1], b"BOUNDARY")
    return body
