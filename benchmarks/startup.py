"""Command-line startup benchmark: how long ``nhd-bridge`` takes before it does anything.

Runs each command line N times in a fresh interpreter (as a person or a cron job does) and prints
the fastest, median and slowest wall time, and which plugins and heavy libraries it imported.
``--help`` loads every installed plugin (to list the commands they add); ``sync --help`` and
``validate --help`` load none. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/startup.py --runs 10
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

COMMAND_LINES = [["--help"], ["sync", "--help"], ["local", "--help"], ["agreements", "--help"]]
HEAVY = ("pydantic", "httpx", "sqlalchemy", "yaml", "rich", "jira", "requests", "fastapi")

PROBE = """
import json, sys
from nhd_bridge.cli import main
main.main(sys.argv[1:], prog_name="nhd-bridge", standalone_mode=False)
heavy = sorted(name for name in {heavy!r} if name in sys.modules)
plugins = sorted(m for m in sys.modules if m.startswith("nhd_bridge.adapters."))
print(json.dumps({{"heavy": heavy, "adapter_modules": plugins}}), file=sys.stderr)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    print(f"{'command':<28} {'min':>7} {'median':>7} {'max':>7}   imported")
    for command_line in COMMAND_LINES:
        seconds = [_wall_time(command_line) for _ in range(args.runs)]
        loaded = _what_it_loads(command_line)
        label = "nhd-bridge " + " ".join(command_line)
        print(
            f"{label:<28} {min(seconds):7.3f} {statistics.median(seconds):7.3f} "
            f"{max(seconds):7.3f}   heavy={loaded['heavy']} "
            f"adapter modules={len(loaded['adapter_modules'])}"
        )


def _wall_time(command_line: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "nhd_bridge", *command_line], capture_output=True, check=True
    )
    return time.perf_counter() - started


def _what_it_loads(command_line: list[str]) -> dict[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(heavy=HEAVY), *command_line],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded: dict[str, list[str]] = json.loads(done.stderr.strip().splitlines()[-1])
    return loaded


if __name__ == "__main__":
    main()
