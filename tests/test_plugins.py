"""Plugins: adapters registered through the hook like any third-party one, entry points, and the
transform and run hooks as the engine calls them."""

from __future__ import annotations

import importlib.util
import sys
import types
from collections.abc import Iterator
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

from nhd_bridge import (
    CommentDraft,
    Direction,
    PermanentError,
    RunSummary,
    hookimpl,
)
from nhd_bridge.core.config import ConfigError, load_config
from nhd_bridge.core.plugins import PluginError, Plugins
from nhd_bridge.testing import FakeAdapter, FakeConfig, fake, registered_plugin
from nhd_bridge.testing.fake import FakeTracker


@pytest.fixture
def plugins() -> Iterator[Plugins]:
    """No entry points: only the fake adapter and what a test registers. (Overrides conftest's
    fixture, so ``make_bridge`` builds its bridges on these plugins.)"""
    plugins = Plugins(load_entry_points=False)
    with registered_plugin(plugins, fake):
        yield plugins


def only_ticket(tracker: FakeTracker):
    [ticket] = tracker.tickets()
    return ticket


def assert_quiet(bridge) -> None:
    assert [summary.total_writes for summary in bridge.run()] == [0]


# --- an adapter from a plugin -------------------------------------------------------------------


class ThrowawayAdapter(FakeAdapter):
    """The in-memory tracker under another kind: proves the engine takes any registered class."""

    kind = "throwaway"
    built: list[ThrowawayAdapter] = []

    def __init__(self, name: str, config: FakeConfig | None = None):
        super().__init__(name, config)
        ThrowawayAdapter.built.append(self)


class ThrowawayPlugin:
    @hookimpl
    def nhd_register_adapters(self, register):
        register("throwaway", ThrowawayAdapter)


def test_adapter_from_a_plugin_receives_a_shared_ticket(make_bridge, plugins):
    ThrowawayAdapter.built.clear()
    with registered_plugin(plugins, ThrowawayPlugin()):
        bridge = make_bridge(
            {"ab": {"sender": "A", "receiver": "T"}},
            instances={"A": {"kind": "fake"}, "T": {"kind": "throwaway", "page_size": 2}},
        )
        FakeTracker.named("A").create_ticket("Into the plugin", comments=["hello"])

        [summary] = bridge.run()

        copy = only_ticket(FakeTracker.named("T"))
        assert copy.subject == "Into the plugin"
        assert [comment.body for comment in copy.comments] == ["hello"]
        assert summary.writes == {"create": 1, "comment": 1}
        assert [(adapter.name, adapter.config.page_size) for adapter in ThrowawayAdapter.built] == [
            ("T", 2)
        ]
        assert type(bridge.engine.adapter("T")) is ThrowawayAdapter
        assert_quiet(bridge)


def test_plugin_registered_for_one_test_is_gone_after_it(plugins):
    with registered_plugin(plugins, ThrowawayPlugin()):
        assert plugins.adapter_class("throwaway") is ThrowawayAdapter

    assert set(plugins.adapters()) == {"fake"}
    with pytest.raises(PluginError, match="unknown adapter kind 'throwaway'; known kinds: fake"):
        plugins.adapter_class("throwaway")


def test_config_naming_a_kind_whose_plugin_is_gone_is_refused(plugins, tmp_path):
    path = tmp_path / "bridge.yaml"
    path.write_text("instances:\n  T:\n    kind: throwaway\n", encoding="utf-8")
    with registered_plugin(plugins, ThrowawayPlugin()):
        load_config(path, plugins=plugins, environ={})

    with pytest.raises(ConfigError, match=r"instances\.T\.kind: unknown adapter kind 'throwaway'"):
        load_config(path, plugins=plugins, environ={})


def _plugin_module(module_name: str, kind: str, adapter_class: type) -> types.ModuleType:
    module = types.ModuleType(module_name)

    @hookimpl
    def nhd_register_adapters(register):
        register(kind, adapter_class)

    module.nhd_register_adapters = nhd_register_adapters
    return module


def test_two_plugins_registering_the_same_kind_fail_naming_both_modules(plugins):
    rival_class = type("RivalFake", (FakeAdapter,), {"__module__": "acme_rival_plugin"})
    rival = _plugin_module("acme_rival_plugin", "fake", rival_class)

    with registered_plugin(plugins, rival), pytest.raises(PluginError) as caught:
        plugins.adapters()

    message = str(caught.value)
    assert "two plugins register adapter kind 'fake'" in message
    assert "nhd_bridge.testing.fake" in message and "acme_rival_plugin" in message


