"""Storage credentials in a real container: `swan up --docker` (the real hub, proxy and Docker
engine, the registry-free test image) gives alice's server a token through the mounted
credentials file; the server in the container reads and writes a real WebDAV server on the host
(WsgiDAV behind a gate that accepts only the current bearer token) with it; when the token is
renewed, the file replaced on the host is seen inside and used without a restart; at stop the
file goes with the container."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import pytest
from harness.dockerhost import containers, docker, docker_swan
from harness.swan import NOTEBOOK, Swan, log_in, user_api, user_servers, wait_until_ready
from test_credentials_hub import gate, webdav_servers_config  # noqa: F401 (gate: a fixture)

pytestmark = [pytest.mark.hub, pytest.mark.docker]

SPAWN_TIMEOUT = 120.0

ADMIN_CONFIG = """
TOKEN_SOURCE = {token_source!r}


def storage_credentials(spawner, auth_state):
    # stands in for an authenticator's auth state: the token the test wrote last
    with open(TOKEN_SOURCE) as f:
        return {{"kind": "bearer", "token": f.read().strip()}}


c.SwanSpawnerMixin.storage_credentials = storage_credentials
"""


@pytest.fixture(scope="module")
def hub(image, gate, tmp_path_factory) -> Iterator[Swan]:  # noqa: F811 (imported fixtures)
    workdir = tmp_path_factory.mktemp("swan-docker-credentials")
    token_source = workdir / "token-source"
    token_source.write_text("token-1")
    form = {"environments": [{"id": "test", "display_name": "Test image", "image": image}]}
    admin_config = ADMIN_CONFIG.format(token_source=str(token_source))
    admin_config += webdav_servers_config(gate.folder("alice")[1])
    with docker_swan(workdir, form, admin_config, users="alice") as swan:
        swan.token_source, swan.gate = token_source, gate
        log_in(swan, "alice")
        yield swan


def inside(container: str, *command: str) -> str:
    return docker("exec", container, *command).stdout.strip()


def test_the_server_in_the_container_uses_the_mounted_token_and_a_renewed_one(hub):
    storage = hub.gate
    headers = {"Authorization": f"token {hub.tokens['alice']}"}
    r = httpx.post(f"{hub.url}/hub/api/users/alice/server", headers=headers, timeout=60)
    assert r.status_code in (201, 202), r.text
    wait_until_ready(hub, "alice", timeout=SPAWN_TIMEOUT)
    container = f"{hub.prefix}-alice"
    started = user_servers(hub, "alice")[""]["started"]
    on_host = hub.data / "credentials" / "alice" / "storage.json"

    # the server in the container reads the mounted file and writes to the storage with it
    saved = user_api(hub, "alice", "PUT", "alice/api/contents/nb.ipynb", json=NOTEBOOK)
    assert saved.status_code == 201, saved.text
    assert (storage.root / "alice" / "nb.ipynb").is_file()
    mounted = "/run/swan/credentials/storage.json"
    assert inside(container, "stat", "-c", "%u %a", mounted) == "1000 600"
    mounts = json.loads(docker("inspect", container).stdout)[0]["Mounts"]
    (credentials_mount,) = [m for m in mounts if m["Destination"] == "/run/swan/credentials"]
    assert credentials_mount["RW"] is False
    env = inside(container, "printenv", "SWAN_STORAGE_CREDENTIALS")
    assert env == mounted

    # the token is renewed: the hub replaces the file on the host, the container sees it
    hub.token_source.write_text("token-2")
    storage.token = "token-2"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if "token-2" in inside(container, "cat", mounted):
            break
        time.sleep(0.2)
    assert json.loads(inside(container, "cat", mounted))["token"] == "token-2"
    got = user_api(hub, "alice", "GET", "alice/api/contents/nb.ipynb")
    assert got.status_code == 200, got.text
    assert user_servers(hub, "alice")[""]["started"] == started  # the same container
    assert "token-1" not in hub.output() and "token-2" not in hub.output()

    r = httpx.delete(f"{hub.url}/hub/api/users/alice/server", headers=headers, timeout=60)
    assert r.status_code in (202, 204), r.text
    deadline = time.monotonic() + 60
    while (user_servers(hub, "alice") or on_host.exists()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not on_host.exists()
    assert container not in containers(hub.prefix)
