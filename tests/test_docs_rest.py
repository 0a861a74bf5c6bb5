"""docs/adapters/rest.md describes every pagination style and every auth type with the settings
each one requires, so that the page a profile writer reads is the models' truth."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from nhd_bridge.adapters.rest.auth import Auth
from nhd_bridge.adapters.rest.paging import STYLES

DOC = Path(__file__).resolve().parents[1] / "docs" / "adapters" / "rest.md"


def section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"### {title}\n")
    end = text.index("\n### ", start + 1)
    return text[start:end]


def bullet(text: str, name: str) -> str:
    """The ``* `name`:`` bullet of a section, continuation lines included."""
    found = re.search(rf"^\* `{name}`[^:\n]*:(.*?)(?=^\* |^\S|\Z)", text, re.MULTILINE | re.DOTALL)
    assert found, f"no bullet for `{name}`"
    return found[1]


def required(model: type[BaseModel], tag: str) -> list[str]:
    return [n for n, f in model.model_fields.items() if f.is_required() and n != tag]


def listed_as_required(text: str) -> list[str]:
    """The names of "required `a`, `b` and `c`" in a bullet (none when it says no such thing)."""
    listed = re.search(r"[Rr]equired ((?:`\w+`(?:,\s+|\s+and\s+)?)+)", text)
    return re.findall(r"`(\w+)`", listed[1]) if listed else []


@pytest.mark.parametrize("style", sorted(STYLES))
def test_each_paging_style_is_described_with_its_required_settings(style: str) -> None:
    text = bullet(section("Pagination"), style)
    assert listed_as_required(text) == required(STYLES[style], "style")


AUTH_MODELS: dict[str, type[BaseModel]] = {
    typing.get_args(model.model_fields["type"].annotation)[0]: model
    for model in typing.get_args(typing.get_args(Auth)[0])
}


@pytest.mark.parametrize("kind", sorted(AUTH_MODELS))
def test_each_auth_type_is_described_with_its_required_settings(kind: str) -> None:
    text = bullet(section("Authentication, headers, concurrency"), kind)
    assert listed_as_required(text) == required(AUTH_MODELS[kind], "type")
