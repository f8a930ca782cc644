"""`swan up` with its default storage, end to end over HTTP only: the real hub, proxy, drive and
notebook servers on 127.0.0.1, each server reaching its user's space through the drive over
WebDAV and the drive's share API over OCS, with its own hub token. A teacher shares a class
folder, a student reads, clones and loses it; desktop sync clients change files under open
notebooks; and `--storage posix` keeps the direct mode."""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
from pathlib import Path

import httpx
import pytest
from harness.drive import Drive
from harness.swan import (
    NOTEBOOK,
    _processes,
    swan_with_servers,
    user_api,
    write_drive_config,
)
from test_drive_clients import sync

pytestmark = [
    pytest.mark.hub,
    pytest.mark.skipif(
        shutil.which("configurable-http-proxy") is None,
        reason="configurable-http-proxy is not installed (npm install -g configurable-http-proxy)",
    ),
]


def notebook(source: str) -> dict:
    body = copy.deepcopy(NOTEBOOK)
    body["content"]["cells"][0]["source"] = source
    return body


def source_of(path: Path) -> str:
    return "".join(json.loads(path.read_text())["cells"][0]["source"])


def contents(swan, user: str, method: str, path: str = "", **kwargs) -> httpx.Response:
    return user_api(swan, user, method, f"{user}/api/contents/{path}", **kwargs)


def swan_api(swan, user: str, method: str, endpoint: str, **kwargs) -> httpx.Response:
    return user_api(swan, user, method, f"{user}/swan/api/{endpoint}", **kwargs)


@pytest.fixture(scope="module")
def swan(tmp_path_factory):
    """`swan up` (drive storage, the default) with alice and bob logged in, servers running;
    both are in the demo group class-2026. The drive logs every request it serves."""
    workdir = tmp_path_factory.mktemp("swan-up-drive")
    write_drive_config(workdir, f"c.DriveService.access_log = {str(workdir / 'drive.log')!r}\n")
    with swan_with_servers(workdir) as swan:
        yield swan


@pytest.fixture(scope="module")
def drive(swan) -> Drive:
    """WebDAV and OCS clients of the drive through the proxy, as a desktop client sees it."""
    return Drive(swan)


def share_folder(swan, owner: str, folder: str, files: dict[str, str], **share) -> dict:
    """``owner`` makes ``folder`` with notebooks and shares it from their server."""
    assert contents(swan, owner, "PUT", folder, json={"type": "directory"}).status_code == 201
    for name, text in files.items():
        r = contents(swan, owner, "PUT", f"{folder}/{name}", json=notebook(text))
        assert r.status_code == 201, r.text
    r = swan_api(swan, owner, "POST", "shares", json={"path": folder, **share})
    assert r.status_code == 201, r.text
    return r.json()


def accept(swan, user: str, share_id: str) -> dict:
    r = swan_api(swan, user, "POST", f"shared-with-me/{share_id}/accept")
    assert r.status_code == 200, r.text
    return r.json()


def shared_with_bob(swan, folder: str, name: str, text: str, permissions: int) -> str:
    """alice shares ``folder`` holding the notebook ``name`` with bob, who accepts it; the
    share's place in bob's space."""
    files = {name: text}
    share = share_folder(
        swan, "alice", folder, files, kind="user", share_with="bob", permissions=permissions
    )
    return accept(swan, "bob", share["id"])["location"]


def drive_requests(swan) -> list[tuple[str, str]]:
    """(method, path) of each request the drive served so far."""
    log = swan.data.parent / "drive.log"
    return [tuple(line.split(" ")[:2]) for line in log.read_text().splitlines() if line]


def server_environment(swan, user: str) -> dict[str, str]:
    """The environment of ``user``'s running notebook server process."""
    for pid, (_, _, cmd) in _processes().items():
        if "swan-singleuser" not in cmd or str(swan.data) not in cmd:
            continue
        raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        env = dict(item.decode().split("=", 1) for item in raw if b"=" in item)
        if env.get("JUPYTERHUB_USER") == user:
            return env
    pytest.fail(f"no server process of {user}")


def test_each_server_reaches_its_space_through_the_drive(swan):
    info = swan_api(swan, "alice", "GET", "info").json()
    assert info["storage"]["kind"] == "webdav"
    r = contents(swan, "alice", "PUT", "through-the-drive.ipynb", json=notebook("hello"))
    assert r.status_code == 201 and r.json()["etag"]
    assert source_of(swan.data / "users" / "alice" / "through-the-drive.ipynb") == "hello"
    assert not (swan.data / "users" / "bob" / "through-the-drive.ipynb").exists()
    env = server_environment(swan, "alice")
    assert env["SWAN_WEBDAV_URL"].startswith("http://127.0.0.1:")
    assert env["SWAN_WEBDAV_URL"].endswith("/services/drive/remote.php/dav/files/alice/")


