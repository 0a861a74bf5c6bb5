"""The adapter contract suite on ``kind: nhd``: a native NHD partner driven through the wire.

The fixture builds one fresh, accepted wire agreement in which *we* are the sender, so that
``create`` shares tickets (POST) with the partner. The partner is an in-process receiver app over
its own state store, reached through an httpx transport; its own sender is aimed at our receiver
app, so what the partner changes really arrives over the wire into our state store, where the
adapter reads it (the helpers come from ``test_nhd_adapter``, which runs the same two desks end to
end).

Where the contract and NHD part ways, and why
---------------------------------------------

The contract assumes a tracker's ``changed_since`` lists *every* change, including the ones the
adapter itself wrote (``create``, ``update``, ``add_comment``): in Jira or a local database our
own writes are changes like any other, and the engine's snapshots turn their echo into a no-op.
The nhd adapter is deliberately different (``nhd_bridge/adapters/nhd/adapter.py``):
``changed_since`` reads :meth:`WireStore.received_tickets_changed_since`, i.e. only what the
*partner* PUT or
POSTed to us, and our own sends are recorded with ``WireStore.record_local_ticket`` without a
change sequence number. The wire mirror is the partner's copy; what we sent never needs to come
back, and must not come back as though the partner had said it.

``get`` and ``find_by_shared_uuid`` do see our own writes (the mirror holds them), so every
create/get/update/comment test of the contract runs unchanged. The six tests about changes and
cursors are overridden below with NHD-faithful versions that keep the contract's intent:

- every step where "someone changes the ticket" after the cursor is done by the partner over the
  wire (a PUT to our receiver), because only that is a change for this adapter;
- each override *also* asserts the NHD rule the contract cannot express: our own create, update
  and comment do not come back from ``changed_since``.

``test_changes_come_oldest_first`` passes unmodified, but only vacuously (nothing comes back when
only we wrote), so it is overridden too. ``test_repr_hides_secrets`` would skip, because an
``NhdConfig`` holds no ``SecretStr``: the NHD secret is the agreement's access key, which lives
in the wire store, so the override looks for *that* key instead. Two tests skip through the
contract's own capability check, as the adapter declares: ``edit_comments`` (comments are
immutable by uuid on the wire) and ``attachments`` (NHD can only send URLs, and the bridge
serves no files).
"""

from __future__ import annotations

import logging
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar
from uuid import uuid4

import httpx
import pytest
from test_nhd_adapter import AGENT, OUR_URL, THEIR_URL, PartnerDesk, forward, receiver

from nhd_bridge.adapters.nhd import NhdAdapter, NhdConfig
from nhd_bridge.core.adapter import (
    AdapterContext,
    AdapterError,
    AttachmentRef,
    CommentDraft,
    TicketChanges,
    TicketDraft,
    TicketRecord,
)
from nhd_bridge.core.model import Comment
from nhd_bridge.core.protocol.invites import new_invite
from nhd_bridge.core.protocol.sender import TOKEN_HEADER
from nhd_bridge.core.protocol.wire_store import WireStore
from nhd_bridge.core.state import StateStore
from nhd_bridge.testing import AdapterContract

# The contract's own read helpers, so the NHD overrides read pages exactly as the suite does.
from nhd_bridge.testing.contract import _ids, _last_cursor, _read_all, _tickets

# Smaller than the contract's pagination_ticket_count (7), so that a full read takes pages.
PAGE_SIZE = 3


@dataclass
class Partnership:
    """Our state store and receiver, the partner desk, and the adapter bound to the agreement."""

    state: StateStore
    ours: Any  # our receiver app's TestClient: where the partner's PUTs land
    partner: PartnerDesk
    agreement_uuid: str
    access_key: str
    adapter: NhdAdapter

    def adapter_over(self, transport: httpx.BaseTransport) -> NhdAdapter:
        """Another adapter for the same agreement and state, talking through ``transport``."""
        adapter = NhdAdapter(
            "partner", self.adapter.config, transport=transport, sleep=lambda _s: None
        )
        adapter.attach(AdapterContext("partner", "nhd-bridge://partner", self.state))
        return adapter

    def partner_comments(self, ticket_uuid: str, body: str) -> None:
        """The partner's agent answers on the ticket: a PUT with one new public comment."""
        comment = Comment(uuid=uuid4().hex, author=AGENT, body=body, public=True)
        self.partner_puts(ticket_uuid, comments=[comment])

    def partner_puts(self, ticket_uuid: str, **fields: Any) -> None:
        result = self.partner.put(self.agreement_uuid, ticket_uuid, **fields)
        assert result.ok, result.message


