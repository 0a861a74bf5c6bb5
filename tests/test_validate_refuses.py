"""``nhd-bridge validate`` refuses whatever ``sync`` would refuse, at the line to fix.

Each message is ``file:line: yaml.path: fix``, with "did you mean" where a near name exists.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from nhd_bridge.cli import main

HEAD = """\
plugins: [nhd_bridge.testing.fake]
instances:
  A: {kind: fake, statuses: [open, pending, solved]}
  B: {kind: fake, statuses: [New, Doing, Done]}
"""


@pytest.fixture
def validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    monkeypatch.delenv("NHD_BRIDGE_CONFIG", raising=False)

    def invoke(text: str, command: str = "validate") -> Result:
        config = tmp_path / "bridge.yaml"
        config.write_text(text, encoding="utf-8")
        return CliRunner().invoke(main, ["-c", str(config), command])

    return invoke


def one_error(result: Result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0].removeprefix("error: ").split(": ", 1)[1]  # without the file name


def test_a_status_map_target_the_receiver_lacks_is_refused_like_sync_refuses_it(validate):
    text = HEAD + (
        "agreements:\n  ab:\n    sender: A\n    receiver: B\n"
        "    status_map:\n      outbound:\n        open: New\n        solved: done\n"
    )
    message = one_error(validate(text))
    assert message.startswith("agreements.ab.status_map.outbound.solved: maps to 'done'")
    assert "did you mean 'Done'?" in message
    assert "B's statuses: New, Doing, Done" in message
    assert validate(text, "sync").exit_code == 2  # and sync refuses the same file


def test_a_status_map_source_the_sender_lacks_is_refused_with_the_near_name(validate):
    text = HEAD + (
        "agreements:\n  ab:\n    sender: A\n    receiver: B\n"
        "    status_map:\n      outbound:\n        pendng: Doing\n"
    )
    result = validate(text)
    message = one_error(result)
    assert message.startswith("agreements.ab.status_map.outbound.pendng: maps from 'pendng'")
    assert "did you mean 'pending'?" in message
    assert ":11: " in result.stderr


def test_a_status_map_partial_delegation_makes_dead_is_a_warning(validate):
    text = HEAD + (
        "agreements:\n  ab:\n    sender: A\n    receiver: B\n"
        "    allows_public_comments: false\n"
        "    status_map:\n      inbound: {New: open}\n"
    )
    result = validate(text)
    assert result.exit_code == 0, result.output
    assert "bridge.yaml:11: agreements.ab.status_map.inbound: warning: never used" in (
        result.stderr
    )


def test_a_duplicate_key_is_an_error_at_the_second_one(validate):
    text = HEAD + ("agreements:\n  ab:\n    sender: A\n    receiver: B\n    sender: B\n")
    result = validate(text)
    message = one_error(result)
    assert message.startswith("agreements.ab.sender: duplicate key (first on line 7)")
    assert ":9: " in result.stderr


def test_a_zero_schedule_is_refused(validate):
    text = HEAD + (
        "agreements:\n  ab:\n    sender: A\n    receiver: B\n    schedule: {every: 0s}\n"
    )
    assert one_error(validate(text)).startswith("agreements.ab.schedule.every: '0s' would run")


def test_an_unknown_key_is_reported_with_the_missing_key_it_was_meant_to_be(validate):
    text = HEAD + "agreements:\n  ab:\n    sender: A\n    recevier: B\n"
    result = validate(text)
    message = one_error(result)
    assert message == (
        "agreements.ab.recevier: unknown key; did you mean 'receiver'? "
        "(required and missing here: receiver)"
    )
    assert ":8: " in result.stderr


def test_an_unclosed_quote_is_reported_where_it_opens_not_at_the_end_of_the_file(validate):
    text = HEAD + 'agreements:\n  ab:\n    sender: "A\n    receiver: B\n\n\n\n'
    result = validate(text)
    message = one_error(result)
    assert "not valid YAML" in message
    assert ":7: " in result.stderr, result.stderr


REST_HEAD = """\
instances:
  hub:
    kind: rest
    profile: github
    base_url: https://api.github.com/
    auth: {type: bearer, token: not-a-token}
    vars: {owner: acme, repo: support}
    operations:
      list_changed:
        pagination:
"""


@pytest.mark.parametrize(
    ("paging", "needs"),
    [
        ("style: cursor\n          token_param: after", "needs next_token (JMESPath"),
        ("style: next_url", "needs next_url (JMESPath"),
    ],
)
def test_a_paging_style_without_the_expression_it_follows_is_refused_at_its_line(
    validate, paging, needs
):
    # Both used to validate, then read one page and stop without a word.
    result = validate(REST_HEAD + f"          {paging}\n")
    message = one_error(result)
    assert message.startswith("instances.hub.operations.list_changed.pagination: pagination style")
    assert needs in message
    assert ":10: " in result.stderr


def test_a_setting_of_another_paging_style_is_refused_by_name(validate):
    text = (
        REST_HEAD + "          style: cursor\n          next_token: next\n          first_page: 0\n"
    )
    message = one_error(validate(text))
    assert "first_page is not a setting of pagination style cursor" in message
    assert "belongs to style page" in message


def test_another_paging_style_than_the_profiles_keeps_only_the_settings_it_shares(validate):
    # GitHub's profile pages by Link header with per_page; a cursor style keeps per_page only.
    text = REST_HEAD + "          style: cursor\n          next_token: next\n"
    result = validate(text)
    assert result.exit_code == 0, result.output
