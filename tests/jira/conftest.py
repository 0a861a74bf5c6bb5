"""Fixtures of the Jira adapter tests; the cassette harness itself is in ``jira_harness.py``.

There is deliberately no ``__init__.py`` here: pytest's default (prepend) import mode would make
this folder a package named ``jira`` and shadow the ``jira`` library the adapter is built on.
"""

from __future__ import annotations
