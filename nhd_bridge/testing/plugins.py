"""Register a plugin for one test, the way simonw/llm's tests do, and leave no trace after it.

Tests should build their own :class:`~nhd_bridge.core.plugins.Plugins` with entry points turned off,
so that whatever happens to be installed cannot change the outcome, then register exactly the
plugins the test is about. In a pytest yield fixture::

    import pytest
    from nhd_bridge.core.plugins import Plugins
    from nhd_bridge.testing import registered_plugin
    from nhd_bridge.testing import fake

    @pytest.fixture
    def plugins():
        plugins = Plugins(load_entry_points=False)
        with registered_plugin(plugins, fake):
            yield plugins

    def test_fake_kind_is_known(plugins):
        assert plugins.adapter_class("fake") is fake.FakeAdapter

A plugin can be a module or any object with ``@hookimpl`` methods, which is handy for a one-off
hook inside a test::

    class KeepsSecretsOut:
        @hookimpl
        def nhd_transform_comment(self, direction, comment):
            return "mentions a password" if "password" in comment.body else None

    with registered_plugin(plugins, KeepsSecretsOut()):
        ...
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

from nhd_bridge.core.plugins import Plugins

__all__ = ["registered_plugin"]

PluginT = TypeVar("PluginT")


@contextmanager
def registered_plugin(
    plugins: Plugins, module_or_obj: PluginT, name: str | None = None
) -> Iterator[PluginT]:
    """Register ``module_or_obj`` on ``plugins`` for the ``with`` block and unregister it after,
    also when the block raises. Yields the plugin.

    A plugin that fails validation while registering (a misspelled hook argument, a hook that does
    not exist) is unregistered before the error propagates, so one broken test cannot leak its
    plugin into the next.
    """
    names_before = set(plugins.plugin_names)
    try:
        plugins.register(module_or_obj, name=name)
    except Exception:
        # pluggy adds the plugin before validating its hooks: take back what got in.
        _unregister(plugins, set(plugins.plugin_names) - names_before)
        raise
    # Only this plugin's name: others registered inside the block are the block's business.
    registered_as = set(plugins.plugin_names) - names_before
    try:
        yield module_or_obj
    finally:
        _unregister(plugins, registered_as & set(plugins.plugin_names))


def _unregister(plugins: Plugins, names: set[str]) -> None:
    for name in names:
        plugins.unregister(name=name)
