"""Shared fixtures: a bridge over fake trackers, built from YAML like a user's."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from nhd_bridge.core.config import LoadedConfig, load_config
from nhd_bridge.core.engine import SyncEngine
from nhd_bridge.core.plugins import Plugins
from nhd_bridge.core.state import StateStore
from nhd_bridge.testing import fake
from nhd_bridge.testing.fake import FakeTracker

# Real-Redmine fixtures (redmine_server, redmine, redmine_factory) for every test folder.
pytest_plugins = ["support.redmine_fixtures"]


@pytest.fixture(autouse=True)
def _fresh_fake_trackers() -> Iterator[None]:
    FakeTracker.reset_all()
    yield
    FakeTracker.reset_all()


@pytest.fixture
def plugins() -> Plugins:
    """Built-in adapters from entry points plus the fake, registered for this test only."""
    registry = Plugins()
    registry.register(fake, name="fake-for-tests")
    return registry


class Bridge:
    """A configuration, its state store and an engine, rebuilt on demand like a new process."""

    def __init__(self, tmp_path: Path, plugins: Plugins, document: dict[str, Any]):
        self.path = tmp_path / "bridge.yaml"
        self.path.write_text(yaml.safe_dump(document, sort_keys=False))
        self.plugins = plugins
        self.config: LoadedConfig = load_config(self.path, plugins=plugins, environ={})
        self.store = StateStore(self.config.state_url)
        self.engine = SyncEngine(self.config, self.store)

    def run(self, agreement: str | None = None, **kwargs: Any):
        names = [agreement] if agreement else list(self.config.bridge.agreements)
        return [self.engine.run(name, **kwargs) for name in names]

    def run_until_quiet(self, rounds: int = 4) -> int:
        """Run every agreement until a round writes nothing; returns the rounds it took."""
        for round_number in range(1, rounds + 1):
            if sum(summary.total_writes for summary in self.run()) == 0:
                return round_number
        raise AssertionError(f"still writing after {rounds} rounds")

    def restart(self) -> None:
        """A new process: new engine and store handles over the same files."""
        self.engine.close()
        self.store.close()
        self.config = load_config(self.path, plugins=self.plugins, environ={})
        self.store = StateStore(self.config.state_url)
        self.engine = SyncEngine(self.config, self.store)

    def journal(self, **filters: Any):
        return self.store.read().journal(limit=10_000, **filters)

    def close(self) -> None:
        self.engine.close()
        self.store.close()


@pytest.fixture
def make_bridge(tmp_path: Path, plugins: Plugins) -> Iterator[Callable[..., Bridge]]:
    made: list[Bridge] = []

    def build(
        agreements: dict[str, dict[str, Any]],
        instances: dict[str, dict[str, Any]] | None = None,
    ) -> Bridge:
        names = {a[k] for a in agreements.values() for k in ("sender", "receiver")}
        document = {
            "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
            "instances": instances or {name: {"kind": "fake"} for name in sorted(names)},
            "agreements": agreements,
        }
        bridge = Bridge(tmp_path, plugins, document)
        made.append(bridge)
        return bridge

    yield build
    for bridge in made:
        bridge.close()


def postgres_url() -> str | None:
    return os.environ.get("NHD_TEST_POSTGRES_URL")


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    url = postgres_url()
    if not url:
        pytest.skip("NHD_TEST_POSTGRES_URL is not set (CI sets it; on a laptop export it)")
    name = f"nhd_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
