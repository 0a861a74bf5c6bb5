"""``nhd-bridge explain`` says what the engine does: for a ticket nothing carries yet, the verdict
comes from the engine (its terms and its share filter on the document it builds), and ``sync``
then does exactly that."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from test_engine import ALICE, BOB, CAROL, full, partial

from nhd_bridge.cli import main
from nhd_bridge.testing.fake import FakeTracker

Invoke = Callable[..., Result]


def bridge(tmp_path: Path, agreements: dict[str, dict[str, Any]]) -> Invoke:
    names = sorted({a[key] for a in agreements.values() for key in ("sender", "receiver")})
    document = {
        "plugins": ["nhd_bridge.testing.fake"],
        "state": {"url": f"sqlite:///{tmp_path / 'state.db'}"},
        "instances": {name: {"kind": "fake"} for name in names},
        "agreements": agreements,
    }
    config = tmp_path / "bridge.yaml"
    config.write_text(yaml.safe_dump(document), encoding="utf-8")
    return lambda *args: CliRunner().invoke(main, ["-c", str(config), *args])


@pytest.fixture(autouse=True)
def no_config_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NHD_BRIDGE_CONFIG", raising=False)
    monkeypatch.delenv("NHD_BRIDGE_PLUGINS", raising=False)


def test_a_share_filter_on_the_requester_is_explained_as_sync_applies_it(tmp_path):
    cli = bridge(tmp_path, {"ab": full(share_filter="requester.role == 'agent'")})
    ticket = FakeTracker.named("A").create_ticket("Escalated by an agent", requester=BOB)

    explained = cli("explain", f"A:{ticket}")
    cli("sync")

    assert "ab: matches; it will be shared on the next run" in explained.stdout, explained.output
    assert len(FakeTracker.named("B").tickets()) == 1


# --- explain agrees with sync -------------------------------------------------------------------

# (name, agreements, tickets: (instance, create_ticket's keyword arguments)). Built from the
# helpers of tests/test_engine.py; each scenario's rule is one that test_engine.py runs the engine
# on (share filters, agreement status, fan-out, delegation, the receiver's own tickets).
SCENARIOS: list[tuple[str, dict[str, dict[str, Any]], list[tuple[str, dict[str, Any]]]]] = [
    ("every ticket", {"ab": full()}, [("A", {"subject": "Printer on fire"})]),
    (
        "tags",
        {"ab": full(share_filter="contains(tags, 'escalate')")},
        [("A", {"subject": "Hot", "tags": ["escalate"]}), ("A", {"subject": "Cold"})],
    ),
    (
        "requester role",
        {"ab": full(share_filter="requester.role == 'agent'")},
        [
            ("A", {"subject": "By an agent", "requester": BOB}),
            ("A", {"subject": "By a customer", "requester": ALICE}),
            ("A", {"subject": "By nobody"}),
        ],
    ),
    (
        "requester name, partial delegation",
        {"ab": partial(share_filter="starts_with(requester.name, 'Carol')")},
        [
            ("A", {"subject": "Carol's", "requester": CAROL}),
            ("A", {"subject": "Alice's", "requester": ALICE}),
        ],
    ),
    (
        "status",
        {"ab": full(share_filter="status == 'pending'")},
        [("A", {"subject": "Waiting", "status": "pending"}), ("A", {"subject": "New"})],
    ),
    (
        "custom field",
        {"ab": full(share_filter="custom_fields.priority == 'high'")},
        [
            ("A", {"subject": "Urgent", "custom_fields": {"priority": "high"}}),
            ("A", {"subject": "Whenever", "custom_fields": {"priority": "low"}}),
        ],
    ),
    (
        "subject",
        {"ab": full(share_filter="contains(subject, 'VIP')")},
        [("A", {"subject": "VIP: login broken"}), ("A", {"subject": "login broken"})],
    ),
    ("pending agreement", {"ab": full(status="pending")}, [("A", {"subject": "Too early"})]),
    ("declined agreement", {"ab": full(status="declined")}, [("A", {"subject": "Refused"})]),
    ("the receiver's own ticket", {"ab": full()}, [("B", {"subject": "Born on B"})]),
    (
        "fan-out under two filters",
        {
            "ab": full(share_filter="contains(tags, 'escalate')"),
            "ac": partial("A", "C", share_filter="requester.role == 'agent'"),
        },
        [
            ("A", {"subject": "Both", "tags": ["escalate"], "requester": BOB}),
            ("A", {"subject": "Only B", "tags": ["escalate"], "requester": ALICE}),
            ("A", {"subject": "Only C", "requester": CAROL}),
            ("A", {"subject": "Neither", "requester": ALICE}),
        ],
    ),
]

VERDICT = re.compile(r"^  (?P<agreement>\w+): (?P<reason>.+)$", re.MULTILINE)
SHARED = re.compile(r"^  agreement (?P<agreement>\w+): shared$", re.MULTILINE)


def verdicts(output: str) -> dict[str, str]:
    return {m["agreement"]: m["reason"] for m in VERDICT.finditer(output)}


@pytest.mark.parametrize(
    ("agreements", "tickets"),
    [pytest.param(agreements, tickets, id=name) for name, agreements, tickets in SCENARIOS],
)
def test_explain_says_what_sync_then_does(tmp_path, agreements, tickets):
    cli = bridge(tmp_path, agreements)
    made = [(instance, FakeTracker.named(instance).create_ticket(**t)) for instance, t in tickets]
    senders = {name: terms["sender"] for name, terms in agreements.items()}

    before = {ticket: cli("explain", f"{ticket[0]}:{ticket[1]}") for ticket in made}
    cli("sync")
    after = {ticket: cli("explain", f"{ticket[0]}:{ticket[1]}") for ticket in made}

    for (instance, local_id), explained in before.items():
        said = verdicts(explained.stdout)
        assert explained.exit_code == 0, explained.output
        assert f"{instance}:{local_id} is not shared with anyone." in explained.stdout
        sending = {name for name, sender in senders.items() if sender == instance}
        assert set(said) == sending, explained.stdout
        if not sending:
            assert f"No agreement has {instance} as sender" in explained.stdout
        promised = {name for name, reason in said.items() if reason.startswith("matches;")}
        done = set(SHARED.findall(after[instance, local_id].stdout))
        assert done == promised, (explained.stdout, after[instance, local_id].stdout)
        if not done:
            # Not shared, and for the reason explain gave before the run.
            assert verdicts(after[instance, local_id].stdout) == said
