"""The embedded drive as `swan up` runs it (real hub, proxy and drive service on 127.0.0.1), driven
over HTTP with hub API tokens as app passwords: the ownCloud/Nextcloud WebDAV layer, chunked
uploads, versions, trash, the OCS share API, public links, quota, and who may see what."""

from __future__ import annotations

import contextlib
import html
import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from harness.drive import (
    DAV,
    NC,
    OC,
    PROPFIND_BODY,
    ocs_share,
    parse_xml,
    running_drive,
    send_password_form,
)
from harness.swan import drive_url, log_in, start_swan, write_drive_config

from swan_hub.drive.web import ROWS_PER_PAGE

pytestmark = pytest.mark.hub

QUOTA = 200_000


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("drive")
    write_drive_config(workdir, f"c.DriveService.quota_bytes = {QUOTA}\n")
    # The hub answers lists two items at a time: the drive must read every page.
    hub_config = workdir / "hub_config.py"
    hub_config.write_text(
        "c.JupyterHub.api_page_default_limit = 2\nc.JupyterHub.api_page_max_limit = 2\n"
    )
    with running_drive(workdir, "-f", str(hub_config), users="alice,bob,carol") as drive:
        yield drive


def test_status_and_capabilities_answer_as_sync_clients_expect(drive):
    status = httpx.get(f"{drive.base}/status.php").json()
    assert status["installed"] is True and status["maintenance"] is False
    caps = drive.client("alice").get(
        f"{drive.base}/ocs/v1.php/cloud/capabilities", params={"format": "json"}
    )
    data = caps.json()["ocs"]
    assert data["meta"]["statuscode"] == 100
    capabilities = data["data"]["capabilities"]
    assert capabilities["dav"]["chunking"] == "1.0"
    assert capabilities["files"]["versioning"] and capabilities["files"]["undelete"]
    assert capabilities["files_sharing"]["api_enabled"]
    for version, code in ((1, 100), (2, 200)):
        user = drive.client("alice").get(
            f"{drive.base}/ocs/v{version}.php/cloud/user", params={"format": "json"}
        )
        assert user.json()["ocs"]["meta"]["statuscode"] == code
        assert user.json()["ocs"]["data"]["id"] == "alice"
        assert "class-2026" in user.json()["ocs"]["data"]["groups"]


def test_without_a_valid_token_nothing_is_served(drive):
    assert httpx.get(f"{drive.base}/remote.php/webdav/").status_code == 401
    wrong = httpx.request(
        "PROPFIND", f"{drive.base}/remote.php/webdav/", auth=("alice", "not-a-token")
    )
    assert wrong.status_code == 401
    assert "Basic" in wrong.headers["WWW-Authenticate"]
    # bob's own token with alice's name is not alice
    drive.client("bob")
    token = drive.swan.tokens["bob"]
    r = httpx.request("PROPFIND", f"{drive.base}/remote.php/webdav/", auth=("alice", token))
    assert r.status_code == 401


def test_put_answers_oc_etag_and_file_id_and_honours_if_match_and_mtime(drive):
    r = drive.dav("alice", "PUT", "notes.txt", content=b"v1", headers={"X-OC-Mtime": "1600000000"})
    assert r.status_code == 201, r.text
    etag, file_id = r.headers["OC-ETag"], r.headers["OC-FileId"]
    assert etag.startswith('"') and file_id
    assert r.headers["X-OC-MTime"] == "accepted"
    assert os.stat(drive.space("alice") / "notes.txt").st_mtime == 1600000000

    props = drive.propfind("alice", "notes.txt", "0")
    (entry,) = props.values()
    assert entry[f"{DAV}getetag"] == etag
    assert entry[f"{OC}id"] == file_id
    assert entry[f"{OC}permissions"] == "RGDNVW"
    assert entry[f"{OC}size"] == "2"

    stale = drive.dav("alice", "PUT", "notes.txt", content=b"v2", headers={"If-Match": '"old"'})
    assert stale.status_code == 412
    assert (drive.space("alice") / "notes.txt").read_bytes() == b"v1"
    fresh = drive.dav("alice", "PUT", "notes.txt", content=b"v2", headers={"If-Match": etag})
    assert fresh.status_code == 204
    assert fresh.headers["OC-FileId"] == file_id  # same file, new content
    assert fresh.headers["OC-ETag"] != etag


def test_folder_etags_change_when_anything_deep_inside_changes(drive):
    drive.dav("alice", "MKCOL", "deep")
    drive.dav("alice", "MKCOL", "deep/er")
    drive.dav("alice", "PUT", "deep/er/file.txt", content=b"one")

    def etags():
        root = drive.propfind("alice", "", "0")
        deep = drive.propfind("alice", "deep", "0")
        return next(iter(root.values()))[f"{DAV}getetag"], next(iter(deep.values()))[
            f"{DAV}getetag"
        ]

    before = etags()
    assert etags() == before  # stable while nothing changes
    # a change made beside the drive (as a notebook server does) counts too
    (drive.space("alice") / "deep" / "er" / "file.txt").write_bytes(b"two")
    after = etags()
    assert after[0] != before[0] and after[1] != before[1]


def test_renames_and_appends_made_beside_the_drive_change_the_folder_etags(drive):
    space = drive.space("alice")
    drive.dav("alice", "MKCOL", "beside")
    drive.dav("alice", "MKCOL", "beside/inner")
    drive.dav("alice", "PUT", "beside/inner/log.txt", content=b"line 1\n")

    def state():
        root = next(iter(drive.propfind("alice", "", "0").values()))
        listed = drive.propfind("alice", "beside", "1")
        return root[f"{DAV}getetag"], {href: p.get(f"{DAV}getetag") for href, p in listed.items()}

    seen = [state()]
    subprocess.run(
        ["sh", "-c", "echo line 2 >> log.txt"], cwd=space / "beside" / "inner", check=True
    )
    seen.append(state())
    (space / "beside" / "inner" / "log.txt").rename(space / "beside" / "inner" / "log.old")
    seen.append(state())
    (space / "beside" / "inner").rename(space / "beside" / "moved")
    seen.append(state())
    (space / "beside" / "moved" / "log.old").write_text("rewritten in place")
    seen.append(state())
    assert len({root for root, _ in seen}) == len(seen)  # every change reached the root
    assert len({str(listing) for _, listing in seen}) == len(seen)
    assert state() == seen[-1]  # and nothing changes when nothing does


