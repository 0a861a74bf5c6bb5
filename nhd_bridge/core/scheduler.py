"""The embedded scheduler of ``nhd-bridge serve``: each agreement on its own interval.

APScheduler 3 runs one job per agreement (``max_instances=1``, missed runs coalesced). A run takes
the agreement's lease in the state store, so even several ``serve`` processes over one PostgreSQL
store never run one agreement twice at the same time. ``trigger`` brings a run forward, which is
how a partner's push (an NHD request) is applied within a second instead of at the next interval.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger

from nhd_bridge.core.config import LoadedConfig
from nhd_bridge.core.engine import AgreementBusy, SyncEngine
from nhd_bridge.core.run import RunSummary
from nhd_bridge.core.state import StateStore

__all__ = ["BridgeScheduler"]

log = logging.getLogger(__name__)


class BridgeScheduler:
    """Runs every agreement of a configuration on its ``schedule.every`` interval."""

    def __init__(
        self,
        config: LoadedConfig,
        store: StateStore,
        *,
        workers: int = 4,
        on_finished: Callable[[RunSummary], None] | None = None,
    ):
        self.config = config
        self.store = store
        self._listeners: list[Callable[[RunSummary], None]] = [on_finished] if on_finished else []
        self._stopping = threading.Event()
        self._running: dict[str, SyncEngine] = {}
        self._lock = threading.Lock()
        self._scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=workers)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=UTC,
        )
        self._schedule(config)

    def _schedule(self, config: LoadedConfig) -> None:
        for name, agreement in config.bridge.agreements.items():
            trigger = IntervalTrigger(seconds=agreement.schedule.interval.total_seconds())
            if self._scheduler.get_job(name) is None:
                self._scheduler.add_job(
                    self.run_agreement,
                    trigger,
                    args=[name],
                    id=name,
                    name=f"sync {name}",
                    next_run_time=datetime.now(UTC),
                )
            else:
                self._scheduler.reschedule_job(name, trigger=trigger)
                self.trigger(name)

    def reload(self, config: LoadedConfig) -> None:
        """Take a new configuration (``serve`` on SIGHUP): runs that already started finish
        with the old one, every later run uses the new one; agreements removed stop."""
        with self._lock:
            self.config = config
        for job in self._scheduler.get_jobs():
            if job.id not in config.bridge.agreements:
                job.remove()
        self._schedule(config)

    def add_listener(self, listener: Callable[[RunSummary], None]) -> None:
        """Called with the summary of every finished run (from a scheduler thread)."""
        self._listeners.append(listener)

    def start(self) -> None:
        self._scheduler.start()

    def trigger(self, agreement: str | None = None) -> None:
        """Run an agreement (or all) as soon as a worker is free; a running one is not doubled."""
        names = [agreement] if agreement else list(self.config.bridge.agreements)
        for name in names:
            job = self._scheduler.get_job(name)
            if job is not None:
                job.modify(next_run_time=datetime.now(UTC))

    def shutdown(self) -> None:
        """Stop scheduling; ask running runs to stop between two tickets, and wait for them."""
        self._stopping.set()
        with self._lock:
            for engine in self._running.values():
                engine.request_stop()
        self._scheduler.shutdown(wait=True)

    def run_agreement(self, name: str) -> RunSummary | None:
        if self._stopping.is_set():
            return None
        with self._lock:
            if name not in self.config.bridge.agreements:
                return None  # removed by a reload after this run was queued
            engine = SyncEngine(self.config, self.store)
            self._running[name] = engine
        try:
            summary = engine.run(name)
        except AgreementBusy as busy:
            log.info("%s", busy)
            return None
        except Exception:  # a scheduler thread must survive any one failing run
            log.exception("run of agreement %s failed", name)
            return None
        finally:
            with self._lock:
                self._running.pop(name, None)
            engine.close()
        # A run that changed nothing is every interval's news: said at DEBUG only.
        quiet = not (summary.total_writes or summary.parked or summary.errors)
        log.log(
            logging.DEBUG if quiet else logging.INFO,
            "%s: seen %d, writes %d, parked %d",
            name,
            summary.tickets_seen,
            summary.total_writes,
            summary.parked,
        )
        for listener in self._listeners:
            listener(summary)
        return summary