def test_the_same_class_registered_twice_is_not_a_conflict(plugins):
    again = _plugin_module("fake_again", "fake", FakeAdapter)

    with registered_plugin(plugins, again):
        assert plugins.adapters() == {"fake": FakeAdapter}


@pytest.mark.parametrize(
    "not_an_adapter",
    [object, FakeConfig, FakeAdapter("x"), "nhd_bridge.testing.fake.FakeAdapter", None],
    ids=["object", "config-class", "adapter-instance", "dotted-name", "none"],
)
def test_registering_something_that_is_not_an_adapter_class_fails(plugins, not_an_adapter):
    bogus = _plugin_module("bogus_plugin", "bogus", not_an_adapter)

    with registered_plugin(plugins, bogus), pytest.raises(PluginError) as caught:
        plugins.adapters()

    assert str(caught.value) == "adapter 'bogus' is not a subclass of nhd_bridge.Adapter"


def test_plugins_list_module_with_a_misspelled_hook_is_a_config_error(
    plugins, tmp_path, monkeypatch
):
    module_name = "nhd_tests_misspelled_hook"
    (tmp_path / f"{module_name}.py").write_text(
        "from nhd_bridge import hookimpl\n\n"
        "@hookimpl\n"
        "def nhd_transform_coment(direction, comment):\n"
        "    return None\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module_name, raising=False)
    path = tmp_path / "bridge.yaml"
    path.write_text(f"plugins: [{module_name}]\ninstances:\n  A: {{kind: fake}}\n")

    with pytest.raises(ConfigError, match=r"plugins\[0\]"):
        load_config(path, plugins=plugins, environ={})


# --- entry points -------------------------------------------------------------------------------


def test_empty_plugin_allowlist_loads_no_entry_points(monkeypatch):
    monkeypatch.setenv("NHD_BRIDGE_PLUGINS", "")

    plugins = Plugins()

    assert plugins.plugin_names == []
    assert plugins.adapters() == {}
    assert plugins.unavailable == []


def test_allowlist_loads_only_the_named_entry_points(monkeypatch):
    installed = [
        EntryPoint("fake", "nhd_bridge.testing.fake", "nhd_bridge"),
        EntryPoint("broken", "no_such_module_for_nhd_tests", "nhd_bridge"),
    ]
    monkeypatch.setattr("nhd_bridge.core.plugins.entry_points", lambda *, group: installed)
    monkeypatch.setenv("NHD_BRIDGE_PLUGINS", " fake ,")

    plugins = Plugins()

    assert plugins.plugin_names == ["fake"]
    assert plugins.unavailable == []


def test_entry_point_that_fails_to_import_is_listed_as_unavailable(monkeypatch):
    installed = [EntryPoint("zendesk", "no_such_module_for_nhd_tests", "nhd_bridge")]
    monkeypatch.setattr("nhd_bridge.core.plugins.entry_points", lambda *, group: installed)
    monkeypatch.delenv("NHD_BRIDGE_PLUGINS", raising=False)

    plugins = Plugins()

    [missing] = plugins.unavailable
    assert missing.name == "zendesk" and "no_such_module_for_nhd_tests" in missing.reason
    with pytest.raises(PluginError, match="plugin 'zendesk' failed to load: No module named"):
        plugins.adapter_class("zendesk")


def test_builtin_local_adapter_is_found_through_its_entry_point(monkeypatch):
    if importlib.util.find_spec("nhd_bridge.adapters.local") is None:
        pytest.skip("nhd_bridge.adapters.local cannot be imported yet")
    try:
        from nhd_bridge.adapters.local import LocalAdapter
    except ImportError as error:
        pytest.skip(f"nhd_bridge.adapters.local cannot be imported yet: {error}")
    monkeypatch.setenv("NHD_BRIDGE_PLUGINS", "local")

    plugins = Plugins()

    assert plugins.plugin_names == ["local"]
    assert plugins.adapter_class("local") is LocalAdapter


# --- transform hooks ----------------------------------------------------------------------------


class KeepsPasswordsOut:
    def __init__(self) -> None:
        self.seen: list[tuple[Direction, str]] = []

    @hookimpl
    def nhd_transform_comment(self, direction, comment):
        self.seen.append((direction, comment.body))
        return "mentions a password" if "password" in comment.body else None


class MakesEverythingPublic:
    @hookimpl
    def nhd_transform_comment(self, direction, comment):
        comment.public = True


class MakesEverythingPrivate:
    @hookimpl
    def nhd_transform_comment(self, direction, comment):
        comment.public = False


class BrandsOutboundSubjects:
    @hookimpl
    def nhd_transform_ticket(self, direction, fields):
        if direction.way == "outbound" and "subject" in fields:
            fields["subject"] = f"[ACME] {fields['subject']}"


def test_comment_hook_returning_a_reason_keeps_the_comment_out_and_journals_it(
    make_bridge, plugins
):
    keeper = KeepsPasswordsOut()
    with registered_plugin(plugins, keeper):
        bridge = make_bridge({"ab": {"sender": "A", "receiver": "B"}})
        a = FakeTracker.named("A")
        ticket = a.create_ticket("Login")
        a.add_comment(ticket, "cannot log in")
        a.add_comment(ticket, "my password is hunter2")

        [summary] = bridge.run()

        assert [c.body for c in only_ticket(FakeTracker.named("B")).comments] == ["cannot log in"]
        assert summary.skipped["comment"] == 1 and summary.writes["comment"] == 1
        [skipped] = bridge.journal(outcome="skipped")
        assert (skipped.action, skipped.source, skipped.target) == ("comment", "A", "B")
        assert skipped.reason == "kept out by a plugin: mentions a password"
        assert {direction for direction, _ in keeper.seen} == {
            Direction("ab", "A", "B", "outbound")
        }

        [again] = bridge.run()

        assert (again.total_writes, dict(again.skipped)) == (0, {})
        assert len(keeper.seen) == 2, "a comment kept out is not offered again"


def test_comment_hook_cannot_make_a_private_comment_public(make_bridge, plugins):
    with registered_plugin(plugins, MakesEverythingPublic()):
        bridge = make_bridge({"ab": {"sender": "A", "receiver": "B"}})
        a = FakeTracker.named("A")
        ticket = a.create_ticket("Mixed")
        a.add_comment(ticket, "for everyone", public=True)
        a.add_comment(ticket, "agents only", public=False)

        bridge.run()

        copy = only_ticket(FakeTracker.named("B"))
        assert [(c.body, c.public) for c in copy.comments] == [
            ("for everyone", True),
            ("agents only", False),
        ]
        reasons = [entry.reason for entry in bridge.journal(outcome="written")]
        assert "a plugin tried to make a private comment public; it stays private" in reasons
        assert_quiet(bridge)


def test_comment_hook_can_make_a_public_comment_private(make_bridge, plugins):
    with registered_plugin(plugins, MakesEverythingPrivate()):
        bridge = make_bridge({"ab": {"sender": "A", "receiver": "B"}})
        FakeTracker.named("A").create_ticket("Quiet", comments=["said in public"])

        bridge.run()

        [comment] = only_ticket(FakeTracker.named("B")).comments
        assert (comment.body, comment.public) == ("said in public", False)


def test_ticket_hook_changes_the_subject_written_on_create(make_bridge, plugins):
    with registered_plugin(plugins, BrandsOutboundSubjects()):
        bridge = make_bridge({"ab": {"sender": "A", "receiver": "B"}})
        a, b = FakeTracker.named("A"), FakeTracker.named("B")
        ticket = a.create_ticket("Printer on fire")

        bridge.run()

        assert only_ticket(b).subject == "[ACME] Printer on fire"
        assert a.ticket(ticket).subject == "Printer on fire"
        assert_quiet(bridge)
        assert a.ticket(ticket).subject == "Printer on fire"


def test_ticket_hook_changes_the_subject_written_on_update(make_bridge, plugins):
    with registered_plugin(plugins, BrandsOutboundSubjects()):
        bridge = make_bridge({"ab": {"sender": "A", "receiver": "B"}})
        a, b = FakeTracker.named("A"), FakeTracker.named("B")
        ticket = a.create_ticket("Printer on fire")
        bridge.run()

        a.set_subject(ticket, "Printer still on fire")
        bridge.run()

        assert only_ticket(b).subject == "[ACME] Printer still on fire"


def test_ticket_hook_change_on_update_does_not_travel_back_to_the_source(make_bridge, plugins):
    with registered_plugin(plugins, BrandsOutboundSubjects()):
        bridge = make_bridge({"ab": {"sender": "A", "receiver": "B"}})
        a = FakeTracker.named("A")
        ticket = a.create_ticket("Printer on fire")
        bridge.run()

        a.set_subject(ticket, "Printer still on fire")
        bridge.run()

        assert a.ticket(ticket).subject == "Printer still on fire"
        assert_quiet(bridge)


def test_ticket_hook_deleting_a_field_keeps_it_out_of_the_write(make_bridge, plugins):
    class KeepsStatusHome:
        @hookimpl
        def nhd_transform_ticket(self, direction, fields):
            fields.pop("status", None)

    with registered_plugin(plugins, KeepsStatusHome()):
        bridge = make_bridge({"ab": {"sender": "A", "receiver": "B"}})
        a, b = FakeTracker.named("A"), FakeTracker.named("B")
        ticket = a.create_ticket("Status stays", status="open")
        bridge.run()
        a.set_status(ticket, "pending")
        a.set_subject(ticket, "Status still stays")

        bridge.run()

        copy = only_ticket(b)
        assert (copy.subject, copy.status) == ("Status still stays", "open")


# --- run hooks ----------------------------------------------------------------------------------


class RecordsRuns:
    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    @hookimpl
    def nhd_run_started(self, agreement, run_id):
        self.events.append(("started", (agreement, run_id)))

    @hookimpl
    def nhd_run_finished(self, summary):
        self.events.append(("finished", summary))

    @hookimpl
    def nhd_ticket_parked(self, agreement, shared_uuid, error):
        self.events.append(("parked", (agreement, shared_uuid, error)))


def test_run_hooks_receive_the_agreement_the_run_id_and_the_summary(make_bridge, plugins):
    recorder = RecordsRuns()
    with registered_plugin(plugins, recorder):
        bridge = make_bridge({"ab": {"sender": "A", "receiver": "B"}})
        FakeTracker.named("A").create_ticket("Counted", comments=["one"])

        [summary] = bridge.run()

    assert recorder.events == [("started", ("ab", summary.run_id)), ("finished", summary)]
    finished = recorder.events[1][1]
    assert isinstance(finished, RunSummary) and finished is summary
    assert finished.writes == {"create": 1, "comment": 1}


def test_run_finished_is_called_after_a_failure_too(make_bridge, plugins):
    recorder = RecordsRuns()
    with registered_plugin(plugins, recorder):
        bridge = make_bridge({"ab": {"sender": "A", "receiver": "B"}})
        FakeTracker.named("A").create_ticket("Crashes")
        # A bug in reading a whole side ends the run (one ticket's failure would only park it).
        FakeTracker.named("A").fail_next("changed_since", RuntimeError("adapter bug"))

        with pytest.raises(RuntimeError, match="adapter bug"):
            bridge.run()

    assert [event for event, _ in recorder.events] == ["started", "finished"]


def test_ticket_parked_hook_receives_the_shared_uuid_and_error(make_bridge, plugins):
    recorder = RecordsRuns()
    with registered_plugin(plugins, recorder):
        bridge = make_bridge({"ab": {"sender": "A", "receiver": "B"}})
        FakeTracker.named("A").create_ticket("Denied")
        FakeTracker.named("B").fail_next("create", PermanentError("403: may not create issues"))

        [summary] = bridge.run()

    [parked] = bridge.store.read().parked("ab")
    assert ("parked", ("ab", parked.shared_uuid, "403: may not create issues")) in recorder.events
    assert recorder.events[-1] == ("finished", summary)
    assert summary.parked == 1


def test_transform_comment_facade_returns_the_first_reason(plugins):
    class Quiet:
        @hookimpl
        def nhd_transform_comment(self, direction, comment):
            return None

    class Loud:
        @hookimpl
        def nhd_transform_comment(self, direction, comment):
            return "too loud"

    draft = CommentDraft(shared_uuid="c1", body="HELLO", public=True)
    direction = Direction("ab", "A", "B", "outbound")
    with registered_plugin(plugins, Quiet()):
        assert plugins.transform_comment(direction, draft) is None
        with registered_plugin(plugins, Loud()):
            assert plugins.transform_comment(direction, draft) == "too loud"


def test_hooks_of_a_plugin_module_on_disk_are_called(plugins, tmp_path: Path, monkeypatch):
    module_name = "nhd_tests_upper_plugin"
    (tmp_path / f"{module_name}.py").write_text(
        "from nhd_bridge import hookimpl\n\n"
        "@hookimpl\n"
        "def nhd_transform_ticket(direction, fields):\n"
        "    fields['subject'] = fields['subject'].upper()\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, module_name, raising=False)

    plugins.load_module(module_name)
    fields = {"subject": "quiet please"}
    plugins.transform_ticket(Direction("ab", "A", "B", "outbound"), fields)

    assert fields == {"subject": "QUIET PLEASE"}
    plugins.unregister(name=module_name)
