"""Which optional extra of ``nhd-bridge`` a missing module belongs to, and how to install it.

An adapter or command whose extra is not installed fails with an ``ImportError`` naming some
module deep in its dependencies (``requests`` for Jira, ``starlette`` for the server); what the
operator needs to read is the one command that installs the lot.
"""

from __future__ import annotations

__all__ = ["EXTRA_OF_MODULE", "EXTRA_OF_PLUGIN", "install_command", "missing_extra"]

# Top-level module (as ImportError.name gives it) -> the extra that installs it.
EXTRA_OF_MODULE = {
    "jira": "jira",
    "requests": "jira",
    "requests_toolbelt": "jira",
    "requests_oauthlib": "jira",
    "simple_salesforce": "salesforce",
    "fastapi": "server",
    "starlette": "server",
    "uvicorn": "server",
    "apscheduler": "server",
    "psycopg": "postgres",
}
# Built-in adapter plugins (entry-point names) that need an extra.
EXTRA_OF_PLUGIN = {"jira": "jira", "salesforce": "salesforce"}


def install_command(extra: str) -> str:
    return f"pip install 'nhd-bridge[{extra}]'"


def missing_extra(error: ImportError, what: str, *, extra: str | None = None) -> str:
    """One line: ``what`` needs an extra that is not installed, and the command that installs
    it. ``extra`` is the one ``what`` is known to need; else it is found from the module."""
    module = (error.name or "").split(".")[0]
    extra = extra or EXTRA_OF_MODULE.get(module)
    missing = f"module {module!r} is not installed" if module else str(error)
    if extra is None:
        return f"{what} cannot be used: {missing}; install it in this environment"
    return f"{what} needs the {extra!r} extra ({missing}): {install_command(extra)}"
