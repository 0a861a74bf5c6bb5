"""Opening the state store: each way ``state.url`` can be wrong is one line saying how to fix it.

SQLAlchemy reports a directory given as the database, a missing driver or a refused connection as
a long traceback; an operator needs the URL (password hidden), what is wrong, and the fix.
:func:`opening_errors` wraps the creation and migration of the store; :func:`check_store` is the
same diagnosis without creating anything, for ``nhd-bridge validate``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    SQLAlchemyError,
)

__all__ = ["StateStoreError", "check_store", "opening_errors"]

SQLITE_HEADER = b"SQLite format 3\x00"

# The Python module a dialect's driver imports -> how to install it.
_DRIVER_PACKAGES = {
    "psycopg": "pip install 'nhd-bridge[postgres]'",
    "psycopg2": "pip install psycopg2-binary, or write postgresql+psycopg:// and "
    "pip install 'nhd-bridge[postgres]'",
    "MySQLdb": "pip install mysqlclient, or write mysql+pymysql:// and pip install pymysql",
    "pymysql": "pip install pymysql",
    "asyncpg": "the bridge needs a synchronous driver: write postgresql+psycopg:// and "
    "pip install 'nhd-bridge[postgres]'",
}


class StateStoreError(Exception):
    """The state store cannot be opened; ``str()`` is one line: the URL, the problem, the fix."""


@contextmanager
def opening_errors(url: str) -> Iterator[None]:
    """Check a SQLite location first, then turn whatever opening ``url`` raises into a
    :class:`StateStoreError`."""
    parsed = parse_url(url)
    shown = _shown(parsed)
    if _sqlite_file(parsed) is not None:
        _check_sqlite_location(parsed, shown)
    try:
        yield
    except NoSuchModuleError:
        raise StateStoreError(_unknown_dialect(parsed, shown)) from None
    except ImportError as error:
        raise StateStoreError(_missing_driver(error, shown)) from None
    except IntegrityError:
        raise  # a bug in a migration step, not a problem of the operator's making
    except DBAPIError as error:
        raise StateStoreError(_database_error(parsed, shown, error)) from None
    except OSError as error:
        raise StateStoreError(f"state store {shown}: {error.strerror or error}") from None


def check_store(url: str) -> str:
    """What ``validate`` says about the store: it can be opened (nothing is created), or a
    :class:`StateStoreError`. Returns a short description of the store."""
    parsed = parse_url(url)
    shown = _shown(parsed)
    path = _sqlite_file(parsed)
    if path is not None:
        _check_sqlite_location(parsed, shown)
        return f"{path} ({'exists' if path.exists() else 'will be created'})"
    if parsed.get_backend_name() == "sqlite":
        return shown
    with opening_errors(url):
        engine = create_engine(parsed)
        try:
            with engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        finally:
            engine.dispose()
    return shown


def stored_bindings(url: str) -> dict[str, str]:
    """The nhd instances that ``agreements accept``/``invite`` bound to an agreement, read from
    a store that already exists: ``{instance: agreement uuid}``. Creates and migrates nothing
    (``validate`` must not), and a store it cannot read has no bindings to show."""
    parsed = parse_url(url)
    path = _sqlite_file(parsed)
    if path is not None and not path.exists():
        return {}
    from nhd_bridge.core.state.schema import wire_bindings

    engine = create_engine(parsed)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table(wire_bindings.name):
                return {}
            rows = connection.execute(
                select(wire_bindings.c.instance, wire_bindings.c.agreement_uuid)
            )
            return {instance: uuid for instance, uuid in rows}
    except SQLAlchemyError:
        return {}
    finally:
        engine.dispose()


def parse_url(url: str) -> URL:
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise StateStoreError(
            f"state.url {_hide_password(url)!r} is not a database URL; write it like "
            "sqlite:///path/state.db or postgresql+psycopg://user@host/database"
        ) from None


# --- helpers ------------------------------------------------------------------------------------


def _shown(parsed: URL) -> str:
    return parsed.render_as_string(hide_password=True)


def _hide_password(url: str) -> str:
    head, at, tail = url.rpartition("@")
    if not at or "://" not in head:
        return url
    scheme, _, credentials = head.partition("://")
    user, colon, _password = credentials.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{tail}"


def _sqlite_file(parsed: URL) -> Path | None:
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _check_sqlite_location(parsed: URL, shown: str) -> None:
    path = _sqlite_file(parsed)
    assert path is not None
    if path.is_dir():
        raise StateStoreError(
            f"state store {shown}: {path} is a directory; point state.url at a file in it, "
            f"e.g. sqlite:///{path / 'state.db'}"
        )
    if path.exists():
        try:
            with path.open("rb") as database:
                header = database.read(len(SQLITE_HEADER))
        except OSError as error:
            raise StateStoreError(
                f"state store {shown}: {path} cannot be read: {error.strerror}"
            ) from None
        if header and header != SQLITE_HEADER:
            raise StateStoreError(
                f"state store {shown}: {path} is not a SQLite database; point state.url at "
                "another file (this one is left alone)"
            )
        if not os.access(path, os.W_OK):
            raise StateStoreError(
                f"state store {shown}: {path} is not writable; fix its permissions or point "
                "state.url elsewhere"
            )
        return
    existing = path.parent
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise StateStoreError(
            f"state store {shown}: {existing} is a file, so {path} cannot be created under it; "
            "point state.url at a path in a directory"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise StateStoreError(
            f"state store {shown}: cannot create {path}: {existing} is not writable (permissions "
            "or a read-only file system); point state.url at a writable place"
        )


def _unknown_dialect(parsed: URL, shown: str) -> str:
    return (
        f"state store {shown}: no SQLAlchemy dialect {parsed.drivername!r} is installed; the "
        "bridge is tested with sqlite:/// and postgresql+psycopg://"
    )


def _missing_driver(error: ImportError, shown: str) -> str:
    module = (error.name or "").split(".")[0]
    fix = _DRIVER_PACKAGES.get(module, f"install the Python package that provides {module!r}")
    return f"state store {shown}: its database driver {module!r} is not installed; {fix}"


def _database_error(parsed: URL, shown: str, error: DBAPIError) -> str:
    detail = _first_line(error.orig) or type(error.orig).__name__
    if parsed.password:
        detail = detail.replace(str(parsed.password), "***")
    if parsed.get_backend_name() == "sqlite":
        if "not a database" in detail:
            return f"state store {shown}: not a SQLite database ({detail}); use another file"
        return f"state store {shown}: {detail}; check that the file and its directory are writable"
    if error.connection_invalidated or _is_connection_failure(detail):
        where = f"{parsed.host or 'localhost'}:{parsed.port or 'default port'}"
        return (
            f"state store {shown}: cannot connect to {where}: {detail}; is the server running, "
            "and is state.url right?"
        )
    return f"state store {shown}: {detail}"


def _is_connection_failure(detail: str) -> bool:
    words = ("connection", "connect", "refused", "timeout", "resolve", "could not translate")
    return any(word in detail.lower() for word in words)


def _first_line(error: BaseException | None) -> str:
    lines = [line.strip() for line in str(error or "").splitlines() if line.strip()]
    if not lines:
        return ""
    # psycopg says "connection failed: connection to server at ... failed: Connection refused"
    # and then "Is the server running on that host ...?" on the next line.
    return lines[0]
