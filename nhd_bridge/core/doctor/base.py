"""What every part of the doctor builds on: the configuration, the store, the adapters, and one
full read of each instance."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from nhd_bridge.core.adapter import Adapter, AdapterError, TicketRecord
from nhd_bridge.core.config import LoadedConfig
from nhd_bridge.core.doctor.findings import natural
from nhd_bridge.core.state import LinkRow, StateStore, StateTx

__all__ = ["Census", "DoctorBase"]


@dataclass
class Census:
    """One full read of an instance: every ticket's breadcrumb, and the whole record of the
    tickets the store links (only those, to bound memory on a large tracker)."""

    breadcrumbs: dict[str, str | None] = field(default_factory=dict)
    records: dict[str, TicketRecord] = field(default_factory=dict)

    def holders(self) -> dict[str, list[str]]:
        """Local ids by the breadcrumb they carry, lowest id first."""
        found: dict[str, list[str]] = {}
        for local_id, breadcrumb in self.breadcrumbs.items():
            if breadcrumb is not None:
                found.setdefault(breadcrumb, []).append(local_id)
        return {uuid: sorted(ids, key=natural) for uuid, ids in found.items()}


class DoctorBase:
    """Examines (and repairs) the store of one configuration against its trackers.

    ``adapter_for`` is the engine's ``adapter``, so that adapters are built and attached the way a
    sync does; ``sharing_url`` is the engine's ``sharing_url``, from which the uuids of
    comments people wrote are minted."""

    def __init__(
        self,
        config: LoadedConfig,
        store: StateStore,
        adapter_for: Callable[[str], Adapter],
        sharing_url: Callable[[str], str],
    ):
        self.config = config
        self.store = store
        self._adapter = adapter_for
        self._sharing_url = sharing_url
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        # What could not be looked at or repaired, one line each: a tracker that could not be
        # read is never taken for an empty one.
        self.errors: list[str] = []
        self._censuses: dict[str, Census | None] = {}
        self._links: dict[str, list[LinkRow]] = {}

    def _instances(self, names: list[str]) -> list[str]:
        return list(dict.fromkeys(instance for name in names for instance in self._sides(name)))

    def _sides(self, name: str) -> tuple[str, str]:
        agreement = self.config.bridge.agreements[name]
        return agreement.sender, agreement.receiver

    def _known_sides(self, name: str) -> tuple[str, ...]:
        agreement = self.config.bridge.agreements.get(name)
        return (agreement.sender, agreement.receiver) if agreement else ()

    def _first_agreement(self, instance: str) -> str:
        return next(name for name in self.config.bridge.agreements if instance in self._sides(name))

    def _owners(self, read: StateTx, involving: list[str], uuids: list[str]) -> dict[str, str]:
        """For each shared uuid, the first examined agreement that syncs it (state shared)."""
        owners: dict[str, str] = {}
        for name in involving:
            for uuid, state in read.agreement_ticket_states(name, uuids).items():
                if state == "shared":
                    owners.setdefault(uuid, name)
        return owners

    def _read_all(self, instance: str) -> Census | None:
        """Every ticket of the instance (``changed_since(None)``, every page)."""
        linked = {link.local_id for link in self._links[instance] if link.local_id is not None}
        census = Census()
        try:
            for page in self._adapter(instance).changed_since(None):
                for record in page.tickets:
                    census.breadcrumbs[record.local_id] = record.shared_uuid
                    if record.local_id in linked:
                        census.records[record.local_id] = record  # a later sighting is newer
        except AdapterError as error:
            self.errors.append(
                f"{instance}: reading every ticket failed: {error}; its copies and comments were "
                "not examined"
            )
            self._censuses[instance] = None
            return None
        self._censuses[instance] = census
        return census

    def _ticket(self, instance: str, local_id: str, census: Census) -> TicketRecord | None:
        """A linked ticket: from the full read, else asked for (a ticket outside what the read
        covers, or deleted; only ``get`` can say which)."""
        if local_id not in census.records:
            record = self._adapter(instance).get(local_id)
            if record is None:
                return None
            census.records[local_id] = record
            census.breadcrumbs[local_id] = record.shared_uuid
        return census.records[local_id]
