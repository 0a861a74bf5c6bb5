"""The REST adapter's pieces without a tracker: templates, configuration, HTTP rules, paging.

HTTP is served by ``httpx.MockTransport``; each test says what the tracker answers.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from nhd_bridge.adapters.rest import RestAdapter, RestConfig
from nhd_bridge.adapters.rest.config import Pagination
from nhd_bridge.adapters.rest.http import AmbiguousWrite, RestClient
from nhd_bridge.adapters.rest.template import TemplateError, render, render_url
from nhd_bridge.core.adapter import CommentDraft, PermanentError, TransientError
from nhd_bridge.core.plugins import Plugins

Handler = Callable[[httpx.Request], httpx.Response]

MINIMAL: dict[str, Any] = {
    "base_url": "https://tracker.example/api",
    "operations": {
        "list_changed": {"url": "tickets", "items": "tickets"},
        "get": {"url": "tickets/{{ id }}"},
        "create": {"method": "POST", "url": "tickets", "body": {"title": "{{ subject }}"}},
        "update": {"method": "PATCH", "url": "tickets/{{ id }}"},
        "add_comment": {"method": "POST", "url": "tickets/{{ id }}/comments"},
    },
}


def config(**overrides: Any) -> RestConfig:
    from nhd_bridge.adapters.rest.config import deep_merge

    return RestConfig.model_validate(deep_merge(MINIMAL, overrides))


def client(handler: Handler, **overrides: Any) -> RestClient:
    return RestClient(
        config(**overrides), transport=httpx.MockTransport(handler), sleep=lambda s: None
    )


# --- templates ----------------------------------------------------------------------------------


def test_a_lone_hole_inserts_a_json_value_and_unset_keys_are_left_out() -> None:
    template = {"title": "{{ subject }}", "labels": "{{ tags }}", "state": "{{ status }}"}
    context = {"subject": 'He said "hi", }{', "tags": ["a", "b"], "status": None}
    assert render(template, context) == {"title": 'He said "hi", }{', "labels": ["a", "b"]}


def test_text_around_holes_makes_text_and_a_missing_value_drops_the_whole_string() -> None:
    assert render({"q": "{{ since }};"}, {"since": "2024-01-01.00:00:00"}) == {
        "q": "2024-01-01.00:00:00;"
    }
    assert render({"q": "{{ since }};"}, {"since": None}) == {}


def test_merge_key_spreads_an_object_and_literal_null_stays() -> None:
    template = {"title": "x", "<<": "{{ custom }}", "assignee": None}
    assert render(template, {"custom": {"severity": "low", "gone": None}}) == {
        "title": "x",
        "severity": "low",
        "assignee": None,
    }


def test_url_values_are_percent_encoded_so_they_cannot_reach_another_resource() -> None:
    assert render_url("issues/{{ id }}", {"id": "../admin?x=1"}) == "issues/..%2Fadmin%3Fx%3D1"
    with pytest.raises(TemplateError):
        render_url("issues/{{ id }}", {})


def test_a_bad_expression_is_a_configuration_error_naming_where() -> None:
    broken = {"operations": {"create": {"body": {"title": "{{ subject[ }}"}}}}
    with pytest.raises(ValidationError, match=r"operations\.create\.body"):
        config(**broken)


# --- configuration ------------------------------------------------------------------------------


def test_a_profile_is_deep_merged_under_the_users_keys() -> None:
    merged = RestConfig.model_validate(
        {
            "profile": "roundup",
            "base_url": "http://127.0.0.1:8080/tracker/rest",
            "auth": {"type": "basic", "username": "bridge", "password": "pw"},
            "capabilities": {"custom_fields": True},
            "operations": {"list_changed": {"pagination": {"page_size": 5}}},
        }
    )
    assert merged.capabilities.custom_fields is True
    assert merged.capabilities.private_comments is False  # kept from the profile
    assert merged.operations.list_changed.pagination.page_size == 5
    assert merged.operations.list_changed.pagination.page_param == "@page_index"
    assert merged.base_url.endswith("/rest/")
    assert merged.origin == "http://127.0.0.1:8080"


def test_unknown_keys_and_profiles_are_refused() -> None:
    with pytest.raises(ValidationError, match="Extra inputs"):
        config(operations={"get": {"metod": "GET"}})
    with pytest.raises(ValidationError, match="unknown profile 'jiraa'; shipped profiles"):
        RestConfig.model_validate({"profile": "jiraa", "base_url": "https://x.example/"})


def test_every_shipped_profile_loads_and_the_adapter_is_registered() -> None:
    for profile, extra in {
        "roundup": {"auth": {"type": "basic", "username": "u", "password": "p"}},
        "github": {"auth": {"type": "bearer", "token": "t"}, "vars": {"owner": "o", "repo": "r"}},
        "redmine": {"auth": {"type": "api_key", "name": "X-Redmine-API-Key", "key": "k"}},
    }.items():
        RestConfig.model_validate({"profile": profile, "base_url": "https://x.example/", **extra})
    assert Plugins().adapter_class("rest") is RestAdapter


def test_secrets_stay_out_of_repr() -> None:
    adapter = RestAdapter(
        "t", config(auth={"type": "basic", "username": "bridge", "password": "hunter2"})
    )
    assert "hunter2" not in repr(adapter) + repr(adapter.config) + str(adapter.config)


# --- authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "check"),
    [
        ({"type": "bearer", "token": "tok"}, lambda r: r.headers["Authorization"] == "Bearer tok"),
        (
            {"type": "basic", "username": "u", "password": "p"},
            lambda r: r.headers["Authorization"] == "Basic " + base64.b64encode(b"u:p").decode(),
        ),
        (
            {"type": "api_key", "name": "X-Api-Key", "key": "k1"},
            lambda r: r.headers["X-Api-Key"] == "k1",
        ),
        (
            {"type": "api_key", "name": "key", "key": "k2", "location": "query"},
            lambda r: r.url.params["key"] == "k2",
        ),
    ],
)
def test_each_auth_style_is_sent(auth: dict[str, Any], check: Callable[[Any], bool]) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"tickets": []})

    rest = client(handler, auth=auth)
    list(rest.pages(rest.config.operations.list_changed, {}, what="listing"))
    assert check(seen[0])


def test_oauth2_client_credentials_token_is_cached_until_it_expires() -> None:
    tokens: list[dict[str, Any]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            form = dict(x.split("=") for x in request.content.decode().split("&"))
            tokens.append(form)
            return httpx.Response(200, json={"access_token": "at-1", "expires_in": 3600})
        assert request.headers["Authorization"] == "Bearer at-1"
        return httpx.Response(200, json={"tickets": []})

    rest = client(
        handler,
        auth={
            "type": "oauth2_client_credentials",
            "token_url": "https://tracker.example/oauth/token",
            "client_id": "cid",
            "client_secret": "shh",
            "scope": "tickets",
        },
    )
    for _ in range(3):
        list(rest.pages(rest.config.operations.list_changed, {}, what="listing"))
    assert len(tokens) == 1
    assert tokens[0]["grant_type"] == "client_credentials" and tokens[0]["scope"] == "tickets"


OAUTH: dict[str, Any] = {
    "type": "oauth2_client_credentials",
    "token_url": "https://idp.example/oauth/token?tenant=t1",
    "client_id": "cid",
    "client_secret": "client-secret-value",
    "client_auth": "body",
}


def test_an_oauth2_token_refused_by_the_api_is_renewed_once_and_the_request_sent_again() -> None:
    issued = iter(["at-revoked", "at-fresh"])
    bodies: list[tuple[str, bytes]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "idp.example":
            assert b"client_secret=client-secret-value" in request.content
            assert "Authorization" not in request.headers  # client_auth: body
            return httpx.Response(200, json={"access_token": next(issued), "expires_in": 3600})
        bodies.append((request.headers["Authorization"], request.content))
        if request.headers["Authorization"] == "Bearer at-revoked":
            return httpx.Response(401, json={"message": "token revoked"})
        return httpx.Response(201, json={"id": 9})

    rest = client(handler, auth=OAUTH)
    answer = rest.call(rest.config.operations.create, {"subject": "Hi"}, what="creating")
    assert answer is not None and answer.data == {"id": 9}
    assert bodies == [
        ("Bearer at-revoked", b'{"title":"Hi"}'),
        ("Bearer at-fresh", b'{"title":"Hi"}'),
    ]


def test_an_unreachable_oauth2_token_endpoint_is_transient_and_no_lost_write() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "idp.example":
            raise httpx.ReadTimeout("slow", request=request)
        raise AssertionError("nothing is sent without a token")

    rest = client(handler, auth=OAUTH)
    with pytest.raises(TransientError) as caught:
        rest.call(rest.config.operations.create, {"subject": "Hi"}, what="creating")
    assert not isinstance(caught.value, AmbiguousWrite)  # the write was never sent
    assert str(caught.value) == (
        "the OAuth token endpoint https://idp.example/oauth/token could not be reached "
        "(ReadTimeout)"
    )


def test_an_oauth2_token_never_appears_in_errors_or_reprs() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "idp.example":
            return httpx.Response(200, json={"access_token": "at-0123456789", "expires_in": 60})
        echoed = request.headers["Authorization"]
        return httpx.Response(400, json={"message": f"bad request from {echoed}"})

    rest = client(handler, auth=OAUTH)
    with pytest.raises(PermanentError) as caught:
        rest.call(rest.config.operations.create, {"subject": "Hi"}, what="creating")
    assert "at-0123456789" not in str(caught.value)
    assert "bad request from Bearer" in str(caught.value)
    shown = repr(rest._http.auth) + repr(rest.config.auth) + repr(rest)
    assert "client-secret-value" not in shown and "at-0123456789" not in shown


def test_an_api_key_in_the_query_keeps_a_next_links_own_query() -> None:
    asked: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(dict(request.url.params))
        if request.url.params.get("page") == "2":
            return httpx.Response(200, json={"items": [2]})
        return httpx.Response(
            200,
            json={"items": [1]},
            headers={"Link": '<https://tracker.example/api/tickets?page=2>; rel="next"'},
        )

    rest = client(
        handler,
        auth={"type": "api_key", "name": "key", "key": "k3", "location": "query"},
        operations={"list_changed": {"items": "items", "pagination": {"style": "link_header"}}},
    )
    pages = list(rest.pages(rest.config.operations.list_changed, {}, what="listing"))
    assert pages == [[1], [2]]
    assert asked == [{"key": "k3"}, {"page": "2", "key": "k3"}]


def test_fixed_headers_are_templates_over_the_origin() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"tickets": []})

    rest = client(handler, headers={"Origin": "{{ origin }}", "X-Requested-With": "nhd"})
    list(rest.pages(rest.config.operations.list_changed, {}, what="listing"))
    assert seen[0].headers["Origin"] == "https://tracker.example"
    assert seen[0].headers["X-Requested-With"] == "nhd"


# --- errors, limits, retries --------------------------------------------------------------------


def test_429_is_waited_out_in_process_up_to_the_bound_then_is_transient() -> None:
    calls = []
    slept: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(
            429,
            headers={"Retry-After": "12", "X-RateLimit-Remaining": "0"},
            json={
                "error": {
                    "status": 429,
                    "msg": "Api rate limits exceeded. Please wait: 12 seconds.",
                }
            },
        )

    rest = RestClient(
        config(errors={"message": "error.msg"}, retries={"max_wait_seconds": 30}),
        transport=httpx.MockTransport(handler),
        sleep=slept.append,
    )
    with pytest.raises(TransientError, match="Please wait: 12 seconds") as caught:
        rest.request("GET", "tickets", what="listing")
    # 12 + 12 s fit in the 30 s bound; a third wait would not: the engine parks instead.
    assert caught.value.retry_after == 12.0 and len(calls) == 3 and slept == [12.0, 12.0]


def test_a_429_in_the_middle_of_a_paged_read_is_waited_out_and_the_read_goes_on() -> None:
    answers = iter(
        [
            httpx.Response(200, json={"tickets": [{"id": 1}, {"id": 2}]}),
            httpx.Response(429, headers={"Retry-After": "3"}),
            httpx.Response(200, json={"tickets": [{"id": 3}]}),
        ]
    )
    slept: list[float] = []
    rest = RestClient(
        config(),
        transport=httpx.MockTransport(lambda request: next(answers)),
        sleep=slept.append,
    )
    operation = rest.config.operations.list_changed.model_copy(
        update={
            "items": "tickets",
            "pagination": Pagination(style="page", page_size=2, size_param="per_page"),
        }
    )
    pages = list(rest.pages(operation, {}, what="listing"))
    assert pages == [[{"id": 1}, {"id": 2}], [{"id": 3}]] and slept == [3.0]


def test_github_style_403_rate_limit_reads_the_reset_time() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            403,
            headers={"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"},
            json={"message": "API rate limit exceeded"},
        )

    with pytest.raises(TransientError) as caught:
        client(handler).request("GET", "tickets", what="listing")
    assert caught.value.retry_after == 30.0


def test_5xx_and_connection_errors_are_retried_then_succeed() -> None:
    answers = iter(
        [httpx.ConnectError("refused"), httpx.Response(502), httpx.Response(200, json={"ok": 1})]
    )

    def handler(request: httpx.Request) -> httpx.Response:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert client(handler).request("GET", "tickets", what="listing").data == {"ok": 1}


def test_a_post_is_not_retried_after_a_5xx() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(500, text="boom")

    with pytest.raises(TransientError, match="HTTP 500"):
        client(handler).request("POST", "tickets", what="creating", json={})
    assert len(calls) == 1


def test_the_trackers_error_is_one_line_and_secrets_never_appear() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        text = json.dumps(
            {"error": {"status": 400, "msg": "property status: 'nope'\n is not a status."}}
        )
        return httpx.Response(400, text=text, headers={"Content-Type": "application/json"})

    rest = client(
        handler,
        errors={"message": "error.msg"},
        auth={"type": "api_key", "name": "key", "key": "s3cret", "location": "query"},
    )
    with pytest.raises(PermanentError) as caught:
        rest.request("POST", "tickets", what="creating a ticket", json={})
    message = str(caught.value)
    assert message == (
        "creating a ticket: POST https://tracker.example/api/tickets was refused (HTTP 400): "
        "property status: 'nope' is not a status."
    )
    assert "s3cret" not in message


def test_401_names_what_to_check() -> None:
    rest = client(
        lambda r: httpx.Response(401, text="Invalid Login - Invalid login"),
        auth={"type": "basic", "username": "bridge", "password": "pw"},
    )
    with pytest.raises(PermanentError, match=r"check auth.username \('bridge'\) and auth.password"):
        rest.request("GET", "tickets", what="listing")


def test_etag_is_read_and_sent_as_if_match_and_a_stale_one_is_read_again() -> None:
    etags = iter(['"v1"', '"v2"'])
    sent: list[str | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"n": 1}, headers={"ETag": next(etags)})
        sent.append(request.headers.get("If-Match"))
        return httpx.Response(412 if len(sent) == 1 else 200, json={})

    rest = client(handler, etag=True)
    rest.call(rest.config.operations.update, {"id": "7"}, what="updating")
    assert sent == ['"v1"', '"v2"']


# --- paging -------------------------------------------------------------------------------------


def _pages(handler: Handler, pagination: dict[str, Any], items: str = "items") -> list[list[Any]]:
    return list(_pages_iter(handler, pagination, items))


def _pages_iter(
    handler: Handler, pagination: dict[str, Any], items: str = "items"
) -> Iterator[list[Any]]:
    rest = client(handler, operations={"list_changed": {"items": items, "pagination": pagination}})
    return rest.pages(rest.config.operations.list_changed, {}, what="listing")


def test_page_number_paging() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        page = int(request.url.params["page"])
        assert request.url.params["per_page"] == "2"
        return httpx.Response(200, json={"items": [[1, 2], [3, 4], [5]][page - 1]})

    pages = _pages(handler, {"style": "page", "size_param": "per_page", "page_size": 2})
    assert pages == [[1, 2], [3, 4], [5]]


def test_offset_paging_with_a_total() -> None:
    data = list(range(5))

    def handler(request: httpx.Request) -> httpx.Response:
        offset, limit = int(request.url.params["offset"]), int(request.url.params["limit"])
        return httpx.Response(200, json={"items": data[offset : offset + limit], "total": 5})

    pages = _pages(
        handler, {"style": "offset", "size_param": "limit", "page_size": 2, "total": "total"}
    )
    assert pages == [[0, 1], [2, 3], [4]]


@pytest.mark.parametrize(
    ("pagination", "asked"),
    [
        ({"style": "page", "size_param": "per_page"}, ("page", "3")),
        ({"style": "offset", "size_param": "limit", "total": "total"}, ("offset", "4")),
    ],
)
def test_a_read_over_a_stable_order_resumes_after_the_items_it_read(
    pagination: dict[str, Any], asked: tuple[str, str]
) -> None:
    # Four items were read (two pages of two) before the run stopped; the read resumes at the
    # fifth: page 3, or offset 4.
    data = list(range(5))
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        param, _ = asked
        sent.append(request.url.params[param])
        start = (int(sent[-1]) - 1) * 2 if param == "page" else int(sent[-1])
        return httpx.Response(200, json={"items": data[start : start + 2], "total": 5})

    settings = {**pagination, "page_size": 2, "stable_order": True}
    rest = client(handler, operations={"list_changed": {"items": "items", "pagination": settings}})
    operation = rest.config.operations.list_changed
    pages = [items for items, _ in rest.read_pages(operation, {}, what="listing", start_key=4)]

    assert operation.pagination.stable_order
    assert operation.pagination.position_after(4, pages[0]) == 5
    assert pages == [[4]] and sent == [asked[1]]


def test_pages_over_an_order_a_change_moves_are_not_stable_by_default() -> None:
    rest = client(
        lambda request: httpx.Response(200, json={"items": []}),
        operations={"list_changed": {"items": "items", "pagination": {"style": "page"}}},
    )
    assert not rest.config.operations.list_changed.pagination.stable_order


def _stable_order_findings(**overrides: Any) -> list[str]:
    rest = RestAdapter(
        "t",
        config(**overrides),
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json={"items": []})),
    )
    return [result.detail for result in rest.check() if result.name.startswith("changes read")]


def test_check_warns_of_pages_over_an_order_a_change_may_shift() -> None:
    [warning] = _stable_order_findings(
        operations={"list_changed": {"items": "items", "pagination": {"style": "page"}}}
    )
    assert "pagination style page" in warning and "stable_order is not set" in warning
    assert not _stable_order_findings(
        operations={
            "list_changed": {
                "items": "items",
                "pagination": {"style": "page", "stable_order": True},
            }
        }
    )


@pytest.mark.parametrize("profile", ["github", "redmine", "roundup"])
def test_the_shipped_profiles_read_in_a_stable_order(profile: str) -> None:
    options = {
        "github": {
            "vars": {"owner": "acme", "repo": "support"},
            "auth": {"type": "bearer", "token": "t"},
        },
        "redmine": {
            "vars": {"project_id": "support", "uuid_field_id": 7},
            "auth": {"type": "api_key", "name": "X-Redmine-API-Key", "key": "k"},
        },
        "roundup": {"auth": {"type": "basic", "username": "bridge", "password": "p"}},
    }[profile]
    rest = RestConfig.model_validate(
        {"profile": profile, "base_url": "https://tracker.example/", **options}
    )
    assert rest.operations.list_changed.pagination.stable_order


def test_cursor_token_paging() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        token = request.url.params.get("cursor")
        if token is None:
            return httpx.Response(200, json={"items": [1], "next": "abc"})
        return httpx.Response(200, json={"items": [2], "next": None})

    assert _pages(handler, {"style": "cursor", "next_token": "next"}) == [[1], [2]]


def test_link_header_paging_and_a_next_url_on_another_host_is_refused() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if "page=2" in str(request.url):
            return httpx.Response(
                200,
                json=[2],
                headers={"Link": '<https://evil.example/steal>; rel="next"'},
            )
        return httpx.Response(
            200,
            json=[1],
            headers={"Link": '<https://tracker.example/api/tickets?page=2>; rel="next"'},
        )

    rest = client(
        handler,
        operations={"list_changed": {"items": None, "pagination": {"style": "link_header"}}},
    )
    pages = rest.pages(rest.config.operations.list_changed, {}, what="listing")
    assert next(pages) == [1]
    assert next(pages) == [2]
    with pytest.raises(PermanentError, match="another host"):
        next(pages)


def test_next_url_in_the_body() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("after") == "1":
            return httpx.Response(200, json={"items": [2], "links": {"next": None}})
        return httpx.Response(200, json={"items": [1], "links": {"next": "tickets?after=1"}})

    assert _pages(handler, {"style": "next_url", "next_url": "links.next"}) == [[1], [2]]


def _same_page_always(body: dict[str, Any], sent: list[httpx.Request]) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=body)

    return handler


def test_a_server_that_ignores_the_page_number_stops_the_read_with_an_error() -> None:
    # With a total, the read used to go on to the total, handing over the first page three
    # times and never the rest; the repeat is caught on the second page, before it is given.
    sent: list[httpx.Request] = []
    handler = _same_page_always({"items": [{"id": 1}, {"id": 2}], "total": 6}, sent)
    pages = _pages_iter(handler, {"style": "page", "page_size": 2, "total": "total"})
    assert next(pages) == [{"id": 1}, {"id": 2}]
    with pytest.raises(PermanentError, match=r"page 2 repeats page 1 .*page_param 'page'"):
        next(pages)
    assert [r.url.params["page"] for r in sent] == ["1", "2"]


def test_a_server_that_ignores_the_offset_stops_the_read_instead_of_looping() -> None:
    # Full pages without a total used to be read until max_pages (10,000 requests).
    sent: list[httpx.Request] = []
    handler = _same_page_always({"items": [1, 2]}, sent)
    with pytest.raises(PermanentError, match="repeats"):
        _pages(handler, {"style": "offset", "page_size": 2})
    assert len(sent) == 2


@pytest.mark.parametrize(
    ("pagination", "body", "headers"),
    [
        ({"style": "cursor", "next_token": "next"}, {"items": [], "next": "same"}, {}),
        (
            {"style": "link_header"},
            {"items": []},
            {"Link": '<https://tracker.example/api/tickets?after=9>; rel="next"'},
        ),
        ({"style": "next_url", "next_url": "next"}, {"items": [], "next": "tickets?after=9"}, {}),
    ],
)
def test_a_next_page_that_is_the_page_just_read_stops_the_read(
    pagination: dict[str, Any], body: dict[str, Any], headers: dict[str, str]
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=body, headers=headers)

    with pytest.raises(PermanentError, match="points at page 2 again"):
        _pages(handler, pagination)
    assert len(sent) == 2


# --- the adapter's own rules --------------------------------------------------------------------


def test_a_private_comment_is_refused_where_the_tracker_has_none() -> None:
    adapter = RestAdapter(
        "t", config(), transport=httpx.MockTransport(lambda r: httpx.Response(500))
    )
    draft = CommentDraft(shared_uuid="u", body="agents only", public=False)
    with pytest.raises(PermanentError, match="no private comments"):
        adapter.add_comment("1", draft)


def test_a_failed_listing_raises_instead_of_returning_nothing() -> None:
    adapter = RestAdapter(
        "t",
        config(retries={"attempts": 2, "backoff_seconds": 0}),
        transport=httpx.MockTransport(lambda r: httpx.Response(503, text="down")),
    )
    with pytest.raises(TransientError, match="HTTP 503"):
        list(adapter.changed_since(None))


def test_a_trackers_users_are_people_of_this_installation_and_identity_is_the_trackers() -> None:
    from nhd_bridge.core.adapter import AdapterContext
    from nhd_bridge.core.model import nhd_uuid

    redmine = {
        "profile": "redmine",
        "base_url": "https://redmine.example/",
        "auth": {"type": "api_key", "name": "X-Redmine-API-Key", "key": "k"},
        "vars": {"project_id": "support", "uuid_field_id": 1},
    }
    people = []
    for sharing_url in ("nhd-bridge://one", "nhd-bridge://two"):
        adapter = RestAdapter("redmine", RestConfig.model_validate(redmine))
        adapter.attach(AdapterContext("redmine", sharing_url, state=None))
        people.append(adapter._person({"uuid": "redmine-user-1", "name": "Redmine Admin"}))
    # "redmine-user-1" is the admin of every Redmine: two installations, two people.
    assert people[0].uuid == nhd_uuid("nhd-bridge://one", "users", "redmine-user-1")
    assert people[0].uuid != people[1].uuid
    identity = RestAdapter("redmine", RestConfig.model_validate(redmine)).tracker_identity()
    assert identity == "rest/https://redmine.example/project_id=support,uuid_field_id=1"
