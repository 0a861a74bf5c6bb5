"""``nhd-bridge agreements``: agreements with native NHD partners (``kind: nhd`` instances).

It lives next to the NHD adapter, whose configuration and sender it drives, and joins the command
line through the ``nhd_register_commands`` hook of that adapter's plugin, as any plugin's command
would (core knows nothing of it; the protocol code in core knows no click).

Every change is told to the partner first and kept locally only once the partner took it, as RT
does (nhd-spec.md §6.3 [REC]): an invite is stored, POSTed, and removed again if the POST fails;
an accept, decline or deactivation is checked against the §1.4 rules, PUT to the partner, then
stored. So "exit 1" always means "the partner was not told, and nothing changed here".

Exit codes: 0 done; 1 the partner could not be reached or refused; 2 bad usage (unknown uuid,
unknown instance, a transition the protocol forbids, a partner URL outside the URL policy).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

# The protocol, the store and httpx are imported where they are used, so that building this
# group (which `nhd-bridge --help` does) costs nothing.
if TYPE_CHECKING:
    import httpx

    from nhd_bridge.adapters.nhd.adapter import NhdConfig
    from nhd_bridge.core.config import LoadedConfig
    from nhd_bridge.core.protocol.sender import NHDSender, Resolver, SendResult
    from nhd_bridge.core.protocol.wire_store import WireAgreement, WireStore

__all__ = ["make_agreements_group", "register_commands"]

EXIT_UNREACHABLE, EXIT_USAGE = 1, 2


class AgreementUsageError(click.ClickException):
    """Bad usage: one line, exit 2."""

    exit_code = EXIT_USAGE

    def show(self, file: Any = None) -> None:
        from nhd_bridge.core.terminal import neutralise

        click.echo(neutralise(f"error: {self.message}"), err=True)


class PartnerFailure(click.ClickException):
    """The partner could not be reached or refused; nothing changed locally. Exit 1."""

    exit_code = EXIT_UNREACHABLE

    def show(self, file: Any = None) -> None:
        from nhd_bridge.core.terminal import neutralise

        click.echo(neutralise(f"error: {self.message}"), err=True)


def register_commands(cli: click.Group) -> None:
    """Add ``agreements`` to ``nhd-bridge``: the NHD plugin's ``nhd_register_commands``."""
    from nhd_bridge.cli import load

    cli.add_command(make_agreements_group(load), name="agreements")


