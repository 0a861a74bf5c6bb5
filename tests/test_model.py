"""The NHD objects and their JSON codec (nhd-spec.md §4 and §6): what a Zendesk sender writes
decodes, what we emit decodes again to the same thing, and bad input is refused by field name."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nhd_bridge.core.model import (
    TICKET_STATUSES,
    Actor,
    Agreement,
    Attachment,
    Comment,
    NHDValidationError,
    Ticket,
    format_timestamp,
    nhd_uuid,
    parse_timestamp,
)

TICKET_UUID = "ed46838bfb41461e4f3b16ba471162c8e2764260"
AGREEMENT_UUID = "5ad614f4f1e2a83e28f7e8d1a39c4b2f6b4a1b0c"
ACCESS_KEY = "d6b8e44a2c37fcd8e51b0e16a9a6a0b8a2b36f11"

# 2010-11-24 14:13:54 -0800, the instant of the spec's RT example (§6.4).
INSTANT = datetime(2010, 11, 24, 22, 13, 54, tzinfo=UTC)


def zendesk_ticket() -> dict[str, Any]:
    """A ticket as the Zendesk gem sends it: every declared field, unset ones as null, plus keys
    we do not know about at every level."""
    return {
        "uuid": TICKET_UUID,
        "subject": "Printer on fire",
        "requested_at": "2010-11-24 14:13:54 -0800",
        "status": "open",
        "requester": {
            "uuid": "b1f2c3d4e5f60718293a4b5c6d7e8f9012345678",
            "name": "Alice Requester",
            "role": None,
            "email": "alice@example.com",
        },
        "comments": [
            {
                "uuid": "c0000000000000000000000000000000000000c1",
                "author": {
                    "uuid": "b1f2c3d4e5f60718293a4b5c6d7e8f9012345678",
                    "name": "Alice Requester",
                    "role": "end-user",
                },
                "body": "It smokes.",
                "html_body": "<p>It <b>smokes</b>.</p>",
                "authored_at": "2010-11-24 14:13:54 -0800",
                "public": True,
                "attachments": [
                    {
                        "url": "https://help.example.com/attachments/1/smoke.jpg",
                        "filename": "smoke.jpg",
                        "content_type": "image/jpeg",
                        "display_filename": "Smoke (front).jpg",
                        "size_hint": 12345,
                    },
                    {
                        "url": "https://help.example.com/attachments/2/log.txt",
                        "filename": "log.txt",
                        "content_type": None,
                        "display_filename": None,
                    },
                ],
                "custom_fields": {"channel": "email", "meta": {"ip": "192.0.2.1", "hops": [1, 2]}},
                "via": "web",
            },
            {
                "uuid": "c0000000000000000000000000000000000000c2",
                "author": {
                    "uuid": "a9000000000000000000000000000000000000a9",
                    "name": "Bob Agent",
                    "role": "agent",
                },
                "body": "Customer is a VIP.",
                "html_body": "<p>Customer is a <i>VIP</i>.</p>",
                "authored_at": "2010-11-25 09:00:00 +0100",
                "public": False,
                "attachments": None,
                "custom_fields": None,
            },
        ],
        "current_actor": {
            "uuid": "a9000000000000000000000000000000000000a9",
            "name": "Bob Agent",
            "role": "agent",
        },
        "tags": ["hardware", "fire"],
        "original_id": "12",
        "custom_fields": {
            "priority": "high",
            "impact": 3,
            "location": {"building": "B", "floors": [1, 2]},
            "escalated": False,
        },
        "custom_status": "Waiting for fire brigade",
        "description": "removed in 2011, still sent by old senders",
    }


# --- round trip ---------------------------------------------------------------------------------


def test_zendesk_ticket_with_every_field_decodes_to_the_expected_values():
    ticket = Ticket.from_dict(zendesk_ticket())

    assert ticket.uuid == TICKET_UUID
    assert ticket.subject == "Printer on fire"
    assert ticket.requested_at == INSTANT
    assert ticket.requested_at.utcoffset() == timedelta(0)
    assert ticket.status == "open"
    assert ticket.requester == Actor(
        uuid="b1f2c3d4e5f60718293a4b5c6d7e8f9012345678", name="Alice Requester"
    )
    assert ticket.current_actor is not None and ticket.current_actor.is_agent
    assert ticket.tags == ["hardware", "fire"]
    assert ticket.original_id == "12"
    assert ticket.custom_fields == {
        "priority": "high",
        "impact": 3,
        "location": {"building": "B", "floors": [1, 2]},
        "escalated": False,
    }
    assert ticket.custom_status == "Waiting for fire brigade"

    first, second = ticket.comments
    assert first.html_body == "<p>It <b>smokes</b>.</p>"
    assert first.authored_at == INSTANT
    assert first.public is True
    assert first.author is not None and not first.author.is_agent
    assert first.custom_fields == {"channel": "email", "meta": {"ip": "192.0.2.1", "hops": [1, 2]}}
    assert first.attachments == [
        Attachment(
            url="https://help.example.com/attachments/1/smoke.jpg",
            filename="smoke.jpg",
            content_type="image/jpeg",
            display_filename="Smoke (front).jpg",
        ),
        Attachment(url="https://help.example.com/attachments/2/log.txt", filename="log.txt"),
    ]
    assert second.public is False
    assert second.authored_at == datetime(2010, 11, 25, 8, 0, 0, tzinfo=UTC)
    assert second.attachments == []
    assert second.custom_fields == {}


def test_encoded_ticket_writes_timestamps_in_utc_with_a_numeric_offset():
    encoded = Ticket.from_dict(zendesk_ticket()).to_dict()

    assert encoded["requested_at"] == "2010-11-24 22:13:54 +0000"
    assert [c["authored_at"] for c in encoded["comments"]] == [
        "2010-11-24 22:13:54 +0000",
        "2010-11-25 08:00:00 +0000",
    ]


def test_encoded_ticket_writes_every_field_and_unset_ones_as_null():
    encoded = Ticket.from_dict({"uuid": TICKET_UUID}).to_dict()

    assert encoded == {
        "uuid": TICKET_UUID,
        "subject": None,
        "requested_at": None,
        "status": None,
        "requester": None,
        "comments": [],
        "current_actor": None,
        "tags": None,
        "original_id": None,
        "custom_fields": None,
        "custom_status": None,
    }


def test_ticket_survives_decode_encode_decode_through_json_text():
    decoded = Ticket.from_dict(zendesk_ticket())

    text = decoded.to_json()
    again = Ticket.from_json(text)

    assert again == decoded
    assert json.loads(text) == again.to_dict()


def test_agreement_survives_decode_encode_decode():
    agreement = Agreement.from_dict(
        {
            "uuid": AGREEMENT_UUID,
            "name": "Acme Support",
            "status": "accepted",
            "sender_url": "http://acme.example.com/sharing",
            "receiver_url": "http://partner.example.com/sharing",
            "access_key": ACCESS_KEY,
            "deactivated_by": None,
            "current_actor": {"uuid": "a1", "name": "Admin", "role": "agent"},
            "sync_tags": True,
            "sync_custom_fields": False,
            "allows_public_comments": True,
        }
    )

    assert Agreement.from_json(agreement.to_json()) == agreement


def test_numeric_original_id_from_zendesk_becomes_text():
    assert Ticket.from_dict({"uuid": TICKET_UUID, "original_id": 12}).original_id == "12"


# --- nulls and unknown keys ---------------------------------------------------------------------


def test_null_fields_are_absent_not_set():
    ticket = Ticket.from_dict(
        {
            "uuid": TICKET_UUID,
            "subject": None,
            "requested_at": None,
            "status": None,
            "requester": None,
            "comments": None,
            "tags": None,
            "custom_fields": None,
        }
    )

    assert ticket.model_fields_set == {"uuid"}
    assert ticket.comments == []


def test_null_in_a_partial_update_does_not_wipe_the_field():
    update = Ticket.from_dict({"uuid": TICKET_UUID, "subject": "New title", "status": None})

    assert update.to_dict(only_set=True) == {"uuid": TICKET_UUID, "subject": "New title"}


def test_null_where_a_list_or_flag_is_expected_does_not_fail():
    comment = Comment.from_dict(
        {"uuid": "c1", "public": None, "attachments": None, "custom_fields": None, "body": None}
    )

    assert (comment.public, comment.attachments, comment.custom_fields, comment.body) == (
        True,
        [],
        {},
        "",
    )


def test_unknown_keys_are_ignored_at_every_level():
    ticket = Ticket.from_dict(
        {
            "uuid": TICKET_UUID,
            "surprise": 1,
            "requester": {"uuid": "u1", "email": "x@example.com"},
            "current_actor": {"uuid": "u2", "photo": {"url": "x"}},
            "comments": [
                {
                    "uuid": "c1",
                    "via": {"channel": "web"},
                    "author": {"uuid": "u1", "locale": "de"},
                    "attachments": [{"url": "https://x/1", "filename": "a.txt", "thumb": "t"}],
                }
            ],
        }
    )

    encoded = ticket.to_dict()
    assert "surprise" not in encoded
    assert "email" not in encoded["requester"]
    assert "photo" not in encoded["current_actor"]
    [comment] = encoded["comments"]
    assert "via" not in comment and "locale" not in comment["author"]
    assert "thumb" not in comment["attachments"][0]


def test_unknown_keys_on_an_agreement_are_ignored():
    agreement = Agreement.from_dict(
        {"uuid": AGREEMENT_UUID, "allow_public_comments": True, "sync_everything": True}
    )

    assert agreement.model_fields_set == {"uuid"}
    assert agreement.full_delegation is False


def test_custom_field_keys_are_data_and_are_all_kept():
    ticket = Ticket.from_dict(
        {"uuid": TICKET_UUID, "custom_fields": {"anything": 1, "uuid": "not ours", "x": {"y": []}}}
    )

    assert ticket.custom_fields == {"anything": 1, "uuid": "not ours", "x": {"y": []}}


# --- comments -----------------------------------------------------------------------------------


def test_comment_without_public_is_public():
    assert Comment.from_dict({"uuid": "c1", "body": "hi"}).public is True


def test_comment_with_public_false_stays_private_through_a_round_trip():
    comment = Comment.from_dict({"uuid": "c1", "body": "agents only", "public": False})

    assert comment.public is False
    assert Comment.from_json(comment.to_json()).public is False


@pytest.mark.parametrize(
    ("attachment", "missing"),
    [
        ({"filename": "a.txt"}, "url"),
        ({"url": "https://x/1"}, "filename"),
        ({"url": None, "filename": "a.txt"}, "url"),
        ({"url": "https://x/1", "filename": ""}, "filename"),
    ],
)
def test_attachment_without_url_or_filename_is_rejected_naming_the_field(attachment, missing):
    with pytest.raises(NHDValidationError) as caught:
        Ticket.from_dict(
            {"uuid": TICKET_UUID, "comments": [{"uuid": "c1", "attachments": [attachment]}]}
        )

    assert [path for path, _ in caught.value.problems] == [f"comments.0.attachments.0.{missing}"]
    assert f"comments.0.attachments.0.{missing}" in str(caught.value)


def test_ticket_without_uuid_is_rejected_naming_uuid():
    with pytest.raises(NHDValidationError, match="uuid") as caught:
        Ticket.from_dict({"subject": "no identity"})

    assert caught.value.object_name == "ticket"


def test_json_that_is_not_an_object_is_rejected():
    with pytest.raises(NHDValidationError, match="expected a JSON object"):
        Ticket.from_json("[1, 2]")
    with pytest.raises(NHDValidationError, match="not valid JSON"):
        Ticket.from_json("{")


# --- status -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", TICKET_STATUSES)
def test_each_nhd_ticket_status_is_accepted(status):
    assert Ticket.from_dict({"uuid": TICKET_UUID, "status": status}).status == status


def test_the_six_nhd_ticket_statuses_are_zendesks():
    assert set(TICKET_STATUSES) == {"new", "open", "pending", "hold", "solved", "closed"}


@pytest.mark.parametrize(("sent", "stored"), [("OPEN", "open"), ("Solved", "solved")])
def test_status_is_case_insensitive(sent, stored):
    assert Ticket.from_dict({"uuid": TICKET_UUID, "status": sent}).status == stored


def test_unknown_status_is_rejected_naming_the_field_and_the_allowed_values():
    with pytest.raises(NHDValidationError) as caught:
        Ticket.from_dict({"uuid": TICKET_UUID, "status": "frobnicated"})

    [(path, reason)] = caught.value.problems
    assert path == "status"
    assert "'frobnicated'" in reason and "solved" in reason
    assert str(caught.value).startswith("invalid ticket: status:")


# --- timestamps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2010-11-24 14:13:54 -0800",
        "2010-11-24T14:13:54-08:00",
        "2010-11-24T14:13:54-0800",
        "2010-11-24T22:13:54Z",
        "2010-11-24T22:13:54z",
        "2010-11-24T22:13:54.000Z",
        "2010-11-24T14:13:54.000000-08:00",
        "2010-11-24 14:13:54 -08:00",
        "2010-11-24 22:13:54 +0000",
        "2010-11-25 00:13:54 +0200",
        "2010-11-24T22:13:54",
        "2010-11-24 22:13:54",
    ],
)
def test_every_timestamp_form_of_the_spec_is_the_same_instant(text):
    parsed = parse_timestamp(text)

    assert parsed == INSTANT
    assert parsed.utcoffset() == timedelta(0)


def test_fractional_seconds_are_kept_to_the_microsecond():
    assert parse_timestamp("2010-11-24T14:13:54.25-08:00") == INSTANT + timedelta(
        microseconds=250_000
    )
    assert parse_timestamp("2010-11-24T22:13:54.123456789Z") == INSTANT + timedelta(
        microseconds=123_456
    )


def test_timestamp_without_offset_is_utc():
    assert parse_timestamp("2010-11-24 22:13:54").tzinfo is UTC


def test_naive_datetime_is_taken_as_utc_and_aware_one_is_converted():
    assert parse_timestamp(datetime(2010, 11, 24, 22, 13, 54)) == INSTANT
    pacific = timezone(timedelta(hours=-8))
    assert parse_timestamp(datetime(2010, 11, 24, 14, 13, 54, tzinfo=pacific)).tzinfo is UTC


def test_format_is_utc_with_a_numeric_offset():
    pacific = timezone(timedelta(hours=-8))

    assert format_timestamp(datetime(2010, 11, 24, 14, 13, 54, tzinfo=pacific)) == (
        "2010-11-24 22:13:54 +0000"
    )


@pytest.mark.parametrize(
    "text", ["yesterday", "2010-13-24 10:00:00", "2010-11-24 14:13:54 +2400", "24/11/2010"]
)
def test_unparsable_requested_at_is_rejected_naming_requested_at(text):
    with pytest.raises(NHDValidationError) as caught:
        Ticket.from_dict({"uuid": TICKET_UUID, "requested_at": text})

    [(path, _reason)] = caught.value.problems
    assert path == "requested_at"
    assert "requested_at" in str(caught.value)


def test_unparsable_authored_at_is_rejected_naming_the_comment():
    with pytest.raises(NHDValidationError, match=r"comments\.1\.authored_at: 'yesterday'"):
        Ticket.from_dict(
            {
                "uuid": TICKET_UUID,
                "comments": [{"uuid": "c1"}, {"uuid": "c2", "authored_at": "yesterday"}],
            }
        )


def test_number_as_timestamp_is_rejected():
    with pytest.raises(NHDValidationError, match="requested_at: expected a timestamp string"):
        Ticket.from_dict({"uuid": TICKET_UUID, "requested_at": 1290636834})


def test_offset_with_more_than_59_minutes_is_rejected():
    with pytest.raises(ValueError):
        parse_timestamp("2010-11-24T14:13:54+05:75")


def test_year_before_1000_survives_format_and_parse():
    early = datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC)

    assert parse_timestamp(format_timestamp(early)) == early


aware_datetimes = st.datetimes(
    # From the second day of year 1: an offset may not shift an instant before the calendar.
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.builds(
        timezone,
        st.integers(min_value=-(24 * 60 - 1), max_value=24 * 60 - 1).map(
            lambda minutes: timedelta(minutes=minutes)
        ),
    ),
).map(lambda value: value.replace(microsecond=0))


@given(aware_datetimes)
def test_any_aware_datetime_survives_format_then_parse(value):
    text = format_timestamp(value)

    assert text.endswith(" +0000")
    assert parse_timestamp(text) == value


# --- identifiers --------------------------------------------------------------------------------


def test_nhd_uuid_matches_the_spec_test_vector():
    assert nhd_uuid("mycompany.net/sharing", "tickets", 1) == TICKET_UUID


def test_nhd_uuid_matches_the_node_library_test_vector():
    assert nhd_uuid("http://www.example.com/sharing", "ticket", "1") == (
        "3912304500bbbc6ce97e6eee3eb3df4f34de0437"
    )


# --- agreements ---------------------------------------------------------------------------------


def test_deactivated_by_null_is_kept_as_set_while_other_nulls_are_dropped():
    agreement = Agreement.from_dict(
        {"uuid": AGREEMENT_UUID, "status": "accepted", "deactivated_by": None, "name": None}
    )

    assert "deactivated_by" in agreement.model_fields_set
    assert "name" not in agreement.model_fields_set
    assert agreement.to_dict(only_set=True) == {
        "uuid": AGREEMENT_UUID,
        "status": "accepted",
        "deactivated_by": None,
    }


def test_deactivated_by_is_case_insensitive_and_checked():
    assert Agreement.from_dict({"uuid": "a", "deactivated_by": "Sender"}).deactivated_by == (
        "sender"
    )
    with pytest.raises(NHDValidationError, match="deactivated_by"):
        Agreement.from_dict({"uuid": "a", "deactivated_by": "nobody"})


def test_agreement_status_is_case_insensitive_and_checked():
    assert Agreement.from_dict({"uuid": "a", "status": "ACCEPTED"}).status == "accepted"
    with pytest.raises(NHDValidationError, match="status"):
        Agreement.from_dict({"uuid": "a", "status": "open"})


def test_agreement_token_is_uuid_colon_access_key():
    agreement = Agreement.from_dict({"uuid": AGREEMENT_UUID, "access_key": ACCESS_KEY})

    assert agreement.token == f"{AGREEMENT_UUID}:{ACCESS_KEY}"


def test_agreement_without_access_key_has_no_token():
    with pytest.raises(ValueError, match="no access key"):
        _ = Agreement.from_dict({"uuid": AGREEMENT_UUID}).token


def test_access_key_is_not_in_the_repr():
    agreement = Agreement.from_dict({"uuid": AGREEMENT_UUID, "access_key": ACCESS_KEY})

    assert ACCESS_KEY not in repr(agreement)
    assert AGREEMENT_UUID in repr(agreement)


def test_absent_permission_flags_mean_partial_delegation():
    assert Agreement.from_dict({"uuid": "a"}).full_delegation is False
    assert Agreement.from_dict({"uuid": "a", "allows_public_comments": True}).full_delegation


# --- partial updates ----------------------------------------------------------------------------


def test_only_set_gives_the_given_top_level_fields_but_whole_comments():
    update = Ticket.from_dict(
        {
            "uuid": TICKET_UUID,
            "status": "solved",
            "comments": [{"uuid": "c9", "body": "Fixed.", "authored_at": "2010-11-26 10:00:00Z"}],
        }
    )

    assert update.to_dict(only_set=True) == {
        "uuid": TICKET_UUID,
        "status": "solved",
        "comments": [
            {
                "uuid": "c9",
                "author": None,
                "body": "Fixed.",
                "html_body": None,
                "authored_at": "2010-11-26 10:00:00 +0000",
                "public": True,
                "attachments": [],
                "custom_fields": {},
            }
        ],
    }


def test_assigning_a_field_keeps_the_other_fields():
    ticket = Ticket.from_dict({"uuid": TICKET_UUID, "subject": "Old"})

    ticket.subject = "New"

    assert ticket.status is None  # AttributeError today
    assert ticket.to_dict()["requester"] is None
