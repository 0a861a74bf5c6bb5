"""Jira markup ↔ NHD text: wiki markup (REST v2), Atlassian Document Format (REST v3).

NHD carries a comment as plain text (``body``) and optionally HTML (``html_body``). Jira stores wiki
markup (Data Center, v2) or ADF JSON (Cloud, v3). Both directions go through one small block model:

    paragraphs (lines of inlines) · code blocks · bullet/ordered lists · rules

Plain text is read with just enough structure to survive the trip: fenced code blocks (```lang),
``- ``/``* ``/``1. `` lists and URLs. Everything else is literal text, and is *escaped* on the way
into wiki markup, so a mirrored comment renders exactly as written and a ``[~someone]`` in it does
not ping anybody. Mentions written in Jira (wiki ``[~accountid:…]``, ADF ``mention`` nodes) come
out as plain ``@Name`` text; written back they stay text, never a mention.

Rules that make a round trip (plain → Jira → plain) an identity for ordinary text:

- a literal backslash becomes ``&#92;`` in wiki (``\\`` would be a line break) and back, and an
  ``&`` starting entity-like text becomes ``&#38;``;
- a list starts its own block: ``- x`` inside a paragraph stays text (escaped);
- ``* _ - + ^ ~`` are escaped only where Jira could read them as an effect (not between two letters
  or digits, so ``e-mail`` stays readable); ``{ } [ ] | !`` always; ``#`` at a line start; ``??``;
- code block contents are never escaped or reformatted.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "adf_to_html",
    "adf_to_text",
    "attachment_names_in_adf",
    "attachment_names_in_wiki",
    "text_to_adf",
    "text_to_wiki",
    "wiki_to_html",
    "wiki_to_text",
]


# --- the block model ----------------------------------------------------------------------------


@dataclass
class Inline:
    text: str
    kind: str = "text"  # text | link | code | mention | break
    href: str | None = None
    marks: frozenset[str] = frozenset()  # strong, em


@dataclass
class Block:
    kind: str  # para | code | list | rule
    lines: list[list[Inline]] = field(default_factory=list)  # para lines, or list items
    text: str = ""  # code
    language: str | None = None  # code
    ordered: bool = False  # list
    bullet: str = "-"  # list: the bullet plain text used


def text_to_wiki(text: str) -> str:
    """Plain NHD text → wiki markup that renders as the same text."""
    return _render_wiki(_parse_plain(text))


def wiki_to_text(wiki: str) -> str:
    return _render_plain(_parse_wiki(wiki))


def wiki_to_html(wiki: str) -> str:
    return _render_html(_parse_wiki(wiki))


def text_to_adf(text: str) -> dict[str, Any]:
    """Plain NHD text → an ADF document."""
    return _render_adf(_parse_plain(text))


def adf_to_text(document: Any) -> str:
    return _render_plain(_parse_adf(document))


def adf_to_html(document: Any) -> str:
    return _render_html(_parse_adf(document))


def attachment_names_in_wiki(wiki: str) -> list[str]:
    """Filenames a wiki comment shows or links: ``!file.png!``, ``!file.png|thumbnail!``,
    ``[^file.txt]``."""
    names = re.findall(r"\[\^([^\]|]+)\]", wiki)
    names += re.findall(r"!([^!\s|][^!|\n]*?)(?:\|[^!\n]*)?!", wiki)
    return [name.strip() for name in names]


def attachment_names_in_adf(document: Any) -> list[str]:
    """Filenames of the media nodes of an ADF comment (``attrs.alt`` holds the file name)."""
    names: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in {"media", "mediaInline"}:
                alt = (node.get("attrs") or {}).get("alt")
                if alt:
                    names.append(str(alt))
            for child in node.get("content") or []:
                walk(child)

    walk(document)
    return names


# --- plain text ---------------------------------------------------------------------------------

_FENCE = re.compile(r"^```\s*([\w+#.-]*)\s*$")
_BULLET = re.compile(r"^([-*]) (.*)$")
_NUMBERED = re.compile(r"^(\d+)[.)] (.*)$")
_URL = re.compile(r"https?://[^\s<>\"]+")
_URL_TRAILER = ".,;:!?)]}'"


def _parse_plain(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    index = 0
    para: list[list[Inline]] = []

    def flush() -> None:
        nonlocal para
        if para:
            blocks.append(Block("para", para))
            para = []

    while index < len(lines):
        line = lines[index]
        fence = _FENCE.match(line)
        if fence and "```" in lines[index + 1 :]:
            flush()
            end = lines.index("```", index + 1)
            blocks.append(
                Block("code", text="\n".join(lines[index + 1 : end]), language=fence[1] or None)
            )
            index = end + 1
            continue
        bullet, numbered = _BULLET.match(line), _NUMBERED.match(line)
        # A list starts a block of its own; a bullet inside a paragraph stays text (escaped).
        if not para and (bullet or (numbered and numbered[1] == "1")):
            flush()
            ordered = bullet is None
            items: list[list[Inline]] = []
            mark = bullet[1] if bullet else ""
            while index < len(lines):
                item = _NUMBERED.match(lines[index]) if ordered else _BULLET.match(lines[index])
                if item is None or (not ordered and item[1] != mark):
                    break
                items.append(_plain_inlines(item[2]))
                index += 1
            blocks.append(Block("list", items, ordered=ordered, bullet=mark or "-"))
            continue
        if line.strip():
            para.append(_plain_inlines(line))
        else:
            flush()
        index += 1
    flush()
    return blocks


def _plain_inlines(line: str) -> list[Inline]:
    inlines: list[Inline] = []
    position = 0
    for match in _URL.finditer(line):
        url = match[0].rstrip(_URL_TRAILER)
        end = match.start() + len(url)
        if match.start() > position:
            inlines.append(Inline(line[position : match.start()]))
        inlines.append(Inline(url, "link", href=url))
        position = end
    if position < len(line):
        inlines.append(Inline(line[position:]))
    return inlines


def _render_plain(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if block.kind == "code":
            out.append(f"```{block.language or ''}\n{block.text}\n```")
        elif block.kind == "list":
            out.append(
                "\n".join(
                    (f"{n}. " if block.ordered else f"{block.bullet} ") + _plain_line(item)
                    for n, item in enumerate(block.lines, 1)
                )
            )
        elif block.kind == "rule":
            out.append("---")
        else:
            out.append("\n".join(_plain_line(line) for line in block.lines))
    return "\n\n".join(part for part in out if part != "")


def _plain_line(inlines: list[Inline]) -> str:
    parts = []
    for inline in inlines:
        if inline.kind == "break":
            parts.append("\n")
        elif inline.kind == "link" and inline.href and inline.text != inline.href:
            parts.append(f"{inline.text} ({inline.href})")
        elif inline.kind == "code":
            parts.append(f"`{inline.text}`")
        else:
            text = inline.text
            if "strong" in inline.marks:
                text = f"*{text}*"
            if "em" in inline.marks:
                text = f"_{text}_"
            parts.append(text)
    return "".join(parts)


# --- HTML (output only) -------------------------------------------------------------------------


def _render_html(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if block.kind == "code":
            language = f' class="language-{html.escape(block.language)}"' if block.language else ""
            out.append(f"<pre><code{language}>{html.escape(block.text)}</code></pre>")
        elif block.kind == "list":
            tag = "ol" if block.ordered else "ul"
            items = "".join(f"<li>{_html_line(item)}</li>" for item in block.lines)
            out.append(f"<{tag}>{items}</{tag}>")
        elif block.kind == "rule":
            out.append("<hr>")
        else:
            out.append("<p>" + "<br>".join(_html_line(line) for line in block.lines) + "</p>")
    return "".join(out)


def _html_line(inlines: list[Inline]) -> str:
    parts = []
    for inline in inlines:
        text = html.escape(inline.text)
        if inline.kind == "break":
            parts.append("<br>")
            continue
        if inline.kind == "link" and inline.href:
            text = f'<a href="{html.escape(inline.href)}">{text}</a>'
        elif inline.kind == "code":
            text = f"<code>{text}</code>"
        elif inline.kind == "mention":
            text = f'<span class="mention">{text}</span>'
        if "strong" in inline.marks:
            text = f"<strong>{text}</strong>"
        if "em" in inline.marks:
            text = f"<em>{text}</em>"
        parts.append(text)
    return "".join(parts)


# --- wiki markup --------------------------------------------------------------------------------

_EFFECTS = set("*_-+^~")
_ALWAYS = set("{}[]|!")
_WIKI_BLOCK = re.compile(r"^\{(code|noformat)(?::([^}]*))?\}(.*)$")
_WIKI_LIST = re.compile(r"^\s*([*#-]+) (.*)$")
_WIKI_HEADING = re.compile(r"^\s*(?:h[1-6]|bq)\. (.*)$")


def _render_wiki(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        if block.kind == "code":
            if block.language:
                out.append(f"{{code:{block.language}}}\n{block.text}\n{{code}}")
            else:
                out.append(f"{{noformat}}\n{block.text}\n{{noformat}}")
        elif block.kind == "list":
            mark = "#" if block.ordered else ("*" if block.bullet == "*" else "-")
            out.append("\n".join(f"{mark} {_wiki_line(item, False)}" for item in block.lines))
        elif block.kind == "rule":
            out.append("----")
        else:
            out.append("\n".join(_wiki_line(line, True) for line in block.lines))
    return "\n\n".join(out)


def _wiki_line(inlines: list[Inline], line_start: bool) -> str:
    parts = []
    for position, inline in enumerate(inlines):
        if inline.kind == "link" and inline.href:
            if inline.text == inline.href:
                parts.append(f"[{inline.href}]")
            else:
                parts.append(f"[{_wiki_escape(inline.text, False)}|{inline.href}]")
        elif inline.kind == "break":
            parts.append("\n")
        else:
            parts.append(_wiki_escape(inline.text, line_start and position == 0))
    return "".join(parts)


def _wiki_escape(text: str, line_start: bool) -> str:
    out = []
    for index, char in enumerate(text):
        before = text[index - 1] if index > 0 else ""
        after = text[index + 1] if index + 1 < len(text) else ""
        if char == "\\":
            out.append("&#92;")
        elif char == "&" and re.match(r"&#\d+;", text[index:]):
            out.append("&#38;")  # so that the entity-like text is not read as our escape
        elif char in _ALWAYS or (char in _EFFECTS and not (before.isalnum() and after.isalnum())):
            out.append("\\" + char)
        elif char == "#" and line_start and not text[:index].strip():
            out.append("\\#")
        elif char == "?" and (after == "?" or before == "?"):
            out.append("\\?")
        else:
            out.append(char)
    escaped = "".join(out)
    if line_start and re.match(r"^\s*(?:h[1-6]|bq)\. ", escaped):
        escaped = re.sub(r"\. ", "\\. ", escaped, count=1)
    return escaped


def _parse_wiki(wiki: str) -> list[Block]:
    blocks: list[Block] = []
    lines = wiki.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    para: list[list[Inline]] = []
    index = 0

    def flush() -> None:
        nonlocal para
        if para:
            blocks.append(Block("para", para))
            para = []

    while index < len(lines):
        line = lines[index]
        opening = _WIKI_BLOCK.match(line.strip())
        if opening:
            flush()
            tag = opening[1]
            language = None
            if tag == "code" and opening[2]:
                language = opening[2].split("|")[0].strip() or None
            body: list[str] = [opening[3]] if opening[3] else []
            index += 1
            closing = "{" + tag + "}"
            while index < len(lines) and closing not in lines[index]:
                body.append(lines[index])
                index += 1
            if index < len(lines):
                tail = lines[index].split(closing)[0]
                if tail:
                    body.append(tail)
            blocks.append(Block("code", text="\n".join(body), language=language))
            index += 1
            continue
        item = _WIKI_LIST.match(line)
        if item and set(item[1]) <= {"*", "#", "-"} and not line.strip().startswith("----"):
            flush()
            ordered = item[1][-1] == "#"
            bullet = "*" if item[1][-1] == "*" else "-"
            items: list[list[Inline]] = []
            while index < len(lines):
                match = _WIKI_LIST.match(lines[index])
                if match is None or (match[1][-1] == "#") != ordered:
                    break
                depth = "  " * (len(match[1]) - 1)
                inlines = _wiki_inlines(match[2])
                items.append([Inline(depth), *inlines] if depth else inlines)
                index += 1
            blocks.append(Block("list", items, ordered=ordered, bullet=bullet))
            continue
        if line.strip() == "----":
            flush()
            blocks.append(Block("rule"))
        elif line.strip():
            heading = _WIKI_HEADING.match(line)
            para.append(_wiki_inlines(heading[1] if heading else line))
        else:
            flush()
        index += 1
    flush()
    return blocks


_WIKI_INLINE = re.compile(
    r"\\(?P<escaped>.)"
    r"|&#(?P<entity>92|38);"
    r"|\[~(?:accountid:)?(?P<mention>[^\]]+)\]"
    r"|\[\^(?P<attachment>[^\]]+)\]"
    r"|\[(?:(?P<label>[^\]|]*)\|)?(?P<target>[^\]|]+)\]"
    r"|\{\{(?P<code>.+?)\}\}"
    r"|(?<![\w\\])\*(?P<strong>\S(?:.*?\S)?)\*(?!\w)"
    r"|(?<![\w\\])_(?P<em>\S(?:.*?\S)?)_(?!\w)"
    r"|!(?P<image>[^!\s|][^!|]*?)(?:\|[^!]*)?!"
)


def _wiki_inlines(line: str) -> list[Inline]:
    inlines: list[Inline] = []
    text: list[str] = []
    position = 0

    def emit_text() -> None:
        if text:
            inlines.append(Inline("".join(text)))
            text.clear()

    for match in _WIKI_INLINE.finditer(line):
        text.append(line[position : match.start()])
        position = match.end()
        if match["escaped"] is not None:
            text.append(match["escaped"])
        elif match["entity"] is not None:
            text.append("\\" if match["entity"] == "92" else "&")
        elif match["mention"] is not None:
            emit_text()
            inlines.append(Inline("@" + match["mention"], "mention"))
        elif match["attachment"] is not None:
            text.append(match["attachment"])
        elif match["target"] is not None:
            emit_text()
            target = match["target"].strip()
            label = (match["label"] or "").strip() or target
            if re.match(r"^(https?|mailto|ftp):", target):
                inlines.append(Inline(_unescape_wiki(label), "link", href=target))
            else:
                inlines.append(Inline(_unescape_wiki(label)))
        elif match["code"] is not None:
            emit_text()
            inlines.append(Inline(match["code"], "code"))
        elif match["strong"] is not None:
            emit_text()
            inlines.append(Inline(_unescape_wiki(match["strong"]), marks=frozenset({"strong"})))
        elif match["em"] is not None:
            emit_text()
            inlines.append(Inline(_unescape_wiki(match["em"]), marks=frozenset({"em"})))
        elif match["image"] is not None:
            text.append(match["image"])
    text.append(line[position:])
    emit_text()
    return inlines


def _unescape_wiki(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        if match[1] is not None:
            return match[1]
        return "\\" if match[2] == "92" else "&"

    return re.sub(r"\\(.)|&#(92|38);", one, text)


# --- Atlassian Document Format ------------------------------------------------------------------


def _render_adf(blocks: list[Block]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    for block in blocks:
        if block.kind == "code":
            node: dict[str, Any] = {"type": "codeBlock"}
            if block.language:
                node["attrs"] = {"language": block.language}
            node["content"] = [{"type": "text", "text": block.text}] if block.text else []
            content.append(node)
        elif block.kind == "list":
            content.append(
                {
                    "type": "orderedList" if block.ordered else "bulletList",
                    "content": [
                        {
                            "type": "listItem",
                            "content": [{"type": "paragraph", "content": _adf_inlines(item)}],
                        }
                        for item in block.lines
                    ],
                }
            )
        elif block.kind == "rule":
            content.append({"type": "rule"})
        else:
            inlines: list[dict[str, Any]] = []
            for number, line in enumerate(block.lines):
                if number:
                    inlines.append({"type": "hardBreak"})
                inlines += _adf_inlines(line)
            content.append({"type": "paragraph", "content": inlines})
    return {"type": "doc", "version": 1, "content": content}


def _adf_inlines(inlines: list[Inline]) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    for inline in inlines:
        if inline.kind == "break":
            nodes.append({"type": "hardBreak"})
            continue
        if not inline.text:
            continue
        node: dict[str, Any] = {"type": "text", "text": inline.text}
        marks = [{"type": mark} for mark in sorted(inline.marks)]
        if inline.kind == "link" and inline.href:
            marks.append({"type": "link", "attrs": {"href": inline.href}})
        elif inline.kind == "code":
            marks.append({"type": "code"})
        if marks:
            node["marks"] = marks
        nodes.append(node)
    return nodes


def _parse_adf(document: Any) -> list[Block]:
    if isinstance(document, str):  # a v2 body arriving where ADF was expected
        return _parse_plain(document)
    if not isinstance(document, dict):
        return []
    blocks: list[Block] = []
    for node in document.get("content") or []:
        blocks += _adf_block(node, "")
    return blocks


def _adf_block(node: dict[str, Any], prefix: str) -> list[Block]:
    kind = node.get("type")
    children = node.get("content") or []
    if kind in {"paragraph", "heading"}:
        lines = _adf_lines(children)
        if prefix:
            lines = [[Inline(prefix), *line] for line in lines]
        return [Block("para", lines)] if any(lines) else []
    if kind == "codeBlock":
        text = "".join(child.get("text", "") for child in children)
        return [Block("code", text=text, language=(node.get("attrs") or {}).get("language"))]
    if kind in {"bulletList", "orderedList"}:
        return [Block("list", _adf_items(node, ""), ordered=kind == "orderedList")]
    if kind == "rule":
        return [Block("rule")]
    if kind == "table":
        rows = []
        for row in children:
            cells = [
                adf_to_text({"content": cell.get("content") or []})
                for cell in row.get("content") or []
            ]
            rows.append([Inline("| " + " | ".join(cells) + " |")])
        return [Block("para", rows)]
    blocks: list[Block] = []
    inner_prefix = prefix + "> " if kind == "blockquote" else prefix
    for child in children:  # blockquote, panel, expand, layout…: their inner blocks
        blocks += _adf_block(child, inner_prefix)
    return blocks


def _adf_items(node: dict[str, Any], indent: str) -> list[list[Inline]]:
    """The items of an ADF list; a nested list's items follow their parent, indented."""
    items: list[list[Inline]] = []
    for item in node.get("content") or []:
        for part in item.get("content") or []:
            if part.get("type") in {"bulletList", "orderedList"}:
                items += _adf_items(part, indent + "  ")
                continue
            for block in _adf_block(part, ""):
                for line in block.lines or [[Inline(block.text)]]:
                    items.append([Inline(indent), *line] if indent else line)
    return items