def test_a_large_upload_reaches_the_drive_as_one_put_not_in_parts(swan):
    # 12 MiB: above a part (10 MiB), where a server elsewhere would use the drive's chunking
    size = 12 * 1024 * 1024
    served_before = len(drive_requests(swan))
    r = swan_api(swan, "alice", "PUT", "upload/large.bin", content=os.urandom(size))
    assert r.status_code == 201, r.text
    assert (swan.data / "users" / "alice" / "large.bin").stat().st_size == size
    served = drive_requests(swan)[served_before:]
    assert [m for m, p in served if p.endswith("/large.bin")].count("PUT") == 1
    assert not [(m, p) for m, p in served if "/dav/uploads/" in p]


def test_a_servers_token_has_its_users_rights_on_the_drive_and_nothing_more(swan, drive):
    credentials_file = server_environment(swan, "bob")["SWAN_STORAGE_CREDENTIALS"]
    token = json.loads(Path(credentials_file).read_text())["password"]
    as_bobs_server = httpx.Client(auth=("bob", token), timeout=30)
    own = as_bobs_server.request(
        "PROPFIND", f"{drive.base}/remote.php/dav/files/bob/", headers={"Depth": "0"}
    )
    assert own.status_code == 207
    contents(
        swan, "alice", "PUT", "private.txt", json={"type": "file", "format": "text", "content": "a"}
    )
    others = as_bobs_server.get(f"{drive.base}/remote.php/dav/files/alice/private.txt")
    assert others.status_code == 404
    with_alices_name = httpx.request(
        "PROPFIND", f"{drive.base}/remote.php/dav/files/alice/", auth=("alice", token)
    )
    assert with_alices_name.status_code == 401
    headers = {"Authorization": f"token {token}"}
    assert httpx.get(f"{swan.url}/hub/api/users", headers=headers).status_code == 403
    alices_server = httpx.get(f"{swan.url}/user/alice/api/contents/", headers=headers)
    assert alices_server.status_code in (403, 404)


def test_a_teacher_shares_a_class_folder_and_a_student_reads_clones_and_loses_it(swan, drive):
    alice_space = swan.data / "users" / "alice"
    original = alice_space / "lesson-1" / "intro.ipynb"
    share = share_folder(
        swan,
        "alice",
        "lesson-1",
        {"intro.ipynb": "print('the teacher wrote this')"},
        kind="group",
        share_with="class-2026",
        permissions=1,
    )
    assert share["kind"] == "group" and share["permissions"] == 1

    waiting = swan_api(swan, "bob", "GET", "shared-with-me").json()
    (listed,) = [s for s in waiting if s["id"] == share["id"]]
    assert listed["state"] == "pending" and listed["owner"] == "alice"
    accepted = accept(swan, "bob", share["id"])
    assert accepted["state"] == "accepted" and accepted["location"] == "Shared/lesson-1"

    # opened in place, read-only
    folder = contents(swan, "bob", "GET", "Shared/lesson-1").json()
    assert [m["name"] for m in folder["content"]] == ["intro.ipynb"]
    assert folder["writable"] is False
    # nor shared on: no re-share rights (the drive gives none), so JupyterLab offers no Share
    assert folder["shareable"] is False
    assert contents(swan, "alice", "GET", "lesson-1").json()["shareable"] is True
    opened = contents(swan, "bob", "GET", "Shared/lesson-1/intro.ipynb")
    assert opened.status_code == 200
    assert opened.json()["content"]["cells"][0]["source"] == "print('the teacher wrote this')"
    assert opened.json()["writable"] is False
    assert opened.json()["shareable"] is False
    refused = contents(
        swan,
        "bob",
        "PUT",
        "Shared/lesson-1/intro.ipynb",
        json={**notebook("print('the student wrote this')"), "etag": opened.json()["etag"]},
    )
    assert refused.status_code == 403
    message = refused.json()["message"]
    assert "Permission denied: /Shared/lesson-1/intro.ipynb" in message
    assert "the share does not allow it" in message
    assert source_of(original) == "print('the teacher wrote this')"

    # cloned into the student's own space, inside the storage, then edited there
    served_before = len(drive_requests(swan))
    cloned = swan_api(swan, "bob", "POST", f"shared-with-me/{share['id']}/clone", json={})
    assert cloned.status_code == 201, cloned.text
    on_files = {m for m, p in drive_requests(swan)[served_before:] if "/dav/files/" in p}
    assert "COPY" in on_files and not on_files & {"GET", "PUT"}
    clone = cloned.json()["path"]
    assert clone == "lesson-1" and cloned.json()["type"] == "directory"
    edited = contents(swan, "bob", "PUT", f"{clone}/intro.ipynb", json=notebook("print('mine')"))
    assert edited.status_code == 200 and edited.json()["writable"] is True
    assert source_of(swan.data / "users" / "bob" / clone / "intro.ipynb") == "print('mine')"
    assert source_of(original) == "print('the teacher wrote this')"

    # revoked: gone from every API of the student
    assert swan_api(swan, "alice", "DELETE", f"shares/{share['id']}").status_code == 204
    assert contents(swan, "bob", "GET", "Shared/lesson-1/intro.ipynb").status_code == 404
    listing = contents(swan, "bob", "GET", "Shared").json()["content"]
    assert listing == []  # Shared/ stays, empty
    assert drive.dav("bob", "GET", "Shared/lesson-1/intro.ipynb").status_code == 404
    ocs = drive.ocs("bob", "GET", "shares", params={"shared_with_me": "true", "state": "all"})
    assert share["id"] not in [s["id"] for s in ocs.json()["ocs"]["data"]]
    assert drive.ocs("bob", "GET", f"shares/{share['id']}").status_code == 404
    mine = swan_api(swan, "bob", "GET", "shared-with-me").json()
    assert share["id"] not in [s["id"] for s in mine]
    again = swan_api(swan, "bob", "POST", f"shared-with-me/{share['id']}/clone", json={})
    assert again.status_code == 404
    # the clone is the student's own and stays
    assert source_of(swan.data / "users" / "bob" / clone / "intro.ipynb") == "print('mine')"


