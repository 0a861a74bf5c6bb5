"""docs/writing-adapters.md builds an adapter that works: these tests run the page's code.

Every fenced block of the page whose info string has ``title="path"`` is a file of the tutorial's
``nhd-jsonfile`` project or of its demo bridge; several blocks with one title are the parts of
that file, in order. The tests write the files out and import the package without installing it
(as ``pip install -e .`` would make it importable), then check what the page claims: the entry
point makes ``nhd-bridge adapters`` list the adapter, the code is clean for ruff, the adapter
passes the whole AdapterContract suite with only the skips its capabilities explain, and the
page's bridge YAML carries a ticket and comments from the local tracker to the JSON file and back,
after which a pass writes nothing.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import runpy
import subprocess
import sys
import tomllib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from click.testing import CliRunner

from nhd_bridge.adapters.local import LocalConfig, LocalTracker
from nhd_bridge.cli import main
from nhd_bridge.core.config import load_config
from nhd_bridge.core.engine import SyncEngine
from nhd_bridge.core.plugins import Plugins
from nhd_bridge.core.state import StateStore
from nhd_bridge.testing import AdapterContract, registered_plugin

pytest_plugins = ["pytester"]

DOC = Path(__file__).resolve().parents[1] / "docs" / "writing-adapters.md"
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<code>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
TITLE = re.compile(r'\btitle="(?P<title>[^"]+)"')
STATED_COUNTS = re.compile(r"^(?P<passed>\d+) passed, (?P<skipped>\d+) skipped$", re.MULTILINE)

PACKAGE = "nhd_jsonfile"
PROJECT_FILES = frozenset(
    {
        "pyproject.toml",
        "nhd_jsonfile/__init__.py",
        "nhd_jsonfile/store.py",
        "tests/test_contract.py",
    }
)
BRIDGE_FILES = frozenset({"bridge.yaml", "answer.py"})

# What the adapter declares missing, and so the contract tests that must skip (and only those).
EXPECTED_SKIPS = {
    "test_attachment_round_trips_bytes_and_filename": "capabilities.attachments is false",
    "test_edited_comment_reads_back_with_the_new_body": "capabilities.edit_comments is false",
    "test_repr_hides_secrets": "no SecretStr value",
}


def tutorial_files() -> dict[str, str]:
    """The page's titled blocks by file name, the parts of one file joined in order."""
    parts: dict[str, list[str]] = {}
    for fence in FENCE.finditer(DOC.read_text(encoding="utf-8")):
        title = TITLE.search(fence["info"])
        if title:
            parts.setdefault(title["title"], []).append(fence["code"])
    return {name: _joined(blocks) for name, blocks in parts.items()}


def _joined(blocks: list[str]) -> str:
    text = blocks[0]
    for block in blocks[1:]:
        # A part that starts indented continues a class body: one blank line, as between methods;
        # a top-level part gets the two blank lines of the project's formatting.
        separator = "\n\n" if block.startswith(" ") else "\n\n\n"
        text = text.rstrip("\n") + separator + block
    return text


def write_files(root: Path, files: dict[str, str], names: frozenset[str]) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(files[name], encoding="utf-8")


def forget_package() -> None:
    """Drop the tutorial package from the import cache: the next test imports its own copy."""
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
        del sys.modules[name]


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def files() -> dict[str, str]:
    return tutorial_files()


@pytest.fixture
def project(
    tmp_path: Path, files: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The tutorial's project written out and on ``sys.path``, as an editable install makes it."""
    root = tmp_path / "nhd-jsonfile"
    write_files(root, files, PROJECT_FILES)
    forget_package()
    monkeypatch.syspath_prepend(str(root))
    yield root
    forget_package()


@pytest.fixture
def package(project: Path) -> ModuleType:
    return importlib.import_module(PACKAGE)


# --- the page -----------------------------------------------------------------------------------


def test_the_page_holds_every_file_of_the_project_and_of_the_demo(files: dict[str, str]) -> None:
    assert set(files) == PROJECT_FILES | BRIDGE_FILES


def test_the_tutorial_code_is_clean_for_ruff(project: Path, files: dict[str, str]) -> None:
    if importlib.util.find_spec("ruff") is None:
        pytest.skip("ruff is not installed (it comes with the test extra)")
    (project / "answer.py").write_text(files["answer.py"], encoding="utf-8")
    common = ["--isolated", "--line-length", "100", "--target-version", "py311"]
    commands = [
        ["check", *common, "--select", "E,F,W,I,B,UP,SIM,RUF", "."],
        ["format", *common, "--check", "--diff", "."],
    ]
    for command in commands:
        # Run from the project folder, so that ruff sorts nhd_jsonfile as the first-party package.
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command],
            cwd=project,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, f"ruff {command[0]}:\n{result.stdout}{result.stderr}"


# --- step 7: the entry point --------------------------------------------------------------------