def test_a_file_added_beside_the_drive_counts_against_the_quota_at_once(drive):
    drive.propfind("bob", "", "0")  # the space exists from the first request on
    (drive.space("bob") / "beside.bin").write_bytes(b"x" * (QUOTA - 50_000))
    try:
        assert drive.dav("bob", "PUT", "more.bin", content=b"y" * 60_000).status_code == 507
        (drive.space("bob") / "beside.bin").unlink()
        assert drive.dav("bob", "PUT", "more.bin", content=b"y" * 60_000).status_code == 201
    finally:
        (drive.space("bob") / "beside.bin").unlink(missing_ok=True)
        drive.dav("bob", "DELETE", "more.bin")


def test_move_copy_and_delete_keep_file_ids_and_fill_the_trash(drive):
    r = drive.dav("alice", "PUT", "draft.txt", content=b"draft")
    file_id = r.headers["OC-FileId"]
    dest = f"{drive.base}/remote.php/dav/files/alice/final.txt"
    assert drive.dav("alice", "MOVE", "draft.txt", headers={"Destination": dest}).status_code == 201
    (entry,) = drive.propfind("alice", "final.txt", "0").values()
    assert entry[f"{OC}id"] == file_id

    copy = f"{drive.base}/remote.php/dav/files/alice/copy.txt"
    assert drive.dav("alice", "COPY", "final.txt", headers={"Destination": copy}).status_code == 201
    assert (drive.space("alice") / "copy.txt").read_bytes() == b"draft"

    assert drive.dav("alice", "DELETE", "final.txt").status_code == 204
    assert not (drive.space("alice") / "final.txt").exists()
    trash_url = f"{drive.base}/remote.php/dav/trashbin/alice/trash"
    r = drive.client("alice").request(
        "PROPFIND", trash_url, headers={"Depth": "1"}, content=PROPFIND_BODY
    )
    assert r.status_code == 207
    tree = parse_xml(r.content)
    items = [
        resp.findtext(f"{DAV}href")
        for resp in tree.iter(f"{DAV}response")
        if resp.find(f".//{NC}trashbin-original-location") is not None
        and resp.findtext(f".//{NC}trashbin-original-location") == "final.txt"
    ]
    assert len(items) == 1
    restore = f"{drive.base}/remote.php/dav/trashbin/alice/restore/final.txt"
    r = drive.client("alice").request(
        "MOVE", f"{drive.swan.url}{items[0]}", headers={"Destination": restore}
    )
    assert r.status_code == 201, r.text
    assert (drive.space("alice") / "final.txt").read_bytes() == b"draft"
    # the trash lives outside the synced space
    assert not any(p.name.startswith(".") for p in drive.space("alice").iterdir())


def test_chunked_upload_v2_publishes_the_parts_at_once(drive):
    upload = f"{drive.base}/remote.php/dav/uploads/alice/web-1234"
    c = drive.client("alice")
    assert c.request("MKCOL", upload).status_code == 201
    parts = [os.urandom(300), os.urandom(300), os.urandom(7)]
    for i, part in enumerate(parts, start=1):
        assert c.put(f"{upload}/{i:05d}", content=part).status_code == 201
    assert not (drive.space("alice") / "big.bin").exists()
    dest = f"{drive.base}/remote.php/dav/files/alice/big.bin"
    wrong = c.request(
        "MOVE", f"{upload}/.file", headers={"Destination": dest, "OC-Total-Length": "1"}
    )
    assert wrong.status_code == 400
    assert not (drive.space("alice") / "big.bin").exists()
    r = c.request(
        "MOVE",
        f"{upload}/.file",
        headers={"Destination": dest, "OC-Total-Length": str(sum(map(len, parts)))},
    )
    assert r.status_code == 201, r.text
    assert r.headers["OC-FileId"] and r.headers["OC-ETag"]
    assert (drive.space("alice") / "big.bin").read_bytes() == b"".join(parts)
    assert not (drive.swan.data / "drive" / "uploads" / "alice" / "web-1234").exists()


def test_if_none_match_star_keeps_a_file_there_from_a_put_and_from_parts_published(drive):
    c = drive.client("alice")
    there = drive.space("alice") / "theirs.txt"
    there.write_bytes(b"theirs")
    dest = f"{drive.base}/remote.php/dav/files/alice/theirs.txt"
    refused = c.put(dest, content=b"mine", headers={"If-None-Match": "*"})
    assert refused.status_code == 412
    upload = f"{drive.base}/remote.php/dav/uploads/alice/web-none-match"
    assert c.request("MKCOL", upload).status_code == 201
    assert c.put(f"{upload}/00001", content=b"mine").status_code == 201
    headers = {"Destination": dest, "OC-Total-Length": "4", "If-None-Match": "*"}
    assert c.request("MOVE", f"{upload}/.file", headers=headers).status_code == 412
    assert there.read_bytes() == b"theirs"
    there.unlink()
    assert c.request("MOVE", f"{upload}/.file", headers=headers).status_code == 201
    assert there.read_bytes() == b"mine"


def test_an_upload_abandoned_for_a_day_is_swept_when_the_next_one_starts(drive):
    uploads = f"{drive.base}/remote.php/dav/uploads/alice"
    c = drive.client("alice")
    assert c.request("MKCOL", f"{uploads}/died-half-way").status_code == 201
    assert c.put(f"{uploads}/died-half-way/00001", content=b"x" * 1000).status_code == 201
    assert c.request("MKCOL", f"{uploads}/still-going").status_code == 201
    area = drive.swan.data / "drive" / "uploads" / "alice"
    two_days_ago = time.time() - 2 * 86400
    os.utime(area / "died-half-way", (two_days_ago, two_days_ago))
    assert c.request("MKCOL", f"{uploads}/next").status_code == 201
    assert not (area / "died-half-way").exists()
    assert (area / "still-going").is_dir() and (area / "next").is_dir()