def test_a_student_with_edit_rights_saves_into_the_teachers_folder(swan):
    location = shared_with_bob(swan, "group-work", "draft.ipynb", "draft", permissions=3)
    opened = contents(swan, "bob", "GET", f"{location}/draft.ipynb").json()
    assert opened["writable"] is True
    saved = contents(
        swan,
        "bob",
        "PUT",
        f"{location}/draft.ipynb",
        json={**notebook("draft, improved by bob"), "etag": opened["etag"]},
    )
    assert saved.status_code == 200, saved.text
    draft = swan.data / "users" / "alice" / "group-work" / "draft.ipynb"
    assert source_of(draft) == "draft, improved by bob"
    # alice saving from the version she opened before bob's edit gets a 409, not an overwrite
    stale = contents(
        swan,
        "alice",
        "PUT",
        "group-work/draft.ipynb",
        json={**notebook("alice's edit"), "etag": opened["etag"]},
    )
    assert stale.status_code == 409
    assert source_of(draft) == "draft, improved by bob"


def kernel_cwd(kernel_id: str) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for pid, (_, _, cmd) in _processes().items():
            if f"kernel-{kernel_id}.json" in cmd:
                return os.readlink(f"/proc/{pid}/cwd")
        time.sleep(0.2)
    pytest.fail(f"no process of kernel {kernel_id}")


def test_a_declined_share_is_listed_as_declined_and_cannot_be_reached(swan, drive):
    share = share_folder(
        swan, "alice", "optional", {"extra.ipynb": "extra"}, kind="user", share_with="bob"
    )
    declined = swan_api(swan, "bob", "POST", f"shared-with-me/{share['id']}/decline")
    assert declined.status_code == 204
    listed = swan_api(swan, "bob", "GET", "shared-with-me", params={"state": "declined"})
    assert share["id"] in [s["id"] for s in listed.json()]
    pending = swan_api(swan, "bob", "GET", "shared-with-me", params={"state": "pending"})
    assert share["id"] not in [s["id"] for s in pending.json()]
    assert drive.dav("bob", "GET", "Shared/optional/extra.ipynb").status_code == 404
    clone = swan_api(swan, "bob", "POST", f"shared-with-me/{share['id']}/clone", json={})
    assert clone.status_code == 404 and "is shared with you" in clone.json()["message"]


def visible_in_mount(folder: Path, timeout: float = 30.0) -> None:
    """Wait until ``folder`` shows in a user's mount (its listings are trusted 5 s)."""
    deadline = time.monotonic() + timeout
    while not folder.is_dir():
        assert time.monotonic() < deadline, f"{folder} did not show in the mount"
        time.sleep(0.2)


