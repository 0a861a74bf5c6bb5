"""Terminal-safe output: what a partner wrote never drives the operator's terminal.

Subjects, comments, author names, attachment URLs and invite names come from other companies.
Printed raw, an ``ESC ] 52`` sequence writes the operator's clipboard, ``ESC ] 0`` retitles the
window, an 8-bit CSI (U+009B) moves the cursor over earlier lines. :func:`neutralise` turns every
C0 control but newline and tab, DEL, and every C1 control into its visible ``\\u001b`` spelling;
an escape sequence loses its ESC and is left as plain text. The same spelling is a JSON string
escape, so JSON output stays valid JSON and still decodes to the partner's exact text.

:func:`neutralised_output` applies it to everything written to stdout and stderr for the duration
of a CLI command (click's ``echo`` looks the streams up at each call), and :class:`SafeConsole` to
what rich renders, while rich's own styling still reaches the terminal.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from rich.console import Console
from rich.segment import Segment

__all__ = ["NeutralisingStream", "SafeConsole", "neutralise", "neutralised_output"]

# C0 except TAB (09) and LF (0A), DEL, and C1 (80-9F).
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def neutralise(text: str) -> str:
    """``text`` with every control character but newline and tab spelled ``\\uXXXX``."""
    return _CONTROLS.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


class NeutralisingStream:
    """A text stream that neutralises what is written to it; everything else is delegated."""

    def __init__(self, stream: TextIO):
        self.unneutralised = stream

    def write(self, text: str) -> int:
        self.unneutralised.write(neutralise(text))
        return len(text)

    def writelines(self, lines: Iterable[str]) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, isatty, encoding, buffer...
        return getattr(self.unneutralised, name)


@contextmanager
def neutralised_output() -> Iterator[None]:
    """Neutralise sys.stdout and sys.stderr until the block ends (nesting is harmless)."""
    saved = sys.stdout, sys.stderr
    if not isinstance(sys.stdout, NeutralisingStream):
        sys.stdout = NeutralisingStream(sys.stdout)
    if not isinstance(sys.stderr, NeutralisingStream):
        sys.stderr = NeutralisingStream(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


class SafeConsole(Console):
    """A rich console that neutralises the text it renders (not the styles it adds) and writes
    past :func:`neutralised_output`, which would otherwise spell out rich's own colours."""

    def render(self, renderable: Any, options: Any = None) -> Iterable[Segment]:
        for segment in super().render(renderable, options):
            if segment.control or not _CONTROLS.search(segment.text):
                yield segment
            else:
                yield Segment(neutralise(segment.text), segment.style, segment.control)

    @property
    def file(self) -> Any:
        stream = Console.file.fget(self)  # type: ignore[attr-defined]
        return getattr(stream, "unneutralised", stream)

    @file.setter
    def file(self, value: Any) -> None:
        Console.file.fset(self, value)  # type: ignore[attr-defined]
