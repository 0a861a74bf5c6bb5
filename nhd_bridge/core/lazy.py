"""Public names a package re-exports but imports only when first used (PEP 562).

Listing ``nhd-bridge``'s commands loads every installed plugin, and a plugin is its package's
``__init__``: if that imported the adapter (pydantic models, httpx, a vendor library), every
``--help`` would pay for all of them. The package keeps its adapter's names importable from where
users have always imported them, and the adapter's module loads on the first such import.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Sequence

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, names: Iterable[str], modules: Sequence[str]
) -> Callable[[str], object]:
    """A module ``__getattr__`` for ``package`` that finds each of ``names`` in the first of
    ``modules`` defining it. A name is looked up once; afterwards it is a plain attribute."""
    exported = frozenset(names)

    def __getattr__(name: str) -> object:
        if name in exported:
            for module_name in modules:
                module = importlib.import_module(module_name)
                if hasattr(module, name):
                    value = getattr(module, name)
                    setattr(sys.modules[package], name, value)
                    return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
