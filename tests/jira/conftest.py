"""Fixtures of the Jira adapter tests; the cassette harness itself is in ``jira_harness.py``.

There is deliberately no ``__init__.py`` here: pytest's default (prepend) import mode would make
this folder a package named ``jira`` and shadow the ``jira`` library the adapter is built on.
"""

from __future__ import annotations

import pytest
from jira_harness import deterministic_contract_uuids


@pytest.fixture(autouse=True)
def _deterministic_contract_uuids(monkeypatch: pytest.MonkeyPatch) -> None:
    deterministic_contract_uuids(monkeypatch)
