"""One run of an agreement at a time: a lease in the state store, renewed as the run goes, so
that two workers (or a scheduler and an operator's ``nhd-bridge run``) never write at once."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta

from nhd_bridge.core.state import StateStore

__all__ = ["LEASE_RENEW_EVERY", "LEASE_TTL", "AgreementBusy", "AgreementLease"]

# A run renews its lease as it goes; a worker that dies loses it after this long at most.
LEASE_TTL = timedelta(minutes=5)
LEASE_RENEW_EVERY = timedelta(minutes=1)


class AgreementBusy(Exception):
    """Another run of this agreement holds its lease."""


class AgreementLease:
    """Takes, renews and releases the lease of an agreement for ``holder`` (``host:pid``)."""

    def __init__(self, store: StateStore, holder: str, clock: Callable[[], datetime]):
        self.store = store
        self.holder = holder
        self._clock = clock
        self._renewed = clock()

    def take(self, name: str) -> None:
        if self.store.acquire_lease(name, self.holder, LEASE_TTL):
            self._renewed = self._clock()
            return
        holder = self.store.lease_holder(name)
        if holder and _dead_local_process(holder):
            # Killed on this machine: its lease would block every run until it expires.
            self.store.release_lease(name, holder)
            if self.store.acquire_lease(name, self.holder, LEASE_TTL):
                self._renewed = self._clock()
                return
        raise AgreementBusy(
            f"agreement {name} is being run by {holder or 'another worker'}; try later"
        )

    def renew(self, name: str) -> None:
        now = self._clock()
        if now - self._renewed >= LEASE_RENEW_EVERY:
            if not self.store.acquire_lease(name, self.holder, LEASE_TTL):
                raise AgreementBusy(f"agreement {name}: lost the lease to another worker")
            self._renewed = now

    def release(self, name: str) -> None:
        self.store.release_lease(name, self.holder)


def _dead_local_process(holder: str) -> bool:
    """Whether a lease holder ``host:pid`` is a process of this machine that no longer runs."""
    host, _, pid = holder.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False
