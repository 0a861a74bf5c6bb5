"""The NHD sender: every call we make to a partner's sharing endpoints (nhd-spec.md §1.2, §2, §3).

One :class:`NHDSender` wraps one ``httpx.Client``; each operation returns a :class:`SendResult`
and never raises for an HTTP answer, as the Zendesk gem handles 401/403/404/405/408/410/422/5xx
(§7.1). Exceptions (:class:`SenderError`) are kept for what is refused *before* or *instead of*
an answer: a URL outside the policy, a redirect loop, a ticket POST under an agreement that is not
accepted (conformance case 56).

- **Headers** (§3 [REC]): ``X-Ticket-Sharing-Version: 1``, ``Content-Type: application/json;
  charset=utf-8``, ``Accept: application/json`` and the token ``uuid:access_key`` on every
  request, the agreement POST included (§2.1 [REC]).
- **Redirects** (§7.1): followed by hand, any 3xx with a ``Location``, keeping method, body and
  every header, the token included. At most two redirects (three requests), then
  :class:`TooManyRedirects`. Every hop passes the URL policy again, and a hop from https to http
  is refused: the token would travel in clear text.
- **Retries** (§6.3), by the one HTTP policy of :mod:`nhd_bridge.core.http`: 408, 429, 5xx and
  connection errors are retried with exponential backoff honouring ``Retry-After``, bounded by
  ``max_attempts`` and ``max_retry_seconds``; a wait longer than what is left comes back as a
  retryable result with ``retry_after`` for the engine to park the ticket. A POST is retried after
  a read error, a timeout or a 5xx only if it never reached the partner (the connection was never
  made): a ticket POST that did land answers 422 next time.
- **URL safety**: :class:`URLPolicy` allows only listed hosts (``host`` or ``*.example.com``) and,
  unless ``allow_private_networks``, only public addresses; the check runs before every request
  and, on the transport this module builds, again when the socket connects (so a DNS answer that
  changes in between cannot point the call at a private address).
- **Secrets**: the token and access key never appear in logs, messages or ``repr``; messages are
  scrubbed of them even when a partner echoes them back in an error body.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import socket
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpcore
import httpx

from nhd_bridge.core.adapter import AdapterError, PermanentError, TransientError
from nhd_bridge.core.http import (
    GaveUp,
    RetryPolicy,
    TryAgain,
    is_retryable_status,
    may_repeat,
    parse_retry_after,
    retrying,
)
from nhd_bridge.core.model import Actor, Agreement, Ticket
from nhd_bridge.core.redaction import scrub

__all__ = [
    "MAX_REDIRECTS",
    "MAX_URL_CHARS",
    "AgreementKey",
    "AgreementNotAccepted",
    "NHDSender",
    "Resolver",
    "SendRefused",
    "SendResult",
    "SenderError",
    "TooManyRedirects",
    "URLPolicy",
    "UnsafeURL",
    "ticket_update",
]

log = logging.getLogger(__name__)

MAX_REDIRECTS = 2
# Spelled out here rather than imported from the receiver: sending needs no FastAPI.
TOKEN_HEADER = "X-Ticket-Sharing-Token"
VERSION_HEADER = "X-Ticket-Sharing-Version"
USER_AGENT = "nhd-bridge/0.1 (Networked Help Desk 1.0)"
CONTENT_TYPE = "application/json; charset=utf-8"
_MAX_BACKOFF_SECONDS = 30.0
_ERROR_EXCERPT = 200
_DOWNLOAD_CHUNK = 64 * 1024
_SPOOL_IN_MEMORY = 1024 * 1024
# Longer URLs are refused before any call (httpx itself refuses 65,536); messages show less.
MAX_URL_CHARS = 8192
_DISPLAY_CHARS = 200

# What each refusal means for the person reading the journal.
_HINTS = {
    400: "the partner could not read the request",
    401: "the partner wants a token: check the agreement's access key",
    403: "the partner refused the token or the agreement is not accepted on its side; check "
    "the agreement's status there and the access key",
    404: "the partner does not know it",
    405: "the partner does not offer this call",
    409: "the partner reports a conflict",
    410: "the partner no longer shares it (unshared)",
    412: "the partner wants another protocol version",
    415: "the partner refused the content type",
    422: "the partner refused the data",
}


# --- errors and results -------------------------------------------------------------------------


class SenderError(Exception):
    """A call was refused before or instead of an answer; the message is safe to show."""


class UnsafeURL(SenderError):
    """The URL is outside the configured policy (host, address range or scheme)."""


class TooManyRedirects(SenderError):
    """More than :data:`MAX_REDIRECTS` redirects in a row (§7.1)."""


class SendRefused(SenderError):
    """The protocol forbids this call locally (wrong role, missing access key...)."""


class AgreementNotAccepted(SendRefused):
    """Conformance case 56: no ticket write under an agreement that is not accepted."""


@dataclass(frozen=True)
class SendResult:
    """What a partner answered. ``status`` is ``None`` when no answer came (connection error).

    ``gone``: 410, the ticket (or agreement) was unshared and must stop syncing;
    ``retryable``: trying again later may work (408, 429, 5xx, connection errors);
    ``retry_after``: seconds the partner asked us to wait; ``data``: the decoded JSON answer.
    """

    ok: bool
    status: int | None
    gone: bool = False
    retryable: bool = False
    message: str = ""
    retry_after: float | None = None
    attempts: int = 1
    data: Any = field(default=None, repr=False, compare=False)

    def error(self) -> AdapterError:
        """The adapter contract's error for a failed result."""
        if self.ok:
            raise ValueError("a successful result is not an error")
        if self.retryable:
            return TransientError(self.message, retry_after=self.retry_after)
        return PermanentError(self.message)


