"""How large a shared ticket's JSON gets: the figures behind ``server.receiver.max_body_bytes``.

A share (POST /tickets) carries the whole ticket with every comment, and Zendesk's client PUTs
the whole object again on updates (ticket_sharing gem, base.rb ``as_json``), so the longest
ticket a partner holds is the largest body the receiver must take. This builds tickets in the
gem's shape (every field, nulls included; each comment with a plain ``body`` and an
``html_body`` twice its size, as a mail thread with quoted replies renders), serialises them as
the gem does (compact JSON), parses them back through our model, and prints bytes, parse time and
the parser's peak memory. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/nhd_share_size.py
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc

from nhd_bridge.core.model import Ticket
from nhd_bridge.core.protocol.settings import DEFAULT_MAX_BODY_BYTES

# (label, comments, plain body bytes per comment)
SHAPES = [
    ("typical long ticket", 200, 2 * 1024),
    ("long ticket, big mails", 1000, 16 * 1024),
    ("very long ticket, big mails", 2000, 16 * 1024),
]


def gem_ticket(comments: int, body_bytes: int) -> dict[str, object]:
    """A ticket as ``Ticket#to_json`` writes it, with ``comments`` comments of that size."""
    text = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 1000)[:body_bytes]
    html = f"<div><p>{text}</p><blockquote>{text[: body_bytes - 40]}</blockquote></div>"
    actor = {"uuid": "0" * 40, "name": "Zed Agent", "role": "agent"}
    return {
        "uuid": "1" * 40,
        "subject": "A long-running escalation",
        "requested_at": "2024-03-01 09:00:00 +0100",
        "status": "open",
        "requester": actor,
        "comments": [
            {
                "uuid": f"{index:040x}",
                "author": actor,
                "body": text,
                "html_body": html,
                "authored_at": "2024-03-01 09:15:00 +0100",
                "public": index % 3 != 0,
                "attachments": None,
                "custom_fields": None,
            }
            for index in range(comments)
        ],
        "current_actor": actor,
        "tags": ["escalation", "vip"],
        "original_id": "4711",
        "custom_fields": None,
        "custom_status": None,
    }


def share_bytes(comments: int, body_bytes: int) -> int:
    return len(json.dumps(gem_ticket(comments, body_bytes), separators=(",", ":")).encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    print(f"default max_body_bytes: {DEFAULT_MAX_BODY_BYTES / 2**20:.0f} MiB")
    for label, comments, body in SHAPES:
        raw = json.dumps(gem_ticket(comments, body), separators=(",", ":")).encode()
        tracemalloc.start()
        started = time.perf_counter()
        Ticket.from_dict(json.loads(raw))
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        print(
            f"{label}: {comments} comments x {body // 1024} KiB text (+ HTML): "
            f"{len(raw) / 2**20:.1f} MiB of JSON, parsed in {elapsed:.2f} s, "
            f"peak {peak / 2**20:.0f} MiB while parsing"
        )


if __name__ == "__main__":
    main()
