"""A fault-injecting HTTP proxy on loopback: the network and the tracker misbehaving on demand.

Put it between an adapter and a real tracker, point the adapter's ``base_url`` at
:attr:`FaultProxy.url`, and choose which requests go wrong and how::

    with FaultProxy("http://127.0.0.1:3000/") as proxy:
        adapter = build_adapter(base_url=proxy.url)
        proxy.next("lost_answer", method="PUT", path_regex=r"/issues/\\d+\\.json")
        ...                                     # that PUT reaches Redmine, its answer is lost
        proxy.randomly(rate=0.2, seed=7)        # then 20% of all requests fail, reproducibly
        ...
        assert proxy.stats.faults["lost_answer"] == 1

The faults (:data:`FAULT_KINDS`), in two families. *After*: the tracker received the request and
acted on it, only the answer is lost, so the client cannot tell whether its write happened:

- ``lost_answer``: the proxy forwards the request, then closes the client's connection without a
  byte of answer (httpx raises ``RemoteProtocolError``);
- ``gateway_after``: forwards, then answers 502 or 504 instead of the tracker's answer.

*Before*: the tracker never sees the request:

- ``rate_limit``: answers 429 with ``Retry-After: N`` (``retry_after`` seconds, default 1);
- ``server_error_before``: answers 500 or 503;
- ``reset_before``: resets the connection (an RST, ``SO_LINGER`` 0), the client sees a reset;
- ``delay``: sleeps ``delay_seconds`` and then forwards and answers normally. With a client read
  timeout shorter than the delay this is the worst case: the client gives up, and the tracker acts
  afterwards anyway (possibly after the client's retry).

A fault is chosen per request: first the oldest matching entry of the deterministic queue
(:meth:`FaultProxy.next`), else the seeded random plan (:meth:`FaultProxy.randomly`), else none.

What the proxy rewrites, and only that: the request's ``Host``, and ``Origin``/``Referer`` when they
name the proxy, are set to the upstream's (Roundup refuses writes whose Origin or Host is not its
own); a response's ``Location`` header that points at the upstream is pointed at the proxy.
Absolute URLs inside answer bodies (Redmine's attachment ``content_url``, for example) still point
at the upstream, so a client that follows them bypasses the proxy. An upstream that cannot be
reached gets 502 (504 when it does not answer within ``upstream_timeout``), as a real gateway would.

Everything is thread-safe: the server handles each connection in its own thread, and the plan,
the queue and the counters are guarded by one lock.
"""

from __future__ import annotations

import contextlib
import http.client
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

__all__ = ["FAULT_KINDS", "FaultKind", "FaultProxy", "ProxyEvent", "ProxyStats"]

FaultKind = Literal[
    "lost_answer", "gateway_after", "rate_limit", "server_error_before", "reset_before", "delay"
]
FAULT_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)

# Which answer each status-answering fault may give; the random plan picks one, next() may pin it.
_STATUSES: dict[str, tuple[int, ...]] = {
    "gateway_after": (502, 504),
    "server_error_before": (500, 503),
    "rate_limit": (429,),
}
# Headers that belong to one connection, never forwarded (RFC 9110 section 7.6.1).
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
_LINGER_RESET = struct.pack("ii", 1, 0)


@dataclass(frozen=True)
class ProxyStats:
    """Counters since the proxy started (``clear()`` does not reset them)."""

    requests: int = 0
    forwarded: int = 0  # requests the upstream received (delay and the *after* faults included)
    faults: Counter[str] = field(default_factory=Counter)  # by kind
    methods: Counter[str] = field(default_factory=Counter)  # every request, by method
    upstream_errors: int = 0  # forwards that got no answer from the upstream (answered 502/504)


@dataclass(frozen=True)
class ProxyEvent:
    """One request as the proxy handled it. ``status`` is what the client got; None when the
    connection was closed or reset without an answer."""

    method: str
    path: str
    fault: FaultKind | None
    forwarded: bool
    status: int | None


@dataclass(frozen=True)
class _Fault:
    kind: FaultKind
    status: int | None = None
    delay_seconds: float | None = None
    retry_after: int | None = None


@dataclass
class _Rule:
    """Which requests a queued fault or the random plan applies to."""

    methods: frozenset[str] | None
    path: re.Pattern[str] | None

    def matches(self, method: str, path: str) -> bool:
        if self.methods is not None and method not in self.methods:
            return False
        return self.path is None or self.path.search(path) is not None


@dataclass
class _RandomPlan:
    rule: _Rule
    rate: float
    kinds: tuple[FaultKind, ...]
    rng: random.Random