def test_a_notebook_opened_from_a_share_starts_its_kernel_beside_it_in_the_mount(swan):
    location = shared_with_bob(swan, "lesson-2", "run.ipynb", "1 + 1", permissions=1)
    mount = swan.data / "runtime" / "bob" / "files"
    visible_in_mount(mount / location)
    session = user_api(
        swan,
        "bob",
        "POST",
        "bob/api/sessions",
        json={"path": f"{location}/run.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
    )
    assert session.status_code == 201, session.text
    kernel = session.json()["kernel"]["id"]
    try:
        # the share is in the mount of the user's storage, so relative paths reach its files
        assert kernel_cwd(kernel) == str(mount / location)
    finally:
        user_api(swan, "bob", "DELETE", f"bob/api/sessions/{session.json()['id']}")
    # a notebook of the user's own files starts beside them, as always
    contents(swan, "bob", "PUT", "projects", json={"type": "directory"})
    contents(swan, "bob", "PUT", "projects/mine.ipynb", json=notebook("2 + 2"))
    visible_in_mount(mount / "projects")
    own = user_api(
        swan,
        "bob",
        "POST",
        "bob/api/sessions",
        json={"path": "projects/mine.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
    )
    try:
        assert kernel_cwd(own.json()["kernel"]["id"]) == str(mount / "projects")
    finally:
        user_api(swan, "bob", "DELETE", f"bob/api/sessions/{own.json()['id']}")


def test_a_public_link_made_in_jupyterlab_points_at_the_hub(swan):
    contents(swan, "alice", "PUT", "handout.ipynb", json=notebook("for everyone"))
    r = swan_api(swan, "alice", "POST", "shares", json={"path": "handout.ipynb", "kind": "link"})
    assert r.status_code == 201, r.text
    url = r.json()["url"]
    assert url.startswith(f"{swan.url}/services/drive/s/")
    assert httpx.get(url, timeout=30).status_code == 200


@pytest.fixture
def laptop(tmp_path) -> Path:
    folder = tmp_path / "laptop"
    folder.mkdir()
    return folder


def test_a_desktop_client_change_arrives_in_the_servers_listing_with_a_new_etag(
    swan, drive, laptop
):
    saved = contents(swan, "alice", "PUT", "synced.ipynb", json=notebook("from jupyter"))
    sync(drive, "owncloudcmd", "alice", laptop)
    assert "from jupyter" in (laptop / "synced.ipynb").read_text()

    time.sleep(1.1)  # a new mtime second on the laptop, as a person's edit would have
    edited = json.loads((laptop / "synced.ipynb").read_text())
    edited["cells"][0]["source"] = "edited on the laptop"
    (laptop / "synced.ipynb").write_text(json.dumps(edited))
    sync(drive, "owncloudcmd", "alice", laptop)

    listing = contents(swan, "alice", "GET", "").json()["content"]
    (entry,) = [m for m in listing if m["name"] == "synced.ipynb"]
    assert entry["etag"] != saved.json()["etag"]
    opened = contents(swan, "alice", "GET", "synced.ipynb").json()
    assert opened["content"]["cells"][0]["source"] == "edited on the laptop"
    assert opened["etag"] == entry["etag"]


def test_a_notebook_changed_on_a_laptop_while_open_is_a_409_on_save_and_never_lost(
    swan, drive, laptop
):
    contents(swan, "alice", "PUT", "busy.ipynb", json=notebook("v1"))
    sync(drive, "owncloudcmd", "alice", laptop)
    opened = contents(swan, "alice", "GET", "busy.ipynb").json()

    time.sleep(1.1)
    edited = json.loads((laptop / "busy.ipynb").read_text())
    edited["cells"][0]["source"] = "the laptop's edit"
    (laptop / "busy.ipynb").write_text(json.dumps(edited))
    sync(drive, "owncloudcmd", "alice", laptop)

    mine = {**notebook("the browser's edit"), "etag": opened["etag"]}
    refused = contents(swan, "alice", "PUT", "busy.ipynb", json=mine)
    assert refused.status_code == 409
    stored = swan.data / "users" / "alice" / "busy.ipynb"
    assert source_of(stored) == "the laptop's edit"
    current = contents(swan, "alice", "GET", "busy.ipynb", params={"content": "0"}).json()
    assert refused.json()["etag"] == current["etag"]
    copied = contents(swan, "alice", "PUT", "busy.ipynb", json={**mine, "on_conflict": "copy"})
    assert copied.status_code == 200 and copied.json()["path"] != "busy.ipynb"
    assert source_of(swan.data / "users" / "alice" / copied.json()["path"]) == "the browser's edit"
    assert source_of(stored) == "the laptop's edit"
    # the next sync brings the conflict copy to the laptop; nothing is lost on either side
    sync(drive, "owncloudcmd", "alice", laptop)
    assert (laptop / copied.json()["path"]).exists()
    assert "the laptop's edit" in (laptop / "busy.ipynb").read_text()


def test_storage_posix_serves_the_space_as_a_folder_without_sharing(tmp_path):
    with swan_with_servers(tmp_path, "--storage", "posix", names=("alice",)) as swan:
        assert swan_api(swan, "alice", "GET", "info").json()["storage"]["kind"] == "posix"
        r = contents(swan, "alice", "PUT", "direct.ipynb", json=notebook("on disk"))
        assert r.status_code == 201
        assert source_of(swan.data / "users" / "alice" / "direct.ipynb") == "on disk"
        shares = swan_api(swan, "alice", "GET", "shares")
        assert shares.status_code == 503 and "not set up" in shares.json()["message"]
        assert "--storage posix" in swan.output()
