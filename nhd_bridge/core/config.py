"""The bridge configuration: YAML with ``${VAR}`` interpolation, validated by pydantic models.

A configuration names *instances* (one configured system each, with its adapter ``kind`` and that
adapter's own settings inline) and *agreements* between them. Every error is a
:class:`ConfigError` naming the file, the YAML path (and line), and how to fix it, because the
person reading it is editing that file right now.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

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
    "ConflictPolicy",
    "InstanceConfig",
    "LoadedConfig",
    "ServerConfig",
    "StateConfig",
    "json_schema",
    "load_config",
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
    """Who wins when both sides changed the same field between two runs."""

    default: Literal["newest", "sender", "receiver"] = "newest"
    fields: dict[str, Literal["newest", "sender", "receiver"]] = Field(default_factory=dict)

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

    @property
    def state_url(self) -> str:
        url = self.bridge.state.url
        if url is None:
            return f"sqlite:///{self.file.parent / '.nhd-bridge' / 'state.db'}"
        return _resolve_sqlite_url(url, self.file.parent)

    def sharing_url(self, instance: str, installation: str) -> str:
        """The base of the NHD uuids minted for an instance. The default includes the
        installation's id: two installations of nhd-bridge must never mint the same uuids."""
        configured = self.bridge.instances[instance].sharing_url
        return configured or f"nhd-bridge://{installation}/{instance}"


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
    return LoadedConfig(file, bridge, adapter_configs, plugins)


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
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(file, "", f"not valid YAML: {problem}", line) from None
    lines: dict[YamlPath, int] = {}
    if node is not None:
        _record_lines(node, (), lines)
    return document, lines


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
        first = error.errors(include_url=False)[0]
        location = _yaml_location((*prefix, *first["loc"]))
        message = _explain(first)
        line = _nearest_line(location, lines)
        raise ConfigError(file, _dotted(location), message, line) from None


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
