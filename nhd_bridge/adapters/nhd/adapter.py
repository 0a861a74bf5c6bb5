"""A native Networked Help Desk partner (Zendesk, RT, another nhd-bridge) as an adapter.

One ``kind: nhd`` instance is one wire agreement with one partner. What the partner sends us
arrives at the receiver endpoints (``nhd-bridge serve``) and is kept in the state store's wire
tables (:class:`~nhd_bridge.core.protocol.wire_store.WireStore`); what we send goes out through
:class:`~nhd_bridge.core.protocol.sender.NHDSender`. The adapter reads the first and writes
through the second, so the engine drives a partner like any other tracker:

- ``local_id`` and ``shared_uuid`` are both the NHD ticket uuid (the engine keeps the partner's
  identity); a comment's ``local_id`` and ``shared_uuid`` are its NHD uuid.
- ``changed_since`` returns only what the partner changed (its PUTs and POSTs), oldest first; the
  cursor is the wire store's change sequence. Our own sends never come back as changes.
- ``create`` shares a ticket (POST): only the agreement's sender may, and only while it is
  accepted. ``update`` PUTs the changed fields alone; ``add_comment`` PUTs one new comment.
- An unshared ticket is gone for the engine (``get`` answers ``None``): it orphans the link and
  stops syncing, and the partner answers 410 to anything more about it.
- Comments are immutable on the wire (``edit_comments=False``). Attachments come in as URLs and
  are downloaded through the same URL rules with a size limit; NHD can only *send* URLs, and this
  bridge serves no files, so attachments are not written to a partner (``attachments=False``):
  the engine leaves a line in the comment saying which file stayed behind.

The agreement's status and permission flags are what was negotiated on the wire
(:meth:`NhdAdapter.agreement_terms`); they override the YAML agreement's.
"""

from __future__ import annotations

import posixpath
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import unquote, urlsplit

import httpx
from pydantic import Field, field_validator

from nhd_bridge.core.adapter import (
    Adapter,
    AdapterConfig,
    AdapterContext,
    AgreementTerms,
    AttachmentRef,
    Capabilities,
    ChangePage,
    CheckResult,
    CommentDraft,
    CommentRecord,
    PermanentError,
    TicketChanges,
    TicketDraft,
    TicketRecord,
)
from nhd_bridge.core.model import (
    TICKET_STATUSES,
    Actor,
    Comment,
    Ticket,
    nhd_uuid,
)
from nhd_bridge.core.protocol.rules import same_base_url
from nhd_bridge.core.protocol.sender import (
    NHDSender,
    Resolver,
    SenderError,
    SendResult,
    UnsafeURL,
    URLPolicy,
    ticket_update,
)

if TYPE_CHECKING:
    from nhd_bridge.core.protocol.wire_store import WireAgreement, WireStore, WireTicket

__all__ = [
    "NhdAdapter",
    "NhdConfig",
    "policy_for",
    "scoped_uuid",
    "sender_for",
]

DEFAULT_MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
_HOST_PATTERN = re.compile(r"(\*\.)?[A-Za-z0-9_.:\[\]-]+")
_UUID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


# --- configuration ------------------------------------------------------------------------------


