"""The contract suite can fail: run it on deliberately broken adapters and watch it say so.

A suite that passes everything proves nothing. Each broken adapter below is the fake with one bug
an adapter author could plausibly write; the suite runs on it in a pytest session of its own
(pytester), exactly as an adapter's test module would use it, and the test named after the broken
behaviour must fail. The healthy fake runs through the same harness as the control.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any, ClassVar

import pytest
from pydantic import SecretStr

from nhd_bridge import ChangePage, PermanentError, TicketChanges, TicketRecord
from nhd_bridge.testing import AdapterContract, FakeAdapter, FakeConfig, FakeTracker

pytest_plugins = ["pytester"]

SECRET = "s3cret-that-must-not-show"

# What an adapter's own test module looks like; the adapter comes from the plugin below.
CONTRACT_MODULE = """
import pytest
from nhd_bridge.testing import AdapterContract

class TestAdapterUnderTest(AdapterContract):
    @pytest.fixture
    def adapter(self, adapter_under_test):
        yield adapter_under_test
        adapter_under_test.close()
"""


# --- broken adapters ----------------------------------------------------------------------------


class ForgetsBreadcrumbs(FakeAdapter):
    """Never finds a ticket by its shared uuid: a crash after create would duplicate it."""

    def find_by_shared_uuid(self, shared_uuid: str) -> TicketRecord | None:
        super().find_by_shared_uuid(shared_uuid)
        return None


class IgnoresTheCursor(FakeAdapter):
    """Reads everything on every run."""

    def changed_since(self, cursor: str | None) -> Iterator[ChangePage]:
        return super().changed_since(None)


class LeaksPrivateComments(FakeAdapter):
    """Reads every comment back as public: agents' notes would reach the customer."""

    def get(self, local_id: str) -> TicketRecord | None:
        record = super().get(local_id)
        if record is not None:
            record.comments = [replace(comment, public=True) for comment in record.comments]
        return record


class ClobbersTagsOnUpdate(FakeAdapter):
    """Sends every field on update, with the ones not given as empty."""

    def update(self, local_id: str, changes: TicketChanges) -> None:
        super().update(local_id, replace(changes, tags=changes.tags or []))


class RepeatsPages(FakeAdapter):
    """Sends each page twice, as an off-by-one offset pagination would overlap them."""

    def changed_since(self, cursor: str | None) -> Iterator[ChangePage]:
        for page in super().changed_since(cursor):
            yield page
            yield page


class ReversesComments(FakeAdapter):
    """Lists comments newest first, as many APIs do by default."""

    def get(self, local_id: str) -> TicketRecord | None:
        record = super().get(local_id)
        if record is not None:
            record.comments.reverse()
        return record


class ShowsItsToken(FakeAdapter):
    """Puts its credentials in repr(), and so in every log line that shows the adapter."""

    def __repr__(self) -> str:
        token = self.config.token.get_secret_value() if self.config.token else ""
        return f"<ShowsItsToken {self.name!r} token={token}>"


class LosesTheCommentBreadcrumb(FakeAdapter):
    """Drops the comment's shared uuid: every run would post the comment again."""

    def get(self, local_id: str) -> TicketRecord | None:
        record = super().get(local_id)
        if record is not None:
            record.comments = [replace(comment, shared_uuid=None) for comment in record.comments]
        return record


class AcceptsAnyStatus(FakeAdapter):
    """Takes whatever status it is given, so a mapping mistake is found only by people."""

    def _accepted_status(self, status: str) -> str:
        return status


class CursorIsNow(FakeAdapter):
    """Gives each page the cursor of "now" instead of the last change on it."""

    def changed_since(self, cursor: str | None) -> Iterator[ChangePage]:
        for page in super().changed_since(cursor):
            yield replace(page, cursor=self.tracker.cursor)


class NeverBumpsUpdatedAt(FakeAdapter):
    """Reports every ticket as last updated when it was created."""

    first_seen: ClassVar[dict[str, datetime]] = {}

    def get(self, local_id: str) -> TicketRecord | None:
        record = super().get(local_id)
        if record is not None:
            record.updated_at = self.first_seen.setdefault(local_id, record.updated_at)
        return record


class ReadsAnyCursorFromTheStart(FakeAdapter):
    """Takes a cursor it cannot parse as "from the start"."""

    def _parse_cursor(self, cursor: str | None) -> int:
        try:
            return super()._parse_cursor(cursor)
        except PermanentError:
            return 0


class DuplicatesBreadcrumbs(FakeAdapter):
    """Declares a unique index on the breadcrumb, then creates a second ticket carrying it."""

    def _refuse_duplicate(self, shared_uuid: str) -> None:
        return None


