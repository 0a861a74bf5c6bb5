"""The one HTTP policy (nhd_bridge.core.http): Retry-After, idempotency, the retry loop."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nhd_bridge.core.http import (
    GaveUp,
    RetryPolicy,
    TryAgain,
    may_repeat,
    parse_retry_after,
    retrying,
    url_without_query,
)
from nhd_bridge.core.redaction import REDACTED, scrub

NOW = datetime(1994, 11, 6, 8, 49, 7, tzinfo=UTC)  # 30 s before the RFC's example date


@pytest.mark.parametrize(
    "value",
    [
        "Sun, 06 Nov 1994 08:49:37 GMT",  # IMF-fixdate
        "Sunday, 06-Nov-94 08:49:37 GMT",  # RFC 850
        "Sun Nov  6 08:49:37 1994",  # asctime: no zone, UTC by definition
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 06 Nov 1994 08:49:37 +0000",
        "Sun, 06 Nov 1994 08:49:37 -0000",
        "Sun, 06 Nov 1994 09:49:37 +0100",
        "Sun, 06 Nov 1994 03:49:37 -0500",
        "Sun, 06 Nov 1994 08:49:37",
        " 30 ",
        "30.0",
    ],
)
def test_every_form_of_retry_after_says_thirty_seconds(value: str) -> None:
    assert parse_retry_after(value, now=NOW) == 30.0


@pytest.mark.parametrize("value", ["Sun, 06 Nov 1994 08:48:00 GMT", "-5", "0"])
def test_a_moment_already_past_is_no_wait(value: str) -> None:
    assert parse_retry_after(value, now=NOW) == 0.0


@pytest.mark.parametrize("value", [None, "", "  ", "soon", "nan", "inf", "Sun, 99 Nov 1994"])
def test_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


@given(st.text())
def test_parse_retry_after_never_raises(value: str) -> None:
    result = parse_retry_after(value)
    assert result is None or result >= 0.0


@given(st.from_regex(r"[A-Za-z]{3}, \d{1,2} [A-Za-z]{3} \d{1,6} \d\d:\d\d:\d\d [-+]?\w{0,5}"))
def test_parse_retry_after_never_raises_on_near_dates(value: str) -> None:
    result = parse_retry_after(value)
    assert result is None or result >= 0.0


def test_a_write_whose_outcome_is_unknown_is_not_repeated() -> None:
    request = httpx.Request("POST", "https://tracker.example/x")
    assert not may_repeat("POST", error=httpx.ReadTimeout("t", request=request))
    assert not may_repeat("POST", status=502)
    assert may_repeat("POST", error=httpx.ConnectError("refused", request=request))
    assert may_repeat("POST", status=408)
    assert may_repeat("POST", True, status=502)  # the profile declares it idempotent
    assert not may_repeat("PUT", False, status=504)
    assert may_repeat("PUT", status=504)


def test_url_without_query_and_one_mask() -> None:
    assert url_without_query("https://t.example/a/b?key=s3cret#x") == "https://t.example/a/b"
    assert scrub("token abc:s3cret-key and s3cret-key", ["s3cret-key", "abc:s3cret-key"]) == (
        f"token {REDACTED} and {REDACTED}"
    )


def test_backoff_doubles_up_to_its_bound_and_jitter_stays_within_it() -> None:
    policy = RetryPolicy(backoff_seconds=1, max_backoff_seconds=5, jitter_seconds=0.5)
    for retries, base in [(0, 1), (1, 2), (2, 4), (3, 5), (10, 5)]:
        assert base <= policy.backoff(retries) <= base + 0.5


def run(attempt: TryAgain[object], **policy: float) -> tuple[list[float], object]:
    """What the loop slept and returned when every try fails with ``attempt``."""
    slept: list[float] = []
    outcome = retrying(lambda: attempt, RetryPolicy(**policy), sleep=slept.append)  # type: ignore[arg-type]
    return slept, outcome


def test_a_wait_past_the_bound_is_handed_back_not_slept() -> None:
    limited = TryAgain("limited", rate_limited=True, retry_after=12.0)
    slept, outcome = run(limited, attempts=2, max_wait_seconds=30)
    # Rate limits with a wait do not count against attempts; the time bound stops them.
    assert slept == [12.0, 12.0]
    assert outcome == GaveUp("limited", retry_after=12.0, refused_wait=12.0)


def test_attempts_bound_ordinary_failures() -> None:
    slept, outcome = run(TryAgain("failed"), attempts=3, backoff_seconds=1)
    assert slept == [1.0, 2.0] and outcome == GaveUp("failed", retry_after=None, refused_wait=None)


def test_a_rate_limit_without_a_wait_backs_off_and_counts() -> None:
    limited = TryAgain("limited", rate_limited=True, retry_after=0.0)
    slept, outcome = run(limited, attempts=3, backoff_seconds=1)
    assert slept == [1.0, 2.0] and isinstance(outcome, GaveUp)


def test_a_success_after_failures_is_returned() -> None:
    answers = iter([TryAgain("failed"), TryAgain("failed"), "done"])
    slept: list[float] = []
    outcome = retrying(lambda: next(answers), RetryPolicy(backoff_seconds=1), sleep=slept.append)
    assert outcome == "done" and slept == [1.0, 2.0]