def make_agreements_group(
    load_config: Callable[[click.Context], LoadedConfig],
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    resolver: Resolver | None = None,
) -> click.Group:
    """The ``agreements`` group; ``load_config`` is the main CLI's loader. ``transport``,
    ``sleep`` and ``resolver`` replace the network in tests."""

    def sender(instance: NhdConfig) -> NHDSender:
        from nhd_bridge.adapters.nhd.adapter import sender_for

        return sender_for(instance, transport=transport, sleep=sleep, resolver=resolver)

    def whole_uuid(ctx: click.Context, _param: click.Parameter, text: str) -> str:
        # `agreements list` prints whole uuids, but the start of one is easier to type.
        return _whole_agreement_uuid(load_config(ctx), text)

    @click.group(name="agreements")
    def agreements() -> None:
        """Agreements with native NHD partners: invite, accept, decline, deactivate."""

    @agreements.command(name="list")
    @click.pass_context
    def list_command(ctx: click.Context) -> None:
        """Every agreement we sent or received, with its status."""
        config = load_config(ctx)
        with _wire(config) as wire:
            found = _all_agreements(wire)
            bindings = wire.bindings()
        if not found:
            click.echo(
                "no agreements yet: invite a partner with `nhd-bridge agreements invite`, or "
                "wait for a partner's invite to arrive at `nhd-bridge serve`"
            )
            return
        for agreement in found:
            instance = _instance_label(config, bindings, agreement.uuid) or "-"
            click.echo(
                f"{agreement.uuid}  {agreement.status:<8}  we are {agreement.our_role:<8}  "
                f"partner {agreement.partner_url}  {_partner_name(agreement)}  "
                f"instance {instance}"
            )

    @agreements.command()
    @click.argument("uuid", callback=whole_uuid)
    @click.pass_context
    def show(ctx: click.Context, uuid: str) -> None:
        """One agreement in full (the access key stays hidden)."""
        config = load_config(ctx)
        with _wire(config) as wire:
            agreement = _known(wire, uuid)
            bindings = wire.bindings()
        lines = [
            ("uuid", agreement.uuid),
            ("status", agreement.status),
            ("we are", agreement.our_role),
            ("sender name", agreement.name or "-"),
            ("receiver name", agreement.receiver_name or "-"),
            ("sender_url", agreement.sender_url),
            ("receiver_url", agreement.receiver_url),
            ("deactivated_by", agreement.deactivated_by or "-"),
            (
                "delegation",
                "full (public comments allowed)"
                if agreement.allows_public_comments
                else "partial (the receiver's comments are private; status stays put)",
            ),
            ("sync_tags", str(agreement.sync_tags).lower()),
            ("sync_custom_fields", str(agreement.sync_custom_fields).lower()),
            ("access_key", "*** (hidden)"),
            (
                "instance",
                _instance_label(config, bindings, agreement.uuid)
                or "- (accept or invite with --instance NAME binds one)",
            ),
        ]
        for key, value in lines:
            click.echo(f"{key}: {value}")

    @agreements.command()
    @click.option("--instance", "instance_name", required=True, help="The kind: nhd instance.")
    @click.option("--name", "org", required=True, help="Our organisation, as the partner sees it.")
    @click.option(
        "--full/--partial",
        default=True,
        show_default=True,
        help="Full delegation lets the partner write public comments and move the status.",
    )
    @click.option("--sync-tags", is_flag=True, help="Exchange tags.")
    @click.option("--sync-custom-fields", is_flag=True, help="Exchange custom fields.")
    @click.pass_context
    def invite(
        ctx: click.Context,
        instance_name: str,
        org: str,
        full: bool,
        sync_tags: bool,
        sync_custom_fields: bool,
    ) -> None:
        """Invite the instance's partner to an agreement where we share tickets with it."""
        from nhd_bridge.core.protocol.invites import new_invite
        from nhd_bridge.core.protocol.sender import SenderError

        config = load_config(ctx)
        instance = _nhd_instance(config, instance_name)
        offer = new_invite(
            name=org,
            our_url=instance.our_url,
            partner_url=instance.partner_url,
            allows_public_comments=full,
            sync_tags=sync_tags,
            sync_custom_fields=sync_custom_fields,
        )
        with _wire(config) as wire, sender(instance) as client:
            held = instance.agreement or wire.bound_agreement(instance_name)
            bound = wire.get_agreement(held) if held else None
            if bound is not None and bound.status in {"pending", "accepted"}:
                raise AgreementUsageError(
                    f"instance {instance_name} is bound to agreement {bound.uuid} "
                    f"({bound.status}); one nhd instance holds one agreement: deactivate it "
                    "first, or add another nhd instance"
                )
            # Stored first, so that a partner accepting at once finds it; removed on failure.
            wire.create_outgoing_agreement(offer)
            try:
                result = client.invite(instance.partner_url, offer)
            except SenderError as error:
                _forget(wire, offer.uuid)
                raise AgreementUsageError(f"{error}; nothing was kept") from None
            except BaseException:
                _forget(wire, offer.uuid)
                raise
            if not result.ok:
                _forget(wire, offer.uuid)
                raise PartnerFailure(f"{result.message}; the invite was not kept")
            _bind(wire, config, instance_name, offer.uuid)
        click.echo(f"invited {instance.partner_url}: agreement {offer.uuid} is pending")
        click.echo("it syncs once the partner accepts (`nhd-bridge agreements list` shows it)")

    def answer(ctx: click.Context, uuid: str, status: str, name: str | None, via: str | None):
        config = load_config(ctx)
        with _wire(config) as wire:
            agreement = _known(wire, uuid)
            if agreement.our_role != "receiver":
                raise AgreementUsageError(
                    f"agreement {uuid} is our own invite; only the partner can {_verb(status)} it"
                )
            _allowed(agreement, status, actor="receiver")
            instance = _instance_for(config, agreement, via)
            target = _binding_target(config, wire, agreement, via) if status == "accepted" else None
            with sender(instance) as client:
                call = client.accept if status == "accepted" else client.decline
                _told(lambda: call(agreement.partner_url, agreement, name=name))
            wire.set_status(uuid, status)
            click.echo(f"{status} agreement {uuid} from {agreement.partner_url}")
            if target is not None:
                _bind(wire, config, target, uuid)
            elif status == "accepted" and _bound_instance(config, uuid) is None:
                click.echo(
                    "not bound to an nhd instance: several could take it; run again with "
                    f"--instance NAME, or set agreement: {uuid} in the instance's YAML"
                )

    @agreements.command()
    @click.argument("uuid", callback=whole_uuid)
    @click.option("--name", default=None, help="Our organisation, as the partner sees it.")
    @click.option("--instance", "via", default=None, help="The nhd instance for this partner.")
    @click.pass_context
    def accept(ctx: click.Context, uuid: str, name: str | None, via: str | None) -> None:
        """Accept a partner's invite: it may then share tickets with us."""
        answer(ctx, uuid, "accepted", name, via)

    @agreements.command()
    @click.argument("uuid", callback=whole_uuid)
    @click.option("--name", default=None, help="Our organisation, as the partner sees it.")
    @click.option("--instance", "via", default=None, help="The nhd instance for this partner.")
    @click.pass_context
    def decline(ctx: click.Context, uuid: str, name: str | None, via: str | None) -> None:
        """Decline a partner's invite; it can never be used."""
        answer(ctx, uuid, "declined", name, via)

    @agreements.command()
    @click.argument("uuid", callback=whole_uuid)
    @click.option("--instance", "via", default=None, help="The nhd instance for this partner.")
    @click.pass_context
    def deactivate(ctx: click.Context, uuid: str, via: str | None) -> None:
        """End an agreement (or withdraw our pending invite); the copies of tickets stay."""
        config = load_config(ctx)
        with _wire(config) as wire:
            agreement = _known(wire, uuid)
            _allowed(agreement, "inactive", actor=agreement.our_role)
            instance = _instance_for(config, agreement, via)
            with sender(instance) as client:
                _told(
                    lambda: client.deactivate(
                        agreement.partner_url, agreement, role=agreement.our_role
                    )
                )
            wire.set_status(uuid, "inactive")
        click.echo(
            f"deactivated agreement {uuid}: nothing more syncs under it; a new agreement is "
            "needed to share again"
        )

    return agreements


