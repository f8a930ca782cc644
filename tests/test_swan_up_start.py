"""Starting `swan up` as a newcomer does, and failing to: a second instance on the same data
directory or the same port is refused without touching the first, an unusable data directory
and a failed start each end in one sentence, and a failed start leaves no process behind."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from harness.swan import request_token, run_swan_up, start_swan, swan_env

from swan_hub.cli import free_port
from swan_hub.links import links_service

pytestmark = pytest.mark.hub


def assert_said_why_in_one_sentence(done: subprocess.CompletedProcess, *words: str) -> str:
    assert done.returncode != 0
    assert "Traceback" not in done.stdout + done.stderr
    assert "SWAN is running" not in done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("swan up: "), done.stderr[-3000:]
    for word in words:
        assert word in last
    return last


def leftovers(workdir: Path) -> list[str]:
    """Processes other than this one working in ``workdir`` or naming it."""
    found = []
    for process in psutil.process_iter(["pid", "cwd", "cmdline", "status"]):
        if process.pid == os.getpid() or process.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        cmdline = " ".join(process.info["cmdline"] or [])
        if process.info["cwd"] == str(workdir) or str(workdir) in cmdline:
            found.append(f"{process.pid} {cmdline}")
    return found


@contextlib.contextmanager
def nothing_left_in(workdir: Path) -> Iterator[None]:
    """Run the block, then assert that no process of ``workdir`` outlived it (within 30 s);
    whatever did is killed."""
    try:
        yield
        deadline = time.monotonic() + 30
        while leftovers(workdir) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert leftovers(workdir) == []
    finally:
        for line in leftovers(workdir):
            psutil.Process(int(line.split()[0])).kill()


def test_a_second_swan_up_on_the_same_data_dir_is_refused_and_the_first_runs_on(tmp_path):
    first = start_swan(tmp_path, users="alice")
    try:
        proxy = int((first.data / "hub" / "proxy.pid").read_text())
        done = run_swan_up(tmp_path, "--users", "alice", data=first.data)

        assert_said_why_in_one_sentence(done, "another swan up", f"pid {first.proc.pid}")
        assert psutil.pid_exists(proxy)
        assert int((first.data / "hub" / "proxy.pid").read_text()) == proxy
        assert request_token(first, "alice", first.passwords()["alice"]).status_code in (200, 201)
    finally:
        first.kill_everything()


def test_a_second_swan_up_on_a_busy_port_is_refused_before_it_prints_passwords(tmp_path):
    first = start_swan(tmp_path, users="alice")
    try:
        port = int(first.url.rsplit(":", 1)[1])
        other = tmp_path / "other"
        other.mkdir()
        done = run_swan_up(other, "--users", "alice", port=port)

        assert_said_why_in_one_sentence(done, f"port {port}", "--port")
        assert "alice" not in done.stdout
        assert not (other / "data" / "hub" / "proxy.pid").exists()
        assert request_token(first, "alice", first.passwords()["alice"]).status_code in (200, 201)
    finally:
        first.kill_everything()


def test_a_data_dir_that_cannot_be_created_is_named_in_one_sentence(tmp_path):
    (tmp_path / "a-file").write_text("not a folder\n")
    done = run_swan_up(tmp_path, data=tmp_path / "a-file" / "data")

    assert_said_why_in_one_sentence(done, "cannot use", "--data-dir")
    assert len(done.stderr.strip().splitlines()) == 1


#: A service that never answers; stopped with SIGINT like any service, it ends without a word.
SLEEP = "import signal, time; signal.signal(signal.SIGINT, signal.SIG_DFL); time.sleep(600)"


def test_a_failed_start_stops_the_proxy_and_every_service_it_started(tmp_path):
    # A third service that never answers fails the start after the proxy, the links service
    # and the drive are running.
    config = tmp_path / "slow_service.py"
    config.write_text(
        f"import sys\nSLEEP = {SLEEP!r}\n"
        "c.JupyterHub.services.append({\n"
        "    'name': 'never-answers',\n"
        f"    'url': 'http://127.0.0.1:{free_port()}',\n"
        "    'command': [sys.executable, '-c', SLEEP],\n"
        "    'timeout': 3,\n"
        "})\n"
    )
    done = run_swan_up(tmp_path, "--users", "alice", "-f", str(config))
    with nothing_left_in(tmp_path):
        assert "Starting managed service drive" in done.stderr  # started before the failure
        assert_said_why_in_one_sentence(done, "never-answers", "did not answer")


def test_a_culler_that_dies_at_start_fails_the_start_and_stops_everything(tmp_path):
    # A broken install: jupyterhub_idle_culler that exits at once. JupyterHub alone would
    # restart it at every poll, forever, behind a banner saying all is well.
    broken = tmp_path / "broken" / "jupyterhub_idle_culler"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("")
    (broken / "__main__.py").write_text("import sys\nsys.exit(3)\n")
    path = os.pathsep.join([str(broken.parent), swan_env()["PYTHONPATH"]])
    done = run_swan_up(tmp_path, "--users", "alice", PYTHONPATH=path)
    with nothing_left_in(tmp_path):
        assert_said_why_in_one_sentence(done, "idle-culler", "exited with status 3")


def test_a_service_stopped_while_it_still_imports_ends_without_a_traceback(tmp_path):
    """The hub stops its services with SIGINT, also one still importing when a start failed
    elsewhere (the culler above, on a slow machine). Started as `python -m MODULE`, the drive
    and the link service each printed a KeyboardInterrupt traceback on the hub's terminal;
    through `swan_hub.stoppable` the stop ends them quietly. Here the stop comes from the
    module itself, in the middle of its import."""
    (tmp_path / "stopped_at_import.py").write_text(
        "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(30)\n"
    )
    env = swan_env()
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), env["PYTHONPATH"]])
    done = subprocess.run(
        [sys.executable, "-m", "swan_hub.stoppable", "stopped_at_import"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert links_service(1)["command"][1:] == ["-m", "swan_hub.stoppable", "swan_hub.links"]
