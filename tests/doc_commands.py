"""Reading ``nhd-bridge …`` command lines out of Markdown, and resolving them against the CLI.

Shared by the documentation tests: a command a page tells people to type must exist, with the
options it shows.
"""

from __future__ import annotations

import re
import shlex
import textwrap

import click

from nhd_bridge.cli import main

FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<lang>\w*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S
)
INLINE_COMMAND = re.compile(r"`(nhd-bridge [^`\n]+)`")


def blocks(text: str, language: str) -> list[str]:
    return [
        textwrap.dedent(match["body"])
        for match in FENCE.finditer(text)
        if match["lang"] == language
    ]


def commands(text: str) -> list[str]:
    """Each `nhd-bridge …` command line of a page (code blocks and inline), comments removed."""
    found = [
        line.strip()
        for block in blocks(text, "bash")
        for line in block.splitlines()
        if line.strip().startswith("nhd-bridge ")
    ]
    found += INLINE_COMMAND.findall(text)
    return list(dict.fromkeys(found))


def _option(command: click.Command, name: str) -> click.Parameter | None:
    for param in command.params:
        if isinstance(param, click.Option) and name in (*param.opts, *param.secondary_opts):
            return param
    return None


def resolve(line: str) -> list[str]:
    """The command path of a doc line (``["agreements", "accept"]``); fails on an unknown
    command or option."""
    tokens = shlex.split(line, comments=True)
    assert tokens[0] == "nhd-bridge", line
    command: click.Command = main
    path: list[str] = []
    rest = iter(tokens[1:])
    for token in rest:
        if token.startswith("-"):
            name = token.split("=", 1)[0]
            if name == "--help":
                continue
            option = _option(command, name)
            assert option is not None, f"{line!r}: {' '.join(path) or 'nhd-bridge'} has no {name}"
            if not option.is_flag and not option.count and "=" not in token:
                next(rest, None)  # the option's value
        elif isinstance(command, click.Group):
            ctx = click.Context(main)
            sub = command.get_command(ctx, token)
            assert sub is not None, f"{line!r}: no command {token!r} in {' '.join(path) or 'main'}"
            command = sub
            path.append(token)
        # else: an argument of a leaf command (UUID, INSTANCE:ID, ...)
    return path
