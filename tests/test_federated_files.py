"""A single file another site shares (Open Cloud Mesh) appears as the file `Shared/<name>` in
JupyterLab: two real `swan up` sites on 127.0.0.1, trusted to each other, as in
test_federation.py. alice of site A shares a file with bob of site B, who accepts it; his
server opens, saves, downloads and copies it at site A with the share's secret, and is told
plainly when the share is read-only, revoked, or its site is down. Code reads a copy of it, kept
read-only and up to date by the hub (swan_hub.federated_copies; docs/federation.md)."""

from __future__ import annotations

import base64
import errno
import json
import os
from pathlib import Path
from urllib.parse import quote

import pytest
from harness.swan import log_in, start_server
from test_federation import (
    accept_in_lab,
    contents,
    lab,
    make_folder,
    notebook,
    received_in_lab,
    requests_at_a,
    revoke_then_save,
    save,
    secret_requests_since,
    share_folder,
    share_of_a_site_that_is_down,
    two_sites,
)
from test_kernel_mount import execute, mount_point, start_kernel, wait_for

from swan_hub.mounts import missing_parts

pytestmark = pytest.mark.hub


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    with two_sites(tmp_path_factory) as found:
        yield found


@pytest.fixture(scope="module")
def lab_b(sites):
    """bob's JupyterLab server at site B, through B's proxy."""
    log_in(sites.b.swan, "bob")
    start_server(sites.b.swan, "bob")
    return sites.b.swan


def put_file(drive, user: str, path: str, content: bytes) -> None:
    assert drive.dav(user, "PUT", path, content=content).status_code in (201, 204)


def read_or_none(path: str) -> bytes | None:
    """The bytes of ``path``, None while a read fails with EIO: in the mount's listing time
    after the copy was replaced, rclone refuses a file whose size or time changed under it."""
    try:
        return Path(path).read_bytes()
    except OSError as e:
        if e.errno != errno.EIO:
            raise
        return None


def sent_share(sites, path: str) -> dict:
    shares = sites.a.ocs("alice", "GET", "shares").json()["ocs"]["data"]
    [found] = [s for s in shares if s["path"].strip("/") == path]
    return found


