"""The fault-injecting proxy against a tiny loopback upstream that counts what reaches it."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from nhd_bridge.testing import FaultProxy
from nhd_bridge.testing.faultproxy import FAULT_KINDS


class Upstream:
    """A loopback server that records every request and answers it with a JSON echo."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                with upstream.lock:
                    upstream.seen.append(
                        {
                            "method": self.command,
                            "path": self.path,
                            "body": body,
                            "headers": dict(self.headers.items()),
                        }
                    )
                    number = len(upstream.seen)
                answer = json.dumps({"n": number, "path": self.path, "body": body}).encode()
                self.send_response(201 if self.command == "POST" else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Upstream", "yes")
                self.send_header("Location", f"{upstream.origin}/tracker/items/{number}")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.url = f"{self.origin}/tracker/"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.seen)

    def wait_for(self, count: int, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count < count and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[FaultProxy]:
    with FaultProxy(upstream.url, delay_seconds=0.5) as started:
        yield started


@pytest.fixture
def client(proxy: FaultProxy) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=proxy.url, trust_env=False, timeout=5) as started:
        yield started


def test_forwards_method_path_query_headers_and_body_and_relays_the_answer(
    upstream: Upstream, proxy: FaultProxy, client: httpx.Client
) -> None:
    assert proxy.url == f"http://127.0.0.1:{proxy.port}/tracker/"

    answer = client.put(
        "issues/7.json?include=journals",
        content=b'{"issue": {"notes": "hello"}}',
        headers={"X-Redmine-API-Key": "k-1", "Content-Type": "application/json"},
    )

    assert answer.status_code == 200
    assert answer.headers["X-Upstream"] == "yes"
    assert answer.json() == {
        "n": 1,
        "path": "/tracker/issues/7.json?include=journals",
        "body": '{"issue": {"notes": "hello"}}',
    }
    [seen] = upstream.seen
    assert seen["method"] == "PUT"
    assert seen["headers"]["X-Redmine-API-Key"] == "k-1"
    assert seen["headers"]["Content-Type"] == "application/json"
    stats = proxy.stats
    assert (stats.requests, stats.forwarded, stats.methods["PUT"], sum(stats.faults.values())) == (
        1,
        1,
        1,
        0,
    )


def test_the_upstream_sees_itself_addressed_and_location_points_back_at_the_proxy(
    upstream: Upstream, proxy: FaultProxy, client: httpx.Client
) -> None:
    # Roundup refuses a write whose Host or Origin is not its own.
    answer = client.post("items", json={}, headers={"Origin": proxy.origin})

    [seen] = upstream.seen
    assert seen["headers"]["Host"] == upstream.origin.removeprefix("http://")
    assert seen["headers"]["Origin"] == upstream.origin
    assert answer.headers["Location"] == f"{proxy.origin}/tracker/items/1"


def test_lost_answer_reaches_the_upstream_but_the_client_gets_no_answer(
    upstream: Upstream, proxy: FaultProxy, client: httpx.Client
) -> None:
    proxy.next("lost_answer", method="PUT")

    with pytest.raises(httpx.RemoteProtocolError):
        client.put("issues/1.json", json={"issue": {"notes": "once"}})

    assert upstream.count == 1  # the tracker acted
    assert proxy.stats.forwarded == 1
    assert proxy.stats.faults["lost_answer"] == 1
    [event] = proxy.history
    assert (event.fault, event.forwarded, event.status) == ("lost_answer", True, None)
    # The next request is served normally, on a new connection.
    assert client.put("issues/1.json", json={}).status_code == 200
    assert upstream.count == 2


@pytest.mark.parametrize("status", [502, 504])
def test_gateway_after_answers_a_gateway_error_after_the_upstream_acted(
    upstream: Upstream, proxy: FaultProxy, client: httpx.Client, status: int
) -> None:
    proxy.next("gateway_after", status=status)

    answer = client.post("issues.json", json={"issue": {}})

    assert answer.status_code == status
    assert upstream.count == 1
    assert proxy.stats.faults["gateway_after"] == 1


def test_rate_limit_answers_429_with_retry_after_and_never_forwards(
    upstream: Upstream, upstream_proxy_factory: Any
) -> None:
    proxy = upstream_proxy_factory(retry_after=3)
    proxy.next("rate_limit")
    proxy.next("rate_limit", retry_after=1)
    with httpx.Client(base_url=proxy.url, trust_env=False) as client:
        first = client.get("issues.json")
        second = client.get("issues.json")
        third = client.get("issues.json")

    assert (first.status_code, first.headers["Retry-After"]) == (429, "3")
    assert (second.status_code, second.headers["Retry-After"]) == (429, "1")
    assert third.status_code == 200
    assert upstream.count == 1  # only the third
    assert proxy.stats.forwarded == 1


@pytest.mark.parametrize("status", [500, 503])
def test_server_error_before_answers_5xx_and_never_forwards(
    upstream: Upstream, proxy: FaultProxy, client: httpx.Client, status: int
) -> None:
    proxy.next("server_error_before", status=status)

    answer = client.put("issues/1.json", json={})

    assert answer.status_code == status
    assert upstream.count == 0
    assert proxy.stats.forwarded == 0


def test_reset_before_resets_the_connection_and_never_forwards(
    upstream: Upstream, proxy: FaultProxy, client: httpx.Client
) -> None:
    proxy.next("reset_before")

    with pytest.raises(httpx.ReadError, match="reset"):
        client.put("issues/1.json", json={})

    assert upstream.count == 0
    assert proxy.stats.faults["reset_before"] == 1
    assert client.put("issues/1.json", json={}).status_code == 200


