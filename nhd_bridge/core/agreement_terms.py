"""What an agreement is for one run: its terms (the YAML, with what a side negotiated on the
wire taking precedence), its row in the state store, and the rules the planner applies."""

from __future__ import annotations

from collections.abc import Callable

from nhd_bridge.core.adapter import Adapter
from nhd_bridge.core.config import AgreementConfig, LoadedConfig, status_map_problems
from nhd_bridge.core.model import nhd_uuid
from nhd_bridge.core.planner import Role, Rules, Side
from nhd_bridge.core.state import AgreementRow, StateStore

__all__ = [
    "AgreementRefused",
    "agreement_rules",
    "effective_agreement",
    "side_of",
    "sync_agreement_row",
]


class AgreementRefused(Exception):
    """The agreement may not run as configured (for example a reactivation)."""


def effective_agreement(
    config: LoadedConfig, adapter: Callable[[str], Adapter], name: str
) -> AgreementConfig:
    """The YAML agreement, with the terms a side negotiated on the wire taking precedence."""
    agreement = config.bridge.agreements[name]
    for instance in (agreement.sender, agreement.receiver):
        terms = adapter(instance).agreement_terms()
        if terms is not None:
            agreement = agreement.model_copy(
                update={
                    "status": terms.status,
                    "allows_public_comments": terms.allows_public_comments,
                    "sync_tags": terms.sync_tags,
                    "sync_custom_fields": terms.sync_custom_fields,
                }
            )
    return agreement


def sync_agreement_row(
    store: StateStore,
    sharing_url: Callable[[str], str],
    name: str,
    agreement: AgreementConfig,
    dry_run: bool,
) -> None:
    """Refuse a reactivation; otherwise keep the store's row of the agreement as it now is."""
    stored = store.read().agreement(name)
    if stored and stored.status == "inactive" and agreement.status == "accepted":
        raise AgreementRefused(
            f"agreement {name} was deactivated and cannot be reactivated; "
            "create a new agreement (a new name) to share again"
        )
    if dry_run:
        return
    row = AgreementRow(
        name=name,
        uuid=stored.uuid if stored else nhd_uuid(sharing_url(agreement.sender), "agreements", name),
        sender=agreement.sender,
        receiver=agreement.receiver,
        status=agreement.status,
        allows_public_comments=agreement.allows_public_comments,
        sync_tags=agreement.sync_tags,
        sync_custom_fields=agreement.sync_custom_fields,
        deactivated_by=stored.deactivated_by if stored else None,
    )
    if stored != row:
        with store.transaction() as tx:
            tx.upsert_agreement(row)


def agreement_rules(
    config: LoadedConfig,
    adapter: Callable[[str], Adapter],
    sharing_url: Callable[[str], str],
    name: str,
    agreement: AgreementConfig,
) -> Rules:
    """The planner's rules of the agreement; AgreementRefused where a status map cannot work."""
    rules = Rules(
        agreement,
        side_of(config, adapter, sharing_url, agreement.sender, "sender"),
        side_of(config, adapter, sharing_url, agreement.receiver, "receiver"),
    )
    _check_status_maps(name, rules)
    return rules


def side_of(
    config: LoadedConfig,
    adapter: Callable[[str], Adapter],
    sharing_url: Callable[[str], str],
    instance: str,
    role: Role,
) -> Side:
    """One instance as a side of an agreement, as the planner sees it."""
    return Side(
        instance=instance,
        role=role,
        capabilities=adapter(instance).capabilities,
        sharing_url=sharing_url(instance),
        closed_statuses=frozenset(config.bridge.instances[instance].closed_statuses),
    )


def _check_status_maps(name: str, rules: Rules) -> None:
    """Refuse what ``validate`` refuses (one check serves both): a status map naming a status
    the target does not have would fail on every write; one naming a status the source does not
    have would never match."""
    errors = [
        problem
        for problem in status_map_problems(
            name,
            rules.agreement,
            rules.sender.capabilities.statuses,
            rules.receiver.capabilities.statuses,
        )
        if problem.level == "error"
    ]
    if errors:
        where = ".".join(str(part) for part in errors[0].path[2:])
        raise AgreementRefused(f"agreement {name}: {where}: {errors[0].message}")
