"""`swan up` end to end, started the way a user starts it: the real JupyterHub, the real
configurable-http-proxy and real single-user servers on free ports of 127.0.0.1, driven only
through HTTP. Each user's files land in their own storage space and nowhere else."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from harness.swan import (
    NOTEBOOK,
    STOP_TIMEOUT,
    SWAN_UP_MARKS,
    Swan,
    _processes,
    log_in,
    related_processes,
    request_token,
    run_swan_up,
    start_server,
    start_swan,
    swan_command,
    swan_env,
    swan_with_servers,
    user_api,
)

pytestmark = SWAN_UP_MARKS


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
            if "swan-singleuser" in cmd and str(swan.data) in cmd
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
