"""`swan up` end to end, started the way a user starts it: the real JupyterHub, the real
configurable-http-proxy and real single-user servers on free ports of 127.0.0.1, driven only
through HTTP. Each user's files land in their own storage space and nowhere else."""

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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from swan_hub.cli import free_port

pytestmark = [
    pytest.mark.hub,
    pytest.mark.skipif(
        shutil.which("configurable-http-proxy") is None,
        reason="configurable-http-proxy is not installed (npm install -g configurable-http-proxy)",
    ),
]

REPO = Path(__file__).resolve().parent.parent
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


def start_swan(
    workdir: Path, *extra: str, users: str = "alice,bob", sigint_ignored: bool = False
) -> Swan:
    """`swan up` in `workdir`, answering. `sigint_ignored`: started as a shell starts a
    background job (SIGINT ignored, and so inherited by whatever it starts)."""
    port = free_port()
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
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            swan.kill_everything()  # whatever it started before it failed
            pytest.fail(f"swan up exited with {proc.returncode}:\n{swan.output()[-4000:]}")
        try:
            if httpx.get(f"{swan.url}/hub/api", timeout=2).status_code == 200:
                return swan
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    swan.kill_everything()
    pytest.fail(f"swan up did not answer within {START_TIMEOUT}s:\n{swan.output()[-4000:]}")


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


NOTEBOOK = {
    "type": "notebook",
    "format": "json",
    "content": {
        "cells": [
            {
                "cell_type": "code",
                "source": "print('saved by alice')",
                "metadata": {},
                "outputs": [],
                "execution_count": None,
            }
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    },
}


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


@pytest.fixture(scope="module")
def swan(tmp_path_factory) -> Iterator[Swan]:
    """`swan up -f admin.py` with alice and bob logged in and their servers running."""
    workdir = tmp_path_factory.mktemp("swan-up")
    (workdir / "admin_config.py").write_text("c.Authenticator.admin_users = {'alice'}\n")
    # A stray config in the working directory must not be picked up behind the admin's back.
    (workdir / "jupyterhub_config.py").write_text("c.Authenticator.admin_users = {'bob'}\n")
    with swan_with_servers(workdir, "-f", str(workdir / "admin_config.py")) as swan:
        yield swan


def test_the_start_banner_gives_the_url_the_passwords_and_the_data_dir(swan):
    deadline = time.monotonic() + 10
    while "SWAN is running" not in swan.output() and time.monotonic() < deadline:
        time.sleep(0.2)
    output = swan.output()
    assert f"SWAN is running at {swan.url}/" in output
    for name, password in swan.passwords().items():
        assert re.search(rf"^\s+{name}\s+{re.escape(password)}$", output, re.MULTILINE)
    assert str(swan.data) in output
    assert "Ctrl-C" in output


def test_a_wrong_password_or_an_unknown_user_gets_no_token(swan):
    r = request_token(swan, "alice", swan.passwords()["bob"])
    assert r.status_code == 403
    assert "token" not in r.text
    assert request_token(swan, "mallory", swan.passwords()["alice"]).status_code in (403, 404)


def test_a_notebook_saved_by_alice_lands_in_her_storage_space_only(swan):
    r = user_api(swan, "alice", "PUT", "alice/api/contents/analysis.ipynb", json=NOTEBOOK)
    assert r.status_code in (200, 201), r.text

    on_disk = swan.data / "users" / "alice" / "analysis.ipynb"
    saved = json.loads(on_disk.read_text())
    assert "".join(saved["cells"][0]["source"]) == "print('saved by alice')"

    assert not list((swan.data / "users" / "bob").rglob("analysis.ipynb"))
    listing = user_api(swan, "bob", "GET", "bob/api/contents/")
    assert listing.status_code == 200
    assert "analysis.ipynb" not in [item["name"] for item in listing.json()["content"]]


def test_bobs_token_cannot_read_or_write_alices_server(swan):
    user_api(
        swan,
        "alice",
        "PUT",
        "alice/api/contents/private.txt",
        json={"type": "file", "format": "text", "content": "mine"},
    )
    read = user_api(swan, "bob", "GET", "alice/api/contents/private.txt")
    assert read.status_code in (403, 404), read.text
    assert "mine" not in read.text
    write = user_api(
        swan,
        "bob",
        "PUT",
        "alice/api/contents/planted.txt",
        json={"type": "file", "format": "text", "content": "from bob"},
    )
    assert write.status_code in (403, 404)
    assert not (swan.data / "users" / "alice" / "planted.txt").exists()


def test_no_hidden_jupyter_state_is_written_into_the_spaces(swan):
    for name in ("alice", "bob"):
        hidden = [p.name for p in (swan.data / "users" / name).iterdir() if p.name.startswith(".")]
        assert hidden == [], f"{name}'s space holds {hidden}"


def test_an_admin_config_given_with_f_is_layered_on_top_and_a_stray_one_is_ignored(swan):
    def is_admin(name: str) -> bool:
        headers = {"Authorization": f"token {swan.tokens[name]}"}
        return httpx.get(f"{swan.url}/hub/api/users/{name}", headers=headers).json()["admin"]

    assert is_admin("alice")
    assert not is_admin("bob")


def test_sigterm_stops_the_hub_the_proxy_and_every_user_server(tmp_path):
    # as a background job of a script (CI's way): the hub stops its services with SIGINT, which
    # they must heed though they inherited it ignored
    swan = start_swan(tmp_path, sigint_ignored=True)
    try:
        log_in(swan, "alice")
        start_server(swan, "alice")
        servers = [
            pid
            for pid, (_, _, cmd) in _processes().items()
            if "jupyterhub-singleuser" in cmd and str(swan.data) in cmd
        ]
        assert len(servers) == 1
        proxy = int((swan.data / "hub" / "proxy.pid").read_text())
        watched = related_processes(swan.proc.pid, str(swan.data)) | {proxy, *servers}

        swan.proc.send_signal(signal.SIGTERM)
        try:
            status = swan.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"not stopped {STOP_TIMEOUT}s after SIGTERM:\n{swan.output()[-6000:]}")
        assert status == 0, swan.output()[-4000:]

        alive = {pid for pid, info in _processes().items() if info[1] != "Z"}
        assert watched & alive == set(), swan.output()[-4000:]
        assert related_processes(swan.proc.pid, str(swan.data)) == set()
        assert not (swan.data / "hub" / "jupyterhub.pid").exists()
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


def test_without_configurable_http_proxy_swan_up_fails_at_once_with_the_install_command(
    tmp_path,
):
    done = run_swan_up(tmp_path, PATH=str(tmp_path))  # nothing to find on PATH
    assert done.returncode == 1
    assert "npm install -g configurable-http-proxy" in done.stderr


def test_swan_version_prints_the_distribution_version():
    from swan_contents._version import __version__

    done = subprocess.run(
        [*swan_command(), "--version"], env=swan_env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"swan {__version__}"
