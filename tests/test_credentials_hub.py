"""The credentials contract end to end on one machine: the real JupyterHub of `swan up` with an
authenticator that keeps an access token in auth state and renews it in `refresh_user` (as
OAuthenticator does with a refresh token), SwanLocalSpawner, and the user's server reading and
writing a real WebDAV server (WsgiDAV behind a gate that accepts only the current bearer token).
When the identity provider rotates the token, the hub's refresh reaches the running server through
the credentials file, without a restart."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness.dav_servers import shared_root
from harness.swan import (
    NOTEBOOK,
    Swan,
    _processes,
    log_in,
    start_server,
    start_swan,
    user_api,
    user_servers,
    wait_until_ready,
    wait_until_stopped,
)
from test_webdav_storage import BearerDavServer

pytestmark = pytest.mark.hub


HUB_CONFIG = """
import os
from jupyterhub.auth import Authenticator

IDP_TOKEN = {idp_token!r}


def current_token():
    with open(IDP_TOKEN) as f:
        return f.read().strip()


class RotatingTokenAuthenticator(Authenticator):
    # Stands in for an OAuth authenticator: the identity provider's current access token is
    # what the test wrote into IDP_TOKEN; refresh_user fetches a new one once it changed.

    async def authenticate(self, handler, data):
        return {{"name": data["username"], "auth_state": {{"access_token": current_token()}}}}

    async def refresh_user(self, user, handler=None):
        token = current_token()
        state = await user.get_auth_state()
        if state and state.get("access_token") == token:
            return True
        return {{"name": user.name, "auth_state": {{"access_token": token}}}}


c.JupyterHub.authenticator_class = RotatingTokenAuthenticator
c.Authenticator.allow_all = True
c.Authenticator.enable_auth_state = True
c.Authenticator.auth_refresh_age = 1
c.CryptKeeper.keys = [os.urandom(32)]
"""


def webdav_servers_config(url: str) -> str:
    """Hub config that gives the users' servers the WebDAV storage at ``url`` and hands
    changed credentials over twice a second."""
    return (
        "c.SwanSpawnerMixin.credentials_refresh_interval = 0.5\n"
        "c.Spawner.args = [\n"
        "    '--SwanContentsManager.storage_class=swan_contents.storage.WebDAVStorage',\n"
        f"    '--WebDAVStorage.url={url}',\n"
        "]\n"
    )


@pytest.fixture(scope="module")
def gate() -> Iterator[BearerDavServer]:
    """A WebDAV server that accepts only `Authorization: Bearer <gate.token>`, at first
    "token-1"."""
    root = shared_root()
    server = BearerDavServer(root)
    server.token = "token-1"
    server.start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def hub(gate, tmp_path_factory) -> Iterator[Swan]:
    workdir = tmp_path_factory.mktemp("swan-credentials")
    idp_token = workdir / "idp-token"
    idp_token.write_text("token-1")
    config = workdir / "hub_config.py"
    url = gate.folder("alice")[1]
    config.write_text(HUB_CONFIG.format(idp_token=str(idp_token)) + webdav_servers_config(url))
    # the servers use the WebDAV server of this test, not the drive
    swan = start_swan(workdir, "--storage", "posix", "-f", str(config), users="alice")
    swan.idp_token = idp_token
    try:
        yield swan
    finally:
        swan.kill_everything()


def browser_login(hub: Swan, name: str) -> None:
    """Log in through the login page, which keeps the authenticator's auth state."""
    with httpx.Client(base_url=hub.url, follow_redirects=True, timeout=60) as client:
        page = client.get("/hub/login")
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
        r = client.post("/hub/login", data={"username": name, "password": "x", "_xsrf": xsrf})
        assert r.status_code == 200, r.text


def test_a_token_renewed_by_the_hub_reaches_the_running_server_without_a_restart(hub, gate):
    browser_login(hub, "alice")
    log_in(hub, "alice")
    headers = {"Authorization": f"token {hub.tokens['alice']}"}
    r = httpx.post(f"{hub.url}/hub/api/users/alice/server", headers=headers, timeout=60)
    assert r.status_code in (201, 202), r.text
    wait_until_ready(hub, "alice")
    started = user_servers(hub, "alice")[""]["started"]
    credentials = hub.data / "credentials" / "alice" / "storage.json"
    assert json.loads(credentials.read_text()) == {"kind": "bearer", "token": "token-1"}

    saved = user_api(hub, "alice", "PUT", "alice/api/contents/nb.ipynb", json=NOTEBOOK)
    assert saved.status_code == 201, saved.text
    assert (Path(gate.root) / "alice" / "nb.ipynb").is_file()

    # the identity provider rotates the token; the storage takes only the new one
    hub.idp_token.write_text("token-2")
    gate.token = "token-2"
    time.sleep(1.1)  # past auth_refresh_age: the next authenticated request refreshes
    assert httpx.get(f"{hub.url}/hub/api/user", headers=headers, timeout=30).status_code == 200

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        got = user_api(hub, "alice", "GET", "alice/api/contents/nb.ipynb")
        if got.status_code == 200:
            break
        time.sleep(0.3)
    assert got.status_code == 200, got.text
    assert json.loads(credentials.read_text()) == {"kind": "bearer", "token": "token-2"}
    assert user_servers(hub, "alice")[""]["started"] == started  # the same server
    assert "token-1" not in hub.output() and "token-2" not in hub.output()

    r = httpx.delete(f"{hub.url}/hub/api/users/alice/server", headers=headers, timeout=60)
    assert r.status_code in (202, 204), r.text
    deadline = time.monotonic() + 60
    while user_servers(hub, "alice") and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not credentials.exists()  # taken away when the server stops


def test_a_killed_server_leaves_no_credentials_file_and_no_refresh_behind(tmp_path):
    # JupyterHub calls no Spawner.stop() for a server its poll finds dead: the credentials
    # must go with the server anyway, and their refresh must end.
    config = tmp_path / "fast_poll.py"
    config.write_text(
        "c.Spawner.poll_interval = 1\nc.SwanSpawnerMixin.credentials_refresh_interval = 0.5\n"
    )
    swan = start_swan(tmp_path, "-f", str(config), users="alice")
    try:
        log_in(swan, "alice")
        start_server(swan, "alice")
        credentials = swan.data / "credentials" / "alice" / "storage.json"
        assert credentials.is_file()
        servers = [
            pid
            for pid, (_, _, cmd) in _processes().items()
            if "swan-singleuser" in cmd and str(swan.data) in cmd
        ]
        assert len(servers) == 1
        os.kill(servers[0], signal.SIGKILL)

        wait_until_stopped(swan, "alice")
        time.sleep(3)  # six refresh intervals
        assert not credentials.exists()
        assert "Refreshing the storage credentials" not in swan.output()
    finally:
        swan.kill_everything()