class FaultProxy:
    """A loopback HTTP proxy in front of ``upstream_url`` that injects faults on demand.

    ``retry_after`` (seconds, sent with 429) and ``delay_seconds`` (the ``delay`` fault's sleep) are
    defaults that :meth:`next` and :meth:`randomly` may override. ``upstream_timeout`` bounds each
    forward.
    """

    def __init__(
        self,
        upstream_url: str,
        *,
        retry_after: int = 1,
        delay_seconds: float = 2.0,
        upstream_timeout: float = 60.0,
    ):
        parts = urlsplit(upstream_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(
                f"FaultProxy forwards plain http to a host; got upstream_url={upstream_url!r} "
                "(give e.g. 'http://127.0.0.1:3000/')"
            )
        self.upstream_host = parts.hostname
        self.upstream_port = parts.port or 80
        self.upstream_netloc = parts.netloc
        self.upstream_origin = f"http://{parts.netloc}"
        self.prefix = parts.path or "/"
        self.retry_after = retry_after
        self.delay_seconds = delay_seconds
        self.upstream_timeout = upstream_timeout
        self._lock = threading.Lock()
        self._queue: list[tuple[_Rule, _Fault]] = []
        self._plan: _RandomPlan | None = None
        self._requests = 0
        self._forwarded = 0
        self._upstream_errors = 0
        self._faults: Counter[str] = Counter()
        self._methods: Counter[str] = Counter()
        self._history: list[ProxyEvent] = []
        self._server: _ProxyServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        if self._server is not None:
            return self
        server = _ProxyServer(("127.0.0.1", 0), _ProxyHandler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"FaultProxy:{server.server_address[1]}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every open connection (a keep-alive connection left open would
        otherwise still be served)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        server.close_all_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError(
                "FaultProxy is not started: call start() or use it as a context manager"
            )
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The upstream URL as seen through the proxy: same path prefix, the proxy's port."""
        return f"{self.origin}{self.prefix}"

    # -- choosing faults -------------------------------------------------------------------------

    def next(
        self,
        kind: FaultKind,
        *,
        method: str | None = None,
        path_regex: str | None = None,
        status: int | None = None,
        delay_seconds: float | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> FaultProxy:
        """The next ``times`` requests matching ``method`` (any when None) and ``path_regex``
        (searched in path+query; any when None) get this fault. Queued faults are used oldest
        first and win over the random plan."""
        fault = _Fault(_check_kind(kind), _check_status(kind, status), delay_seconds, retry_after)
        rule = _rule(None if method is None else [method], path_regex)
        with self._lock:
            self._queue.extend((rule, fault) for _ in range(times))
        return self

    def randomly(
        self,
        rate: float = 0.2,
        kinds: list[FaultKind] | tuple[FaultKind, ...] | None = None,
        *,
        seed: int = 0,
        methods: list[str] | None = None,
        path_regex: str | None = None,
    ) -> FaultProxy:
        """From now on each matching request gets a fault with probability ``rate``, its kind drawn
        uniformly from ``kinds`` (every kind when None). Seeded: the same sequence of requests gets
        the same faults. Replaces any earlier random plan."""
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {rate}")
        chosen = tuple(_check_kind(kind) for kind in (kinds or FAULT_KINDS))
        plan = _RandomPlan(_rule(methods, path_regex), rate, chosen, random.Random(seed))
        with self._lock:
            self._plan = plan
        return self

    def clear(self) -> FaultProxy:
        """No more faults: empty the queue and drop the random plan (counters are kept)."""
        with self._lock:
            self._queue.clear()
            self._plan = None
        return self

    @property
    def pending(self) -> int:
        """Queued faults not used yet."""
        with self._lock:
            return len(self._queue)

    # -- what happened ---------------------------------------------------------------------------

    @property
    def stats(self) -> ProxyStats:
        """A snapshot of the counters."""
        with self._lock:
            return ProxyStats(
                self._requests,
                self._forwarded,
                Counter(self._faults),
                Counter(self._methods),
                self._upstream_errors,
            )

    @property
    def history(self) -> list[ProxyEvent]:
        """Every request handled so far, in the order their handling finished."""
        with self._lock:
            return list(self._history)

    # -- used by the handler ---------------------------------------------------------------------

    def _choose(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            self._requests += 1
            self._methods[method] += 1
            for index, (rule, fault) in enumerate(self._queue):
                if rule.matches(method, path):
                    del self._queue[index]
                    return self._settle(fault, random.Random())
            plan = self._plan
            if plan is None or not plan.rule.matches(method, path):
                return None
            if plan.rng.random() >= plan.rate:
                return None
            return self._settle(_Fault(plan.rng.choice(plan.kinds)), plan.rng)

    def _settle(self, fault: _Fault, rng: random.Random) -> _Fault:
        """Fill in the defaults of a chosen fault and count it (the lock is held)."""
        self._faults[fault.kind] += 1
        statuses = _STATUSES.get(fault.kind)
        return _Fault(
            fault.kind,
            fault.status or (rng.choice(statuses) if statuses else None),
            self.delay_seconds if fault.delay_seconds is None else fault.delay_seconds,
            self.retry_after if fault.retry_after is None else fault.retry_after,
        )

    def _record(self, event: ProxyEvent, *, upstream_error: bool = False) -> None:
        with self._lock:
            self._history.append(event)
            self._forwarded += event.forwarded
            self._upstream_errors += upstream_error

    def _rewrite_request_header(self, name: str, value: str) -> str:
        lowered = name.lower()
        if lowered == "host":
            return self.upstream_netloc
        if lowered in ("origin", "referer") and value.startswith(self.origin):
            return self.upstream_origin + value[len(self.origin) :]
        return value

    def _rewrite_response_header(self, name: str, value: str) -> str:
        if name.lower() == "location" and value.startswith(self.upstream_origin):
            return self.origin + value[len(self.upstream_origin) :]
        return value


def _check_kind(kind: str) -> FaultKind:
    if kind not in FAULT_KINDS:
        raise ValueError(f"unknown fault kind {kind!r}; choose one of {', '.join(FAULT_KINDS)}")
    return kind  # type: ignore[return-value]


def _check_status(kind: str, status: int | None) -> int | None:
    if status is None:
        return None
    allowed = _STATUSES.get(kind)
    if allowed is None:
        raise ValueError(f"fault {kind!r} answers nothing, so it takes no status")
    if kind == "rate_limit" and status != 429:
        raise ValueError("rate_limit always answers 429")
    if not 400 <= status <= 599:
        raise ValueError(f"status {status} of fault {kind!r} is not an HTTP error status")
    return status


def _rule(methods: list[str] | None, path_regex: str | None) -> _Rule:
    return _Rule(
        None if methods is None else frozenset(method.upper() for method in methods),
        None if path_regex is None else re.compile(path_regex),
    )


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultProxy

    def __init__(self, *args: Any, **kwargs: Any):
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        # A connection marked for reset must not send a FIN first (shutdown() would): close it so
        # that the kernel sends the RST that SO_LINGER 0 asks for.
        with contextlib.suppress(OSError):
            if request.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8) == _LINGER_RESET:
                self.close_request(request)
                return
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60  # an idle keep-alive connection's thread ends after this
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    server: _ProxyServer

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass  # tests read proxy.history; stderr noise helps nobody

    def _handle(self) -> None:
        proxy = self.server.proxy
        method = self.command
        body = self._read_body()
        fault = proxy._choose(method, self.path)
        kind = fault.kind if fault else None

        if fault is not None and fault.kind == "reset_before":
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
            proxy._record(ProxyEvent(method, self.path, kind, False, None))
            return
        if fault is not None and fault.kind in ("rate_limit", "server_error_before"):
            assert fault.status is not None
            extra = {"Retry-After": str(fault.retry_after)} if fault.kind == "rate_limit" else {}
            # Recorded before answering: a client that has its answer finds it in the history.
            proxy._record(ProxyEvent(method, self.path, kind, False, fault.status))
            self._answer_fault(fault.status, fault.kind, extra)
            return
        if fault is not None and fault.kind == "delay":
            assert fault.delay_seconds is not None
            time.sleep(fault.delay_seconds)

        try:
            status, reason, headers, answer = self._forward(method, body)
        except (OSError, http.client.HTTPException) as error:
            gateway = 504 if isinstance(error, TimeoutError) else 502
            proxy._record(ProxyEvent(method, self.path, kind, False, gateway), upstream_error=True)
            self._answer_fault(gateway, f"upstream unreachable ({type(error).__name__})", {})
            return

        if fault is not None and fault.kind == "lost_answer":
            self.close_connection = True
            proxy._record(ProxyEvent(method, self.path, kind, True, None))
            return
        if fault is not None and fault.kind == "gateway_after":
            assert fault.status is not None
            proxy._record(ProxyEvent(method, self.path, kind, True, fault.status))
            self._answer_fault(fault.status, fault.kind, {})
            return
        proxy._record(ProxyEvent(method, self.path, kind, True, status))
        self._relay(status, reason, headers, answer)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(self, method: str, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        proxy = self.server.proxy
        connection = http.client.HTTPConnection(
            proxy.upstream_host, proxy.upstream_port, timeout=proxy.upstream_timeout
        )
        try:
            connection.putrequest(method, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() in _HOP_BY_HOP or name.lower() == "content-length":
                    continue
                connection.putheader(name, proxy._rewrite_request_header(name, value))
            if body or method in ("POST", "PUT", "PATCH"):
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body or None)
            response = connection.getresponse()
            answer = response.read()
            return response.status, response.reason, response.getheaders(), answer
        finally:
            connection.close()

    def _relay(
        self, status: int, reason: str, headers: list[tuple[str, str]], answer: bytes
    ) -> None:
        proxy = self.server.proxy
        self.send_response_only(status, reason)
        for name, value in headers:
            lowered = name.lower()
            if lowered in _HOP_BY_HOP:
                continue
            if lowered == "content-length" and self.command != "HEAD":
                continue
            self.send_header(name, proxy._rewrite_response_header(name, value))
        if self.command != "HEAD" and status >= 200 and status not in (204, 304):
            self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer)

    def _answer_fault(self, status: int, what: str, headers: dict[str, str]) -> None:
        text = f"{status} from FaultProxy: {what}\n".encode()
        self.send_response_only(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(text)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(text)
