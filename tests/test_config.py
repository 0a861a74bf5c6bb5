"""Loading the bridge YAML: interpolation, validation, and errors that say where and how to fix.

Every error is one line naming the file, the YAML path and the line, because the person reading
it has the file open in an editor right now.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from nhd_bridge import hookimpl
from nhd_bridge.core.config import ConfigError, LoadedConfig, json_schema, load_config
from nhd_bridge.core.plugins import Plugins
from nhd_bridge.testing import FakeAdapter, FakeConfig, fake, registered_plugin

TWO_FAKES = """\
instances:
  A:
    kind: fake
  B:
    kind: fake
"""


@pytest.fixture
def plugins() -> Plugins:
    plugins = Plugins()
    plugins.register(fake, name="fake")
    return plugins


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str, name: str = "bridge.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write


@pytest.fixture
def load(write, plugins) -> Callable[..., LoadedConfig]:
    def load(text: str, environ: dict[str, str] | None = None) -> LoadedConfig:
        return load_config(write(text), plugins=plugins, environ=environ or {})

    return load


def config_error(load: Callable[..., LoadedConfig], text: str, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load(text, **kwargs)
    return caught.value


def assert_points_at(error: ConfigError, file: Path, path: str, line: int) -> None:
    assert (error.file, error.path, error.line) == (str(file), path, line)
    message = str(error)
    assert message.startswith(f"{file}:{line}: {path}: ")
    assert "\n" not in message


# --- valid files --------------------------------------------------------------------------------


def test_valid_file_loads_instances_agreements_and_adapter_configs(load, tmp_path):
    config = load(
        """\
        version: 1
        instances:
          A:
            kind: fake
            sharing_url: https://a.example.com/sharing
          B:
            kind: fake
            page_size: 7
            private_comments: false
        agreements:
          ab:
            sender: A
            receiver: B
            allows_public_comments: false
            sync_tags: true
            share_filter: "contains(tags, 'escalate')"
            status_map:
              outbound: {open: todo}
            conflicts:
              default: sender
              fields: {subject: receiver}
            schedule:
              every: 30s
        """
    )

    assert config.file == tmp_path / "bridge.yaml"
    assert set(config.bridge.instances) == {"A", "B"}
    assert config.sharing_url("A", lambda: "install-1") == "https://a.example.com/sharing"
    assert config.sharing_url("B", lambda: "install-1", "jira/acme") == "nhd-bridge://jira/acme"
    assert config.sharing_url("B", lambda: "install-1") == "nhd-bridge://install-1/B"
    assert config.adapter_configs["A"] == FakeConfig()
    assert config.adapter_configs["B"] == FakeConfig(page_size=7, private_comments=False)
    agreement = config.bridge.agreements["ab"]
    assert (agreement.sender, agreement.receiver) == ("A", "B")
    assert agreement.allows_public_comments is False and agreement.sync_tags is True
    assert agreement.status_map.outbound == {"open": "todo"}
    assert agreement.conflicts.for_field("subject") == "receiver"
    assert agreement.conflicts.for_field("status") == "sender"
    assert agreement.schedule.interval.total_seconds() == 30


def test_agreement_defaults_are_accepted_full_delegation_every_five_minutes(load):
    config = load(TWO_FAKES + "agreements:\n  ab: {sender: A, receiver: B}\n")

    agreement = config.bridge.agreements["ab"]
    assert agreement.status == "accepted"
    assert agreement.allows_public_comments is True
    assert (agreement.sync_tags, agreement.sync_custom_fields) == (False, False)
    assert agreement.schedule.interval.total_seconds() == 300


# --- interpolation ------------------------------------------------------------------------------


def test_variable_is_replaced_from_the_environment(load):
    config = load(
        """\
        instances:
          A:
            kind: fake
            token: ${FAKE_TOKEN}
            page_size: ${PAGE}
        """,
        environ={"FAKE_TOKEN": "s3cret", "PAGE": "3"},
    )

    assert config.adapter_configs["A"].token.get_secret_value() == "s3cret"
    assert config.adapter_configs["A"].page_size == 3


def test_variable_default_is_used_only_when_the_variable_is_unset(load):
    text = """\
        instances:
          A:
            kind: fake
            sharing_url: https://${HOST:-help.example.com}/sharing
        """

    assert load(text).sharing_url("A", "install-1") == "https://help.example.com/sharing"
    assert load(text, environ={"HOST": "other.example"}).sharing_url("A", "install-1") == (
        "https://other.example/sharing"
    )


def test_empty_default_gives_an_empty_string(load):
    config = load("instances:\n  A:\n    kind: fake\n    sharing_url: x${SUFFIX:-}\n")

    assert config.sharing_url("A", "install-1") == "x"


def test_double_dollar_is_a_literal_dollar_and_is_not_interpolated(load):
    config = load(
        "instances:\n  A:\n    kind: fake\n    sharing_url: 'cost $$5 $${HOME} ${WHO}'\n",
        environ={"HOME": "/root", "WHO": "me"},
    )

    assert config.sharing_url("A", "install-1") == "cost $5 ${HOME} me"


def test_variable_set_to_empty_falls_back_to_the_default_like_the_shell(load):
    config = load(
        "instances:\n  A:\n    kind: fake\n    sharing_url: ${URL:-https://x.example}\n",
        environ={"URL": ""},
    )

    assert config.sharing_url("A", "install-1") == "https://x.example"


def test_missing_variable_names_file_path_line_and_how_to_give_a_default(load, tmp_path):
    error = config_error(
        load,
        """\
        instances:
          A:
            kind: fake
            token: ${FAKE_TOKEN}
        """,
    )

    assert_points_at(error, tmp_path / "bridge.yaml", "instances.A.token", 4)
    assert "FAKE_TOKEN is not set" in error.message
    assert "${FAKE_TOKEN:-default}" in error.message


# --- errors name the file, the YAML path and the line ------------------------------------------


def test_typo_in_a_top_level_key_names_file_path_and_line(load, tmp_path):
    error = config_error(load, TWO_FAKES + "agreemnts:\n  ab: {sender: A, receiver: B}\n")

    assert_points_at(error, tmp_path / "bridge.yaml", "agreemnts", 6)
    assert error.message == "unknown key; did you mean 'agreements'?"


def test_typo_in_agreement_key_names_file_path_and_line(load, tmp_path):
    error = config_error(
        load,
        TWO_FAKES
        + """\
