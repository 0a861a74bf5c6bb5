"""Profiles shipped with the REST adapter: one YAML file per tracker, named after it.

A profile is the part of a ``kind: rest`` instance that is the same for everyone using that
tracker: its operations, how to read its documents, its capabilities. Users name it with
``profile:`` and override any key in their own YAML (``docs/adapters/rest.md``).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

__all__ = ["load_profile", "profile_names"]


@cache
def profile_names() -> tuple[str, ...]:
    """Names of the shipped profiles."""
    files = resources.files(__name__).iterdir()
    return tuple(sorted(f.name.removesuffix(".yaml") for f in files if f.name.endswith(".yaml")))


def load_profile(name: str) -> dict[str, Any]:
    """A fresh copy of a shipped profile as plain data; ``ValueError`` names the known ones."""
    if name not in profile_names():
        raise ValueError(
            f"unknown profile {name!r}; shipped profiles: {', '.join(profile_names())}"
        )
    text = resources.files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"profile {name!r} is not a mapping")
    return data