def test_overwrites_keep_versions_that_can_be_listed_and_restored(drive):
    first = drive.dav("alice", "PUT", "paper.md", content=b"first", headers={"X-OC-Mtime": "1000"})
    file_id = first.headers["OC-FileId"][:8].lstrip("0")
    drive.dav("alice", "PUT", "paper.md", content=b"second", headers={"X-OC-Mtime": "2000"})
    versions = f"{drive.base}/remote.php/dav/versions/alice/versions/{file_id}"
    r = drive.client("alice").request("PROPFIND", versions, headers={"Depth": "1"})
    assert r.status_code == 207
    hrefs = [h.text for h in parse_xml(r.content).iter(f"{DAV}href")]
    assert any(h.endswith("/1000") for h in hrefs)
    assert drive.client("alice").get(f"{versions}/1000").content == b"first"
    target = f"{drive.base}/remote.php/dav/versions/alice/restore/target"
    r = drive.client("alice").request("COPY", f"{versions}/1000", headers={"Destination": target})
    assert r.status_code == 204, r.text
    assert (drive.space("alice") / "paper.md").read_bytes() == b"first"
    r = drive.client("alice").request("PROPFIND", versions, headers={"Depth": "1"})
    assert any(h.text.endswith("/2000") for h in parse_xml(r.content).iter(f"{DAV}href"))


def test_traversal_and_odd_names_are_refused_and_write_nothing(drive):
    c = drive.client("alice")
    for raw in ("../bob/x.txt", "%2e%2e/bob/x.txt", "a/%2e%2e/%2e%2e/bob/x.txt"):
        r = c.put(f"{drive.base}/remote.php/dav/files/alice/{raw}", content=b"x")
        assert r.status_code in (400, 403, 404), (raw, r.status_code)
    assert not (drive.space("bob") / "x.txt").exists()
    for name in ("bad%5Cname.txt", "ctl%01.txt", ".~swan-x.part"):
        r = c.put(f"{drive.base}/remote.php/dav/files/alice/{name}", content=b"x")
        assert r.status_code == 400, (name, r.status_code)
    assert drive.dav("alice", "MKCOL", "Shared").status_code in (403, 405)
    assert not (drive.space("alice") / "Shared").exists()


def test_no_user_reaches_another_users_files_with_any_verb(drive):
    drive.dav("alice", "PUT", "secret.txt", content=b"alice only")
    dest = f"{drive.base}/remote.php/dav/files/bob/stolen.txt"
    for method, kw in [
        ("GET", {}),
        ("PROPFIND", {"headers": {"Depth": "1"}}),
        ("PUT", {"content": b"planted"}),
        ("DELETE", {}),
        ("MKCOL", {}),
        ("MOVE", {"headers": {"Destination": dest}}),
        ("COPY", {"headers": {"Destination": dest}}),
        ("PROPPATCH", {"content": b"<x/>"}),
        ("LOCK", {"content": b""}),
    ]:
        path = "newdir" if method == "MKCOL" else "secret.txt"
        r = drive.dav("bob", method, path, owner="alice", **kw)
        assert r.status_code in (403, 404), (method, r.status_code)
        assert b"alice only" not in r.content
    assert (drive.space("alice") / "secret.txt").read_bytes() == b"alice only"
    assert not (drive.space("bob") / "stolen.txt").exists()
    assert not (drive.space("alice") / "newdir").exists()
    # bob cannot move his files into alice's space either
    drive.dav("bob", "PUT", "gift.txt", content=b"gift")
    into_alice = f"{drive.base}/remote.php/dav/files/alice/gift.txt"
    r = drive.dav("bob", "MOVE", "gift.txt", headers={"Destination": into_alice})
    assert r.status_code in (403, 404, 502)
    assert not (drive.space("alice") / "gift.txt").exists()
    # nor list alice's trash or versions
    for area in ("trashbin/alice/trash", "versions/alice/versions"):
        r = drive.client("bob").request(
            "PROPFIND", f"{drive.base}/remote.php/dav/{area}", headers={"Depth": "1"}
        )
        assert r.status_code in (403, 404)


def test_links_in_a_space_are_never_followed_into_other_spaces(drive):
    """A user's code can make symbolic links in their space (in a container they name host paths);
    the drive must not let one lead to another user's files, for the owner or through a share."""
    drive.dav("bob", "PUT", "diary.txt", content=b"bob only")
    alice = drive.space("alice")
    (alice / "linked").mkdir(parents=True)
    os.symlink(drive.space("bob"), alice / "linked" / "to-bob")
    os.symlink(drive.space("bob") / "diary.txt", alice / "linked" / "diary.txt")
    os.symlink(drive.space("bob"), alice / "to-bob")

    listed = drive.propfind("alice", "linked")
    assert not [href for href in listed if "to-bob" in href or "diary" in href]
    for path in ("to-bob/diary.txt", "linked/to-bob/diary.txt", "linked/diary.txt", "to-bob"):
        for method, kw in [("GET", {}), ("PROPFIND", {"headers": {"Depth": "1"}}), ("DELETE", {})]:
            r = drive.dav("alice", method, path, **kw)
            assert r.status_code in (403, 404, 409), (method, path, r.status_code)
            assert b"bob only" not in r.content
        assert drive.dav("alice", "MKCOL", f"{path}/new").status_code in (403, 404, 409)
    for path in ("to-bob/diary.txt", "linked/to-bob/diary.txt", "to-bob/new.txt"):
        put = drive.dav("alice", "PUT", path, content=b"planted")
        assert put.status_code in (403, 404, 409), (path, put.status_code)
    # a link's own name is alice's entry: writing it replaces the link, never its target
    assert drive.dav("alice", "PUT", "linked/diary.txt", content=b"alice's").status_code == 201
    assert not os.path.islink(alice / "linked" / "diary.txt")
    assert (drive.space("bob") / "diary.txt").read_bytes() == b"bob only"
    assert not (drive.space("bob") / "new.txt").exists()
    assert not (drive.space("bob") / "new").exists()

    link = ocs_share(drive, "alice", path="linked", shareType="3")
    webdav = f"{drive.base}/public.php/webdav"
    r = httpx.get(f"{webdav}/to-bob/diary.txt", auth=(link["token"], ""))
    assert r.status_code in (403, 404) and b"bob only" not in r.content
    assert httpx.get(f"{webdav}/diary.txt", auth=(link["token"], "")).content == b"alice's"