class NhdConfig(AdapterConfig):
    """Settings of a ``kind: nhd`` instance: one agreement with one native NHD partner."""

    agreement: str | None = Field(
        default=None,
        description="The wire agreement's uuid. Printed by `nhd-bridge agreements invite`, or "
        "listed by `nhd-bridge agreements list` when the partner invited us. Leave it out until "
        "then: nothing syncs without it.",
    )
    partner_url: str = Field(
        description="The partner's sharing base URL, e.g. https://acme.zendesk.com/sharing."
    )
    our_url: str = Field(
        description="Our public sharing base URL as the partner calls it (where `nhd-bridge "
        "serve` answers), e.g. https://bridge.example.com/sharing."
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts we may call besides partner_url's own: redirect targets and "
        "attachment hosts. Exact names or '*.example.com' for every subdomain.",
    )
    allow_private_networks: bool = Field(
        default=False,
        description="Allow calls to private, loopback and link-local addresses (a partner on "
        "your own network, or tests). Off by default: an invite cannot point us inwards.",
    )
    verify_tls: bool = Field(default=True, description="Verify the partner's TLS certificate.")
    timeout_seconds: float = Field(default=30.0, gt=0, description="Per request.")
    max_attempts: int = Field(
        default=3, ge=1, le=10, description="Tries per call on 408, 429, 5xx and network errors."
    )
    max_retry_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Longest a call waits between retries in total; a longer Retry-After parks "
        "the ticket until the next run instead.",
    )
    max_attachment_bytes: int = Field(
        default=DEFAULT_MAX_ATTACHMENT_BYTES,
        gt=0,
        description="Largest attachment downloaded from the partner.",
    )
    actor_name: str = Field(
        default="nhd-bridge",
        min_length=1,
        description="Name sent as current_actor when no person is known (field and status "
        "updates, shares).",
    )
    page_size: int = Field(default=200, gt=0, description="Tickets per page of changes.")

    @field_validator("partner_url", "our_url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        scheme, _, rest = value.partition("://")
        if scheme.lower() not in {"http", "https"} or not rest.split("/", 1)[0]:
            raise ValueError(f"{value!r} is not an absolute http(s) URL")
        return value.rstrip("/")

    @field_validator("agreement")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        if value is not None and not _UUID_PATTERN.fullmatch(value):
            raise ValueError(f"{value!r} is not an agreement uuid (40 hex characters)")
        return value

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, value: list[str]) -> list[str]:
        for host in value:
            if not _HOST_PATTERN.fullmatch(host) or "*" in host[2:]:
                raise ValueError(f"{host!r} is not a host name or a '*.example.com' pattern")
        return value


def policy_for(config: NhdConfig, resolver: Resolver | None = None) -> URLPolicy:
    return URLPolicy.for_partner(
        config.partner_url,
        config.allowed_hosts,
        allow_private_networks=config.allow_private_networks,
        resolver=resolver,
    )


def sender_for(
    config: NhdConfig,
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    resolver: Resolver | None = None,
) -> NHDSender:
    """The sender an instance's settings describe (also used by `nhd-bridge agreements`)."""
    return NHDSender(
        policy_for(config, resolver),
        verify_tls=config.verify_tls,
        timeout_seconds=config.timeout_seconds,
        max_attempts=config.max_attempts,
        max_retry_seconds=config.max_retry_seconds,
        transport=transport,
        sleep=sleep,
    )


# --- the adapter --------------------------------------------------------------------------------


