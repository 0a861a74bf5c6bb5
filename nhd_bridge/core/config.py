"""The bridge configuration: YAML with ``${VAR}`` interpolation, validated by pydantic models.

A configuration names *instances* (one configured system each, with its adapter ``kind`` and that
adapter's own settings inline) and *agreements* between them. Every error is a
:class:`ConfigError` naming the file, the YAML path (and line), and how to fix it, because the
person reading it is editing that file right now.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import jmespath
import jmespath.exceptions
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from nhd_bridge.core.adapter import AdapterConfig
from nhd_bridge.core.plugins import PluginError, Plugins
from nhd_bridge.core.protocol.settings import ReceiverSettings

__all__ = [
    "AgreementConfig",
    "AttachmentPolicy",
    "BridgeConfig",
    "ConfigError",
    "ConfigProblem",
    "ConflictPolicy",
    "InstanceConfig",
    "LoadedConfig",
    "ServerConfig",
    "StateConfig",
    "json_schema",
    "load_config",
    "status_map_problems",
]

DEFAULT_CONFIG_FILE = "nhd-bridge.yaml"


class ConfigError(Exception):
    """The configuration is wrong; ``str()`` is one line naming file, YAML path and the fix."""

    def __init__(self, file: Path | str, path: str, message: str, line: int | None = None):
        self.file = str(file)
        self.path = path
        self.message = message
        self.line = line
        where = f"{self.file}:{line}" if line else self.file
        super().__init__(f"{where}: {path or '(top level)'}: {message}")


# --- the models ---------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StateConfig(_Strict):
    """Where the bridge keeps links, snapshots, cursors and the journal."""

    url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; default: a SQLite file .nhd-bridge/state.db beside the config",
    )

    @field_validator("url")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                make_url(value)
            except (ArgumentError, ValueError):
                raise ValueError(
                    "is not a database URL; write it like sqlite:///path/state.db or "
                    "postgresql+psycopg://user@host/database"
                ) from None
        return value


class ConflictPolicy(_Strict):
    """Who wins when both sides changed the same field between two runs. Tags changed on both
    sides merge as sets (no addition or removal lost) unless ``fields`` names a policy for tags."""

    default: Literal["newest", "sender", "receiver"] = "newest"
    fields: dict[str, Literal["newest", "sender", "receiver"]] = Field(
        default_factory=dict,
        description="per-field policy (subject, status, tags, a custom field's sender name); "
        "tags merge as sets unless named here",
    )

    def for_field(self, name: str) -> Literal["newest", "sender", "receiver"]:
        return self.fields.get(name, self.default)


class DirectionMap(_Strict):
    """A value map per direction: ``outbound`` (sender → receiver) and ``inbound`` (back)."""

    outbound: dict[str, str] | None = None
    inbound: dict[str, str] | None = None


class AttachmentPolicy(_Strict):
    """Which attachments are copied; the others leave a line in the comment saying why."""

    max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    allowed_types: list[str] | None = Field(
        default=None, description="MIME types, 'image/*' style wildcards; none = every type"
    )


class Schedule(_Strict):
    every: str = Field(default="5m", description="interval such as 30s, 5m, 1h")

    @field_validator("every")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def interval(self) -> timedelta:
        return parse_duration(self.every)


class AgreementConfig(_Strict):
    """One agreement: ``sender`` shares tickets with ``receiver`` (nhd-spec.md §4.1, §5)."""

    sender: str
    receiver: str
    status: Literal["pending", "accepted", "declined", "inactive"] = "accepted"
    allows_public_comments: bool = Field(
        default=True,
        description="true = full delegation; false = partial (receiver's comments arrive private, "
        "status does not sync)",
    )
    sync_tags: bool = False
    sync_custom_fields: bool = False
    share_filter: str | None = Field(
        default=None,
        description="JMESPath expression over the sender's ticket (subject, status, tags, "
        "custom_fields, requester); truthy = share. None shares every ticket.",
    )
    status_map: DirectionMap = Field(default_factory=DirectionMap)
    custom_fields: dict[str, str] = Field(
        default_factory=dict, description="sender field name → receiver field name"
    )
    conflicts: ConflictPolicy = Field(default_factory=ConflictPolicy)
    max_closes_per_run: int = Field(default=50, ge=0)
    attachments: AttachmentPolicy = Field(default_factory=AttachmentPolicy)
    schedule: Schedule = Field(default_factory=Schedule)

    @field_validator("share_filter")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                jmespath.compile(value)
            except jmespath.exceptions.JMESPathError as error:
                # jmespath's message spans lines (expression, caret); one line reads better.
                detail = " ".join(str(error).split())
                raise ValueError(f"not a valid JMESPath expression: {detail}") from None
        return value

    @model_validator(mode="after")
    def _two_sides(self) -> AgreementConfig:
        if self.sender == self.receiver:
            raise ValueError("sender and receiver must be two different instances")
        return self


class InstanceConfig(_Strict):
    """One configured system. ``options`` are the adapter's own settings, validated by it."""

    kind: str
    sharing_url: str | None = Field(
        default=None,
        description="base of the NHD uuids minted here; default "
        "nhd-bridge://<installation id>/NAME, unique to this state store",
    )
    closed_statuses: list[str] = Field(
        default_factory=lambda: ["solved", "closed"],
        description="statuses counted as closing for max_closes_per_run",
    )
    options: dict[str, Any] = Field(default_factory=dict, exclude=True)


