"""pytest fixtures for tests against a real Redmine (registered from tests/conftest.py).

- ``redmine_server`` (session): one shared Redmine for the whole session, project ``support``.
- ``redmine`` (function): the shared server, seen through a fresh project of this test's own.
- ``redmine_factory`` (function): ``redmine_factory()`` starts a private instance (own folder,
  database and port) for a test that stops or restarts the tracker or needs id reuse; every
  instance it started is closed at teardown.

Every test using one of them is marked ``redmine`` (``pytest -m "not redmine"`` leaves them out).
Redmine missing: skipped with the command that enables them, unless ``NHD_TEST_REDMINE=1``, which
turns a missing or broken Redmine into a failure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.redmine import (
    ENABLE_COMMAND,
    RedmineError,
    RedmineServer,
    redmine_available,
    redmine_required,
)

REDMINE_FIXTURES = frozenset({"redmine_server", "redmine", "redmine_factory"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if REDMINE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.redmine)


def _launch(home: Path, template_dir: Path) -> RedmineServer:
    reason = redmine_available()
    if reason and not redmine_required():
        pytest.skip(f"{reason}; to run the real-Redmine tests: {ENABLE_COMMAND}")
    try:
        return RedmineServer.launch(home, template_dir=template_dir)
    except RedmineError as error:
        pytest.fail(f"the real-Redmine tests could not start Redmine: {error}")


@pytest.fixture(scope="session")
def redmine_template_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the first instance saves its prepared database for the others to copy."""
    return tmp_path_factory.mktemp("redmine-template")


@pytest.fixture(scope="session")
def redmine_server(
    redmine_template_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RedmineServer]:
    server = _launch(tmp_path_factory.mktemp("redmine-shared"), redmine_template_dir)
    yield server
    server.close()


@pytest.fixture
def redmine(redmine_server: RedmineServer) -> RedmineServer:
    """The shared server with a project of this test's own (``redmine.project``)."""
    if not redmine_server.running:  # a test stopped the shared server: serve the next ones
        redmine_server.start()
    return redmine_server.with_project(redmine_server.new_project())


@pytest.fixture
def redmine_factory(
    redmine_template_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Callable[[], RedmineServer]]:
    started: list[RedmineServer] = []

    def start() -> RedmineServer:
        server = _launch(tmp_path_factory.mktemp("redmine"), redmine_template_dir)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()