def test_a_user_share_waits_for_acceptance_then_appears_with_its_permissions(drive):
    drive.dav("alice", "MKCOL", "project")
    drive.dav("alice", "PUT", "project/data.csv", content=b"a,b\n")
    share = ocs_share(
        drive, "alice", path="/project", shareType="0", shareWith="bob", permissions="1"
    )
    assert share["share_type"] == 0 and share["permissions"] == 1

    pending = drive.ocs("bob", "GET", "shares", params={"shared_with_me": "true", "state": "1"})
    assert [s["id"] for s in pending.json()["ocs"]["data"]] == [share["id"]]
    # Shared/ is there from the start (for every client, and for the mounts for code), empty
    # until a share is accepted, and stays as it is
    assert [h for h in drive.propfind("bob", "", "1") if h.endswith("/Shared/")]
    assert [h.rsplit("/", 2)[-2] for h in drive.propfind("bob", "Shared", "1")] == ["Shared"]
    for method in ("DELETE", "MKCOL"):
        assert drive.dav("bob", method, "Shared").status_code in (403, 405)
    assert drive.dav("bob", "PUT", "Shared/x.csv", content=b"x").status_code == 403

    accepted = drive.ocs("bob", "POST", f"shares/pending/{share['id']}")
    assert accepted.status_code == 200, accepted.text
    listing = drive.propfind("bob", "Shared/project", "1")
    perms = {href.rsplit("/", 1)[-1]: p[f"{OC}permissions"] for href, p in listing.items()}
    assert perms["data.csv"] == "SG"
    assert drive.dav("bob", "GET", "Shared/project/data.csv").content == b"a,b\n"
    # read-only: no verb may change anything
    assert drive.dav("bob", "PUT", "Shared/project/data.csv", content=b"x").status_code == 403
    assert drive.dav("bob", "PUT", "Shared/project/new.csv", content=b"x").status_code == 403
    assert drive.dav("bob", "DELETE", "Shared/project/data.csv").status_code == 403
    assert drive.dav("bob", "MKCOL", "Shared/project/sub").status_code == 403
    mine = f"{drive.base}/remote.php/dav/files/bob/mine.csv"
    moved = drive.dav("bob", "MOVE", "Shared/project/data.csv", headers={"Destination": mine})
    assert moved.status_code == 403
    assert (drive.space("alice") / "project" / "data.csv").read_bytes() == b"a,b\n"
    # carol was not given anything
    assert drive.dav("carol", "GET", "Shared/project/data.csv").status_code == 404

    # alice widens the share: bob may now edit and create
    r = drive.ocs("alice", "PUT", f"shares/{share['id']}", data={"permissions": "7"})
    assert r.json()["ocs"]["data"]["permissions"] == 7
    assert drive.dav("bob", "PUT", "Shared/project/data.csv", content=b"c,d\n").status_code == 204
    assert drive.dav("bob", "PUT", "Shared/project/new.csv", content=b"n").status_code == 201
    assert (drive.space("alice") / "project" / "new.csv").read_bytes() == b"n"
    assert drive.dav("bob", "DELETE", "Shared/project/new.csv").status_code == 403

    # only the owner changes or deletes a share
    r = drive.ocs("bob", "PUT", f"shares/{share['id']}", data={"permissions": "31"})
    assert r.status_code == 403
    assert drive.ocs("alice", "DELETE", f"shares/{share['id']}").status_code == 200
    assert drive.dav("bob", "GET", "Shared/project/data.csv").status_code == 404


def test_a_group_share_reaches_every_member_who_accepts_it(drive):
    drive.dav("carol", "PUT", "syllabus.md", content=b"week 1")
    share = ocs_share(
        drive, "carol", path="syllabus.md", shareType="1", shareWith="class-2026", permissions="31"
    )
    assert share["permissions"] == 3  # a file cannot grant create/delete; no resharing
    for user in ("alice", "bob"):
        drive.ocs(user, "POST", f"shares/pending/{share['id']}")
        assert drive.dav(user, "GET", "Shared/syllabus.md").content == b"week 1"
    assert drive.ocs("alice", "DELETE", f"shares/pending/{share['id']}").status_code == 200
    assert drive.dav("alice", "GET", "Shared/syllabus.md").status_code == 404
    assert drive.dav("bob", "GET", "Shared/syllabus.md").status_code == 200
    declined = drive.ocs("alice", "GET", "shares", params={"shared_with_me": "true", "state": "2"})
    assert [s["id"] for s in declined.json()["ocs"]["data"]] == [share["id"]]


def test_a_folder_shared_with_a_student_directly_and_through_a_group_is_one_entry(drive):
    drive.dav("alice", "MKCOL", "week1")
    drive.dav("alice", "PUT", "week1/ex.ipynb", content=b"{}")
    group = ocs_share(
        drive, "alice", path="/week1", shareType="1", shareWith="class-2026", permissions="1"
    )
    direct = ocs_share(
        drive, "alice", path="/week1", shareType="0", shareWith="bob", permissions="3"
    )

    def week1(state: str) -> list[dict]:
        r = drive.ocs("bob", "GET", "shares", params={"shared_with_me": "true", "state": state})
        return [s for s in r.json()["ocs"]["data"] if s["path"].endswith("/week1")]

    # one entry waiting, with the rights of both shares
    (waiting,) = week1("1")
    pending = drive.ocs("bob", "GET", "shares/pending").json()["ocs"]["data"]
    assert [s["id"] for s in pending if s["path"].endswith("/week1")] == [waiting["id"]]
    assert waiting["permissions"] == 3 and waiting["id"] == group["id"]

    # accepted once, accepted both: one folder under Shared/, not "week1 (2)"
    assert drive.ocs("bob", "POST", f"shares/pending/{waiting['id']}").status_code == 200
    assert week1("1") == [] and [s["state"] for s in week1("all")] == [0]
    names = [h.rstrip("/").rsplit("/", 1)[-1] for h in drive.propfind("bob", "Shared", "1")]
    assert names.count("week1") == 1 and not [n for n in names if n.startswith("week1 (")]
    assert drive.dav("bob", "PUT", "Shared/week1/ex.ipynb", content=b"{ }").status_code == 204

    # the direct share revoked: the group share still reaches the folder, read-only
    assert drive.ocs("alice", "DELETE", f"shares/{direct['id']}").status_code == 200
    (kept,) = week1("all")
    assert (kept["state"], kept["permissions"], kept["id"]) == (0, 1, group["id"])
    assert drive.dav("bob", "GET", "Shared/week1/ex.ipynb").content == b"{ }"
    assert drive.dav("bob", "PUT", "Shared/week1/ex.ipynb", content=b"{}").status_code == 403
    # carol, in the group only, still has it waiting for her
    carols = drive.ocs("carol", "GET", "shares/pending").json()["ocs"]["data"]
    assert [s["id"] for s in carols if s["path"].endswith("/week1")] == [group["id"]]

    # both revoked: gone
    assert drive.ocs("alice", "DELETE", f"shares/{group['id']}").status_code == 200
    assert week1("all") == []
    assert drive.dav("bob", "GET", "Shared/week1/ex.ipynb").status_code == 404