@pytest.fixture
def partnership(tmp_path: Path) -> Iterator[Partnership]:
    """A fresh accepted agreement (we are its sender, tags and custom fields synced)."""
    state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    ours = receiver(OUR_URL, state)
    partner = PartnerDesk(tmp_path)
    partner.connect(ours)
    offer = new_invite(
        name="Us Ltd",
        our_url=OUR_URL,
        partner_url=THEIR_URL,
        # capabilities.tags/custom_fields are static; the agreement must sync them for the
        # contract's tag and custom-field tests to mean anything.
        sync_tags=True,
        sync_custom_fields=True,
    )
    WireStore(state).create_outgoing_agreement(offer)
    config = NhdConfig(
        agreement=offer.uuid,
        partner_url=THEIR_URL,
        our_url=OUR_URL,
        allow_private_networks=True,  # the partner is in this process
        page_size=PAGE_SIZE,
    )
    adapter = NhdAdapter(
        "partner", config, transport=forward(partner.client), sleep=lambda _s: None
    )
    adapter.attach(AdapterContext("partner", "nhd-bridge://partner", state))
    assert adapter.sender.invite(THEIR_URL, offer).ok
    partner.accept(offer.uuid)
    agreement = adapter.agreement()
    assert agreement is not None and agreement.status == "accepted"
    assert agreement.our_role == "sender"
    assert offer.access_key is not None
    yield Partnership(state, ours, partner, offer.uuid, offer.access_key, adapter)
    adapter.close()
    partner.close()
    ours.close()
    state.close()