class NhdAdapter(Adapter):
    """The engine's view of one wire agreement with a native NHD partner."""

    kind = "nhd"
    config_model = NhdConfig
    capabilities = Capabilities(
        private_comments=True,
        attachments=False,  # NHD sends attachments as URLs; we serve no files
        tags=True,
        custom_fields=True,
        transitions=False,
        comment_author=True,
        edit_comments=False,  # comments are immutable by uuid on the wire (§6.2)
        statuses=TICKET_STATUSES,
    )

    def __init__(
        self,
        name: str,
        config: AdapterConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        resolver: Resolver | None = None,
    ):
        if not isinstance(config, NhdConfig):
            raise TypeError(f"NhdAdapter needs an NhdConfig, got {type(config).__name__}")
        super().__init__(name, config)
        self.config: NhdConfig = config
        self._transport = transport
        self._sleep = sleep
        self._resolver = resolver
        self._wire: WireStore | None = None
        self._sender: NHDSender | None = None
        self.actor = Actor(
            uuid=nhd_uuid(config.our_url, "users", "nhd-bridge"),
            name=config.actor_name,
            role="agent",
        )

    # --- wiring ---------------------------------------------------------------------------------

    def attach(self, context: AdapterContext) -> None:
        # Imported here: the wire store brings SQLAlchemy, which listing the CLI's commands (this
        # module is loaded for its nhd_register_commands) should not pay for.
        from nhd_bridge.core.protocol.wire_store import WireStore

        self._wire = WireStore(context.state)

    @property
    def wire(self) -> WireStore:
        if self._wire is None:
            raise PermanentError(
                f"nhd instance {self.name} is not attached to a state store; the engine attaches "
                "it before use"
            )
        return self._wire

    @property
    def sender(self) -> NHDSender:
        if self._sender is None:
            self._sender = sender_for(
                self.config, transport=self._transport, sleep=self._sleep, resolver=self._resolver
            )
        return self._sender

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()
            self._sender = None

    def agreement_uuid(self) -> str | None:
        """The YAML's ``agreement:`` pin, else the binding `agreements accept/invite` stored.
        Read on every call, so a running serve picks up a new binding without a reload."""
        return self.config.agreement or self.wire.bound_agreement(self.name)

    def agreement(self) -> WireAgreement | None:
        """The wire agreement this instance is bound to, as the state store holds it now."""
        uuid = self.agreement_uuid()
        if uuid is None:
            return None
        return self.wire.get_agreement(uuid)

    def _require_agreement(self) -> WireAgreement:
        agreement = self.agreement()
        if agreement is None:
            raise PermanentError(self._unknown_agreement())
        return agreement

    def _unknown_agreement(self) -> str:
        uuid = self.agreement_uuid()
        if uuid is None:
            return (
                f"nhd instance {self.name} has no agreement yet; invite the partner with "
                f"`nhd-bridge agreements invite --instance {self.name} --name ORG`, or accept its "
                f"invite with `nhd-bridge agreements accept UUID --instance {self.name}`"
            )
        return (
            f"agreement {uuid} unknown; accept the partner's invite with "
            f"`nhd-bridge agreements accept {uuid}` (or invite the partner with "
            f"`nhd-bridge agreements invite --instance {self.name}`)"
        )

    # --- terms and preflight --------------------------------------------------------------------

    def agreement_terms(self) -> AgreementTerms | None:
        """The wire agreement's status and flags. An agreement not yet on the wire counts as
        pending, so that nothing syncs under the YAML's defaults meanwhile."""
        agreement = self.agreement()
        if agreement is None:
            return AgreementTerms(
                status="pending",
                allows_public_comments=False,
                sync_tags=False,
                sync_custom_fields=False,
            )
        return AgreementTerms(
            status=agreement.status,  # type: ignore[arg-type]  # the store holds valid values
            allows_public_comments=agreement.allows_public_comments,
            sync_tags=agreement.sync_tags,
            sync_custom_fields=agreement.sync_custom_fields,
        )

    def check(self) -> list[CheckResult]:
        results: list[CheckResult] = []
        agreement = self.agreement()
        if agreement is None:
            return [CheckResult("agreement", False, self._unknown_agreement())]
        results.append(_status_check(agreement))
        if not same_base_url(agreement.partner_url, self.config.partner_url):
            results.append(
                CheckResult(
                    "partner_url",
                    False,
                    f"the agreement names the partner at {agreement.partner_url}, the YAML at "
                    f"{self.config.partner_url}",
                    hint="make partner_url the agreement's URL (nhd-bridge agreements show)",
                )
            )
        ours = agreement.receiver_url if agreement.our_role == "receiver" else agreement.sender_url
        if not same_base_url(ours, self.config.our_url):
            results.append(
                CheckResult(
                    "our_url",
                    False,
                    f"the agreement names us at {ours}, the YAML at {self.config.our_url}",
                    hint="the partner calls the URL in the agreement; make our_url the same",
                )
            )
        if not agreement.partner_url.lower().startswith("https://"):
            results.append(
                CheckResult(
                    "tls",
                    False,
                    f"{agreement.partner_url} is plain http: the access key travels in clear text",
                    hint="use an https partner URL",
                    level="warning",
                )
            )
        results.append(self._reachable(agreement))
        return results

    def _reachable(self, agreement: WireAgreement) -> CheckResult:
        if not same_base_url(agreement.partner_url, self.config.partner_url):
            return CheckResult("partner", False, "not contacted: partner_url does not match")
        try:
            result = self.sender.get_agreement(agreement.partner_url, agreement)
        except SenderError as error:
            return CheckResult("partner", False, str(error))
        if result.ok:
            remote = result.data.get("status") if isinstance(result.data, dict) else None
            if remote and remote != agreement.status:
                return CheckResult(
                    "partner",
                    False,
                    f"the partner holds agreement {agreement.uuid} as {remote}, we as "
                    f"{agreement.status}",
                    hint="accept, decline or deactivate it again so that both sides agree",
                    level="warning",
                )
            return CheckResult("partner", True, f"{agreement.partner_url} knows the agreement")
        if result.status == 405:
            return CheckResult(
                "partner",
                True,
                f"{agreement.partner_url} answers but offers no agreement GET; the token could "
                "not be verified",
                level="warning",
            )
        return CheckResult("partner", False, result.message)

    # --- reading --------------------------------------------------------------------------------

    def changed_since(self, cursor: str | None) -> Iterator[ChangePage]:
        agreement = self._require_agreement()
        after = _cursor(cursor)
        while True:
            held = self.wire.received_tickets_changed_since(
                agreement.uuid, after, limit=self.config.page_size
            )
            if not held:
                return
            after = max(ticket.seq for ticket in held)
            records = self._records(
                agreement,
                [ticket for ticket in held if not ticket.unshared],  # get() tells the engine
            )
            yield ChangePage(records, str(after))
            if len(held) < self.config.page_size:
                return

    def get(self, local_id: str) -> TicketRecord | None:
        agreement = self._require_agreement()
        held = self.wire.get_ticket(agreement.uuid, local_id)
        if held is None or held.unshared:
            return None
        [record] = self._records(agreement, [held])
        return record

    def find_by_shared_uuid(self, shared_uuid: str) -> TicketRecord | None:
        record = self.get(shared_uuid)
        return record if record is not None and record.shared_uuid == shared_uuid else None

    def _records(self, agreement: WireAgreement, held: list[WireTicket]) -> list[TicketRecord]:
        """Records with the engine's identity of each ticket. A partner's ticket whose uuid an
        earlier agreement already holds (another partner squatted it, or shares it too) gets
        an identity scoped to this agreement, so no partner's traffic can hide another's.
        Tickets we share keep their uuid: we minted it."""
        if agreement.our_role == "sender":
            return [_record(ticket) for ticket in held]
        first = self.wire.first_holders([ticket.ticket.uuid for ticket in held])
        return [
            _record(ticket, scoped=first.get(ticket.ticket.uuid, agreement.uuid) != agreement.uuid)
            for ticket in held
        ]

    def open_attachment(self, ref: AttachmentRef) -> BinaryIO:
        agreement = self._require_agreement()
        # The token goes only to the partner's own sharing URLs, never to a third-party host
        # nor to another port or path of the partner's (compared once ".." is resolved).
        on_partner = _under_base(ref.ref, self.config.partner_url) and same_base_url(
            agreement.partner_url, self.config.partner_url
        )
        token = f"{agreement.uuid}:{agreement.access_key}" if on_partner else None
        result = self._send(
            lambda: self.sender.download(
                ref.ref, max_bytes=self.config.max_attachment_bytes, token=token
            )
        )
        if not result.ok:
            raise result.error()
        return result.data  # type: ignore[no-any-return]

    # --- writing --------------------------------------------------------------------------------

    def create(self, draft: TicketDraft) -> TicketRecord:
        """Share a ticket with the partner (we are the agreement's sender)."""
        agreement = self._require_agreement()
        if agreement.our_role != "sender":
            raise PermanentError(
                f"agreement {agreement.uuid} was made by the partner, who alone shares tickets "
                f"under it; in the YAML, make instance {self.name} the agreement's sender"
            )
        ticket = self._ticket(
            {
                "uuid": draft.shared_uuid,
                "subject": draft.subject,
                "requested_at": draft.requested_at or datetime.now(UTC),
                "status": draft.status or "new",
                "requester": draft.requester or Actor(uuid=self.actor.uuid, name=self.actor.name),
                "comments": [],
                "current_actor": self.actor,
                "original_id": draft.original_id,
                "tags": draft.tags if agreement.sync_tags else None,
                "custom_fields": draft.custom_fields if agreement.sync_custom_fields else None,
            }
        )
        result = self._send(
            lambda: self.sender.share_ticket(self._send_base(agreement), agreement, ticket)
        )
        if not result.ok and result.status == 422 and self._partner_holds(agreement, ticket):
            # An earlier attempt landed but we never heard back (or crashed before recording
            # it): the partner has the ticket, and the next run carries any difference.
            result = replace(result, ok=True)
        if not result.ok:
            raise self._failure(result, agreement, ticket.uuid)
        self.wire.record_local_ticket(agreement.uuid, ticket)
        record = self.get(ticket.uuid)
        assert record is not None
        return record

    def update(self, local_id: str, changes: TicketChanges) -> None:
        if changes.is_empty():
            return
        agreement = self._require_agreement()
        held = self._held(agreement, local_id)
        wanted: dict[str, Any] = {"uuid": local_id}
        if changes.subject is not None:
            wanted["subject"] = changes.subject
        if changes.status is not None:
            wanted["status"] = changes.status
        if changes.tags is not None and agreement.sync_tags:
            wanted["tags"] = list(changes.tags)
        if changes.custom_fields and agreement.sync_custom_fields:
            wanted["custom_fields"] = {**(held.ticket.custom_fields or {}), **changes.custom_fields}
        update = ticket_update(held.ticket, self._ticket(wanted), current_actor=self.actor)
        if update is None:
            return  # the partner already holds these values
        self._put(agreement, update)

    def add_comment(self, local_id: str, draft: CommentDraft) -> str:
        agreement = self._require_agreement()
        held = self._held(agreement, local_id)
        public = draft.public
        if public and agreement.our_role == "receiver" and not agreement.allows_public_comments:
            public = False  # §5: under partial delegation the receiver adds only private notes
        comment = Comment(
            uuid=draft.shared_uuid,
            author=draft.author,
            body=draft.body,
            html_body=draft.html_body,
            authored_at=draft.authored_at or datetime.now(UTC),
            public=public,
        )
        actor = draft.author or self.actor
        update = ticket_update(
            held.ticket,
            self._ticket({"uuid": local_id, "comments": [comment]}),
            current_actor=actor,
        )
        if update is not None:  # None: the partner already has this comment uuid
            self._put(agreement, update)
        return comment.uuid

    def unshare(self, local_id: str) -> None:
        """Stop sharing a ticket we shared (DELETE, §2.7): the partner keeps its copy, answers
        410 afterwards, and the engine stops syncing it (``get`` answers ``None``)."""
        agreement = self._require_agreement()
        if agreement.our_role != "sender":
            raise PermanentError(
                f"only the sender of agreement {agreement.uuid} can unshare its tickets"
            )
        result = self._send(
            lambda: self.sender.unshare_ticket(self._send_base(agreement), agreement, local_id)
        )
        if not result.ok and result.status not in (404, 410):
            raise result.error()
        self.wire.mark_unshared(local_id, agreement.uuid)

    # --- helpers --------------------------------------------------------------------------------

    def _send_base(self, agreement: WireAgreement) -> str:
        """Where calls under the agreement go: the operator's partner_url, which must still be
        the agreement's (a partner cannot move it, and a stored mismatch is not followed)."""
        if not same_base_url(agreement.partner_url, self.config.partner_url):
            raise PermanentError(
                f"agreement {agreement.uuid} names the partner at {agreement.partner_url}, the "
                f"YAML of nhd instance {self.name} at {self.config.partner_url}; nothing is sent "
                "until they agree (a moved partner needs a new agreement)"
            )
        return self.config.partner_url

    def _held(self, agreement: WireAgreement, local_id: str) -> WireTicket:
        held = self.wire.get_ticket(agreement.uuid, local_id)
        if held is None:
            raise PermanentError(
                f"ticket {local_id} is not shared under agreement {agreement.uuid}"
            )
        if held.unshared:
            raise PermanentError(
                f"ticket {local_id} is no longer shared under agreement {agreement.uuid}; "
                "nothing more travels for it"
            )
        return held

    def _put(self, agreement: WireAgreement, update: Ticket) -> None:
        result = self._send(
            lambda: self.sender.update_ticket(self._send_base(agreement), agreement, update)
        )
        if not result.ok:
            raise self._failure(result, agreement, update.uuid)
        self.wire.record_local_ticket(agreement.uuid, update)

    def _partner_holds(self, agreement: WireAgreement, ticket: Ticket) -> bool:
        """After a 422 on a share: does the partner already hold this ticket? A GET says so;
        a partner without GET (405) is asked with a PUT of the ticket, as §6.2 suggests."""
        found = self._send(
            lambda: self.sender.get_ticket(self._send_base(agreement), agreement, ticket.uuid)
        )
        if found.ok or found.status != 405:
            return found.ok
        put = self._send(
            lambda: self.sender.update_ticket(self._send_base(agreement), agreement, ticket)
        )
        return put.ok

    def _failure(self, result: SendResult, agreement: WireAgreement, ticket_uuid: str):
        if result.gone:
            self.wire.mark_unshared(ticket_uuid, agreement.uuid)
            return PermanentError(
                f"{result.message}. The partner unshared ticket {ticket_uuid}; it no longer syncs"
            )
        return result.error()

    def _send(self, call: Callable[[], SendResult]) -> SendResult:
        """Run one sender call; refusals before any answer become PermanentError."""
        try:
            return call()
        except UnsafeURL as error:
            raise PermanentError(
                f"{error} (nhd instance {self.name}: see allowed_hosts and allow_private_networks)"
            ) from None
        except SenderError as error:
            raise PermanentError(str(error)) from None
        except (httpx.InvalidURL, UnicodeError) as error:
            # Caused by what the partner sent (a URL no client can call): this ticket is parked,
            # the agreement's other tickets keep flowing.
            raise PermanentError(
                f"nhd instance {self.name}: cannot call that URL ({error})"
            ) from None

    @staticmethod
    def _ticket(data: dict[str, Any]) -> Ticket:
        try:
            return Ticket(**{key: value for key, value in data.items() if value is not None})
        except ValueError as error:  # pydantic's ValidationError is a ValueError
            raise PermanentError(f"cannot build the NHD ticket: {error}") from None


