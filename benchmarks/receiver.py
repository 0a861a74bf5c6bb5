"""Receiver benchmark: ticket-update requests per second and latency against a loopback serve.

Starts a real ``nhd-bridge serve`` (uvicorn, SQLite state store) on a free loopback port, plays
a partner that shares one ticket and then sends N ticket updates (each a PUT with one new comment,
as a Zendesk partner does), sequentially and then with C concurrent clients, and prints
requests/s and p50/p99 latency. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/receiver.py --requests 2000 --concurrency 8
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import yaml

from nhd_bridge.core.model import Agreement
from nhd_bridge.core.protocol.wire_store import WireStore
from nhd_bridge.core.state import StateStore

PARTNER_URL = "https://partner.example/sharing"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nhd-receiver-bench-") as tmp:
        folder = Path(tmp)
        port = _free_port()
        base = f"http://127.0.0.1:{port}"
        config = _write_config(folder, port)
        agreement = _accepted_agreement(folder, base)
        server = subprocess.Popen(
            [sys.executable, "-m", "nhd_bridge", "-c", str(config), "serve"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            _wait_healthy(base)
            headers = {
                "X-Ticket-Sharing-Token": agreement.token,
                "X-Ticket-Sharing-Version": "1",
                "Content-Type": "application/json",
            }
            ticket = _uuid("ticket")
            with httpx.Client(base_url=f"{base}/sharing", headers=headers) as client:
                shared = client.post(f"/tickets/{ticket}", content=_ticket_body(ticket))
                shared.raise_for_status()
                sequential = _run(client, ticket, args.requests, 1, "seq")
            _report("sequential", sequential)
            with httpx.Client(
                base_url=f"{base}/sharing",
                headers=headers,
                limits=httpx.Limits(max_connections=args.concurrency),
            ) as client:
                concurrent = _run(client, ticket, args.requests, args.concurrency, "par")
            _report(f"{args.concurrency} concurrent clients", concurrent)
        finally:
            server.terminate()
            server.wait(timeout=30)


def _run(
    client: httpx.Client, ticket: str, count: int, concurrency: int, label: str
) -> tuple[float, list[float], int]:
    def one(index: int) -> tuple[float, int]:
        body = json.dumps(
            {
                "uuid": ticket,
                "status": "open",
                "comments": [
                    {
                        "uuid": _uuid(f"{label}-{index}"),
                        "body": f"update {index}",
                        "public": True,
                        "authored_at": "2026-11-25 10:00:00 +0000",
                        "author": {"uuid": "agent-1", "name": "Agent"},
                    }
                ],
            }
        )
        started = time.perf_counter()
        response = client.put(f"/tickets/{ticket}", content=body)
        return time.perf_counter() - started, response.status_code

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        results = list(pool.map(one, range(count)))
    elapsed = time.perf_counter() - started
    failures = sum(1 for _, status in results if status != 200)
    return elapsed, [latency for latency, _ in results], failures


def _report(label: str, result: tuple[float, list[float], int]) -> None:
    elapsed, latencies, failures = result
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    print(
        f"{label}: {len(latencies)} ticket updates in {elapsed:.1f} s = "
        f"{len(latencies) / elapsed:.0f} req/s; p50 {statistics.median(ordered) * 1000:.1f} ms, "
        f"p99 {p99 * 1000:.1f} ms; non-200 answers: {failures}"
    )


def _write_config(folder: Path, port: int) -> Path:
    config = {
        "server": {"port": port, "receiver": {"base_url": f"http://127.0.0.1:{port}/sharing"}},
        "state": {"url": f"sqlite:///{folder / 'state.db'}"},
        "instances": {"desk": {"kind": "local", "path": str(folder / "desk.db")}},
    }
    path = folder / "bridge.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _accepted_agreement(folder: Path, base: str) -> Agreement:
    """The state after the invite round trip: the partner invited us and we accepted."""
    store = StateStore(f"sqlite:///{folder / 'state.db'}")
    wire = WireStore(store)
    agreement = Agreement.from_dict(
        {
            "uuid": _uuid("agreement"),
            "name": "Partner Inc",
            "status": "pending",
            "sender_url": PARTNER_URL,
            "receiver_url": f"{base}/sharing",
            "access_key": _uuid("key"),
            "allows_public_comments": True,
        }
    )
    wire.create_incoming_agreement(agreement)
    wire.set_status(agreement.uuid, "accepted")
    store.close()
    return agreement


def _ticket_body(ticket: str) -> str:
    return json.dumps(
        {
            "uuid": ticket,
            "subject": "Benchmark ticket",
            "status": "open",
            "requested_at": "2026-11-25 09:00:00 +0000",
            "requester": {"uuid": "customer-1", "name": "Customer"},
            "comments": [],
        }
    )


def _uuid(seed: str) -> str:
    return hashlib.sha1(f"{seed}-{os.getpid()}".encode()).hexdigest()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_healthy(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("serve did not become healthy within 30 s")


if __name__ == "__main__":
    main()
