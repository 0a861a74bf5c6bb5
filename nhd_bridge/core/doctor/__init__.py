"""``nhd-bridge doctor``: what the state store lost or never had, checked against the trackers.

The engine trusts the store for identity: which local ticket is the copy of which shared ticket,
which comment of one copy is which comment of the other. A store restored from an old backup, a
crash not recovered yet, a person deleting or copying tickets: each leaves the store and the
trackers disagreeing. :class:`Doctor` reads every ticket of every instance of the agreements it
examines and reports each disagreement as a :class:`Finding`; :meth:`Doctor.repair` fixes in the
store those it can, with a journal line each (action ``doctor``). It never deletes or changes a
ticket or a comment in a tracker: a duplicate is reported, with its local id, for a person to
delete.
"""

from __future__ import annotations

from collections.abc import Iterable

from nhd_bridge.core.doctor.comments import CommentChecks
from nhd_bridge.core.doctor.findings import KIND_ORDER, Finding, FindingKind, describe
from nhd_bridge.core.doctor.repairs import Repairs
from nhd_bridge.core.doctor.tickets import TicketChecks

__all__ = ["Doctor", "Finding", "FindingKind", "describe"]


class Doctor(TicketChecks, CommentChecks, Repairs):
    """Examines (and repairs) the store of one configuration against its trackers: see
    :class:`~nhd_bridge.core.doctor.base.DoctorBase` for what it is built from."""

    def examine(self, agreements: Iterable[str] | None = None) -> list[Finding]:
        """Every finding under the agreements named (all by default), in repair order."""
        names = list(agreements or self.config.bridge.agreements)
        self.errors, self._censuses, self._links = [], {}, {}
        read = self.store.read()
        findings: dict[tuple[object, ...], Finding] = {}

        def keep(found: Iterable[Finding]) -> None:
            for finding in found:
                findings.setdefault(finding.key, finding)

        for instance in self._instances(names):
            self._links[instance] = read.instance_links(instance)
            census = self._read_all(instance)
            involving = [name for name in names if instance in self._sides(name)]
            keep(self._pending_links(read, instance, involving))
            if census is not None:
                keep(self._stale_links(read, instance, involving, census))
                keep(self._copies(read, instance, involving, census))
        for name in names:
            keep(self._comments(read, name))
        return sorted(findings.values(), key=lambda finding: KIND_ORDER.index(finding.kind))
