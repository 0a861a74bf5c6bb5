"""The ``nhd-bridge`` command line, driven in-process through click's CliRunner.

The CLI builds its own plugins from entry points plus the YAML ``plugins:`` list, so the bridges
here list ``nhd_bridge.testing.fake`` under ``plugins:``; the fake trackers live in this process
(``FakeTracker.named``), which CliRunner shares.
"""

from __future__ import annotations

import json
import re
import socket
import sys
import tomllib
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from nhd_bridge import PermanentError
from nhd_bridge.cli import main, run
from nhd_bridge.testing.fake import FakeTracker

BRIDGE = """\
plugins:
  - nhd_bridge.testing.fake
state:
  url: sqlite:///state.db
instances:
  A:
    kind: fake
    token: s3cret
  B:
    kind: fake
agreements:
  ab:
    sender: A
    receiver: B
"""


@pytest.fixture
def bridge_file(tmp_path: Path) -> Path:
    path = tmp_path / "bridge.yaml"
    path.write_text(BRIDGE, encoding="utf-8")
    return path


@pytest.fixture
def cli(bridge_file: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.delenv("NHD_BRIDGE_CONFIG", raising=False)
    monkeypatch.delenv("NHD_BRIDGE_PLUGINS", raising=False)

    def invoke(*args: str, config: Path | None = None, env: dict[str, str] | None = None):
        return CliRunner().invoke(main, ["-c", str(config or bridge_file), *args], env=env)

    return invoke


def stderr_lines(result: Result) -> list[str]:
    return result.stderr.splitlines()


def with_fake_entry_point(monkeypatch: pytest.MonkeyPatch, *extra: EntryPoint) -> None:
    """Make ``extra`` look installed under the ``nhd_bridge`` entry-point group."""

    def fake_entry_points(*, group: str):
        return [*entry_points(group=group), *extra]

    monkeypatch.setattr("nhd_bridge.core.plugins.entry_points", fake_entry_points)


# --- configuration errors -----------------------------------------------------------------------

PLUGINS_AND_TWO_FAKES = (
    "plugins: [nhd_bridge.testing.fake]\ninstances:\n  A: {kind: fake}\n  B: {kind: fake}\n"
)

BAD_CONFIGS = [
    pytest.param(PLUGINS_AND_TWO_FAKES + "agreemnts: {}\n", "agreemnts", 5, id="top-level-typo"),
    pytest.param(
        PLUGINS_AND_TWO_FAKES
        + "agreements:\n  ab:\n    sender: A\n    receiver: B\n    sync_tgas: 1\n",
        "agreements.ab.sync_tgas",
        9,
        id="agreement-typo",
    ),
    pytest.param(
        "plugins: [nhd_bridge.testing.fake]\ninstances:\n  A:\n    kind: fake\n    page_sise: 3\n",
        "instances.A.page_sise",
        5,
        id="adapter-option-typo",
    ),
    pytest.param(
        "plugins: [nhd_bridge.testing.fake]\ninstances:\n  A:\n    kind: fake\n"
        "    token: ${NO_SUCH_VAR}\n",
        "instances.A.token",
        5,
        id="missing-env-var",
    ),
    pytest.param(
        "instances:\n  A:\n    kind: jirra\n", "instances.A.kind", 3, id="unknown-adapter-kind"
    ),
    pytest.param(
        PLUGINS_AND_TWO_FAKES + "agreements:\n  ab:\n    sender: A\n    receiver: C\n",
        "agreements.ab.receiver",
        8,
        id="unknown-instance",
    ),
    pytest.param(
        PLUGINS_AND_TWO_FAKES + "agreements:\n  aa:\n    sender: A\n    receiver: A\n",
        "agreements.aa",
        6,
        id="sender-is-receiver",
    ),
    pytest.param(
        PLUGINS_AND_TWO_FAKES
        + "agreements:\n  ab:\n    sender: A\n    receiver: B\n    share_filter: 'a ||'\n",
        "agreements.ab.share_filter",
        9,
        id="bad-share-filter",
    ),
    pytest.param(
        PLUGINS_AND_TWO_FAKES
        + "agreements:\n  ab:\n    sender: A\n    receiver: B\n    schedule: {every: 5 min}\n",
        "agreements.ab.schedule.every",
        9,
        id="bad-schedule",
    ),
    pytest.param(
        "instances:\n  A:\n    kind: fake\n   bad: indent\n", "(top level)", 4, id="invalid-yaml"
    ),
]


@pytest.mark.parametrize(("text", "yaml_path", "line"), BAD_CONFIGS)
def test_bad_config_exits_2_with_one_line_naming_file_path_and_line(
    cli, tmp_path, text, yaml_path, line
):
    config = tmp_path / "bad.yaml"
    config.write_text(text, encoding="utf-8")

    result = cli("validate", config=config)

    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    [message] = stderr_lines(result)
    assert message.startswith(f"error: {config}:{line}: {yaml_path}: ")


@pytest.mark.parametrize("command", [["sync"], ["plan"], ["check"], ["log"], ["explain", "A:1"]])
def test_every_command_that_reads_the_config_reports_it_the_same_way(cli, tmp_path, command):
    config = tmp_path / "bad.yaml"
    config.write_text(PLUGINS_AND_TWO_FAKES + "agreemnts: {}\n", encoding="utf-8")

    result = cli(*command, config=config)

    assert result.exit_code == 2
    assert stderr_lines(result) == [
        f"error: {config}:5: agreemnts: unknown key; did you mean 'agreements'?"
    ]


def test_missing_config_file_exits_2_saying_how_to_point_at_one(cli, tmp_path):
    result = cli("validate", config=tmp_path / "nowhere.yaml")

    assert result.exit_code == 2
    [message] = stderr_lines(result)
    assert "nowhere.yaml" in message and "--config PATH" in message


# --- validate, schema, adapters -----------------------------------------------------------------


def test_validate_says_ok_with_the_counts(cli, bridge_file):
    result = cli("validate")

    assert result.exit_code == 0
    assert result.stdout == (
        f"{bridge_file}: ok — 2 instances, 1 agreements\n"
        f"state store: {bridge_file.parent / 'state.db'} (will be created)\n"
    )


def test_validate_show_prints_the_loaded_config_with_secrets_redacted(cli):
    result = cli("validate", "--show")

    assert result.exit_code == 0
    assert "s3cret" not in result.output
    document = json.loads(result.stdout)  # only the document on stdout
    ok_line = result.stderr
    assert document["instances"]["A"]["token"] == "**********"
    assert document["instances"]["B"]["token"] is None
    assert document["instances"]["A"]["page_size"] == 50
    assert document["agreements"]["ab"]["sender"] == "A"
    assert "ok — 2 instances" in ok_line


def test_validate_show_redacts_a_secret_that_came_from_the_environment(cli, tmp_path):
    config = tmp_path / "env.yaml"
    config.write_text(
        "plugins: [nhd_bridge.testing.fake]\ninstances:\n  A:\n    kind: fake\n"
        "    token: ${FAKE_TOKEN}\n",
        encoding="utf-8",
    )

    result = cli("validate", "--show", config=config, env={"FAKE_TOKEN": "from-env-s3cret"})

    assert result.exit_code == 0
    assert "from-env-s3cret" not in result.output


def test_validate_show_hides_the_password_in_the_state_url(cli, tmp_path):
    with socket.socket() as probe:  # a loopback port nobody listens on once the probe closes
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "pg.yaml"
    config.write_text(
        "plugins: [nhd_bridge.testing.fake]\n"
        f"state: {{url: 'postgresql+psycopg://bridge:hunter2@127.0.0.1:{port}/nhd'}}\n"
        "instances:\n  A: {kind: fake}\n",
        encoding="utf-8",
    )

    result = cli("validate", "--show", config=config)

    # The document is shown, then validate reports the unreachable store; neither shows it.
    assert result.exit_code == 2
    assert json.loads(result.stdout)["state"]["url"].startswith("postgresql+psycopg://bridge:")
    assert "cannot connect" in result.stderr
    assert "hunter2" not in result.output


def test_schema_prints_json_schema_with_the_builtin_local_kind(cli):
    result = cli("schema")

    assert result.exit_code == 0
    schema = json.loads(result.stdout)
    variants = schema["properties"]["instances"]["additionalProperties"]["oneOf"]
    assert "local" in {variant["properties"]["kind"]["const"] for variant in variants}


def test_adapters_lists_an_installed_plugin_with_its_class(cli, monkeypatch):
    with_fake_entry_point(monkeypatch, EntryPoint("fake", "nhd_bridge.testing.fake", "nhd_bridge"))

    result = cli("adapters")

    assert result.exit_code == 0
    assert "fake\tnhd_bridge.testing.fake.FakeAdapter" in result.stdout.splitlines()


def test_adapters_with_no_entry_points_lists_nothing(cli, tmp_path):
    no_config = tmp_path / "absent.yaml"
    result = cli("adapters", config=no_config, env={"NHD_BRIDGE_PLUGINS": ""})

    assert result.exit_code == 0
    assert result.stdout == ""


def test_adapters_lists_the_kinds_of_the_config_plugins_list(cli):
    result = cli("adapters")

    assert "fake\tnhd_bridge.testing.fake.FakeAdapter" in result.stdout.splitlines()


def test_schema_includes_the_kinds_of_the_config_plugins_list(cli):
    schema = json.loads(cli("schema").stdout)

    variants = schema["properties"]["instances"]["additionalProperties"]["oneOf"]
    assert "fake" in {variant["properties"]["kind"]["const"] for variant in variants}


def test_adapters_mentions_a_plugin_that_failed_to_import(cli, monkeypatch):
    with_fake_entry_point(
        monkeypatch, EntryPoint("zendesk", "no_such_module_for_nhd_tests", "nhd_bridge")
    )

    result = cli("adapters")

    assert "zendesk" in result.output


def test_plugin_registering_a_non_adapter_exits_2_with_one_line(
    bridge_file, monkeypatch, tmp_path, capsys
):
    # PluginError is turned into a one-line exit 2 by the console script's function, run().
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["nhd-bridge"] == "nhd_bridge.cli:run"
    module_name = "nhd_tests_broken_plugin"
    (tmp_path / f"{module_name}.py").write_text(
        "from nhd_bridge import hookimpl\n\n"
        "@hookimpl\n"
        "def nhd_register_adapters(register):\n"
        "    register('broken', object)\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module_name, raising=False)
    monkeypatch.delenv("NHD_BRIDGE_PLUGINS", raising=False)
    with_fake_entry_point(monkeypatch, EntryPoint("broken", module_name, "nhd_bridge"))
    monkeypatch.setattr(sys, "argv", ["nhd-bridge", "-c", str(bridge_file), "adapters"])

    with pytest.raises(SystemExit) as exited:
        run()

    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "error: adapter 'broken' is not a subclass of nhd_bridge.Adapter"
    ]


# --- running ------------------------------------------------------------------------------------

SUMMARY = re.compile(
    r"^ab: seen \d+, writes (?P<writes>\d+) \((?P<detail>[^)]*)\), skipped .*, "
    r"conflicts \d+, parked (?P<parked>\d+)$",
    re.MULTILINE,
)


def test_sync_copies_the_ticket_prints_a_summary_and_a_second_sync_writes_nothing(cli):
    a = FakeTracker.named("A")
    a.create_ticket("Printer on fire", comments=["It smokes"])

    first = cli("sync")

    assert first.exit_code == 0, first.output
    match = SUMMARY.search(first.stdout)
    assert match is not None, first.stdout
    assert (match["writes"], match["detail"], match["parked"]) == ("2", "comment 1, create 1", "0")
    [copy] = FakeTracker.named("B").tickets()
    assert copy.subject == "Printer on fire"

    again = cli("sync")

    assert again.exit_code == 0
    match = SUMMARY.search(again.stdout)
    assert match is not None and match["writes"] == "0"


def test_sync_exits_1_and_names_the_parked_ticket_on_stderr(cli):
    FakeTracker.named("A").create_ticket("Denied")
    FakeTracker.named("B").fail_next("create", PermanentError("403: may not create issues"))

    result = cli("sync")

    assert result.exit_code == 1
    assert SUMMARY.search(result.stdout)["parked"] == "1"
    assert any("parked: 403: may not create issues" in line for line in stderr_lines(result))


def test_sync_of_an_unknown_agreement_exits_2_naming_the_known_ones(cli, bridge_file):
    result = cli("sync", "--agreement", "nope")

    assert result.exit_code == 2
    assert stderr_lines(result) == [
        f"error: unknown agreement 'nope'; agreements in {bridge_file}: ab"
    ]


def test_plan_json_lists_the_create_and_writes_nothing(cli):
    FakeTracker.named("A").create_ticket("Only planned", comments=["c1"])

    result = cli("plan", "--json")

    assert result.exit_code == 0
    [entry] = json.loads(result.stdout)
    assert entry["agreement"] == "ab"
    assert re.fullmatch(r"[0-9a-f]{40}", entry["shared_uuid"])
    create, comment = entry["actions"]
    assert (create["kind"], create["target"], create["to"]) == ("create", "B", "Only planned")
    assert (comment["kind"], comment["source"], comment["target"], comment["visibility"]) == (
        "comment",
        "A",
        "B",
        "public",
    )
    assert FakeTracker.named("B").tickets() == []
    assert cli("log").stdout == "the journal is empty\n"


def test_plan_with_nothing_to_do_says_so(cli):
    result = cli("plan")

    assert result.exit_code == 0
    assert result.stdout == "nothing to do: every shared ticket is in sync\n"


def test_log_shows_a_journal_line_per_write(cli):
    FakeTracker.named("A").create_ticket("Logged", comments=["hello"])
    cli("sync")

    result = cli("log")

    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert all(" ab " in line and "A → B" in line for line in lines)
    assert sorted(line.split("A → B ")[1].split(" [")[0] for line in lines) == [
        "comment written",
        "create written",
    ]


def test_explain_names_the_twin_in_the_other_tracker(cli):
    ticket = FakeTracker.named("A").create_ticket("Twins")
    cli("sync")
    [copy] = FakeTracker.named("B").tickets()

    result = cli("explain", f"A:{ticket}")

    assert result.exit_code == 0
    assert f"shared ticket {copy.shared_uuid}" in result.stdout
    assert f"copy in B: {copy.local_id} [linked]" in result.stdout
    assert f"copy in A: {ticket} [linked]" in result.stdout
    assert "agreement ab: shared" in result.stdout


def test_explain_of_an_unshared_ticket_says_whether_it_will_be_shared(cli):
    ticket = FakeTracker.named("A").create_ticket("Not yet")

    result = cli("explain", f"A:{ticket}")

    assert result.exit_code == 0
    assert f"A:{ticket} is not shared with anyone." in result.stdout
    assert "ab: matches; it will be shared on the next run" in result.stdout


def test_explain_of_a_ticket_that_does_not_exist_exits_1(cli):
    missing_here = cli("explain", "A:424242")
    unknown_uuid = cli("explain", "0" * 40)

    assert missing_here.exit_code == 1
    assert "A has no ticket 424242." in missing_here.stdout
    assert unknown_uuid.exit_code == 1
    assert "no shared ticket" in unknown_uuid.stderr


def test_explain_of_an_unknown_instance_exits_2(cli):
    result = cli("explain", "Z:1")

    assert result.exit_code == 2
    assert stderr_lines(result)[0].startswith("error: unknown instance 'Z'")


def test_check_reports_each_instance(cli):
    result = cli("check")

    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "A: ok tracker reachable: fake tracker 'A' holds 0 tickets",
        "B: ok tracker reachable: fake tracker 'B' holds 0 tickets",
    ]


def test_reset_cursor_makes_the_next_sync_read_everything_again_and_write_nothing(cli):
    FakeTracker.named("A").create_ticket("Read twice, written once")
    assert cli("sync").exit_code == 0

    reset = cli("reset-cursor", "--instance", "A")

    assert reset.exit_code == 0
    assert reset.stdout.strip() == "A: cursor reset for ab"
    again = cli("sync")
    match = SUMMARY.search(again.stdout)
    assert match is not None and int(match.group(0).split("seen ")[1].split(",")[0]) >= 1
    assert match["writes"] == "0"


def test_unshare_stops_a_ticket_and_explains_it(cli):
    ticket = FakeTracker.named("A").create_ticket("Shared, then not")
    cli("sync")

    result = cli("unshare", f"A:{ticket}", "--agreement", "ab")

    assert result.exit_code == 0, result.output
    assert "no longer synced under ab" in result.stdout
    FakeTracker.named("A").add_comment(ticket, "after unshare")
    assert SUMMARY.search(cli("sync").stdout)["writes"] == "0"
    assert cli("unshare", "A:999", "--agreement", "ab").exit_code == 2