def test_delay_outlasts_a_client_timeout_and_the_upstream_acts_afterwards(
    upstream: Upstream, proxy: FaultProxy
) -> None:
    proxy.next("delay", delay_seconds=0.6)
    with httpx.Client(base_url=proxy.url, trust_env=False, timeout=0.2) as impatient:
        with pytest.raises(httpx.ReadTimeout):
            impatient.put("issues/1.json", json={})
        assert upstream.count == 0  # still waiting in the proxy when the client gave up

    upstream.wait_for(1)
    assert upstream.count == 1


def test_delay_alone_only_slows_the_answer(
    upstream: Upstream, proxy: FaultProxy, client: httpx.Client
) -> None:
    proxy.next("delay")  # the proxy's default, 0.5 s here
    started = time.monotonic()

    answer = client.get("issues.json")

    assert answer.status_code == 200
    assert time.monotonic() - started >= 0.5
    assert upstream.count == 1


def test_queued_faults_hit_only_matching_requests_oldest_first(
    upstream: Upstream, proxy: FaultProxy, client: httpx.Client
) -> None:
    proxy.next("server_error_before", method="PUT", path_regex=r"/issues/\d+\.json", status=503)
    proxy.next("rate_limit", method="put", path_regex=r"/issues/\d+\.json", times=2)

    assert client.get("issues/1.json").status_code == 200  # wrong method
    assert client.put("projects/1.json", json={}).status_code == 200  # wrong path
    assert client.put("issues/1.json", json={}).status_code == 503
    assert client.put("issues/2.json", json={}).status_code == 429
    assert proxy.pending == 1
    assert client.put("issues/3.json", json={}).status_code == 429
    assert client.put("issues/4.json", json={}).status_code == 200
    assert [event.fault for event in proxy.history] == [
        None,
        None,
        "server_error_before",
        "rate_limit",
        "rate_limit",
        None,
    ]


def test_the_random_plan_is_reproducible_from_its_seed(upstream: Upstream) -> None:
    def faults_seen(seed: int) -> list[str | None]:
        with (
            FaultProxy(upstream.url, delay_seconds=0.01) as proxy,
            httpx.Client(base_url=proxy.url, trust_env=False, timeout=5) as client,
        ):
            proxy.randomly(rate=0.5, seed=seed)
            for number in range(40):
                with contextlib.suppress(httpx.TransportError):
                    client.get(f"issues/{number}.json")
            return [event.fault for event in proxy.history]

    first, again, other = faults_seen(11), faults_seen(11), faults_seen(12)

    assert first == again
    assert first != other
    assert 8 <= sum(fault is not None for fault in first) <= 32
    assert len({fault for fault in first if fault}) >= 4  # every kind is in play


def test_the_random_plan_honours_its_filters_and_clear_stops_it(
    upstream: Upstream, proxy: FaultProxy, client: httpx.Client
) -> None:
    proxy.randomly(rate=1.0, kinds=["server_error_before"], methods=["PUT"], path_regex="notes")

    assert client.get("notes").status_code == 200
    assert client.put("other", json={}).status_code == 200
    assert client.put("notes", json={}).status_code in (500, 503)
    proxy.clear()
    assert client.put("notes", json={}).status_code == 200
    assert proxy.stats.faults["server_error_before"] == 1  # counters survive clear()


def test_an_unreachable_upstream_is_a_bad_gateway() -> None:
    upstream = Upstream()
    with FaultProxy(upstream.url) as proxy:
        upstream.close()
        answer = httpx.get(f"{proxy.url}issues.json", timeout=5)

    assert answer.status_code == 502
    assert proxy.stats.upstream_errors == 1
    assert proxy.stats.forwarded == 0


def test_stop_cuts_open_keep_alive_connections(upstream: Upstream) -> None:
    proxy = FaultProxy(upstream.url).start()
    with httpx.Client(base_url=proxy.url, trust_env=False, timeout=2) as client:
        assert client.get("one").status_code == 200
        proxy.stop()
        with pytest.raises(httpx.TransportError):
            client.get("two")
    assert upstream.count == 1


def test_concurrent_requests_are_all_counted(upstream: Upstream, proxy: FaultProxy) -> None:
    proxy.randomly(rate=0.3, kinds=["rate_limit", "gateway_after", "lost_answer"], seed=3)

    def call(number: int) -> None:
        with (
            httpx.Client(base_url=proxy.url, trust_env=False, timeout=5) as client,
            contextlib.suppress(httpx.TransportError),
        ):
            client.put(f"issues/{number}.json", json={})

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(call, range(60)))

    stats = proxy.stats
    assert stats.requests == 60 == len(proxy.history)
    assert stats.forwarded == upstream.count
    assert stats.forwarded == 60 - stats.faults["rate_limit"]


def test_bad_choices_are_refused_with_the_valid_ones(upstream: Upstream) -> None:
    proxy = FaultProxy(upstream.url)
    with pytest.raises(ValueError, match=r"unknown fault kind 'drop'.*lost_answer"):
        proxy.next("drop")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rate must be between 0 and 1"):
        proxy.randomly(rate=2)
    with pytest.raises(ValueError, match="answers nothing"):
        proxy.next("lost_answer", status=502)
    with pytest.raises(ValueError, match="plain http"):
        FaultProxy("https://tracker.example/")
    with pytest.raises(RuntimeError, match="not started"):
        _ = proxy.url
    assert set(FAULT_KINDS) == {
        "lost_answer",
        "gateway_after",
        "rate_limit",
        "server_error_before",
        "reset_before",
        "delay",
    }


@pytest.fixture
def upstream_proxy_factory(upstream: Upstream) -> Iterator[Any]:
    started: list[FaultProxy] = []

    def build(**options: Any) -> FaultProxy:
        proxy = FaultProxy(upstream.url, **options).start()
        started.append(proxy)
        return proxy

    yield build
    for proxy in started:
        proxy.stop()