# --- mapping ------------------------------------------------------------------------------------


def _under_base(url: str, base: str) -> bool:
    """``url`` is on ``base``'s scheme, host and port, under its path once dot segments are
    resolved; nothing that does not parse is."""
    try:
        target, root = urlsplit(url), urlsplit(base)
        same_origin = (target.scheme.lower(), target.hostname, target.port) == (
            root.scheme.lower(),
            root.hostname,
            root.port,
        )
    except ValueError:
        return False
    path = posixpath.normpath(unquote(target.path) or "/")
    prefix = posixpath.normpath(unquote(root.path) or "/").rstrip("/") + "/"
    return same_origin and (path + "/").startswith(prefix) and path + "/" != prefix


def scoped_uuid(agreement_uuid: str, ticket_uuid: str) -> str:
    """The engine's identity of a partner's ticket whose uuid another agreement held first."""
    return nhd_uuid(f"nhd-agreement:{agreement_uuid}", "tickets", ticket_uuid)


def _record(held: WireTicket, *, scoped: bool = False) -> TicketRecord:
    ticket = held.ticket
    comments = [
        CommentRecord(
            local_id=comment.uuid,
            body=comment.body,
            public=comment.public,
            author=comment.author,
            authored_at=comment.authored_at,
            html_body=comment.html_body,
            attachments=[
                AttachmentRef(
                    filename=attachment.display_filename or attachment.filename,
                    ref=attachment.url,
                    content_type=attachment.content_type,
                )
                for attachment in comment.attachments
            ],
            shared_uuid=comment.uuid,
        )
        for comment in ticket.comments
    ]
    return TicketRecord(
        local_id=ticket.uuid,
        subject=ticket.subject or "",
        status=ticket.status or "open",
        updated_at=held.updated_at,
        requested_at=ticket.requested_at,
        requester=ticket.requester,
        human_id=ticket.original_id,
        tags=list(ticket.tags or []),
        custom_fields=dict(ticket.custom_fields or {}),
        comments=comments,
        shared_uuid=scoped_uuid(held.agreement_uuid, ticket.uuid) if scoped else ticket.uuid,
    )


def _status_check(agreement: WireAgreement) -> CheckResult:
    if agreement.status == "accepted":
        return CheckResult(
            "agreement",
            True,
            f"{agreement.uuid} accepted; we are its {agreement.our_role}",
        )
    if agreement.status == "pending":
        hint = (
            "waiting for the partner to accept the invite"
            if agreement.our_role == "sender"
            else f"accept it with `nhd-bridge agreements accept {agreement.uuid}`"
        )
        return CheckResult(
            "agreement", False, f"{agreement.uuid} is pending", hint=hint, level="warning"
        )
    return CheckResult(
        "agreement",
        False,
        f"{agreement.uuid} is {agreement.status}: nothing syncs under it",
        hint="a declined or deactivated agreement cannot be revived; make a new one",
    )


def _cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(cursor)
    except ValueError:
        raise PermanentError(f"{cursor!r} is not a cursor of an nhd instance") from None
