"""A real Roundup 2.6.0 tracker on loopback, for the REST adapter's tests.

Following shared/roundup-notes.md: the classic template on sqlite, ``password_pbkdf2_default_rounds
=1000`` (13 ms per authenticated request instead of 150), no failed-login limiter, e-mail written to
a file instead of SMTP, and ``roundup-server -u root`` when running as root.

The bridge needs a breadcrumb property on issues and on messages, so ``schema.py`` gets
``nhd_uuid=String()`` on both classes before the tracker is initialised (plus any extra issue
properties a test asks for, such as custom fields).

Installing a tracker takes ~0.5 s, most of it hashing the admin password, so a *template* tracker is
built once per session and copied for every tracker a test needs (a copy starts in ~0.3 s). Roundup
missing is a failure with a clear message, never a skip: these tests are the adapter's proof.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

__all__ = [
    "ADMIN_PASSWORD",
    "ADMIN_USER",
    "RoundupError",
    "RoundupPerson",
    "RoundupServer",
    "RoundupTemplate",
]

ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-secret"
TRACKER_NAME = "tracker"
START_TIMEOUT_SECONDS = 30.0


class RoundupError(RuntimeError):
    """The test tracker could not be built or started; the message says what to install or fix."""


def roundup_bin() -> Path:
    """The folder holding roundup-admin and roundup-server: beside this Python, else on PATH."""
    here = Path(sys.executable).parent
    if (here / "roundup-admin").exists():
        return here
    found = shutil.which("roundup-admin")
    if found:
        return Path(found).parent
    raise RoundupError(
        "roundup-admin was not found beside the interpreter or on PATH. The REST adapter's tests "
        "need a real Roundup tracker: pip install 'roundup==2.6.0' (it is in the test extra)"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class RoundupTemplate:
    """An installed, initialised tracker folder that is copied, never served itself."""

    home: Path
    issue_properties: dict[str, str] = field(default_factory=dict)

    @classmethod
    def build(cls, root: Path, issue_properties: dict[str, str] | None = None) -> RoundupTemplate:
        extra = {"nhd_uuid": "String()", **(issue_properties or {})}
        home = root / "template"
        admin = roundup_bin() / "roundup-admin"
        settings = ",".join(
            [
                f"tracker_web=http://127.0.0.1:1/{TRACKER_NAME}/",
                "mail_domain=localhost",
                "mail_host=localhost",
                f"mail_debug={root / 'mail.log'}",
                "web_api_failed_login_limit=0",
                "password_pbkdf2_default_rounds=1000",
            ]
        )
        _run([admin, "-i", home, "install", "classic", "sqlite", settings], "install")
        schema = home / "schema.py"
        text = schema.read_text()
        issue_extra = "".join(f",\n                {name}={kind}" for name, kind in extra.items())
        text, issues = re.subn(
            r'(issue = IssueClass\(db, "issue",\n(?:.*\n)*?\s*status=Link\("status"\))',
            lambda match: match[1] + issue_extra,
            text,
        )
        text, msgs = re.subn(
            r"(inreplyto=String\(\))", r"\1,\n                nhd_uuid=String()", text
        )
        if issues != 1 or msgs != 1:
            raise RoundupError(
                f"the classic schema.py changed shape; cannot add properties {extra}"
            )
        schema.write_text(text)
        _run([admin, "-i", home, "initialise", ADMIN_PASSWORD], "initialise")
        return cls(home, extra)

    def serve(self, root: Path, port: int | None = None) -> RoundupServer:
        """Copy the template to ``root/tracker`` and start a server on it."""
        home = root / "tracker"
        shutil.copytree(self.home, home)
        server = RoundupServer(home, port or free_port())
        server.start()
        return server


@dataclass
class RoundupServer:
    """One roundup-server process serving one tracker folder at ``base_url``."""

    home: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.port}/{TRACKER_NAME}/"

    @property
    def rest_url(self) -> str:
        return f"{self.web}rest/"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start (or restart) the server on the same folder and port; waits until it answers."""
        if self.running:
            raise RoundupError(f"roundup-server for {self.home} is already running")
        _set_tracker_web(self.home / "config.ini", self.web)
        command = [
            str(roundup_bin() / "roundup-server"),
            *(["-u", "root"] if os.geteuid() == 0 else []),
            "-n",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-l",
            str(self.home / "server.log"),
            f"{TRACKER_NAME}={self.home}",
        ]
        output = open(self.home / "server.out", "ab")  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )
        output.close()
        self._wait_until_ready()

    def person(self) -> RoundupPerson:
        """A client acting like someone working in Roundup (not through the bridge)."""
        return RoundupPerson(self)

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (a clean stop, up to ~2 s for roundup-server) or, with ``kill``, SIGKILL (a
        crash; instant, used when a test is over)."""
        if self.process is None:
            return
        # roundup-server forks a child per connection, and a child keeps serving its keep-alive
        # connection after the parent is gone: stop the server's whole process group (its own
        # session, started below), so that "stopped" really means no answer.
        group = self.process.pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
            self.process.wait(timeout=5)
        # Children killed with their group may linger as zombies until reaped; what matters
        # is that nothing answers on the port any more.
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _port_open(self.port):
            time.sleep(0.02)
        self.process = None

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        last = "no answer"
        with httpx.Client(auth=(ADMIN_USER, ADMIN_PASSWORD), trust_env=False) as client:
            while time.monotonic() < deadline:
                if not self.running:
                    break
                try:
                    answer = client.get(self.rest_url, timeout=2)
                    if answer.status_code == 200:
                        return
                    last = f"HTTP {answer.status_code}"
                except httpx.TransportError as error:
                    last = type(error).__name__
                time.sleep(0.05)
        log = (self.home / "server.out").read_text(errors="replace")[-2000:]
        self.stop()
        raise RoundupError(f"roundup-server on port {self.port} did not start ({last}):\n{log}")


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _run(command: list[object], step: str) -> None:
    result = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=120
    )
    # roundup-admin reports some errors on stdout with exit status 0; "Error" is the tell.
    if result.returncode != 0 or result.stdout.lstrip().startswith("Error"):
        raise RoundupError(
            f"roundup-admin {step} failed ({result.returncode}): {result.stdout} {result.stderr}"
        )


def _set_tracker_web(config: Path, web: str) -> None:
    text = config.read_text()
    text, count = re.subn(r"(?m)^web = .*$", f"web = {web}", text, count=1)
    if count != 1:
        raise RoundupError(f"no 'web =' line in {config}")
    config.write_text(text)


class RoundupPerson:
    """Someone using the tracker directly over its REST API: reads issues, writes messages."""

    def __init__(self, server: RoundupServer):
        self.server = server

    def _client(self) -> httpx.Client:
        origin = self.server.web.split("/" + TRACKER_NAME)[0]
        return httpx.Client(
            base_url=self.server.rest_url,
            auth=(ADMIN_USER, ADMIN_PASSWORD),
            headers={"Origin": origin, "X-Requested-With": "test"},
            trust_env=False,
            timeout=10,
        )

    def issues(self) -> list[dict[str, object]]:
        with self._client() as client:
            listed = client.get("data/issue", params={"@fields": "id"}).raise_for_status()
        return [self.issue(item["id"]) for item in listed.json()["data"]["collection"]]

    def issue(self, issue_id: str) -> dict[str, object]:
        """The issue's attributes, with ``status`` as a name and ``messages`` as their texts."""
        with self._client() as client:
            data = (
                client.get(f"data/issue/{issue_id}", params={"@verbose": "2"})
                .raise_for_status()
                .json()["data"]["attributes"]
            )
            texts = []
            for message in data["messages"]:
                content = client.get(f"data/msg/{message['id']}/content").raise_for_status()
                texts.append(content.json()["data"]["data"])
        return {**data, "id": issue_id, "status": data["status"]["name"], "messages": texts}

    def create_issue(self, title: str, status: str = "unread") -> str:
        with self._client() as client:
            answer = client.post("data/issue", json={"title": title, "status": status})
            return answer.raise_for_status().json()["data"]["id"]

    def add_message(self, issue_id: str, text: str) -> str:
        with self._client() as client:
            answer = client.post(
                "data/msg", json={"content": text, "author": ADMIN_USER, "date": "."}
            ).raise_for_status()
            message_id = answer.json()["data"]["id"]
            self._patch(client, issue_id, {"@op": "add", "messages": [message_id]})
            return message_id

    def set(self, issue_id: str, **values: str) -> None:
        with self._client() as client:
            self._patch(client, issue_id, values)

    def _patch(self, client: httpx.Client, issue_id: str, body: dict[str, object]) -> None:
        etag = client.get(f"data/issue/{issue_id}").raise_for_status().headers["ETag"]
        client.patch(
            f"data/issue/{issue_id}", json=body, headers={"If-Match": etag}
        ).raise_for_status()