agreements:
  ab:
    sender: A
    receiver: B
    sync_tgas: true
""",
    )

    assert_points_at(error, tmp_path / "bridge.yaml", "agreements.ab.sync_tgas", 10)
    assert "unknown key" in error.message


def test_typo_in_a_nested_agreement_setting_names_its_full_path(load, tmp_path):
    error = config_error(
        load,
        TWO_FAKES
        + """\
agreements:
  ab:
    sender: A
    receiver: B
    conflicts:
      defualt: sender
""",
    )

    assert_points_at(error, tmp_path / "bridge.yaml", "agreements.ab.conflicts.defualt", 11)


def test_typo_in_adapter_option_names_file_path_and_line(load, tmp_path):
    error = config_error(
        load,
        """\
        instances:
          A:
            kind: fake
            page_sise: 3
        """,
    )

    assert_points_at(error, tmp_path / "bridge.yaml", "instances.A.page_sise", 4)
    assert "unknown key" in error.message


def test_bad_adapter_option_value_names_the_option(load, tmp_path):
    error = config_error(load, "instances:\n  A:\n    kind: fake\n    page_size: 0\n")

    assert_points_at(error, tmp_path / "bridge.yaml", "instances.A.page_size", 4)
    assert "greater than or equal to 1" in error.message


def test_unknown_adapter_kind_lists_the_known_kinds(load, tmp_path):
    error = config_error(load, "instances:\n  A:\n    kind: jirra\n")

    assert_points_at(error, tmp_path / "bridge.yaml", "instances.A.kind", 3)
    assert "unknown adapter kind 'jirra'" in error.message
    known = error.message.split("known kinds: ", 1)[1]
    assert "fake" in known.split(", ")


def test_agreement_naming_an_unknown_instance_lists_the_known_ones(load, tmp_path):
    error = config_error(
        load,
        TWO_FAKES
        + """\