def uids_below(root: Path) -> set[tuple[int, int]]:
    """The (uid, gid) of ``root`` and of everything below it."""
    paths = [root, *root.rglob("*")]
    return {(os.lstat(p).st_uid, os.lstat(p).st_gid) for p in paths}


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files to another user")
def test_what_the_drive_writes_belongs_to_the_user_of_the_space_it_lands_in(drive):
    # carol's space belongs to her server's user (a container's uid), not to the drive's
    container_user = (1000, 1000)
    assert drive.dav("carol", "MKCOL", "lab").status_code == 201
    os.chown(drive.space("carol"), *container_user)
    os.chown(drive.space("carol") / "lab", *container_user)
    assert drive.dav("carol", "PUT", "lab/a.txt", content=b"a").status_code == 201
    assert drive.dav("carol", "PUT", "lab/a.txt", content=b"a2").status_code == 204
    assert drive.dav("carol", "MKCOL", "lab/sub").status_code == 201
    # a folder is made under a temporary name, handed over and renamed into place: never over
    # one that is there, and nothing temporary stays behind
    assert drive.dav("carol", "MKCOL", "lab/sub").status_code == 405
    assert not [p for p in drive.space("carol").rglob(".~swan-*")]
    copy = f"{drive.base}/remote.php/dav/files/carol/lab-copy"
    assert drive.dav("carol", "COPY", "lab", headers={"Destination": copy}).status_code == 201
    # what bob writes into her shared folder is hers too, even a folder he moves in
    share = ocs_share(drive, "carol", path="/lab", shareType="0", shareWith="bob", permissions="31")
    drive.ocs("bob", "POST", f"shares/pending/{share['id']}")
    assert drive.dav("bob", "PUT", "Shared/lab/b.txt", content=b"b").status_code == 201
    assert drive.dav("bob", "MKCOL", "notes").status_code == 201
    assert drive.dav("bob", "PUT", "notes/n.txt", content=b"n").status_code == 201
    into = f"{drive.base}/remote.php/dav/files/bob/Shared/lab/notes"
    assert drive.dav("bob", "MOVE", "notes", headers={"Destination": into}).status_code == 201
    assert (drive.space("carol") / "lab" / "notes" / "n.txt").read_bytes() == b"n"
    for folder in ("lab", "lab-copy"):
        assert uids_below(drive.space("carol") / folder) == {container_user}, folder
    assert drive.ocs("carol", "DELETE", f"shares/{share['id']}").status_code == 200
    # bob's space is the drive's own: what lands there stays the drive's
    assert drive.dav("bob", "PUT", "own.txt", content=b"o").status_code == 201
    assert os.stat(drive.space("bob") / "own.txt").st_uid == os.geteuid()


def test_sharing_what_you_do_not_own_is_refused_with_an_ocs_error(drive):
    drive.dav("alice", "PUT", "mine.txt", content=b"m")
    for version, status in ((1, 200), (2, 404)):
        r = drive.ocs(
            "bob",
            "POST",
            "shares",
            version=version,
            data={"path": "/mine.txt", "shareType": "0", "shareWith": "carol"},
        )
        assert r.status_code == status
        meta = r.json()["ocs"]["meta"]
        assert meta["status"] == "failure" and meta["statuscode"] == 404
    r = drive.ocs(
        "alice",
        "POST",
        "shares",
        data={"path": "/mine.txt", "shareType": "0", "shareWith": "nobody"},
    )
    assert r.json()["ocs"]["meta"]["statuscode"] == 404
    r = drive.ocs(
        "alice", "POST", "shares", data={"path": "/../bob", "shareType": "0", "shareWith": "bob"}
    )
    assert r.json()["ocs"]["meta"]["status"] == "failure"
    assert drive.ocs("bob", "GET", "shares/999999").status_code == 404


def test_sharees_finds_users_and_groups_beyond_the_hubs_first_page(drive):
    r = drive.ocs("alice", "GET", "sharees", params={"search": "b", "itemType": "file"})
    data = r.json()["ocs"]["data"]
    assert [u["value"]["shareWith"] for u in data["users"]] == ["bob"]
    # the hub lists two users per page here: carol is on the second one
    r = drive.ocs("alice", "GET", "sharees", params={"search": "carol"})
    assert [u["value"]["shareWith"] for u in r.json()["ocs"]["data"]["exact"]["users"]] == ["carol"]
    share = ocs_share(drive, "alice", path="/mine.txt", shareType="0", shareWith="carol")
    assert share["share_with"] == "carol"
    drive.ocs("alice", "DELETE", f"shares/{share['id']}")
    r = drive.ocs("alice", "GET", "sharees", params={"search": "class"})
    assert r.json()["ocs"]["data"]["groups"][0]["value"] == {
        "shareType": 1,
        "shareWith": "class-2026",
    }


