"""The sender's own rules: retries and Retry-After, URL safety, and secrets kept out of sight."""

from __future__ import annotations

import json
import logging
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from nhd_bridge.core.adapter import PermanentError, TransientError
from nhd_bridge.core.model import Agreement, Ticket
from nhd_bridge.core.protocol.sender import NHDSender, UnsafeURL, URLPolicy

from .conftest import AGREEMENT, KEY, OUR_URL, THEIR_URL, TICKET
from .test_conformance_client import PUBLIC_IP, Partner, accepted, full_ticket

TOKEN = f"{AGREEMENT}:{KEY}"


class Clock:
    """A fake monotonic clock that sleeping moves forward."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def sender(
    partner: Partner, clock: Clock | None = None, *, policy: URLPolicy | None = None, **options: Any
) -> NHDSender:
    clock = clock or Clock()
    return NHDSender(
        policy or URLPolicy.for_partner(THEIR_URL, resolver=lambda host, port: [PUBLIC_IP]),
        transport=partner.transport,
        sleep=clock.sleep,
        clock=clock,
        **options,
    )


def status_update() -> Ticket:
    return Ticket(uuid=TICKET, status="solved")


# --- retries ------------------------------------------------------------------------------------


def test_5xx_is_retried_with_exponential_backoff_until_it_works() -> None:
    partner = Partner(httpx.Response(503), httpx.Response(502), httpx.Response(200, json={}))
    clock = Clock()

    result = sender(partner, clock).update_ticket(THEIR_URL, accepted(), status_update())

    assert result.ok and result.attempts == 3
    assert clock.sleeps == [0.5, 1.0]


def test_retry_after_seconds_is_honoured() -> None:
    partner = Partner(httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200))
    clock = Clock()

    result = sender(partner, clock).update_ticket(THEIR_URL, accepted(), status_update())

    assert result.ok
    assert clock.sleeps == [7.0]


def test_retry_after_as_http_date_is_honoured() -> None:
    partner = Partner(
        httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
        httpx.Response(200),
    )
    clock = Clock()

    result = sender(partner, clock).update_ticket(THEIR_URL, accepted(), status_update())

    assert result.ok
    assert clock.sleeps == [0.5]  # a date in the past: the normal backoff applies


def test_a_wait_longer_than_the_budget_is_left_to_the_engine() -> None:
    partner = Partner(httpx.Response(429, headers={"Retry-After": "120"}))
    clock = Clock()

    result = sender(partner, clock, max_retry_seconds=30).update_ticket(
        THEIR_URL, accepted(), status_update()
    )

    assert not result.ok and result.retryable and result.retry_after == 120
    assert clock.sleeps == [] and len(partner.requests) == 1
    error = result.error()
    assert isinstance(error, TransientError) and error.retry_after == 120


def test_attempts_are_bounded() -> None:
    partner = Partner(httpx.Response(500))
    clock = Clock()

    result = sender(partner, clock, max_attempts=4).update_ticket(
        THEIR_URL, accepted(), status_update()
    )

    assert not result.ok and result.retryable and result.status == 500
    assert len(partner.requests) == 4 and result.attempts == 4
    assert clock.sleeps == [0.5, 1.0, 2.0]


def test_total_retry_time_is_bounded() -> None:
    partner = Partner(httpx.Response(503, headers={"Retry-After": "10"}))
    clock = Clock()

    result = sender(partner, clock, max_attempts=10, max_retry_seconds=25).update_ticket(
        THEIR_URL, accepted(), status_update()
    )

    assert not result.ok and result.retryable
    assert sum(clock.sleeps) <= 25 and len(partner.requests) == 3


def test_connection_errors_are_retried() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    partner = Partner(refuse, httpx.Response(200))

    result = sender(partner).update_ticket(THEIR_URL, accepted(), status_update())

    assert result.ok and result.attempts == 2


def test_a_post_that_may_have_landed_is_not_repeated_at_once() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    partner = Partner(slow)

    result = sender(partner).share_ticket(THEIR_URL, accepted(), full_ticket())

    assert not result.ok and result.retryable and result.status is None
    assert len(partner.requests) == 1
    assert "timed out" in result.message


def test_a_put_after_a_read_timeout_is_retried() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    partner = Partner(slow, httpx.Response(200))

    assert sender(partner).update_ticket(THEIR_URL, accepted(), status_update()).ok
    assert len(partner.requests) == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 412, 415, 422])
def test_refusals_are_not_retried_and_map_to_permanent_errors(status: int) -> None:
    partner = Partner(httpx.Response(status, json={"error": "refused"}))

    result = sender(partner).update_ticket(THEIR_URL, accepted(), status_update())

    assert len(partner.requests) == 1 and not result.retryable
    assert isinstance(result.error(), PermanentError)
    assert "refused" in result.message


# --- URL safety ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/sharing",
        "http://10.0.0.5/sharing",
        "http://192.168.1.20/sharing",
        "http://169.254.169.254/latest",
        "http://[::1]/sharing",
        "http://[fe80::1]/sharing",
        "http://[::ffff:127.0.0.1]/sharing",
        "http://0.0.0.0/sharing",
    ],
)
def test_private_loopback_and_link_local_addresses_are_refused(url: str) -> None:
    partner = Partner()
    host = httpx.URL(url).host
    policy = URLPolicy.for_partner(url, resolver=lambda h, p: [PUBLIC_IP])

    with pytest.raises(UnsafeURL, match="allow_private_networks"):
        sender(partner, policy=policy).accept(url, accepted())

    assert partner.requests == []
    assert policy.host_allowed(host)


def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    partner = Partner()
    policy = URLPolicy.for_partner(
        "https://intranet.them.example/sharing",
        resolver=lambda host, port: [PUBLIC_IP, "10.1.2.3"],
    )

    with pytest.raises(UnsafeURL, match=r"10\.1\.2\.3"):
        sender(partner, policy=policy).accept("https://intranet.them.example/sharing", accepted())

    assert partner.requests == []


def test_private_networks_are_allowed_when_configured() -> None:
    partner = Partner(httpx.Response(200))
    url = "http://127.0.0.1:8000/sharing"
    policy = URLPolicy.for_partner(url, allow_private_networks=True)

    assert sender(partner, policy=policy).accept(url, accepted()).ok


def test_hosts_outside_the_allowlist_are_refused() -> None:
    partner = Partner()

    with pytest.raises(UnsafeURL, match="allowed_hosts"):
        sender(partner).accept("https://evil.example/sharing", accepted())

    assert partner.requests == []


def test_wildcard_hosts_match_subdomains_only() -> None:
    policy = URLPolicy(("*.zendesk.com", "rt.example.org"))

    assert policy.host_allowed("acme.zendesk.com")
    assert policy.host_allowed("a.b.zendesk.com")
    assert policy.host_allowed("ACME.Zendesk.com.")
    assert not policy.host_allowed("zendesk.com")
    assert not policy.host_allowed("evilzendesk.com")
    assert policy.host_allowed("rt.example.org")
    assert not policy.host_allowed("www.rt.example.org")


def test_a_redirect_to_a_host_outside_the_allowlist_is_refused() -> None:
    partner = Partner(httpx.Response(302, headers={"Location": "https://evil.example/steal"}))

    with pytest.raises(UnsafeURL, match=r"evil\.example"):
        sender(partner).accept(THEIR_URL, accepted())

    assert len(partner.requests) == 1


def test_a_redirect_from_https_to_http_is_refused() -> None:
    partner = Partner(httpx.Response(301, headers={"Location": "http://them.example/sharing"}))

    with pytest.raises(UnsafeURL, match="clear text"):
        sender(partner).accept(THEIR_URL, accepted())


def test_dns_rebinding_between_check_and_connect_is_refused() -> None:
    answers = iter([[PUBLIC_IP], ["127.0.0.1"]])
    policy = URLPolicy.for_partner(THEIR_URL, resolver=lambda host, port: next(answers))
    # No transport given: the sender's own transport resolves again when it connects.
    real = NHDSender(policy, sleep=lambda _s: None)

    with pytest.raises(UnsafeURL, match="private"):
        real.accept(THEIR_URL, accepted())
    real.close()


def test_unresolvable_hosts_are_a_retryable_failure() -> None:
    def nowhere(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    partner = Partner()
    policy = URLPolicy.for_partner(THEIR_URL, resolver=nowhere)

    result = sender(partner, policy=policy).accept(THEIR_URL, accepted())

    assert not result.ok and result.retryable and "cannot resolve" in result.message
    assert partner.requests == []


def test_tls_is_verified_by_default() -> None:
    real = NHDSender(URLPolicy.for_partner(THEIR_URL))
    pool = real._http._transport._pool  # type: ignore[attr-defined]
    assert pool._ssl_context.verify_mode == ssl.CERT_REQUIRED
    real.close()


# --- a real loopback server, through the sender's own guarded transport -------------------------


class _Echo(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def do_PUT(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        _Echo.seen.append({"path": self.path, "token": self.headers["X-Ticket-Sharing-Token"]})
        payload = json.dumps({"uuid": body.get("uuid"), "status": body.get("status")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def loopback() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Echo.seen = []
    yield f"http://127.0.0.1:{server.server_address[1]}/sharing"
    server.shutdown()
    server.server_close()


def test_loopback_partner_is_refused_by_default_and_reached_when_allowed(loopback: str) -> None:
    with pytest.raises(UnsafeURL):
        NHDSender(URLPolicy.for_partner(loopback)).accept(loopback, accepted())
    assert _Echo.seen == []

    allowed = NHDSender(URLPolicy.for_partner(loopback, allow_private_networks=True))
    result = allowed.update_ticket(loopback, accepted(), status_update())
    allowed.close()

    assert result.ok and result.data == {"uuid": TICKET, "status": "solved"}
    assert _Echo.seen == [{"path": f"/sharing/tickets/{TICKET}", "token": TOKEN}]


# --- secrets ------------------------------------------------------------------------------------


def test_secrets_stay_out_of_messages_even_when_the_partner_echoes_them() -> None:
    partner = Partner(httpx.Response(403, json={"error": f"bad token {TOKEN}"}))

    result = sender(partner).update_ticket(THEIR_URL, accepted(), status_update())

    assert KEY not in result.message and TOKEN not in result.message
    assert "***" in result.message
    assert KEY not in str(result.error()) and KEY not in repr(result)


def test_secrets_stay_out_of_logs_and_reprs(caplog: pytest.LogCaptureFixture) -> None:
    partner = Partner(httpx.Response(503), httpx.Response(302, headers={"Location": THEIR_URL}))
    partner.replies.append(httpx.Response(200))
    caplog.set_level(logging.DEBUG)
    agreement = accepted()
    client = sender(partner)

    client.update_ticket(THEIR_URL, agreement, status_update())
    client.invite(
        THEIR_URL,
        Agreement(
            uuid=AGREEMENT,
            status="pending",
            sender_url=OUR_URL,
            receiver_url=THEIR_URL,
            access_key=KEY,
        ),
    )

    assert KEY not in caplog.text
    assert KEY not in repr(client) and KEY not in repr(agreement)


def test_connection_error_messages_carry_no_secret() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(
            f"refused while sending {request.headers['X-Ticket-Sharing-Token']}"
        )

    result = sender(Partner(refuse)).update_ticket(THEIR_URL, accepted(), status_update())

    assert not result.ok and KEY not in result.message
