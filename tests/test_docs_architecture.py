"""docs/architecture.md names files and classes; each must exist, so the page cannot drift from
the code it walks through."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE = (ROOT / "docs" / "architecture.md").read_text()
PACKAGE = ROOT / "nhd_bridge"
SOURCES = [path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py")]

# `core/side_pass.py`, `writer.py`, `adapters/jira/adapter.py`, `state/`, `doctor/` ...
NAMED_FILES = sorted(
    name for name in set(re.findall(r"`([\w/]+(?:\.py|/))`", PAGE)) if not name.startswith("docs/")
)
# `SidePass.read_side`, `TicketIntake.consider`, `JiraAdapter.changed_since` ...
NAMED_METHODS = sorted(set(re.findall(r"`([A-Z]\w+)\.(\w+)`", PAGE)))


def _exists(name: str) -> bool:
    """A file named by its last path parts, or a folder holding some file."""
    if name.endswith("/"):
        return any(f"/{name}" in f"/{source}" for source in SOURCES)
    return any(f"/{source}".endswith(f"/{name}") for source in SOURCES)


def test_the_page_names_files():
    assert len(NAMED_FILES) > 20 and len(NAMED_METHODS) > 5


@pytest.mark.parametrize("name", NAMED_FILES)
def test_each_named_file_exists(name: str):
    assert _exists(name), f"docs/architecture.md names {name}, which nhd_bridge/ does not hold"


@pytest.mark.parametrize(("cls", "method"), NAMED_METHODS)
def test_each_named_method_exists(cls: str, method: str):
    pattern = re.compile(rf"class {cls}\b[\s\S]*?def {method}\(")
    assert any(pattern.search((PACKAGE / source).read_text()) for source in SOURCES), (
        f"docs/architecture.md names {cls}.{method}, which no class of nhd_bridge/ defines"
    )