def test_the_entry_point_makes_nhd_bridge_adapters_list_the_adapter(
    project: Path, files: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    metadata = tomllib.loads(files["pyproject.toml"])["project"]
    entry_points = metadata["entry-points"]["nhd_bridge"]
    assert entry_points == {"jsonfile": PACKAGE}
    # What pip writes beside an installed package: its metadata, entry points included.
    dist_info = project / f"{metadata['name'].replace('-', '_')}-{metadata['version']}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {metadata['name']}\nVersion: {metadata['version']}\n",
        encoding="utf-8",
    )
    (dist_info / "entry_points.txt").write_text(
        "[nhd_bridge]\n" + "".join(f"{name} = {value}\n" for name, value in entry_points.items()),
        encoding="utf-8",
    )
    monkeypatch.delenv("NHD_BRIDGE_PLUGINS", raising=False)

    result = CliRunner().invoke(main, ["adapters"])

    assert result.exit_code == 0, result.output
    assert "jsonfile\tnhd_jsonfile.JsonFileAdapter" in result.output.splitlines()


# --- step 8: the contract suite -----------------------------------------------------------------


def test_the_adapter_passes_the_contract_suite(
    pytester: pytest.Pytester, files: dict[str, str]
) -> None:
    write_files(pytester.path, files, PROJECT_FILES)
    pytester.syspathinsert()
    forget_package()
    try:
        recorder = pytester.inline_run("-p", "no:cacheprovider", "tests")
    finally:
        forget_package()

    outcomes: dict[str, set[str]] = {"passed": set(), "failed": set(), "skipped": set()}
    skip_reasons: dict[str, str] = {}
    for report in recorder.getreports("pytest_runtest_logreport"):
        name = report.nodeid.rsplit("::", 1)[-1]
        if report.failed:
            outcomes["failed"].add(f"{name} ({report.when})")
        elif report.skipped:
            outcomes["skipped"].add(name)
            skip_reasons[name] = str(report.longrepr)
        elif report.when == "call":
            outcomes["passed"].add(name)
    contract_tests = {name for name in dir(AdapterContract) if name.startswith("test_")}

    assert outcomes["failed"] == set()
    assert outcomes["skipped"] == set(EXPECTED_SKIPS)
    for name, reason in EXPECTED_SKIPS.items():
        assert reason in skip_reasons[name]
    assert outcomes["passed"] == contract_tests - set(EXPECTED_SKIPS)
    # The pytest output the page shows is this run's.
    shown = STATED_COUNTS.search(DOC.read_text(encoding="utf-8"))
    assert shown is not None, "the page no longer shows the suite's pytest summary"
    assert (int(shown["passed"]), int(shown["skipped"])) == (
        len(outcomes["passed"]),
        len(outcomes["skipped"]),
    ), "the page's pytest summary is out of date"


# --- step 9: a bridge ---------------------------------------------------------------------------


def test_the_bridge_carries_a_ticket_and_comments_both_ways_then_writes_nothing(
    package: ModuleType, files: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    demo = tmp_path / "demo"
    write_files(demo, files, BRIDGE_FILES)
    store_module = importlib.import_module(f"{PACKAGE}.store")
    # The built-in local adapter from its entry point, the tutorial's registered for this test.
    monkeypatch.setenv("NHD_BRIDGE_PLUGINS", "local")
    plugins = Plugins()
    with registered_plugin(plugins, package):
        assert set(plugins.adapters()) == {"local", "jsonfile"}
        config = load_config(demo / "bridge.yaml", plugins=plugins, environ={})
        [agreement] = config.bridge.agreements
        desk_config = config.adapter_configs["desk"]
        assert isinstance(desk_config, LocalConfig)
        ticket_file = store_module.TicketFile(config.adapter_configs["files"].path)
        store = StateStore(config.state_url)
        engine = SyncEngine(config, store)
        try:
            assert all(result.ok for result in engine.adapter("files").check())

            # At the desk: a ticket to escalate, with a comment, and one that stays at the desk.
            with LocalTracker(desk_config) as desk:
                printer = desk.create_ticket("Printer on fire", tags=["escalate"])
                desk.add_comment(printer.local_id, "It smells of burnt toner.")
                desk.create_ticket("Password reset")

            out = engine.run(agreement)
            assert out.errors == []
            assert out.writes == Counter(create=1, comment=1)
            [copy] = ticket_file.read()["tickets"].values()
            assert (copy["subject"], copy["status"], copy["tags"]) == (
                "Printer on fire",
                "new",
                ["escalate"],
            )
            assert [comment["body"] for comment in copy["comments"]] == [
                "It smells of burnt toner."
            ]
            link = store.read().link_for_local("desk", printer.local_id)
            assert link is not None
            assert copy["shared_uuid"] == link.shared_uuid, "the ticket carries its breadcrumb"
            assert copy["comments"][0]["shared_uuid"], "the comment carries its breadcrumb"
            assert engine.run(agreement).total_writes == 0

            # In the JSON tracker: the page's script answers and solves the ticket.
            monkeypatch.chdir(demo)
            runpy.run_path(str(demo / "answer.py"), run_name="__main__")

            back = engine.run(agreement)
            assert back.errors == []
            assert back.writes == Counter(update=1, comment=1)
            with LocalTracker(desk_config) as desk:
                answered = desk.get(printer.local_id)
            assert answered is not None
            assert answered.status == "solved"
            assert [comment.body for comment in answered.comments] == [
                "It smells of burnt toner.",
                "New toner fitted; it prints again.",
            ]
            assert engine.run(agreement).total_writes == 0
        finally:
            engine.close()
            store.close()