class AgreementKey(Protocol):
    """What the sender needs of an agreement: ``WireAgreement`` and ``Agreement`` both fit."""

    @property
    def uuid(self) -> str: ...

    @property
    def access_key(self) -> str | None: ...

    @property
    def status(self) -> str | None: ...


# --- URL policy ---------------------------------------------------------------------------------


Resolver = Callable[[str, int], list[str]]


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class URLPolicy:
    """Where outgoing calls may go. ``allowed_hosts`` holds exact host names (or IP literals) and
    ``*.example.com`` patterns, which match every subdomain but not ``example.com`` itself."""

    allowed_hosts: tuple[str, ...]
    allow_private_networks: bool = False
    resolver: Resolver = field(default=_resolve, repr=False, compare=False)

    @classmethod
    def for_partner(
        cls,
        partner_url: str,
        allowed_hosts: Iterable[str] = (),
        *,
        allow_private_networks: bool = False,
        resolver: Resolver | None = None,
    ) -> URLPolicy:
        """The partner's own host plus the listed ones (attachment hosts, redirect targets)."""
        host = _host_of(partner_url)
        hosts = tuple(dict.fromkeys(h for h in (host, *allowed_hosts) if h))
        return cls(hosts, allow_private_networks, resolver or _resolve)

    def host_allowed(self, host: str) -> bool:
        host = _normal_host(host)
        for pattern in self.allowed_hosts:
            pattern = _normal_host(pattern)
            if pattern.startswith("*."):
                if host.endswith(pattern[1:]) and host != pattern[2:]:
                    return True
            elif host == pattern:
                return True
        return False

    def check(self, url: str) -> None:
        """Raise :class:`UnsafeURL` unless ``url`` may be called; resolves the host."""
        if len(url) > MAX_URL_CHARS:
            raise UnsafeURL(f"{_display(url)}: the URL is longer than {MAX_URL_CHARS} characters")
        parts = _split(url)
        if parts.scheme not in {"http", "https"}:
            raise UnsafeURL(f"{_display(url)}: only http and https URLs are called")
        if parts.username is not None or parts.password is not None:
            raise UnsafeURL(f"{_display(url)}: credentials in a URL are refused")
        host = parts.hostname or ""
        if not host:
            raise UnsafeURL(f"{_display(url)}: the URL has no host")
        if not self.host_allowed(host):
            raise UnsafeURL(
                f"{_display(url)}: host {host} is not allowed; add it to allowed_hosts of the "
                "nhd instance if this partner really lives there"
            )
        if self.allow_private_networks:
            return
        for address in self.addresses(host, parts.port or (443 if parts.scheme == "https" else 80)):
            if not _public(address):
                raise UnsafeURL(
                    f"{_display(url)}: {host} is a private, loopback or link-local address "
                    f"({address}); set allow_private_networks: true only for a partner on "
                    "your own network"
                )

    def addresses(self, host: str, port: int) -> list[str]:
        """The host's addresses (the host itself when it is an IP literal)."""
        try:
            return [str(ipaddress.ip_address(host.strip("[]")))]
        except ValueError:
            pass
        try:
            found = self.resolver(host, port)
        except OSError as error:
            raise _Unresolvable(f"cannot resolve {host}: {error}") from None
        if not found:
            raise _Unresolvable(f"cannot resolve {host}: no addresses")
        return found

    def public_addresses(self, host: str, port: int) -> list[str]:
        """The addresses a socket may connect to (every one unless private networks are
        refused); raises :class:`UnsafeURL` when none is left."""
        found = self.addresses(host, port)
        if self.allow_private_networks:
            return found
        usable = [address for address in found if _public(address)]
        if not usable:
            raise UnsafeURL(f"{host} resolves only to private, loopback or link-local addresses")
        return usable


