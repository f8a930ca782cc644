"""SwanDockerSpawner end to end: `swan up --docker` with the real JupyterHub, the real
configurable-http-proxy and the real Docker engine, spawning containers of the registry-free
test image (docker/build-test-image) from the spawn form. Driven only through HTTP and the
docker CLI: files land in the right host directory with the container's uid, containers see
only their own user's space, limits come from the form, and bad choices start nothing."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness.dockerhost import (
    CONTAINER_UID,
    containers,
    docker,
    docker_swan,
)
from harness.swan import (
    NOTEBOOK,
    Swan,
    log_in,
    user_api,
    user_servers,
    wait_until_ready,
    wait_until_stopped,
)

pytestmark = [pytest.mark.hub, pytest.mark.docker]

SPAWN_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def hub(image, tmp_path_factory) -> Iterator[Swan]:
    """`swan up --docker` with a form of two environments (one with a missing image) for
    alice, bob and carol; carol's storage space must exist already (create_space off)."""
    form = {
        "environments": [
            {"id": "test", "display_name": "Test image", "image": image},
            {"id": "gone", "display_name": "Missing image", "image": "swan-missing:none"},
        ],
        "cpu": {"choices": [0.5, 1, 2], "default": 1},
        "memory": {"choices": ["512M", "1G", "2G"], "default": "1G"},
        "gpu": {"available": True},
    }
    admin_config = (
        # Answer spawn requests at once, so that the progress stream is watched from the start.
        "c.JupyterHub.tornado_settings = {'slow_spawn_timeout': 0}\n"
        "def only_carol_needs_an_existing_space(spawner):\n"
        "    spawner.create_space = spawner.user.name != 'carol'\n"
        "c.Spawner.pre_spawn_hook = only_carol_needs_an_existing_space\n"
    )
    workdir = tmp_path_factory.mktemp("swan-docker")
    with docker_swan(workdir, form, admin_config, users="alice,bob,carol") as swan:
        for name in ("alice", "bob", "carol"):
            log_in(swan, name)
        yield swan


def browser(hub: Swan, name: str) -> httpx.Client:
    """A client logged in through the hub's login page, as a browser would be."""
    client = httpx.Client(base_url=hub.url, follow_redirects=True, timeout=60)
    page = client.get("/hub/login")
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    r = client.post(
        "/hub/login",
        data={"username": name, "password": hub.passwords()[name], "_xsrf": xsrf},
    )
    assert r.status_code == 200, r.text
    return client


def xsrf_of(client: httpx.Client) -> str:
    return client.cookies.get("_xsrf", path="/hub/")


def api(hub: Swan, name: str, method: str, path: str, **kwargs) -> httpx.Response:
    headers = {"Authorization": f"token {hub.tokens[name]}"}
    return httpx.request(method, f"{hub.url}/hub/api{path}", headers=headers, timeout=60, **kwargs)


def space(hub: Swan, name: str) -> Path:
    return hub.data / "users" / name


@pytest.fixture(scope="module")
def alice(hub) -> Iterator[str]:
    """alice's server, started from the spawn form with 0.5 CPU and 512M."""
    client = browser(hub, "alice")
    form = client.get("/hub/spawn")
    assert form.status_code == 200
    assert 'name="environment"' in form.text
    r = client.post(
        "/hub/spawn",
        data={"environment": "test", "cpu": "0.5", "memory": "512M", "_xsrf": xsrf_of(client)},
        follow_redirects=False,
    )
    assert r.status_code == 302, r.text
    wait_until_ready(hub, "alice", timeout=SPAWN_TIMEOUT)
    yield f"{hub.prefix}-alice"


def test_the_spawn_form_offers_the_configured_environments_and_a_configuration_url(hub):
    client = browser(hub, "bob")
    page = client.get("/hub/spawn?opt-environment=nope").text
    assert "Test image" in page and "Missing image" in page
    assert '<option value="0.5">0.5</option>' in page
    assert "Copy a URL for this configuration" in page
    assert "opt-environment=test" in page.replace("&amp;", "&")
    assert "not offered" in page  # the bad opt- value is refused with a message


