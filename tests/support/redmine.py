"""A real Redmine 5.0 (Debian package) on loopback, for tests that must hold against the tracker
itself, not an emulator of its documentation.

Following shared/redmine/NOTES.md: ``redmine-instance/start_redmine.sh DIR PORT`` (vendored beside
this file) serves one instance with its own SQLite database under DIR, on WEBrick, with the REST API
on, ``login_required`` (a bad key is a 401, not anonymous), project ``support`` and an issue custom
field ``nhd_uuid`` usable as a filter. A prepared database is cached in a template folder, so each
further instance starts in about 3 s.

Whether these tests run (the rule of DEVELOPERS.md for trackers that need a system install):
Redmine missing and ``NHD_TEST_REDMINE`` unset skips them, with the command that enables them;
``NHD_TEST_REDMINE=1`` (CI sets it) makes a missing or broken Redmine a failure.

Every server this module starts is stopped, and its ``/usr/share/redmine/instances/probe-*`` symlink
removed, by :meth:`RedmineServer.close` (fixture teardown) or, failing that, at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import hashlib
import itertools
import os
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "ENABLE_COMMAND",
    "RedmineError",
    "RedmineServer",
    "populate",
    "redmine_available",
    "redmine_required",
]

SCRIPTS = Path(__file__).parent / "redmine-instance"
START_SCRIPT = SCRIPTS / "start_redmine.sh"
PRESEED = SCRIPTS / "preseed.txt"
POPULATE_SCRIPT = SCRIPTS / "populate.rb"
REDMINE_ROOT = Path(os.environ.get("REDMINE_ROOT", "/usr/share/redmine"))
API_KEY_HEADER = "X-Redmine-API-Key"
DEFAULT_PROJECT = "support"
START_TIMEOUT_SECONDS = 120
STOP_TIMEOUT_SECONDS = 10

ENABLE_COMMAND = (
    f"sudo sh -c 'debconf-set-selections {PRESEED.relative_to(Path(__file__).parents[2])} && "
    "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "
    "--no-install-recommends redmine redmine-sqlite curl' && NHD_TEST_REDMINE=1 make test"
)


class RedmineError(RuntimeError):
    """The test Redmine could not be started or used; the message says what to install or fix."""


def redmine_required() -> bool:
    """CI (and anyone who sets NHD_TEST_REDMINE=1) wants a missing Redmine to fail, not skip."""
    return os.environ.get("NHD_TEST_REDMINE", "").strip() not in ("", "0")


def redmine_available() -> str | None:
    """None when a test Redmine can be started here, else the reason it cannot."""
    if not (REDMINE_ROOT / "config" / "multitenancy_environment.rb").exists():
        return f"Redmine (the Debian package) is not installed in {REDMINE_ROOT}"
    if not os.access(REDMINE_ROOT / "instances", os.W_OK):
        return (
            f"{REDMINE_ROOT / 'instances'} is not writable by this user (the test instances are "
            "symlinked there; run the tests as root, as CI does)"
        )
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(eq=False)  # hashed by identity: one per folder
class _Instance:
    """One instance folder and its server process, shared by every view of one server."""

    home: Path
    port: int
    template_dir: Path | None
    api_key: str = ""
    uuid_field_id: int = 0
    pid: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def link(self) -> Path:
        # The start script's instance name: probe-<sha1 of the folder's real path>[:12].
        digest = hashlib.sha1(str(self.home.resolve()).encode()).hexdigest()[:12]
        return REDMINE_ROOT / "instances" / f"probe-{digest}"


_LIVE: set[_Instance] = set()  # guarded by _LIVE_LOCK; what atexit must clean up
_LIVE_LOCK = threading.Lock()
_PROJECT_NUMBERS = itertools.count(1)


@dataclass
class RedmineServer:
    """One real Redmine instance on loopback, seen through one of its projects.

    Views made by :meth:`with_project` share the server: stopping one stops them all.
    """

    _instance: _Instance
    project: str = DEFAULT_PROJECT

    # -- building --------------------------------------------------------------------------------

    @classmethod
    def launch(
        cls, home: Path, *, template_dir: Path | None = None, port: int | None = None
    ) -> RedmineServer:
        """Prepare (or reuse) the instance folder ``home`` and start its server."""
        reason = redmine_available()
        if reason:
            raise RedmineError(f"{reason}. To install it and run these tests: {ENABLE_COMMAND}")
        server = cls(_Instance(Path(home), port or free_port(), template_dir))
        server.start()
        return server

    def with_project(self, project: str) -> RedmineServer:
        """The same server, with ``project`` as this view's default project."""
        return dataclasses.replace(self, project=project)

    # -- the interface tests code against --------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._instance.port}/"

    @property
    def api_key(self) -> str:
        return self._instance.api_key

    @property
    def uuid_field_id(self) -> int:
        return self._instance.uuid_field_id

    @property
    def home(self) -> Path:
        return self._instance.home

    @property
    def port(self) -> int:
        return self._instance.port

    @property
    def running(self) -> bool:
        pid = self._instance.pid
        return pid is not None and _alive(pid)

    def start(self) -> None:
        """Start (or restart) the server on the same port and data; returns once the API answers."""
        instance = self._instance
        with instance.lock:
            if instance.pid is not None and _alive(instance.pid):
                raise RedmineError(f"the Redmine of {instance.home} is already running")
            environment = {**os.environ, "WAIT_SECS": str(START_TIMEOUT_SECONDS)}
            environment.pop("RESET", None)
            if instance.template_dir is not None:
                environment["REDMINE_TEMPLATE_DIR"] = str(instance.template_dir)
            with _LIVE_LOCK:
                _LIVE.add(instance)
            result = subprocess.run(
                [str(START_SCRIPT), str(instance.home), str(instance.port)],
                capture_output=True,
                text=True,
                env=environment,
                timeout=START_TIMEOUT_SECONDS + 60,
            )
            pid_file = instance.home / "server.pid"
            if pid_file.exists():
                instance.pid = int(pid_file.read_text().strip() or 0) or None
            if result.returncode != 0:
                self._kill_locked()
                raise RedmineError(
                    f"Redmine did not start in {instance.home} on port {instance.port} "
                    f"(start_redmine.sh exit {result.returncode}):\n{result.stderr[-3000:]}"
                )
            instance.api_key = result.stdout.split()[-1]
            instance.uuid_field_id = int(
                (instance.home / "config" / "nhd_uuid_cf_id.txt").read_text().strip()
            )

    def stop(self) -> None:
        """Kill the server process (SIGTERM, then SIGKILL); the data stays for :meth:`start`."""
        with self._instance.lock:
            self._kill_locked()

    def close(self) -> None:
        """Stop the server and remove its instance symlink (fixture teardown)."""
        _close(self._instance)

    def instance_config(
        self, *, base_url: str | None = None, project: str | None = None, **overrides: Any
    ) -> dict[str, Any]:
        """The YAML (as a dict) of a ``kind: rest, profile: redmine`` instance for this server.

        ``base_url`` points the adapter elsewhere (a FaultProxy in front of this server); other
        keyword arguments are top-level keys of the instance (``retries``, ``vars``...), replacing
        the default ones.
        """
        config: dict[str, Any] = {
            "kind": "rest",
            "profile": "redmine",
            "base_url": base_url or self.url,
            "auth": {"type": "api_key", "name": API_KEY_HEADER, "key": self.api_key},
            "vars": {"project_id": project or self.project, "uuid_field_id": self.uuid_field_id},
        }
        config.update(overrides)
        return config

    def new_project(self) -> str:
        """A fresh project (all trackers, all modules) and its identifier; nhd_uuid applies to it
        because the field is for all projects."""
        number = next(_PROJECT_NUMBERS)
        identifier = f"p{number}-{os.urandom(3).hex()}"
        with self.api() as client:
            trackers = [item["id"] for item in _ok(client.get("trackers.json"))["trackers"]]
            _ok(
                client.post(
                    "projects.json",
                    json={
                        "project": {
                            "name": f"Test project {number}",
                            "identifier": identifier,
                            "is_public": True,
                            "tracker_ids": trackers,
                            "enabled_module_names": PROJECT_MODULES,
                        }
                    },
                )
            )
        return identifier

    def api(self) -> httpx.Client:
        """A client acting as a person in Redmine (the admin), with the key and base_url set."""
        return httpx.Client(
            base_url=self.url,
            headers={API_KEY_HEADER: self.api_key},
            trust_env=False,
            timeout=30,
        )

    # -- helpers ---------------------------------------------------------------------------------

    def _kill_locked(self) -> None:
        instance = self._instance
        pid, instance.pid = instance.pid, None
        if pid is not None:
            _terminate(pid)
        (instance.home / "server.pid").unlink(missing_ok=True)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        while time.monotonic() < deadline and _port_open(instance.port):
            time.sleep(0.05)


