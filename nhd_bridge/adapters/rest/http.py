"""HTTP for the REST adapter: retries, rate limits, errors and ETags (paging: ``paging.py``,
authentication: ``auth.py``).

Everything that talks to the network goes through :class:`RestClient`, so the rules hold for every
operation of every profile. The retry, wait, Retry-After and ambiguous-write rules are the
bridge's one HTTP policy (:mod:`nhd_bridge.core.http`); this module says how they apply here:

- **Retries.** Connection errors, 408 and 5xx answers are retried with exponential backoff, at
  most ``retries.attempts`` tries. Only operations that are safe to repeat (``idempotent``; by
  default GET, PUT, DELETE) are retried after the request may have reached the server; any other
  write is retried only when the tracker cannot have acted (no connection, a 408), and a failure
  after sending raises :class:`AmbiguousWrite`, which the adapter resolves by looking for the
  write's breadcrumb.
- **Rate limits.** 429, and 503 or 403 with ``Retry-After`` / ``X-RateLimit-Remaining: 0``, are
  waited out in process, as long as the tracker asks, up to ``retries.max_wait_seconds`` per
  call in total, backoff included (the tracker did not act, so writes are sent again too). Past
  that bound they raise :class:`TransientError` with ``retry_after``, and the engine parks the
  work.
- **Errors** are one line: what was called, the status, and the tracker's own message read from
  its error body (``errors.message``). 401/403 become :class:`PermanentError` naming what to check.
- **Secrets** (passwords, tokens, keys) are removed from every message, and URLs in messages
  carry no query string (an API key may travel there).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx

from nhd_bridge.adapters.rest.config import Operation, RestConfig
from nhd_bridge.adapters.rest.paging import PageRequest, read_pages
from nhd_bridge.adapters.rest.template import render, render_text_value, render_url, search
from nhd_bridge.core import http as http_policy
from nhd_bridge.core.adapter import AdapterError, PermanentError, TransientError
from nhd_bridge.core.http import AmbiguousWrite, TryAgain, url_without_query
from nhd_bridge.core.redaction import scrub

__all__ = ["AmbiguousWrite", "Answer", "RestClient", "StaleWrite"]

log = logging.getLogger(__name__)

USER_AGENT = "nhd-bridge-rest/0.1"


class StaleWrite(TransientError):
    """412: the record changed between reading its ETag and writing."""


@dataclass
class Answer:
    """A decoded response: the JSON body (``None`` when empty or not JSON) and the response."""

    data: Any
    response: httpx.Response


class RestClient:
    """One httpx client per adapter, with the rules of the module docstring."""

    def __init__(
        self,
        config: RestConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.config = config
        self._sleep = sleep
        self._secrets = _secrets(config)
        self._http = httpx.Client(
            base_url=config.base_url,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            timeout=config.retries.timeout_seconds,
            verify=config.verify_tls,
            transport=transport,
            trust_env=False,
            follow_redirects=False,
        )
        # Set after: OAuth fetches its token with this client.
        self._http.auth = config.auth.httpx_auth(self._http, on_token=self._secrets.append)
        base_context = {"base_url": config.base_url, "origin": config.origin, "vars": config.vars}
        self._headers = {
            name: str(value)
            for name, value in render(config.headers, base_context).items()
            if value is not None
        }

    def __repr__(self) -> str:
        return f"<RestClient {self.config.base_url}>"

    def close(self) -> None:
        self._http.close()

    # --- operations -----------------------------------------------------------------------------

    def call(
        self,
        operation: Operation,
        context: dict[str, Any],
        *,
        what: str,
        files: list[tuple[str, tuple[str, Any, str]]] | None = None,
        content: Any = None,
        allow_not_found: bool = False,
    ) -> Answer | None:
        """One operation (no paging). Returns ``None`` when the tracker says "no such thing"
        and ``allow_not_found``; raises :class:`AdapterError` on every failure."""
        url = render_url(operation.url, context)
        params = _params(render(operation.params, context))
        headers = {
            k: str(v) for k, v in render(operation.headers, context).items() if v is not None
        }
        use_etag = self.config.etag if operation.etag is None else operation.etag
        writes = operation.method in {"PUT", "PATCH", "DELETE"}
        for attempt in (1, 2):
            if use_etag and writes:
                # Templates may build on the record as just read (``current``), e.g. a full list.
                current = self.request("GET", url, what=f"{what} (reading its ETag)")
                etag = current.response.headers.get("ETag")
                if etag is None:
                    raise PermanentError(
                        f"{what}: {self._where('GET', url)} sent no ETag header, but the instance "
                        "has etag: true; set etag: false for this tracker or this operation"
                    )
                headers["If-Match"] = etag
                context = {**context, "current": current.data}
            request = self._body(operation, context, files, content)
            try:
                return self.request(
                    operation.method,
                    url,
                    what=what,
                    not_found=operation.not_found if allow_not_found else None,
                    idempotent=operation.is_idempotent,
                    params=params,
                    headers=dict(headers),
                    **request,
                )
            except StaleWrite:
                if attempt == 2 or not (use_etag and writes):
                    raise
                log.info("%s: the record changed since its ETag was read; reading it again", what)
        raise AssertionError("unreachable")

    @staticmethod
    def _body(
        operation: Operation, context: dict[str, Any], files: Any, content: Any
    ) -> dict[str, Any]:
        body = render(operation.body, context) if operation.body is not None else None
        if operation.body_type == "json":
            return {} if body is None else {"json": body}
        if operation.body_type == "form":
            return {} if body is None else {"data": body}
        if operation.body_type == "multipart":
            fields = {k: render_text_value(v) for k, v in (body or {}).items() if v is not None}
            return {"data": fields, "files": files or []}
        return {"content": content}

    def pages(
        self, operation: Operation, context: dict[str, Any], *, what: str
    ) -> Iterator[list[Any]]:
        """The documents of a list operation, one page at a time, following its pagination."""
        for items, _answer in self.read_pages(operation, context, what=what):
            yield items

    def read_pages(
        self,
        operation: Operation,
        context: dict[str, Any],
        *,
        what: str,
        start_key: Any = None,
    ) -> Iterator[tuple[list[Any], Answer]]:
        """Each page's documents with the answer they came in (its ``Date``, its headers).

        ``start_key`` (keyset pagination) starts the read at that key, as the page after the
        one that ended with it would."""
        paging = operation.pagination
        headers = {
            k: str(v) for k, v in render(operation.headers, context).items() if v is not None
        }
        params = _params(render(operation.params, context))
        first = paging.first(render_url(operation.url, context), params, start_key)

        def fetch(page: PageRequest) -> Answer:
            return self.request("GET", page.url, what=what, params=page.params, headers=headers)

        yield from read_pages(
            paging,
            first,
            fetch,
            items_at=operation.items,
            base_url=self.config.base_url,
            what=what,
        )

    # --- one request ----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        not_found: Any = None,
        idempotent: bool | None = None,
        **request: Any,
    ) -> Answer:
        """Send with auth, retry what may be retried, and turn failures into adapter errors.

        ``idempotent`` (default: by method) says whether the request may be sent again after it
        may have reached the server. When it may not, a failure after sending (a read timeout, a
        reset, a 5xx) raises :class:`AmbiguousWrite`: the caller resolves it by its breadcrumb.
        A rate limit is waited out here, up to ``retries.max_wait_seconds`` per call in total:
        the server did not act, so even a write is sent again, and a read keeps what it has."""
        retries = self.config.retries
        policy = http_policy.RetryPolicy(
            attempts=retries.attempts,
            backoff_seconds=retries.backoff_seconds,
            max_backoff_seconds=retries.max_backoff_seconds,
            max_wait_seconds=retries.max_wait_seconds,
        )
        tries = [0]

        def attempt() -> Answer | TryAgain[AdapterError]:
            tries[0] += 1
            try:
                response = self._send(method, url, request)
            except httpx.TransportError as error:
                message = self._redact(
                    f"{what}: {self._where(method, url)} could not be reached "
                    f"({type(error).__name__}: {error}) after {tries[0]} "
                    f"{'try' if tries[0] == 1 else 'tries'}; is the tracker up?"
                )
                if not http_policy.may_repeat(method, idempotent, error=error):
                    raise AmbiguousWrite(message) from None
                return TryAgain(TransientError(message))
            if response.status_code < 400:
                return Answer(_json(response), response)
            if not_found is not None and self._is_not_found(response, not_found):
                return None  # type: ignore[return-value]
            failure = self._error(method, url, response, what)
            retry_after = getattr(failure, "retry_after", None)
            if _rate_limited(response) or (retry_after is not None and response.status_code == 503):
                return TryAgain(failure, rate_limited=True, retry_after=retry_after)
            if not http_policy.is_retryable_status(response.status_code):
                raise failure
            if not http_policy.may_repeat(method, idempotent, status=response.status_code):
                raise AmbiguousWrite(str(failure), retry_after=retry_after)
            return TryAgain(failure, retry_after=retry_after)

        def on_retry(failed: TryAgain[AdapterError], wait: float) -> None:
            why = "rate limited" if failed.rate_limited else "failed"
            log.info("%s: %s, retrying in %.1fs", what, why, wait)

        outcome = http_policy.retrying(attempt, policy, sleep=self._sleep, on_retry=on_retry)
        if isinstance(outcome, http_policy.GaveUp):
            raise outcome.failure
        return outcome

    def _send(self, method: str, url: str, request: dict[str, Any]) -> httpx.Response:
        request = dict(request)
        headers = {**self._headers, **(request.pop("headers", None) or {})}
        # None, not {}: httpx replaces a URL's own query (a next-page link) with empty params.
        params = request.pop("params", None) or None
        return self._http.request(method, url, params=params, headers=headers, **request)

    # --- errors ---------------------------------------------------------------------------------

    def _is_not_found(self, response: httpx.Response, rule: Any) -> bool:
        if response.status_code not in rule.status:
            return False
        return rule.when is None or bool(search(rule.when, _json(response)))

    def _error(self, method: str, url: str, response: httpx.Response, what: str) -> AdapterError:
        status = response.status_code
        detail = self._message(response)
        where = self._where(method, url)
        said = f": {detail}" if detail else ""
        retry_after = _retry_after(response)
        limited = status == 429 or (
            status in {403, 503} and response.headers.get("X-RateLimit-Remaining") == "0"
        )
        if limited or (status == 503 and retry_after is not None):
            wait = f"; retry after {retry_after:.0f}s" if retry_after is not None else ""
            return TransientError(
                self._redact(f"{what}: {where} is rate limited (HTTP {status}){said}{wait}"),
                retry_after=retry_after,
            )
        if status in {401, 403}:
            hint = self._auth_hint() if status == 401 else "the account lacks permission for this"
            return PermanentError(
                self._redact(
                    f"{what}: {where} refused the credentials (HTTP {status}){said}; {hint}"
                )
            )
        if status == 412:
            return StaleWrite(self._redact(f"{what}: {where} changed meanwhile (HTTP 412){said}"))
        if status >= 500 or status in {408, 409, 425}:
            return TransientError(
                self._redact(f"{what}: {where} failed (HTTP {status}){said}"),
                retry_after=retry_after,
            )
        return PermanentError(self._redact(f"{what}: {where} was refused (HTTP {status}){said}"))

    def _auth_hint(self) -> str:
        return self.config.auth.hint()

    def _message(self, response: httpx.Response) -> str:
        """The tracker's own words from an error body, on one line, at most 300 characters."""
        data = _json(response)
        message: Any = None
        if data is not None and self.config.errors.message:
            try:
                message = search(self.config.errors.message, data)
            except Exception:  # a profile's expression must not hide the real error
                message = None
        if message is None and isinstance(data, dict):
            for key in ("message", "error_description", "error", "errors", "detail"):
                if data.get(key):
                    message = data[key]
                    break
        if message is None:
            message = response.text
        if isinstance(message, list):
            message = "; ".join(str(item) for item in message)
        elif isinstance(message, dict):
            message = message.get("msg") or message.get("message") or str(message)
        text = " ".join(str(message).split())
        return text[:300] + ("…" if len(text) > 300 else "")

    def _where(self, method: str, url: str) -> str:
        return f"{method} {url_without_query(urljoin(self.config.base_url, url))}"

    def _redact(self, text: str) -> str:
        return scrub(text, self._secrets)