agreements:
  ab:
    sender: A
    receiver: C
""",
    )

    assert_points_at(error, tmp_path / "bridge.yaml", "agreements.ab.receiver", 9)
    assert "unknown instance 'C'; known instances: A, B" in error.message


def test_agreement_with_the_same_sender_and_receiver_is_refused(load, tmp_path):
    error = config_error(load, TWO_FAKES + "agreements:\n  aa:\n    sender: A\n    receiver: A\n")

    assert_points_at(error, tmp_path / "bridge.yaml", "agreements.aa", 7)
    assert "two different instances" in error.message


def test_bad_share_filter_names_the_jmespath_problem(load, tmp_path):
    error = config_error(
        load,
        TWO_FAKES
        + """\
agreements:
  ab:
    sender: A
    receiver: B
    share_filter: "contains(tags,"
""",
    )

    assert (error.path, error.line) == ("agreements.ab.share_filter", 10)
    assert "not a valid JMESPath expression" in error.message


def test_bad_share_filter_error_is_one_line(load):
    error = config_error(
        load, TWO_FAKES + "agreements:\n  ab: {sender: A, receiver: B, share_filter: 'a ||'}\n"
    )

    assert "\n" not in str(error)


@pytest.mark.parametrize("every", ["5 minutes", "5", "-1m", "1w"])
def test_bad_schedule_duration_says_how_to_write_one(load, tmp_path, every):
    error = config_error(
        load,
        TWO_FAKES
        + f"""\
agreements:
  ab:
    sender: A
    receiver: B
    schedule:
      every: "{every}"
