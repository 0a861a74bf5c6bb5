"""A state store that cannot be opened is one line on stderr and exit 2, from every command.

Each case is a mistake an operator makes with ``state.url``; SQLAlchemy alone reports each as a
60-100-line traceback. ``validate`` and ``check`` look at the store too.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from nhd_bridge.cli import main

BRIDGE = """\
plugins:
  - nhd_bridge.testing.fake
state:
  url: {url}
instances:
  A: {{kind: fake}}
  B: {{kind: fake}}
agreements:
  ab: {{sender: A, receiver: B}}
"""


def closed_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again when the probe closes


def _directory(tmp: Path) -> str:
    (tmp / "adir").mkdir()
    return f"sqlite:///{tmp / 'adir'}"


def _not_sqlite(tmp: Path) -> str:
    (tmp / "notes.txt").write_text("not a database, but a long enough text file\n" * 4)
    return f"sqlite:///{tmp / 'notes.txt'}"


def _under_a_file(tmp: Path) -> str:
    (tmp / "plain").write_text("x")
    return f"sqlite:///{tmp / 'plain' / 'sub' / 'state.db'}"


def _read_only_file_system(tmp: Path) -> str:
    if os.access("/proc/sys", os.W_OK):
        pytest.skip("/proc/sys is writable here; no read-only file system to point at")
    return "sqlite:////proc/sys/nhd-bridge/state.db"


CASES: list[tuple[str, Callable[[Path], str], str]] = [
    ("directory", _directory, "is a directory; point state.url at a file in it"),
    ("not-sqlite", _not_sqlite, "is not a SQLite database"),
    ("under-a-file", _under_a_file, "is a file, so"),
    ("read-only", _read_only_file_system, "is not writable"),
    ("unparsable", lambda tmp: "'::not a url::'", "is not a database URL"),
    ("mysql-driver", lambda tmp: "mysql://u:pw@127.0.0.1/db", "pip install mysqlclient"),
    ("unknown-dialect", lambda tmp: "nosuchdb://127.0.0.1/db", "no SQLAlchemy dialect"),
    (
        "postgres-down",
        lambda tmp: f"postgresql+psycopg://u:hunter2@127.0.0.1:{closed_loopback_port()}/db",
        "cannot connect to 127.0.0.1:",
    ),
]


@pytest.fixture
def run_with_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("NHD_BRIDGE_CONFIG", raising=False)

    def invoke(url: str, *args: str) -> Result:
        config = tmp_path / "bridge.yaml"
        config.write_text(BRIDGE.format(url=url), encoding="utf-8")
        return CliRunner().invoke(main, ["-c", str(config), *args])

    return invoke


@pytest.mark.parametrize("command", [["sync"], ["validate"], ["check"], ["plan"], ["log"]])
@pytest.mark.parametrize(("case", "make_url", "expected"), CASES, ids=[c[0] for c in CASES])
def test_a_bad_state_store_is_one_line_and_exit_2(
    run_with_store, tmp_path, command, case, make_url, expected
):
    result = run_with_store(make_url(tmp_path), *command)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    assert expected in lines[0]
    assert "hunter2" not in result.output and "pw@" not in result.output
    assert "Traceback" not in result.output


def test_validate_leaves_a_missing_sqlite_store_uncreated(run_with_store, tmp_path):
    store = tmp_path / "new" / "state.db"
    result = run_with_store(f"sqlite:///{store}", "validate")
    assert result.exit_code == 0, result.output
    assert "will be created" in result.stdout
    assert not store.exists() and not store.parent.exists()


def test_a_directory_given_as_database_is_left_as_it_was(run_with_store, tmp_path):
    url = _not_sqlite(tmp_path)
    before = (tmp_path / "notes.txt").read_bytes()
    run_with_store(url, "sync")
    assert (tmp_path / "notes.txt").read_bytes() == before
