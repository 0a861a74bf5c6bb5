"""The ``nhd-bridge`` command line (click + rich).

Exit codes: 0 everything synced; 1 the run finished but some tickets were parked or a side could
not be read; 2 bad configuration or usage; 130 a sync stopped by Ctrl-C (after saying what it
did).
"""

from __future__ import annotations

import json
import signal
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

# Everything else is imported where it is used: importing this module must not pay for SQLAlchemy,
# httpx, rich or any tracker's code (tests/test_cli_operators.py holds it to that). Commands of
# plugins (`local` and `agreements`, from the local and NHD plugins, among them) join through the
# nhd_register_commands hook, loaded only when a command not built in is asked for or listed.
if TYPE_CHECKING:
    from rich.table import Table

    from nhd_bridge.core.config import LoadedConfig
    from nhd_bridge.core.engine import Progress, SyncEngine
    from nhd_bridge.core.plugins import Plugins
    from nhd_bridge.core.run import RunSummary
    from nhd_bridge.core.state import JournalEntry, StateStore
    from nhd_bridge.core.terminal import SafeConsole

EXIT_OK, EXIT_PARKED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 128 + signal.SIGINT  # 130, as shells report a Ctrl-C
# The same as nhd_bridge.core.config.DEFAULT_CONFIG_FILE, which --help must not import.
DEFAULT_CONFIG_FILE = "nhd-bridge.yaml"


def _console(*, stderr: bool = False) -> SafeConsole:
    """A console for this invocation's streams and environment (NO_COLOR, FORCE_COLOR...). Piped,
    a line is never wrapped at the 80 columns rich assumes: scripts and logs get it whole."""
    from nhd_bridge.core.terminal import SafeConsole

    made = SafeConsole(stderr=stderr)
    if not made.is_terminal:
        made.soft_wrap = True
    return made


class _ConsoleOf:
    """``console.print(...)``: the console of the stream as it is at the time of the call."""

    def __init__(self, *, stderr: bool = False):
        self._stderr = stderr

    def __getattr__(self, name: str) -> Any:
        return getattr(_console(stderr=self._stderr), name)


console = _ConsoleOf()
errors = _ConsoleOf(stderr=True)


class UsageFailure(click.ClickException):
    """A one-line error for the person at the terminal; exits 2."""

    exit_code = EXIT_USAGE

    def show(self, file: Any = None) -> None:
        from nhd_bridge.core.terminal import neutralise

        click.echo(neutralise(f"error: {self.message}"), err=True)


class _Commands(click.Group):
    """The built-in commands, and those plugins add through ``nhd_register_commands``. Every
    command: a state store that cannot be opened is one line and exit 2."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        # A built-in command needs no plugin loaded, and no plugin can take its name.
        return self.commands.get(cmd_name) or _plugin_commands(ctx).get(cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *_plugin_commands(ctx)})

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as error:
            # Only a loaded state store raises StateStoreError; importing it to ask would cost
            # `nhd-bridge sync --help` (click's Exit passes here) all of SQLAlchemy.
            state = sys.modules.get("nhd_bridge.core.state")
            if state is not None and isinstance(error, state.StateStoreError):
                raise UsageFailure(str(error)) from None
            raise


def _plugin_commands(ctx: click.Context) -> dict[str, click.Command]:
    """The commands installed plugins add (entry points, group ``nhd_bridge``), gathered once per
    invocation: loading plugins imports every tracker's code, which only these commands pay for."""
    root = ctx.find_root()
    found: dict[str, click.Command] | None = root.meta.get(_PLUGIN_COMMANDS_KEY)
    if found is None:
        from nhd_bridge.core.plugins import Plugins

        collected = click.Group(name=root.info_name)
        Plugins().register_commands(collected)
        found = root.meta[_PLUGIN_COMMANDS_KEY] = dict(collected.commands)
    return found


_PLUGIN_COMMANDS_KEY = "nhd_bridge.plugin_commands"


