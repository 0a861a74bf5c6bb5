"""People typed into the local tracker are one person per installation, not one per world.

nhd-spec.md §4.4 and §6.1: an actor's uuid is unique across every sharing system and derived
from the sharing URL of the system where the person originates, as tickets and comments are.
"""

from __future__ import annotations

from pathlib import Path

from nhd_bridge.adapters.local import LocalAdapter, LocalConfig, LocalTracker, local_person
from nhd_bridge.core.adapter import AdapterContext
from nhd_bridge.core.model import Actor, nhd_uuid


def _installation(tmp_path: Path, name: str) -> tuple[LocalAdapter, str]:
    """One installation's local tracker where an agent typed "alice" by hand (local CLI)."""
    config = LocalConfig(path=tmp_path / f"{name}.db")
    with LocalTracker(config) as desk:
        ticket = desk.create_ticket("Printer", requester=local_person("alice", "end-user"))
        desk.add_comment(ticket.local_id, "Rebooted it.", author=local_person("alice"))
        desk.add_comment(
            ticket.local_id, "From the partner", author=Actor(uuid="partner-7", name="alice")
        )
    adapter = LocalAdapter("support", config)
    sharing_url = f"nhd-bridge://{name}-installation/support"
    adapter.attach(AdapterContext("support", sharing_url, state=None))
    return adapter, ticket.local_id


def test_the_same_name_in_two_installations_is_two_people(tmp_path: Path) -> None:
    first, first_id = _installation(tmp_path, "first")
    second, second_id = _installation(tmp_path, "second")
    one, other = first.get(first_id), second.get(second_id)
    assert one is not None and other is not None
    assert one.requester.uuid != other.requester.uuid  # type: ignore[union-attr]
    mine = nhd_uuid("nhd-bridge://first-installation/support", "users", "alice")
    assert one.requester.uuid == mine  # type: ignore[union-attr]
    # The requester and the author "alice" are still one person within the installation.
    assert one.comments[0].author.uuid == one.requester.uuid  # type: ignore[union-attr]
    assert one.requester.uuid != nhd_uuid("nhd-local", "users", "alice")  # type: ignore[union-attr]
    # Someone who came from a partner keeps the partner's uuid.
    assert one.comments[1].author.uuid == "partner-7"  # type: ignore[union-attr]
    first.close()
    second.close()


def test_changes_and_lookups_carry_the_installation_uuid(tmp_path: Path) -> None:
    adapter, _ = _installation(tmp_path, "first")
    expected = nhd_uuid("nhd-bridge://first-installation/support", "users", "alice")
    [page] = list(adapter.changed_since(None))
    assert [t.requester.uuid for t in page.tickets] == [expected]  # type: ignore[union-attr]
    adapter.close()
