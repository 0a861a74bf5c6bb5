"""The REST adapter's tiny template language: JSON-shaped YAML with ``{{ expression }}`` holes.

A template is any YAML value. Strings are where values go in:

- a string that is *only* a hole, ``"{{ subject }}"``, becomes the expression's value **as a JSON
  value** (a list stays a list, ``true`` stays a boolean, an object stays an object): values are
  inserted, never spliced into JSON text, so no value can break out of its place;
- a string with text around holes, ``"data/issue/{{ id }}"``, is text: each hole is inserted as
  text (objects and lists as JSON). If any hole in it has no value (``null``), the whole string
  has no value, so ``"{{ since }};"`` disappears instead of becoming ``";"``;
- in a mapping, a key whose templated value has no value is left out: an update body lists every
  field it can send, and only the fields being changed go out. A literal ``null`` written in the
  template stays;
- the key ``"<<"`` merges the object its template gives into the surrounding mapping (custom fields
  as top-level properties, say).

Expressions are JMESPath (https://jmespath.org) over the operation's context, so
``{{ tags[0] }}``, ``{{ !public }}``, ``{{ since || '-1d' }}`` and ``{{ [a, [b]][] }}`` all work.
Nothing is evaluated as code. Templates are compiled when the configuration loads, so a typo is a
configuration error naming where it is, not a failure in the middle of a run.

In URLs, inserted values are percent-encoded (see :func:`render_url`): an id holding ``/`` or ``?``
cannot reach another resource.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import jmespath
import jmespath.exceptions
from jmespath.parser import ParsedResult

__all__ = [
    "MERGE_KEY",
    "TemplateError",
    "compile_expression",
    "expressions_in",
    "render",
    "render_text",
    "render_text_value",
    "render_url",
    "search",
]

MERGE_KEY = "<<"

_HOLE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_ONLY_HOLE = re.compile(r"^\s*\{\{(.*?)\}\}\s*$", re.DOTALL)
_COMPILED: dict[str, ParsedResult] = {}


class TemplateError(ValueError):
    """A template or expression is not valid; the message quotes it."""


def compile_expression(expression: str) -> ParsedResult:
    """Compile (and cache) one JMESPath expression, with an error that quotes it."""
    expression = expression.strip()
    compiled = _COMPILED.get(expression)
    if compiled is None:
        if not expression:
            raise TemplateError("an empty {{ }} hole; write an expression such as {{ subject }}")
        try:
            compiled = jmespath.compile(expression)
        except jmespath.exceptions.JMESPathError as error:
            raise TemplateError(
                f"{expression!r} is not a valid JMESPath expression: {error}"
            ) from None
        _COMPILED[expression] = compiled
    return compiled


def search(expression: str | None, document: Any) -> Any:
    """Evaluate a JMESPath expression (``None`` gives ``None``)."""
    if expression is None:
        return None
    return compile_expression(expression).search(document)


def expressions_in(template: Any) -> Iterator[str]:
    """Every expression inside a template, for validation at load time."""
    if isinstance(template, str):
        for match in _HOLE.finditer(template):
            yield match[1]
    elif isinstance(template, dict):
        for key, value in template.items():
            yield from expressions_in(key)
            yield from expressions_in(value)
    elif isinstance(template, list):
        for item in template:
            yield from expressions_in(item)


def render(template: Any, context: dict[str, Any]) -> Any:
    """Fill a template from ``context``; see the module docstring for the rules."""
    if isinstance(template, str):
        return render_text(template, context)
    if isinstance(template, dict):
        rendered: dict[str, Any] = {}
        for key, value in template.items():
            if key == MERGE_KEY:
                merged = render(value, context)
                if merged is None:
                    continue
                if not isinstance(merged, dict):
                    raise TemplateError(
                        f"'<<' needs an object to merge, got {type(merged).__name__}"
                    )
                rendered.update({k: v for k, v in merged.items() if v is not None})
                continue
            name = render_text(key, context) if isinstance(key, str) else str(key)
            if name is None:
                continue
            item = render(value, context)
            if item is None and value is not None:
                continue  # a hole with no value: the key is left out
            rendered[name] = item
        return rendered
    if isinstance(template, list):
        return [render(item, context) for item in template]
    return template


def render_text(template: str, context: dict[str, Any], *, encode: bool = False) -> Any:
    """A string template: a lone hole keeps its value's type, text around holes makes text."""
    only = _ONLY_HOLE.match(template)
    if only and not encode and "{{" not in only[1]:
        return compile_expression(only[1]).search(context)
    missing = False

    def fill(match: re.Match[str]) -> str:
        nonlocal missing
        value = compile_expression(match[1]).search(context)
        if value is None:
            missing = True
            return ""
        text = _as_text(value)
        return quote(text, safe="") if encode else text

    text = _HOLE.sub(fill, template)
    return None if missing else text


def render_url(template: str, context: dict[str, Any]) -> str:
    """A URL template: every inserted value is percent-encoded; a missing value is an error."""
    url = render_text(template, context, encode=True)
    if url is None:
        raise TemplateError(f"URL template {template!r} refers to a value that is not set")
    return url


def render_text_value(value: Any) -> str:
    """A value as a query parameter or form field: booleans as JSON writes them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