""",
    )

    assert_points_at(error, tmp_path / "bridge.yaml", "agreements.ab.schedule.every", 11)
    assert "30s, 5m, 1h or 1d" in error.message


def test_invalid_yaml_names_the_file_and_line(load, tmp_path):
    error = config_error(load, "instances:\n  A:\n    kind: fake\n   bad: indent\n")

    assert (error.file, error.line) == (str(tmp_path / "bridge.yaml"), 4)
    assert str(error).startswith(f"{tmp_path / 'bridge.yaml'}:4: ")
    assert "not valid YAML" in error.message
    assert "\n" not in str(error)


def test_plugin_module_that_cannot_be_imported_names_its_list_entry(load, tmp_path):
    error = config_error(load, "plugins:\n  - no_such_plugin_module\n" + TWO_FAKES)

    assert_points_at(error, tmp_path / "bridge.yaml", "plugins[0]", 2)
    assert "'no_such_plugin_module' could not be imported" in error.message


def test_missing_file_says_how_to_point_at_one(plugins, tmp_path):
    with pytest.raises(ConfigError, match="file not found; pass --config PATH"):
        load_config(tmp_path / "nowhere.yaml", plugins=plugins, environ={})


def test_file_that_is_not_a_mapping_is_refused(load):
    error = config_error(load, "- just\n- a list\n")

    assert "expected a mapping" in error.message


def test_instances_are_required(load, tmp_path):
    error = config_error(load, "agreements: {}\n")

    assert (error.file, error.path) == (str(tmp_path / "bridge.yaml"), "instances")
    assert error.message == "required key is missing"


# --- paths are relative to the YAML file --------------------------------------------------------


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from a folder that is not the config's, as cron does."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def test_relative_sqlite_state_url_is_resolved_against_the_yaml_folder(
    write, plugins, tmp_path, elsewhere
):
    file = write('state: {url: "sqlite:///data/state.db"}\n' + TWO_FAKES, "conf/bridge.yaml")

    config = load_config(file, plugins=plugins, environ={})

    assert config.state_url == f"sqlite:///{tmp_path / 'conf' / 'data' / 'state.db'}"


def test_default_state_is_a_sqlite_file_beside_the_yaml(write, plugins, tmp_path, elsewhere):
    file = write(TWO_FAKES, "conf/bridge.yaml")

    config = load_config(file, plugins=plugins, environ={})

    assert config.state_url == f"sqlite:///{tmp_path / 'conf' / '.nhd-bridge' / 'state.db'}"


@pytest.mark.parametrize(
    "url",
    ["sqlite:////var/lib/nhd/state.db", "sqlite:///:memory:", "postgresql+psycopg://db/nhd"],
)
def test_absolute_memory_and_server_state_urls_are_kept(load, url):
    assert load(f'state: {{url: "{url}"}}\n' + TWO_FAKES).state_url == url


def test_relative_sqlite_url_with_a_driver_is_resolved_against_the_yaml_folder(
    write, plugins, tmp_path, elsewhere
):
    file = write('state: {url: "sqlite+pysqlite:///state.db"}\n' + TWO_FAKES)

    config = load_config(file, plugins=plugins, environ={})

    assert config.state_url == f"sqlite+pysqlite:///{tmp_path / 'state.db'}"


class ArchiveConfig(FakeConfig):
    archive: Path
    spool: Path | None = None


class ArchiveAdapter(FakeAdapter):
    kind = "archive"
    config_model = ArchiveConfig


class ArchivePlugin:
    @hookimpl
    def nhd_register_adapters(self, register):
        register("archive", ArchiveAdapter)


@pytest.fixture
def with_archive(plugins: Plugins) -> Iterator[Plugins]:
    with registered_plugin(plugins, ArchivePlugin()):
        yield plugins


def test_relative_path_options_are_resolved_against_the_yaml_folder(
    write, with_archive, tmp_path, elsewhere
):
    file = write(
        "instances:\n  A:\n    kind: archive\n    archive: files/a.db\n    spool: /var/spool/a\n",
        "conf/bridge.yaml",
    )

    config = load_config(file, plugins=with_archive, environ={})

    options = config.adapter_configs["A"]
    assert isinstance(options, ArchiveConfig)
    assert options.archive == tmp_path / "conf" / "files" / "a.db"
    assert options.spool == Path("/var/spool/a")


# --- JSON Schema --------------------------------------------------------------------------------


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_json_schema_has_a_variant_per_adapter_kind_with_its_options(with_archive):
    schema = json.loads(json.dumps(json_schema(with_archive)))

    variants = schema["properties"]["instances"]["additionalProperties"]["oneOf"]
    by_kind = {variant["properties"]["kind"]["const"]: variant for variant in variants}
    assert set(with_archive.adapters()) <= set(by_kind)
    assert {"fake", "archive"} <= set(by_kind)
    assert "page_size" in by_kind["fake"]["properties"]
    assert by_kind["fake"]["additionalProperties"] is False
    assert by_kind["archive"]["required"] == ["kind", "archive"]


def test_json_schema_references_all_resolve(with_archive):
    schema = json_schema(with_archive)

    for ref in _refs(schema):
        assert ref.startswith("#/$defs/"), ref
        assert ref.removeprefix("#/$defs/") in schema["$defs"], ref


def test_json_schema_is_valid_and_accepts_a_valid_file_and_rejects_a_typo(with_archive):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json_schema(with_archive)

    validator = jsonschema.Draft202012Validator
    validator.check_schema(schema)
    good = {
        "instances": {
            "A": {"kind": "fake", "page_size": 3},
            "B": {"kind": "archive", "archive": "x"},
        },
        "agreements": {"ab": {"sender": "A", "receiver": "B"}},
    }
    assert list(validator(schema).iter_errors(good)) == []
    typo = {"instances": {"A": {"kind": "fake", "page_sise": 3}}}
    assert list(validator(schema).iter_errors(typo)) != []