@click.group(cls=_Commands)
@click.option(
    "-c",
    "--config",
    "config_path",
    envvar="NHD_BRIDGE_CONFIG",
    default=DEFAULT_CONFIG_FILE,
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The bridge configuration (YAML).",
)
@click.option(
    "--log-level",
    envvar="NHD_BRIDGE_LOG_LEVEL",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default=None,
    help="What sync and serve log (default: WARNING for sync, INFO for serve).",
)
@click.option(
    "--log-format",
    envvar="NHD_BRIDGE_LOG_FORMAT",
    type=click.Choice(["text", "json"], case_sensitive=False),
    default="text",
    show_default=True,
    help="Log lines as text, or as JSON objects (time, level, logger, message, exc_info).",
)
@click.version_option(package_name="nhd-bridge")
@click.pass_context
def main(ctx: click.Context, config_path: Path, log_level: str | None, log_format: str) -> None:
    """Share tickets between trackers, help desks and CRMs (Networked Help Desk)."""
    ctx.obj = {"config_path": config_path, "log_level": log_level, "log_format": log_format}
    # Tickets, names and errors come from partners: none of it may drive the terminal.
    from nhd_bridge.core.terminal import neutralised_output  # loads rich: not for --help

    ctx.with_resource(neutralised_output())


def load(ctx: click.Context) -> LoadedConfig:
    """The configuration the command line was given (``-c``); a broken one is one line, exit 2.
    Commands of plugins use it too."""
    from nhd_bridge.core.config import ConfigError
    from nhd_bridge.core.config import load_config as _load_config

    try:
        return _load_config(ctx.obj["config_path"])
    except ConfigError as error:
        raise UsageFailure(str(error)) from None


@contextmanager
def engine_for(config: LoadedConfig, progress: Progress | None = None) -> Iterator[SyncEngine]:
    from nhd_bridge.core.engine import SyncEngine
    from nhd_bridge.core.state import StateStore

    store = StateStore(config.state_url)
    engine = SyncEngine(config, store, progress=progress)
    try:
        yield engine
    finally:
        engine.close()
        store.close()


# --- configuration -------------------------------------------------------------------------------


@main.command()
@click.option("--show", is_flag=True, help="Print the configuration as loaded, secrets redacted.")
@click.pass_context
def validate(ctx: click.Context, show: bool) -> None:
    """Check the configuration without contacting any tracker."""
    from nhd_bridge.core.redaction import redact_document
    from nhd_bridge.core.state import check_store
    from nhd_bridge.core.state.opening import stored_bindings

    config = load(ctx)
    if show:
        document = config.bridge.model_dump(mode="json")
        for name, adapter_config in config.adapter_configs.items():
            document["instances"][name].update(redact_document(adapter_config.model_dump()))
        # An agreement accepted or invited through the CLI is bound in the store, not the YAML.
        for name, uuid in stored_bindings(config.state_url).items():
            shown = document["instances"].get(name)
            if shown is not None and not shown.get("agreement"):
                shown["agreement"] = uuid
                shown["agreement_from"] = "state store (bound by agreements accept/invite)"
        # Only the document on stdout, so that `validate --show > loaded.json` is valid JSON.
        click.echo(json.dumps(redact_document(document), indent=2, default=str))
    bridge = config.bridge
    problems = config.problems()
    for problem in problems:
        click.echo(
            f"{'' if problem.level == 'warning' else 'error: '}{problem.error(config)}", err=True
        )
    if any(problem.level == "error" for problem in problems):
        sys.exit(EXIT_USAGE)
    store = check_store(config.state_url)
    click.echo(
        f"{config.file}: ok — {len(bridge.instances)} instances, "
        f"{len(bridge.agreements)} agreements",
        err=show,
    )
    click.echo(f"state store: {store}", err=show)


