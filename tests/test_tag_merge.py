"""Tags changed on both sides between two runs merge as sets: no side's addition or removal is
lost to the other's, unless the agreement names a conflict policy for tags."""

from __future__ import annotations

from nhd_bridge.testing.fake import FakeTracker


def full(**extra):
    return {"sender": "A", "receiver": "B", "sync_tags": True, **extra}


def shared_pair(bridge, tags):
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    origin = a.create_ticket("Tagged", tags=tags)
    bridge.run()
    [copy] = b.tickets()
    return a, b, origin, copy.local_id


def test_additions_on_both_sides_are_both_kept(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b, origin, copy = shared_pair(bridge, ["web"])

    a.set_tags(origin, ["web", "billing"])
    b.set_tags(copy, ["web", "vip"])  # changed last: "newest" would keep only this side
    bridge.run()

    assert (
        sorted(a.ticket(origin).tags)
        == sorted(b.ticket(copy).tags)
        == [
            "billing",
            "vip",
            "web",
        ]
    )
    assert bridge.journal(outcome="conflict") == []
    assert sum(summary.total_writes for summary in bridge.run()) == 0


def test_a_removal_on_one_side_and_an_addition_on_the_other_both_hold(make_bridge):
    bridge = make_bridge({"ab": full()})
    a, b, origin, copy = shared_pair(bridge, ["web", "old"])

    a.set_tags(origin, ["web"])  # removes "old"
    b.set_tags(copy, ["web", "old", "vip"])  # adds "vip"
    bridge.run()

    assert sorted(a.ticket(origin).tags) == sorted(b.ticket(copy).tags) == ["vip", "web"]


def test_a_policy_for_tags_still_overrides_the_merge(make_bridge):
    bridge = make_bridge({"ab": full(conflicts={"fields": {"tags": "sender"}})})
    a, b, origin, copy = shared_pair(bridge, ["web"])

    a.set_tags(origin, ["web", "billing"])
    b.set_tags(copy, ["web", "vip"])
    bridge.run()

    assert sorted(a.ticket(origin).tags) == sorted(b.ticket(copy).tags) == ["billing", "web"]
    assert len(bridge.journal(outcome="conflict")) == 1
