"""Property tests: whatever a partner sends, the receiver never answers 5xx, and a refused request
leaves the store exactly as it was (no partial writes).

The TestClient re-raises unhandled server exceptions, so a crash fails the test loudly rather than
hiding behind a 500.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from nhd_bridge.core.model import Ticket
from nhd_bridge.core.protocol.settings import ReceiverSettings
from nhd_bridge.core.state.schema import wire_agreements

from .conftest import AGREEMENT, KEY, OUR_URL, TICKET, Receiver, hex40, invite_body, ticket_body

TOKEN = f"{AGREEMENT}:{KEY}"
OUTGOING = hex40("outgoing")
OUTGOING_TOKEN = f"{OUTGOING}:{KEY}"

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- strategies ---------------------------------------------------------------------------------

nasty_strings = st.sampled_from(
    ["", " ", "\x00", "\ud800", "a" * 70, "../..", "null", "1e999", "💥", "A:B", "Z", "-"]
)
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | nasty_strings
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=8) | nasty_strings, children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def timestamps(draw: st.DrawFn) -> str:
    """Timestamp-shaped strings at and beyond the calendar's edges, in every §6.4 form."""
    edge_or = st.sampled_from
    year = draw(edge_or([0, 1, 9999]) | st.integers(0, 9999))
    month = draw(edge_or([1, 12]) | st.integers(0, 13))
    day = draw(edge_or([1, 31]) | st.integers(0, 32))
    hour = draw(edge_or([0, 23]) | st.integers(0, 25))
    minute, second = draw(st.integers(0, 61)), draw(st.integers(0, 61))
    sign = draw(st.sampled_from("+-"))
    hours, minutes = draw(edge_or([14, 23, 24]) | st.integers(0, 30)), draw(st.integers(0, 99))
    zone = draw(st.sampled_from(["", "Z", "UTC", f"{sign}{hours:02d}{minutes:02d}"]))
    zone = draw(st.sampled_from([zone, f"{sign}{hours:02d}:{minutes:02d}"]))
    separator = draw(st.sampled_from([" ", "T"]))
    return f"{year:04d}-{month:02d}-{day:02d}{separator}{hour:02d}:{minute:02d}:{second:02d} {zone}"


# one_of weighs each branch equally: edge cases come up as often as ordinary JSON.
values = st.one_of(json_values, timestamps(), nasty_strings)

TICKET_PATHS: list[tuple[Any, ...]] = [
    ("uuid",),
    ("subject",),
    ("requested_at",),
    ("status",),
    ("requester",),
    ("requester", "uuid"),
    ("requester", "name"),
    ("requester", "role"),
    ("comments",),
    ("comments", 0),
    ("comments", 0, "uuid"),
    ("comments", 0, "body"),
    ("comments", 0, "html_body"),
    ("comments", 0, "public"),
    ("comments", 0, "authored_at"),
    ("comments", 0, "author"),
    ("comments", 0, "author", "uuid"),
    ("comments", 0, "attachments"),
    ("comments", 0, "attachments", 0),
    ("comments", 0, "attachments", 0, "url"),
    ("comments", 0, "attachments", 0, "filename"),
    ("comments", 0, "custom_fields"),
    ("current_actor",),
    ("tags",),
    ("custom_fields",),
    ("original_id",),
    ("custom_status",),
]

AGREEMENT_KEYS = [
    "uuid",
    "name",
    "status",
    "sender_url",
    "receiver_url",
    "access_key",
    "deactivated_by",
    "current_actor",
    "sync_tags",
    "sync_custom_fields",
    "allows_public_comments",
]

_DELETE = object()
mutations = st.lists(
    st.tuples(st.sampled_from(TICKET_PATHS), values | st.just(_DELETE)), min_size=1, max_size=4
)


def _base_ticket(uuid: str) -> dict[str, Any]:
    body = ticket_body(uuid, tags=["a"], custom_fields={"k": 1}, original_id="12")
    body["comments"][0]["attachments"] = [{"url": "https://them.example/f", "filename": "f"}]
    return body