@main.command()
@click.pass_context
def schema(ctx: click.Context) -> None:
    """Print the JSON Schema of the configuration file, for editors."""
    from nhd_bridge.core.config import json_schema

    click.echo(json.dumps(json_schema(_plugins(ctx)), indent=2))


@main.command()
@click.pass_context
def adapters(ctx: click.Context) -> None:
    """List the adapter kinds that are installed (and those of the config's plugins: list)."""
    from rich.table import Table

    plugins = _plugins(ctx)
    table = Table("kind", "adapter", "module", title="adapters")
    lines = []
    for kind, adapter_class in sorted(plugins.adapters().items()):
        table.add_row(kind, adapter_class.__name__, adapter_class.__module__)
        lines.append(f"{kind}\t{adapter_class.__module__}.{adapter_class.__name__}")
    for missing in plugins.unavailable:
        table.add_row(missing.name, "[red]unavailable[/red]", missing.reason)
        lines.append(f"{missing.name}\tunavailable: {missing.reason}")
    _print(table, lines)


def _plugins(ctx: click.Context) -> Plugins:
    """Installed plugins, plus the config's ``plugins:`` modules when there is a config file."""
    import yaml

    from nhd_bridge.core.plugins import PluginError, Plugins

    plugins = Plugins()
    path: Path = ctx.obj["config_path"]
    if not path.exists():
        return plugins
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        return plugins  # `validate` is where a broken file gets its full explanation
    modules = document.get("plugins") if isinstance(document, dict) else None
    for index, module in enumerate(modules if isinstance(modules, list) else []):
        try:
            plugins.load_module(str(module))
        except PluginError as error:
            raise UsageFailure(f"{path}: plugins[{index}]: {error}") from None
    return plugins


@main.command()
@click.option("--instance", "instances", multiple=True, help="Only this instance (repeatable).")
@click.pass_context
def check(ctx: click.Context, instances: tuple[str, ...]) -> None:
    """Preflight every instance: credentials, permissions, what the adapter needs."""
    from nhd_bridge.core.adapter import AdapterError

    config = load(ctx)
    failed = False
    with engine_for(config) as engine:
        for name in instances or tuple(config.bridge.instances):
            require_instance(config, name)
            try:
                results = engine.adapter(name).check()
            except AdapterError as error:
                click.echo(f"{name}: FAILED {error}")
                failed = True
                continue
            if not results:
                click.echo(f"{name}: ok (no checks declared)")
            for result in results:
                mark = "ok" if result.ok else ("WARN" if result.level == "warning" else "FAILED")
                hint = f" — {result.hint}" if result.hint and not result.ok else ""
                click.echo(f"{name}: {mark} {result.name}: {result.detail}{hint}")
                failed |= not result.ok and result.level == "error"
    sys.exit(EXIT_PARKED if failed else EXIT_OK)


# --- running -------------------------------------------------------------------------------------


@main.command()
@click.option("--agreement", "names", multiple=True, help="Only this agreement (repeatable).")
@click.option("--dry-run", is_flag=True, help="Plan and report; write nothing anywhere.")
@click.option("--once", is_flag=True, help="One pass (the default; for cron and CronJobs).")
@click.option("--debug", is_flag=True, help="Print the traceback of a run that fails.")
@click.pass_context
def sync(
    ctx: click.Context, names: tuple[str, ...], dry_run: bool, once: bool, debug: bool
) -> None:
    """Run one pass of every agreement (or the ones named). Ctrl-C stops after the ticket being
    written (a second Ctrl-C at once) and exits 130 with what was done."""
    config = load(ctx)
    selected = _agreements(config, names)
    _log_as_asked(ctx, default_level="WARNING")
    summaries: list[RunSummary] = []
    running: str | None = None
    try:
        with (
            _progress_bar() as progress,
            engine_for(config, progress) as engine,
            _stop_on_ctrl_c(engine) as interrupted,
        ):
            for name in selected:
                running = name
                summaries.append(_run_one(engine, name, dry_run, debug=debug))
                running = None
                if interrupted():
                    break
    except KeyboardInterrupt:
        _print_summaries(summaries)
        _report_interrupt(summaries, selected, cut_short=running)
        sys.exit(EXIT_INTERRUPTED)
    _print_summaries(summaries)
    if interrupted():
        _report_interrupt(summaries, selected, cut_short=None)
        sys.exit(EXIT_INTERRUPTED)
    parked = any(summary.parked or summary.still_parked or summary.errors for summary in summaries)
    sys.exit(EXIT_PARKED if parked else EXIT_OK)


