"""Fixtures of the REST adapter's tests: real Roundup trackers on loopback.

A template tracker is installed once per session; each test that needs an empty tracker gets a copy
served by its own roundup-server (about 0.3 s). Roundup missing fails these tests, it never skips
them: they are the adapter's proof.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.roundup import ADMIN_PASSWORD, ADMIN_USER, RoundupServer, RoundupTemplate

from nhd_bridge.adapters.rest import RestAdapter, RestConfig

# Custom properties the test tracker has beside nhd_uuid, to show custom fields through a profile.
CUSTOM_PROPERTIES = {"severity": "String()", "region": "String()"}


@pytest.fixture(scope="session")
def roundup_template(tmp_path_factory: pytest.TempPathFactory) -> RoundupTemplate:
    return RoundupTemplate.build(tmp_path_factory.mktemp("roundup-template"), CUSTOM_PROPERTIES)


@pytest.fixture
def roundup_factory(
    roundup_template: RoundupTemplate, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], RoundupServer]]:
    started: list[RoundupServer] = []

    def start() -> RoundupServer:
        server = roundup_template.serve(tmp_path_factory.mktemp("roundup"))
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop(kill=True)


@pytest.fixture
def roundup(roundup_factory: Callable[[], RoundupServer]) -> RoundupServer:
    """A fresh, empty tracker for this test."""
    return roundup_factory()


def roundup_options(server: RoundupServer, **overrides: Any) -> dict[str, Any]:
    """The instance YAML a user writes for Roundup (as a dict), plus test-only overrides."""
    options: dict[str, Any] = {
        "profile": "roundup",
        "base_url": server.rest_url,
        "auth": {"type": "basic", "username": ADMIN_USER, "password": ADMIN_PASSWORD},
        # Fast retries: a stopped server must fail a run in milliseconds, not seconds.
        "retries": {"attempts": 2, "backoff_seconds": 0.01, "timeout_seconds": 10},
    }
    options.update(overrides)
    return options


# The test tracker's own properties as custom fields: an override of two profile keys.
CUSTOM_FIELD_OVERRIDES: dict[str, Any] = {
    "capabilities": {"custom_fields": True},
    "ticket": {"custom_fields": "{severity: severity, region: region}"},
}


def roundup_adapter(server: RoundupServer, name: str = "roundup", **overrides: Any) -> RestAdapter:
    return RestAdapter(name, RestConfig.model_validate(roundup_options(server, **overrides)))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    return tmp_path
