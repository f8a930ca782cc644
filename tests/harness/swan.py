"""`swan up` as tests start it: the real JupyterHub, configurable-http-proxy, the drive and the
links service on free ports of 127.0.0.1, logged in and driven through HTTP only. Owns starting
and stopping them (nothing left running when a start fails); must not hold any test's assertions.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from conftest import notebook_body

from swan_hub.cli import free_port
from swan_hub.mounts import mounted_at_or_below

#: The marks of every test that starts `swan up`.
SWAN_UP_MARKS = [
    pytest.mark.hub,
    pytest.mark.skipif(
        shutil.which("configurable-http-proxy") is None,
        reason="configurable-http-proxy is not installed (npm install -g configurable-http-proxy)",
    ),
]

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0
SPAWN_TIMEOUT = 90.0
STOP_TIMEOUT = 60.0


def swan_command() -> list[str]:
    """The installed `swan` script of this interpreter, else `python -m swan_hub`."""
    script = Path(sys.executable).with_name("swan")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "swan_hub"]


def swan_env() -> dict[str, str]:
    env = dict(os.environ)
    # From a checkout that is not pip-installed, the hub and the servers import from the repo.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line) of every process, from /proc."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        found[int(entry)] = (int(fields[1]), fields[0], cmdline)
    return found


def _cwd(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return ""


def related_processes(root: int, marker: str) -> set[int]:
    """Live processes below ``root``, or mentioning ``marker`` (a data folder) or working in
    the folder above it: survivors reparented to init once the hub was killed (the proxy and
    the hub's services run in sessions of their own and do not name the data folder)."""
    table = {pid: info for pid, info in _processes().items() if info[1] != "Z"}
    workdir = os.path.dirname(marker)
    related = {
        pid
        for pid, (_, _, cmd) in table.items()
        if marker in cmd or (pid != os.getpid() and _cwd(pid) in (workdir, marker))
    }
    frontier = {root}
    while frontier:
        children = {pid for pid, (ppid, _, _) in table.items() if ppid in frontier}
        frontier = children - related
        related |= children
    related.discard(os.getpid())
    return related


@dataclass
class Swan:
    """One running `swan up`."""

    proc: subprocess.Popen
    url: str
    data: Path
    log: Path
    tokens: dict[str, str] = field(default_factory=dict)

    def passwords(self) -> dict[str, str]:
        text = (self.data / "hub" / "demo-passwords.txt").read_text()
        lines = [line.split(" ", 1) for line in text.splitlines() if line and line[0] != "#"]
        return {name: password for name, password in lines}

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill_everything(self) -> None:
        for pid in related_processes(self.proc.pid, str(self.data)) | {self.proc.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        # A killed rclone leaves its FUSE mount behind, dead, until it is detached (fusermount3
        # detaches it, saying it could not enter it: its message is no news here).
        for point in mounted_at_or_below(str(self.data)):
            subprocess.run(
                ["fusermount3", "-u", "-z", point], check=False, stderr=subprocess.DEVNULL
            )


def write_drive_config(workdir: Path, settings: str) -> None:
    """The drive's settings (`c.DriveService.*` lines) for the `swan up` started in `workdir`."""
    config = workdir / "swan-data" / "drive" / "drive_config.py"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(settings)


#: The first `swan up` of this run that did not answer in time, per kind of start ("swan up",
#: "swan up --docker"). A machine too loaded to start the hub in START_TIMEOUT stays so: every
#: later start of that kind fails at once with this first error instead of waiting as long again.
unanswered_starts: dict[str, str] = {}


def start_swan(
    workdir: Path,
    *extra: str,
    users: str = "alice,bob",
    sigint_ignored: bool = False,
    port: int | None = None,
) -> Swan:
    """`swan up` in `workdir`, answering, on ``port`` (default: a free one). `sigint_ignored`:
    started as a shell starts a background job (SIGINT ignored, and so inherited by whatever it
    starts). A start that fails or is interrupted (the test's timeout, Ctrl-C) leaves nothing it
    started running."""
    kind = "swan up --docker" if "--docker" in extra else "swan up"
    if kind in unanswered_starts:
        pytest.fail(
            f"not started: an earlier {kind} of this run did not answer; "
            f"its error:\n{unanswered_starts[kind]}",
            pytrace=False,
        )
    port = port or free_port()
    data = workdir / "swan-data"
    log = workdir / "swan-up.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*swan_command(), "up", "--port", str(port), "--data-dir", str(data)]
            + ["--users", users, *extra],
            cwd=workdir,
            env=swan_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
            if sigint_ignored
            else None,
        )
    swan = Swan(proc=proc, url=f"http://127.0.0.1:{port}", data=data, log=log)
    try:
        answered = wait_until_answering(swan)
    except BaseException:
        swan.kill_everything()  # the proxy, the drive, the links service: whatever it started
        raise
    if not answered:
        swan.kill_everything()
        error = f"swan up did not answer within {START_TIMEOUT}s:\n{swan.output()[-4000:]}"
        unanswered_starts[kind] = error
        pytest.fail(error)
    return swan


def wait_until_answering(swan: Swan) -> bool:
    """Whether the hub's API answers within START_TIMEOUT; fails if `swan up` exits first."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if swan.proc.poll() is not None:
            pytest.fail(f"swan up exited with {swan.proc.returncode}:\n{swan.output()[-4000:]}")
        try:
            if httpx.get(f"{swan.url}/hub/api", timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return False


def drive_url(swan: Swan) -> str:
    """The drive's own loopback URL (`http://127.0.0.1:<port>/services/drive`), once it answers."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        found = re.search(r"SWAN drive on (http://\S+?)/ ", swan.output())
        if found:
            try:
                if httpx.get(f"{found[1]}/status.php", timeout=2).status_code == 200:
                    return found[1]
            except httpx.TransportError:
                pass
        time.sleep(0.2)
    pytest.fail(f"the drive did not answer within {START_TIMEOUT}s:\n{swan.output()[-4000:]}")


def request_token(swan: Swan, name: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{swan.url}/hub/api/users/{name}/tokens",
        json={"auth": {"username": name, "password": password}},
        timeout=30,
    )


def log_in(swan: Swan, name: str) -> str:
    r = request_token(swan, name, swan.passwords()[name])
    assert r.status_code in (200, 201), r.text
    swan.tokens[name] = r.json()["token"]
    return swan.tokens[name]


def start_server(swan: Swan, name: str) -> None:
    headers = {"Authorization": f"token {swan.tokens[name]}"}
    r = httpx.post(f"{swan.url}/hub/api/users/{name}/server", headers=headers, timeout=60)
    assert r.status_code in (201, 202), r.text
    wait_until_ready(swan, name)


def user_servers(swan: Swan, name: str) -> dict:
    headers = {"Authorization": f"token {swan.tokens[name]}"}
    r = httpx.get(f"{swan.url}/hub/api/users/{name}", headers=headers, timeout=10)
    return r.json().get("servers", {})


def wait_until_ready(swan: Swan, name: str, timeout: float = SPAWN_TIMEOUT) -> None:
    """Wait until the hub reports ``name``'s default server ready; fail if it stops."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = user_servers(swan, name).get("")
        if server and server["ready"]:
            return
        if not server:
            pytest.fail(f"the server of {name} stopped while starting:\n{swan.output()[-4000:]}")
        time.sleep(0.1)
    pytest.fail(f"the server of {name} was not ready in {timeout}s")


def wait_until_stopped(swan: Swan, name: str, timeout: float = STOP_TIMEOUT) -> None:
    """Wait until ``name`` has no server left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not user_servers(swan, name):
            return
        time.sleep(0.1)
    pytest.fail(f"the server of {name} did not stop in {timeout}s")


def user_api(swan: Swan, as_user: str, method: str, path: str, **kwargs) -> httpx.Response:
    owner, _, rest = path.partition("/")
    return httpx.request(
        method,
        f"{swan.url}/user/{owner}/{rest}",
        headers={"Authorization": f"token {swan.tokens[as_user]}"},
        follow_redirects=False,
        timeout=30,
        **kwargs,
    )


#: JupyterLab's "Jupyter news?" question, answered no.
NO_NEWS = {"raw": json.dumps({"fetchNews": "false"})}


def ready_for_browsers(swan: Swan, names: Iterable[str]) -> None:
    """Log each of ``names`` in and start their servers, with JupyterLab's "Jupyter news?"
    question answered once, as a person does (no toast over the pages)."""
    for name in names:
        log_in(swan, name)
        start_server(swan, name)
        settings = f"{name}/lab/api/settings/@jupyterlab/apputils-extension:notification"
        assert user_api(swan, name, "PUT", settings, json=NO_NEWS).status_code == 204


NOTEBOOK = notebook_body("print('saved by alice')")


@contextlib.contextmanager
def swan_with_servers(workdir: Path, *extra: str, names=("alice", "bob")) -> Iterator[Swan]:
    """`swan up` in ``workdir`` with each of ``names`` logged in and their servers running;
    everything it started is stopped after."""
    swan = start_swan(workdir, *extra, users=",".join(names))
    try:
        for name in names:
            log_in(swan, name)
            start_server(swan, name)
        yield swan
    finally:
        swan.kill_everything()


def run_swan_up(
    workdir: Path, *args: str, data: Path | None = None, port: int = 0, **env: str
) -> subprocess.CompletedProcess:
    """Run `swan up` expecting it to end by itself (a refused or failed start), with ``env``
    changes; by default on ``workdir/data`` and a free port."""
    return subprocess.run(
        [*swan_command(), "up", "--data-dir", str(data or workdir / "data")]
        + ["--port", str(port or free_port()), *args],
        cwd=workdir,
        env={**swan_env(), **env},
        capture_output=True,
        text=True,
        timeout=180,
    )