def _adf_lines(nodes: list[dict[str, Any]]) -> list[list[Inline]]:
    lines: list[list[Inline]] = [[]]
    for node in nodes:
        kind = node.get("type")
        attrs = node.get("attrs") or {}
        if kind == "hardBreak":
            lines.append([])
        elif kind == "text":
            marks = {mark.get("type"): mark for mark in node.get("marks") or []}
            text = node.get("text", "")
            if "link" in marks:
                href = (marks["link"].get("attrs") or {}).get("href")
                lines[-1].append(Inline(text, "link", href=href))
            elif "code" in marks:
                lines[-1].append(Inline(text, "code"))
            else:
                kept = frozenset(name for name in ("strong", "em") if name in marks)
                lines[-1].append(Inline(text, marks=kept))
        elif kind == "mention":
            name = str(attrs.get("text") or attrs.get("id") or "someone")
            lines[-1].append(Inline(name if name.startswith("@") else "@" + name, "mention"))
        elif kind in {"inlineCard", "blockCard"} and attrs.get("url"):
            lines[-1].append(Inline(attrs["url"], "link", href=attrs["url"]))
        elif kind == "emoji":
            lines[-1].append(Inline(str(attrs.get("text") or attrs.get("shortName") or "")))
        elif kind in {"status", "date"}:
            lines[-1].append(Inline(str(attrs.get("text") or attrs.get("timestamp") or "")))
    return [line for line in lines if line] or []
