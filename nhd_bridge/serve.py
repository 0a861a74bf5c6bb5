"""``nhd-bridge serve``: the NHD receiver, the embedded scheduler and /health in one process.

A partner's request is committed to the state store before it is answered (the receiver's
promise); the scheduler then applies it through the engine, brought forward by the request so that
it lands within a second or two rather than at the next interval. SIGTERM (or Ctrl-C) stops
accepting requests, lets in-flight ones finish, asks running syncs to stop after their current
ticket, and exits: nothing acknowledged is lost, nothing half-synced is left without its record.
"""

from __future__ import annotations

import hmac
import logging
import os
import signal
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from nhd_bridge.core.config import ConfigError, LoadedConfig, load_config, parse_duration
from nhd_bridge.core.protocol.receiver import create_receiver_app
from nhd_bridge.core.protocol.wire_store import WireStore
from nhd_bridge.core.run import RunSummary
from nhd_bridge.core.scheduler import BridgeScheduler
from nhd_bridge.core.state import AgreementHealth, StateStore, utcnow

__all__ = ["build_app", "serve"]

log = logging.getLogger(__name__)

PARTNER_WRITES = frozenset({"POST", "PUT", "DELETE"})
# /status on a listener partners reach answers only `Authorization: Bearer <this variable>`.
STATUS_TOKEN_ENV = "NHD_BRIDGE_STATUS_TOKEN"
# Bounds on what one client can hold: connections in all, idle keep-alive seconds.
MAX_CONNECTIONS = 200
KEEP_ALIVE_SECONDS = 5


def build_app(config: LoadedConfig, store: StateStore, scheduler: BridgeScheduler) -> FastAPI:
    """The ASGI app: receiver endpoints (when configured) and /health with the last runs."""
    settings = config.bridge.server.receiver
    if settings is not None:
        app = create_receiver_app(settings, WireStore(store))
        prefix = settings.path_prefix
    else:
        app = FastAPI(title="nhd_bridge", docs_url=None, redoc_url=None, openapi_url=None)
        prefix = None
    last_runs: dict[str, dict[str, Any]] = {}
    scheduler.add_listener(lambda summary: last_runs.update({summary.agreement: _brief(summary)}))

    if prefix is not None:

        @app.middleware("http")
        async def apply_partner_pushes(
            request: Request, call_next: Callable[[Request], Awaitable[Response]]
        ) -> Response:
            response = await call_next(request)
            # Only what the partner changed and we stored: bring the syncs forward.
            if (
                request.method in PARTNER_WRITES
                and response.status_code < 300
                and request.url.path.startswith(prefix + "/")
            ):
                scheduler.trigger()
            return response

    status_token = os.environ.get(STATUS_TOKEN_ENV, "")
    unhealthy_after = parse_duration(config.bridge.server.unhealthy_after)

    @app.get("/status")
    async def status(request: Request) -> JSONResponse:
        # With a receiver, this listener faces partners: every agreement's names, counts and
        # errors are the operator's, so /status answers only the bearer of the status token,
        # and anyone else exactly as an unknown path.
        if prefix is not None and not _bearer_matches(request, status_token):
            return JSONResponse({"error": "Not Found"}, status_code=404)
        health = store.read().all_health()
        agreements = {name: dict(brief) for name, brief in last_runs.items()}
        for row in health:
            agreements.setdefault(row.agreement, {}).update(_health_brief(row))
        failing = _failing(health, unhealthy_after)
        return JSONResponse({"status": "failing" if failing else "ok", "agreements": agreements})

    # Liveness that also tells an orchestrator when agreements have been failing too long; it
    # names none of them (partners may reach this listener): /status has the details.
    app.router.routes[:] = [
        route for route in app.router.routes if getattr(route, "path", None) != "/health"
    ]

    @app.get("/health")
    async def health() -> JSONResponse:
        if _failing(store.read().all_health(), unhealthy_after):
            return JSONResponse({"status": "failing"}, status_code=503)
        return JSONResponse({"status": "ok"})

    return app


def _failing(health: list[AgreementHealth], unhealthy_after: timedelta) -> list[str]:
    now = utcnow()
    return [
        row.agreement
        for row in health
        if row.failing_since is not None and now - row.failing_since >= unhealthy_after
    ]


def _health_brief(row: AgreementHealth) -> dict[str, Any]:
    def when(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "last_run_at": when(row.last_run_at),
        "last_ok_at": when(row.last_ok_at),
        "failing_since": when(row.failing_since),
        "last_error": row.last_error,
    }


def _bearer_matches(request: Request, token: str) -> bool:
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    return (
        bool(token)
        and scheme.lower() == "bearer"
        and hmac.compare_digest(value.strip().encode(), token.encode())
    )


def serve(config: LoadedConfig, *, host: str | None = None, port: int | None = None) -> None:
    """Run until SIGTERM or Ctrl-C; SIGHUP re-reads the configuration file."""
    store = StateStore(config.state_url)
    scheduler = BridgeScheduler(config, store)
    app = build_app(config, store, scheduler)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=host or config.bridge.server.host,
            port=config.bridge.server.port if port is None else port,
            # No logging setup of uvicorn's own: its records go to the root logger, so they take
            # the operator's --log-level/--log-format and the secret redaction like any other.
            log_config=None,
            log_level=None,
            # Tokens travel in headers, never in URLs, so access logs cannot leak them.
            access_log=True,
            # More connections are answered 503; an idle connection is closed after this.
            limit_concurrency=MAX_CONNECTIONS,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
    )
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again for the
    # previous handler. Ours only notes it, so the scheduler and store are closed below too.
    stopped_by: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda number, _frame: stopped_by.append(number))
        for sig in (signal.SIGTERM, signal.SIGINT)
    }
    previous[signal.SIGHUP] = signal.signal(
        signal.SIGHUP, lambda _number, _frame: _reload(config, scheduler)
    )
    scheduler.start()
    try:
        server.run()
    finally:
        scheduler.shutdown()
        store.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopped_by:
        log.info("stopped by signal %d after a graceful shutdown", stopped_by[0])


def _reload(current: LoadedConfig, scheduler: BridgeScheduler) -> None:
    """SIGHUP: read the YAML again, e.g. after `agreements accept` put a uuid in it. A broken
    file is reported and the running configuration kept; receiver settings (URLs, port) need a
    restart, since partners already hold them."""
    try:
        fresh = load_config(current.file)
    except ConfigError as error:
        log.error("configuration not reloaded, the running one stays: %s", error)
        return
    if fresh.bridge.server != scheduler.config.bridge.server:
        log.warning("server settings changed in %s; they apply after a restart", current.file)
    scheduler.reload(fresh)
    log.info(
        "configuration reloaded from %s: %d agreements",
        current.file,
        len(fresh.bridge.agreements),
    )


def _brief(summary: RunSummary) -> dict[str, Any]:
    return {
        "run_id": summary.run_id,
        "seen": summary.tickets_seen,
        "writes": dict(summary.writes),
        "parked": summary.parked,
        "errors": summary.errors[-5:],
    }