class ServerConfig(_Strict):
    """``nhd-bridge serve``: where it listens, and the NHD receiver if partners push to us."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    receiver: ReceiverSettings | None = Field(
        default=None,
        description="Serve the NHD endpoints (base_url is our public sharing URL); leave out "
        "to run only the scheduler and /health",
    )
    unhealthy_after: str = Field(
        default="15m",
        description="/health answers 503 once an agreement's runs have been failing this long "
        "(30s, 15m, 1h)",
    )

    @field_validator("unhealthy_after")
    @classmethod
    def _duration(cls, value: str) -> str:
        parse_duration(value)
        return value


class BridgeConfig(_Strict):
    version: Literal[1] = 1
    state: StateConfig = Field(default_factory=StateConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)
    plugins: list[str] = Field(default_factory=list)
    instances: dict[str, InstanceConfig]
    agreements: dict[str, AgreementConfig] = Field(default_factory=dict)


@dataclass
class LoadedConfig:
    """A validated configuration, with each instance's adapter config built by its adapter."""

    file: Path
    bridge: BridgeConfig
    adapter_configs: dict[str, AdapterConfig]
    plugins: Plugins
    lines: dict[YamlPath, int] = field(default_factory=dict)  # YAML path -> line, for errors

    @property
    def state_url(self) -> str:
        url = self.bridge.state.url
        if url is None:
            return f"sqlite:///{self.file.parent / '.nhd-bridge' / 'state.db'}"
        return _resolve_sqlite_url(url, self.file.parent)

    def problems(self) -> list[ConfigProblem]:
        """What the engine would refuse (or ignore) once adapters say what their trackers hold;
        builds each adapter, contacts nothing."""
        statuses = {name: self.declared_statuses(name) for name in self.bridge.instances}
        return [
            problem
            for name, agreement in self.bridge.agreements.items()
            for problem in status_map_problems(
                name, agreement, statuses[agreement.sender], statuses[agreement.receiver]
            )
        ]

    def declared_statuses(self, instance: str) -> tuple[str, ...] | None:
        """The statuses an instance's adapter declares (``None``: open-ended)."""
        kind = self.bridge.instances[instance].kind
        adapter = self.plugins.adapter_class(kind)(instance, self.adapter_configs[instance])
        try:
            return adapter.capabilities.statuses
        finally:
            adapter.close()

    def sharing_url(
        self, instance: str, installation: Callable[[], str], identity: str | None = None
    ) -> str:
        """The base of the NHD uuids minted for an instance: the configured ``sharing_url``;
        else ``nhd-bridge://`` and the tracker's own identity (its URL and project, or an id it
        keeps), which neither a lost state store nor another installation changes; else, for an
        adapter that has none, the installation id kept in the state store."""
        configured = self.bridge.instances[instance].sharing_url
        if configured:
            return configured
        if identity:
            return f"nhd-bridge://{identity}"
        return f"nhd-bridge://{installation()}/{instance}"


