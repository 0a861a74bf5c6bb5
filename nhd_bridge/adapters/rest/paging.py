"""How a list operation pages: one model per ``pagination.style``, each with the settings that
style needs, and a ``next`` step that computes the next page's request from the answer just read.

Styles: ``none``; ``page`` (page number + page size); ``offset`` (offset + limit); ``cursor``
(a token from the body sent back as a parameter); ``link_header`` (RFC 8288
``Link: <...>; rel="next"``); ``next_url`` (a URL in the body); ``keyset`` (the next page asks
for items from the last one's ``key`` on: a stable order that an item changed or deleted during
the read cannot shift, see docs/adrs/0007-reads-that-survive-moving-pages.md).

:func:`read_pages` walks the pages. It stops a read that does not move on with a
:class:`PermanentError` (a page that repeats the one before it, a next page that is the page just
read, more than ``max_pages``): a server that ignores the paging parameters must neither loop
for ever nor hand the same tickets over and over while others are never read.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Annotated, Any, ClassVar, Literal, Protocol, TypeVar
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field

from nhd_bridge.adapters.rest.template import render, render_text_value, search
from nhd_bridge.core.adapter import PermanentError

__all__ = [
    "STYLES",
    "CursorPaging",
    "KeysetPaging",
    "LinkHeaderPaging",
    "NextUrlPaging",
    "NoPaging",
    "OffsetPaging",
    "PageNumberPaging",
    "PageRequest",
    "Paging",
    "paging_from",
    "read_pages",
    "same_site",
    "settings_of",
]


@dataclass(frozen=True)
class PageRequest:
    """One page's request.

    ``params`` ``None`` keeps the URL's own query (a next link from the server). ``read`` counts
    the items of the pages before this one; ``after`` is keyset paging's last key read."""

    url: str
    params: dict[str, Any] | None
    read: int = 0
    after: Any = None


@dataclass(frozen=True)
class Page:
    """What a page's answer gave: the decoded body, the response, the listed items."""

    data: Any
    response: httpx.Response
    items: list[Any]


class _Paging(BaseModel):
    """What every style has: the page size, the parameter it travels in, and a guard."""

    model_config = ConfigDict(extra="forbid")

    style: str
    page_size: int = Field(default=100, gt=0)
    size_param: str | None = Field(default=None, description="page size parameter, if any")
    max_pages: int = Field(default=10_000, gt=0, description="a guard against a looping server")
    stable_order: bool = Field(
        default=False,
        description="true when the list is sorted by something a change cannot move (an id, "
        "the creation time): the next read then starts when this one began, and page and "
        "offset reads resume where they stopped (ADR 0007). Pages over an order by update time "
        "shift when a ticket changes during the read, and a ticket pushed past a page boundary "
        "is missed",
    )

    #: The settings of this style that hold JMESPath (checked when the config loads).
    expression_fields: ClassVar[tuple[str, ...]] = ()

    def first(self, url: str, params: dict[str, Any], start_key: Any = None) -> PageRequest:
        """The first page's request: the operation's own URL and parameters, plus paging's."""
        sized = dict(params)
        if self.size_param:
            sized[self.size_param] = str(self.page_size)
        return PageRequest(url, sized)

    def fresh(self, request: PageRequest, items: list[Any]) -> list[Any]:
        """The items of a page that the read has not given yet."""
        return items

    def position_after(self, position: Any, items: list[Any]) -> Any:
        """Where a read over a stable order is after a page of ``items`` read from
        ``position``, for a later run to resume there. ``None`` where the style cannot say (a
        next link or token is not kept): a run that stops mid-read reads from the start again,
        and the cursor's fingerprints skip what it gave already."""
        return None

    def next(self, request: PageRequest, page: Page) -> PageRequest | None:
        """The next page's request, or ``None`` when ``page`` was the last."""
        raise NotImplementedError

    def describe(self) -> str:
        """The settings that decide where the next page is, for messages."""
        return f"style {self.style}"

    def expressions(self) -> dict[str, str]:
        found = {name: getattr(self, name) for name in self.expression_fields}
        return {name: value for name, value in found.items() if value is not None}


