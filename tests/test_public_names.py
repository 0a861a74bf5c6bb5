"""The names packages re-export lazily (``nhd_bridge.core.lazy``): each one in ``__all__`` is there
and is the object its module defines; a name that is not exported is still an AttributeError."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = [
    "nhd_bridge",
    "nhd_bridge.adapters.jira",
    "nhd_bridge.adapters.local",
    "nhd_bridge.adapters.nhd",
    "nhd_bridge.adapters.rest",
]


@pytest.mark.parametrize("package_name", PACKAGES)
def test_every_exported_name_resolves_to_its_definition(package_name: str) -> None:
    package = importlib.import_module(package_name)

    for name in package.__all__:
        value = getattr(package, name)
        home = getattr(value, "__module__", None)
        if isinstance(home, str) and home.startswith("nhd_bridge"):
            assert getattr(importlib.import_module(home), name) is value


@pytest.mark.parametrize("package_name", PACKAGES)
def test_a_name_it_does_not_export_is_an_attribute_error(package_name: str) -> None:
    package = importlib.import_module(package_name)

    with pytest.raises(AttributeError, match="has no attribute 'NoSuchName'"):
        package.NoSuchName  # noqa: B018
    assert not hasattr(package, "log")  # the adapter module's own, not re-exported


def test_star_import_of_the_public_api_gives_every_name() -> None:
    probe = "from nhd_bridge import *\nprint(Adapter.__name__, nhd_uuid.__name__, hookimpl)"
    printed = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout

    assert printed.startswith("Adapter nhd_uuid ")