# --- helpers ------------------------------------------------------------------------------------


@contextmanager
def _wire(config: LoadedConfig) -> Iterator[WireStore]:
    from nhd_bridge.core.protocol.wire_store import WireStore
    from nhd_bridge.core.state import StateStore

    state = StateStore(config.state_url)
    try:
        yield WireStore(state)
    finally:
        state.close()


def _whole_agreement_uuid(config: LoadedConfig, text: str) -> str:
    from nhd_bridge.core.short_uuids import AmbiguousUuid, expand_agreement_uuid
    from nhd_bridge.core.state import StateStore

    store = StateStore(config.state_url)
    try:
        return expand_agreement_uuid(store, text)
    except AmbiguousUuid as error:
        raise AgreementUsageError(str(error)) from None
    finally:
        store.close()


def _all_agreements(wire: WireStore) -> list[WireAgreement]:
    return wire.list_agreements()


def _forget(wire: WireStore, uuid: str) -> None:
    """Roll back an invite the partner never took (RT behaviour); it has no tickets yet."""
    wire.discard_pending_invite(uuid)


def _known(wire: WireStore, uuid: str) -> WireAgreement:
    agreement = wire.get_agreement(uuid)
    if agreement is None:
        raise AgreementUsageError(
            f"agreement {uuid} is unknown; `nhd-bridge agreements list` shows the known ones"
        )
    return agreement


def _allowed(agreement: WireAgreement, status: str, *, actor: Any) -> None:
    from nhd_bridge.core.protocol.rules import RuleViolation, check_transition

    try:
        check_transition(
            agreement.status,
            status,
            actor=actor,
            requested_deactivated_by=actor if status == "inactive" else None,
            stored_deactivated_by=agreement.deactivated_by,
            allow_reactivation=False,
        )
    except RuleViolation as error:
        raise AgreementUsageError(
            f"agreement {agreement.uuid} is {agreement.status}: {error}"
        ) from None


def _told(call: Callable[[], SendResult]) -> None:
    from nhd_bridge.core.protocol.sender import SenderError

    try:
        result = call()
    except SenderError as error:
        raise AgreementUsageError(f"{error}; nothing changed") from None
    if not result.ok:
        raise PartnerFailure(f"{result.message}; nothing changed here")