def test_a_public_link_with_password_serves_its_folder_read_only(drive):
    drive.dav("alice", "MKCOL", "public")
    drive.dav("alice", "PUT", "public/poster.pdf", content=b"%PDF")
    link = ocs_share(drive, "alice", path="public", shareType="3", password="open sesame")
    token = link["token"]
    assert len(token) >= 32 and link["url"].endswith(f"/s/{token}")
    db = sqlite3.connect(drive.swan.data / "drive" / "drive.sqlite")
    stored = db.execute("SELECT password_hash FROM shares WHERE token = ?", (token,)).fetchone()[0]
    assert "open sesame" not in stored and json.loads(stored)["scheme"] == "scrypt"

    webdav = f"{drive.base}/public.php/webdav"
    assert httpx.get(f"{webdav}/poster.pdf", auth=(token, "wrong")).status_code == 401
    assert httpx.get(f"{webdav}/poster.pdf").status_code == 401
    assert httpx.get(f"{webdav}/poster.pdf", auth=(token, "open sesame")).content == b"%PDF"
    put = httpx.put(f"{webdav}/planted.txt", content=b"x", auth=(token, "open sesame"))
    assert put.status_code == 403
    assert not (drive.space("alice") / "public" / "planted.txt").exists()
    assert httpx.get(f"{drive.base}/s/{token}").status_code == 401  # asks for the password
    assert httpx.get(f"{drive.base}/s/not-a-real-token-at-all").status_code == 404

    drop = ocs_share(drive, "alice", path="public", shareType="3", publicUpload="true")
    put = httpx.put(f"{webdav}/upload.txt", content=b"up", auth=(drop["token"], ""))
    assert put.status_code == 201
    page = httpx.get(f"{drive.base}/s/{drop['token']}")
    assert page.status_code == 200 and "poster.pdf" in page.text


def test_a_public_link_of_a_single_file_refuses_a_write_to_its_own_url(drive):
    drive.dav("alice", "PUT", "flyer.txt", content=b"come along")
    token = ocs_share(drive, "alice", path="flyer.txt", shareType="3")["token"]
    for url in (f"{drive.base}/public.php/webdav", f"{drive.base}/public.php/webdav/"):
        assert httpx.get(url, auth=(token, "")).content == b"come along"
        put = httpx.put(url, content=b"defaced", auth=(token, ""))
        assert put.status_code == 403, put.text
    assert (drive.space("alice") / "flyer.txt").read_bytes() == b"come along"


def test_a_password_link_opens_in_a_browser_by_its_form_and_for_programs_by_basic_auth(drive):
    drive.dav("alice", "MKCOL", "exam")
    drive.dav("alice", "PUT", "exam/answers.ipynb", content=b"{}")
    token = ocs_share(drive, "alice", path="exam", shareType="3", password="open sesame")["token"]
    other = ocs_share(drive, "alice", path="exam", shareType="3", password="other one")["token"]
    page = f"{drive.base}/s/{token}"
    asked = httpx.get(page)
    assert asked.status_code == 401 and "type='password'" in asked.text
    assert "answers.ipynb" not in asked.text

    browser = httpx.Client()
    wrong = send_password_form(browser, page, "guess")
    assert wrong.status_code == 401 and "not right" in wrong.text
    assert "swan_link" not in browser.cookies
    opened = send_password_form(browser, page, "open sesame", follow_redirects=True)
    assert opened.status_code == 200 and "answers.ipynb" in opened.text
    assert browser.get(f"{page}/download").headers["content-type"] == "application/zip"
    # the cookie opens this link only, and only while the password stays the same
    assert browser.get(f"{drive.base}/s/{other}").status_code == 401
    forged = httpx.get(page, cookies={"swan_link": "0" * 64})
    assert forged.status_code == 401
    # a form posted from another page or site (no form token, or none that its cookie repeats)
    # opens nothing, even with the right password
    for stranger in (httpx.Client(), httpx.Client(cookies={"swan_link_form": "mine"})):
        refused = stranger.post(page, data={"password": "open sesame", "form_token": "other"})
        assert refused.status_code == 403 and "type the password again" in refused.text
        assert "swan_link" not in stranger.cookies and "answers.ipynb" not in refused.text

    # programs: Basic auth with the link's token as the user
    zipped = httpx.get(f"{page}/download", auth=(token, "open sesame"))
    assert zipped.status_code == 200 and zipped.content[:2] == b"PK"
    assert httpx.get(f"{page}/download", auth=(token, "guess")).status_code == 401
    assert httpx.get(f"{page}/download", auth=(other, "other one")).status_code == 401
    assert httpx.post(page, content=b"x" * 5000).status_code == 400


def test_over_quota_uploads_answer_507_and_leave_no_partial_file(drive):
    big = os.urandom(QUOTA + 1)
    r = drive.dav("carol", "PUT", "huge.bin", content=big)
    assert r.status_code == 507
    upload = f"{drive.base}/remote.php/dav/uploads/carol/q-1"
    c = drive.client("carol")
    c.request("MKCOL", upload)
    # the parts of uploads in progress may hold the quota at most, whatever becomes of them
    assert c.put(f"{upload}/1", content=big).status_code == 507
    half = QUOTA // 2
    assert c.put(f"{upload}/1", content=big[:half]).status_code == 201
    assert c.put(f"{upload}/2", content=big[: half + 1]).status_code == 507
    assert c.put(f"{upload}/1", content=big[: half + 1]).status_code in (201, 204)
    # parts that fit make a file that does not fit beside what carol keeps
    assert drive.dav("carol", "PUT", "kept.bin", content=big[:half]).status_code == 201
    dest = f"{drive.base}/remote.php/dav/files/carol/huge.bin"
    assert c.request("MOVE", f"{upload}/.file", headers={"Destination": dest}).status_code == 507
    assert not (drive.space("carol") / "huge.bin").exists()
    assert not [p for p in drive.space("carol").iterdir() if p.name.startswith(".")]
    assert drive.dav("carol", "DELETE", "kept.bin").status_code == 204
    c.request("DELETE", upload)