class _Unresolvable(Exception):
    """DNS gave no answer: treated like a connection error (retryable)."""


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class _GuardedBackend(httpcore.SyncBackend):
    """Connects only to addresses the policy allows, resolving the host itself: the address
    checked is the address used (no DNS rebinding between the check and the connection)."""

    def __init__(self, policy: URLPolicy):
        self._policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._policy.public_addresses(host, port)
        except _Unresolvable as error:
            raise httpcore.ConnectError(str(error)) from None
        last: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as error:
                last = error
        assert last is not None
        raise last


def _guarded_transport(policy: URLPolicy, verify_tls: bool) -> httpx.BaseTransport:
    transport = httpx.HTTPTransport(verify=verify_tls, retries=0)
    pool = getattr(transport, "_pool", None)
    if pool is not None and hasattr(pool, "_network_backend"):
        pool._network_backend = _GuardedBackend(policy)
    return transport


# --- the sender ---------------------------------------------------------------------------------


class NHDSender:
    """Calls to one partner's sharing endpoints. ``transport`` replaces the network in tests
    (``httpx.MockTransport``); ``sleep`` and ``clock`` make retries testable without waiting."""

    def __init__(
        self,
        policy: URLPolicy,
        *,
        verify_tls: bool = True,
        timeout_seconds: float = 30.0,
        max_attempts: int = 3,
        max_retry_seconds: float = 30.0,
        backoff_seconds: float = 0.5,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.policy = policy
        self.retries = RetryPolicy(
            attempts=max_attempts,
            backoff_seconds=backoff_seconds,
            max_backoff_seconds=_MAX_BACKOFF_SECONDS,
            max_wait_seconds=max_retry_seconds,
        )
        self._sleep = sleep
        self._clock = clock
        self._http = httpx.Client(
            transport=transport or _guarded_transport(policy, verify_tls),
            timeout=timeout_seconds,
            follow_redirects=False,
            trust_env=False,
            verify=verify_tls,
        )

    def __repr__(self) -> str:
        return f"<NHDSender hosts={list(self.policy.allowed_hosts)!r}>"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> NHDSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- agreements -----------------------------------------------------------------------------

    def invite(self, base_url: str, agreement: Agreement) -> SendResult:
        """POST our invite to the receiver (§2.1), with the token ([REC]: always)."""
        if agreement.status != "pending":
            raise SendRefused("an invite must have status 'pending'")
        body = _without_nulls(agreement.to_dict())
        body["deactivated_by"] = None
        return self._call(
            "POST",
            _endpoint(base_url, "agreements", agreement.uuid),
            agreement,
            body,
            f"invite {agreement.uuid}",
        )

    def update_agreement(
        self, base_url: str, agreement: AgreementKey, changes: dict[str, Any]
    ) -> SendResult:
        """PUT only the changed agreement fields (§2.2, as RT sends them)."""
        body = {"uuid": agreement.uuid, **changes}
        return self._call(
            "PUT",
            _endpoint(base_url, "agreements", agreement.uuid),
            agreement,
            body,
            f"update agreement {agreement.uuid}",
        )

    def accept(
        self, base_url: str, agreement: AgreementKey, *, name: str | None = None
    ) -> SendResult:
        """The receiver accepts (§1.2 step 2); ``name`` is the receiver's organisation."""
        return self.update_agreement(base_url, agreement, _with_name({"status": "accepted"}, name))

    def decline(
        self, base_url: str, agreement: AgreementKey, *, name: str | None = None
    ) -> SendResult:
        return self.update_agreement(base_url, agreement, _with_name({"status": "declined"}, name))

    def deactivate(self, base_url: str, agreement: AgreementKey, *, role: str) -> SendResult:
        """Either side deactivates; ``deactivated_by`` names our role (§1.2 step 6, case 55)."""
        if role not in {"sender", "receiver"}:
            raise ValueError(f"role must be 'sender' or 'receiver', not {role!r}")
        return self.update_agreement(
            base_url, agreement, {"status": "inactive", "deactivated_by": role}
        )

    def get_agreement(self, base_url: str, agreement: AgreementKey) -> SendResult:
        return self._call(
            "GET",
            _endpoint(base_url, "agreements", agreement.uuid),
            agreement,
            None,
            f"read agreement {agreement.uuid}",
        )

    # --- tickets --------------------------------------------------------------------------------

    def share_ticket(self, base_url: str, agreement: AgreementKey, ticket: Ticket) -> SendResult:
        """POST the full ticket to the receiver (§2.4). Refused locally, before any HTTP, when
        the agreement is not accepted (case 56) or when we are not its sender."""
        _require_accepted(agreement, "share a ticket")
        if getattr(agreement, "our_role", "sender") != "sender":
            raise SendRefused(
                f"agreement {agreement.uuid} was made by the partner: only its sender shares "
                "tickets under it"
            )
        body = _without_nulls(ticket.to_dict())
        body.setdefault("comments", [])
        return self._call(
            "POST",
            _endpoint(base_url, "tickets", ticket.uuid),
            agreement,
            body,
            f"share ticket {ticket.uuid}",
        )

    def update_ticket(self, base_url: str, agreement: AgreementKey, update: Ticket) -> SendResult:
        """PUT only what changed (§2.5, case 53): the fields set on ``update``, plus ``uuid``.
        Build ``update`` with :func:`ticket_update` so that no comment is sent twice."""
        _require_accepted(agreement, "update a shared ticket")
        body = update.to_dict(only_set=True)
        body["uuid"] = update.uuid
        return self._call(
            "PUT",
            _endpoint(base_url, "tickets", update.uuid),
            agreement,
            body,
            f"update ticket {update.uuid}",
        )

    def unshare_ticket(
        self, base_url: str, agreement: AgreementKey, ticket_uuid: str
    ) -> SendResult:
        """DELETE with an empty body and the token (§2.7, case 54)."""
        return self._call(
            "DELETE",
            _endpoint(base_url, "tickets", ticket_uuid),
            agreement,
            None,
            f"unshare ticket {ticket_uuid}",
        )

    def get_ticket(self, base_url: str, agreement: AgreementKey, ticket_uuid: str) -> SendResult:
        return self._call(
            "GET",
            _endpoint(base_url, "tickets", ticket_uuid),
            agreement,
            None,
            f"read ticket {ticket_uuid}",
        )

    # --- attachments ----------------------------------------------------------------------------

    def download(self, url: str, *, max_bytes: int, token: str | None = None) -> SendResult:
        """Fetch an attachment URL into a temporary file (``result.data``, positioned at 0),
        through the same URL policy and redirect rules, refusing more than ``max_bytes``.
        ``token`` is sent only when given: attachment hosts are often third parties."""
        headers = {"Accept": "*/*", "User-Agent": USER_AGENT}
        secrets = _secrets_of(token)
        if token:
            headers[TOKEN_HEADER] = token
        what = f"download {_display(url)}"
        try:
            response = self._exchange("GET", url, headers, None, stream=True)
        except _Unresolvable as error:
            return SendResult(False, None, retryable=True, message=f"{what}: {error}")
        except httpx.HTTPError as error:
            message = scrub(f"{what}: {_describe_error(error)}", secrets)
            return SendResult(False, None, retryable=True, message=message)
        try:
            if not response.is_success:
                return _failure(response, what, secrets, body=b"")
            return _spooled(response, what, max_bytes, secrets)
        finally:
            response.close()

    # --- the exchange ---------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        url: str,
        agreement: AgreementKey,
        body: dict[str, Any] | None,
        what: str,
    ) -> SendResult:
        token = _token(agreement)
        headers = {
            VERSION_HEADER: "1",
            "Content-Type": CONTENT_TYPE,
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            TOKEN_HEADER: token,
        }
        content: bytes | None = b""
        if body is not None:
            content = json.dumps(body, ensure_ascii=False).encode("utf-8")
        if method == "GET":
            content = None  # RT's GETs carry no body either
        return self._with_retries(
            method, url, headers, content, f"{what}: {method} {_display(url)}", _secrets_of(token)
        )

    def _with_retries(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | None,
        what: str,
        secrets: list[str],
    ) -> SendResult:
        tries = [0]

        def attempt() -> SendResult | TryAgain[SendResult]:
            tries[0] += 1
            try:
                response = self._exchange(method, url, headers, content)
            except _Unresolvable as error:  # never sent
                return _again(
                    SendResult(False, None, retryable=True, message=f"{what}: {error}"), tries[0]
                )
            except httpx.HTTPError as error:
                message = scrub(f"{what}: {_describe_error(error)}", secrets)
                failed = SendResult(False, None, retryable=True, message=message, attempts=tries[0])
                # A POST that may have landed is not repeated at once; the next run finds out.
                return _again(failed, tries[0]) if may_repeat(method, error=error) else failed
            log.debug("%s %s -> %d", method, _display(url), response.status_code)
            if response.is_success:
                data = _json_or_none(response)
                return SendResult(True, response.status_code, attempts=tries[0], data=data)
            failed = _failure(response, what, secrets, body=response.content)
            limited = failed.status == 429 or (
                failed.status == 503 and failed.retry_after is not None
            )
            if failed.retryable and (limited or may_repeat(method, status=failed.status)):
                return _again(failed, tries[0], rate_limited=limited)
            return replace(failed, attempts=tries[0])

        def on_retry(failed: TryAgain[SendResult], wait: float) -> None:
            status = failed.failure.status or "no answer"
            log.info("%s failed (%s); retrying in %.1fs", what, status, wait)

        clock, sleep = self._clock, self._sleep
        return _given_up(
            retrying(attempt, self.retries, sleep=sleep, clock=clock, on_retry=on_retry)
        )

    def _exchange(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | None,
        *,
        stream: bool = False,
    ) -> httpx.Response:
        """One request and its redirects (§7.1): same method, body and headers on every hop."""
        current = url
        for _hop in range(MAX_REDIRECTS + 1):
            self.policy.check(current)
            try:
                request = self._http.build_request(
                    method, current, headers=headers, content=content
                )
            except httpx.InvalidURL as error:  # not an HTTPError: it would escape every caller
                raise UnsafeURL(f"{_display(current)}: not a valid URL ({error})") from None
            response = self._http.send(request, stream=stream)
            location = response.headers.get("location")
            if not (300 <= response.status_code < 400 and location):
                return response
            response.close()
            target = urljoin(current, location)
            if _split(current).scheme == "https" and _split(target).scheme != "https":
                raise UnsafeURL(
                    f"{_display(current)} redirects to {_display(target)}: a redirect from "
                    "https to http is refused (the token would travel in clear text)"
                )
            log.info("%s %s redirected to %s", method, _display(current), _display(target))
            current = target
        raise TooManyRedirects(
            f"{method} {_display(url)}: more than {MAX_REDIRECTS} redirects in a row; "
            "check the partner's sharing URL"
        )


