"""Hooks are told which way a change travels: the one spelling of direction (issue 14)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nhd_bridge import Direction, hookimpl
from nhd_bridge.core.plugins import Plugins
from nhd_bridge.testing import fake, registered_plugin
from nhd_bridge.testing.fake import FakeTracker


@pytest.fixture
def plugins() -> Iterator[Plugins]:
    """No entry points: only the fake adapter and what a test registers."""
    plugins = Plugins(load_entry_points=False)
    with registered_plugin(plugins, fake):
        yield plugins


class RecordsDirections:
    def __init__(self) -> None:
        self.tickets: list[tuple[Direction, tuple[str, ...]]] = []
        self.comments: list[tuple[Direction, str]] = []

    @hookimpl
    def nhd_transform_ticket(self, direction, fields):
        self.tickets.append((direction, tuple(sorted(fields))))

    @hookimpl
    def nhd_transform_comment(self, direction, comment):
        self.comments.append((direction, comment.body))


def test_hooks_are_told_outbound_for_the_senders_changes_and_inbound_for_the_receivers(
    make_bridge, plugins
):
    recorder = RecordsDirections()
    with registered_plugin(plugins, recorder):
        bridge = make_bridge({"ab": {"sender": "A", "receiver": "B"}})
        a, b = FakeTracker.named("A"), FakeTracker.named("B")
        ticket = a.create_ticket("Printer on fire")
        a.add_comment(ticket, "it smokes")
        bridge.run()
        [copy] = b.tickets()

        b.set_subject(copy.local_id, "Printer on fire, third floor")
        b.add_comment(copy.local_id, "on our way")
        a.set_status(ticket, "pending")
        bridge.run()

    outbound = Direction("ab", "A", "B", "outbound")
    inbound = Direction("ab", "B", "A", "inbound")
    create, *updates = recorder.tickets
    assert create[0] == outbound
    assert set(updates) == {(inbound, ("subject",)), (outbound, ("status",))}
    assert len(updates) == 2
    assert recorder.comments == [(outbound, "it smokes"), (inbound, "on our way")]