class NoPaging(_Paging):
    """One request gives everything."""

    style: Literal["none"] = "none"

    def next(self, request: PageRequest, page: Page) -> PageRequest | None:
        return None


class _Counted(_Paging):
    """Numbered pages: stop on an empty or short page, or when ``total`` items were read."""

    total: str | None = Field(default=None, description="JMESPath to the total item count")

    expression_fields: ClassVar[tuple[str, ...]] = ("total",)

    def first(self, url: str, params: dict[str, Any], start_key: Any = None) -> PageRequest:
        """``start_key`` (the items a stopped read had read) counts as read already."""
        return replace(super().first(url, params), read=int(start_key or 0))

    def position_after(self, position: Any, items: list[Any]) -> Any:
        """The number of items read: the offset of the next page."""
        return int(position or 0) + len(items)

    def _last(self, request: PageRequest, page: Page) -> bool:
        count = len(page.items)
        total = search(self.total, page.data) if self.total else None
        if count == 0 or (total is None and count < self.page_size):
            return True
        return total is not None and request.read + count >= int(total)


class PageNumberPaging(_Counted):
    """``page_param`` counts pages from ``first_page``; ``size_param`` = ``page_size``."""

    style: Literal["page"]
    page_param: str = "page"
    first_page: int = 1

    def first(self, url: str, params: dict[str, Any], start_key: Any = None) -> PageRequest:
        """A read that had read some items (a multiple of the page size) starts at the page
        after them."""
        request = super().first(url, params, start_key)
        number = self.first_page + request.read // self.page_size
        return replace(request, params={**(request.params or {}), self.page_param: str(number)})

    def next(self, request: PageRequest, page: Page) -> PageRequest | None:
        if self._last(request, page):
            return None
        params = request.params or {}
        number = int(params.get(self.page_param, self.first_page))
        return PageRequest(
            request.url,
            {**params, self.page_param: str(number + 1)},
            read=request.read + len(page.items),
        )

    def describe(self) -> str:
        return f"style page, page_param {self.page_param!r}"


class OffsetPaging(_Counted):
    """``offset_param`` = items read so far; ``size_param`` = ``page_size``."""

    style: Literal["offset"]
    offset_param: str = "offset"

    def first(self, url: str, params: dict[str, Any], start_key: Any = None) -> PageRequest:
        """A read that had read some items starts at that offset."""
        request = super().first(url, params, start_key)
        return replace(
            request, params={**(request.params or {}), self.offset_param: str(request.read)}
        )

    def next(self, request: PageRequest, page: Page) -> PageRequest | None:
        if self._last(request, page):
            return None
        read = request.read + len(page.items)
        return PageRequest(
            request.url, {**(request.params or {}), self.offset_param: str(read)}, read=read
        )

    def describe(self) -> str:
        return f"style offset, offset_param {self.offset_param!r}"


class CursorPaging(_Paging):
    """A token read from the body (``next_token``) is sent back as ``token_param``; an empty
    token ends the read."""

    style: Literal["cursor"]
    next_token: str = Field(description="JMESPath to the next page's token in the answer")
    token_param: str = Field(default="cursor", description="the parameter the token is sent in")

    expression_fields: ClassVar[tuple[str, ...]] = ("next_token",)

    def next(self, request: PageRequest, page: Page) -> PageRequest | None:
        token = search(self.next_token, page.data)
        if token in (None, ""):
            return None
        params = {**(request.params or {}), self.token_param: str(token)}
        return PageRequest(request.url, params, read=request.read + len(page.items))

    def describe(self) -> str:
        return f"style cursor, next_token {self.next_token!r}, token_param {self.token_param!r}"


class LinkHeaderPaging(_Paging):
    """The next page is the RFC 8288 ``Link: <...>; rel="next"`` of the answer (GitHub)."""

    style: Literal["link_header"]

    def next(self, request: PageRequest, page: Page) -> PageRequest | None:
        following = page.response.links.get("next", {}).get("url")
        if not following:
            return None
        return PageRequest(following, None, read=request.read + len(page.items))