# --- helpers ------------------------------------------------------------------------------------


def _params(rendered: dict[str, Any]) -> dict[str, Any]:
    """Query parameters: values left out when empty, lists repeated, everything else text."""
    params: dict[str, Any] = {}
    for name, value in rendered.items():
        if value is None:
            continue
        if isinstance(value, list):
            params[name] = [render_text_value(item) for item in value]
        else:
            params[name] = render_text_value(value)
    return params


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    kind = response.headers.get("Content-Type", "")
    if "json" not in kind and response.content.lstrip()[:1] not in (b"{", b"["):
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _retry_after(response: httpx.Response) -> float | None:
    retry_after = http_policy.parse_retry_after(response.headers.get("Retry-After"))
    if retry_after is not None:
        return retry_after
    reset = response.headers.get("X-RateLimit-Reset")
    if reset and response.headers.get("X-RateLimit-Remaining") == "0":
        try:
            number = float(reset)
        except ValueError:
            return None
        # GitHub sends epoch seconds; Roundup and others send seconds to wait.
        return max(number - time.time(), 0.0) if number > 1_000_000_000 else number
    return None


def _rate_limited(response: httpx.Response) -> bool:
    return response.status_code == 429 or (
        response.status_code in {403, 503} and response.headers.get("X-RateLimit-Remaining") == "0"
    )


def _secrets(config: RestConfig) -> list[str]:
    auth = config.auth
    values = []
    for name in ("password", "token", "key", "client_secret"):
        secret = getattr(auth, name, None)
        if secret is not None:
            values.append(secret.get_secret_value())
    return values
