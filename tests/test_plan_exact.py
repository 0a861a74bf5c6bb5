"""``nhd-bridge plan`` is exact: one entry per ticket, actions as data for ``--json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from nhd_bridge.cli import main
from nhd_bridge.testing.fake import FakeTracker

BRIDGE = """\
plugins: [nhd_bridge.testing.fake]
state: {url: "sqlite:///state.db"}
instances:
  A: {kind: fake}
  B: {kind: fake}
agreements:
  ab: {sender: A, receiver: B, sync_tags: true}
"""


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("NHD_BRIDGE_CONFIG", raising=False)
    config = tmp_path / "bridge.yaml"
    config.write_text(BRIDGE, encoding="utf-8")
    return lambda *args: CliRunner().invoke(main, ["-c", str(config), *args])


@pytest.fixture
def changed_on_both_sides(cli) -> tuple[str, str]:
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    origin = a.create_ticket("Printer on fire", comments=["It smokes"])
    assert cli("sync").exit_code == 0
    [copy] = b.tickets()
    a.set_subject(origin, "Printer on fire, again")
    b.add_comment(copy.local_id, "Agents only: spare printer on its way", public=False)
    b.set_tags(copy.local_id, ["hardware"])
    return origin, copy.local_id


def test_a_ticket_changed_on_both_sides_is_one_entry(cli, changed_on_both_sides):
    result = cli("plan", "--json")
    assert result.exit_code == 0, result.output
    entries = json.loads(result.stdout)
    assert [entry["shared_uuid"] for entry in entries] == [entries[0]["shared_uuid"]]
    text = cli("plan").stdout
    assert text.count("ab: ticket ") == 1, text


def test_plan_json_actions_are_structured(cli, changed_on_both_sides):
    [entry] = json.loads(cli("plan", "--json").stdout)
    by_kind = {(action["kind"], action["target"]): action for action in entry["actions"]}
    subject = by_kind[("update", "B")]
    assert (subject["field"], subject["from"], subject["to"], subject["source"]) == (
        "subject",
        "Printer on fire",
        "Printer on fire, again",
        "A",
    )
    tags = by_kind[("update", "A")]
    assert (tags["field"], tags["from"], tags["to"]) == ("tags", [], ["hardware"])
    comment = by_kind[("comment", "A")]
    assert (comment["source"], comment["visibility"]) == ("B", "private")
    assert len(comment["comment"]) == 40
    assert set(subject) == {
        "kind",
        "target",
        "source",
        "field",
        "from",
        "to",
        "visibility",
        "comment",
        "action",
        "reason",
    }


def test_a_comment_edit_is_planned(cli):
    a = FakeTracker.named("A")
    origin = a.create_ticket("Edits", comments=["Teh typo"])
    assert cli("sync").exit_code == 0
    [comment] = a.ticket(origin).comments
    a.edit_comment(origin, comment.local_id, "The typo, fixed")
    [entry] = json.loads(cli("plan", "--json").stdout)
    [edit] = entry["actions"]
    assert (edit["kind"], edit["source"], edit["target"]) == ("edit", "A", "B")
    assert edit["to"] == "The typo, fixed"
    assert "  - edit comment " in cli("plan").stdout


def test_a_comment_edit_is_structured_as_the_other_actions(cli):
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    origin = a.create_ticket("Edits", comments=["Teh typo"])
    a.add_comment(origin, "Agents only: call back", public=False)
    assert cli("sync").exit_code == 0
    [copy] = b.tickets()
    _, private = b.ticket(copy.local_id).comments
    b.edit_comment(copy.local_id, private.local_id, "Agents only: call back at 5")

    [entry] = json.loads(cli("plan", "--json").stdout)
    text = cli("plan").stdout

    [edit] = entry["actions"]
    assert {key: edit[key] for key in ("kind", "target", "source", "field")} == {
        "kind": "edit",
        "target": "A",
        "source": "B",
        "field": "body",
    }
    assert (edit["from"], edit["to"]) == ("Agents only: call back", "Agents only: call back at 5")
    assert edit["visibility"] == "private"
    assert (
        "in A (from B, private): 'Agents only: call back' → 'Agents only: call back at 5'" in text
    )


def test_plan_lists_every_comment_edit_that_sync_then_writes(cli):
    a, b = FakeTracker.named("A"), FakeTracker.named("B")
    origin = a.create_ticket("Edits", comments=["From A"])
    assert cli("sync").exit_code == 0
    [copy] = b.tickets()
    b.add_comment(copy.local_id, "From B")
    assert cli("sync").exit_code == 0
    from_a, _ = a.ticket(origin).comments
    _, from_b = b.ticket(copy.local_id).comments
    a.edit_comment(origin, from_a.local_id, "From A, edited on A")
    b.edit_comment(copy.local_id, from_b.local_id, "From B, edited on B")
    a.set_subject(origin, "Edits, both ways")

    [entry] = json.loads(cli("plan", "--json").stdout)
    planned = sorted(
        (action["source"], action["target"], action["to"])
        for action in entry["actions"]
        if action["kind"] == "edit"
    )
    assert cli("sync").exit_code == 0

    assert planned == [("A", "B", "From A, edited on A"), ("B", "A", "From B, edited on B")]
    assert [c.body for c in a.ticket(origin).comments] == [p[2] for p in sorted(planned)]
    assert [c.body for c in b.ticket(copy.local_id).comments] == [p[2] for p in sorted(planned)]