class TestNhdAdapterContract(AdapterContract):
    #: The cursor is the wire store's change sequence and the query is ``seq > cursor``: exact,
    #: so resuming from the last cursor re-reads nothing (the contract allows one).
    max_boundary_rereads: ClassVar[int | None] = 0

    @pytest.fixture
    def adapter(self, partnership: Partnership) -> Iterator[NhdAdapter]:
        yield partnership.adapter  # the partnership fixture closes it

    # --- changes and cursors: NHD-faithful overrides ----------------------------------------

    def test_changes_since_none_include_every_created_ticket(
        self, adapter: NhdAdapter, partnership: Partnership
    ) -> None:
        """Override: tickets we share are not changes; once the partner changes them, they are.

        The contract expects ``changed_since(None)`` to list every ticket ``create`` made. Here
        ``create`` is our own share, recorded without a change sequence, so it never echoes back
        (the engine would otherwise read our own send as the partner's word). The contract's
        intent, that a full read finds every ticket that has something to sync, holds once the
        partner has written to each ticket.
        """
        created = [adapter.create(self._draft(f"Ticket {n}")).local_id for n in range(3)]
        assert _ids(_read_all(adapter, None)) == [], "our own shares came back as changes"

        for local_id in created:
            partnership.partner_comments(local_id, f"Seen {local_id}.")
        pages = _read_all(adapter, None)
        seen = {ticket.local_id: ticket for ticket in _tickets(pages)}
        assert set(created) <= set(seen), f"changed_since(None) missed {set(created) - set(seen)}"
        for local_id in created:
            bodies = [comment.body for comment in seen[local_id].comments]
            assert f"Seen {local_id}." in bodies

    def test_ticket_updated_after_the_cursor_reappears(
        self, adapter: NhdAdapter, partnership: Partnership
    ) -> None:
        """Override: the change after the cursor is the partner's PUT, not our ``update``.

        The contract updates the ticket through the adapter after the cursor; under NHD our own
        update is not a change to read back, so this asserts that it does *not* reappear, and
        then that the partner's change of the subject does, with the new subject. The partner
        answers on both tickets first, since a cursor only exists once there are changes.
        """
        first = adapter.create(self._draft("Before the cursor"))
        second = adapter.create(self._draft("Also before the cursor"))
        for record in (first, second):
            partnership.partner_comments(record.local_id, "Noted.")
        cursor = _last_cursor(_read_all(adapter, None))

        adapter.update(first.local_id, TicketChanges(subject="Contract: Our own change"))
        assert _ids(_read_all(adapter, cursor)) == [], "our own update came back as a change"
        assert _get(adapter, first.local_id).subject == "Contract: Our own change"

        partnership.partner_puts(first.local_id, subject="Contract: Changed after cursor")
        resumed = {ticket.local_id: ticket for ticket in _tickets(_read_all(adapter, cursor))}
        assert first.local_id in resumed, (
            "a ticket the partner changed after the cursor must come back when resuming from it"
        )
        assert resumed[first.local_id].subject == "Contract: Changed after cursor"
        assert second.local_id not in resumed, "a ticket nobody changed came back"

    def test_a_new_comment_brings_its_ticket_back(
        self, adapter: NhdAdapter, partnership: Partnership
    ) -> None:
        """Override: the partner's new comment brings the ticket back; ours does not.

        The contract adds the comment through the adapter; under NHD that is our own send, not
        a change. Asserted instead: our comment does not bring the ticket back, the partner's
        does, and the ticket then comes with both comments (the mirror holds the whole ticket).
        """
        created = adapter.create(self._draft("Quiet ticket"))
        partnership.partner_comments(created.local_id, "Hello from the partner.")
        cursor = _last_cursor(_read_all(adapter, None))

        ours = self._comment("Anyone there?", public=True)
        adapter.add_comment(created.local_id, ours)
        assert _ids(_read_all(adapter, cursor)) == [], "our own comment came back as a change"

        partnership.partner_comments(created.local_id, "Yes, we are here.")
        resumed = {ticket.local_id: ticket for ticket in _tickets(_read_all(adapter, cursor))}
        assert created.local_id in resumed, "a new comment is a change: the ticket must come back"
        bodies = [comment.body.strip() for comment in resumed[created.local_id].comments]
        assert "Yes, we are here." in bodies, "the changed ticket must come with its new comment"
        assert ours.body in bodies, "the mirror must still list the comment we sent"

    def test_resuming_from_a_page_cursor_reads_every_later_ticket(
        self, adapter: NhdAdapter, partnership: Partnership
    ) -> None:
        """Override: our own shares are not changes; the partner's comments make them so."""
        created = {
            adapter.create(self._draft(f"Paged resume {n}")).local_id
            for n in range(self.pagination_ticket_count)
        }
        for local_id in created:
            partnership.partner_comments(local_id, "Seen.")
        first = next(iter(adapter.changed_since(None)))
        unread = created - {ticket.local_id for ticket in first.tickets}
        assert unread, f"all tickets came in one page although the page size is {PAGE_SIZE}"
        later = set(_ids(_read_all(adapter, first.cursor)))
        assert unread <= later, f"resuming from the first page's cursor skips {unread - later}"

    def test_resuming_from_the_last_cursor_rereads_at_most_the_boundary(
        self, adapter: NhdAdapter, partnership: Partnership
    ) -> None:
        """Override: the tickets are changed by the partner so that a cursor exists, and the
        bound is tightened to ``max_boundary_rereads`` = 0 (the sequence cursor is exact).

        Our own writes after the cursor (an update, a comment) must not make anything re-read
        either.
        """
        created = [adapter.create(self._draft(f"Read once {n}")).local_id for n in range(4)]
        for local_id in created:
            partnership.partner_puts(local_id, status="pending")
        cursor = _last_cursor(_read_all(adapter, None))
        adapter.update(created[0], TicketChanges(subject="Contract: Ours, after the cursor"))
        adapter.add_comment(created[1], self._comment("Ours too.", public=False))
        reread = _ids(_read_all(adapter, cursor))
        assert self.max_boundary_rereads is not None
        assert len(reread) <= self.max_boundary_rereads, (
            f"nothing the partner changed after the cursor, yet {reread} came back"
        )

    def test_a_full_read_sees_every_ticket_exactly_once(
        self, adapter: NhdAdapter, partnership: Partnership
    ) -> None:
        """Override: every ticket is changed by the partner first (else a full read is empty
        by design), and pagination is asserted rather than skipped: the fixture's page size
        (3) is below ``pagination_ticket_count`` (7)."""
        count = self.pagination_ticket_count
        created = {adapter.create(self._draft(f"Paged {n}")).local_id for n in range(count)}
        for local_id in sorted(created):
            partnership.partner_comments(local_id, "Paging.")
        pages = _read_all(adapter, None)
        seen = _ids(pages)
        repeated = sorted(local_id for local_id, n in Counter(seen).items() if n > 1)
        assert not repeated, f"tickets {repeated} came twice in one read: pages overlap"
        assert set(seen) == created, (
            f"missing {sorted(created - set(seen))}, unexpected {sorted(set(seen) - created)}"
        )
        assert all(page.cursor is not None for page in pages), "every page must carry a cursor"
        assert len(pages) >= 2, f"all {count} tickets came in one page of {PAGE_SIZE}"
        assert all(len(page.tickets) <= PAGE_SIZE for page in pages)
        assert _read_all(adapter, _last_cursor(pages)) == [], "the last cursor re-reads tickets"

    def test_changes_come_oldest_first(self, adapter: NhdAdapter, partnership: Partnership) -> None:
        """Override: the inherited test passes only vacuously here (our own writes come back
        as nothing, and an empty list is sorted). The same sequence, with the partner making
        the changes: the ticket changed last comes last, and ``updated_at`` does not go back.

        Not asserted, and known: the order is the partner's change sequence, while a record's
        ``updated_at`` is also bumped by our own sends (``record_local_ticket``). If we write to
        a ticket the partner changed earlier, a read can list it before a ticket with an older
        ``updated_at``. The cursor stays exact, so nothing is missed; only the reported time
        runs ahead of the order.
        """
        first = adapter.create(self._draft("Oldest"))
        middle = adapter.create(self._draft("Middle"))
        partnership.partner_comments(first.local_id, "First.")
        partnership.partner_comments(middle.local_id, "Middle.")
        partnership.partner_puts(first.local_id, subject="Contract: Oldest, changed last")
        tickets = _tickets(_read_all(adapter, None))
        assert [ticket.local_id for ticket in tickets] == [middle.local_id, first.local_id]
        times = [ticket.updated_at for ticket in tickets]
        assert times == sorted(times), "changed_since must yield the oldest change first"

    # --- secrets --------------------------------------------------------------------------------

    def test_repr_hides_secrets(self, adapter: NhdAdapter, partnership: Partnership) -> None:
        """Override: the inherited test looks for ``SecretStr`` values in the config and skips
        when there are none, as for ``NhdConfig``: the NHD secret is the agreement's access
        key, kept in the wire store. So it is that key that must not show."""
        key = partnership.access_key
        agreement = adapter.agreement()
        shown = {
            "repr(adapter)": repr(adapter),
            "str(adapter)": str(adapter),
            "repr(adapter.config)": repr(adapter.config),
            "str(adapter.config)": str(adapter.config),
            "repr(adapter.sender)": repr(adapter.sender),
            "repr(adapter.agreement())": repr(agreement),
            "str(adapter.agreement())": str(agreement),
            "repr(adapter.agreement_terms())": repr(adapter.agreement_terms()),
            "repr(adapter.check())": repr(adapter.check()),
        }
        for where, text in shown.items():
            assert key not in text, f"{where} shows the agreement's access key"


