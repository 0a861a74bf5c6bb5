"""The ``roundup`` profile's read of changed issues against a real Roundup, pages of two.

Roundup's REST filter on ``id`` takes exact ids only, so the keyset read Redmine has (ADR 0007)
is not possible; the profile lists by id (``@sort: id``) with page numbers instead. An issue
changed during the read keeps its place in that order, so no other issue shifts past a page
boundary unread. Listed by ``activity`` (the profile's order before), the changed issue moved to
the end, the next issue slid onto the page already read, and it was never listed again.
"""

from __future__ import annotations

import time
from typing import Any

from support.roundup import RoundupServer

from nhd_bridge.adapters.rest import RestAdapter

from .conftest import roundup_adapter

PAGES_OF_TWO = {"operations": {"list_changed": {"pagination": {"page_size": 2}}}}


def _small_pages(server: RoundupServer, **overrides: Any) -> RestAdapter:
    return roundup_adapter(server, **PAGES_OF_TWO, **overrides)


def _issues(server: RoundupServer, count: int) -> list[str]:
    person = server.person()
    ids = [person.create_issue(f"Issue {n}") for n in range(count)]
    # Past the lookback and the second of the last create: the read below is not an overlap.
    time.sleep(3)
    return ids


def test_an_issue_changed_between_two_pages_hides_no_other(roundup: RoundupServer) -> None:
    ids = _issues(roundup, 5)
    person = roundup.person()
    rest = _small_pages(roundup)

    seen: list[str] = []
    for number, page in enumerate(rest.changed_since(None)):
        seen += [ticket.local_id for ticket in page.tickets]
        if number == 0:
            # Someone retitles the first issue while the bridge reads the second page.
            person.set(ids[0], title="Moved")

    assert sorted(set(seen), key=int) == ids


def test_the_change_made_behind_the_read_comes_with_the_next_read(roundup: RoundupServer) -> None:
    ids = _issues(roundup, 5)
    person = roundup.person()
    rest = _small_pages(roundup)

    cursor = None
    listed_after_the_change: list[str] = []
    for number, page in enumerate(rest.changed_since(None)):
        cursor = page.cursor
        if number == 1:
            person.add_message(ids[0], "while the bridge read page three")
        elif number > 1:
            listed_after_the_change += [ticket.local_id for ticket in page.tickets]
    again = [ticket.local_id for page in rest.changed_since(cursor) for ticket in page.tickets]

    assert ids[0] not in listed_after_the_change  # behind the read's position: not this read
    assert again == [ids[0]]


def test_a_read_interrupted_after_a_page_resumes_there_and_misses_nothing(
    roundup: RoundupServer,
) -> None:
    ids = _issues(roundup, 5)
    person = roundup.person()
    pages = _small_pages(roundup).changed_since(None)
    first = next(pages)
    pages.close()  # the run stopped (a 429, a crash) after committing the first page's cursor
    person.add_message(ids[0], "while the bridge was stopped")

    cursor = first.cursor
    resumed: list[str] = []
    for page in _small_pages(roundup).changed_since(cursor):
        resumed += [ticket.local_id for ticket in page.tickets]
        cursor = page.cursor

    assert [ticket.local_id for ticket in first.tickets] == ids[:2]
    assert resumed == ids[2:]
    again = [
        t.local_id for page in _small_pages(roundup).changed_since(cursor) for t in page.tickets
    ]
    assert again == [ids[0]]
