"""The CLI as operators use it: log levels and JSON logs, piped output, Ctrl-C, short uuids, missing
extras, and a --help that does not load the whole bridge (issue 12, point 9)."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml
from click.testing import CliRunner, Result

from nhd_bridge import PermanentError
from nhd_bridge.cli import main
from nhd_bridge.testing.fake import FakeAdapter, FakeTracker

SECRET = "s3cret-token-value"
BRIDGE = f"""\
plugins:
  - nhd_bridge.testing.fake
state:
  url: sqlite:///{{state}}
instances:
  A: {{{{kind: fake, token: {SECRET}}}}}
  B: {{{{kind: fake}}}}
  C: {{{{kind: fake}}}}
  D: {{{{kind: fake}}}}
agreements:
  ab: {{{{sender: A, receiver: B}}}}
  cd: {{{{sender: C, receiver: D}}}}
"""


@pytest.fixture
def bridge_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for variable in ("NHD_BRIDGE_CONFIG", "NHD_BRIDGE_LOG_LEVEL", "NHD_BRIDGE_LOG_FORMAT"):
        monkeypatch.delenv(variable, raising=False)
    path = tmp_path / "bridge.yaml"
    path.write_text(BRIDGE.format(state=tmp_path / "state.db"), encoding="utf-8")
    return path


@pytest.fixture
def cli(bridge_file: Path) -> Callable[..., Result]:
    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return CliRunner().invoke(main, ["-c", str(bridge_file), *args], env=env)

    return invoke


def json_lines(text: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# --- --log-level, --log-format ------------------------------------------------------------------


def test_sync_logs_json_lines_with_the_traceback_as_a_string_and_secrets_redacted(cli):
    FakeTracker.named("A").create_ticket("Breaks while planned")
    FakeTracker.named("B").fail_next(
        "find_by_shared_uuid", RuntimeError(f"GET https://b.example/?key={SECRET} failed")
    )

    result = cli("--log-format", "json", "sync", "--agreement", "ab")

    assert result.exit_code == 1, result.output
    [record] = json_lines(result.stderr)
    assert set(record) == {"time", "level", "logger", "message", "exc_info"}
    assert (record["level"], record["logger"]) == ("ERROR", "nhd_bridge.core.engine")
    assert record["message"] == "planning A:1 failed"
    assert record["exc_info"].startswith("Traceback (most recent call last):")
    assert "RuntimeError: GET https://b.example/?key=********** failed" in record["exc_info"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", record["time"])
    assert SECRET not in result.output


def test_log_level_and_format_come_from_the_environment_too(cli):
    FakeTracker.named("A").create_ticket("Breaks while planned")
    FakeTracker.named("B").fail_next("find_by_shared_uuid", RuntimeError("boom"))

    refused = cli("sync", env={"NHD_BRIDGE_LOG_LEVEL": "critical", "NHD_BRIDGE_LOG_FORMAT": "json"})
    assert refused.exit_code == 2  # not a level: refused, like the option
    FakeTracker.named("B").fail_next("find_by_shared_uuid", RuntimeError("boom"))
    result = cli("sync", env={"NHD_BRIDGE_LOG_LEVEL": "error", "NHD_BRIDGE_LOG_FORMAT": "json"})

    assert [record["message"] for record in json_lines(result.stderr)] == ["planning A:1 failed"]


def test_text_logs_are_redacted_in_the_traceback_too(cli):
    FakeTracker.named("A").create_ticket("Breaks while planned")
    FakeTracker.named("B").fail_next("find_by_shared_uuid", RuntimeError(f"key={SECRET}"))

    result = cli("--log-level", "INFO", "sync", "--agreement", "ab")

    assert " ERROR nhd_bridge.core.engine: planning A:1 failed" in result.stderr
    assert "RuntimeError: key=**********" in result.stderr
    assert SECRET not in result.output


def test_logging_set_up_by_a_command_is_removed_when_it_ends(cli):
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level

    cli("--log-level", "DEBUG", "sync")

    assert (root.handlers, root.level) == (handlers, level)
    assert logging.getLogger("apscheduler").level == logging.NOTSET


# --- serve: JSON lines from every logger, APScheduler quiet ---------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_for_a_while(tmp_path: Path, *options: str) -> str:
    """Run `nhd-bridge serve` with an agreement every second for a few runs; its log."""
    port = free_port()
    config = {
        "server": {"port": port},
        "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
        "instances": {
            "desk": {"kind": "local", "path": str(tmp_path / "desk.db")},
            "eng": {"kind": "local", "path": str(tmp_path / "eng.db")},
        },
        "agreements": {
            "desk-eng": {"sender": "desk", "receiver": "eng", "schedule": {"every": "1s"}}
        },
    }
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(config))
    log_path = tmp_path / "serve.log"
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("NHD_BRIDGE_LOG")
    }
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "nhd_bridge", *options, "-c", str(path), "serve"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environment,
        )
        try:
            deadline = time.monotonic() + 30
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                except httpx.HTTPError:
                    time.sleep(0.2)
                    continue
                time.sleep(3.5)  # a few scheduled runs
                break
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
    return log_path.read_text()


@pytest.mark.slow
def test_serve_logs_json_lines_from_uvicorn_too_without_apscheduler_chatter(tmp_path):
    log = serve_for_a_while(tmp_path, "--log-format", "json")

    lines = log.splitlines()
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(set(record) >= {"time", "level", "logger", "message"} for record in records)
    loggers = {record["logger"] for record in records}
    assert "uvicorn.error" in loggers and "uvicorn.access" in loggers
    assert not [r for r in records if r["logger"].startswith("apscheduler")], log
    assert "Running job" not in log and "executed successfully" not in log


@pytest.mark.slow
def test_serve_at_debug_shows_apscheduler_runs(tmp_path):
    log = serve_for_a_while(tmp_path, "--log-level", "DEBUG")

    assert "Running job" in log


# --- piped output -------------------------------------------------------------------------------


def test_a_long_error_line_is_not_wrapped_when_piped(cli):
    FakeTracker.named("A").create_ticket("Refused")
    reason = "403: " + "the project does not allow this kind of issue " * 4
    FakeTracker.named("B").fail_next("create", PermanentError(reason.strip()))

    result = cli("sync", "--agreement", "ab", env={"COLUMNS": "80"})

    assert result.exit_code == 1
    [line] = [line for line in result.stderr.splitlines() if "parked" in line]
    assert line.endswith(reason.strip()) and len(line) > 200
    assert "\x1b" not in result.output


def test_explain_and_log_print_long_lines_whole_and_without_escape_codes(cli):
    subject = "A subject long enough to be wrapped at eighty columns by anything that wraps"
    FakeTracker.named("A").create_ticket(subject, comments=["x" * 150])
    cli("sync")

    for args in (("log",), ("explain", "A:1"), ("plan",)):
        result = cli(*args, env={"COLUMNS": "40"})
        assert result.exit_code == 0, result.output
        assert "\x1b" not in result.output
    journal = cli("log", env={"COLUMNS": "40"}).stdout.splitlines()
    assert len(journal) == 2 and all(len(line) > 40 for line in journal)


@pytest.mark.slow
def test_no_color_keeps_colours_off_a_terminal(tmp_path):
    """On a real terminal (a pty), NO_COLOR leaves styles such as bold but no colour codes."""
    import pty

    from nhd_bridge.adapters.local import LocalConfig, LocalTracker

    def sync_on_a_terminal(folder: Path, **env: str) -> bytes:
        folder.mkdir()
        desk = LocalTracker(LocalConfig(path=folder / "desk.db"))
        desk.create_ticket("Something to show progress for")
        desk.close()
        config = folder / "bridge.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "state": {"url": f"sqlite:///{folder / 'state.db'}"},
                    "instances": {
                        "desk": {"kind": "local", "path": str(folder / "desk.db")},
                        "eng": {"kind": "local", "path": str(folder / "eng.db")},
                    },
                    "agreements": {"de": {"sender": "desk", "receiver": "eng"}},
                }
            )
        )
        leader, follower = pty.openpty()
        process = subprocess.Popen(
            [sys.executable, "-m", "nhd_bridge", "-c", str(config), "sync"],
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=follower,
            env={**os.environ, "COLUMNS": "120", **env},
        )
        os.close(follower)
        output = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        process.wait(timeout=30)
        os.close(leader)
        return output

    colour = re.compile(rb"\x1b\[(?:[0-9;]*;)?(?:3[0-79]|9[0-7]|38;)")
    styled = sync_on_a_terminal(tmp_path / "plain")
    assert colour.search(styled), styled  # a terminal gets colours...
    no_color = sync_on_a_terminal(tmp_path / "no-color", NO_COLOR="1")
    assert b"\x1b[" in no_color  # ...and styles, still, with NO_COLOR...
    assert not colour.search(no_color), no_color  # ...but no colour


# --- Ctrl-C -------------------------------------------------------------------------------------


def test_ctrl_c_during_sync_stops_after_the_ticket_being_written_and_exits_130(cli, monkeypatch):
    a = FakeTracker.named("A")
    for number in range(5):
        a.create_ticket(f"ticket {number}")
    creates = 0
    create = FakeAdapter.create

    def create_then_ctrl_c(self, draft):
        nonlocal creates
        creates += 1
        if creates == 2:
            os.kill(os.getpid(), signal.SIGINT)  # the operator presses Ctrl-C
        return create(self, draft)

    monkeypatch.setattr(FakeAdapter, "create", create_then_ctrl_c)

    result = cli("sync")

    assert result.exit_code == 130, result.output
    assert "Traceback" not in result.output
    # What was done before the interrupt, summarised:
    assert re.search(r"^ab: seen \d+, writes 2 \(create 2\)", result.stdout, re.M)
    assert len(FakeTracker.named("B").tickets()) == 2
    assert "interrupted: 1 of 2 agreements ran" in result.stderr
    assert "not run: cd" in result.stderr
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_a_second_ctrl_c_interrupts_at_once_and_still_summarises_what_ran(cli, monkeypatch):
    FakeTracker.named("C").create_ticket("in the second agreement")
    FakeTracker.named("A").create_ticket("in the first agreement")
    create = FakeAdapter.create

    def interrupted_at_once(self, draft):
        if self.name == "D":
            raise KeyboardInterrupt
        return create(self, draft)

    monkeypatch.setattr(FakeAdapter, "create", interrupted_at_once)

    result = cli("sync")

    assert result.exit_code == 130, result.output
    assert "Traceback" not in result.output
    assert re.search(r"^ab: seen \d+, writes 1 \(create 1\)", result.stdout, re.M)
    assert "interrupted: 1 of 2 agreements ran" in result.stderr
    assert "cd was interrupted while writing" in result.stderr


# --- short uuids --------------------------------------------------------------------------------


def shared_uuid_of_the_copy(cli) -> str:
    FakeTracker.named("A").create_ticket("Known by its short uuid")
    assert cli("sync", "--agreement", "ab").exit_code == 0
    [copy] = FakeTracker.named("B").tickets()
    assert copy.shared_uuid
    return copy.shared_uuid


def test_the_short_uuid_that_log_prints_is_accepted_by_explain_and_log(cli):
    full = shared_uuid_of_the_copy(cli)
    short = cli("log").stdout.split()[3]
    assert short == full[:12]

    explained = cli("explain", short)
    logged = cli("log", "--ticket", short)

    assert explained.exit_code == 0, explained.output
    assert f"shared ticket {full}" in explained.stdout
    assert logged.exit_code == 0
    assert logged.stdout != "the journal is empty\n" and short in logged.stdout


def test_unshare_takes_a_short_uuid(cli):
    full = shared_uuid_of_the_copy(cli)

    result = cli("unshare", full[:12], "--agreement", "ab")

    assert result.exit_code == 0, result.output
    assert f"({full}) is no longer synced under ab" in result.stdout


def test_an_ambiguous_prefix_is_refused_with_the_candidates(cli, bridge_file, tmp_path):
    from nhd_bridge.core.state import StateStore

    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        with store.transaction() as tx:
            for uuid in ("abcdef0000" + "1" * 30, "abcdef0000" + "2" * 30):
                tx.put_link(uuid, "A", uuid[-3:], "linked")
    finally:
        store.close()

    result = cli("explain", "abcdef0000")

    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: 'abcdef0000' is the start of 2 shared ticket uuids: ")
    assert "abcdef0000" + "1" * 30 in line and "abcdef0000" + "2" * 30 in line


def test_agreements_show_takes_the_start_of_an_agreement_uuid(cli, tmp_path):
    from nhd_bridge.core.protocol.invites import new_invite
    from nhd_bridge.core.protocol.wire_store import WireStore
    from nhd_bridge.core.state import StateStore

    invite = new_invite(
        name="Desk", our_url="https://desk.example/sharing", partner_url="https://eng.example/s"
    )
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        WireStore(store).create_incoming_agreement(invite)
    finally:
        store.close()

    result = cli("agreements", "show", invite.uuid[:12])

    assert result.exit_code == 0, result.output
    assert f"uuid: {invite.uuid}" in result.stdout


# --- missing extras -----------------------------------------------------------------------------


def test_a_jira_instance_without_the_jira_library_says_which_extra_to_install(
    tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "jira", None)  # what `import jira` does when not installed
    monkeypatch.delitem(sys.modules, "nhd_bridge.adapters.jira", raising=False)
    config = tmp_path / "bridge.yaml"
    config.write_text(
        "instances:\n  tracker:\n    kind: jira\n    url: https://example.atlassian.net\n"
        "    project: SUP\n"
    )

    result = CliRunner().invoke(main, ["-c", str(config), "validate"])

    assert result.exit_code == 2
    assert "pip install 'nhd-bridge[jira]'" in result.stderr
    assert "Traceback" not in result.output


def test_serve_without_the_server_extra_says_which_to_install(bridge_file, monkeypatch):
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    monkeypatch.delitem(sys.modules, "nhd_bridge.serve", raising=False)

    result = CliRunner().invoke(main, ["-c", str(bridge_file), "serve"])

    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: serve needs the 'server' extra (module 'uvicorn' is not installed): "
        "pip install 'nhd-bridge[server]'"
    ]


def test_a_postgresql_store_without_psycopg_says_which_extra_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)
    config = tmp_path / "bridge.yaml"
    config.write_text(
        "plugins: [nhd_bridge.testing.fake]\n"
        "state:\n  url: postgresql+psycopg://postgres@127.0.0.1:1/none\n"
        "instances:\n  A: {kind: fake}\n"
    )

    result = CliRunner().invoke(main, ["-c", str(config), "sync"])

    assert result.exit_code == 2
    assert "pip install 'nhd-bridge[postgres]'" in result.stderr
    assert "Traceback" not in result.output


# --- startup ------------------------------------------------------------------------------------


HEAVY_MODULES = (
    "sqlalchemy", "httpx", "pydantic", "fastapi", "uvicorn", "jira", "requests", "rich",
    "apscheduler", "yaml",
)  # fmt: skip


def _heavy_modules_loaded_by(code: str) -> list[str]:
    heavy = f"[m for m in {HEAVY_MODULES!r} if m in sys.modules]"
    probe = f"import json, sys\n{code}\nprint(json.dumps(sorted({heavy})))"
    output = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output.splitlines()[-1])


def test_importing_the_cli_loads_no_database_http_server_or_tracker_library():
    assert _heavy_modules_loaded_by("import nhd_bridge.cli") == []


def test_listing_the_commands_loads_every_plugin_but_none_of_their_libraries():
    # `nhd-bridge --help` imports each installed plugin to list the commands it adds; a plugin's
    # module that imported its adapter made --help pay for pydantic, httpx and the profiles.
    listing = (
        "from nhd_bridge.cli import main\n"
        "main.main(['--help'], prog_name='nhd-bridge', standalone_mode=False)\n"
        "from nhd_bridge.core.plugins import Plugins\n"
        "assert {'local', 'rest', 'jira', 'nhd'} <= set(Plugins().plugin_names)"
    )

    assert _heavy_modules_loaded_by(listing) == []


def test_help_lists_every_command_without_loading_them(bridge_file):
    result = subprocess.run(
        [sys.executable, "-m", "nhd_bridge", "--help"], capture_output=True, text=True, check=True
    )

    for command in ("sync", "serve", "log", "explain", "agreements", "local", "--log-format"):
        assert command in result.stdout


def test_the_default_config_file_name_matches_the_config_module():
    from nhd_bridge import cli
    from nhd_bridge.core import config

    assert cli.DEFAULT_CONFIG_FILE == config.DEFAULT_CONFIG_FILE
