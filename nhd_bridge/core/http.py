"""One HTTP policy for every adapter and the NHD sender: when to try again, how long to wait,
what a ``Retry-After`` says, and which failures must not be repeated blindly.

- **Retryable answers**: 408, 429 and every 5xx, and connection errors. A rate limit (the caller
  says which answers are one) means the server did not act: even a write is sent again, and when
  the server says how long to wait the try does not count against ``attempts``.
- **Idempotent requests** (GET, HEAD, PUT, DELETE, OPTIONS, unless a profile's operation declares
  otherwise) may be sent again after they may have reached the server. Any other request whose
  outcome is unknown (a timeout after sending, a reset, a 5xx) is never repeated here: the caller
  raises :class:`AmbiguousWrite` and resolves it by the write's breadcrumb.
- **Waits**: exponential backoff from ``backoff_seconds``, at most ``max_backoff_seconds`` (plus
  up to ``jitter_seconds`` of random spread), never less than the server's ``Retry-After``. A
  call spends at most ``max_wait_seconds`` in process; a wait that would pass that bound is not
  slept but handed back (:class:`GaveUp`) so the engine parks the work with ``retry_after``.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Generic, TypeVar, cast
from urllib.parse import urlsplit

import httpx
from tenacity import RetryCallState, Retrying, retry_if_result

from nhd_bridge.core.adapter import TransientError

__all__ = [
    "IDEMPOTENT_METHODS",
    "AmbiguousWrite",
    "GaveUp",
    "RetryPolicy",
    "TryAgain",
    "is_idempotent",
    "is_retryable_status",
    "may_repeat",
    "never_sent",
    "parse_retry_after",
    "retrying",
    "url_without_query",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
# Raised before a byte of the request left: repeating the request cannot double anything.
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)

F = TypeVar("F")
T = TypeVar("T")


class AmbiguousWrite(TransientError):
    """A write that must not be repeated blindly failed after it may have reached the server
    (read timeout, reset, 5xx): it may or may not have happened. The adapter looks for its
    breadcrumb before writing again."""


def is_idempotent(method: str, declared: bool | None = None) -> bool:
    """Whether a request may be sent again after it may have reached the server: the
    operation's own declaration (a profile's ``idempotent:``) when there is one, else its method."""
    return method.upper() in IDEMPOTENT_METHODS if declared is None else declared


def is_retryable_status(status: int) -> bool:
    return status in (408, 429) or 500 <= status <= 599


def never_sent(error: BaseException) -> bool:
    """Whether a transport error happened before the request could reach the server."""
    return isinstance(error, _NEVER_SENT)


def may_repeat(
    method: str,
    declared: bool | None = None,
    *,
    error: BaseException | None = None,
    status: int | None = None,
) -> bool:
    """Whether a failed request may be sent again at once. Not when it is not idempotent and its
    outcome is unknown: a transport error after the request may have left (a read timeout, a
    reset) or a 5xx. Then a write may have happened; the caller resolves it by its breadcrumb
    (:class:`AmbiguousWrite`) instead of doubling it."""
    if is_idempotent(method, declared):
        return True
    if error is not None:
        return never_sent(error)
    return status is None or status < 500


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value: delay seconds, or an HTTP date in any form
    RFC 9110 allows (IMF-fixdate, RFC 850, asctime) with any zone seen in the wild (GMT, UTC,
    ``+0000``, ``-0000``, other offsets, none: read as UTC, as every HTTP date is). A date in
    the past is 0; anything unreadable is ``None``. Never raises: the value is the server's."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return max(seconds, 0.0) if math.isfinite(seconds) else None
    try:
        moment = parsedate_to_datetime(text)
        if moment.tzinfo is None:  # "-0000" and asctime: UTC without saying so
            moment = moment.replace(tzinfo=UTC)
        wait = (moment - (now or datetime.now(UTC))).total_seconds()
    except Exception:  # no parsing failure of a server's header may escape to the caller
        return None
    return max(wait, 0.0)


def url_without_query(url: str) -> str:
    """A URL for messages: no query string (an API key may travel there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.scheme else parts.path


# --- the retry loop -----------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    max_wait_seconds: float = 30.0
    jitter_seconds: float = 0.0

    def backoff(self, retries_so_far: int) -> float:
        """The wait before the next counted try, after ``retries_so_far`` counted retries."""
        delay = min(self.backoff_seconds * 2.0**retries_so_far, self.max_backoff_seconds)
        return delay + random.uniform(0, self.jitter_seconds) if self.jitter_seconds else delay


@dataclass(frozen=True)
class TryAgain(Generic[F]):
    """What a failed try that may be tried again returns: its failure (an error or a result)
    for the caller, whether it was a rate limit (not counted), and the server's Retry-After."""

    failure: F
    rate_limited: bool = False
    retry_after: float | None = None


@dataclass(frozen=True)
class GaveUp(Generic[F]):
    """The last failure once tries or time ran out. ``refused_wait`` is the wait that did not
    fit in ``max_wait_seconds`` (``None`` when the attempts ran out)."""

    failure: F
    retry_after: float | None
    refused_wait: float | None = None


def retrying(
    attempt: Callable[[], T | TryAgain[F]],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    on_retry: Callable[[TryAgain[F], float], None] | None = None,
) -> T | GaveUp[F]:
    """Call ``attempt`` until it returns anything but :class:`TryAgain`, by the policy's rules.

    The time spent is the larger of what the clock says and what was slept (a test's fake sleep
    leaves the real clock alone)."""
    started = clock()
    counted = [0]  # tries that count against ``attempts`` (rate limits do not)

    def last(state: RetryCallState) -> TryAgain[F]:
        assert state.outcome is not None
        outcome: TryAgain[F] = state.outcome.result()
        return outcome

    def wait(state: RetryCallState) -> float:
        outcome = last(state)
        if not _counts(outcome) and outcome.retry_after:
            return outcome.retry_after  # as long as the server asks, even if shorter
        return max(policy.backoff(counted[0]), outcome.retry_after or 0.0)

    def stop(state: RetryCallState) -> bool:
        if _counts(last(state)):
            counted[0] += 1
            if counted[0] >= policy.attempts:
                return True
        spent = max(state.idle_for, clock() - started)
        return spent + (state.upcoming_sleep or 0.0) > policy.max_wait_seconds

    def give_up(state: RetryCallState) -> GaveUp[F]:
        outcome = last(state)
        counted_out = _counts(outcome) and counted[0] >= policy.attempts
        refused = None if counted_out else state.upcoming_sleep
        return GaveUp(outcome.failure, outcome.retry_after, refused)

    def before_sleep(state: RetryCallState) -> None:
        if on_retry is not None:
            on_retry(last(state), state.upcoming_sleep)

    loop = Retrying(
        retry=retry_if_result(lambda outcome: isinstance(outcome, TryAgain)),
        wait=wait,
        stop=stop,
        sleep=sleep,
        before_sleep=before_sleep,
        retry_error_callback=give_up,
        reraise=True,
    )
    # Never a TryAgain: a retried outcome ends in give_up's GaveUp.
    return cast("T | GaveUp[F]", loop(attempt))


def _counts(outcome: TryAgain[F]) -> bool:
    """Whether a failed try counts against ``attempts``: a rate limit the server says how long to
    wait out does not (the server did not act); one that does not say backs off like any other."""
    # Retry-After: 0 counts too, or a server that keeps saying it would be asked without end.
    return not (outcome.rate_limited and outcome.retry_after)
