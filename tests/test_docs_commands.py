"""Every `nhd-bridge …` command that README.md or a page under docs/ tells people to type exists,
with the options it shows, and answers --help."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from doc_commands import commands, resolve

from nhd_bridge.cli import main

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINES = [
    pytest.param(line, id=f"{page.relative_to(ROOT)}: {line}")
    for page in PAGES
    for line in commands(page.read_text(encoding="utf-8"))
]


def test_the_pages_name_commands_at_all():
    assert len(LINES) >= 20  # the parser still finds what the pages show


@pytest.mark.parametrize("line", LINES)
def test_each_documented_command_exists(line: str) -> None:
    path = resolve(line)

    result = CliRunner().invoke(main, [*path, "--help"])

    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