def test_a_notebook_saved_in_the_container_lands_in_the_users_host_directory_with_its_uid(
    hub, alice
):
    r = user_api(hub, "alice", "PUT", "alice/api/contents/analysis.ipynb", json=NOTEBOOK)
    assert r.status_code in (200, 201), r.text
    on_disk = space(hub, "alice") / "analysis.ipynb"
    saved = json.loads(on_disk.read_text())
    assert "".join(saved["cells"][0]["source"]) == "print('saved by alice')"
    assert on_disk.stat().st_uid == CONTAINER_UID
    assert space(hub, "alice").stat().st_uid == CONTAINER_UID
    assert oct(space(hub, "alice").stat().st_mode & 0o777) == oct(0o700)


def test_another_users_space_is_not_visible_inside_the_container(hub, alice):
    space(hub, "bob").mkdir(exist_ok=True)
    (space(hub, "bob") / "secret.txt").write_text("bob's")
    listing = docker("exec", alice, "ls", "-a", str(hub.data / "users")).stdout.split()
    assert "alice" in listing
    assert "bob" not in listing
    home = docker("exec", alice, "sh", "-c", "echo $HOME; pwd; id -u").stdout.split()
    assert home == [str(space(hub, "alice")), str(space(hub, "alice")), str(CONTAINER_UID)]


def test_docker_inspect_shows_the_limits_chosen_in_the_form(hub, alice):
    config = json.loads(docker("inspect", alice).stdout)[0]
    assert config["HostConfig"]["Memory"] == 512 * 1024**2
    assert config["HostConfig"]["CpuQuota"] / config["HostConfig"]["CpuPeriod"] == 0.5
    assert config["HostConfig"]["NetworkMode"] == "host"
    assert config["Config"]["User"] == f"{CONTAINER_UID}:{CONTAINER_UID}"


def test_no_hidden_jupyter_state_is_written_into_the_space(hub, alice):
    hidden = [p.name for p in space(hub, "alice").iterdir() if p.name.startswith(".")]
    assert hidden == []


def spawn_through_api(hub: Swan, name: str, options: dict | None = None) -> list[dict]:
    """Ask the REST API for a server and follow its progress stream to the end (ready or
    failed), as the spawn page does; returns the progress events."""
    r = api(hub, name, "POST", f"/users/{name}/server", json=options or {})
    if r.status_code >= 400:
        return [{"failed": True, "message": r.json().get("message", r.text)}]
    assert r.status_code in (201, 202), r.text
    events, answer = _progress(hub, name)
    if not events or not (events[-1].get("ready") or events[-1].get("failed")):
        # the stream may open in the moment the spawn ends (400 "not starting"): once the
        # hub has settled, a second look reports the outcome the hub kept
        deadline = time.monotonic() + SPAWN_TIMEOUT
        while user_servers(hub, name).get("", {}).get("pending"):
            assert time.monotonic() < deadline, "the server stays pending"
            time.sleep(0.5)
        more, answer = _progress(hub, name)
        events += more or [{"failed": True, "message": answer}]
    return events


def _progress(hub: Swan, name: str) -> tuple[list[dict], str]:
    """The events of one read of the progress stream, up to the first ready or failed one,
    and the answer's status line (for a stream that gave none)."""
    events = []
    with httpx.stream(
        "GET",
        f"{hub.url}/hub/api/users/{name}/server/progress",
        headers={"Authorization": f"token {hub.tokens[name]}"},
        timeout=SPAWN_TIMEOUT,
    ) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
                if events[-1].get("ready") or events[-1].get("failed"):
                    break
        return events, f"{stream.status_code} {stream.reason_phrase}"


def failure(events: list[dict]) -> str:
    assert events and events[-1].get("failed"), events
    return events[-1]["message"]


