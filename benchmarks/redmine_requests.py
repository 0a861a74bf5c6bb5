"""Requests a sync costs against a real Redmine 5.0: idle poll, ten changed issues, ten pushed.

Starts a real Redmine (tests/support/redmine.py, the Debian package), fills its project with
N issues of C notes each (a ``rails runner`` script: minutes of REST calls become seconds), and
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
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from support.redmine import REDMINE_ROOT, RedmineServer

from nhd_bridge.adapters.local import LocalConfig, LocalTracker
from nhd_bridge.core.config import load_config
from nhd_bridge.core.engine import SyncEngine
from nhd_bridge.core.state import StateStore
from nhd_bridge.testing.faultproxy import FaultProxy

REDMINE_STATUSES = ["New", "In Progress", "Resolved", "Feedback", "Closed", "Rejected"]

POPULATE_RB = """
project = Project.find_by_identifier!(ENV.fetch('NHD_PROJECT'))
admin = User.find_by_login!('admin')
User.current = admin
issues, notes = ENV.fetch('NHD_ISSUES').to_i, ENV.fetch('NHD_NOTES').to_i
ActiveRecord::Base.transaction do
  issues.times do |i|
    issue = Issue.create!(project: project, tracker: project.trackers.first, author: admin,
                          subject: "Issue #{i + 1}", description: "Description of issue #{i + 1}")
    notes.times do |j|
      Journal.create!(journalized: issue, user: admin, notes: "Note #{j + 1} of issue #{i + 1}")
    end
  end
end
"""


def populate(server: RedmineServer, issues: int, notes: int, folder: Path) -> None:
    script = folder / "populate.rb"
    script.write_text(POPULATE_RB)
    instance = server._instance.link.name  # the start script's instance name
    subprocess.run(
        ["ruby", "bin/rails", "runner", str(script)],
        cwd=REDMINE_ROOT,
        env={
            **os.environ,
            "RAILS_ENV": "production",
            "X_DEBIAN_SITEID": instance,
            "NHD_PROJECT": server.project,
            "NHD_ISSUES": str(issues),
            "NHD_NOTES": str(notes),
        },
        check=True,
    )


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
            populate(server, args.issues, args.notes, folder)
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
                report("idle poll", counted_run(config_path, proxy))

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