def _nhd_instances(config: LoadedConfig) -> dict[str, NhdConfig]:
    from nhd_bridge.adapters.nhd.adapter import NhdConfig

    return {
        name: options
        for name, options in config.adapter_configs.items()
        if isinstance(options, NhdConfig)
    }


def _nhd_instance(config: LoadedConfig, name: str) -> NhdConfig:
    instances = _nhd_instances(config)
    if name not in instances:
        known = ", ".join(sorted(instances)) or "none"
        raise AgreementUsageError(f"{name!r} is not a kind: nhd instance; nhd instances: {known}")
    return instances[name]


def _bound_instance(config: LoadedConfig, uuid: str) -> str | None:
    for name, options in _nhd_instances(config).items():
        if options.agreement == uuid:
            return name
    return None


def _instance_label(config: LoadedConfig, bindings: dict[str, str], uuid: str) -> str | None:
    """The instance holding an agreement: pinned in the YAML, or bound in the state store (a
    binding counts only for an instance the YAML does not pin to another agreement)."""
    pinned = _bound_instance(config, uuid)
    if pinned is not None:
        return f"{pinned} (yaml)"
    bound = bindings.get(uuid)
    instances = _nhd_instances(config)
    if bound is not None and bound in instances and instances[bound].agreement is None:
        return f"{bound} (bound)"
    return None


def _bind(wire: WireStore, config: LoadedConfig, instance: str, uuid: str) -> None:
    """Record which instance holds the agreement; a YAML pin to another agreement wins."""
    wire.bind(instance, uuid)
    pinned = _nhd_instances(config)[instance].agreement
    if pinned is not None and pinned != uuid:
        click.echo(
            f"instance {instance} pins agreement {pinned} in the YAML, which wins: set "
            f"agreement: {uuid} there (or remove the line) to use this one"
        )
    else:
        click.echo(
            f"bound to nhd instance {instance}; a running serve uses it at once (to pin it in "
            f"the YAML instead: instances.{instance}.agreement: {uuid})"
        )


def _binding_target(
    config: LoadedConfig, wire: WireStore, agreement: WireAgreement, name: str | None
) -> str | None:
    """The instance a partner's invite we accept belongs to: the one named, the one the YAML
    pins to it, else the only free nhd instance for its partner URL that the YAML has share
    with us (an agreement's sender, or in no agreement yet); None when that is ambiguous."""
    from nhd_bridge.core.protocol.rules import same_base_url

    if name is not None:
        return name
    pinned = _bound_instance(config, agreement.uuid)
    if pinned is not None:
        return pinned
    receivers = {a.receiver for a in config.bridge.agreements.values()}
    candidates = [
        instance
        for instance, options in _nhd_instances(config).items()
        if same_base_url(options.partner_url, agreement.partner_url)
        and options.agreement is None
        and instance not in receivers
        and not _holds_live_agreement(wire, instance)
    ]
    return candidates[0] if len(candidates) == 1 else None


def _holds_live_agreement(wire: WireStore, instance: str) -> bool:
    held = wire.bound_agreement(instance)
    found = wire.get_agreement(held) if held else None
    return found is not None and found.status in {"pending", "accepted"}


def _instance_for(config: LoadedConfig, agreement: WireAgreement, name: str | None) -> NhdConfig:
    """The nhd instance whose URL policy governs calls about this agreement: the one named, the
    one bound to it, or the one configured for its partner URL. An invite names any URL it likes,
    so calling it without such an instance would let any invite aim us anywhere."""
    from nhd_bridge.core.protocol.rules import same_base_url

    if name is not None:
        return _nhd_instance(config, name)
    instances = _nhd_instances(config)
    bound = _bound_instance(config, agreement.uuid)
    if bound is not None:
        return instances[bound]
    for options in instances.values():
        if same_base_url(options.partner_url, agreement.partner_url):
            return options
    raise AgreementUsageError(
        f"no kind: nhd instance has partner_url {agreement.partner_url}; add one (partner_url, "
        "our_url, and agreement: once accepted) or pass --instance NAME"
    )


def _partner_name(agreement: WireAgreement) -> str:
    name = agreement.name if agreement.our_role == "receiver" else agreement.receiver_name
    return repr(name) if name else "(unnamed)"


def _verb(status: str) -> str:
    return {"accepted": "accept", "declined": "decline"}.get(status, status)
