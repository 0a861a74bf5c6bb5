"""The state store on SQLite and on PostgreSQL (when NHD_TEST_POSTGRES_URL is set; CI sets it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError

from nhd_bridge.core.state import JournalEntry, StateStore, utcnow
from nhd_bridge.core.state.schema import LATEST_VERSION, current_version, ticket_links
from nhd_bridge.testing.fake import FakeTracker

POSTGRES_URL = os.environ.get("NHD_TEST_POSTGRES_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'state.db'}"
    return request.getfixturevalue("postgres_database")


@pytest.fixture
def store(store_url: str) -> Iterator[StateStore]:
    opened = StateStore(store_url)
    yield opened
    opened.close()


def test_a_new_store_is_migrated_to_the_latest_version_and_reopening_is_harmless(store_url):
    StateStore(store_url).close()
    reopened = StateStore(store_url)
    with reopened.engine.connect() as connection:
        assert current_version(connection) == LATEST_VERSION
    reopened.close()


def test_one_local_id_cannot_be_linked_to_two_shared_tickets(store):
    with store.transaction() as tx:
        tx.put_link("shared-1", "jira", "PROJ-1", "linked")
    row = {"shared_uuid": "shared-2", "instance": "jira", "local_id": "PROJ-1", "state": "linked"}
    now = {"created_at": utcnow(), "updated_at": utcnow()}
    with pytest.raises(IntegrityError), store.engine.begin() as connection:
        connection.execute(insert(ticket_links).values(**row, **now))  # the schema's own guard
    assert store.read().link_for_local("jira", "PROJ-1").shared_uuid == "shared-1"


def test_linking_an_id_a_tracker_handed_out_again_orphans_the_stale_link(store):
    with store.transaction() as tx:
        tx.put_link("shared-1", "redmine", "5", "linked")
    with store.transaction() as tx:
        displaced = tx.put_link("shared-2", "redmine", "5", "linked")
    assert displaced == ["shared-1"]
    assert store.read().link_for_local("redmine", "5").shared_uuid == "shared-2"
    stale = store.read().link("shared-1", "redmine")
    assert (stale.local_id, stale.state) == (None, "orphaned")


def test_a_failed_transaction_leaves_nothing_half_written(store):
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.put_link("shared-1", "desk", "1", "linked")
        tx.put_snapshot("ag", "shared-1", "desk", {"subject": "x"})
        raise RuntimeError("crash in the middle")
    assert store.read().link("shared-1", "desk") is None
    assert store.read().snapshot("ag", "shared-1", "desk") is None


def test_snapshots_and_cursors_round_trip(store):
    with store.transaction() as tx:
        tx.put_snapshot("ag", "s1", "desk", {"subject": "é", "tags": ["a"], "comments": []})
        tx.put_cursor("ag", "desk", "42")
    with store.transaction() as tx:
        tx.put_snapshot("ag", "s1", "desk", {"subject": "changed"})
        tx.put_cursor("ag", "desk", "43")
    assert store.read().snapshot("ag", "s1", "desk") == {"subject": "changed"}
    assert store.read().cursor("ag", "desk") == "43"


def test_journal_keeps_order_filters_and_values(store):
    with store.transaction() as tx:
        tx.record_many(
            [
                JournalEntry(agreement="ag", action="create", outcome="written", shared_uuid="s1"),
                JournalEntry(
                    agreement="ag",
                    action="update",
                    outcome="conflict",
                    shared_uuid="s1",
                    field="subject",
                    before="old",
                    after={"x": [1]},
                ),
                JournalEntry(agreement="other", action="create", outcome="written"),
            ]
        )
    entries = store.read().journal(agreement="ag")
    assert [e.action for e in entries] == ["create", "update"]
    assert entries[1].before == "old" and entries[1].after == {"x": [1]}
    assert [e.action for e in store.read().journal(outcome="conflict")] == ["update"]


def test_parking_backs_off_exponentially_and_unparks(store):
    with store.transaction() as tx:
        first = tx.park("ag", "s1", "desk", "7", "429", timedelta(seconds=30))
        second = tx.park("ag", "s1", "desk", "7", "429 again", timedelta(seconds=30))
    assert (first.attempts, second.attempts) == (1, 2)
    delay_1 = first.next_attempt_at - first.first_failed_at
    delay_2 = second.next_attempt_at - second.first_failed_at
    assert delay_2 > delay_1 + timedelta(seconds=25)
    with store.transaction() as tx:
        tx.unpark("ag", "s1")
    assert store.read().parked("ag") == []


def test_only_one_holder_gets_an_agreement_lease(store):
    assert store.acquire_lease("ag", "worker-1", timedelta(minutes=5))
    assert not store.acquire_lease("ag", "worker-2", timedelta(minutes=5))
    assert store.acquire_lease("ag", "worker-1", timedelta(minutes=5))  # renewal
    store.release_lease("ag", "worker-1")
    assert store.acquire_lease("ag", "worker-2", timedelta(minutes=5))


def test_an_expired_lease_can_be_taken_over(store):
    assert store.acquire_lease("ag", "worker-1", timedelta(seconds=-1))
    assert store.acquire_lease("ag", "worker-2", timedelta(minutes=5))
    assert store.lease_holder("ag") == "worker-2"


def test_repr_hides_the_database_password(tmp_path):
    store = StateStore(f"sqlite:///{tmp_path / 's.db'}")
    assert "sqlite" in repr(store)
    store.close()
    url = "postgresql+psycopg://bridge:hunter2@127.0.0.1:1/nhd"
    assert "hunter2" not in make_url(url).render_as_string(hide_password=True)


def test_a_whole_bridge_runs_on_postgresql(postgres_database, make_bridge, tmp_path):
    bridge = make_bridge({"ab": {"sender": "A", "receiver": "B"}})
    # Point the same configuration at PostgreSQL and rebuild, as a user changing state.url.
    text_config = bridge.path.read_text()
    sqlite_url = f"sqlite:///{tmp_path / 'state.db'}"
    bridge.path.write_text(text_config.replace(sqlite_url, postgres_database))
    bridge.restart()
    assert bridge.store.engine.dialect.name == "postgresql"

    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    ticket = a.create_ticket("On PostgreSQL", comments=["hello"])
    bridge.run()
    [copy] = b.tickets()
    b.add_comment(copy.local_id, "hi back", public=False)
    bridge.run()
    assert [(c.body, c.public) for c in a.ticket(ticket).comments] == [
        ("hello", True),
        ("hi back", False),
    ]
    assert sum(s.total_writes for s in bridge.run()) == 0


def test_workers_opening_a_new_store_together_migrate_it_once(store_url):
    from concurrent.futures import ThreadPoolExecutor

    def open_store(_: int) -> int:
        store = StateStore(store_url)
        with store.engine.connect() as connection:
            version = current_version(connection)
        store.close()
        return version

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(open_store, range(4))) == [LATEST_VERSION] * 4
