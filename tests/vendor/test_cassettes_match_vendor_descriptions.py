"""Every Jira and GitHub cassette interaction, held against the vendor's own API description.

The cassettes were recorded against simulators we wrote; an emulator proves only that we read the
documentation the way we wrote the emulator. Atlassian's and GitHub's published OpenAPI
descriptions are something real that no one here wrote, so every recorded exchange must be an
operation they declare, with a declared status and query parameters, and request and response
bodies that validate against their schemas (``openapi_check.py`` says exactly how). A new cassette
that drifts from the vendor fails here.

The descriptions are the trimmed copies in this folder, cut by ``cut_descriptions.py`` from the
published files named in each one's ``x-nhd-vendored`` header.

``ALLOWED`` lists the findings that are defects of a description, not of our traffic; each entry
says why. Keep it short: an entry that no longer matches anything fails the suite too.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from openapi_check import Correction, Description, Exchange, check

ROOT = Path(__file__).resolve().parents[1]
CASSETTES = ROOT / "cassettes"

ANY_JSON: dict = {}
DC_OPERATION = "/paths/~1api~12~1{path}/{method}/responses/200/content/application~1json/schema"
# Atlassian's Data Center description is generated from Java beans, and some of its schemas say
# less than (or the opposite of) what its own prose and examples say. Each is corrected, as
# narrowly as possible, so the rest of the schema is still checked.
DC_CORRECTIONS = [
    Correction(
        "/components/schemas/IssueBean/properties/fields/additionalProperties",
        ANY_JSON,
        "IssueBean.fields maps a field id to its value; the bean declares every value an object, "
        "while Jira (and the description's own examples) send strings, arrays, numbers and null.",
    ),
    Correction(
        "/components/schemas/IssueUpdateBean/properties/fields/additionalProperties",
        ANY_JSON,
        "IssueUpdateBean.fields: the same defect on the create/edit side (summary is a string, "
        "labels an array of strings, per the description's own field input formats).",
    ),
    Correction(
        "/components/schemas/EntityPropertyBean/properties/value",
        ANY_JSON,
        'An entity property\'s value is any JSON value ("a valid, non-empty JSON", says the '
        "description's prose); the bean declares it a string.",
    ),
    Correction(
        "/paths/~1api~12~1issue~1{issueIdOrKey}~1properties~1{propertyKey}/put/requestBody/"
        "content/application~1json/schema",
        ANY_JSON,
        "Setting an issue property sends the value as the JSON body; the description declares "
        "the body a string (format json).",
    ),
    Correction(
        DC_OPERATION.format(path="field", method="get"),
        {"type": "array", "items": {"$ref": "#/components/schemas/FieldBean"}},
        "GET /field returns the list of fields (the description's prose: 'Returns a list of all "
        "fields'); the schema names the item bean.",
    ),
    Correction(
        DC_OPERATION.format(path="project~1{projectIdOrKey}~1statuses", method="get"),
        {"type": "array", "items": {"$ref": "#/components/schemas/IssueTypeWithStatusJsonBean"}},
        "GET /project/{key}/statuses returns one entry per issue type ('Get all issue types with "
        "valid status values for a project'); the schema names the item bean.",
    ),
    Correction(
        DC_OPERATION.format(path="issue~1{issueIdOrKey}~1attachments", method="post"),
        {"type": "array", "items": {"$ref": "#/components/schemas/AttachmentJsonBean"}},
        "An upload answers with the list of attachments created (one per file part); the schema "
        "names the item bean.",
    ),
]

DESCRIPTIONS = {
    "jira/cloud": Description("jira-cloud-v3.trimmed.json"),
    # Data Center's description has server URL ".../rest" and paths "/api/2/…".
    "jira/datacenter": Description(
        "jira-datacenter-10.3.trimmed.json", prefix="/rest", corrections=DC_CORRECTIONS
    ),
    "rest/github": Description("github-api.github.com.trimmed.json"),
}


@dataclass(frozen=True)
class Allowed:
    """A finding that is the description's defect. ``pattern`` is searched in the finding."""

    folder: str
    pattern: str
    reason: str