def test_a_server_started_from_the_rest_api_reports_its_progress(hub):
    events = spawn_through_api(hub, "bob", {"cpu": 2, "memory": "2G"})
    assert events[-1].get("ready"), events
    messages = [e.get("message", "") for e in events]
    assert any("Preparing your storage space" in m for m in messages), messages
    assert any("Starting a container" in m for m in messages), messages
    config = json.loads(docker("inspect", f"{hub.prefix}-bob").stdout)[0]
    assert config["HostConfig"]["Memory"] == 2 * 1024**3


def test_stopping_the_server_removes_its_container(hub):
    if f"{hub.prefix}-bob" not in containers(hub.prefix):
        assert spawn_through_api(hub, "bob")[-1].get("ready")
    r = api(hub, "bob", "DELETE", "/users/bob/server")
    assert r.status_code in (202, 204), r.text
    wait_until_stopped(hub, "bob")
    assert f"{hub.prefix}-bob" not in containers(hub.prefix)


def test_tampered_form_values_are_refused_on_the_form_and_start_nothing(hub):
    client = browser(hub, "carol")
    for data, message in [
        ({"environment": "test", "cpu": "64", "memory": "1G"}, "CPU cores: 64 is not offered"),
        ({"environment": "test", "cpu": "1", "memory": "900G"}, "Memory: 900G is not offered"),
        ({"environment": "../etc", "cpu": "1", "memory": "1G"}, "is not offered"),
        ({"environment": "test", "image": "evil:latest"}, "Unknown spawn option(s): image"),
    ]:
        r = client.post("/hub/spawn", data={**data, "_xsrf": xsrf_of(client)})
        assert message in r.text, (data, r.status_code)
        assert 'name="environment"' in r.text  # the form is shown again
    assert f"{hub.prefix}-carol" not in containers(hub.prefix)
    assert not api(hub, "carol", "GET", "/users/carol").json()["servers"]


def test_tampered_rest_api_options_fail_the_spawn_clearly_and_start_nothing(hub):
    message = failure(spawn_through_api(hub, "carol", {"image": "evil:latest"}))
    assert "Unknown spawn option(s): image" in message
    wait_until_stopped(hub, "carol")
    assert f"{hub.prefix}-carol" not in containers(hub.prefix)


def test_a_missing_image_is_a_clear_spawn_error_and_leaves_no_container(hub):
    space(hub, "carol").mkdir(exist_ok=True)
    message = failure(spawn_through_api(hub, "carol", {"environment": "gone"}))
    assert "swan-missing:none" in message and "not available" in message
    wait_until_stopped(hub, "carol")
    assert f"{hub.prefix}-carol" not in containers(hub.prefix)


def test_a_gpu_is_asked_of_docker_and_a_host_without_one_is_a_clear_spawn_error(hub):
    space(hub, "carol").mkdir(exist_ok=True)
    events = spawn_through_api(hub, "carol", {"environment": "test", "gpu": "yes"})
    if events[-1].get("ready"):  # an engine with a GPU runtime: the container has the request
        config = json.loads(docker("inspect", f"{hub.prefix}-carol").stdout)[0]
        assert config["HostConfig"]["DeviceRequests"][0]["Capabilities"] == [["gpu"]]
        api(hub, "carol", "DELETE", "/users/carol/server")
    else:
        message = failure(events)
        assert "A GPU was requested" in message and "Start without a GPU" in message
    wait_until_stopped(hub, "carol")
    assert f"{hub.prefix}-carol" not in containers(hub.prefix)


def test_a_missing_space_is_refused_by_name_when_creation_is_off(hub):
    carol = space(hub, "carol")
    if carol.exists():
        os.rmdir(carol)
    message = failure(spawn_through_api(hub, "carol"))
    assert "storage space of user 'carol' does not exist" in message
    assert not carol.exists()
    wait_until_stopped(hub, "carol")
    assert f"{hub.prefix}-carol" not in containers(hub.prefix)


def test_swan_up_docker_without_an_engine_fails_at_once_with_what_to_do(tmp_path):
    from harness.swan import run_swan_up

    done = run_swan_up(tmp_path, "--docker", DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")
    assert done.returncode == 1
    assert "no Docker engine answers" in done.stderr
    assert "docker/build-image" in done.stderr
    assert not (tmp_path / "data").exists()
