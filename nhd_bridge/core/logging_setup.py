"""How ``nhd-bridge sync`` and ``serve`` log: a level, text or JSON lines, secrets redacted.

One handler on the root logger writes to the process's standard error (looked up at each record,
so that the CLI's neutralising stream and a test runner's capture both apply). Every library's
records reach it, uvicorn's included (``serve`` hands uvicorn no logging configuration of its
own), so the operator's format and the secret redaction hold for every line. The redacting filter
sits on the handler, and the formatter redacts the finished line too: a traceback formatted from
``exc_info`` may quote a URL with a key in it, which the filter (it sees the message only) cannot.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TextIO

from nhd_bridge.core.redaction import install_log_redaction, redact

__all__ = [
    "FORMAT_ENVVAR",
    "LEVEL_ENVVAR",
    "LOG_FORMATS",
    "LOG_LEVELS",
    "JsonLines",
    "configured_logging",
]

LEVEL_ENVVAR = "NHD_BRIDGE_LOG_LEVEL"
FORMAT_ENVVAR = "NHD_BRIDGE_LOG_FORMAT"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# APScheduler says "Running job ..." and "... executed successfully" at INFO for every run of
# every agreement: noise at the default level, kept for --log-level DEBUG.
CHATTY_LOGGERS = ("apscheduler",)


class JsonLines(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, and exc_info
    (the formatted traceback) when the record has one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if record.exc_info:
            line["exc_info"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exc_info"] = redact(record.exc_text)
        if record.stack_info:
            line["stack_info"] = redact(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False, default=str)


class _RedactedText(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _StandardError(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when the record is emitted."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


@contextmanager
def configured_logging(level: str, log_format: str) -> Iterator[logging.Handler]:
    """Log at ``level`` in ``log_format`` (text or json) to standard error until the block
    ends; then the root logger and the quieted libraries are as they were."""
    if level.upper() not in LOG_LEVELS:
        raise ValueError(f"log level {level!r}: use one of {', '.join(LOG_LEVELS)}")
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r}: use one of {', '.join(LOG_FORMATS)}")
    numeric = logging.getLevelName(level.upper())
    handler = _StandardError()
    handler.setFormatter(JsonLines() if log_format == "json" else _RedactedText(TEXT_FORMAT))
    install_log_redaction(handler)
    root = logging.getLogger()
    chatty = [logging.getLogger(name) for name in CHATTY_LOGGERS]
    saved_root_level = root.level
    saved_levels = [logger.level for logger in chatty]
    root.addHandler(handler)
    root.setLevel(numeric)
    for logger in chatty:
        logger.setLevel(logging.DEBUG if numeric <= logging.DEBUG else logging.WARNING)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_root_level)
        for logger, saved in zip(chatty, saved_levels, strict=True):
            logger.setLevel(saved)