# --- secrets in errors --------------------------------------------------------------------------


def _echoing(status: int) -> Callable[[httpx.Request], httpx.Response]:
    """A partner that repeats our token header back in its error: the worst case for logs."""

    def answer(request: httpx.Request) -> httpx.Response:
        token = request.headers.get(TOKEN_HEADER, "")
        return httpx.Response(status, json={"error": f"bad token {token}"})

    return answer


def _refusing_to_connect(request: httpx.Request) -> httpx.Response:
    """A network error whose message carries the token (as a chatty proxy's may)."""
    raise httpx.ConnectError(f"refused {request.headers.get(TOKEN_HEADER)}", request=request)


@pytest.mark.parametrize(
    "handler",
    [_echoing(403), _echoing(422), _echoing(503), _refusing_to_connect],
    ids=["403", "422", "503", "connect-error"],
)
def test_errors_never_contain_the_access_key(
    partnership: Partnership,
    handler: Callable[[httpx.Request], httpx.Response],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    key = partnership.access_key
    shared = partnership.adapter.create(_draft("Shared before the partner broke"))
    broken = partnership.adapter_over(httpx.MockTransport(handler))
    ref = AttachmentRef("log.txt", f"{THEIR_URL}/attachments/1/log.txt")  # gets the token
    calls: dict[str, Callable[[], Any]] = {
        "create": lambda: broken.create(_draft("Refused")),
        "update": lambda: broken.update(shared.local_id, TicketChanges(status="solved")),
        "add_comment": lambda: broken.add_comment(
            shared.local_id, CommentDraft(shared_uuid=uuid4().hex, body="Refused.", public=True)
        ),
        "open_attachment": lambda: broken.open_attachment(ref),
    }
    try:
        for name, call in calls.items():
            with pytest.raises(AdapterError) as raised:
                call()
            error = raised.value
            text = "".join(traceback.format_exception(error))
            for where, shown in {"str": str(error), "repr": repr(error), "traceback": text}.items():
                assert key not in shown, f"{name}: the access key shows in the error's {where}"
        checked = broken.check()
        assert not all(result.ok for result in checked), "check() did not notice the failure"
        for result in checked:
            assert key not in f"{result!r} {result.detail} {result.hint}", "check() shows the key"
        assert key not in repr(broken)
        assert key not in caplog.text, "the access key reached the log"
    finally:
        broken.close()


def _draft(subject: str) -> TicketDraft:
    return TicketDraft(shared_uuid=uuid4().hex, subject=f"Contract: {subject}", status="open")


def _get(adapter: NhdAdapter, local_id: str) -> TicketRecord:
    record = adapter.get(local_id)
    assert record is not None, f"get({local_id!r}) lost a ticket this test created"
    return record
