"""``nhd_bridge``'s public API is exactly ``__all__``: what plugin authors may rely on."""

from __future__ import annotations

import tomllib
import types
from pathlib import Path

import nhd_bridge

EXPECTED = [
    "Actor",
    "Adapter",
    "AdapterConfig",
    "AdapterContext",
    "AdapterError",
    "Agreement",
    "AgreementTerms",
    "Attachment",
    "AttachmentRef",
    "AttachmentUpload",
    "Capabilities",
    "ChangePage",
    "CheckResult",
    "Comment",
    "CommentDraft",
    "CommentRecord",
    "Direction",
    "NHDValidationError",
    "NotSupported",
    "PermanentError",
    "RunSummary",
    "Ticket",
    "TicketChanges",
    "TicketDraft",
    "TicketRecord",
    "TransientError",
    "__version__",
    "format_timestamp",
    "hookimpl",
    "nhd_uuid",
    "parse_timestamp",
]

# Dunder names a package may export on purpose.
INCLUDED_PRIVATE_MEMBERS = {"__version__"}


def test_all_is_exactly_the_expected_sorted_names():
    assert nhd_bridge.__all__ == EXPECTED
    assert sorted(nhd_bridge.__all__) == nhd_bridge.__all__


def test_every_name_in_all_is_importable():
    namespace: dict[str, object] = {}
    exec("from nhd_bridge import *", namespace)

    for name in nhd_bridge.__all__:
        assert getattr(nhd_bridge, name) is namespace[name], name
    assert set(namespace) - {"__builtins__"} == set(nhd_bridge.__all__)


def test_every_public_attribute_is_in_all():
    # Subpackages (core, testing, ...) become attributes once imported; they are not the API.
    public = sorted(
        name
        for name, value in vars(nhd_bridge).items()
        if not isinstance(value, types.ModuleType)
        and (not name.startswith("_") or name in INCLUDED_PRIVATE_MEMBERS)
    )

    assert public == nhd_bridge.__all__


def test_nothing_private_is_exported():
    for name in nhd_bridge.__all__:
        assert not name.startswith("_") or name in INCLUDED_PRIVATE_MEMBERS, name
        value = getattr(nhd_bridge, name)
        module = getattr(value, "__module__", None)
        if isinstance(value, type | types.FunctionType):
            assert module is not None and module.startswith("nhd_bridge."), (name, module)
            assert not any(part.startswith("_") for part in module.split(".")), (name, module)


def test_exported_classes_and_functions_are_documented():
    for name in nhd_bridge.__all__:
        value = getattr(nhd_bridge, name)
        if isinstance(value, type | types.FunctionType):
            assert (value.__doc__ or "").strip(), f"{name} has no docstring"


def test_version_is_the_one_in_pyproject():
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"

    assert nhd_bridge.__version__ == tomllib.loads(pyproject.read_text())["project"]["version"]
