"""Hold one recorded HTTP exchange against a vendor's OpenAPI 3.0 description.

A finding is a sentence naming the exchange and what the description says about it. What is
checked, for every exchange:

- the method and path match exactly one operation (literal segments before templated ones);
- the response status is declared by the operation (or by its ``default``);
- every query parameter sent is declared by the operation or its path;
- the JSON request body validates against the operation's ``requestBody`` schema;
- the JSON response body validates against the declared response's schema.

Schemas are OpenAPI 3.0 schemas, validated as JSON Schema draft 4 (whose keywords they borrow)
after one translation: ``nullable: true`` admits ``null`` (for a schema with ``type``, ``null`` is
added to the type and to any ``enum``; for a schema without ``type``, such as ``allOf: [$ref]``,
the schema becomes ``anyOf: [{type: null}, schema]``). ``$ref`` resolves inside the description.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlparse

from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

VENDOR = Path(__file__).resolve().parent
BASE_URI = "urn:nhd-vendor-description"


@dataclass(frozen=True)
class Exchange:
    """One recorded request and its answer."""

    where: str  # cassette file and interaction number, for the finding's reader
    method: str
    url: str
    request_body: Any  # parsed JSON, or None
    status: int
    response_body: Any  # parsed JSON, or None
    response_is_json: bool


@dataclass(frozen=True)
class Correction:
    """A known defect of a vendor's description, corrected before validating: the schema at
    ``pointer`` (which must exist) is replaced by ``schema``. ``reason`` says why it is a defect
    of the description and not of our traffic."""

    pointer: str
    schema: dict[str, Any]
    reason: str

    def apply(self, document: dict[str, Any]) -> None:
        *parents, last = [
            token.replace("~1", "/").replace("~0", "~") for token in self.pointer.split("/")[1:]
        ]
        node = document
        for token in parents:
            node = node[token]
        if last not in node:
            raise KeyError(f"correction of a schema the description no longer has: {self.pointer}")
        node[last] = self.schema


@dataclass(frozen=True)
class Operation:
    path: str
    method: str
    spec: dict[str, Any]
    path_parameters: list[dict[str, Any]]
    pointer: str  # JSON pointer of the operation in the description


class Description:
    """One trimmed vendor description and the URL prefix its paths are relative to."""

    def __init__(
        self, file_name: str, prefix: str = "", corrections: list[Correction] | None = None
    ):
        self.file_name = file_name
        document = json.loads((VENDOR / file_name).read_text())
        for correction in corrections or []:
            correction.apply(document)
        self.document = _openapi30_to_jsonschema(document)
        self.prefix = prefix  # what the server URL adds before the description's paths
        self.registry: Registry = Registry().with_resource(
            BASE_URI, Resource.from_contents(self.document, default_specification=DRAFT4)
        )
        self._templates = [(self._pattern(path), path) for path in self.document["paths"]]
        self._validators: dict[str, Draft4Validator] = {}

    @property
    def vendored(self) -> dict[str, Any]:
        return self.document["x-nhd-vendored"]

    def operation(self, method: str, path: str) -> Operation | None:
        if not path.startswith(self.prefix):
            return None
        relative = path[len(self.prefix) :]
        candidates = [tpl for pattern, tpl in self._templates if pattern.fullmatch(relative)]
        # A literal segment beats a template (``/issue/createmeta`` over ``/issue/{key}``).
        candidates.sort(key=lambda tpl: tpl.count("{"))
        for template in candidates[:1]:
            item = self.document["paths"][template]
            if method.lower() in item:
                pointer = f"/paths/{_escape(template)}/{method.lower()}"
                return Operation(
                    template,
                    method.lower(),
                    item[method.lower()],
                    item.get("parameters", []),
                    pointer,
                )
        return None

    def resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = self.registry.resolver(BASE_URI).lookup(node["$ref"]).contents
        return node

    def errors(self, pointer: str, instance: Any) -> list[str]:
        validator = self._validators.get(pointer)
        if validator is None:
            validator = Draft4Validator({"$ref": f"{BASE_URI}#{pointer}"}, registry=self.registry)
            self._validators[pointer] = validator
        found = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        return [
            f"at {'/'.join(map(str, error.absolute_path)) or '(root)'}: {error.message[:300]}"
            for error in found
        ]

    @staticmethod
    def _pattern(template: str) -> re.Pattern[str]:
        parts = re.split(r"(\{[^}]+\})", template)
        return re.compile(
            "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
        )


def check(description: Description, exchange: Exchange) -> list[str]:
    """Every way ``exchange`` departs from ``description`` (empty: it conforms)."""
    url = urlparse(exchange.url)
    path = unquote(url.path)
    said = f"{exchange.where}: {exchange.method} {path}"
    operation = description.operation(exchange.method, path)
    if operation is None:
        return [f"{said}: no such operation in {description.file_name}"]
    findings: list[str] = []
    spec = operation.spec
    if spec.get("deprecated"):
        findings.append(f"{said}: the operation is deprecated")
    listed = operation.path_parameters + spec.get("parameters", [])
    parameters = [description.resolve(parameter) for parameter in listed]
    declared = {p["name"] for p in parameters if p.get("in") == "query"}
    for name, _ in parse_qsl(url.query, keep_blank_values=True):
        if name not in declared:
            findings.append(f"{said}: query parameter {name!r} is not declared")
    responses = spec.get("responses", {})
    status = str(exchange.status)
    if status in responses:
        response_key = status
    elif f"{status[0]}XX" in responses:
        response_key = f"{status[0]}XX"
    elif "default" in responses:
        response_key = "default"
    else:
        return [*findings, f"{said}: status {status} is not declared ({', '.join(responses)})"]
    body_spec = spec.get("requestBody")
    if body_spec is not None and exchange.request_body is not None:
        body_spec = description.resolve(body_spec)
        media = _json_media(body_spec.get("content", {}))
        if media is not None and "schema" in body_spec["content"][media]:
            pointer = _request_pointer(description, operation, media)
            for error in description.errors(pointer, exchange.request_body):
                findings.append(f"{said}: request body {error}")
    response = description.resolve(responses[response_key])
    content = response.get("content", {})
    media = _json_media(content)
    if exchange.response_is_json and media is not None and "schema" in content[media]:
        pointer = f"{operation.pointer}/responses/{_escape(response_key)}"
        if "$ref" in responses[response_key]:
            pointer = responses[response_key]["$ref"].removeprefix("#")
        pointer += f"/content/{_escape(media)}/schema"
        for error in description.errors(pointer, exchange.response_body):
            findings.append(f"{said}: {status} response body {error}")
    return findings


def _request_pointer(description: Description, operation: Operation, media: str) -> str:
    raw = operation.spec["requestBody"]
    base = raw["$ref"].removeprefix("#") if "$ref" in raw else f"{operation.pointer}/requestBody"
    return f"{base}/content/{_escape(media)}/schema"


def _json_media(content: dict[str, Any]) -> str | None:
    for media in content:
        if media == "application/json" or media.endswith("+json"):
            return media
    if "*/*" in content:
        return "*/*"
    return None


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _openapi30_to_jsonschema(document: dict[str, Any]) -> dict[str, Any]:
    """The description with ``nullable`` spelled as JSON Schema (see the module doc)."""
    document = copy.deepcopy(document)

    def walk(node: Any, parent: str | None = None) -> Any:
        if isinstance(node, list):
            return [walk(item) for item in node]
        if not isinstance(node, dict):
            return node
        if parent == "properties":
            return {key: walk(value) for key, value in node.items()}
        node = {key: walk(value, key) for key, value in node.items()}
        if node.pop("nullable", False) is True:
            kind = node.get("type")
            if kind is not None:
                node["type"] = [*(kind if isinstance(kind, list) else [kind]), "null"]
                if "enum" in node and None not in node["enum"]:
                    node["enum"] = [*node["enum"], None]
            else:
                node = {"anyOf": [{"type": "null"}, node]}
        return node

    return walk(document)