class NextUrlPaging(_Paging):
    """The next page is the URL at ``next_url`` (JMESPath) in the body; none ends the read."""

    style: Literal["next_url"]
    next_url: str = Field(description="JMESPath to the next page's URL in the answer")

    expression_fields: ClassVar[tuple[str, ...]] = ("next_url",)

    def next(self, request: PageRequest, page: Page) -> PageRequest | None:
        following = search(self.next_url, page.data)
        if not following:
            return None
        return PageRequest(str(following), None, read=request.read + len(page.items))

    def describe(self) -> str:
        return f"style next_url, next_url {self.next_url!r}"


class KeysetPaging(_Paging):
    """The next page asks for items from the last one's ``key`` on, by ``key_param`` =
    ``key_value``: a stable order that an item changed or deleted during the read cannot shift
    (ADR 0007). Stops on a short page."""

    style: Literal["keyset"]
    stable_order: Literal[True] = Field(default=True, description="always: ordered by the key")
    key: str = Field(description="JMESPath to an item's position (an increasing id)")
    key_param: str = Field(description="the parameter of the bound")
    key_value: str = Field(
        default="{{ key }}",
        description="template of the bound over {{ key }}; an inclusive bound (>=) is fine, the "
        "item read already is dropped",
    )

    expression_fields: ClassVar[tuple[str, ...]] = ("key",)

    def first(self, url: str, params: dict[str, Any], start_key: Any = None) -> PageRequest:
        """``start_key`` starts the read at that key, as the page after the one that ended with
        it would."""
        request = super().first(url, params)
        if start_key is None:
            return request
        bounded = {**(request.params or {}), self.key_param: self.bound(start_key)}
        return replace(request, params=bounded, after=start_key)

    def fresh(self, request: PageRequest, items: list[Any]) -> list[Any]:
        if request.after is None:
            return items
        return [item for item in items if _after(self.key_of(item), request.after)]

    def next(self, request: PageRequest, page: Page) -> PageRequest | None:
        if not self.fresh(request, page.items) or len(page.items) < self.page_size:
            return None
        last = self.key_of(page.items[-1])
        params = {**(request.params or {}), self.key_param: self.bound(last)}
        return PageRequest(request.url, params, read=request.read + len(page.items), after=last)

    def describe(self) -> str:
        return f"style keyset, key {self.key!r}, key_param {self.key_param!r}"

    def position_after(self, position: Any, items: list[Any]) -> Any:
        """The key of the last item read."""
        return search(self.key, items[-1]) if items else position

    def bound(self, key: Any) -> str:
        return render_text_value(render(self.key_value, {"key": key}))

    def key_of(self, item: Any) -> Any:
        value = search(self.key, item)
        if value is None:
            raise PermanentError(
                f"pagination.key ({self.key!r}) found nothing in a listed item; keyset paging "
                "needs it on every item"
            )
        return value


Paging = Annotated[
    NoPaging
    | PageNumberPaging
    | OffsetPaging
    | CursorPaging
    | LinkHeaderPaging
    | NextUrlPaging
    | KeysetPaging,
    Field(discriminator="style"),
]

STYLES: dict[str, type[_Paging]] = {
    "none": NoPaging,
    "page": PageNumberPaging,
    "offset": OffsetPaging,
    "cursor": CursorPaging,
    "link_header": LinkHeaderPaging,
    "next_url": NextUrlPaging,
    "keyset": KeysetPaging,
}


