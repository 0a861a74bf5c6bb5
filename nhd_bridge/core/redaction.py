"""Keeping secrets out of logs, whoever writes the log line.

Our own code never logs a secret, but the HTTP libraries underneath log request URLs (httpx at
INFO, urllib3 at DEBUG), and some trackers take their API key in the query string. Every adapter
registers the secret values of its configuration (see ``Adapter.__init__``); a filter on those
libraries' loggers, and on the handlers ``nhd-bridge serve`` installs, replaces them before any
handler formats the record.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, SecretStr

__all__ = [
    "REDACTED",
    "RedactingFilter",
    "install_log_redaction",
    "redact",
    "redact_document",
    "register_secrets_of",
    "scrub",
]

REDACTED = "**********"
# Loggers of libraries that log URLs or headers of the requests adapters make.
LIBRARY_LOGGERS = ("httpx", "httpcore", "urllib3", "requests", "requests_oauthlib", "jira")
# Shorter values would redact innocent text ("1", "yes"); no real credential is this short.
MINIMUM_SECRET_LENGTH = 6

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secret(value: str) -> None:
    if len(value) >= MINIMUM_SECRET_LENGTH:
        with _lock:
            _secrets.add(value)


def register_secrets_of(model: BaseModel) -> None:
    """Register every ``SecretStr`` value found in a configuration model, nested ones too."""
    for value in _walk(model):
        register_secret(value.get_secret_value())


def redact(text: str) -> str:
    """``text`` without any registered secret."""
    with _lock:
        secrets = list(_secrets)
    return scrub(text, secrets)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` without the given secrets (the longest first, so a token's tail is not left
    behind by its shorter part): for secrets a caller knows that nobody registered, such as a
    token fetched at run time or an agreement's access key."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text


class RedactingFilter(logging.Filter):
    """Rewrites a record's message when it contains a registered secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


_FILTER = RedactingFilter()


def install_log_redaction(*handlers: logging.Handler) -> None:
    """Filter the HTTP libraries' loggers (wherever their records go) and the given handlers
    (which see every record that reaches them, from any logger)."""
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
    for handler in handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)


def _walk(value: Any) -> list[SecretStr]:
    if isinstance(value, SecretStr):
        return [value]
    if isinstance(value, BaseModel):
        return [
            found for field in type(value).model_fields for found in _walk(getattr(value, field))
        ]
    if isinstance(value, dict):
        return [found for item in value.values() for found in _walk(item)]
    if isinstance(value, list | tuple | set):
        return [found for item in value for found in _walk(item)]
    return []


install_log_redaction()


#: Keys whose values a shown configuration masks whatever their type.
SECRET_WORDS = ("password", "token", "secret", "access_key", "api_key", "apikey", "credential")
_URL_PASSWORD = re.compile(r"(://[^/:@\s]+:)([^@/\s]+)(@)")


def redact_document(value: Any, key: str = "") -> Any:
    """A configuration document as ``validate --show`` prints it: secret values (``SecretStr``,
    keys named like a secret, passwords in URLs) masked with the one mask."""
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, dict):
        return {k: redact_document(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_document(v, key) for v in value]
    if value and any(word in key.lower() for word in SECRET_WORDS):
        return REDACTED
    if isinstance(value, str):
        return _URL_PASSWORD.sub(rf"\1{REDACTED}\3", value)
    return value