BROKEN_ADAPTERS = [
    (DuplicatesBreadcrumbs, {"test_a_second_create_with_one_breadcrumb_is_refused"}),
    (AcceptsAnyStatus, {"test_a_status_outside_capabilities_is_refused"}),
    (CursorIsNow, {"test_resuming_from_a_page_cursor_reads_every_later_ticket"}),
    (NeverBumpsUpdatedAt, {"test_an_update_moves_updated_at_forward"}),
    (ReadsAnyCursorFromTheStart, {"test_an_unknown_cursor_is_refused"}),
    (ForgetsBreadcrumbs, {"test_find_by_shared_uuid_finds_the_created_ticket"}),
    (IgnoresTheCursor, {"test_resuming_from_the_last_cursor_rereads_at_most_the_boundary"}),
    (LeaksPrivateComments, {"test_private_comment_stays_private"}),
    (ClobbersTagsOnUpdate, {"test_updating_the_subject_leaves_status_and_tags_alone"}),
    (RepeatsPages, {"test_a_full_read_sees_every_ticket_exactly_once"}),
    (ReversesComments, {"test_comments_come_back_in_chronological_order"}),
    (ShowsItsToken, {"test_repr_hides_secrets"}),
    (
        LosesTheCommentBreadcrumb,
        {
            "test_public_comment_comes_back_public_with_its_breadcrumb",
            "test_private_comment_stays_private",
        },
    ),
]


# --- harness ------------------------------------------------------------------------------------


class AdapterUnderTest:
    """A pytest plugin handing the inner session the adapter class to run the contract on."""

    def __init__(self, adapter_class: type[FakeAdapter]):
        self.adapter_class = adapter_class

    @pytest.fixture
    def adapter_under_test(self) -> FakeAdapter:
        # Statuses, a secret and small pages: every contract test has something to check.
        config = FakeConfig(
            page_size=3,
            statuses=["open", "pending", "solved"],
            token=SecretStr(SECRET),
            unique_breadcrumbs=True,
        )
        # A private tracker, not a named one: the inner session must not touch the outer's data.
        return self.adapter_class("under-test", config, tracker=FakeTracker("under-test"))


def run_contract(pytester: pytest.Pytester, adapter_class: type[FakeAdapter]) -> dict[str, Any]:
    """Run the whole suite on ``adapter_class``; the names of the tests by outcome."""
    pytester.makepyfile(test_adapter_contract=CONTRACT_MODULE)
    recorder = pytester.inline_run(
        "-p", "no:cacheprovider", plugins=[AdapterUnderTest(adapter_class)]
    )
    outcomes: dict[str, set[str]] = {"passed": set(), "failed": set(), "errors": set()}
    for report in recorder.getreports("pytest_runtest_logreport"):
        name = report.nodeid.rsplit("::", 1)[-1]
        if report.when == "call" and report.passed:
            outcomes["passed"].add(name)
        elif report.when == "call" and report.failed:
            outcomes["failed"].add(name)
        elif report.failed:
            outcomes["errors"].add(name)
    return outcomes


# --- tests --------------------------------------------------------------------------------------


def test_the_healthy_fake_passes_the_same_harness(pytester: pytest.Pytester) -> None:
    outcomes = run_contract(pytester, FakeAdapter)
    assert outcomes["failed"] == set()
    assert outcomes["errors"] == set()
    contract_tests = {name for name in dir(AdapterContract) if name.startswith("test_")}
    assert outcomes["passed"] == contract_tests, "every contract test ran and passed"


@pytest.mark.parametrize(
    ("broken_adapter", "failing_tests"),
    BROKEN_ADAPTERS,
    ids=[adapter_class.__name__ for adapter_class, _ in BROKEN_ADAPTERS],
)
def test_the_suite_reports_the_bug(
    pytester: pytest.Pytester, broken_adapter: type[FakeAdapter], failing_tests: set[str]
) -> None:
    outcomes = run_contract(pytester, broken_adapter)
    assert outcomes["errors"] == set(), "the bug must fail a test, not break the harness"
    missed = failing_tests - outcomes["failed"]
    assert not missed, f"{broken_adapter.__name__} got past {sorted(missed)}"


def test_contract_methods_fail_when_called_directly() -> None:
    """Without pytest in between: a contract method raises AssertionError on a broken adapter."""
    adapter = LeaksPrivateComments("direct", FakeConfig(), tracker=FakeTracker("direct"))
    with pytest.raises(AssertionError, match="private comment came back public"):
        AdapterContract().test_private_comment_stays_private(adapter)
