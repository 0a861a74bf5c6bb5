"""Every REST call the Jira adapter can make, read from its source, is an operation Atlassian's
descriptions declare (Cloud v3 and Data Center 10.3), with declared query parameters, and none is
deprecated — not only the calls some cassette happens to hold.

The calls are found in ``nhd_bridge/adapters/jira/adapter.py`` by walking its syntax tree: each
``self._json(METHOD, PATH, params=…)`` (a path given as an f-string, or as a name assigned one in
the same function), each URL built with ``self.client._get_url(PATH)`` for the two requests
that bypass ``_json`` (the streamed upload and download), and each public call of the ``jira``
library (``self.client.issue(…)``...) by the request that library method sends (LIBRARY_CALLS,
read from the library's source). A count of the call sites in the source keeps the walk honest: a
new call the walk cannot read fails the test instead of being skipped.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from openapi_check import Description

import nhd_bridge.adapters.jira.adapter as jira_module

SOURCE = Path(jira_module.__file__).read_text()
CLOUD = Description("jira-cloud-v3.trimmed.json")
DATACENTER = Description("jira-datacenter-10.3.trimmed.json", prefix="/rest")

# Calls made on one deployment only (the adapter branches on ``self.cloud`` around them).
CLOUD_ONLY = {("GET", "search/jql"), ("GET", "attachment/content/{}")}
DATACENTER_ONLY = {("GET", "search")}
# Query parameters sent on Cloud only (see _check_permissions).
CLOUD_ONLY_PARAMS = {("mypermissions", "permissions")}
# Undeclared by the Data Center description but documented elsewhere in it; see ALLOWED in
# test_cassettes_match_vendor_descriptions.py for the reason.
DATACENTER_ALLOWED_PARAMS = {("issue/{}/transitions", "expand")}


# The request each public ``jira`` library method the adapter calls sends: method, path, and the
# query parameters it can send (as in jira/client.py of the pinned library).
LIBRARY_CALLS = {
    "myself": ("GET", "myself", frozenset()),
    "fields": ("GET", "field", frozenset()),
    "project": ("GET", "project/{}", frozenset()),
    "editmeta": ("GET", "issue/{}/editmeta", frozenset()),
    "transitions": ("GET", "issue/{}/transitions", frozenset({"expand"})),
    "my_permissions": ("GET", "mypermissions", frozenset({"projectKey", "permissions"})),
    "issue": ("GET", "issue/{}", frozenset({"fields", "properties"})),
    "issue_property": ("GET", "issue/{}/properties/{}", frozenset()),
    "add_issue_property": ("PUT", "issue/{}/properties/{}", frozenset()),
    "issue_types_for_project": ("GET", "project/{}/statuses", frozenset()),
}


def _is_library_call(node: ast.Call) -> bool:
    func = node.func
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Attribute)
        and func.value.attr == "client"
        and not func.attr.startswith("_")
    )


@dataclass(frozen=True)
class Call:
    method: str
    path: str  # relative to /rest/api/{3|2}/, "{}" for each value filled in
    params: frozenset[str]
    line: int


def _template(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(
            part.value if isinstance(part, ast.Constant) else "{}" for part in node.values
        )
    return None


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _calls() -> list[Call]:
    tree = ast.parse(SOURCE)
    found: list[Call] = []
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        names: dict[str, str] = {}
        params: set[str] = set()
        for node in ast.walk(function):
            if isinstance(node, ast.Assign) and len(node.targets) == 1:
                target = node.targets[0]
                if isinstance(target, ast.Name) and (text := _template(node.value)) is not None:
                    names[target.id] = text
                if _is_name(target, "params") and isinstance(node.value, ast.Dict):
                    params |= {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
                if (
                    isinstance(target, ast.Subscript)
                    and _is_name(target.value, "params")
                    and isinstance(target.slice, ast.Constant)
                ):
                    params.add(target.slice.value)
            if (
                isinstance(node, ast.AnnAssign)
                and _is_name(node.target, "params")
                and isinstance(node.value, ast.Dict)
            ):
                params |= {k.value for k in node.value.keys if isinstance(k, ast.Constant)}
        for node in ast.walk(function):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            if _is_library_call(node):
                assert node.func.attr in LIBRARY_CALLS, f"line {node.lineno}: unknown library call"
                method_name, path, sent_params = LIBRARY_CALLS[node.func.attr]
                found.append(Call(method_name, path, sent_params, node.lineno))
            elif node.func.attr == "_json" and len(node.args) >= 2:
                method = node.args[0]
                assert isinstance(method, ast.Constant), f"line {node.lineno}: method not literal"
                path_node = node.args[1]
                path = (
                    names.get(path_node.id)
                    if isinstance(path_node, ast.Name)
                    else _template(path_node)
                )
                assert path is not None, f"line {node.lineno}: cannot read the path"
                sent: set[str] = set()
                for keyword in node.keywords:
                    if keyword.arg == "params" and isinstance(keyword.value, ast.Dict):
                        sent |= {k.value for k in keyword.value.keys if isinstance(k, ast.Constant)}
                    elif keyword.arg == "params" and isinstance(keyword.value, ast.Name):
                        sent |= params
                found.append(Call(method.value, path, frozenset(sent), node.lineno))
            elif node.func.attr == "_get_url" and node.args and function.name != "_json":
                arg = node.args[0]
                path = names.get(arg.id) if isinstance(arg, ast.Name) else _template(arg)
                assert path is not None, f"line {node.lineno}: cannot read the URL path"
                method = "POST" if path.endswith("/attachments") else "GET"
                sent = {"redirect"} if path.startswith("attachment/content/") else set()
                found.append(Call(method, path, frozenset(sent), node.lineno))
    return found


CALLS = _calls()


def test_the_walk_sees_every_call_site_in_the_source():
    sites = (
        len(re.findall(r"self\._json\(", SOURCE))
        + len(re.findall(r"_get_url\(", SOURCE))
        + len(re.findall(r"self\.client\.[a-z]\w*\(", SOURCE))
    )
    assert len(CALLS) + 1 == sites  # + 1: _json's own _get_url(path)
    assert len(CALLS) >= 20


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_every_call_the_adapter_can_make_is_declared_and_not_deprecated(deployment):
    description, version = (CLOUD, "3") if deployment == "cloud" else (DATACENTER, "2")
    skip = DATACENTER_ONLY if deployment == "cloud" else CLOUD_ONLY
    problems = []
    checked = 0
    for call in CALLS:
        if (call.method, call.path) in skip:
            continue
        checked += 1
        concrete = "/rest/api/" + version + "/" + call.path.replace("{}", "X-1")
        operation = description.operation(call.method, concrete)
        where = f"jira.py:{call.line} {call.method} {call.path}"
        if operation is None:
            problems.append(f"{where}: not in {description.file_name}")
            continue
        if operation.spec.get("deprecated"):
            problems.append(f"{where}: deprecated")
        listed = operation.path_parameters + operation.spec.get("parameters", [])
        declared = {
            description.resolve(p)["name"]
            for p in listed
            if description.resolve(p).get("in") == "query"
        }
        for name in sorted(call.params - declared):
            if deployment == "datacenter" and (
                (call.path, name) in CLOUD_ONLY_PARAMS
                or (call.path, name) in DATACENTER_ALLOWED_PARAMS
            ):
                continue
            problems.append(f"{where}: query parameter {name!r} not declared")
    assert checked >= 18
    assert not problems, "\n".join(problems)


def test_the_comment_breadcrumb_is_read_where_jira_documents_comment_properties():
    paths = {call.path for call in CALLS}
    assert "comment/{}/properties/{}" in paths
    assert not any(re.fullmatch(r"issue/\{\}/comment/\{\}/properties/.*", p) for p in paths)