@main.command()
@click.option("--host", default=None, help="Listen address (default: server.host, 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (default: server.port, 8080).")
@click.option("--once", is_flag=True, help="Run every agreement once and exit, as cron would.")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, once: bool) -> None:
    """Serve the NHD receiver and run every agreement on its schedule, until SIGTERM."""
    if once:
        ctx.invoke(sync)
        return
    config = load(ctx)
    try:
        from nhd_bridge.serve import serve as run_server
    except ImportError as error:
        from nhd_bridge.core.extras import EXTRA_OF_MODULE, missing_extra

        if EXTRA_OF_MODULE.get((error.name or "").split(".")[0]) != "server":
            raise  # not a missing extra: a bug, with its traceback
        raise UsageFailure(missing_extra(error, "serve", extra="server")) from None
    _log_as_asked(ctx, default_level="INFO")
    run_server(config, host=host, port=port)


@main.command()
@click.option("--agreement", "names", multiple=True, help="Only this agreement (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def plan(ctx: click.Context, names: tuple[str, ...], as_json: bool) -> None:
    """Show what the next run would write. Nothing is written."""
    from nhd_bridge.core.engine import AgreementRefused

    config = load(ctx)
    planned: list[dict[str, Any]] = []
    unread: list[str] = []
    with engine_for(config) as engine:
        for name in _agreements(config, names):
            try:
                summary, items = engine.plan(name)
            except AgreementRefused as error:
                raise UsageFailure(str(error)) from None
            planned += _described(name, items)
            unread += [f"{name}: {error}" for error in summary.errors]
    # What could not be read is never "in sync": it is said, and the exit code is 1.
    for error in unread:
        click.echo(f"error: {error}", err=True)
    if as_json:
        for entry in planned:
            del entry["described"]
        click.echo(json.dumps(planned, indent=2, default=str))
    elif planned:
        for entry in planned:
            click.echo(f"{entry['agreement']}: ticket {entry['shared_uuid'][:12]}")
            for action in entry["described"]:
                click.echo(f"  - {action}")
    elif not unread:
        click.echo("nothing to do: every shared ticket is in sync")
    if unread:
        sys.exit(EXIT_PARKED)


@main.command(name="log")
@click.option("--agreement", default=None, help="Only this agreement.")
@click.option("--ticket", default=None, help="Only this shared ticket uuid (or its start).")
@click.option("--failed", is_flag=True, help="Only failures.")
@click.option("-n", "--limit", default=50, show_default=True, help="Newest entries to show.")
@click.pass_context
def log_command(
    ctx: click.Context, agreement: str | None, ticket: str | None, failed: bool, limit: int
) -> None:
    """Show the journal: every write, skip, conflict and failure, with its reason."""
    from nhd_bridge.core.state import StateStore

    config = load(ctx)
    store = StateStore(config.state_url)
    try:
        entries = store.read().journal(
            agreement=agreement,
            shared_uuid=_full_uuid(store, ticket) if ticket else None,
            outcome="failed" if failed else None,
            limit=limit,
        )
        parked = store.read().parked(agreement)
    finally:
        store.close()
    _print_journal(entries)
    if parked:
        click.echo(f"\n{len(parked)} parked:")
        for row in parked:
            click.echo(
                f"  {row.agreement} {row.instance}:{row.local_id} attempt {row.attempts}, "
                f"next {row.next_attempt_at:%Y-%m-%d %H:%M:%S} UTC — {row.error}"
            )


@main.command()
@click.argument("ticket")
@click.pass_context
def explain(ctx: click.Context, ticket: str) -> None:
    """Why TICKET did or did not sync. TICKET is INSTANCE:LOCAL_ID or a shared uuid."""
    from nhd_bridge.core.state import StateStore

    config = load(ctx)
    store = StateStore(config.state_url)
    try:
        _explain(config, store, ticket)
    finally:
        store.close()


@main.command()
@click.option("--agreement", "names", multiple=True, help="Only this agreement (repeatable).")
@click.option("--repair", is_flag=True, help="Fix in the state store what can be fixed there.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def doctor(ctx: click.Context, names: tuple[str, ...], repair: bool, as_json: bool) -> None:
    """Compare the state store with the trackers: pending and orphan links, duplicate copies,
    unlinked comments. Reads every ticket; changes no ticket. Exit 1 while findings remain."""
    from dataclasses import asdict

    from nhd_bridge.core.doctor import Doctor, describe

    config = load(ctx)
    selected = _agreements(config, names)
    with engine_for(config) as engine:
        examiner = Doctor(config, engine.store, engine.adapter, engine.sharing_url)
        findings = examiner.examine(selected)
        fixed = {done.key: done for done in (examiner.repair(findings) if repair else [])}
    outcome = [(finding, fixed.get(finding.key)) for finding in findings]
    unrepaired = [finding for finding, done in outcome if done is None]
    for_a_person = [finding for finding in findings if finding.needs_a_person]
    if as_json:
        entries = [
            {**asdict(finding), "repaired": done is not None, "done": done and done.detail}
            for finding, done in outcome
        ]
        click.echo(json.dumps({"findings": entries, "errors": examiner.errors}, indent=2))
    else:
        for finding, done in outcome:
            click.echo(describe(finding) if done is None else describe(done, repaired=True))
        for error in examiner.errors:
            click.echo(f"error: {error}", err=True)
        click.echo(_doctor_summary(len(findings), len(fixed), unrepaired, for_a_person, repair))
    left = unrepaired or for_a_person or examiner.errors
    sys.exit(EXIT_PARKED if left else EXIT_OK)


def _doctor_summary(
    found: int, repaired: int, unrepaired: list[Any], for_a_person: list[Any], repair: bool
) -> str:
    if not found:
        return "no findings: the state store and the trackers agree"
    parts = [f"{found} finding{'' if found == 1 else 's'}", f"{repaired} repaired"]
    repairable = sum(1 for finding in unrepaired if finding.repairable)
    if repairable:
        parts.append(f"{repairable} " + ("not repaired" if repair else "repairable with --repair"))
    if for_a_person:
        parts.append(f"{len(for_a_person)} with duplicates for a person to delete in a tracker")
    return ", ".join(parts)


@main.command()
@click.argument("ticket")
@click.option("--agreement", required=True, help="The agreement to stop sharing it under.")
@click.pass_context
def unshare(ctx: click.Context, ticket: str, agreement: str) -> None:
    """Stop syncing TICKET (INSTANCE:LOCAL_ID, or a shared uuid or its start) under an
    agreement; both copies stay."""
    config = load(ctx)
    _agreements(config, (agreement,))
    if ":" in ticket:
        instance, local_id = ticket.split(":", 1)
        require_instance(config, instance)
    with engine_for(config) as engine:
        if ":" not in ticket:
            instance, local_id = _copy_under(config, engine.store, agreement, ticket)
        try:
            shared_uuid = engine.unshare(agreement, instance, local_id)
        except LookupError as error:
            raise UsageFailure(str(error)) from None
    click.echo(f"{ticket} ({shared_uuid}) is no longer synced under {agreement}; copies are kept")


@main.command(name="reset-cursor")
@click.option("--instance", required=True, help="Read this instance's tickets from the start.")
@click.option("--agreement", "names", multiple=True, help="Only this agreement (repeatable).")
@click.pass_context
def reset_cursor(ctx: click.Context, instance: str, names: tuple[str, ...]) -> None:
    """Make the next run read every ticket of an instance again (after a restore, say).

    Safe: tickets that did not change are recognised from their snapshots and not written."""
    from nhd_bridge.core.state import StateStore

    config = load(ctx)
    require_instance(config, instance)
    selected = [
        name
        for name in _agreements(config, names)
        if instance
        in (config.bridge.agreements[name].sender, config.bridge.agreements[name].receiver)
    ]
    store = StateStore(config.state_url)
    try:
        with store.transaction() as tx:
            for name in selected:
                tx.put_cursor(name, instance, None)
    finally:
        store.close()
    click.echo(f"{instance}: cursor reset for {', '.join(selected) or 'no agreement'}")


# --- helpers -------------------------------------------------------------------------------------


def _log_as_asked(ctx: click.Context, *, default_level: str) -> None:
    """Log as --log-level/--log-format say until the command ends (secrets redacted)."""
    from nhd_bridge.core.logging_setup import configured_logging

    options = ctx.find_root().obj
    level = options.get("log_level") or default_level
    ctx.with_resource(configured_logging(level, options.get("log_format", "text").lower()))


@contextmanager
def _stop_on_ctrl_c(engine: SyncEngine) -> Iterator[Callable[[], bool]]:
    """The first Ctrl-C asks the run to stop after the ticket being written, so that what was
    done is recorded and summarised; a second one interrupts at once."""
    import threading

    asked: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False  # signals reach the main thread only
        return

    def on_interrupt(number: int, frame: Any) -> None:
        if asked:
            raise KeyboardInterrupt
        asked.append(number)
        engine.request_stop()
        click.echo(
            "\ninterrupted: stopping after the ticket being written (Ctrl-C again: at once)",
            err=True,
        )

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield lambda: bool(asked)
    finally:
        signal.signal(signal.SIGINT, previous)


def _report_interrupt(
    summaries: list[RunSummary], selected: list[str], *, cut_short: str | None
) -> None:
    done = [summary.agreement for summary in summaries]
    lines = [f"interrupted: {len(done)} of {len(selected)} agreements ran"]
    if cut_short is not None:
        lines.append(
            f"{cut_short} was interrupted while writing; what it wrote is in the journal "
            f"(nhd-bridge log --agreement {cut_short})"
        )
    not_run = [name for name in selected if name not in done and name != cut_short]
    if not_run:
        lines.append(f"not run: {', '.join(not_run)}")
    lines.append("the next sync goes on from where this one stopped")
    for line in lines:
        click.echo(line, err=True)


def _run_one(engine: SyncEngine, name: str, dry_run: bool, *, debug: bool = False) -> RunSummary:
    from nhd_bridge.core.engine import AgreementBusy, AgreementRefused
    from nhd_bridge.core.redaction import redact
    from nhd_bridge.core.run import RunSummary

    if not console.is_terminal:
        click.echo(f"syncing {name}{' (dry run)' if dry_run else ''}")
    try:
        return engine.run(name, dry_run=dry_run)
    except AgreementRefused as error:
        raise UsageFailure(str(error)) from None
    except AgreementBusy as error:
        summary = RunSummary(agreement=name, run_id="-")
        summary.errors.append(str(error))
        return summary
    except Exception as error:  # one line per failure; the other agreements still run
        if debug:
            traceback.print_exc()
        summary = RunSummary(agreement=name, run_id="-")
        summary.failure = f"agreement {name} failed: {type(error).__name__}: {error}"
        summary.errors.append(summary.failure + ("" if debug else " (--debug shows where)"))
        click.echo(redact(f"error: {summary.errors[-1]}"), err=True)
        return summary


@contextmanager
def _progress_bar() -> Iterator[Progress | None]:
    """A live bar per agreement and phase on a terminal; nothing when output is piped."""
    if not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    tasks: dict[tuple[str, str], TaskID] = {}
    with RichProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=_console(),
        transient=True,
    ) as bar:

        def report(agreement: str, phase: str, done: int, total: int | None) -> None:
            key = (agreement, phase)
            if key not in tasks:
                tasks[key] = bar.add_task(f"{agreement}: {phase}", total=total)
            bar.update(tasks[key], completed=done, total=total)

        yield report


def _agreements(config: LoadedConfig, names: tuple[str, ...]) -> list[str]:
    known = config.bridge.agreements
    for name in names:
        if name not in known:
            raise UsageFailure(
                f"unknown agreement {name!r}; agreements in {config.file}: "
                f"{', '.join(known) or 'none'}"
            )
    return list(names or known)


def require_instance(config: LoadedConfig, name: str) -> None:
    """Refuse (exit 2, naming the instances there are) an instance the configuration lacks."""
    if name not in config.bridge.instances:
        raise UsageFailure(
            f"unknown instance {name!r}; instances in {config.file}: "
            f"{', '.join(config.bridge.instances)}"
        )


def _print_summaries(summaries: list[RunSummary]) -> None:
    from rich.table import Table

    table = Table("agreement", "seen", "writes", "skipped", "conflicts", "parked", title="sync")
    lines = []
    for summary in summaries:
        writes = ", ".join(f"{k} {v}" for k, v in sorted(summary.writes.items())) or "0"
        skipped = ", ".join(f"{k} {v}" for k, v in sorted(summary.skipped.items())) or "0"
        table.add_row(
            summary.agreement,
            str(summary.tickets_seen),
            writes,
            skipped,
            str(summary.conflicts),
            str(summary.parked),
        )
        lines.append(
            f"{summary.agreement}: seen {summary.tickets_seen}, "
            f"{'would write' if summary.dry_run else 'writes'} {summary.total_writes} "
            f"({writes}), skipped {skipped}, conflicts {summary.conflicts}, "
            f"parked {summary.parked}"
        )
    _print(table, lines)
    # A tracker's error may quote a URL with its key; each adapter registered its secrets.
    from nhd_bridge.core.redaction import redact

    for summary in summaries:
        for error in summary.errors:
            errors.print(redact(f"{summary.agreement}: {error}"), markup=False, highlight=False)


def _print_journal(entries: list[JournalEntry]) -> None:
    if not entries:
        click.echo("the journal is empty")
        return
    for entry in entries:
        at = f"{entry.at:%Y-%m-%d %H:%M:%S}" if entry.at else "-"
        where = f"{entry.source or '-'} → {entry.target or '-'}"
        what = f"{entry.action}{'.' + entry.field if entry.field else ''}"
        ticket = (entry.shared_uuid or "")[:12]
        change = ""
        if entry.before is not None or entry.after is not None:
            change = f" [{_short(entry.before)} → {_short(entry.after)}]"
        click.echo(
            f"{at} {entry.agreement} {ticket} {where} {what} {entry.outcome}{change}"
            f"{' — ' + entry.reason if entry.reason else ''}"
        )


def _explain(config: LoadedConfig, store: StateStore, ticket: str) -> None:
    read = store.read()
    if ":" in ticket:
        instance, local_id = ticket.split(":", 1)
        require_instance(config, instance)
        link = read.link_for_local(instance, local_id)
        if link is None:
            click.echo(f"{instance}:{local_id} is not shared with anyone.")
            _explain_unshared(config, instance, local_id)
            return
        shared_uuid = link.shared_uuid
    else:
        shared_uuid = _full_uuid(store, ticket)
    links = read.links(shared_uuid)
    if not links:
        click.echo(f"error: no shared ticket {shared_uuid!r} in the state store", err=True)
        sys.exit(EXIT_PARKED)
    origin = read.shared_ticket_origin(shared_uuid)
    click.echo(f"shared ticket {shared_uuid}")
    if origin:
        click.echo(f"  origin: {origin[0]} (original id {origin[1]})")
    for link in links:
        click.echo(
            f"  copy in {link.instance}: {link.local_id or '(being created)'} [{link.state}]"
        )
    for agreement, state in read.agreements_of_ticket(shared_uuid).items():
        parked = read.parked_entry(agreement, shared_uuid)
        extra = f"; parked: {parked.error}" if parked else ""
        click.echo(f"  agreement {agreement}: {state}{extra}")
    click.echo("  recent journal:")
    for entry in read.journal(shared_uuid=shared_uuid, limit=15):
        click.echo(
            f"    {entry.at:%Y-%m-%d %H:%M:%S} {entry.action} {entry.outcome} "
            f"{entry.source or '-'} → {entry.target or '-'}"
            f"{' — ' + entry.reason if entry.reason else ''}"
        )


def _full_uuid(store: StateStore, text: str) -> str:
    """A shared ticket's uuid from the uuid or its start (the 12 characters `log` prints)."""
    from nhd_bridge.core.short_uuids import AmbiguousUuid, expand_ticket_uuid

    try:
        return expand_ticket_uuid(store, text)
    except AmbiguousUuid as error:
        raise UsageFailure(str(error)) from None


def _copy_under(
    config: LoadedConfig, store: StateStore, agreement: str, ticket: str
) -> tuple[str, str]:
    """The copy (instance, local id) that a shared uuid names under an agreement: the
    sender's, else the receiver's."""
    shared_uuid = _full_uuid(store, ticket)
    terms = config.bridge.agreements[agreement]
    sides = (terms.sender, terms.receiver)
    copies = {link.instance: link.local_id for link in store.read().links(shared_uuid)}
    for instance in sides:
        local_id = copies.get(instance)
        if local_id is not None:
            return instance, local_id
    raise UsageFailure(
        f"{ticket!r}: no shared ticket of agreement {agreement} has that uuid; write the ticket "
        "as INSTANCE:LOCAL_ID (e.g. support:12) or as its shared uuid"
    )


def _explain_unshared(config: LoadedConfig, instance: str, local_id: str) -> None:
    """What a run would do with a ticket nothing carries yet: the engine's own verdict (its terms,
    as negotiated on the wire, and its share filter on the document it builds), per agreement."""
    sending = [
        name for name, agreement in config.bridge.agreements.items() if agreement.sender == instance
    ]
    if not sending:
        click.echo(f"No agreement has {instance} as sender, so its tickets are never shared.")
        return
    with engine_for(config) as engine:
        record = engine.adapter(instance).get(local_id)
        if record is None:
            click.echo(f"{instance} has no ticket {local_id}.")
            sys.exit(EXIT_PARKED)  # nothing to explain: a script must not read this as success
        for name in sending:
            verdict = engine.share_verdict(name, record)
            click.echo(f"  {verdict.agreement}: {verdict.reason}")


def _described(agreement: str, items: list[Any]) -> list[dict[str, Any]]:
    """One entry per ticket with an effect, as the planner lays out a dry run's plans."""
    from nhd_bridge.core.planner import ticket_plans

    entries = []
    for shared_uuid, plan in ticket_plans((item.shared_uuid, item.plan) for item in items):
        actions = plan.actions()
        entries.append(
            {
                "agreement": agreement,
                "shared_uuid": shared_uuid,
                "actions": [action.as_dict() for action in actions],
                "described": [action.describe() for action in actions],
            }
        )
    return entries


def _short(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "…"


def _print(table: Table, plain: list[str]) -> None:
    if console.is_terminal:
        console.print(table)
    else:
        for line in plain:
            click.echo(line)


def run() -> None:  # pragma: no cover - console entry point
    try:
        main()
    except Exception as error:
        from nhd_bridge.core.plugins import PluginError

        if not isinstance(error, PluginError):
            raise
        click.echo(f"error: {error}", err=True)
        sys.exit(EXIT_USAGE)
