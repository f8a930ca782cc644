"""`swan up --docker --storage drive` end to end, with the real hub, proxy, drive and Docker
engine (the registry-free test image): the server in alice's container reaches her space over
WebDAV through the drive, and everything the drive writes into the space (before and after her
first server) belongs to the container's user, so that her kernels can change it on disk."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import httpx
import pytest
from harness.dockerhost import CONTAINER_UID, docker, docker_swan
from harness.drive import DAV, NC, PROPFIND_BODY, Drive, parse_xml
from harness.swan import NOTEBOOK, Swan, log_in, user_api, wait_until_ready

pytestmark = [pytest.mark.hub, pytest.mark.docker]

SPAWN_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def hub(image, tmp_path_factory) -> Iterator[Swan]:  # noqa: F811 (an imported fixture)
    form = {"environments": [{"id": "test", "display_name": "Test image", "image": image}]}
    workdir = tmp_path_factory.mktemp("swan-docker-drive")
    with docker_swan(workdir, form, "", users="alice", extra=("--storage", "drive")) as swan:
        log_in(swan, "alice")
        yield swan


def owners(root) -> dict[str, int]:
    """The uid of every file and folder below ``root`` (and of ``root``), by relative path."""
    found = {".": root.stat().st_uid}
    for folder, names, files in os.walk(root):
        for name in names + files:
            path = os.path.join(folder, name)
            found[os.path.relpath(path, root)] = os.lstat(path).st_uid
    return found


def restore_from_trash(drive: Drive, user: str, original: str) -> None:
    """Restore the item of ``user``'s trash that was deleted from ``original``."""
    trash = f"{drive.base}/remote.php/dav/trashbin/{user}/trash"
    r = drive.client(user).request("PROPFIND", trash, headers={"Depth": "1"}, content=PROPFIND_BODY)
    assert r.status_code == 207, r.text
    (href,) = [
        response.findtext(f"{DAV}href")
        for response in parse_xml(r.content).iter(f"{DAV}response")
        if response.findtext(f".//{NC}trashbin-original-location") == original
    ]
    restore = f"{drive.base}/remote.php/dav/trashbin/{user}/restore/{original}"
    moved = drive.client(user).request(
        "MOVE", f"{drive.swan.url}{href}", headers={"Destination": restore}
    )
    assert moved.status_code == 201, moved.text


def test_what_the_drive_writes_belongs_to_the_container_user_who_can_change_it(hub):
    drive = Drive(hub)
    space = hub.data / "users" / "alice"
    # a sync client fills alice's space through the drive before her first server starts
    assert drive.dav("alice", "MKCOL", "synced").status_code == 201
    assert drive.dav("alice", "PUT", "synced/data.csv", content=b"x,y\n").status_code == 201
    # and deletes a folder, which waits in the trash (outside the space) as the drive's
    assert drive.dav("alice", "MKCOL", "old").status_code == 201
    assert drive.dav("alice", "PUT", "old/notes.txt", content=b"n").status_code == 201
    assert drive.dav("alice", "DELETE", "old").status_code == 204

    headers = {"Authorization": f"token {hub.tokens['alice']}"}
    r = httpx.post(f"{hub.url}/hub/api/users/alice/server", headers=headers, timeout=60)
    assert r.status_code in (201, 202), r.text
    wait_until_ready(hub, "alice", timeout=SPAWN_TIMEOUT)
    container = f"{hub.prefix}-alice"
    assert set(owners(space).values()) == {CONTAINER_UID}  # handed over at the spawn

    # the server in the container saves through the drive, over WebDAV
    info = user_api(hub, "alice", "GET", "alice/swan/api/info")
    assert info.json()["storage"]["kind"] == "webdav", info.text
    saved = user_api(hub, "alice", "PUT", "alice/api/contents/synced/nb.ipynb", json=NOTEBOOK)
    assert saved.status_code == 201, saved.text
    # and so does a sync client afterwards: new folders and files, an overwrite, a copy, and
    # a folder it deleted before the server started comes back from the trash
    assert drive.dav("alice", "MKCOL", "synced/later").status_code == 201
    assert drive.dav("alice", "PUT", "synced/later/result.txt", content=b"42").status_code == 201
    assert drive.dav("alice", "PUT", "synced/data.csv", content=b"x,y\n1,2\n").status_code == 204
    copy = f"{drive.base}/remote.php/dav/files/alice/copied"
    assert drive.dav("alice", "COPY", "synced", headers={"Destination": copy}).status_code == 201
    restore_from_trash(drive, "alice", "old")
    assert (space / "old" / "notes.txt").read_bytes() == b"n"
    assert set(owners(space).values()) == {CONTAINER_UID}, owners(space)

    # a kernel in the container (the container's user, in its working folder: the space as
    # the hub mounted it) changes them; the drive has the changes once rclone uploaded them
    done = docker(
        "exec",
        container,
        "sh",
        "-c",
        # (what the drive made seconds ago is listed within the mount's listing time)
        "for i in $(seq 100); do [ -d copied/later ] && break; sleep 0.1; done; "
        "echo 43 >> synced/later/result.txt && touch copied/later/new.txt && rm synced/data.csv",
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = space / "synced" / "later" / "result.txt"
    new, removed = space / "copied" / "later" / "new.txt", space / "synced" / "data.csv"

    def arrived() -> bool:
        return result.read_text() == "4243\n" and new.exists() and not removed.exists()

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not arrived():
        time.sleep(0.2)
    assert result.read_text() == "4243\n"
    assert new.exists() and not removed.exists()
