"""docs/nhd.md is copy-paste safe: its YAML loads, its commands exist, its keys are real.

- Every ```yaml block loads with ``load_config`` (with the environment variables it names set),
  also with its commented-out ``agreement:`` lines filled in as step 4 of the doc says, and each
  ``nhd`` instance names the receiver's ``base_url`` as its ``our_url``.
- Every ``nhd-bridge …`` command of the doc, in code blocks and inline, resolves to a real click
  command whose options exist, and ``--help`` works for it.
- Every configuration key the doc names in backticks is a field of a configuration model, and
  every setting of the ``nhd`` instance and of the receiver is documented.
"""

from __future__ import annotations

import re
import types
import typing
from pathlib import Path
from typing import Any

import doc_commands
import pytest
from click.testing import CliRunner
from doc_commands import FENCE, resolve
from pydantic import BaseModel

from nhd_bridge.adapters.nhd import NhdConfig
from nhd_bridge.cli import main
from nhd_bridge.core import model
from nhd_bridge.core.config import BridgeConfig, InstanceConfig, load_config
from nhd_bridge.core.plugins import Plugins
from nhd_bridge.core.protocol.settings import ReceiverSettings

DOC = Path(__file__).resolve().parents[1] / "docs" / "nhd.md"
# `key`, `a.b.key`, `key:` or `key: value` in the prose.
INLINE_KEY = re.compile(r"`(?P<key>[a-z][a-z0-9_-]*(?:\.[a-z0-9_-]+)*)(?P<colon>:(?: [^`\n]*)?)?`")
# Quoted output of commands, not keys (`agreements show` prints `delegation: partial`).
OUTPUT_LABELS = frozenset({"delegation"})
ENVIRONMENT = {
    "JIRA_API_TOKEN": "not-a-real-token",
    "ZENDESK_IN_AGREEMENT": "1" * 40,
    "ZENDESK_OUT_AGREEMENT": "2" * 40,
}


def text() -> str:
    return DOC.read_text(encoding="utf-8")


def prose() -> str:
    return FENCE.sub("", text())


def blocks(language: str) -> list[str]:
    return doc_commands.blocks(text(), language)


def commands() -> list[str]:
    return doc_commands.commands(text())


# --- YAML --------------------------------------------------------------------------------------


def test_the_doc_has_yaml_to_copy() -> None:
    assert len(blocks("yaml")) >= 2


@pytest.mark.parametrize("index", range(len(blocks("yaml"))))
def test_each_yaml_block_loads_as_a_configuration(index: int, tmp_path: Path) -> None:
    block = blocks("yaml")[index]
    # As written (agreements still unknown), then with the uuids pasted in (step 4 of the doc).
    pasted = re.sub(r"# agreement: .*", "agreement: " + "a" * 40, block)
    for number, variant in enumerate(dict.fromkeys([block, pasted])):
        path = tmp_path / f"variant{number}" / "nhd-bridge.yaml"
        path.parent.mkdir()
        path.write_text(variant, encoding="utf-8")

        config = load_config(path, environ=dict(ENVIRONMENT))

        receiver = config.bridge.server.receiver
        nhd = {
            name: options
            for name, options in config.adapter_configs.items()
            if isinstance(options, NhdConfig)
        }
        assert nhd, "every block of this doc configures a native partner"
        assert receiver is not None, "an nhd partner needs server.receiver"
        for name, options in nhd.items():
            assert options.our_url == receiver.base_url, f"instances.{name}.our_url"
            assert not options.allow_private_networks, "the copy-paste config stays safe"
            assert options.verify_tls
        assert not receiver.strict, "Zendesk needs the lenient receiver"
        if variant is pasted:
            assert all(options.agreement for options in nhd.values())


# --- commands ----------------------------------------------------------------------------------


def test_the_doc_names_the_commands_a_partner_needs() -> None:
    paths = {" ".join(resolve(line)) for line in commands()}
    assert {
        "serve",
        "validate",
        "check",
        "log",
        "explain",
        "unshare",
        "agreements list",
        "agreements show",
        "agreements invite",
        "agreements accept",
        "agreements decline",
        "agreements deactivate",
    } <= paths


@pytest.mark.parametrize(
    "line",
    [
        "nhd-bridge agreements approve UUID",
        "nhd-bridge unshare support:1 --agreement a --force",
        "nhd-bridge --verbose serve",
        "nhd-bridge reload",
    ],
)
def test_the_check_refuses_what_does_not_exist(line: str) -> None:
    with pytest.raises(AssertionError):
        resolve(line)


@pytest.mark.parametrize("line", commands())
def test_each_command_in_the_doc_exists(line: str) -> None:
    path = resolve(line)

    result = CliRunner().invoke(main, [*path, "--help"])

    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and " ".join(path) in result.output


# --- keys --------------------------------------------------------------------------------------


def _fields(model_class: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    """Field names of a model and of every model nested in its fields."""
    if model_class in seen:
        return set()
    seen.add(model_class)
    names = set(model_class.model_fields)
    for info in model_class.model_fields.values():
        for candidate in _classes(info.annotation):
            names |= _fields(candidate, seen)
    return names


def _classes(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is not None:
        return [found for arg in typing.get_args(annotation) for found in _classes(arg)]
    return []


def known_keys() -> set[str]:
    seen: set[type[BaseModel]] = set()
    keys = _fields(BridgeConfig, seen) | _fields(InstanceConfig, seen)
    plugins = Plugins()
    for kind in ("local", "nhd", "jira"):
        keys |= _fields(plugins.adapter_class(kind).config_model, seen)
    for wire_model in (model.Agreement, model.Ticket, model.Comment):
        keys |= _fields(wire_model, seen)
    return keys


def test_every_key_the_doc_names_exists() -> None:
    keys = known_keys()
    named = set()
    for match in INLINE_KEY.finditer(prose()):
        key = match["key"]
        if ("_" in key or "." in key or match["colon"]) and key not in OUTPUT_LABELS:
            named.add(key.rsplit(".", 1)[-1])
    assert {"allow_private_networks", "base_url", "allows_public_comments"} <= named
    assert named <= keys, f"not a configuration key: {sorted(named - keys)}"


@pytest.mark.parametrize("key", sorted(set(NhdConfig.model_fields) - {"actor_name", "page_size"}))
def test_every_nhd_instance_setting_that_matters_is_documented(key: str) -> None:
    assert f"`{key}" in text()


@pytest.mark.parametrize("key", sorted(ReceiverSettings.model_fields))
def test_every_receiver_setting_is_documented(key: str) -> None:
    assert f"{key}" in text() and re.search(rf"`(server\.receiver\.)?{key}\b", text())
