"""The ``github`` profile's read of changed issues, over the GitHub emulator, pages of two.

GitHub's issue list has no id-bound filter, so the profile lists by creation (``sort: created``)
and follows the Link header; an issue updated during the read keeps its place, and the read does
not advance past what it has not listed. The emulator follows GitHub's documented ``sort``,
``direction``, ``since`` and Link paging; it shows the adapter's logic, not GitHub's behaviour.
"""

from __future__ import annotations

from typing import Any

import httpx

from nhd_bridge.adapters.rest import RestAdapter, RestConfig

from .emulators import GitHubEmulator

OPTIONS: dict[str, Any] = {
    "profile": "github",
    "base_url": "https://api.github.com/",
    "auth": {"type": "bearer", "token": "ghp_not-a-real-token"},
    "vars": {"owner": "acme", "repo": "support"},
    "operations": {"list_changed": {"pagination": {"page_size": 2}}},
}


def _github() -> tuple[GitHubEmulator, RestAdapter]:
    emulator = GitHubEmulator()
    adapter = RestAdapter(
        "github",
        RestConfig.model_validate(OPTIONS),
        transport=httpx.MockTransport(emulator),
        sleep=lambda seconds: None,
    )
    return emulator, adapter


def _edit(emulator: GitHubEmulator, number: int) -> None:
    emulator.issues[number]["title"] += " (edited)"
    emulator.issues[number]["updated_at"] = emulator.clock.tick()


def test_an_issue_updated_between_two_pages_hides_no_other() -> None:
    emulator, adapter = _github()
    numbers = [int(adapter.create(_draft(n)).local_id) for n in range(5)]

    seen: list[int] = []
    for page_number, page in enumerate(adapter.changed_since(None)):
        seen += [int(ticket.local_id) for ticket in page.tickets]
        if page_number == 0:
            _edit(emulator, numbers[0])  # by update time, issue 1 would move to the end

    assert sorted(set(seen)) == numbers


def test_a_read_stopped_after_a_page_reads_again_from_its_start_and_misses_nothing() -> None:
    emulator, adapter = _github()
    numbers = [int(adapter.create(_draft(n)).local_id) for n in range(5)]
    cursor = None
    for page in adapter.changed_since(None):
        cursor = page.cursor
    for number in numbers[2:]:
        _edit(emulator, number)
    pages = adapter.changed_since(cursor)
    first = next(pages)
    pages.close()  # the run stopped after committing the first page's cursor
    _edit(emulator, numbers[0])

    again = [int(t.local_id) for page in adapter.changed_since(first.cursor) for t in page.tickets]

    assert [int(t.local_id) for t in first.tickets] == numbers[2:4]
    assert sorted(again) == [numbers[0], numbers[4]]


def _draft(n: int) -> Any:
    from nhd_bridge.core.adapter import TicketDraft

    return TicketDraft(shared_uuid=f"{n:032x}", subject=f"Issue {n}", status="open")