def test_unfinished_uploads_of_either_chunking_hold_the_quota_at_most(drive):
    """Parts of uploads never finished count: a client cannot fill the disk with them."""
    c = drive.client("carol")
    part = os.urandom(QUOTA * 6 // 10)
    headers = {"OC-Chunked": "1"}

    def v1(transfer: int) -> str:  # part 1 of 2 of an ownCloud chunking v1 transfer
        return f"{drive.base}/remote.php/webdav/big-{transfer}.bin-chunking-{transfer}-2-0"

    assert c.put(v1(11), content=part, headers=headers).status_code == 201
    assert c.put(v1(12), content=part, headers=headers).status_code == 507
    upload = f"{drive.base}/remote.php/dav/uploads/carol/q-2"
    c.request("MKCOL", upload)
    assert c.put(f"{upload}/1", content=part).status_code == 507
    assert not [p for p in drive.space("carol").iterdir() if p.name.startswith("big-")]
    c.request("DELETE", upload)
    # the drive sweeps abandoned transfers; here, their parts go at once
    shutil.rmtree(drive.swan.data / "drive" / "uploads" / "carol", ignore_errors=True)


@contextlib.contextmanager
def signed_in(drive, user: str) -> Iterator[tuple[httpx.Client, httpx.Response]]:
    """A browser's client signed in to the drive's page through the hub, and that first page."""
    with httpx.Client(follow_redirects=True, timeout=60) as browser:
        login = browser.get(f"{drive.base}/")
        assert "/hub/login" in str(login.url)
        xsrf = browser.cookies.get("_xsrf")
        page = browser.post(
            str(login.url),
            data={"username": user, "password": drive.swan.passwords()[user], "_xsrf": xsrf},
        )
        assert page.status_code == 200, page.text
        assert str(page.url).startswith(f"{drive.base}/")
        yield browser, page


def test_the_web_page_logs_in_through_the_hub_and_offers_open_in_swan(drive):
    drive.dav("alice", "PUT", "analysis.ipynb", content=b"{}")
    with signed_in(drive, "alice") as (browser, page):
        assert "analysis.ipynb" in page.text
        assert "/hub/user-redirect/swan/open?path=analysis.ipynb" in page.text
        # a cookie-authenticated write needs the page's request token
        planted = browser.put(f"{drive.base}/remote.php/dav/files/alice/csrf.txt", content=b"x")
        assert planted.status_code == 403
        assert not (drive.space("alice") / "csrf.txt").exists()
        assert browser.get(f"{drive.base}/static/drive.js").status_code == 200


def listed(page: httpx.Response) -> list[str]:
    return re.findall(r"<td><a href='[^']*'>([^<]*)</a>", page.text)


def test_a_big_folder_shows_one_page_at_once_with_links_to_the_others(drive):
    folder = drive.space("alice") / "lecture data"
    folder.mkdir()
    files = [f"run {i:05d}.csv" for i in range(2 * ROWS_PER_PAGE + 10)]
    for name in files:
        (folder / name).write_text("a,b\n")
    (folder / "plots").mkdir()
    with signed_in(drive, "alice") as (browser, _):
        pages = [browser.get(f"{drive.base}/", params={"dir": "lecture data"})]
        assert f"1-{ROWS_PER_PAGE} of {len(files) + 1:,} (page 1 of 3)" in pages[0].text
        assert "rel='prev'" not in pages[0].text
        while "rel='next'" in pages[-1].text:
            following = re.search(r"rel='next' href='([^']*)'", pages[-1].text)[1]
            pages.append(browser.get(f"{drive.base}/" + html.unescape(following)))
        assert [len(listed(p)) for p in pages] == [ROWS_PER_PAGE, ROWS_PER_PAGE, 11]
        assert sum((listed(p) for p in pages), []) == ["plots/", *files]  # folders first
        assert "(page 3 of 3)" in pages[-1].text and "rel='prev'" in pages[-1].text

        # a page past the end (the folder shrank) shows the last; a bad number is refused
        beyond = browser.get(f"{drive.base}/", params={"dir": "lecture data", "page": 9})
        assert listed(beyond) == listed(pages[-1])
        for bad in ("0", "-1", "two", "1e3"):
            refused = browser.get(f"{drive.base}/", params={"dir": "lecture data", "page": bad})
            assert refused.status_code == 400
            assert "whole number" in refused.text


PROPPATCH_BODY = (
    '<?xml version="1.0"?><d:propertyupdate xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" '
    'xmlns:x="urn:example:swan"><d:set><d:prop><x:colour>blue</x:colour>'
    "<oc:favorite>1</oc:favorite></d:prop></d:set></d:propertyupdate>"
)
DEAD_PROPFIND = (
    '<?xml version="1.0"?><d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" '
    'xmlns:x="urn:example:swan"><d:prop><x:colour/><oc:favorite/><oc:fileid/></d:prop>'
    "</d:propfind>"
)


def dead_properties(drive, user: str, path: str) -> dict:
    r = drive.dav(user, "PROPFIND", path, headers={"Depth": "0"}, content=DEAD_PROPFIND)
    assert r.status_code == 207, r.text
    (props,) = [
        {p.tag: p.text for p in propstat.find(f"{DAV}prop")}
        for propstat in parse_xml(r.content).iter(f"{DAV}propstat")
        if "200" in propstat.findtext(f"{DAV}status")
    ]
    return props


def test_properties_clients_set_are_kept_by_file_and_follow_moves_copies_and_renames(drive):
    colour, favorite, fileid = "{urn:example:swan}colour", f"{OC}favorite", f"{OC}fileid"
    drive.dav("alice", "PUT", "tagged.txt", content=b"t")
    legacy = f"{drive.base}/remote.php/webdav/tagged.txt"
    r = drive.client("alice").request("PROPPATCH", legacy, content=PROPPATCH_BODY)
    assert r.status_code == 207 and "200 OK" in r.text, r.text
    # set through the legacy URL, read through the files URL: the same file
    first = dead_properties(drive, "alice", "tagged.txt")
    assert first[colour] == "blue" and first[favorite] == "1"

    dest = f"{drive.base}/remote.php/dav/files/alice/moved.txt"
    assert (
        drive.dav("alice", "MOVE", "tagged.txt", headers={"Destination": dest}).status_code == 201
    )
    copy = f"{drive.base}/remote.php/dav/files/alice/copied.txt"
    assert drive.dav("alice", "COPY", "moved.txt", headers={"Destination": copy}).status_code == 201
    for name in ("moved.txt", "copied.txt"):
        assert dead_properties(drive, "alice", name)[colour] == "blue"
    (drive.space("alice") / "moved.txt").rename(drive.space("alice") / "renamed beside.txt")
    renamed = dead_properties(drive, "alice", "renamed beside.txt")
    assert renamed[colour] == "blue" and renamed[fileid] == first[fileid]

    # what the drive computes is not for clients to set
    body = PROPPATCH_BODY.replace("x:colour", "oc:fileid")
    r = drive.dav("alice", "PROPPATCH", "copied.txt", content=body)
    assert "403 Forbidden" in r.text
    assert dead_properties(drive, "alice", "copied.txt")[fileid] != first[fileid]


def test_file_ids_survive_renames_made_beside_the_drive(drive):
    space = drive.space("alice")
    drive.dav("alice", "MKCOL", "renamed")
    drive.dav("alice", "PUT", "renamed/inner.txt", content=b"inner")
    drive.dav("alice", "PUT", "loose.txt", content=b"loose")

    def ids() -> dict[str, str]:
        found = {}
        for folder in ("", "renamed", "folder renamed beside"):
            if (space / folder).is_dir():
                for href, props in drive.propfind("alice", folder, "1").items():
                    found[href.split("/files/alice/", 1)[1].rstrip("/")] = props[f"{OC}fileid"]
        return found

    before = ids()
    (space / "loose.txt").rename(space / "loose renamed beside.txt")
    (space / "renamed").rename(space / "folder renamed beside")
    after = ids()
    assert after["loose%20renamed%20beside.txt"] == before["loose.txt"]
    assert after["folder%20renamed%20beside"] == before["renamed"]
    assert after["folder%20renamed%20beside/inner.txt"] == before["renamed/inner.txt"]
    # a copy, or a second name for the same file, is another file
    shutil.copy2(space / "loose renamed beside.txt", space / "copy beside.txt")
    os.link(space / "loose renamed beside.txt", space / "hard link.txt")
    final = ids()
    assert final["copy%20beside.txt"] not in before.values()
    assert final["hard%20link.txt"] not in before.values()
    assert final["loose%20renamed%20beside.txt"] == before["loose.txt"]


def test_versions_thin_out_with_age_on_top_of_the_count_cap(drive):
    def versions(file_id: str) -> list[str]:
        url = f"{drive.base}/remote.php/dav/versions/alice/versions/{file_id}"
        r = drive.client("alice").request("PROPFIND", url, headers={"Depth": "1"})
        hrefs = [h.text.rstrip("/") for h in parse_xml(r.content).iter(f"{DAV}href")]
        return sorted(h.rsplit("/", 1)[1] for h in hrefs if not h.endswith(f"/{file_id}"))

    # three saves of one day ten days ago, one of the next day, then three of the last minute
    day = (int(time.time()) // 86400 - 10) * 86400
    old_saves = [day + 3600, day + 7200, day + 10800, day + 86400 + 3600]
    first = drive.dav("alice", "PUT", "diary.md", headers={"X-OC-Mtime": str(old_saves[0])})
    file_id = first.headers["OC-FileId"][:8].lstrip("0")
    for mtime in old_saves[1:]:
        drive.dav(
            "alice", "PUT", "diary.md", content=str(mtime), headers={"X-OC-Mtime": str(mtime)}
        )
    # one version per day at that age: the newest of the first day (the current content is
    # the next day's, not a version)
    assert versions(file_id) == [str(old_saves[2])]
    now = int(time.time())
    for i, mtime in enumerate((now - 30, now - 20, now - 10)):
        drive.dav(
            "alice", "PUT", "diary.md", content=f"new {i}", headers={"X-OC-Mtime": str(mtime)}
        )
    kept = [str(old_saves[2]), str(old_saves[3]), str(now - 30), str(now - 20)]
    assert versions(file_id) == kept


def test_a_revoked_token_is_refused_within_seconds(drive):
    password = drive.swan.passwords()["alice"]
    r = httpx.post(
        f"{drive.swan.url}/hub/api/users/alice/tokens",
        json={"auth": {"username": "alice", "password": password}, "note": "laptop"},
    )
    token, token_id = r.json()["token"], r.json()["id"]
    url = f"{drive.base}/remote.php/dav/files/alice/"
    assert httpx.request("PROPFIND", url, auth=("alice", token)).status_code == 207
    drive.client("alice")
    revoked = httpx.delete(
        f"{drive.swan.url}/hub/api/users/alice/tokens/{token_id}",
        headers={"Authorization": f"token {drive.swan.tokens['alice']}"},
    )
    assert revoked.status_code == 204, revoked.text
    started = time.monotonic()
    while httpx.request("PROPFIND", url, auth=("alice", token)).status_code != 401:
        assert time.monotonic() - started < 5 + 1, "the revoked token is still accepted"
        time.sleep(0.2)


def test_a_hub_outage_is_answered_with_503_not_as_a_wrong_password(tmp_path):
    """Sync clients take a 401 for a revoked password and stop; a 503 they retry."""
    swan = start_swan(tmp_path, users="alice")
    try:
        own_url = drive_url(swan)
        token = log_in(swan, "alice")
        swan.proc.kill()  # the hub goes; the proxy and the drive stay
        swan.proc.wait(timeout=10)
        r = httpx.request("PROPFIND", f"{own_url}/remote.php/webdav/", auth=("alice", token))
        assert r.status_code == 503 and r.headers["Retry-After"], r.text
        assert "hub did not answer" in r.text
    finally:
        swan.kill_everything()


def test_without_trusted_sites_federation_is_off_and_says_so(drive):
    found = httpx.get(f"{drive.swan.url}/.well-known/ocm", timeout=30).json()
    assert found["enabled"] is False and found["endPoint"] == f"{drive.base}/ocm"
    r = httpx.post(f"{drive.base}/ocm/shares", json={"shareWith": "bob@x"}, timeout=30)
    assert r.status_code == 501 and "trusts no other site" in r.json()["message"]
    assert drive.dav("alice", "MKCOL", "federation-off").status_code == 201
    form = {"path": "federation-off", "shareType": 6, "shareWith": "bob@other.example"}
    r = drive.ocs("alice", "POST", "shares", data=form)
    assert r.status_code == 403 and "Federated sharing is off" in r.text
    assert (
        drive.ocs("alice", "GET", "shares", params={"path": "federation-off"}).json()["ocs"]["data"]
        == []
    )