# --- ticket updates -----------------------------------------------------------------------------

_UPDATABLE = (
    "subject",
    "requested_at",
    "status",
    "requester",
    "tags",
    "original_id",
    "custom_fields",
    "custom_status",
)


def ticket_update(sent: Ticket, wanted: Ticket, *, current_actor: Actor | None) -> Ticket | None:
    """The PUT that brings a partner from ``sent`` (what it holds) to ``wanted``: ``uuid``,
    ``current_actor``, the fields set on ``wanted`` that differ, and the comments whose uuid it
    has not seen (never one already sent: case 53). ``None`` when nothing differs."""
    changed: dict[str, Any] = {}
    for name in _UPDATABLE:
        value = getattr(wanted, name)
        if name in wanted.model_fields_set and value is not None and value != getattr(sent, name):
            changed[name] = value
    known = {comment.uuid for comment in sent.comments}
    new_comments = [comment for comment in wanted.comments if comment.uuid not in known]
    if not changed and not new_comments:
        return None
    data: dict[str, Any] = {"uuid": sent.uuid, **changed}
    if new_comments:
        data["comments"] = new_comments
    if current_actor is not None:
        data["current_actor"] = current_actor
    return Ticket(**data)


# --- helpers ------------------------------------------------------------------------------------


def _token(agreement: AgreementKey) -> str:
    if not agreement.access_key:
        raise SendRefused(f"agreement {agreement.uuid} has no access key")
    return f"{agreement.uuid}:{agreement.access_key}"


