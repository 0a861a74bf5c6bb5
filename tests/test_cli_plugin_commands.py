"""Commands from plugins: the ``nhd_register_commands`` hook. The built-in ``local`` and
``agreements`` commands join through it exactly as a third-party plugin's command does."""

from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from nhd_bridge import hookimpl
from nhd_bridge.cli import load, main

PLUGIN_MODULE = "nhd_tests_command_plugin"

BRIDGE = """\
plugins: [nhd_bridge.testing.fake]
state: {url: "sqlite:///state.db"}
instances:
  A: {kind: fake}
  B: {kind: fake}
agreements:
  ab: {sender: A, receiver: B}
"""


def greeting_plugin() -> types.ModuleType:
    """A plugin module with one command that reads the configuration it was given."""
    module = types.ModuleType(PLUGIN_MODULE)

    @hookimpl
    def nhd_register_commands(cli: click.Group) -> None:
        @cli.command(name="greet")
        @click.argument("who")
        @click.pass_context
        def greet(ctx: click.Context, who: str) -> None:
            """Say hello to WHO, and how many instances there are."""
            instances = load(ctx).bridge.instances
            click.echo(f"hello {who}, from {len(instances)} instances")

        @cli.command(name="sync")
        def sync() -> None:
            """A plugin command named like a built-in one."""
            click.echo("the plugin's sync")

    module.nhd_register_commands = nhd_register_commands  # type: ignore[attr-defined]
    return module


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The greeting plugin, installed by entry point next to the built-in plugins."""
    from importlib.metadata import entry_points

    monkeypatch.setitem(sys.modules, PLUGIN_MODULE, greeting_plugin())
    extra = EntryPoint("greeting", PLUGIN_MODULE, "nhd_bridge")
    monkeypatch.setattr(
        "nhd_bridge.core.plugins.entry_points",
        lambda *, group: [*entry_points(group=group), extra],
    )
    monkeypatch.delenv("NHD_BRIDGE_PLUGINS", raising=False)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("NHD_BRIDGE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "bridge.yaml"
    path.write_text(BRIDGE, encoding="utf-8")
    return path


def test_a_plugin_installed_by_entry_point_adds_a_command_that_runs(installed, config):
    runner = CliRunner()

    listed = runner.invoke(main, ["-c", str(config), "--help"])
    greeted = runner.invoke(main, ["-c", str(config), "greet", "Ada"])

    assert "greet" in listed.stdout and "Say hello to WHO" in listed.stdout
    assert greeted.exit_code == 0, greeted.output
    assert greeted.stdout == "hello Ada, from 2 instances\n"


def test_a_plugin_command_cannot_take_the_name_of_a_built_in_one(installed, config):
    result = CliRunner().invoke(main, ["-c", str(config), "sync", "--dry-run"])

    assert "the plugin's sync" not in result.output
    assert "syncing ab (dry run)" in result.stdout


def test_local_and_agreements_come_from_their_plugins(monkeypatch, config):
    runner = CliRunner()
    monkeypatch.setenv("NHD_BRIDGE_PLUGINS", "local")
    only_local = runner.invoke(main, ["--help"]).stdout
    monkeypatch.setenv("NHD_BRIDGE_PLUGINS", "")
    none = runner.invoke(main, ["--help"]).stdout
    unknown = runner.invoke(main, ["local", "list"])

    assert "  local " in only_local and "agreements" not in only_local
    assert "  local " not in none and "agreements" not in none
    assert unknown.exit_code == 2 and "No such command 'local'" in unknown.stderr


def test_a_built_in_command_loads_no_plugin(monkeypatch, config):
    def no_plugins(*args: object, **kwargs: object) -> None:
        raise AssertionError("plugins were loaded for a built-in command")

    monkeypatch.setattr("nhd_bridge.core.plugins.Plugins.register_commands", no_plugins)

    result = CliRunner().invoke(main, ["-c", str(config), "validate"])

    assert result.exit_code == 0, result.output


def test_the_main_cli_imports_no_tracker_code():
    import nhd_bridge.cli

    source = Path(nhd_bridge.cli.__file__).read_text(encoding="utf-8")

    assert "nhd_bridge.adapters" not in source
