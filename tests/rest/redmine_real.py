"""A real Redmine for the REST adapter's tests, until the project's harness (tests/support) lands.

One server per session, started with ``shared/redmine/start_redmine.sh``; each test gets a fresh
project on it (the ``nhd_uuid`` custom field is for all projects), so tests never see each other's
issues. Redmine missing is a failure naming what to install, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

START_SCRIPT = Path(
    os.environ.get("NHD_REDMINE_START", "/work/shared/redmine/start_redmine.sh")
)


@dataclass
class RedmineServer:
    url: str
    api_key: str
    uuid_field_id: int
    directory: Path

    def stop(self) -> None:
        pid_file = self.directory / "server.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGTERM)


@dataclass
class RedmineProject:
    """A fresh project on the session's Redmine."""

    url: str
    api_key: str
    uuid_field_id: int
    identifier: str

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"X-Redmine-API-Key": self.api_key, "Content-Type": "application/json"},
            timeout=30,
        )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def redmine_real_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedmineServer]:
    if not START_SCRIPT.exists():
        pytest.fail(f"{START_SCRIPT} is missing: install Redmine (see shared/redmine/NOTES.md)")
    directory = tmp_path_factory.mktemp("redmine")
    template = tmp_path_factory.getbasetemp() / "redmine-template"
    done = subprocess.run(
        [str(START_SCRIPT), str(directory), str(_free_port())],
        capture_output=True,
        text=True,
        env={**os.environ, "REDMINE_TEMPLATE_DIR": str(template)},
        timeout=120,
    )
    if done.returncode != 0:
        pytest.fail(f"Redmine did not start: {done.stderr[-2000:]}")
    url, key = done.stdout.split()
    field_id = int((directory / "config" / "nhd_uuid_cf_id.txt").read_text().strip())
    server = RedmineServer(url.rstrip("/") + "/", key, field_id, directory)
    yield server
    server.stop()


@pytest.fixture
def redmine_project(redmine_real_server: RedmineServer) -> RedmineProject:
    identifier = f"p{uuid.uuid4().hex[:12]}"
    server = redmine_real_server
    project = RedmineProject(server.url, server.api_key, server.uuid_field_id, identifier)
    with project.api() as api:
        answer = api.post(
            "projects.json",
            json={
                "project": {
                    "name": identifier,
                    "identifier": identifier,
                    "tracker_ids": [1, 2, 3],
                    "enabled_module_names": ["issue_tracking"],
                }
            },
        )
        answer.raise_for_status()
    return project
