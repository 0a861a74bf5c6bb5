"""The NHD receiver: the endpoints partners call (nhd-spec.md §2, §3), as a FastAPI app.

Checks run in RT's order (§7.2): version header (412), body size (413), content type (415),
JSON (400), path uuid (422), then the token (401/422/403), then the resource. Every write is
committed by the WireStore before the answer goes out, and a refused request writes nothing.
Headers are never logged: they carry the access key.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from nhd_bridge.core.model import Agreement, NHDValidationError, Ticket
from nhd_bridge.core.protocol.rules import (
    RuleViolation,
    TokenError,
    acceptable_content_type,
    check_sizes,
    clean_text,
    keys_match,
    parse_token,
    token_matches,
    valid_uuid,
    validate_invite,
    validate_ticket_keys,
)
from nhd_bridge.core.protocol.settings import ReceiverSettings
from nhd_bridge.core.protocol.wire_store import (
    AlreadyExists,
    Gone,
    NotFound,
    WireAgreement,
    WireStore,
    WireTicket,
)
from nhd_bridge.core.terminal import neutralise

__all__ = ["TOKEN_HEADER", "VERSION_HEADER", "WireError", "create_receiver_app"]

log = logging.getLogger(__name__)

TOKEN_HEADER = "X-Ticket-Sharing-Token"
VERSION_HEADER = "X-Ticket-Sharing-Version"
_AUTHENTICATE = {"WWW-Authenticate": "X-Ticket-Sharing"}
_NEW_TICKET_FIELDS = ("subject", "requested_at", "status", "requester")
_NO_AGREEMENT = "no agreement with this uuid matches the token"
_NO_TICKET = "no such ticket under this agreement"
_MAX_TRACKED_SOURCES = 10_000
_REPEATED_SLASHES = re.compile(r"/{2,}")

Model = TypeVar("Model", Agreement, Ticket)


class WireError(Exception):
    """A refusal with its HTTP status; turned into ``{"error": message}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        payload,
        status_code=status,
        headers={VERSION_HEADER: "1", **(headers or {})},
        media_type="application/json",
    )


