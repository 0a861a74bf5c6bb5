"""Units of the rules issue 8 added to the REST adapter, on a mock transport: which writes are
repeated, keyset paging, where a marker counts, descriptions, cursors safe after every page."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from nhd_bridge.adapters.rest import RestAdapter, RestConfig
from nhd_bridge.adapters.rest.config import Pagination, deep_merge
from nhd_bridge.adapters.rest.http import AmbiguousWrite, RestClient

BASE: dict[str, Any] = {
    "base_url": "https://tracker.example/api/",
    "operations": {
        "list_changed": {"url": "tickets", "items": "tickets"},
        "get": {"url": "tickets/{{ id }}"},
        "create": {"method": "POST", "url": "tickets", "body": {"t": "{{ subject }}"}},
        "update": {"method": "PUT", "url": "tickets/{{ id }}", "body": {"t": "{{ subject }}"}},
        "add_comment": {"method": "POST", "url": "tickets/{{ id }}/comments"},
    },
    "retries": {"attempts": 3, "backoff_seconds": 0},
}


def rest_client(handler: Any, **overrides: Any) -> RestClient:
    config = RestConfig.model_validate(deep_merge(BASE, overrides))
    return RestClient(config, transport=httpx.MockTransport(handler), sleep=lambda s: None)


@pytest.mark.parametrize(
    ("method", "idempotent", "calls"),
    [
        ("POST", None, 1),
        ("PATCH", None, 1),
        ("PUT", False, 1),
        ("PUT", None, 3),
        ("PATCH", True, 3),
    ],
)
def test_a_write_that_may_have_happened_is_repeated_only_when_idempotent(
    method: str, idempotent: bool | None, calls: int
) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(502)

    rest = rest_client(handler)
    with pytest.raises(AmbiguousWrite if calls == 1 else Exception) as caught:
        rest.request(method, "tickets/1", what="writing", idempotent=idempotent)
    assert len(seen) == calls
    if calls == 3:
        assert not isinstance(caught.value, AmbiguousWrite)


def test_a_write_never_sent_is_sent_again_even_when_not_idempotent() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(201, json={"id": 7})

    answer = rest_client(handler).request("POST", "tickets", what="creating")
    assert answer.data == {"id": 7} and len(seen) == 2


def test_a_read_timeout_on_a_post_is_ambiguous_and_not_repeated() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(AmbiguousWrite):
        rest_client(handler).request("POST", "tickets", what="creating")
    assert len(seen) == 1


def test_keyset_pages_ask_from_the_last_key_and_drop_the_item_read_already() -> None:
    issues = [{"id": n} for n in range(1, 6)]
    asked: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bound = request.url.params.get("issue_id")
        asked.append(bound)
        lowest = int(bound.removeprefix(">=")) if bound else 0
        page = [i for i in issues if i["id"] >= lowest][:2]
        return httpx.Response(200, json={"tickets": page})

    rest = rest_client(handler)
    operation = rest.config.operations.list_changed.model_copy(
        update={
            "pagination": Pagination(
                style="keyset",
                key="id",
                key_param="issue_id",
                key_value=">={{ key }}",
                size_param="limit",
                page_size=2,
            )
        }
    )
    pages = list(rest.pages(operation, {}, what="listing"))
    assert [i["id"] for page in pages for i in page] == [1, 2, 3, 4, 5]
    assert asked == [None, ">=2", ">=3", ">=4", ">=5"]
    resumed = [
        i["id"] for items, _ in rest.read_pages(operation, {}, what="r", start_key=3) for i in items
    ]
    assert resumed == [4, 5]


def test_keyset_paging_needs_its_key() -> None:
    with pytest.raises(ValueError, match="keyset needs key"):
        Pagination(style="keyset", key_param="issue_id")


def github(handler: Any) -> RestAdapter:
    config = RestConfig.model_validate(
        {
            "profile": "github",
            "base_url": "https://api.github.com/",
            "auth": {"type": "bearer", "token": "t"},
            "vars": {"owner": "acme", "repo": "support"},
        }
    )
    return RestAdapter("github", config, transport=httpx.MockTransport(handler))


def issue(number: int, body: str | None, comments: int = 0) -> dict[str, Any]:
    return {
        "number": number,
        "title": "Printer",
        "state": "open",
        "body": body,
        "labels": [],
        "comments": comments,
        "created_at": "2026-01-01T10:00:00Z",
        "updated_at": "2026-01-01T10:00:00Z",
    }


def test_a_github_body_a_person_wrote_is_the_first_comment_and_the_bridges_is_not() -> None:
    documents = {
        "1": issue(1, "It beeps.\n\nTwice."),
        "2": issue(2, "Shared from desk-7\n\n<!-- nhd-bridge:abc -->"),
        "3": issue(3, None),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=documents[request.url.path.rsplit("/", 1)[1]])

    rest = github(handler)
    first = rest.get("1")
    assert first is not None
    assert [(c.local_id, c.body, c.public) for c in first.comments] == [
        ("description-1", "It beeps.\n\nTwice.", True)
    ]
    bridged = rest.get("2")
    assert bridged is not None and bridged.comments == [] and bridged.shared_uuid == "abc"
    empty = rest.get("3")
    assert empty is not None and empty.comments == []


def test_a_quoted_marker_is_no_breadcrumb_and_the_last_line_is() -> None:
    comments = [
        {
            "id": 10,
            "body": "Original\n\n<!-- nhd-bridge:u-1 -->",
            "created_at": "2026-01-01T10:00:00Z",
        },
        {
            "id": 11,
            "body": "> Original\n>\n> <!-- nhd-bridge:u-1 -->\n\nMy reply",
            "created_at": "2026-01-01T10:01:00Z",
        },
        {
            "id": 12,
            "body": "<!-- nhd-bridge:u-2 --> is what it said",
            "created_at": "2026-01-01T10:02:00Z",
        },
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/comments"):
            return httpx.Response(200, json=comments)
        return httpx.Response(200, json=issue(5, "<!-- nhd-bridge:t-5 -->", comments=3))

    record = github(handler).get("5")
    assert record is not None
    assert [(c.local_id, c.shared_uuid) for c in record.comments] == [
        ("10", "u-1"),
        ("11", None),
        ("12", None),
    ]
    assert record.comments[0].body == "Original"
    assert record.comments[1].body.endswith("My reply")


def test_every_mid_read_cursor_resumes_after_its_page() -> None:
    tickets = {n: {"id": n, "updated_at": f"2026-01-01T10:00:0{9 - n}Z"} for n in range(1, 6)}

    def handler(request: httpx.Request) -> httpx.Response:
        bound = request.url.params.get("from")
        lowest = int(bound) if bound else 0
        page = [tickets[n] for n in sorted(tickets) if n >= lowest][:2]
        return httpx.Response(
            200, json={"tickets": page}, headers={"Date": "Thu, 01 Jan 2026 10:00:30 GMT"}
        )

    config = RestConfig.model_validate(
        deep_merge(
            BASE,
            {
                "ticket": {"subject": "id"},
                "operations": {
                    "list_changed": {
                        "pagination": {
                            "style": "keyset",
                            "key": "id",
                            "key_param": "from",
                            "size_param": "limit",
                            "page_size": 2,
                        }
                    }
                },
            },
        )
    )
    rest = RestAdapter("t", config, transport=httpx.MockTransport(handler))
    pages = list(rest.changed_since(None))
    for index, page in enumerate(pages[:-1]):
        resumed = [t.local_id for p in rest.changed_since(page.cursor) for t in p.tickets]
        later = [t.local_id for p in pages[index + 1 :] for t in p.tickets]
        assert resumed == later, f"after page {index}"
    final = json.loads(pages[-1].cursor or "{}")
    # The read began (Date) at 10:00:30: the next one starts there, not at the newest
    # updated_at seen (10:00:08), so an idle poll does not list the same window again.
    assert pages[-1].tickets == [] and "resume" not in final
    assert final["since"].startswith("2026-01-01T10:00:30")