ALLOWED = [
    Allowed(
        "jira/datacenter",
        r"GET /secure/attachment/\d+/[^:]+: no such operation",
        "An attachment's bytes on Data Center are served by the web application at the URL the "
        "REST API itself hands out (AttachmentJsonBean.content, /secure/attachment/{id}/{name}); "
        "the REST description covers the metadata, not this download servlet.",
    ),
    Allowed(
        "jira/datacenter",
        r"GET /rest/api/2/issue/[^/]+/transitions: query parameter 'expand' is not declared",
        "`expand` is Jira's generic expansion parameter, described once for all resources in "
        "the description's own introduction ('Expansion'); getTransitions does not list it, yet "
        "TransitionBean.fields is filled only with expand=transitions.fields, which the adapter "
        "needs to know whether a transition screen takes a resolution.",
    ),
    Allowed(
        "jira/cloud",
        r": status 429 is not declared",
        "Atlassian documents 429 with Retry-After for every Cloud REST operation in its rate "
        "limiting guide, not per operation in the description.",
    ),
    Allowed(
        "jira/datacenter",
        r": status 429 is not declared",
        "Data Center's rate limiting (429, Retry-After, X-RateLimit-*) is documented in the "
        "administration guide for all REST resources, not per operation in the description.",
    ),
]


def _exchanges(path: Path) -> list[Exchange]:
    data = yaml.safe_load(path.read_text())
    found = []
    for number, interaction in enumerate(data["interactions"]):
        request, response = interaction["request"], interaction["response"]
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        content_type = " ".join(headers.get("content-type") or [])
        text = (response.get("body") or {}).get("string") or ""
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        is_json = "json" in content_type and bool(text.strip())
        found.append(
            Exchange(
                where=f"{path.relative_to(CASSETTES)}#{number}",
                method=request["method"],
                url=request["uri"],
                request_body=_json_or_none(request.get("body")),
                status=int(response["status"]["code"]),
                response_body=json.loads(text) if is_json else None,
                response_is_json=is_json,
            )
        )
    return found


def _json_or_none(body: Any) -> Any:
    if not body:
        return None
    try:
        return json.loads(body)
    except (ValueError, TypeError, UnicodeDecodeError):
        return None  # a multipart upload: its parts are not JSON


def _cassettes(folder: str) -> list[Path]:
    return sorted((CASSETTES / folder).glob("*.yaml"))


def _findings(folder: str) -> list[str]:
    description = DESCRIPTIONS[folder]
    return [
        finding
        for path in _cassettes(folder)
        for exchange in _exchanges(path)
        for finding in check(description, exchange)
    ]


@pytest.mark.parametrize("folder", sorted(DESCRIPTIONS))
def test_every_cassette_exchange_is_what_the_vendor_describes(folder: str):
    assert _cassettes(folder), f"no cassettes under tests/cassettes/{folder}"
    allowed = [entry for entry in ALLOWED if entry.folder == folder]
    used: set[str] = set()
    left = []
    for finding in _findings(folder):
        match = next((entry for entry in allowed if re.search(entry.pattern, finding)), None)
        if match is None:
            left.append(finding)
        else:
            used.add(match.pattern)
    assert not left, f"{len(left)} findings against the vendor's description:\n" + "\n".join(
        left[:40]
    )
    stale = [entry.pattern for entry in allowed if entry.pattern not in used]
    assert not stale, f"allow-list entries that match nothing any more (remove them): {stale}"


@pytest.mark.parametrize("folder", sorted(DESCRIPTIONS))
def test_the_vendored_description_names_its_source(folder: str):
    vendored = DESCRIPTIONS[folder].vendored
    assert set(vendored) >= {"publisher_url", "obtained_from", "obtained_on", "version"}
    assert re.fullmatch(r"[0-9a-f]{64}", vendored["published_sha256"])
    size = (Path(__file__).parent / DESCRIPTIONS[folder].file_name).stat().st_size
    assert size < 300_000, "keep the trimmed description small: cut only what the bridge uses"