def create_receiver_app(settings: ReceiverSettings, store: WireStore) -> FastAPI:
    # No generated docs: these are partner endpoints, not a public API to browse.
    app = FastAPI(title="nhd_bridge receiver", docs_url=None, redoc_url=None, openapi_url=None)
    receiver = _Receiver(settings, store)

    async def on_wire_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, WireError)
        path = neutralise(request.url.path)
        log.info("%s %s refused: %d %s", request.method, path, error.status, neutralise(str(error)))
        return _json(error.status, {"error": error.message}, error.headers)

    async def on_http_error(request: Request, error: Exception) -> Response:
        # Routing refusals (unknown path 404, method 405 with Allow) in the same JSON shape.
        assert isinstance(error, StarletteHTTPException)
        path, status = neutralise(request.url.path), error.status_code
        log.info("%s %s refused: %d %s", request.method, path, status, error.detail)
        return _json(error.status_code, {"error": str(error.detail)}, dict(error.headers or {}))

    async def on_database_busy(_request: Request, _error: Exception) -> Response:
        # A locked or unreachable database is ours to fix, not the partner's: ask for a retry
        # (NHD senders retry 5xx with backoff, §6.3). Nothing was committed.
        return _json(503, {"error": "the state store is busy; retry"}, {"Retry-After": "5"})

    app.add_exception_handler(WireError, on_wire_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(OperationalError, on_database_busy)

    async def health() -> Response:
        return JSONResponse({"status": "ok"})

    async def agreements(request: Request, uuid: str) -> Response:
        return await receiver.agreement(request, uuid)

    async def tickets(request: Request, uuid: str) -> Response:
        return await receiver.ticket(request, uuid)

    prefix = settings.path_prefix
    app.add_api_route("/health", health, methods=["GET"], include_in_schema=False)
    app.add_api_route(
        f"{prefix}/agreements/{{uuid}}",
        agreements,
        methods=["GET", "POST", "PUT"],
        include_in_schema=False,
        response_model=None,
    )
    app.add_api_route(
        f"{prefix}/tickets/{{uuid}}",
        tickets,
        methods=["GET", "POST", "PUT", "DELETE"],
        include_in_schema=False,
        response_model=None,
    )
    app.add_middleware(_CollapsedSlashes)
    return app


class _CollapsedSlashes:
    """A partner whose sharing URL ends in '/' calls ``/sharing//agreements/…`` (the gem joins
    base + '/agreements/'): repeated slashes are read as one, so that it reaches the endpoint."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and "//" in scope["path"]:
            scope = {
                **scope,
                "path": _REPEATED_SLASHES.sub("/", scope["path"]),
                "raw_path": re.sub(rb"/{2,}", b"/", scope.get("raw_path") or b""),
            }
        await self.app(scope, receive, send)


class _Receiver:
    def __init__(self, settings: ReceiverSettings, store: WireStore):
        self.settings = settings
        self.store = store
        self._invites_by_source: dict[str, list[float]] = {}

    # --- shared checks --------------------------------------------------------------------------

    async def _preflight(self, request: Request, uuid: str) -> dict[str, Any] | None:
        """Version, body and path checks common to every endpoint; the JSON body on POST/PUT."""
        version = request.headers.get(VERSION_HEADER)
        if version is None:
            if self.settings.strict:
                raise WireError(412, f"{VERSION_HEADER}: 1 is required")
        elif version.strip() != "1":
            raise WireError(412, f"unsupported {VERSION_HEADER}; this receiver speaks 1")
        raw = await self._read_body(request)
        body = self._parse(request, raw) if request.method in {"POST", "PUT"} else None
        if not valid_uuid(uuid, strict=self.settings.strict):
            raise WireError(422, "the uuid in the path is not a valid uuid")
        return body

    async def _read_body(self, request: Request) -> bytes:
        """Read at most max_body_bytes within read_timeout_seconds (a client trickling a body
        byte by byte would otherwise hold a connection for ever); Content-Length is only a
        shortcut, never trusted."""
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        try:
            async with asyncio.timeout(self.settings.read_timeout_seconds):
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise self._too_large()
                    chunks.append(chunk)
        except TimeoutError:
            raise WireError(
                408,
                f"the body did not arrive within {self.settings.read_timeout_seconds:g} s",
                {"Connection": "close"},
            ) from None
        return b"".join(chunks)

    def _too_large(self) -> WireError:
        """413 as RT would; lenient answers 422, which Zendesk's client takes as a soft failure
        where it raises on 413 (gem client.rb ``handle_response``)."""
        limit = self.settings.max_body_bytes
        message = f"the body is larger than {limit} bytes (server.receiver.max_body_bytes)"
        return WireError(413 if self.settings.strict else 422, message)

    def _parse(self, request: Request, raw: bytes) -> dict[str, Any]:
        if not acceptable_content_type(request.headers.get("content-type")):
            raise WireError(415, "send the body as application/json")
        try:
            data = json.loads(raw, parse_constant=_no_constants)
        except (ValueError, RecursionError):  # also bad UTF-8 and over-long integers
            # 400 as RT answers; lenient prefers 422 (nhd-spec §7.1 [REC]): the gem raises on 400.
            status = 400 if self.settings.strict else 422
            raise WireError(status, "the body is not valid JSON") from None
        if not isinstance(data, dict):
            raise WireError(422, "the body must be a JSON object")
        problem = clean_text([data]) or check_sizes(data)
        if problem:
            raise WireError(422, problem)
        return data

    @staticmethod
    def _token(request: Request) -> str:
        token = request.headers.get(TOKEN_HEADER)
        if not token:
            raise WireError(401, f"{TOKEN_HEADER} is required", _AUTHENTICATE)
        return token

    @staticmethod
    def _same_uuid(body: dict[str, Any], uuid: str, *, required: bool) -> None:
        """The body uuid must equal the path's: required on POST, optional on PUT (§2)."""
        given = body.get("uuid")
        if given is None and not required:
            return
        if given != uuid:
            raise WireError(422, "the uuids in the path and the body differ")

    # --- agreements -----------------------------------------------------------------------------

    async def agreement(self, request: Request, uuid: str) -> Response:
        body = await self._preflight(request, uuid)
        if request.method == "POST":
            assert body is not None
            return await self._invite(request, uuid, body)
        token = self._token(request)
        agreement = await run_in_threadpool(self.store.get_agreement, uuid)
        # One answer for "unknown" and "not yours": no caller learns which agreements exist.
        if agreement is None or not token_matches(token, agreement.uuid, agreement.access_key):
            raise WireError(404, _NO_AGREEMENT)
        if request.method == "GET":
            return _json(200, _agreement_json(agreement))
        assert body is not None
        self._same_uuid(body, uuid, required=False)
        change = _decode(Agreement, {**body, "uuid": uuid})
        try:
            updated = await run_in_threadpool(
                lambda: self.store.apply_partner_update(
                    uuid,
                    change,
                    allow_reactivation=self.settings.allow_reactivation,
                    strict=self.settings.strict,
                )
            )
        except RuleViolation as error:
            raise WireError(422, str(error)) from None
        except NotFound:
            raise WireError(404, _NO_AGREEMENT) from None
        log.info("agreement %s updated by the %s: %s", uuid, agreement.partner_role, updated.status)
        return _json(200, _agreement_json(updated))

    async def _invite(self, request: Request, uuid: str, body: dict[str, Any]) -> Response:
        """POST /agreements: a partner invites us to be the receiver (§2.1)."""
        token = request.headers.get(TOKEN_HEADER)
        if token is None and self.settings.strict:
            raise WireError(401, f"{TOKEN_HEADER} is required", _AUTHENTICATE)
        self._same_uuid(body, uuid, required=True)
        invite = _decode(Agreement, body)
        # Zendesk sends no token here (§2.1 [REC]); one that is sent must match the body.
        if token is not None and not (
            invite.access_key and token_matches(token, invite.uuid, invite.access_key)
        ):
            raise WireError(403, "the token does not match the agreement in the body")
        try:
            validate_invite(invite, base_url=self.settings.base_url, strict=self.settings.strict)
            await self._admit_invite(request)
            stored = await run_in_threadpool(self.store.create_incoming_agreement, invite)
        except RuleViolation as error:
            raise WireError(422, str(error)) from None
        except (AlreadyExists, IntegrityError):  # IntegrityError: a concurrent twin won
            raise WireError(422, "an agreement with this uuid already exists") from None
        log.info("agreement %s: invite stored as pending", uuid)
        return _json(201, _agreement_json(stored))

    async def _admit_invite(self, request: Request) -> None:
        """Anyone may invite us (Zendesk sends no token), so invites are capped per client
        address and in total; invites nobody answered for pending_invite_days are pruned."""
        now = time.monotonic()
        source = request.client.host if request.client else "unknown"
        recent = [
            moment for moment in self._invites_by_source.get(source, []) if now - moment < 3600
        ]
        if len(recent) >= self.settings.max_invites_per_source:
            raise WireError(
                429, "too many invites from this address; try again later", {"Retry-After": "3600"}
            )
        cutoff = datetime.now(UTC) - timedelta(days=self.settings.pending_invite_days)
        pruned = await run_in_threadpool(self.store.prune_pending_invites, cutoff)
        if pruned:
            log.info(
                "%d invites unanswered for %d days removed",
                pruned,
                self.settings.pending_invite_days,
            )
        if (
            await run_in_threadpool(self.store.count_pending_invites)
            >= self.settings.max_pending_invites
        ):
            raise WireError(
                429,
                "too many invites are waiting for an answer here; try again later",
                {"Retry-After": "3600"},
            )
        if len(self._invites_by_source) > _MAX_TRACKED_SOURCES:
            self._invites_by_source.clear()  # bounded memory; the total cap still holds
        self._invites_by_source[source] = [*recent, now]

    # --- tickets --------------------------------------------------------------------------------

    async def _authorize_ticket(self, request: Request) -> WireAgreement:
        """Token checks of the ticket endpoints, in RT's order (§3)."""
        try:
            token = parse_token(self._token(request), strict=self.settings.strict)
        except TokenError as error:
            raise WireError(422, str(error)) from None
        agreement = await run_in_threadpool(self.store.get_agreement, token.agreement_uuid)
        if agreement is None or not keys_match(token.access_key, agreement.access_key):
            raise WireError(403, "the token does not match an agreement")
        if agreement.status != "accepted":
            raise WireError(403, f"the agreement is {agreement.status}")
        return agreement

    async def ticket(self, request: Request, uuid: str) -> Response:
        body = await self._preflight(request, uuid)
        agreement = await self._authorize_ticket(request)
        if request.method == "POST":
            assert body is not None
            return await self._share(agreement, uuid, body)
        if request.method == "GET":
            held = await run_in_threadpool(self.store.get_ticket, agreement.uuid, uuid)
            presence = "absent" if held is None else ("unshared" if held.unshared else "shared")
        else:
            held = None
            presence = await run_in_threadpool(self.store.ticket_presence, agreement.uuid, uuid)
        if presence == "absent":
            # §6.2 [REC]: a token reaches only its own agreement's tickets, and a ticket of
            # another agreement answers exactly as one that does not exist (no oracle).
            raise WireError(404, _NO_TICKET)
        if request.method == "DELETE":
            return await self._unshare(agreement, uuid)
        if presence == "unshared":
            raise WireError(410, "the ticket is no longer shared")
        if held is not None:
            return _json(200, _ticket_json(held))
        assert body is not None
        self._same_uuid(body, uuid, required=False)
        change = _decode(Ticket, {**body, "uuid": uuid})
        self._check_keys(change)
        try:
            await run_in_threadpool(self.store.receive_ticket_update, agreement.uuid, change)
        except NotFound:
            raise WireError(404, _NO_TICKET) from None
        except Gone:
            raise WireError(410, "the ticket is no longer shared") from None
        log.info("ticket %s updated under agreement %s", uuid, agreement.uuid)
        return _json(200, {"uuid": uuid})

    async def _share(self, agreement: WireAgreement, uuid: str, body: dict[str, Any]) -> Response:
        """POST /tickets: the sender shares a ticket with us (§2.4)."""
        if agreement.our_role != "receiver":
            raise WireError(403, "only the sender of the agreement shares tickets under it")
        self._same_uuid(body, uuid, required=True)
        ticket = _decode(Ticket, body)
        missing = [name for name in _NEW_TICKET_FIELDS if getattr(ticket, name) is None]
        if missing:
            raise WireError(422, f"a shared ticket needs {', '.join(missing)}")
        self._check_keys(ticket)
        try:
            stored = await run_in_threadpool(self.store.receive_new_ticket, agreement.uuid, ticket)
        except (AlreadyExists, IntegrityError):
            raise WireError(422, "this ticket is already shared") from None
        except NotFound:  # the agreement vanished between the token check and the write
            raise WireError(403, "the token does not match an agreement") from None
        log.info("ticket %s shared under agreement %s", uuid, agreement.uuid)
        return _json(201, _ticket_json(stored))

    async def _unshare(self, agreement: WireAgreement, uuid: str) -> Response:
        """DELETE /tickets: kept and marked unshared; a repeat is a no-op (§2.7 [REC])."""
        if agreement.our_role != "receiver":
            raise WireError(403, "only the sender of the agreement can unshare its tickets")
        try:
            await run_in_threadpool(self.store.receive_unshare, agreement.uuid, uuid)
        except NotFound:
            raise WireError(404, _NO_TICKET) from None
        log.info("ticket %s unshared under agreement %s", uuid, agreement.uuid)
        return _json(200, {"uuid": uuid, "unshared": True})

    def _check_keys(self, ticket: Ticket) -> None:
        try:
            validate_ticket_keys(ticket, strict=self.settings.strict)
        except RuleViolation as error:
            raise WireError(422, str(error)) from None


# --- helpers ------------------------------------------------------------------------------------


def _no_constants(name: str) -> Any:
    # NaN and Infinity are not JSON; Python's parser would otherwise accept them.
    raise ValueError(f"{name} is not valid JSON")


def _decode(model: type[Model], data: dict[str, Any]) -> Model:
    try:
        return model.from_dict(data)
    except NHDValidationError as error:
        raise WireError(422, str(error)) from None


def _agreement_json(agreement: WireAgreement) -> dict[str, Any]:
    data = agreement.to_wire().to_dict()
    data.pop("current_actor", None)
    return data


def _ticket_json(held: WireTicket) -> dict[str, Any]:
    return held.ticket.to_dict()