@dataclass(frozen=True)
class ConfigProblem:
    """Something wrong found after loading, when adapters tell what their trackers hold."""

    path: YamlPath
    message: str
    level: Literal["error", "warning"] = "error"

    def error(self, config: LoadedConfig) -> ConfigError:
        line = _nearest_line(self.path, config.lines)
        prefix = "warning: " if self.level == "warning" else ""
        return ConfigError(config.file, _dotted(self.path), prefix + self.message, line)


def status_map_problems(
    name: str,
    agreement: AgreementConfig,
    sender_statuses: tuple[str, ...] | None,
    receiver_statuses: tuple[str, ...] | None,
) -> list[ConfigProblem]:
    """What is wrong with an agreement's status maps, given each side's declared statuses
    (``None``: open-ended). Shared by ``validate`` and the engine, so both refuse the same maps.

    Errors: a map whose target status the target does not have (every write of it would fail),
    or whose source status the source does not have (a misspelling; it would never match).
    Warning: an inbound map under partial delegation, where the receiver's status never syncs.
    """
    problems: list[ConfigProblem] = []
    maps = agreement.status_map
    sides = {
        "outbound": (agreement.sender, sender_statuses, agreement.receiver, receiver_statuses),
        "inbound": (agreement.receiver, receiver_statuses, agreement.sender, sender_statuses),
    }
    for way, table in (("outbound", maps.outbound), ("inbound", maps.inbound)):
        if not table:
            continue
        path: YamlPath = ("agreements", name, "status_map", way)
        source, source_known, target, target_known = sides[way]
        for key, value in table.items():
            if source_known is not None and key not in source_known:
                problems.append(
                    ConfigProblem(
                        (*path, key),
                        f"maps from {key!r}, which {source} does not have, so it would never "
                        f"match{_did_you_mean(key, source_known)}; {source}'s statuses: "
                        f"{', '.join(source_known)}",
                    )
                )
            if target_known is not None and value not in target_known:
                problems.append(
                    ConfigProblem(
                        (*path, key),
                        f"maps to {value!r}, which {target} does not have"
                        f"{_did_you_mean(value, target_known)}; {target}'s statuses: "
                        f"{', '.join(target_known)}",
                    )
                )
        if way == "inbound" and not agreement.allows_public_comments:
            problems.append(
                ConfigProblem(
                    path,
                    "never used: under partial delegation (allows_public_comments: false) the "
                    f"receiver's status does not sync back to {agreement.sender}; remove it, or "
                    "allow public comments",
                    level="warning",
                )
            )
    return problems


def _did_you_mean(value: str, known: tuple[str, ...]) -> str:
    folded = {status.casefold(): status for status in known}
    if value.casefold() in folded:
        return f" (did you mean {folded[value.casefold()]!r}? statuses are case-sensitive here)"
    guess = difflib.get_close_matches(value, known, 1, 0.6)
    return f" (did you mean {guess[0]!r}?)" if guess else ""


# --- loading ------------------------------------------------------------------------------------

_COMMON_INSTANCE_KEYS = frozenset({"kind", "sharing_url", "closed_statuses"})
_VARIABLE = re.compile(r"\$(?:\$|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\})")