def paging_from(value: Any) -> Any:
    """The model of a ``pagination:`` mapping, chosen by its ``style`` (default ``none``).

    Raises :class:`ValueError` naming what the style lacks or what does not belong to it, so
    that ``nhd-bridge validate`` shows the fix at the ``pagination:`` line."""
    if isinstance(value, _Paging) or not isinstance(value, dict):
        return value
    style = value.get("style", "none")
    model = STYLES.get(style) if isinstance(style, str) else None
    if model is None:
        guess = difflib.get_close_matches(str(style), STYLES, 1, 0.6)
        hint = f"; did you mean {guess[0]!r}?" if guess else ""
        raise ValueError(f"pagination style {style!r} is not one of {', '.join(STYLES)}{hint}")
    missing = [
        name
        for name, field in model.model_fields.items()
        if field.is_required() and name != "style" and name not in value
    ]
    if missing:
        needs = " and ".join(f"{name} ({model.model_fields[name].description})" for name in missing)
        raise ValueError(f"pagination style {style} needs {needs}")
    foreign = [name for name in value if name not in model.model_fields and _styles_with(name)]
    if foreign:
        raise ValueError(
            f"{', '.join(foreign)} {'is' if len(foreign) == 1 else 'are'} not a setting of "
            f"pagination style {style} ({foreign[0]} belongs to style "
            f"{' and '.join(_styles_with(foreign[0]))}); remove "
            f"{'it' if len(foreign) == 1 else 'them'} or change the style"
        )
    return model.model_validate(value)


def _styles_with(name: str) -> list[str]:
    return [style for style, model in STYLES.items() if name in model.model_fields]


def settings_of(style: Any) -> set[str]:
    """The keys a ``pagination:`` mapping of ``style`` may hold (none for an unknown style)."""
    model = STYLES.get(style) if isinstance(style, str) else None
    return set(model.model_fields) if model is not None else set()


# --- reading the pages --------------------------------------------------------------------------


class _Answer(Protocol):
    data: Any
    response: httpx.Response


AnswerT = TypeVar("AnswerT", bound=_Answer)


def read_pages(
    paging: _Paging,
    first: PageRequest,
    fetch: Callable[[PageRequest], AnswerT],
    *,
    items_at: str | None,
    base_url: str,
    what: str,
) -> Iterator[tuple[list[Any], AnswerT]]:
    """Each page's new items (``items_at``: JMESPath to them) with the answer they came in.

    A read that does not move on is stopped with a :class:`PermanentError`: a page whose items
    are those of the page before (the server ignores the paging parameter), a next page that is
    the page just read, more than ``max_pages`` pages."""
    request = first
    previous: list[Any] | None = None
    number = 0
    while True:
        number += 1
        if number > paging.max_pages:
            raise PermanentError(
                f"{what}: more than {paging.max_pages} pages; the pagination settings "
                "probably loop (check operations.*.pagination)"
            )
        answer = fetch(request)
        items = _items(items_at, answer.data, what)
        if items and items == previous:
            raise PermanentError(
                f"{what}: page {number} repeats page {number - 1} ({len(items)} identical "
                f"items): the tracker does not follow the pagination ({paging.describe()}); "
                "stopping rather than reading the same page again, check it against the API"
            )
        yield paging.fresh(request, items), answer
        following = paging.next(request, Page(answer.data, answer.response, items))
        if following is None:
            return
        if following.url != request.url:
            following = replace(following, url=same_site(following.url, base_url))
        if (following.url, following.params) == (request.url, request.params):
            raise PermanentError(
                f"{what}: the answer to page {number} points at page {number} again "
                f"({paging.describe()}); stopping rather than reading it for ever, check the "
                "pagination against the API"
            )
        request, previous = following, items


def same_site(url: str, base_url: str) -> str:
    """A next-page URL from the server; refused if it leaves the API's host (the credentials
    would follow it)."""
    absolute = urljoin(base_url, url)
    if urlsplit(absolute).netloc != urlsplit(base_url).netloc:
        raise PermanentError(
            f"the next page is on another host ({urlsplit(absolute).netloc}); refusing to "
            "send credentials there"
        )
    return absolute


def _items(items_at: str | None, data: Any, what: str) -> list[Any]:
    items = search(items_at, data) if items_at else data
    if items is None:
        return []
    if not isinstance(items, list):
        raise PermanentError(
            f"{what}: {items_at or '@'} gave {type(items).__name__}, not a list; "
            "check the operation's items expression against the API's answer"
        )
    return items


def _after(value: Any, bound: Any) -> bool:
    """Whether a key comes after the bound: numbers as numbers (ids), anything else as text."""
    try:
        return float(value) > float(bound)
    except (TypeError, ValueError):
        return str(value) > str(bound)
