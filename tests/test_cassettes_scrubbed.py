"""No cassette of any adapter carries a credential: the recorded traffic may be published."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

CASSETTES = Path(__file__).resolve().parent / "cassettes"
FILES = sorted(CASSETTES.rglob("*.yaml"))
CREDENTIAL_HEADERS = {
    "authorization",
    "cookie",
    "set-cookie",
    "proxy-authorization",
    "x-api-key",
    "x-redmine-api-key",
    "private-token",
    "x-asessionid",
}
SCRUBBED = {"<scrubbed>", "REDACTED", "<redacted>"}
# Tokens the test configurations use: a leak of the config into a recording shows up as these.
LEAK = re.compile(r"ghp_|not-a-real-token|admin-secret|Bearer [A-Za-z0-9]|Basic [A-Za-z0-9]")


def test_there_are_cassettes_to_check():
    assert len(FILES) > 50


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(CASSETTES)))
def test_cassette_has_no_credentials(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert LEAK.search(text) is None, f"{path.name}: {LEAK.search(text)}"
    recording = yaml.safe_load(text)
    for number, interaction in enumerate(recording["interactions"]):
        for part in ("request", "response"):
            headers = interaction[part].get("headers") or {}
            for name, values in headers.items():
                if name.lower() in CREDENTIAL_HEADERS:
                    assert set(values) <= SCRUBBED, f"{path.name} #{number} {part} {name}"
