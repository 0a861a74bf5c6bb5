"""docs/plugin-hooks.md documents every hook of core/hookspecs.py, under a heading that is the
hook's exact signature, with each parameter explained and an example that runs as a plugin."""

from __future__ import annotations

import inspect
import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pytest

from nhd_bridge import CommentDraft, Direction, RunSummary
from nhd_bridge.core import hookspecs
from nhd_bridge.core.plugins import Plugins

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugin-hooks.md"
HEADING = re.compile(r"^## (?P<name>\w+)\((?P<params>[^)]*)\)[ \t]*$", re.MULTILINE)
PYTHON_BLOCK = re.compile(r"^```python\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)

HOOKS: dict[str, Callable[..., Any]] = {
    name: function
    for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
    if name.startswith("nhd_")
}


def sections() -> dict[str, tuple[str, str]]:
    """Each ``## name(params)`` heading of the doc: its parameter text and its section body."""
    text = DOC.read_text(encoding="utf-8")
    found: dict[str, tuple[str, str]] = {}
    headings = list(HEADING.finditer(text))
    for index, heading in enumerate(headings):
        end = headings[index + 1].start() if index + 1 < len(headings) else len(text)
        next_level_two = re.search(r"^## ", text[heading.end() : end], re.MULTILINE)
        if next_level_two:
            end = heading.end() + next_level_two.start()
        found[heading["name"]] = (heading["params"], text[heading.end() : end])
    return found


def parameters(hook: Callable[..., Any]) -> list[str]:
    return list(inspect.signature(hook).parameters)


# What each hook is called with when its example is run; values like the engine's.
SAMPLE_CALLS: dict[str, Callable[[Plugins], Any]] = {
    "nhd_register_adapters": lambda plugins: plugins.adapters(),
    "nhd_register_commands": lambda plugins: plugins.register_commands(click.Group()),
    "nhd_transform_ticket": lambda plugins: plugins.transform_ticket(
        Direction("ab", "A", "B", "outbound"),
        {"subject": "Printer on fire", "status": "open", "tags": ["vip"], "custom_fields": None},
    ),
    "nhd_transform_comment": lambda plugins: plugins.transform_comment(
        Direction("ab", "B", "A", "inbound"),
        CommentDraft(shared_uuid="c" * 40, body="Card 4111 1111 1111 1111", public=True),
    ),
    "nhd_run_started": lambda plugins: plugins.run_started("ab", "0123456789abcdef"),
    "nhd_run_finished": lambda plugins: plugins.run_finished(
        RunSummary(agreement="ab", run_id="0123456789abcdef", errors=["B could not be read"])
    ),
    "nhd_ticket_parked": lambda plugins: plugins.ticket_parked("ab", "e" * 40, "403: denied"),
}


def test_hookspecs_define_hooks():
    assert len(HOOKS) >= 6


def test_doc_headings_name_no_hook_that_does_not_exist():
    assert set(sections()) <= set(HOOKS)


@pytest.mark.parametrize("hook_name", sorted(HOOKS))
def test_hook_has_a_heading_in_plugin_hooks_md(hook_name):
    assert hook_name in sections(), f"docs/plugin-hooks.md has no '## {hook_name}(...)' heading"


@pytest.mark.parametrize("hook_name", sorted(HOOKS))
def test_heading_names_exactly_the_hooks_parameters(hook_name):
    params, _body = sections().get(hook_name, ("<missing heading>", ""))

    assert params == ", ".join(parameters(HOOKS[hook_name]))


@pytest.mark.parametrize("hook_name", sorted(HOOKS))
def test_each_parameter_is_explained(hook_name):
    _params, body = sections().get(hook_name, ("", ""))

    for parameter in parameters(HOOKS[hook_name]):
        assert re.search(rf"^- `{parameter}`: \S", body, re.MULTILINE), (
            f"{hook_name}: no '- `{parameter}`: ...' line explaining the parameter"
        )


@pytest.mark.parametrize("hook_name", sorted(HOOKS))
def test_example_runs_as_a_plugin_implementing_the_hook(hook_name):
    _params, body = sections().get(hook_name, ("", ""))
    examples = [match["code"] for match in PYTHON_BLOCK.finditer(body)]
    assert examples, f"{hook_name}: no ```python example"

    for code in examples:
        module = types.ModuleType(f"plugin_hooks_example_{hook_name}")
        exec(compile(code, f"<docs/plugin-hooks.md {hook_name}>", "exec"), module.__dict__)
        assert inspect.isfunction(getattr(module, hook_name, None)), (
            f"{hook_name}: the example does not define {hook_name}()"
        )
        plugins = Plugins(load_entry_points=False)
        plugins.register(module)  # pluggy checks the hook's name and argument names
        SAMPLE_CALLS[hook_name](plugins)


def test_every_hook_has_a_sample_call_for_its_example():
    assert set(SAMPLE_CALLS) == set(HOOKS)


def test_register_adapters_example_registers_an_adapter():
    [code] = [m["code"] for m in PYTHON_BLOCK.finditer(sections()["nhd_register_adapters"][1])]
    module = types.ModuleType("plugin_hooks_example_adapters")
    exec(code, module.__dict__)
    plugins = Plugins(load_entry_points=False)

    plugins.register(module)

    assert plugins.adapters(), "the example registers no adapter"


def test_register_commands_example_adds_a_command():
    [code] = [m["code"] for m in PYTHON_BLOCK.finditer(sections()["nhd_register_commands"][1])]
    module = types.ModuleType("plugin_hooks_example_commands")
    exec(code, module.__dict__)
    plugins = Plugins(load_entry_points=False)
    plugins.register(module)
    cli = click.Group()

    plugins.register_commands(cli)

    assert list(cli.commands) == ["instances"]
