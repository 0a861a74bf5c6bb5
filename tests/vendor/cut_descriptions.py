"""Cut the vendors' published API descriptions down to what the bridge uses.

Usage (from the repository root)::

    python tests/vendor/cut_descriptions.py NAME PUBLISHED_FILE

NAME is one of :data:`DESCRIPTIONS`; PUBLISHED_FILE the vendor's file exactly as obtained (see
each entry's ``obtained_from`` for where). Writes ``tests/vendor/NAME.trimmed.json``: the
operations listed below (each with its path-level parameters), every component they reach by
``$ref`` (transitively), and an ``x-nhd-vendored`` header with the source, its version, the date
and the sha256 of the published file. Prose (``description``, ``summary``, examples) is dropped to
keep the file small; nothing that constrains a request or a response is changed.

Re-running the script on the same published file gives the same bytes. To follow a new vendor
release: fetch the new file, update ``obtained_from``/``obtained_on`` here, re-run, and let
``tests/vendor/test_cassettes_match_vendor_descriptions.py`` say which cassette drifted.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

# Keys dropped everywhere except as property names: prose and examples, no constraint.
PROSE = {
    "description",
    "summary",
    "example",
    "examples",
    "externalDocs",
    "tags",
    "security",
    "x-atlassian-connect-scope",
    "x-atlassian-oauth2-scopes",
    "x-atlassian-data-security-policy",
    "x-experimental",
    "x-github",
    "x-displayName",
    "x-octokit",
}
# JSON Schema / OpenAPI maps whose keys are names chosen by the vendor, never keywords.
NAME_MAPS = {
    "properties",
    "patternProperties",
    "responses",
    "content",
    "headers",
    "schemas",
    "parameters",
    "requestBodies",
    "paths",
    "variables",
    "mapping",
}

JIRA_CLOUD_OPS = [
    ("get", "/rest/api/3/myself"),
    ("get", "/rest/api/3/field"),
    ("get", "/rest/api/3/mypermissions"),
    ("get", "/rest/api/3/project/{projectIdOrKey}"),
    ("get", "/rest/api/3/project/{projectIdOrKey}/statuses"),
    ("get", "/rest/api/3/issue/createmeta/{projectIdOrKey}/issuetypes/{issueTypeId}"),
    ("get", "/rest/api/3/search/jql"),
    ("post", "/rest/api/3/issue"),
    ("get", "/rest/api/3/issue/{issueIdOrKey}"),
    ("put", "/rest/api/3/issue/{issueIdOrKey}"),
    ("get", "/rest/api/3/issue/{issueIdOrKey}/editmeta"),
    ("get", "/rest/api/3/issue/{issueIdOrKey}/transitions"),
    ("post", "/rest/api/3/issue/{issueIdOrKey}/transitions"),
    ("get", "/rest/api/3/issue/{issueIdOrKey}/comment"),
    ("post", "/rest/api/3/issue/{issueIdOrKey}/comment"),
    ("get", "/rest/api/3/issue/{issueIdOrKey}/properties/{propertyKey}"),
    ("put", "/rest/api/3/issue/{issueIdOrKey}/properties/{propertyKey}"),
    ("get", "/rest/api/3/comment/{commentId}/properties/{propertyKey}"),
    ("put", "/rest/api/3/comment/{commentId}/properties/{propertyKey}"),
    ("post", "/rest/api/3/issue/{issueIdOrKey}/attachments"),
    ("get", "/rest/api/3/attachment/content/{id}"),
]
JIRA_DC_OPS = [
    ("get", "/api/2/myself"),
    ("get", "/api/2/field"),
    ("get", "/api/2/mypermissions"),
    ("get", "/api/2/project/{projectIdOrKey}"),
    ("get", "/api/2/project/{projectIdOrKey}/statuses"),
    ("get", "/api/2/issue/createmeta/{projectIdOrKey}/issuetypes/{issueTypeId}"),
    ("get", "/api/2/search"),
    ("post", "/api/2/issue"),
    ("get", "/api/2/issue/{issueIdOrKey}"),
    ("put", "/api/2/issue/{issueIdOrKey}"),
    ("get", "/api/2/issue/{issueIdOrKey}/editmeta"),
    ("get", "/api/2/issue/{issueIdOrKey}/transitions"),
    ("post", "/api/2/issue/{issueIdOrKey}/transitions"),
    ("get", "/api/2/issue/{issueIdOrKey}/comment"),
    ("post", "/api/2/issue/{issueIdOrKey}/comment"),
    ("get", "/api/2/issue/{issueIdOrKey}/properties/{propertyKey}"),
    ("put", "/api/2/issue/{issueIdOrKey}/properties/{propertyKey}"),
    ("get", "/api/2/comment/{commentId}/properties/{propertyKey}"),
    ("put", "/api/2/comment/{commentId}/properties/{propertyKey}"),
    ("post", "/api/2/issue/{issueIdOrKey}/attachments"),
]
GITHUB_OPS = [
    ("get", "/repos/{owner}/{repo}"),
    ("get", "/repos/{owner}/{repo}/issues"),
    ("post", "/repos/{owner}/{repo}/issues"),
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}"),
    ("patch", "/repos/{owner}/{repo}/issues/{issue_number}"),
    ("get", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("post", "/repos/{owner}/{repo}/issues/{issue_number}/comments"),
    ("patch", "/repos/{owner}/{repo}/issues/comments/{comment_id}"),
    ("get", "/search/issues"),
]

DESCRIPTIONS: dict[str, dict[str, Any]] = {
    "jira-cloud-v3": {
        "publisher_url": "https://developer.atlassian.com/cloud/jira/platform/swagger-v3.v3.json",
        "obtained_from": "github.com/jarekbird/jira-api-mcp-wrapper@"
        "9a9e84dacce9900b0bd4f1f095f5f1bdf3ce0168:swagger-v3.v3.json "
        "(Atlassian's file vendored unchanged; committed 2025-12-25)",
        "obtained_on": "2026-12-06",
        "operations": JIRA_CLOUD_OPS,
    },
    "jira-datacenter-10.3": {
        "publisher_url": "https://dac-static.atlassian.com/server/jira/platform/"
        "jira_software_dc_10003_swagger.v3.json",
        "obtained_from": "github.com/zackbunch/jira-dc-mock-server@"
        "14e9d2572ca3efb5fecd739a0b41b3b1889c0edd:contracts/jira-software-dc-10.3-openapi.json "
        "(Atlassian's file vendored unchanged; committed 2026-08-06)",
        "obtained_on": "2026-12-06",
        "operations": JIRA_DC_OPS,
    },
    "github-api.github.com": {
        "publisher_url": "https://github.com/github/rest-api-description "
        "(descriptions/api.github.com/api.github.com.json)",
        "obtained_from": "npm @octokit/openapi@23.0.2: generated/api.github.com.json "
        "(GitHub's description plus x-octokit extensions, which the cut drops)",
        "obtained_on": "2026-12-06",
        "operations": GITHUB_OPS,
    },
}


def cut(name: str, published: bytes) -> dict[str, Any]:
    entry = DESCRIPTIONS[name]
    document = json.loads(published)
    paths: dict[str, Any] = {}
    for method, path in entry["operations"]:
        item = document["paths"].get(path)
        if item is None or method not in item:
            raise SystemExit(f"{name}: the published file has no {method.upper()} {path}")
        kept = paths.setdefault(path, {})
        if "parameters" in item:
            kept["parameters"] = item["parameters"]
        kept[method] = item[method]
    trimmed: dict[str, Any] = {
        "openapi": document["openapi"],
        "info": {"title": document["info"]["title"], "version": document["info"]["version"]},
        "x-nhd-vendored": {
            "publisher_url": entry["publisher_url"],
            "obtained_from": entry["obtained_from"],
            "obtained_on": entry["obtained_on"],
            "version": document["info"]["version"],
            "published_sha256": hashlib.sha256(published).hexdigest(),
            "cut_by": "tests/vendor/cut_descriptions.py",
        },
        "servers": document.get("servers", []),
        "paths": _strip(paths),
    }
    components: dict[str, dict[str, Any]] = {}
    pending = _refs(trimmed["paths"])
    seen: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        _, _, section, key = ref.split("/", 3)  # "#/components/<section>/<key>"
        target = _strip(document["components"][section][key])
        components.setdefault(section, {})[key] = target
        pending |= _refs(target)
    trimmed["components"] = {s: dict(sorted(v.items())) for s, v in sorted(components.items())}
    return trimmed


def _strip(node: Any, parent: str | None = None) -> Any:
    if isinstance(node, dict):
        if parent in NAME_MAPS:
            return {key: _strip(value) for key, value in node.items()}
        return {key: _strip(value, key) for key, value in node.items() if key not in PROSE}
    if isinstance(node, list):
        return [_strip(item) for item in node]
    return node


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            found.add(ref)
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= _refs(item)
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in DESCRIPTIONS:
        print(f"usage: {argv[0]} {{{'|'.join(DESCRIPTIONS)}}} PUBLISHED_FILE", file=sys.stderr)
        return 2
    name, source = argv[1], Path(argv[2])
    trimmed = cut(name, source.read_bytes())
    out = HERE / f"{name}.trimmed.json"
    out.write_text(json.dumps(trimmed, indent=1, sort_keys=False, ensure_ascii=False) + "\n")
    print(f"{out}: {out.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
