"""A receiver on a real (temporary) SQLite state store, driven through FastAPI's TestClient."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    # Starlette nudges towards httpx2; the TestClient over httpx is the seam the project uses.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

from nhd_bridge.core.model import Agreement
from nhd_bridge.core.protocol.receiver import TOKEN_HEADER, VERSION_HEADER, create_receiver_app
from nhd_bridge.core.protocol.settings import ReceiverSettings
from nhd_bridge.core.protocol.wire_store import WireAgreement, WireStore
from nhd_bridge.core.state import StateStore

OUR_URL = "https://us.example/sharing"
THEIR_URL = "https://them.example/sharing"
PREFIX = "/sharing"


def hex40(seed: str) -> str:
    """A deterministic 40-hex uuid or key, readable in failures."""
    return (seed.encode().hex() + "0" * 40)[:40]


AGREEMENT = hex40("agreement")
KEY = hex40("key")
TICKET = hex40("ticket")


def invite_body(uuid: str = AGREEMENT, key: str = KEY, **extra: Any) -> dict[str, Any]:
    """A partner's invite to us: we are the receiver."""
    return {
        "uuid": uuid,
        "name": "Them Inc",
        "status": "pending",
        "sender_url": THEIR_URL,
        "receiver_url": OUR_URL,
        "access_key": key,
        **extra,
    }


def ticket_body(uuid: str = TICKET, **extra: Any) -> dict[str, Any]:
    """A full ticket, as a sender shares it ([API-md] example shape)."""
    return {
        "uuid": uuid,
        "subject": "Printer on fire",
        "requested_at": "2010-11-24 14:13:54 -0800",
        "status": "open",
        "requester": {"uuid": "req-1", "name": "Rita Requester"},
        "comments": [
            {
                "uuid": "comment-1",
                "author": {"uuid": "req-1", "name": "Rita Requester"},
                "body": "It is on fire.",
                "authored_at": "2010-11-24 14:13:54 -0800",
            },
            {
                "uuid": "comment-2",
                "author": {"uuid": "agent-1", "name": "Al Agent", "role": "agent"},
                "body": "Have you tried water?",
                "authored_at": "2010-11-24 14:20:00 -0800",
                "public": True,
            },
        ],
        **extra,
    }


class Receiver:
    """One receiver app with its store, plus helpers that speak for the partner."""

    def __init__(self, tmp_path: Path, settings: ReceiverSettings):
        self.settings = settings
        self.state = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
        self.store = WireStore(self.state)
        self.app = create_receiver_app(settings, self.store)
        self.client = TestClient(self.app, raise_server_exceptions=True)
        self.prefix = settings.path_prefix

    def close(self) -> None:
        self.client.close()
        self.state.close()

    # --- requests -------------------------------------------------------------------------------

    @staticmethod
    def headers(
        token: str | None = None, *, version: str | None = "1", content_type: str | None = None
    ) -> dict[str, str]:
        headers = {"Content-Type": content_type or "application/json"}
        if version is not None:
            headers[VERSION_HEADER] = version
        if token is not None:
            headers[TOKEN_HEADER] = token
        return headers

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = None,
        version: str | None = "1",
        content_type: str | None = None,
        raw: bytes | str | None = None,
    ) -> Any:
        content = raw if raw is not None else (None if body is None else _dumps(body))
        return self.client.request(
            method,
            f"{self.prefix}{path}",
            content=content,
            headers=self.headers(token, version=version, content_type=content_type),
        )

    # --- fixtures in the state a conformance case starts from -----------------------------------

    def invite(self, uuid: str = AGREEMENT, key: str = KEY, **extra: Any) -> Any:
        return self.request(
            "POST",
            f"/agreements/{uuid}",
            invite_body(uuid, key, **extra),
            token=f"{uuid}:{key}",
        )

    def incoming(
        self, status: str = "accepted", uuid: str = AGREEMENT, key: str = KEY, **flags: Any
    ) -> WireAgreement:
        """An agreement the partner sent us (we are the receiver), moved locally to ``status``."""
        response = self.invite(uuid, key, **flags)
        assert response.status_code == 201, response.text
        if status == "declined":
            return self.store.set_status(uuid, "declined")
        if status in {"accepted", "inactive"}:
            agreement = self.store.set_status(uuid, "accepted")
            if status == "inactive":
                agreement = self.store.set_status(uuid, "inactive")
            return agreement
        return self.store.get_agreement(uuid)  # type: ignore[return-value]

    def outgoing(
        self, status: str = "pending", uuid: str = AGREEMENT, key: str = KEY, **flags: Any
    ) -> WireAgreement:
        """Our own agreement (we are the sender); ``accepted`` as if the partner accepted."""
        agreement = self.store.create_outgoing_agreement(
            Agreement(
                uuid=uuid,
                name="Us Ltd",
                status="pending",
                sender_url=OUR_URL,
                receiver_url=THEIR_URL,
                access_key=key,
                **flags,
            )
        )
        if status == "accepted":
            response = self.request(
                "PUT", f"/agreements/{uuid}", {"status": "accepted"}, token=f"{uuid}:{key}"
            )
            assert response.status_code == 200, response.text
            agreement = self.store.get_agreement(uuid)  # type: ignore[assignment]
        return agreement

    def share(self, body: dict[str, Any] | None = None, *, token: str = f"{AGREEMENT}:{KEY}"):
        body = body or ticket_body()
        return self.request("POST", f"/tickets/{body['uuid']}", body, token=token)


def _dumps(body: Any) -> str:
    return json.dumps(body)


@pytest.fixture
def make_receiver(tmp_path: Path) -> Iterator[Callable[..., Receiver]]:
    """Build a receiver with other settings (strict mode, reactivation, a small body cap)."""
    made: list[Receiver] = []

    def make(**settings: Any) -> Receiver:
        directory = tmp_path / f"receiver-{len(made)}"
        directory.mkdir()
        receiver = Receiver(directory, ReceiverSettings(base_url=OUR_URL, **settings))
        made.append(receiver)
        return receiver

    yield make
    for receiver in made:
        receiver.close()


@pytest.fixture
def receiver(make_receiver: Callable[..., Receiver]) -> Receiver:
    """The default, lenient receiver at https://us.example/sharing."""
    return make_receiver()


@pytest.fixture
def token() -> str:
    return f"{AGREEMENT}:{KEY}"
