"""Kernels in containers see what the file browser shows: `swan up --docker --storage drive` with
the real hub, drive, rclone, FUSE and Docker engine (the registry-free test image). The hub mounts
each user's space on the host and binds the mount into the container (rslave), so shares the hub
stacks later reach the container; the container gets no FUSE device, capability nor mount
credentials. View-only stays read-only for code; the mounts end with the container."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from collections.abc import Iterator

import httpx
import pytest
from harness.dockerhost import CONTAINER_UID, docker, docker_swan
from harness.drive import Drive
from harness.swan import Swan, log_in, user_api, wait_until_stopped
from test_docker_spawner import spawn_through_api
from test_kernel_mount import (
    EVENTS,
    execute,
    mount_point,
    put_text,
    rclone_processes,
    share_week1,
    start_kernel,
    terminal_in_the_class,
    wait_for,
)
from test_swan_up_drive import accept, contents, swan_api

from swan_hub.mounts import missing_parts, mounted_at_or_below

pytestmark = [
    pytest.mark.hub,
    pytest.mark.docker,
    pytest.mark.skipif(bool(missing_parts()), reason=f"cannot mount here: {missing_parts()}"),
]


@pytest.fixture(scope="module")
def hub(image, tmp_path_factory) -> Iterator[Swan]:  # noqa: F811 (an imported fixture)
    """alice's and bob's servers in containers, their files mounted by the hub; carol's mount
    cannot come up (a mount timeout no rclone meets), so her server starts without it. The hub
    polls every 2 s, so that a killed container is noticed soon."""
    form = {"environments": [{"id": "test", "display_name": "Test image", "image": image}]}
    admin_config = (
        "c.Spawner.poll_interval = 2\n"
        "c.JupyterHub.tornado_settings = {'slow_spawn_timeout': 0}\n"
        "def carols_mount_fails(spawner):\n"
        "    if spawner.user.name == 'carol':\n"
        "        spawner.mount_timeout = 0.001\n"
        "c.Spawner.pre_spawn_hook = carols_mount_fails\n"
    )
    workdir = tmp_path_factory.mktemp("kernel-mount-docker")
    users = "alice,bob,carol"
    with docker_swan(workdir, form, admin_config, users, extra=("--storage", "drive")) as swan:
        for name in ("alice", "bob"):
            log_in(swan, name)
            events = spawn_through_api(swan, name)
            assert events[-1].get("ready"), events
        yield swan


def container(hub: Swan, user: str) -> str:
    return f"{hub.prefix}-{user}"


def inspect(hub: Swan, user: str) -> dict:
    return json.loads(docker("inspect", container(hub, user)).stdout)[0]


def space_in_container(hub: Swan, user: str) -> str:
    """The container's path of the user's space (the host's path of the space, by default)."""
    return str(hub.data / "users" / user)


@pytest.fixture(scope="module")
def week1(hub) -> str:
    """alice shares week1/ (exercise.ipynb, events.csv) view-only with bob, who accepts."""
    return share_week1(hub)


def test_the_host_mounts_and_the_container_gets_only_a_bind_with_no_fuse_nor_secrets(hub):
    point = mount_point(hub, "bob")
    assert point in mounted_at_or_below(point)
    runtime = os.path.dirname(point)
    assert stat.S_IMODE(os.stat(runtime).st_mode) == 0o700
    assert os.stat(runtime).st_uid == os.geteuid()
    for cmd in rclone_processes(hub, "bob").values():
        assert "--allow-other" in cmd.split() and f"--uid {CONTAINER_UID}" in cmd
    config = inspect(hub, "bob")
    binds = {m["Destination"]: m for m in config["Mounts"]}
    space = binds[space_in_container(hub, "bob")]
    assert (space["Source"], space["Propagation"], space["RW"]) == (point, "rslave", True)
    # the hub's list of refused uploads enters read-only; nothing else of the runtime area
    # (rclone's config, caches, log) does
    status = binds["/run/swan-mount-status"]
    assert (status["Source"], status["RW"]) == (os.path.join(runtime, "mount-status"), False)
    from_runtime = [m["Destination"] for m in config["Mounts"] if m["Source"].startswith(runtime)]
    assert sorted(from_runtime) == sorted([space["Destination"], status["Destination"]])
    host = config["HostConfig"]
    assert not host["Privileged"] and not host["CapAdd"] and not host["Devices"]
    assert "SWAN_FILES_MOUNTED=1" in config["Config"]["Env"]
    assert "SWAN_MOUNT_STATUS=/run/swan-mount-status/status.json" in config["Config"]["Env"]
    info = user_api(hub, "bob", "GET", "bob/swan/api/info").json()
    assert info["files_for_code"] == {"mounted": True, "notice": "", "refused_uploads": True}


def in_bobs_mount(hub: Swan, location: str) -> None:
    folder = os.path.join(mount_point(hub, "bob"), location)
    wait_for(f"{location} in bob's mount", lambda: os.path.isdir(folder))


def test_a_kernel_in_the_container_next_to_a_shared_notebook_reads_the_data_beside_it(hub, week1):
    in_bobs_mount(hub, week1)
    kernel = start_kernel(hub, "bob", f"{week1}/exercise.ipynb")
    code = "import os\nprint(os.getuid(), os.getcwd())\nprint(open('events.csv').read())"
    out, error = execute(hub, "bob", kernel, code)
    assert not error
    first, _, text = out.partition("\n")
    assert first == f"{CONTAINER_UID} {os.path.join(space_in_container(hub, 'bob'), week1)}"
    assert text.rstrip("\n") == EVENTS.rstrip("\n")


def test_a_terminal_in_the_container_starts_in_the_space_and_writes_only_where_allowed(hub, week1):
    in_bobs_mount(hub, week1)
    space = space_in_container(hub, "bob")
    shown = terminal_in_the_class(hub, week1)
    # bash, not the image's sh (dash): line editing, completion, history
    assert f"shell=bash id={CONTAINER_UID} cwd={space} home={space}" in shown


def test_a_view_only_share_refuses_writes_from_the_containers_kernel(hub, week1):
    in_bobs_mount(hub, week1)
    kernel = start_kernel(hub, "bob", f"{week1}/exercise.ipynb")
    for name in ("events.csv", "new.csv"):
        out, error = execute(hub, "bob", kernel, f"open({name!r}, 'w').write('student')")
        assert "Read-only file system" in error or "Permission denied" in error, error
    time.sleep(3)  # longer than the mount's write-back delay
    owners = hub.data / "users" / "alice" / "week1"
    assert (owners / "events.csv").read_text() == EVENTS
    assert not (owners / "new.csv").exists()


WRITE_UNTIL_WRITTEN = """
import time
deadline, outcomes = time.monotonic() + {bound}, []
while time.monotonic() < deadline:
    try:
        with open({path!r}, 'w') as f:
            f.write('42\\n')
        outcomes.append('written')
        break
    except OSError as e:
        outcomes.append(type(e).__name__)
    time.sleep(0.2)
print(outcomes[-1], round({bound} - (deadline - time.monotonic()), 1))
"""


def test_an_edit_share_accepted_while_the_container_runs_becomes_writable_in_it(hub):
    assert contents(hub, "alice", "PUT", "lab", json={"type": "directory"}).status_code == 201
    put_text(hub, "alice", "lab/notes.txt", "teacher\n")
    kernel = start_kernel(hub, "bob", "scratch.ipynb")
    body = {"path": "lab", "kind": "user", "share_with": "bob", "permissions": 15}
    r = swan_api(hub, "alice", "POST", "shares", json=body)
    assert r.status_code == 201, r.text
    location = accept(hub, "bob", r.json()["id"])["location"]
    path = os.path.join(space_in_container(hub, "bob"), location, "answer.csv")
    out, error = execute(hub, "bob", kernel, WRITE_UNTIL_WRITTEN.format(path=path, bound=30))
    assert not error and out.startswith("written "), out
    assert float(out.split()[1]) < 20  # within seconds of the accept
    owners = hub.data / "users" / "alice" / "lab"
    wait_for("answer.csv at alice", lambda: (owners / "answer.csv").is_file())
    assert (owners / "answer.csv").read_text() == "42\n"


def test_a_kernel_write_in_the_own_space_reaches_the_drive_whole(hub):
    kernel = start_kernel(hub, "bob", "analysis.ipynb")
    rows = "".join(f"{i},{i * i}\n" for i in range(20000))
    code = f"rows = {rows!r}\nwith open('results.csv', 'w') as f:\n    f.write(rows)\nprint('ok')"
    assert execute(hub, "bob", kernel, code) == ("ok\n", "")
    drive = Drive(hub)

    def uploaded() -> bool:
        r = drive.dav("bob", "GET", "results.csv")
        return r.status_code == 200 and r.text == rows

    wait_for("results.csv whole on the drive", uploaded)
    assert (hub.data / "users" / "bob" / "results.csv").read_text() == rows


def test_a_file_the_drive_refuses_is_listed_by_the_server_in_the_container(hub):
    """The hub lists what the storage refuses of code's writes in a folder the container sees
    read-only; the server there passes the list on to JupyterLab."""
    kernel = start_kernel(hub, "bob", "drafts.ipynb")
    code = "open('.~swan-draft.txt', 'w').write('x')\nprint('ok')"
    assert execute(hub, "bob", kernel, code) == ("ok\n", "")

    def listed() -> list:
        return user_api(hub, "bob", "GET", "bob/swan/api/refused-uploads").json()["refused"]

    wait_for("the refused draft listed", lambda: listed() != [])
    [item] = listed()
    assert item["path"] == ".~swan-draft.txt" and "(400)" in item["why"], item
    code = "import os\nos.remove('.~swan-draft.txt')\nprint('ok')"
    assert execute(hub, "bob", kernel, code) == ("ok\n", "")
    wait_for("the draft off the list", lambda: listed() == [])


def test_a_server_whose_mount_cannot_come_up_starts_and_says_code_sees_the_local_folder(hub):
    log_in(hub, "carol")
    events = spawn_through_api(hub, "carol")
    assert events[-1].get("ready"), events
    messages = [e.get("message", "") for e in events]
    assert any(m.startswith("Code sees only the local folder") for m in messages), messages
    assert mounted_at_or_below(mount_point(hub, "carol")) == []
    assert rclone_processes(hub, "carol") == {}
    config = inspect(hub, "carol")
    binds = {m["Destination"]: m["Source"] for m in config["Mounts"]}
    assert binds[space_in_container(hub, "carol")] == str(hub.data / "users" / "carol")
    info = user_api(hub, "carol", "GET", "carol/swan/api/info").json()
    assert info["files_for_code"]["mounted"] is False and info["files_for_code"]["notice"]


def test_a_stopped_server_leaves_no_mount_and_no_rclone(hub):
    point = mount_point(hub, "alice")
    assert point in mounted_at_or_below(point)
    headers = {"Authorization": f"token {hub.tokens['alice']}"}
    r = httpx.delete(f"{hub.url}/hub/api/users/alice/server", headers=headers, timeout=60)
    assert r.status_code in (202, 204), r.text
    wait_until_stopped(hub, "alice")
    assert mounted_at_or_below(point) == []
    assert rclone_processes(hub, "alice") == {}


def test_a_killed_container_has_its_mounts_and_rclone_cleaned_by_the_hubs_poll(hub, week1):
    point = mount_point(hub, "bob")
    assert os.path.join(point, "Shared") in mounted_at_or_below(point)
    killed = docker("kill", container(hub, "bob"), check=False)
    assert killed.returncode == 0, killed.stderr
    wait_for("no mount left", lambda: mounted_at_or_below(point) == [])
    wait_for("no rclone left", lambda: rclone_processes(hub, "bob") == {})
    assert subprocess.run(["pgrep", "-f", point], capture_output=True).stdout == b""
