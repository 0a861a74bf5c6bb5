"""Engine benchmark: two embedded local trackers, measured as a user would run them.

Prints figures; asserts nothing about time. Three phases over one agreement:

1. initial sync of N tickets x C comments (tickets/s, peak RSS of the syncing process);
2. a re-run with no change (adapter calls, seconds);
3. a run after 1% of the tickets changed (adapter calls per changed ticket).

    .venv/bin/python benchmarks/engine.py                 # 10,000 x 5
    .venv/bin/python benchmarks/engine.py --tickets 1000  # quicker
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from nhd_bridge.adapters.local import LocalConfig, LocalTracker
from nhd_bridge.core.config import load_config
from nhd_bridge.core.engine import SyncEngine
from nhd_bridge.core.model import Actor
from nhd_bridge.core.state import StateStore

# Contract methods that never reach the tracker; counting them would blur "calls per ticket".
NOT_TRACKER_CALLS = frozenset({"attach", "agreement_terms", "close"})


class CountingAdapter:
    """Wraps an adapter and counts the tracker calls the engine makes through it."""

    def __init__(self, inner: Any, counter: Counter[str]):
        self._inner = inner
        self._counter = counter

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value) or name.startswith("_"):
            return value

        def counted(*args: Any, **kwargs: Any) -> Any:
            if name not in NOT_TRACKER_CALLS:
                self._counter[name] += 1
            result = value(*args, **kwargs)
            if name == "changed_since":
                return _counted_pages(result, self._counter)
            return result

        return counted


def _counted_pages(pages: Any, counter: Counter[str]) -> Any:
    for page in pages:
        counter["changed_since page"] += 1
        yield page


def seed(folder: Path, tickets: int, comments: int) -> None:
    tracker = LocalTracker(LocalConfig(path=folder / "support.db"))
    customer = Actor(uuid="customer-1", name="Customer", role="end-user")
    agent = Actor(uuid="agent-1", name="Agent", role="agent")
    for number in range(tickets):
        record = tracker.create_ticket(
            f"Ticket {number}", status="open", requester=customer, tags=["bench"]
        )
        for index in range(comments):
            tracker.add_comment(
                record.local_id,
                f"Comment {index} on ticket {number}: " + "lorem ipsum " * 8,
                public=index % 2 == 0,
                author=customer if index % 2 == 0 else agent,
            )
    tracker.close()


def write_config(folder: Path) -> Path:
    config = {
        "state": {"url": f"sqlite:///{folder / 'state.db'}"},
        "instances": {
            "support": {"kind": "local", "path": str(folder / "support.db")},
            "engineering": {"kind": "local", "path": str(folder / "engineering.db")},
        },
        "agreements": {
            "bench": {
                "sender": "support",
                "receiver": "engineering",
                "sync_tags": True,
                "max_closes_per_run": 100_000,
            }
        },
    }
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def timed_run(config_path: Path) -> tuple[float, Counter[str], Any]:
    config = load_config(config_path)
    store = StateStore(config.state_url)
    counter: Counter[str] = Counter()
    probe = SyncEngine(config, store)
    adapters = {
        name: CountingAdapter(probe.adapter(name), counter) for name in config.bridge.instances
    }
    engine = SyncEngine(config, store, adapters=adapters)  # type: ignore[arg-type]
    started = time.perf_counter()
    summary = engine.run("bench")
    elapsed = time.perf_counter() - started
    probe.close()
    store.close()
    return elapsed, counter, summary


def change_some(folder: Path, count: int) -> None:
    tracker = LocalTracker(LocalConfig(path=folder / "support.db"))
    for number in range(1, count + 1):
        tracker.add_comment(str(number * 97 % 10_000 or 1), "a new comment", public=True)
    tracker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tickets", type=int, default=10_000)
    parser.add_argument("--comments", type=int, default=5)
    parser.add_argument("--seed-only", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed_only:
        seed(args.seed_only, args.tickets, args.comments)
        return

    with tempfile.TemporaryDirectory(prefix="nhd-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        # Seeding runs in its own process so that peak RSS below is the bridge's alone.
        subprocess.run(
            [
                sys.executable,
                __file__,
                "--seed-only",
                str(folder),
                "--tickets",
                str(args.tickets),
                "--comments",
                str(args.comments),
            ],
            check=True,
        )
        print(
            f"seeded {args.tickets} tickets x {args.comments} comments "
            f"in {time.perf_counter() - started:.1f} s"
        )
        config_path = write_config(folder)

        elapsed, calls, summary = timed_run(config_path)
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"initial sync: {elapsed:.1f} s, {args.tickets / elapsed:.0f} tickets/s, "
            f"{summary.total_writes} writes, peak RSS {peak_mib:.0f} MiB"
        )
        print(f"  adapter calls: {dict(calls)}")

        elapsed, calls, summary = timed_run(config_path)
        print(
            f"re-run, nothing changed (echo of our own writes is read once): {elapsed:.2f} s, "
            f"{summary.total_writes} writes, adapter calls {sum(calls.values())} {dict(calls)}"
        )

        elapsed, calls, summary = timed_run(config_path)
        print(
            f"re-run again, nothing changed: {elapsed:.2f} s, {summary.total_writes} writes, "
            f"adapter calls {sum(calls.values())} {dict(calls)}"
        )

        changed = max(1, args.tickets // 100)
        change_some(folder, changed)
        elapsed, calls, summary = timed_run(config_path)
        total = sum(calls.values())
        print(
            f"after {changed} tickets changed (1%): {elapsed:.2f} s, "
            f"{summary.total_writes} writes, adapter calls {total} "
            f"({total / changed:.2f} per changed ticket) {dict(calls)}"
        )


if __name__ == "__main__":
    main()