def _secrets_of(token: str | None) -> list[str]:
    if not token:
        return []
    _uuid, _colon, key = token.partition(":")
    return [token, key] if key else [token]


def _require_accepted(agreement: AgreementKey, action: str) -> None:
    if agreement.status != "accepted":
        raise AgreementNotAccepted(
            f"cannot {action} under agreement {agreement.uuid}: it is {agreement.status}, "
            "and tickets travel only under an accepted agreement"
        )


def _endpoint(base_url: str, kind: str, uuid: str) -> str:
    """``{base}/agreements/{uuid}`` or ``{base}/tickets/{uuid}``: the base is opaque (§0.1)."""
    return f"{base_url.rstrip('/')}/{kind}/{uuid}"


def _split(url: str) -> Any:
    try:
        return urlsplit(url)
    except ValueError as error:
        raise UnsafeURL(f"not a valid URL: {error}") from None


def _host_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def _normal_host(host: str) -> str:
    return host.strip().strip("[]").rstrip(".").lower()


def _display(url: str) -> str:
    """A URL for messages: no credentials, query or fragment (secrets may travel there)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(invalid URL)"
    netloc = parts.hostname or ""
    try:
        if parts.port:
            netloc = f"{netloc}:{parts.port}"
    except ValueError:  # a port out of range
        return "(invalid URL)"
    shown = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    if len(shown) > _DISPLAY_CHARS:
        shown = shown[:_DISPLAY_CHARS] + f"… ({len(url)} characters)"
    return shown


def _with_name(changes: dict[str, Any], name: str | None) -> dict[str, Any]:
    return {**changes, "name": name} if name else changes


def _without_nulls(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        return None


def _partner_reason(body: bytes) -> str:
    """The partner's short reason: ``{"error": ...}`` (§9 [REC]) or the start of plain text."""
    if not body:
        return ""
    text = body[: _ERROR_EXCERPT * 4].decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), str):
        text = data["error"]
    text = " ".join(text.split())
    return text[:_ERROR_EXCERPT]


