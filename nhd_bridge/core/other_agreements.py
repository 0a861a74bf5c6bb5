"""What the other agreements of one configuration say about a ticket one agreement is about to
start sharing: a copy another agreement made here is shared onward (a re-share, scenario 11)
only where its origin does not share it directly, and after a lost store only once the agreements
that may have made it have adopted their copies."""

from __future__ import annotations

from collections.abc import Mapping

from nhd_bridge.core.adapter import TicketRecord
from nhd_bridge.core.config import AgreementConfig
from nhd_bridge.core.model import nhd_uuid
from nhd_bridge.core.planner import Side
from nhd_bridge.core.state import StateTx

__all__ = ["OtherAgreements"]


class OtherAgreements:
    """The agreements of one configuration, as seen from one of them."""

    def __init__(self, agreements: Mapping[str, AgreementConfig]):
        self.agreements = agreements

    def origin_shares_it_there(
        self, agreement: str, target: str, shared_uuid: str, side: Side, read: StateTx
    ) -> bool:
        """A copy made on ``side`` may be shared onward (A → B → D), but not to an instance its
        origin shares it with directly: that agreement carries it, under its own terms. Run in
        the order A → C, C → B, A → B, the re-share reached B first and A → B never carried the
        ticket; a comment C's agent wrote, kept home under partial delegation, reached B."""
        origin = read.shared_ticket_origin(shared_uuid)
        if origin is None or origin[0] == side.instance:
            return False
        return any(
            other.sender == origin[0] and other.receiver == target
            for name, other in self.agreements.items()
            if name != agreement
        )

    def may_have_made(
        self, agreement: str, record: TicketRecord, side: Side, read: StateTx
    ) -> bool:
        """Whether a ticket carrying a uuid ``side`` did not mint may be a copy that another
        agreement made, not adopted yet. The store knows such copies by their links; a store
        that was lost or is new learns them once each agreement has run to the end (its pass
        adopts the copies it made). Until then, sharing the copy onward would adopt, under
        ``agreement``, the copies another one made elsewhere."""
        if record.shared_uuid is None:
            return False
        if record.shared_uuid == nhd_uuid(side.sharing_url, "tickets", record.local_id):
            return False  # minted here: this instance's own ticket
        for name, other in self.agreements.items():
            # Only an agreement that receives on this side makes copies here. (Once it has
            # adopted them, origin_shares_it_there keeps the copy from where its origin goes.)
            if name == agreement or other.receiver != side.instance:
                continue
            health = read.health(name)
            if health is None or health.last_ok_at is None:
                return True
            if read.parked_entry(name, record.shared_uuid) is not None:
                return True  # it ran, but its adoption of this ticket failed and waits a retry
        return False