def mutate(body: dict[str, Any], changes: list[tuple[tuple[Any, ...], Any]]) -> Any:
    body = copy.deepcopy(body)
    for path, value in changes:
        parent: Any = body
        for step in path[:-1]:
            try:
                parent = parent[step]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        if not isinstance(parent, dict | list):
            continue
        last = path[-1]
        if isinstance(parent, list) and not (isinstance(last, int) and last < len(parent)):
            continue
        if isinstance(parent, dict) and not isinstance(last, str):
            continue
        if value is _DELETE:
            if isinstance(parent, list) or last in parent:
                del parent[last]
        else:
            parent[last] = value
    return body


# --- the receiver under fuzz --------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    """One receiver for all examples: an accepted incoming agreement with a shared ticket, and an
    accepted outgoing one, so every branch of the endpoints is reachable."""
    receiver = Receiver(tmp_path_factory.mktemp("fuzz"), ReceiverSettings(base_url=OUR_URL))
    receiver.incoming("accepted", sync_tags=True, sync_custom_fields=True)
    assert receiver.share(_base_ticket(TICKET)).status_code == 201
    receiver.outgoing("accepted", uuid=OUTGOING)
    yield receiver
    receiver.close()


_fresh = (hex40(f"fuzz-{n}") for n in itertools.count())


def _snapshot(receiver: Receiver) -> tuple[Any, ...]:
    """Everything a refused request must leave alone."""
    store = receiver.store
    return (
        store.row_counts(),
        store.get_agreement(AGREEMENT),
        store.get_agreement(OUTGOING),
        store.get_ticket(AGREEMENT, TICKET),
        store.received_tickets_changed_since(AGREEMENT, 0),
    )


def _restore_agreements(receiver: Receiver) -> None:
    """A fuzzed agreement PUT may legitimately succeed (rename, deactivate, rotate the key); put
    both agreements back so later examples reach the ticket endpoints again."""
    with receiver.state.engine.begin() as connection:
        for uuid in (AGREEMENT, OUTGOING):
            connection.execute(
                update(wire_agreements)
                .where(wire_agreements.c.uuid == uuid)
                .values(status="accepted", deactivated_by=None, access_key=KEY)
            )


def check(receiver: Receiver, method: str, path: str, **kwargs: Any) -> Any:
    before = _snapshot(receiver)
    response = receiver.request(method, path, **kwargs)
    assert response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json")
    if response.status_code >= 400:
        assert "error" in response.json()
        assert _snapshot(receiver) == before, f"{method} {path} refused with a partial write"
    return response


# --- properties ---------------------------------------------------------------------------------


@FUZZ
@given(changes=mutations)
def test_mutated_ticket_posts_never_5xx_or_write_partially(
    fuzzed: Receiver, changes: list[Any]
) -> None:
    uuid = next(_fresh)
    body = mutate(_base_ticket(uuid), changes)
    check(fuzzed, "POST", f"/tickets/{uuid}", body=body, token=TOKEN)


TIMESTAMP_PATHS = [("requested_at",), ("comments", 0, "authored_at")]
STRING_PATHS = [path for path in TICKET_PATHS if path[-1] not in {"comments", "attachments", 0}]


@FUZZ
@given(
    changes=st.lists(st.tuples(st.sampled_from(TIMESTAMP_PATHS), timestamps()), min_size=1)
    | st.lists(st.tuples(st.sampled_from(STRING_PATHS), nasty_strings), min_size=1)
)
def test_edge_timestamps_and_strings_never_5xx_or_write_partially(
    fuzzed: Receiver, changes: list[Any]
) -> None:
    uuid = next(_fresh)
    body = mutate(_base_ticket(uuid), changes)
    check(fuzzed, "POST", f"/tickets/{uuid}", body=body, token=TOKEN)


@FUZZ
@given(changes=mutations, token=st.sampled_from([TOKEN, OUTGOING_TOKEN]))
def test_mutated_ticket_puts_never_5xx_or_write_partially(
    fuzzed: Receiver, changes: list[Any], token: str
) -> None:
    if token == OUTGOING_TOKEN:  # a ticket we shared: the caller is the receiver
        fuzzed.store.record_local_ticket(OUTGOING, _ticket(_base_ticket(TICKET)))
    body = mutate(_base_ticket(TICKET), changes)
    check(fuzzed, "PUT", f"/tickets/{TICKET}", body=body, token=token)


@FUZZ
@given(
    changes=st.dictionaries(st.sampled_from(AGREEMENT_KEYS), values, max_size=5),
    target=st.sampled_from(["invite", AGREEMENT, OUTGOING]),
)
def test_agreement_bodies_never_5xx_or_write_partially(
    fuzzed: Receiver, changes: dict[str, Any], target: str
) -> None:
    try:
        if target == "invite":
            uuid = next(_fresh)
            body = {**invite_body(uuid), **changes}
            check(fuzzed, "POST", f"/agreements/{uuid}", body=body, token=f"{uuid}:{KEY}")
        else:
            check(fuzzed, "PUT", f"/agreements/{target}", body=changes, token=f"{target}:{KEY}")
    finally:
        _restore_agreements(fuzzed)


raw_bodies = (
    st.binary(max_size=200)
    | st.text(max_size=200).map(str.encode)
    | json_values.map(lambda value: json.dumps(value).encode())
    | st.sampled_from(
        [b"[" * 5000, b'{"a":' * 5000, b"NaN", b'{"uuid": 1e999}', b"1" * 5000, b"\xff\xfe{}"]
    )
)


@FUZZ
@given(
    raw=raw_bodies,
    method=st.sampled_from(["POST", "PUT", "DELETE", "GET"]),
    resource=st.sampled_from(["tickets", "agreements"]),
)
def test_raw_bodies_never_5xx_or_write_partially(
    fuzzed: Receiver, raw: bytes, method: str, resource: str
) -> None:
    uuid = TICKET if resource == "tickets" else AGREEMENT
    try:
        check(fuzzed, method, f"/{resource}/{uuid}", raw=raw, token=TOKEN)
    finally:
        _restore_agreements(fuzzed)
        if method == "DELETE":  # a valid unshare succeeds; share the ticket again for the others
            fuzzed.share(_base_ticket(TICKET))


header_values = (
    st.none()
    | st.binary(max_size=60).map(
        lambda raw: bytes(b for b in raw if b not in b"\r\n\x00").decode("latin-1")
    )
    | st.sampled_from(["1", " 1 ", "2", "", TOKEN, f"{AGREEMENT}:", ":", "text/x-json; x"])
)


@FUZZ
@given(version=header_values, token=header_values, content_type=header_values)
def test_headers_never_5xx_or_write_partially(
    fuzzed: Receiver, version: str | None, token: str | None, content_type: str | None
) -> None:
    uuid = next(_fresh)
    response = fuzzed.client.post(
        f"/sharing/tickets/{uuid}",
        content=json.dumps(_base_ticket(uuid)).encode(),
        headers={
            name: value.encode("latin-1")  # type: ignore[misc]
            for name, value in (
                ("X-Ticket-Sharing-Version", version),
                ("X-Ticket-Sharing-Token", token),
                ("Content-Type", content_type),
            )
            if value is not None
        },
    )
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert fuzzed.store.get_ticket(AGREEMENT, uuid) is None


@FUZZ
@given(
    segment=st.text(max_size=80) | nasty_strings,
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS"]),
    resource=st.sampled_from(["tickets", "agreements", "nothing"]),
    encode=st.booleans(),
)
def test_paths_never_5xx_or_write_partially(
    fuzzed: Receiver, segment: str, method: str, resource: str, encode: bool
) -> None:
    safe = "" if encode else "/:!@$&'()*+,;="
    path_part = quote(segment, safe=safe, errors="surrogatepass")  # lone surrogates too
    before = _snapshot(fuzzed)
    response = fuzzed.client.request(
        method,
        f"/sharing/{resource}/{path_part}",
        content=json.dumps({"status": "solved"}),
        headers=Receiver.headers(TOKEN),
    )
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert _snapshot(fuzzed) == before


def _ticket(body: dict[str, Any]) -> Ticket:
    return Ticket.from_dict(body)