# Every module of Redmine 5.0 (Redmine::AccessControl.available_project_modules).
PROJECT_MODULES = [
    "issue_tracking",
    "time_tracking",
    "news",
    "documents",
    "files",
    "wiki",
    "repository",
    "boards",
    "calendar",
    "gantt",
]


def populate(
    server: RedmineServer, project: str | None = None, issues: int = 1_000, notes_each: int = 3
) -> list[int]:
    """Fill ``project`` (the server's own by default) with ``issues`` issues of ``notes_each``
    notes each; returns their ids in creation order. Issue i has subject ``Issue i``, description
    ``Description of issue i`` and notes ``Note j of issue i``, all by the admin, no nhd_uuid (the
    tracker's own tickets).

    Written by one ``rails runner`` (redmine-instance/populate.rb) through Redmine's models, so
    journals and ``updated_on`` are what the REST API would have made. REST would be slower (one
    request per issue and per note, ~0.1 s each on a busy 2-core machine) and cannot go
    concurrent: Redmine on SQLite answers 500 (``SQLite3::BusyException``) to concurrent writers.
    The server may keep running meanwhile; it sees the new issues on its next request.
    """
    instance = server._instance
    environment = {
        **os.environ,
        "RAILS_ENV": "production",
        "REDMINE_INSTANCE": instance.link.name,
        "PROJECT": project or server.project,
        "ISSUES": str(issues),
        "NOTES": str(notes_each),
    }
    environment.pop("X_DEBIAN_SITEID", None)  # would win over REDMINE_INSTANCE
    result = subprocess.run(
        ["ruby", "bin/rails", "runner", str(POPULATE_SCRIPT)],
        cwd=REDMINE_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if result.returncode != 0:
        raise RedmineError(
            f"populating {environment['PROJECT']} of {instance.home} failed "
            f"(exit {result.returncode}):\n{result.stderr[:3000]}"
        )
    ids = [int(line) for line in result.stdout.split()]
    if len(ids) != issues:
        raise RedmineError(f"asked for {issues} issues, populate.rb made {len(ids)}")
    return ids


def _ok(answer: httpx.Response) -> Any:
    if answer.is_error:
        raise RedmineError(
            f"{answer.request.method} {answer.request.url.path} answered {answer.status_code}: "
            f"{answer.text[:500]}"
        )
    return answer.json() if answer.content else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # The server is not our child (the script started it with setsid and exited), so a dead one
    # may linger as a zombie until its new parent reaps it.
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    return True


def _terminate(pid: int) -> None:
    # setsid made the server its own process group: signal the group, in case it has children.
    for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT_SECONDS), (signal.SIGKILL, 5)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        if not _alive(pid):
            return


def _port_open(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _close(instance: _Instance) -> None:
    with instance.lock:
        RedmineServer(instance)._kill_locked()
        with contextlib.suppress(OSError):
            if instance.link.is_symlink():
                instance.link.unlink()
    with _LIVE_LOCK:
        _LIVE.discard(instance)


@atexit.register
def _close_everything() -> None:
    with _LIVE_LOCK:
        instances = list(_LIVE)
    for instance in instances:
        _close(instance)