def test_a_file_of_another_site_is_opened_saved_copied_and_revoked_in_shared(sites, lab_b):
    at_a = sites.a.space("alice") / "answers.ipynb"
    put_file(sites.a, "alice", "answers.ipynb", notebook("print('from alice')"))
    assert share_folder(sites, "answers.ipynb", f"bob@{sites.provider_b}", 3).status_code == 200

    accepting = len(requests_at_a(sites))
    accepted = accept_in_lab(sites, lab_b, "answers.ipynb")
    assert accepted["location"] == "Shared/answers.ipynb" and accepted["item_type"] == "file"
    listing = {m["name"]: m for m in contents(lab_b, "Shared").json()["content"]}
    assert listing["answers.ipynb"]["type"] == "notebook"
    assert listing["answers.ipynb"]["writable"] is True

    if not missing_parts():  # the hub's copy for code is fetched first (then looked at, 304)
        wait_for("the copy for code", lambda: "GET" in secret_requests_since(sites, accepting))
    mark = len(requests_at_a(sites))
    r = contents(lab_b, "Shared/answers.ipynb", params={"type": "notebook"})
    assert r.status_code == 200, r.text
    opened = r.json()
    assert opened["path"] == "Shared/answers.ipynb" and opened["name"] == "answers.ipynb"
    assert opened["content"]["cells"][0]["source"] == "print('from alice')"
    assert opened["writable"] is True and opened["etag"]
    opening = secret_requests_since(sites, mark, unchanged=False)
    assert sorted(opening) == ["GET", "PROPFIND"]  # one each

    r = save(lab_b, "Shared/answers.ipynb", "print('answer of bob')", etag=opened["etag"])
    assert r.status_code == 200, r.text
    assert r.json()["path"] == "Shared/answers.ipynb"
    assert "answer of bob" in at_a.read_text()  # alice sees it at site A
    saved = r.json()["etag"]

    # alice changes it meanwhile: bob's save on his old version is a 409, and no conflict
    # copy can be made beside a single shared file: nothing is written anywhere
    put_file(sites.a, "alice", "answers.ipynb", notebook("v2"))
    for fields in ({}, {"on_conflict": "copy"}):
        r = save(lab_b, "Shared/answers.ipynb", "print('late')", etag=saved, **fields)
        assert r.status_code == 409, r.text
        assert "changed by someone else" in r.json()["message"] and r.json()["etag"]
        assert "No conflict copy can be made beside a single shared file" in r.json()["message"]
    assert json.loads(at_a.read_bytes()) == json.loads(notebook("v2"))
    assert not [p for p in sites.b.space("bob").rglob("*") if "conflict" in p.name]
    assert not [p for p in sites.a.space("alice").rglob("*") if "conflict" in p.name]

    # nothing is inside a file; downloading it; copying it into the own space, create-only
    assert contents(lab_b, "Shared/answers.ipynb/inner.txt").status_code == 404
    r = lab(lab_b, "GET", "files/Shared/answers.ipynb")
    assert r.status_code == 200 and json.loads(r.content) == json.loads(notebook("v2"))
    for _ in range(2):
        r = lab(lab_b, "POST", "api/contents/", json={"copy_from": "Shared/answers.ipynb"})
        assert r.status_code == 201, r.text
    copies = sorted(p.name for p in sites.b.space("bob").glob("answers*.ipynb"))
    assert len(copies) == 2
    for name in copies:
        assert json.loads((sites.b.space("bob") / name).read_bytes()) == json.loads(notebook("v2"))

    # uploaded over it in parts, as JupyterLab uploads a large file: alice has it whole
    v3 = notebook("v3")
    for chunk, part in ((1, v3[:20]), (-1, v3[20:])):
        body = {"type": "file", "format": "base64", "chunk": chunk}
        body["content"] = base64.b64encode(part).decode()
        r = lab(lab_b, "PUT", "api/contents/Shared/answers.ipynb", json=body)
        assert r.status_code in (200, 201), r.text
    assert at_a.read_bytes() == v3

    # renamed or deleted from JupyterLab: refused as for a folder of another site
    path = f"api/contents/{quote('Shared/answers.ipynb')}"
    moved = lab(lab_b, "PATCH", path, json={"path": "mine.ipynb"})
    assert moved.status_code == 403 and "leave it in Shared with me" in moved.json()["message"]
    deleted = lab(lab_b, "DELETE", path)
    assert deleted.status_code == 403, deleted.text
    assert "cannot be deleted here; leave it in Shared with me" in deleted.json()["message"]
    assert at_a.exists() and not (sites.b.space("bob") / "mine.ipynb").exists()

    # revoked at site A: the open notebook's next save says so at once, and the file goes
    revoke_then_save(sites, lab_b, sent_share(sites, "answers.ipynb")["id"], "Shared/answers.ipynb")
    assert contents(lab_b, "Shared/answers.ipynb").status_code == 404
    assert "after" not in at_a.read_text()
    listing = contents(lab_b, "Shared")  # bob has no other share yet: Shared/ is empty
    assert listing.status_code == 200 and listing.json()["content"] == [], listing.text


def test_a_read_only_file_of_another_site_refuses_saves_as_a_local_one_does(sites, lab_b):
    put_file(sites.a, "alice", "sheet.txt", b"read me")
    assert share_folder(sites, "sheet.txt", f"bob@{sites.provider_b}", 1).status_code == 200
    accept_in_lab(sites, lab_b, "sheet.txt")
    # the same at site B: carol's file shared read-only with bob
    put_file(sites.b, "carol", "local-sheet.txt", b"read me")
    form = {"path": "local-sheet.txt", "shareType": 0, "shareWith": "bob", "permissions": 1}
    local = sites.b.ocs("carol", "POST", "shares", data=form).json()["ocs"]["data"]
    assert lab(lab_b, "POST", f"swan/api/shared-with-me/{local['id']}/accept").status_code == 200

    # another user of site B gets nothing of it: no secret, no file
    assert sites.b.ocs("carol", "GET", "remote_shares/mounts").json()["ocs"]["data"] == []
    opened = contents(lab_b, "Shared/sheet.txt").json()
    assert opened["type"] == "file" and opened["content"] == "read me"
    assert opened["writable"] is False
    body = {"type": "file", "format": "text", "content": "changed"}
    refused = lab(lab_b, "PUT", "api/contents/Shared/sheet.txt", json=body)
    refused_here = lab(lab_b, "PUT", "api/contents/Shared/local-sheet.txt", json=body)
    assert refused.status_code == refused_here.status_code == 403, refused.text
    said = refused.json()["message"].replace("Shared/sheet.txt", "Shared/X")
    assert said == refused_here.json()["message"].replace("Shared/local-sheet.txt", "Shared/X")
    assert (sites.a.space("alice") / "sheet.txt").read_bytes() == b"read me"

    # cloned from Shared with me into bob's own space
    [shared] = [s for s in received_in_lab(lab_b, "accepted") if s["name"] == "sheet.txt"]
    r = lab(lab_b, "POST", f"swan/api/shared-with-me/{shared['id']}/clone", json={})
    assert r.status_code == 201, r.text
    assert (sites.b.space("bob") / r.json()["path"]).read_bytes() == b"read me"