def load_config(
    file: Path | str,
    *,
    environ: dict[str, str] | None = None,
    plugins: Plugins | None = None,
) -> LoadedConfig:
    """Read, interpolate and validate a configuration file."""
    file = Path(file)
    environ = dict(os.environ) if environ is None else environ
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            file, "", "file not found; pass --config PATH or create nhd-bridge.yaml"
        ) from None
    except OSError as error:
        raise ConfigError(file, "", f"cannot be read: {error.strerror}") from None
    document, lines = _parse_yaml(file, text)
    document = _interpolate(document, file, environ, lines, ())
    if not isinstance(document, dict):
        raise ConfigError(file, "", "expected a mapping with instances: and agreements:")

    bridge = _validate(BridgeConfig, _split_instance_options(document), file, lines, ())
    if plugins is None:
        plugins = Plugins()
    for index, module in enumerate(bridge.plugins):
        try:
            plugins.load_module(module)
        except PluginError as error:
            line = lines.get(("plugins", index))
            raise ConfigError(file, f"plugins[{index}]", str(error), line) from None

    adapter_configs = {
        name: _adapter_config(name, instance, plugins, file, lines)
        for name, instance in bridge.instances.items()
    }
    _check_references(bridge, file, lines)
    return LoadedConfig(file, bridge, adapter_configs, plugins, lines)


def json_schema(plugins: Plugins) -> dict[str, Any]:
    """JSON Schema of the whole file, each instance checked against its adapter's own model."""
    schema = BridgeConfig.model_json_schema()
    variants = []
    for kind, adapter_class in sorted(plugins.adapters().items()):
        options = adapter_class.config_model.model_json_schema()
        properties = {
            "kind": {"const": kind},
            "sharing_url": {"type": "string"},
            "closed_statuses": {"type": "array", "items": {"type": "string"}},
            **options.get("properties", {}),
        }
        variant: dict[str, Any] = {
            "title": f"{kind} instance",
            "type": "object",
            "properties": properties,
            "required": ["kind", *options.get("required", [])],
            "additionalProperties": False,
        }
        for key in ("$defs",):
            if key in options:
                schema.setdefault("$defs", {}).update(options[key])
        variants.append(variant)
    schema["properties"]["instances"]["additionalProperties"] = {"oneOf": variants}
    schema["$defs"].pop("InstanceConfig", None)
    return schema


