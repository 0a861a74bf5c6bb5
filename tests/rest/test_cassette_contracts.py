"""The adapter contract suite for the GitHub and Redmine profiles, played back from cassettes.

Each contract test has its own cassette under ``tests/cassettes/rest/<profile>/``, played with
``record_mode="none"``: a request the cassette does not hold fails the test. The cassettes hold
the vendors' documented shapes (see ``emulators.py`` for how they were recorded and how to record
them again); credentials are scrubbed from them.

The contract's sample data uses fresh uuids; here they come from a counter, so that the requests a
test makes are the same at recording and at playback.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import vcr
import vcr.patch

from nhd_bridge.adapters.rest import RestAdapter, RestConfig
from nhd_bridge.core.model import Actor
from nhd_bridge.testing import AdapterContract

from .emulators import GitHubEmulator, RedmineEmulator

CASSETTES = Path(__file__).parent.parent / "cassettes" / "rest"
RECORD = os.environ.get("NHD_RECORD_REST_CASSETTES") == "1"
SCRUBBED = "<scrubbed>"

GITHUB_OPTIONS: dict[str, Any] = {
    "profile": "github",
    "base_url": "https://api.github.com/",
    "auth": {"type": "bearer", "token": "ghp_not-a-real-token-0123456789"},
    "vars": {"owner": "acme", "repo": "support"},
    "operations": {
        "list_changed": {"pagination": {"page_size": 3}},
    },
}
REDMINE_OPTIONS: dict[str, Any] = {
    "profile": "redmine",
    "base_url": "https://redmine.example.com/",
    "auth": {"type": "api_key", "name": "X-Redmine-API-Key", "key": "not-a-real-redmine-key"},
    "vars": {"project_id": "support", "uuid_field_id": 7},
    "operations": {"list_changed": {"pagination": {"page_size": 3}}},
}


def cassette_adapter(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    profile: str,
    options: dict[str, Any],
    emulator: Callable[[], Callable[[Any], Any]],
) -> Iterator[RestAdapter]:
    if RECORD:
        handler = emulator()
        monkeypatch.setattr(
            vcr.patch, "_HttpxHttpTransport_handle_request", lambda _self, req: handler(req)
        )
    recorder = vcr.VCR(
        cassette_library_dir=str(CASSETTES / profile),
        record_mode="all" if RECORD else "none",
        match_on=["method", "scheme", "host", "port", "path", "query"],
        filter_headers=[
            ("Authorization", SCRUBBED),
            ("X-Redmine-API-Key", SCRUBBED),
        ],
        decode_compressed_response=True,
    )
    name = request.node.name.removeprefix("test_") + ".yaml"
    with recorder.use_cassette(name, allow_playback_repeats=False):
        adapter = RestAdapter("contract", RestConfig.model_validate(options))
        yield adapter
        adapter.close()


class TestGitHubContract(AdapterContract):
    deterministic_uuids = True
    # An issue's author is the token's user; comments too (capabilities.comment_author false).
    contract_requester: ClassVar[Actor | None] = None

    @pytest.fixture
    def adapter(
        self, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[RestAdapter]:
        yield from cassette_adapter(request, monkeypatch, "github", GITHUB_OPTIONS, GitHubEmulator)


class TestRedmineContract(AdapterContract):
    deterministic_uuids = True
    contract_requester: ClassVar[Actor | None] = None

    @pytest.fixture
    def adapter(
        self, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
    ) -> Iterator[RestAdapter]:
        yield from cassette_adapter(
            request, monkeypatch, "redmine", REDMINE_OPTIONS, RedmineEmulator
        )
