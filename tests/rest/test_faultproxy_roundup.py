"""The FaultProxy in front of a real Roundup: Roundup checks Host and Origin on every write, so the
proxy must present itself as the tracker for the adapter to work through it at all."""

from __future__ import annotations

import httpx
import pytest
from support.roundup import ADMIN_PASSWORD, ADMIN_USER, RoundupServer

from nhd_bridge.testing import FaultProxy

from .conftest import roundup_adapter


def test_the_adapter_works_through_the_proxy(roundup: RoundupServer) -> None:
    with FaultProxy(roundup.rest_url) as proxy:
        results = roundup_adapter(roundup, base_url=proxy.url).check()

        assert all(result.ok for result in results), results
        assert proxy.stats.forwarded >= 1


def test_a_write_whose_answer_was_lost_was_made(roundup: RoundupServer) -> None:
    with (
        FaultProxy(roundup.rest_url) as proxy,
        httpx.Client(
            base_url=proxy.url,
            auth=(ADMIN_USER, ADMIN_PASSWORD),
            headers={"Origin": proxy.origin, "X-Requested-With": "test"},
            trust_env=False,
        ) as through_proxy,
    ):
        proxy.next("lost_answer", method="POST", path_regex=r"/data/issue$")
        with pytest.raises(httpx.RemoteProtocolError):
            through_proxy.post("data/issue", json={"title": "made in the dark"})
        answer = through_proxy.post("data/issue", json={"title": "made in daylight"})

    assert answer.status_code == 201, answer.text
    titles = [issue["title"] for issue in roundup.person().issues()]
    assert titles == ["made in the dark", "made in daylight"]