def parse_duration(text: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not a duration; write it like 30s, 5m, 1h or 1d")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match[2]]
    if int(match[1]) == 0:
        raise ValueError(f"{text!r} would run without pause; give a duration above zero, like 30s")
    return timedelta(**{unit: int(match[1])})


# --- helpers ------------------------------------------------------------------------------------

YamlPath = tuple[str | int, ...]
ModelT = TypeVar("ModelT", bound=BaseModel)


def _parse_yaml(file: Path, text: str) -> tuple[Any, dict[YamlPath, int]]:
    """Parse YAML and remember the line of every node, so errors can point at it."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        line, problem = _yaml_problem(error, text)
        raise ConfigError(file, "", f"not valid YAML: {problem}", line) from None
    lines: dict[YamlPath, int] = {}
    if node is not None:
        duplicate = _duplicate_key(node, ())
        if duplicate is not None:
            path, line, first_line = duplicate
            raise ConfigError(
                file,
                _dotted(path),
                f"duplicate key (first on line {first_line}); YAML would silently keep only the "
                "last one: merge the two or delete one",
                line,
            )
        _record_lines(node, (), lines)
    return document, lines


def _yaml_problem(error: yaml.YAMLError, text: str) -> tuple[int | None, str]:
    """The line to blame and the message. A problem found at the end of the file (an unclosed
    quote or bracket) is blamed on the line where PyYAML says the construct began."""
    problem_mark = getattr(error, "problem_mark", None)
    context_mark = getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    context = getattr(error, "context", None)
    last_line = len(text.rstrip().splitlines())
    line = problem_mark.line + 1 if problem_mark is not None else None
    if context_mark is not None and (
        line is None or line > last_line or "end of stream" in problem
    ):
        return context_mark.line + 1, f"{problem} ({context} that starts on this line)"
    if context and context_mark is not None and context_mark.line + 1 != line:
        return line, f"{problem} ({context} started on line {context_mark.line + 1})"
    return line, problem


def _duplicate_key(node: yaml.Node, path: YamlPath) -> tuple[YamlPath, int, int] | None:
    """The first key written twice in one mapping: its path, its line, the first one's line."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            line = key_node.start_mark.line + 1
            if isinstance(key_node, yaml.ScalarNode) and key in seen and key != "<<":
                return (*path, key), line, seen[key]
            seen[key] = line
            found = _duplicate_key(value_node, (*path, key))
            if found is not None:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found = _duplicate_key(item, (*path, index))
            if found is not None:
                return found
    return None


def _record_lines(node: yaml.Node, path: YamlPath, lines: dict[YamlPath, int]) -> None:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            lines[(*path, key)] = key_node.start_mark.line + 1
            _record_lines(value_node, (*path, key), lines)
            lines[(*path, key)] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _record_lines(item, (*path, index), lines)


def _interpolate(
    value: Any, file: Path, environ: dict[str, str], lines: dict[YamlPath, int], path: YamlPath
) -> Any:
    if isinstance(value, dict):
        return {
            key: _interpolate(item, file, environ, lines, (*path, key))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [
            _interpolate(item, file, environ, lines, (*path, index))
            for index, item in enumerate(value)
        ]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        name, default = match["name"], match["default"]
        value = environ.get(name)
        # As in the shell, ${VAR:-default} also stands in for a variable set but empty.
        if value is not None and (value or default is None):
            return value
        if default is not None:
            return default
        raise ConfigError(
            file,
            _dotted(path),
            f"environment variable {name} is not set; export it, or write "
            f"${{{name}:-default}} to give a default",
            lines.get(path),
        )

    return _VARIABLE.sub(substitute, value)


def _split_instance_options(document: dict[str, Any]) -> dict[str, Any]:
    """Instances are written flat; move the adapter's own keys under ``options``."""
    instances = document.get("instances")
    if not isinstance(instances, dict):
        return document
    split = {}
    for name, body in instances.items():
        if isinstance(body, dict):
            common = {k: v for k, v in body.items() if k in _COMMON_INSTANCE_KEYS}
            options = {k: v for k, v in body.items() if k not in _COMMON_INSTANCE_KEYS}
            split[name] = {**common, "options": options}
        else:
            split[name] = body
    return {**document, "instances": split}


def _adapter_config(
    name: str, instance: InstanceConfig, plugins: Plugins, file: Path, lines: dict[YamlPath, int]
) -> AdapterConfig:
    path: YamlPath = ("instances", name)
    try:
        adapter_class = plugins.adapter_class(instance.kind)
    except PluginError as error:
        raise ConfigError(
            file, _dotted((*path, "kind")), str(error), lines.get((*path, "kind"))
        ) from None
    config = _validate(adapter_class.config_model, instance.options, file, lines, path)
    return _resolve_paths(config, file.parent)


def _validate(
    model: type[ModelT], data: Any, file: Path, lines: dict[YamlPath, int], prefix: YamlPath
) -> ModelT:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = error.errors(include_url=False)
        first = problems[0]
        if first["type"] == "missing":
            # A key missing beside an unknown one is most often that key misspelt: show the
            # unknown key, at its own line.
            parent = tuple(first["loc"][:-1])
            first = next(
                (
                    p
                    for p in problems
                    if p["type"] == "extra_forbidden" and tuple(p["loc"][:-1]) == parent
                ),
                first,
            )
        location = _yaml_location((*prefix, *first["loc"]))
        message = _explain(first)
        if first["type"] in {"extra_forbidden", "missing"}:
            message = _explain_keys(model, first, problems)
        line = _nearest_line(location, lines)
        raise ConfigError(file, _dotted(location), message, line) from None


def _explain_keys(model: type[BaseModel], first: Any, problems: list[Any]) -> str:
    """An unknown key is usually a misspelt one: name the key it was meant to be, and the
    required keys still missing beside it, in one message."""
    parent = tuple(first["loc"][:-1])
    siblings = [p for p in problems if tuple(p["loc"][:-1]) == parent]
    unknown = [str(p["loc"][-1]) for p in siblings if p["type"] == "extra_forbidden"]
    missing = [str(p["loc"][-1]) for p in siblings if p["type"] == "missing"]
    known = _known_keys(model, parent) or missing
    if first["type"] == "missing":
        return "required key is missing"
    name = str(first["loc"][-1])
    message = "unknown key"
    guess = difflib.get_close_matches(name, known, 1, 0.6)
    if guess:
        message += f"; did you mean {guess[0]!r}?"
    else:
        message += "; check its spelling against `nhd-bridge schema`"
    if missing:
        message += f" (required and missing here: {', '.join(missing)})"
    if len(unknown) > 1:
        message += f" (other unknown keys here: {', '.join(k for k in unknown if k != name)})"
    return message


def _known_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys a model accepts at ``loc``, through nested models and dicts of models."""
    current: Any = model
    for part in loc:
        current = _model_in(current)
        if current is None:
            return []
        if get_origin(current) is dict:
            current = get_args(current)[1]
            continue
        info = current.model_fields.get(str(part))
        if info is None:
            return []
        current = info.annotation
    current = _model_in(current)
    if current is None or get_origin(current) is dict:
        return []
    return list(current.model_fields)


def _model_in(annotation: Any) -> Any:
    """The model (or dict of models) an annotation holds, looking inside ``X | None``."""
    if get_origin(annotation) is dict:
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def _yaml_location(loc: tuple[Any, ...]) -> YamlPath:
    # Adapter options live flat in the YAML; hide the internal "options" level again.
    parts = [part for part in loc if part != "options"]
    return tuple(parts)


def _explain(error: Any) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key; check its spelling against `nhd-bridge schema`"
    if kind == "missing":
        return "required key is missing"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind in {"literal_error", "enum"}:
        return f"{message} (got {error.get('input')!r})"
    return message


def _check_references(bridge: BridgeConfig, file: Path, lines: dict[YamlPath, int]) -> None:
    known = ", ".join(sorted(bridge.instances)) or "none"
    for name, agreement in bridge.agreements.items():
        for role in ("sender", "receiver"):
            instance = getattr(agreement, role)
            if instance not in bridge.instances:
                path = ("agreements", name, role)
                raise ConfigError(
                    file,
                    _dotted(path),
                    f"unknown instance {instance!r}; known instances: {known}",
                    lines.get(path),
                )


def _resolve_paths(config: AdapterConfig, base: Path) -> AdapterConfig:
    """Relative paths in adapter settings are relative to the YAML file, not to the cwd."""
    updates = {}
    for field_name in type(config).model_fields:
        value = getattr(config, field_name)
        if isinstance(value, Path) and not value.is_absolute():
            updates[field_name] = base / value
    return config.model_copy(update=updates) if updates else config


def _resolve_sqlite_url(url: str, base: Path) -> str:
    """A relative SQLite file (any driver: sqlite://, sqlite+pysqlite://) is beside the YAML."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if Path(database).is_absolute() or database.startswith("file:"):
        return url
    return parsed.set(database=str(base / database)).render_as_string(hide_password=False)


def _nearest_line(path: YamlPath, lines: dict[YamlPath, int]) -> int | None:
    for length in range(len(path), -1, -1):
        if path[:length] in lines:
            return lines[path[:length]]
    return None


def _dotted(path: YamlPath) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