def test_a_file_whose_site_is_down_answers_503_naming_it_and_changes_nothing(sites, lab_b):
    dead = sites.dead
    share_of_a_site_that_is_down(sites, "away.txt", "file")
    assert accept_in_lab(sites, lab_b, "away.txt")["location"] == "Shared/away.txt"

    listing = {m["name"]: m for m in contents(lab_b, "Shared").json()["content"]}
    assert listing["away.txt"]["type"] == "file"
    body = {"type": "file", "format": "text", "content": "mine"}
    for r in (
        contents(lab_b, "Shared/away.txt"),
        lab(lab_b, "PUT", "api/contents/Shared/away.txt", json=body),
    ):
        assert r.status_code == 503, r.text
        message = r.json()["message"]
        assert f"the site of dave@{dead}, who shares this file, cannot be reached" in message
        assert "Traceback" not in r.text
    assert not (sites.b.space("bob") / "Shared").exists()  # nothing made in bob's own space


@pytest.mark.skipif(bool(missing_parts()), reason=f"cannot mount here: {missing_parts()}")
def test_code_sees_folders_of_another_site_and_a_read_only_copy_of_its_single_files(sites, lab_b):
    make_folder(sites.a, "alice", "data", {"events.csv": b"x\n1\n"})
    assert share_folder(sites, "data", f"bob@{sites.provider_b}", 1).status_code == 200
    put_file(sites.a, "alice", "table.csv", b"y\n2\n")
    assert share_folder(sites, "table.csv", f"bob@{sites.provider_b}", 3).status_code == 200
    accept_in_lab(sites, lab_b, "table.csv")
    accept_in_lab(sites, lab_b, "data")
    shared = os.path.join(mount_point(lab_b, "bob"), "Shared")
    wait_for("the shared folder for code", lambda: os.path.isfile(f"{shared}/data/events.csv"))
    table = os.path.join(shared, "table.csv")
    wait_for("the shared file for code", lambda: os.path.isfile(table))

    kernel = start_kernel(lab_b, "bob", "Shared/data/events.csv")
    out, error = execute(lab_b, "bob", kernel, "print(open('events.csv').read())")
    assert out == "x\n1\n\n" and error == ""
    out, error = execute(lab_b, "bob", kernel, "print(open('../table.csv').read())")
    assert out == "y\n2\n\n" and error == ""
    # a copy, read-only for code even where the share lets bob write (the file browser saves)
    out, error = execute(lab_b, "bob", kernel, "open('../table.csv', 'w').write('no')")
    assert error.startswith(("OSError", "PermissionError")), (out, error)
    assert (sites.a.space("alice") / "table.csv").read_bytes() == b"y\n2\n"
    assert contents(lab_b, "Shared/table.csv").json()["content"] == "y\n2\n"

    # alice changes it: code reads the new bytes soon after; she revokes it: it goes
    put_file(sites.a, "alice", "table.csv", b"y\n2\n3\n")
    wait_for("the change for code", lambda: read_or_none(table) == b"y\n2\n3\n")
    shares = sites.a.ocs("alice", "GET", "shares").json()["ocs"]["data"]
    [sent] = [s for s in shares if s["path"].strip("/") == "table.csv"]
    assert sites.a.ocs("alice", "DELETE", f"shares/{sent['id']}").status_code == 200
    wait_for("the revoked file gone for code", lambda: not os.path.exists(table))
    assert os.path.isfile(f"{shared}/data/events.csv")  # the folder's share goes on
