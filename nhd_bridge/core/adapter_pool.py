"""The adapter of each instance of one configuration, made once and attached to the state store,
with the sharing URL its uuids are minted from (ADR 0001)."""

from __future__ import annotations

from nhd_bridge.core.adapter import Adapter, AdapterContext
from nhd_bridge.core.config import LoadedConfig
from nhd_bridge.core.state import StateStore

__all__ = ["AdapterPool"]


class AdapterPool:
    """Adapters by instance name, made on first use from the configuration (or handed in)."""

    def __init__(
        self,
        config: LoadedConfig,
        store: StateStore,
        adapters: dict[str, Adapter] | None = None,
    ):
        self.config = config
        self.store = store
        self._adapters: dict[str, Adapter] = {}
        self._sharing_urls: dict[str, str] = {}
        self._installation: str | None = None
        for instance, adapter in (adapters or {}).items():
            self._adopt(instance, adapter)

    def adapter(self, instance: str) -> Adapter:
        if instance not in self._adapters:
            kind = self.config.bridge.instances[instance].kind
            adapter_class = self.config.plugins.adapter_class(kind)
            self._adopt(instance, adapter_class(instance, self.config.adapter_configs[instance]))
        return self._adapters[instance]

    def sharing_url(self, instance: str) -> str:
        """The base the uuids of this instance are minted from (ADR 0001)."""
        self.adapter(instance)
        return self._sharing_urls[instance]

    def close(self) -> None:
        for adapter in self._adapters.values():
            adapter.close()

    def _adopt(self, instance: str, adapter: Adapter) -> None:
        url = self.config.sharing_url(instance, self._installation_id, adapter.tracker_identity())
        self._sharing_urls[instance] = url
        adapter.attach(AdapterContext(instance, url, self.store))
        self._adapters[instance] = adapter

    def _installation_id(self) -> str:
        if self._installation is None:
            self._installation = self.store.installation_id()
        return self._installation
