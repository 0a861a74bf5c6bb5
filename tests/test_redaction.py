"""Secrets stay out of logs even when a library logs the URL that carries them."""

from __future__ import annotations

import logging

import httpx
import pytest
from pydantic import SecretStr

from nhd_bridge.adapters.rest import RestAdapter, RestConfig
from nhd_bridge.core.adapter import AdapterConfig
from nhd_bridge.core.redaction import REDACTED, RedactingFilter, redact, register_secrets_of


def test_an_api_key_in_the_query_string_is_redacted_from_httpx_logs(caplog):
    config = RestConfig.model_validate(
        {
            "profile": "redmine",
            "base_url": "https://redmine.example.com/",
            "auth": {"type": "api_key", "name": "key", "location": "query", "key": "QUERYKEY-0001"},
        }
    )

    def tracker(request: httpx.Request) -> httpx.Response:
        assert request.url.params["key"] == "QUERYKEY-0001"  # the tracker still gets the key
        return httpx.Response(200, json={"issues": [], "total_count": 0, "offset": 0, "limit": 25})

    adapter = RestAdapter("redmine", config, transport=httpx.MockTransport(tracker))
    with caplog.at_level(logging.DEBUG):
        list(adapter.changed_since(None))
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "issues.json" in logged  # httpx did log the request line
    assert "QUERYKEY-0001" not in logged and REDACTED in logged


def test_every_secret_of_a_configuration_is_registered_nested_ones_too():
    class Auth(AdapterConfig):
        password: SecretStr

    class Config(AdapterConfig):
        auth: Auth
        tokens: list[SecretStr]

    register_secrets_of(
        Config(auth=Auth(password=SecretStr("nested-password")), tokens=[SecretStr("listed-tok")])
    )
    assert redact("p=nested-password t=listed-tok") == f"p={REDACTED} t={REDACTED}"


@pytest.mark.parametrize("value", ["", "yes", "12345"])
def test_values_too_short_to_be_credentials_are_not_redacted_everywhere(value):
    class Config(AdapterConfig):
        token: SecretStr

    register_secrets_of(Config(token=SecretStr(value)))
    assert redact(f"answer: {value}") == f"answer: {value}"


def test_the_filter_rewrites_a_formatted_record():
    class Config(AdapterConfig):
        token: SecretStr

    register_secrets_of(Config(token=SecretStr("formatted-secret")))
    record = logging.LogRecord(
        "x", logging.INFO, __file__, 1, "key=%s", ("formatted-secret",), None
    )
    RedactingFilter().filter(record)
    assert record.getMessage() == f"key={REDACTED}"
