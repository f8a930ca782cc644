"""The test harness itself (tests/harness/), run the way the suite runs it: pytest in a subprocess
on tiny test modules. A shared start that failed is not tried again, its dependents fail at once
with the first error, and a `swan up` stopped while starting leaves nothing running."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.swan import SWAN_UP_MARKS, _cwd, _processes, swan_env

TESTS = Path(__file__).resolve().parent


def needs_swan_up(test):
    """The marks of the tests that start `swan up` (through a test module of their own)."""
    for mark in SWAN_UP_MARKS:
        test = mark(test)
    return test


#: A server that fails to start, shared by two test modules (each imports its fixture, which
#: pytest alone would set up again in each), and one started lazily in a test, as `dav_servers`
#: starts its WebDAV servers. Every start attempt is a line in ATTEMPTS.
FAILING_SERVER = """
import os
from pathlib import Path

import pytest

from harness.plugin import shared_start


def attempt(what):
    with open(os.environ["ATTEMPTS"], "a") as f:
        f.write(what + "\\n")


@pytest.fixture(scope="module")
def server():
    attempt("server")
    raise RuntimeError("the server did not answer on port 9")


def lazily_started():
    with shared_start("the lazy server"):
        attempt("lazy")
        pytest.fail("the lazy server exited with 3")
"""

DEPENDENTS = """
from failing import lazily_started, server  # noqa: F401


def test_one(server):
    pass


def test_two(server):
    pass


def test_lazy_{n}():
    lazily_started()
"""


def run_pytest(folder: Path, *args: str, **env: str) -> dict[str, str]:
    """pytest with the harness's plugin on the test modules in ``folder``: the message of each
    test that failed or errored, by its node id ("FAILED m.py::test", "ERROR m.py::test")."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "harness.plugin", "-p", "no:cacheprovider"]
        + ["-q", "-rfE", "--rootdir", str(folder), *args],
        cwd=folder,
        # CI: pytest then gives whole messages in its summary, not their first line cut short
        env={**swan_env(), "PYTHONPATH": f"{TESTS}{os.pathsep}{folder}", "CI": "1", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = done.stdout.partition("short test summary info")[2]
    entries = re.findall(
        r"^((?:FAILED|ERROR) \S+) - (.*?)(?=^(?:FAILED|ERROR|=|\d+ \w+[,\s])|\Z)",
        summary,
        re.M | re.S,
    )
    return {node: message for node, message in entries}


def test_a_shared_server_that_failed_to_start_is_started_once_and_its_dependents_fail_at_once(
    tmp_path,
):
    (tmp_path / "failing.py").write_text(FAILING_SERVER)
    for n in (1, 2):
        (tmp_path / f"test_dependent_{n}.py").write_text(DEPENDENTS.format(n=n))
    attempts = tmp_path / "attempts"

    failures = run_pytest(tmp_path, ATTEMPTS=str(attempts))

    assert attempts.read_text().split() == ["server", "lazy"]
    assert len(failures) == 6, failures
    for test in ("test_one", "test_two"):
        for n in (1, 2):
            assert (
                "the server did not answer on port 9"
                in failures[f"ERROR test_dependent_{n}.py::{test}"]
            )
        assert "failed to start earlier" in failures[f"ERROR test_dependent_2.py::{test}"]
    assert "the lazy server exited with 3" in failures["FAILED test_dependent_1.py::test_lazy_1"]
    again = failures["FAILED test_dependent_2.py::test_lazy_2"]
    assert "failed to start earlier" in again and "the lazy server exited with 3" in again


#: A `swan up` whose hub never answers where tests look for it (the hub moved under /elsewhere/),
#: so that the test's timeout stops start_swan while the proxy, the drive and the links service
#: are up.
NEVER_ANSWERING = """
from pathlib import Path

import harness.swan
import pytest

harness.swan.START_TIMEOUT = {start_timeout}


def start(name):
    workdir = Path("{folder}") / name
    workdir.mkdir()
    (workdir / "elsewhere.py").write_text("c.JupyterHub.base_url = '/elsewhere/'\\n")
    harness.swan.start_swan(workdir, "-f", str(workdir / "elsewhere.py"))
"""


def never_answering(tmp_path: Path, timeout: int, *names: str, start_timeout: float = 60) -> None:
    """A test module in ``tmp_path`` whose tests (bounded by ``timeout`` s each) start `swan up`
    in ``tmp_path / name``, one for each of ``names``."""
    tests = "".join(
        f"\n\n@pytest.mark.timeout({timeout})\ndef test_start_{name}():\n    start({name!r})\n"
        for name in names
    )
    (tmp_path / "test_start.py").write_text(
        NEVER_ANSWERING.format(folder=tmp_path, start_timeout=start_timeout) + tests
    )


def left_running(marker: str) -> set[int]:
    """Live processes naming ``marker`` or working in or below it."""
    return {
        pid
        for pid, (_, state, cmd) in _processes().items()
        if state != "Z" and pid != os.getpid() and (marker in cmd or _cwd(pid).startswith(marker))
    }


@needs_swan_up
def test_a_swan_up_stopped_by_the_tests_timeout_while_starting_leaves_nothing_running(tmp_path):
    never_answering(tmp_path, 30, "swan")
    workdir = str(tmp_path / "swan")
    try:
        failures = run_pytest(tmp_path)
        assert "Timeout" in failures["FAILED test_start.py::test_start_swan"]
        assert (tmp_path / "swan" / "swan-data" / "hub" / "proxy.pid").exists()
        time.sleep(1)  # whatever was stopped has gone
        assert left_running(workdir) == set()
    finally:
        for pid in left_running(workdir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@needs_swan_up
def test_a_swan_up_that_did_not_answer_is_not_started_again_in_the_run(tmp_path):
    never_answering(tmp_path, 120, "swan", "again", start_timeout=10)
    started = time.monotonic()

    failures = run_pytest(tmp_path)

    assert "did not answer within" in failures["FAILED test_start.py::test_start_swan"]
    again = failures["FAILED test_start.py::test_start_again"]
    assert "an earlier swan up of this run did not answer" in again
    assert not (tmp_path / "again" / "swan-data").exists()
    assert time.monotonic() - started < 120
