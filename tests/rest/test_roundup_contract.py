"""The adapter contract suite against a real Roundup 2.6.0 tracker (a fresh one per test)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import pytest
from support.roundup import RoundupServer

from nhd_bridge.adapters.rest import RestAdapter
from nhd_bridge.core.model import Actor
from nhd_bridge.testing import AdapterContract

from .conftest import CUSTOM_FIELD_OVERRIDES, roundup_adapter


class TestRoundupContract(AdapterContract):
    # Roundup issues have no requester property, and messages are written as the API user.
    contract_requester: ClassVar[Actor | None] = None
    pagination_ticket_count = 7

    @pytest.fixture
    def adapter(self, roundup: RoundupServer) -> Iterator[RestAdapter]:
        adapter = roundup_adapter(
            roundup,
            "contract",
            **CUSTOM_FIELD_OVERRIDES,
            operations={"list_changed": {"pagination": {"page_size": 3}}},
        )
        yield adapter
        adapter.close()
