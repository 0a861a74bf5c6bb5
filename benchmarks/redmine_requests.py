"""Requests a sync costs against a real Redmine 5.0: idle poll, ten changed issues, ten pushed.

Starts a real Redmine (tests/support/redmine.py, the Debian package), fills its project with
N issues of C notes each (the harness's ``populate``, one ``rails runner``), and
shares them to an embedded local tracker (the agreement's receiver) through the engine, with a
counting FaultProxy (no faults) in front of Redmine. Prints the Redmine requests of:

1. the first sync (every issue read whole: journals come only with one issue);
2. an idle poll (nothing changed; the goal is 1 request);
3. a run after ten issues got a note in Redmine;
4. a run after ten shared tickets got a status change and a comment on the local side.

Prints figures; asserts nothing.

    .venv/bin/python benchmarks/redmine_requests.py                  # 1,000 x 3
    .venv/bin/python benchmarks/redmine_requests.py --issues 200     # quicker
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.redmine import RedmineServer, populate

from nhd_bridge.adapters.local import LocalConfig, LocalTracker
from nhd_bridge.core.config import load_config
from nhd_bridge.core.engine import SyncEngine
from nhd_bridge.core.state import StateStore
from nhd_bridge.testing.faultproxy import FaultProxy

REDMINE_STATUSES = ["New", "In Progress", "Resolved", "Feedback", "Closed", "Rejected"]


def write_config(folder: Path, server: RedmineServer, base_url: str) -> Path:
    redmine = server.instance_config(base_url=base_url)
    config = {
        "state": {"url": f"sqlite:///{folder / 'state.db'}"},
        "instances": {
            "redmine": redmine,
            "desk": {
                "kind": "local",
                "path": str(folder / "desk.db"),
                "statuses": REDMINE_STATUSES,
            },
        },
        "agreements": {
            "bench": {"sender": "redmine", "receiver": "desk", "max_closes_per_run": 100_000}
        },
    }
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def counted_run(config_path: Path, proxy: FaultProxy) -> tuple[int, Counter[str], float, Any]:
    config = load_config(config_path)
    store = StateStore(config.state_url)
    engine = SyncEngine(config, store)
    before = proxy.stats
    started = time.perf_counter()
    summary = engine.run("bench")
    elapsed = time.perf_counter() - started
    after = proxy.stats
    engine.close()
    store.close()
    methods = after.methods - before.methods
    return after.requests - before.requests, methods, elapsed, summary


def report(label: str, figures: tuple[int, Counter[str], float, Any]) -> None:
    requests, methods, elapsed, summary = figures
    errors = getattr(summary, "errors", None)
    print(
        f"{label}: {requests} Redmine requests {dict(methods)}, {elapsed:.1f} s, "
        f"{summary.total_writes} writes{', errors: ' + str(errors) if errors else ''}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=1_000)
    parser.add_argument("--notes", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nhd-redmine-bench-") as tmp:
        folder = Path(tmp)
        server = RedmineServer.launch(folder / "redmine", template_dir=folder / "template")
        try:
            started = time.perf_counter()
            populate(server, server.project, args.issues, args.notes)
            print(
                f"populated {args.issues} issues x {args.notes} notes "
                f"in {time.perf_counter() - started:.1f} s"
            )
            with FaultProxy(server.url) as proxy:
                config_path = write_config(folder, server, proxy.url)
                report("first sync", counted_run(config_path, proxy))
                # The echo of the first sync's own writes is read once; settle it first.
                time.sleep(3.5)
                report("second run (settles the first sync)", counted_run(config_path, proxy))
                time.sleep(3.5)  # past the lookback: an issue read since is known unchanged
                seen_before = len(proxy.history)
                report("idle poll", counted_run(config_path, proxy))
                for event in proxy.history[seen_before:]:
                    print(f"  {event.method} {event.path.split('?')[0]}")

                with server.api() as person:
                    listed = person.get(
                        "issues.json",
                        params={"project_id": server.project, "status_id": "*", "limit": 10},
                    ).json()["issues"]
                    for issue in listed:
                        person.put(
                            f"issues/{issue['id']}.json",
                            json={"issue": {"notes": "A person adds a note"}},
                        ).raise_for_status()
                report("ten issues changed in Redmine", counted_run(config_path, proxy))
                time.sleep(3.5)
                counted_run(config_path, proxy)  # settle the echo

                desk_config = LocalConfig(path=folder / "desk.db", statuses=REDMINE_STATUSES)
                with LocalTracker(desk_config) as desk:
                    for ticket in desk.list_tickets()[:10]:
                        desk.set_status(ticket.local_id, "In Progress")
                        desk.add_comment(ticket.local_id, "An agent replies", public=True)
                report("ten local changes pushed", counted_run(config_path, proxy))
        finally:
            server.close()


if __name__ == "__main__":
    main()
