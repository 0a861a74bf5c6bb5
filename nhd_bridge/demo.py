"""``make demo``: a real bridge between two embedded trackers, driven by the real command line.

It plays a help desk ("support") escalating a customer's ticket to an engineering tracker, the
engineer answering, and the answer reaching the help desk, with the exact commands a user would
type. Everything lives in ``demo-data/`` beside ``plugins.example.yaml`` and is reset each time.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "plugins.example.yaml"
DATA = ROOT / "demo-data"


def main() -> int:
    if not CONFIG.exists():
        print(f"demo: {CONFIG} is missing; run make demo from a checkout", file=sys.stderr)
        return 2
    shutil.rmtree(DATA, ignore_errors=True)
    DATA.mkdir()

    say("A customer writes to the help desk; an agent adds a private note and escalates.")
    cli(
        "local",
        "--instance",
        "support",
        "create",
        "Printer on fire",
        "--requester",
        "Ann Customer",
        "--tag",
        "escalate",
        "--tag",
        "hardware",
    )
    cli(
        "local",
        "--instance",
        "support",
        "comment",
        "1",
        "It smokes when I print in colour.",
        "--author",
        "Ann Customer",
        "--role",
        "end-user",
    )
    cli(
        "local",
        "--instance",
        "support",
        "comment",
        "1",
        "VIP account, handle first.",
        "--private",
        "--author",
        "Sam Agent",
    )
    cli("local", "--instance", "support", "field", "1", "priority", "urgent")
    say("A second ticket is not tagged 'escalate', so the share filter keeps it at home.")
    cli("local", "--instance", "support", "create", "How do I reset my password?")

    say("First pass of the bridge: the escalated ticket is shared with engineering.")
    cli("sync")
    cli("local", "--instance", "engineering", "show", "1")

    say("An engineer answers the customer, leaves a private note and solves the ticket.")
    cli(
        "local",
        "--instance",
        "engineering",
        "comment",
        "1",
        "Replaced the fuser unit; please try again.",
        "--author",
        "Eve Engineer",
    )
    cli(
        "local",
        "--instance",
        "engineering",
        "comment",
        "1",
        "Root cause: batch 42 fusers.",
        "--private",
        "--author",
        "Eve Engineer",
    )
    cli("local", "--instance", "engineering", "status", "1", "solved")

    say("Second pass: the answer, the note and the status reach the help desk.")
    cli("plan")
    cli("sync")
    cli("local", "--instance", "support", "show", "1")

    say("Third pass: everything is in sync, so the bridge writes nothing.")
    cli("sync")
    say("The journal says what was written, and why.")
    cli("log", "-n", "20")
    cli("explain", "support:1")
    return 0


def say(text: str) -> None:
    print(f"\n\033[1;34m== {text}\033[0m", flush=True)


def cli(*args: str) -> None:
    command = [sys.executable, "-m", "nhd_bridge", "-c", str(CONFIG), *args]
    shown = " ".join(shlex.quote(part) for part in ["nhd-bridge", "-c", CONFIG.name, *args])
    print(f"\033[1m$ {shown}\033[0m", flush=True)
    completed = subprocess.run(command, cwd=ROOT, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"demo: `{shown}` failed with exit code {completed.returncode}")


if __name__ == "__main__":
    raise SystemExit(main())