def _failure(response: httpx.Response, what: str, secrets: list[str], *, body: bytes) -> SendResult:
    status = response.status_code
    retryable = is_retryable_status(status)
    hint = _HINTS.get(status, "the partner is unavailable; it will be retried" if retryable else "")
    reason = _partner_reason(body)
    message = f"{what} answered {status}"
    if reason:
        message += f" ({reason})"
    if hint:
        message += f": {hint}"
    return SendResult(
        False,
        status,
        gone=status == 410,
        retryable=retryable,
        message=scrub(message, secrets),
        retry_after=parse_retry_after(response.headers.get("retry-after")) if retryable else None,
    )


def _spooled(response: httpx.Response, what: str, max_bytes: int, secrets: list[str]) -> SendResult:
    """A download's bytes in a temporary file (``data``, at 0), refused past ``max_bytes``."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        return SendResult(
            False,
            response.status_code,
            message=f"{what}: {declared} bytes, over the {max_bytes}-byte limit",
        )
    # Handed to the caller, who closes it.
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY)  # noqa: SIM115
    size = 0
    try:
        for chunk in response.iter_bytes(_DOWNLOAD_CHUNK):
            size += len(chunk)
            if size > max_bytes:
                spool.close()
                return SendResult(
                    False,
                    response.status_code,
                    message=f"{what}: more than the {max_bytes}-byte limit",
                )
            spool.write(chunk)
    except httpx.HTTPError as error:
        spool.close()
        message = scrub(f"{what}: {_describe_error(error)}", secrets)
        return SendResult(False, None, retryable=True, message=message)
    spool.seek(0)
    return SendResult(True, response.status_code, data=spool)


def _again(result: SendResult, tries: int, *, rate_limited: bool = False) -> TryAgain[SendResult]:
    failed = replace(result, attempts=tries)
    return TryAgain(failed, rate_limited=rate_limited, retry_after=failed.retry_after)


def _given_up(outcome: SendResult | GaveUp[SendResult]) -> SendResult:
    if not isinstance(outcome, GaveUp):
        return outcome
    if outcome.refused_wait is None:
        return outcome.failure
    # The wait is longer than the budget left: the engine parks the ticket that long.
    wait = max(outcome.refused_wait, outcome.retry_after or 0.0)
    return replace(outcome.failure, retry_after=wait)


def _describe_error(error: httpx.HTTPError) -> str:
    kinds: dict[type[httpx.HTTPError], str] = {
        httpx.ConnectTimeout: "connecting timed out",
        httpx.ReadTimeout: "the answer timed out",
        httpx.WriteTimeout: "sending timed out",
        httpx.PoolTimeout: "no connection was free",
        httpx.ConnectError: "could not connect",
    }
    kind = kinds.get(type(error), "the connection failed")
    detail = str(error).strip()
    return f"{kind} ({detail})" if detail else kind
