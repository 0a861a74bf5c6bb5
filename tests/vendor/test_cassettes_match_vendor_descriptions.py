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
from openapi_check import Description, Exchange, check

ROOT = Path(__file__).resolve().parents[1]
CASSETTES = ROOT / "cassettes"

DESCRIPTIONS = {
    "jira/cloud": Description("jira-cloud-v3.trimmed.json"),
    # Data Center's description has server URL ".../rest" and paths "/api/2/…".
    "jira/datacenter": Description("jira-datacenter-10.3.trimmed.json", prefix="/rest"),
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
