"""The drive as the clients people script with see it: pyocclient (ownCloud) and nc-py-api
(Nextcloud) run as real clients against `swan up`'s drive for files, chunked uploads, properties,
favorites, search, shares and links; single shares over raw OCS v1 and v2; and the user server's
`/swan/api/shares/<id>` on top. Each refusal surfaces as the client's own exception."""

from __future__ import annotations

import datetime
import io
import os

import httpx
import nc_py_api
import owncloud
import pytest
from harness.drive import Drive, parse_xml, running_drive
from harness.swan import log_in, start_server, user_api
from nc_py_api.files import FilePermissions, ShareType

from swan_hub.drive.search import like

pytestmark = pytest.mark.hub

OCS_SHARES = "apps/files_sharing/api/v1/shares"
#: nc-py-api's smallest chunk that still uses Nextcloud's chunking v2
NC_CHUNK = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("scripting")
    with running_drive(workdir, users="alice,bob,carol") as drive:
        for user in ("alice", "bob", "carol"):
            drive.client(user)
        yield drive


def pyoc(drive: Drive, user: str) -> owncloud.Client:
    """pyocclient logged in with the user's hub token as app password."""
    client = owncloud.Client(drive.base + "/")
    client.login(user, drive.swan.tokens[user])
    return client


def nextcloud(drive: Drive, user: str) -> nc_py_api.Nextcloud:
    """nc-py-api logged in with the user's hub token as app password."""
    return nc_py_api.Nextcloud(
        nextcloud_url=drive.base, nc_auth_user=user, nc_auth_pass=drive.swan.tokens[user]
    )


def ocs_share(drive: Drive, user: str, version: int, method: str, path: str = "", **kw):
    """A raw OCS request below ``shares`` (XML unless ``format=json`` is in ``params``)."""
    url = f"{drive.base}/ocs/v{version}.php/{OCS_SHARES}{path}"
    headers = {"OCS-APIRequest": "true", **kw.pop("headers", {})}
    return drive.client(user).request(method, url, headers=headers, **kw)


def ocs_status(r: httpx.Response) -> tuple[int, int, str]:
    """(HTTP status, OCS status code, message) of an XML OCS answer."""
    meta = parse_xml(r.content).find("meta")
    assert meta is not None, r.text
    return r.status_code, int(meta.findtext("statuscode") or 0), meta.findtext("message") or ""


# -- single shares over raw OCS ----------------------------------------------------------------


@pytest.mark.parametrize("version", [1, 2])
def test_one_share_is_read_changed_and_deleted_by_its_id_in_both_ocs_versions(drive, version):
    ok = 100 if version == 1 else 200
    drive.dav("alice", "MKCOL", f"by-id-{version}")
    created = drive.ocs(
        "alice",
        "POST",
        "shares",
        version,
        data={"path": f"by-id-{version}", "shareType": 0, "shareWith": "bob", "permissions": 1},
    )
    assert created.json()["ocs"]["meta"]["statuscode"] == ok, created.text
    share_id = created.json()["ocs"]["data"]["id"]

    got = drive.ocs("alice", "GET", f"shares/{share_id}", version)
    assert got.status_code == 200, got.text
    [share] = got.json()["ocs"]["data"]
    assert (share["id"], share["share_with"], share["permissions"]) == (share_id, "bob", 1)
    # the recipient reads it too, at the place it has in their space
    [received] = drive.ocs("bob", "GET", f"shares/{share_id}", version).json()["ocs"]["data"]
    assert received["path"] == f"/Shared/by-id-{version}"
    # and so does an XML client
    xml = ocs_share(drive, "alice", version, "GET", f"/{share_id}")
    assert ocs_status(xml)[:2] == (200, ok)
    assert parse_xml(xml.content).findtext("data/element/id") == share_id

    changed = drive.ocs("alice", "PUT", f"shares/{share_id}", version, data={"permissions": 15})
    assert changed.json()["ocs"]["data"]["permissions"] == 15, changed.text
    [again] = drive.ocs("alice", "GET", f"shares/{share_id}", version).json()["ocs"]["data"]
    assert again["permissions"] == 15

    assert drive.ocs("alice", "DELETE", f"shares/{share_id}", version).status_code == 200
    gone = drive.ocs("alice", "GET", f"shares/{share_id}", version)
    assert gone.json()["ocs"]["meta"]["statuscode"] == 404


@pytest.mark.parametrize("version", [1, 2])
def test_malformed_share_requests_get_a_clear_4xx_in_the_ocs_envelope(drive, version):
    drive.dav("alice", "PUT", f"malformed-{version}.txt", content=b"kept")
    created = drive.ocs(
        "alice",
        "POST",
        "shares",
        version,
        data={"path": f"malformed-{version}.txt", "shareType": 0, "shareWith": "bob"},
    )
    share_id = created.json()["ocs"]["data"]["id"]
    permissions = created.json()["ocs"]["data"]["permissions"]

    def refused(r: httpx.Response, code: int, words: str) -> None:
        status, statuscode, message = ocs_status(r)
        # v1 answers HTTP 200 and puts the status in the envelope; v2 uses both
        assert (status, statuscode) == ((200 if version == 1 else code), code), r.text
        assert words in message, message

    refused(ocs_share(drive, "alice", version, "GET", "/999999"), 404, "does not exist")
    refused(ocs_share(drive, "alice", version, "GET", "/seven"), 404, "does not exist")
    refused(ocs_share(drive, "alice", version, "PUT", "/seven"), 404, "does not exist")
    refused(ocs_share(drive, "alice", version, "DELETE", "/-1"), 404, "does not exist")
    for bad in ("read", "0", "99"):
        r = ocs_share(drive, "alice", version, "PUT", f"/{share_id}", data={"permissions": bad})
        refused(r, 400, "ermissions")
    latin1 = "permissions=1&note=caf\xe9".encode("latin-1")
    r = ocs_share(
        drive,
        "alice",
        version,
        "PUT",
        f"/{share_id}",
        content=latin1,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    refused(r, 400, "UTF-8")
    # a recipient cannot change the share; nothing of it changed
    refused(
        ocs_share(drive, "bob", version, "PUT", f"/{share_id}", data={"permissions": 3}),
        403,
        "owner",
    )
    [share] = drive.ocs("alice", "GET", f"shares/{share_id}", version).json()["ocs"]["data"]
    assert (share["permissions"], share["note"]) == (permissions, "")
    assert drive.dav("alice", "GET", f"malformed-{version}.txt").content == b"kept"


def test_the_user_servers_share_api_reads_and_changes_one_share_on_the_drive(drive):
    log_in(drive.swan, "carol")
    start_server(drive.swan, "carol")
    drive.dav("carol", "MKCOL", "lab-notes")
    created = user_api(
        drive.swan,
        "carol",
        "POST",
        "carol/swan/api/shares",
        json={"path": "lab-notes", "kind": "user", "share_with": "alice", "permissions": 1},
    )
    assert created.status_code == 201, created.text
    share_id = created.json()["id"]

    got = user_api(drive.swan, "carol", "GET", f"carol/swan/api/shares/{share_id}")
    assert got.status_code == 200, got.text
    assert (got.json()["share_with"], got.json()["permissions"]) == ("alice", 1)
    changed = user_api(
        drive.swan, "carol", "PATCH", f"carol/swan/api/shares/{share_id}", json={"permissions": 3}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["permissions"] == 3
    again = user_api(drive.swan, "carol", "GET", f"carol/swan/api/shares/{share_id}")
    assert again.json()["permissions"] == 3
    missing = user_api(drive.swan, "carol", "GET", "carol/swan/api/shares/987654")
    assert missing.status_code == 404, missing.text


# -- PROPFIND as Sabre writes it ---------------------------------------------------------------


def test_multistatus_answers_use_sabres_prefixes(drive):
    drive.dav("alice", "PUT", "prefixes.txt", content=b"x")
    r = drive.dav(
        "alice",
        "PROPFIND",
        "prefixes.txt",
        headers={"Depth": "0"},
        content=(
            '<d:propfind xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns" '
            'xmlns:nc="http://nextcloud.org/ns"><d:prop><d:getetag/><oc:fileid/>'
            "<nc:has-preview/></d:prop></d:propfind>"
        ),
    )
    assert r.status_code == 207
    for tag in ("<d:multistatus", "<d:response>", "<d:href>", "<oc:fileid>", "<nc:has-preview>"):
        assert tag in r.text, r.text
    assert "ns0:" not in r.text
    # a refusal names Sabre's exception, as ownCloud and Nextcloud do
    refused = drive.dav("alice", "GET", "x.txt", owner="bob")
    assert refused.status_code == 404
    assert "<d:error" in refused.text and "<s:exception>" in refused.text, refused.text


# -- pyocclient ---------------------------------------------------------------------------------


def test_pyocclient_lists_writes_reads_moves_copies_and_deletes(drive, tmp_path):
    oc = pyoc(drive, "alice")
    oc.mkdir("pyoc")
    assert oc.put_file_contents("pyoc/notes.txt", b"first notes")
    local = tmp_path / "data.csv"
    local.write_bytes(b"x,y\n1,2\n")
    assert oc.put_file("pyoc/data.csv", str(local), chunked=False)
    names = sorted(entry.get_name() for entry in oc.list("pyoc"))
    assert names == ["data.csv", "notes.txt"]
    assert oc.get_file_contents("pyoc/notes.txt") == b"first notes"
    info = oc.file_info("pyoc/notes.txt")
    assert info.get_size() == len(b"first notes") and not info.is_dir()
    assert info.get_etag()

    assert oc.move("pyoc/notes.txt", "pyoc/renamed.txt")
    assert oc.copy("pyoc/renamed.txt", "pyoc/copy.txt")
    downloaded = tmp_path / "copy.txt"
    assert oc.get_file("pyoc/copy.txt", str(downloaded))
    assert downloaded.read_bytes() == b"first notes"
    assert oc.delete("pyoc/renamed.txt")
    names = sorted(entry.get_name() for entry in oc.list("pyoc"))
    assert names == ["copy.txt", "data.csv"]

    with pytest.raises(owncloud.HTTPResponseError) as missing:
        oc.get_file_contents("pyoc/renamed.txt")
    assert missing.value.status_code == 404
    with pytest.raises(owncloud.HTTPResponseError) as elsewhere:
        oc.put_file_contents("no-such-folder/x.txt", b"x")
    assert elsewhere.value.status_code == 409


def test_pyocclient_shares_with_a_user_and_a_group_and_changes_and_revokes_them(drive):
    oc = pyoc(drive, "alice")
    oc.mkdir("pyoc-shared")
    oc.put_file_contents("pyoc-shared/plan.txt", b"plan")
    with_bob = oc.share_file_with_user(
        "pyoc-shared", "bob", perms=owncloud.Client.OCS_PERMISSION_READ
    )
    with_class = oc.share_file_with_group("pyoc-shared/plan.txt", "class-2026", perms=1)
    assert with_bob.get_id() and with_class.get_id()
    assert oc.is_shared("pyoc-shared")

    assert [s.get_id() for s in oc.get_shares("pyoc-shared")] == [with_bob.get_id()]
    inside = oc.get_shares("pyoc-shared", subfiles=True)
    assert [s.get_id() for s in inside] == [with_class.get_id()]
    one = oc.get_share(with_bob.get_id())
    assert (one.get_share_with(), one.get_permissions(), one.get_path()) == (
        "bob",
        1,
        "/pyoc-shared",
    )
    assert oc.update_share(
        with_bob.get_id(),
        perms=owncloud.Client.OCS_PERMISSION_READ | owncloud.Client.OCS_PERMISSION_UPDATE,
    )
    assert oc.get_share(with_bob.get_id()).get_permissions() & 2

    # bob accepts the share waiting for him, and his client lists it as received
    bob = pyoc(drive, "bob")
    # (pyocclient sends shared_with_me only along with a path)
    assert bob.get_shares("/", shared_with_me=True) == []
    accepted = drive.ocs("bob", "POST", f"shares/pending/{with_bob.get_id()}")
    assert accepted.status_code == 200, accepted.text
    received = bob.get_shares("/", shared_with_me=True)
    assert [s.get_id() for s in received] == [with_bob.get_id()]
    assert bob.get_file_contents("Shared/pyoc-shared/plan.txt") == b"plan"

    assert oc.delete_share(with_bob.get_id())
    assert oc.delete_share(with_class.get_id())
    with pytest.raises(owncloud.OCSResponseError) as gone:
        oc.get_share(with_bob.get_id())
    assert gone.value.status_code == 404
    with pytest.raises(owncloud.OCSResponseError):
        oc.share_file_with_user("no-such-file.txt", "bob")


def test_pyocclient_makes_a_password_link_and_reads_its_url_and_name(drive):
    oc = pyoc(drive, "alice")
    oc.mkdir("pyoc-link")
    oc.put_file_contents("pyoc-link/report.txt", b"public report")
    link = oc.share_file_with_link("pyoc-link", password="Correct-Horse-7", name="for the class")
    assert link.get_link().startswith(f"{drive.base}/s/") or "/s/" in link.get_link()
    assert link.get_token() and link.get_name() == "for the class"
    token = link.get_token()
    served = httpx.get(
        f"{drive.base}/public.php/webdav/report.txt", auth=(token, "Correct-Horse-7"), timeout=30
    )
    assert served.content == b"public report"
    assert (
        httpx.get(f"{drive.base}/public.php/webdav/report.txt", auth=(token, "x")).status_code
        == 401
    )
    assert oc.delete_share(link.get_id())


# -- nc-py-api ----------------------------------------------------------------------------------


def test_nc_py_api_lists_writes_reads_moves_copies_and_deletes(drive):
    nc = nextcloud(drive, "alice")
    nc.files.mkdir("ncpy")
    uploaded = nc.files.upload("ncpy/notes.md", b"# notes")
    assert uploaded.etag and uploaded.file_id
    nc.files.makedirs("ncpy/deep/er", exist_ok=True)
    listed = {node.name: node for node in nc.files.listdir("ncpy")}
    assert set(listed) == {"notes.md", "deep"}
    assert listed["deep"].is_dir and not listed["notes.md"].is_dir
    assert listed["notes.md"].info.size == len(b"# notes")
    assert listed["notes.md"].info.fileid and "W" in listed["notes.md"].info.permissions
    assert nc.files.download("ncpy/notes.md") == b"# notes"

    moved = nc.files.move("ncpy/notes.md", "ncpy/deep/notes.md")
    assert moved.user_path == "ncpy/deep/notes.md"
    copied = nc.files.copy("ncpy/deep/notes.md", "ncpy/copy.md")
    assert nc.files.download(copied) == b"# notes"
    by_path = nc.files.by_path("ncpy/copy.md")
    assert by_path.info.size == len(b"# notes") and by_path.etag
    nc.files.delete("ncpy/copy.md")
    assert [n.name for n in nc.files.listdir("ncpy")] == ["deep"]

    with pytest.raises(nc_py_api.NextcloudException) as missing:
        nc.files.download("ncpy/copy.md")
    assert missing.value.status_code == 404
    with pytest.raises(nc_py_api.NextcloudException) as taken:
        nc.files.mkdir("ncpy/deep")
    assert taken.value.status_code == 405


def test_nc_py_api_lists_restores_and_deletes_trash_items(drive):
    nc = nextcloud(drive, "bob")
    nc.files.makedirs("bin/inner", exist_ok=True)
    kept = nc.files.upload("bin/kept.txt", b"bring me back")
    gone = nc.files.upload("bin/gone.txt", b"delete me for good")
    nc.files.delete("bin/kept.txt")
    nc.files.delete("bin/gone.txt")
    nc.files.delete("bin/inner")
    listed = {node.info.trashbin_filename: node for node in nc.files.trashbin_list()}
    assert {"kept.txt", "gone.txt", "inner"} <= set(listed)
    item = listed["kept.txt"]
    assert item.info.trashbin_original_location == "bin/kept.txt"
    assert int(item.info.trashbin_deletion_time) > 0
    # the id it had before it was deleted, as Nextcloud keeps it
    assert item.file_id == kept.file_id and item.info.fileid == int(kept.file_id[:8])
    assert listed["gone.txt"].file_id == gone.file_id
    assert listed["inner"].is_dir

    nc.files.trashbin_restore(item)
    assert nc.files.download("bin/kept.txt") == b"bring me back"
    nc.files.trashbin_delete(listed["gone.txt"])
    left = {node.info.trashbin_filename for node in nc.files.trashbin_list()}
    assert "kept.txt" not in left and "gone.txt" not in left and "inner" in left
    with pytest.raises(nc_py_api.NextcloudException) as missing:
        nc.files.trashbin_delete(listed["gone.txt"])
    assert missing.value.status_code == 404


def test_nc_py_api_uploads_a_big_file_in_chunks_with_nextclouds_chunking_v2(drive):
    nc = nextcloud(drive, "alice")
    data = os.urandom(2 * NC_CHUNK + 12345)
    node = nc.files.upload_stream("big.bin", io.BytesIO(data), chunk_size=NC_CHUNK)
    assert node.file_id
    assert (drive.space("alice") / "big.bin").read_bytes() == data
    assert nc.files.by_path("big.bin").info.size == len(data)
    # nothing of the upload is left behind
    assert not any(name.startswith("nc-py-api-") for name in os.listdir(drive.space("alice")))


def test_nc_py_api_marks_favorites_and_lists_them_by_report(drive):
    nc = nextcloud(drive, "alice")
    nc.files.makedirs("ncfav/inner")
    nc.files.upload("ncfav/star.txt", b"*")
    nc.files.upload("ncfav/plain.txt", b"-")
    nc.files.setfav("ncfav/star.txt", True)
    nc.files.setfav("ncfav/inner", True)
    assert nc.files.by_path("ncfav/star.txt").info.favorite is True
    assert nc.files.by_path("ncfav/plain.txt").info.favorite is False

    favorites = {n.user_path for n in nc.files.list_by_criteria(["favorite"])}
    assert favorites == {"ncfav/star.txt", "ncfav/inner/"}
    nc.files.setfav("ncfav/star.txt", False)
    assert {n.user_path for n in nc.files.list_by_criteria(["favorite"])} == {"ncfav/inner/"}
    # a favorite moved keeps its mark
    nc.files.move("ncfav/inner", "ncfav/moved")
    assert {n.user_path for n in nc.files.list_by_criteria(["favorite"])} == {"ncfav/moved/"}
    # bob sees none of alice's favorites
    assert nextcloud(drive, "bob").files.list_by_criteria(["favorite"]) == []


def test_nc_py_api_finds_files_by_name_type_size_and_date(drive):
    nc = nextcloud(drive, "alice")
    nc.files.makedirs("ncfind/sub")
    nc.files.upload("ncfind/a-report.txt", b"report text")
    nc.files.upload("ncfind/sub/b-report.csv", b"1,2,3,4,5,6,7,8,9,10")
    nc.files.upload("ncfind/sub/picture.png", b"\x89PNG")

    def found(req: list, path: str = "ncfind") -> set[str]:
        return {n.user_path for n in nc.files.find(req, path=path)}

    assert found(["like", "name", "%report%"]) == {"ncfind/a-report.txt", "ncfind/sub/b-report.csv"}
    assert found(["eq", "name", "picture.png"]) == {"ncfind/sub/picture.png"}
    assert found(["like", "mime", "image/%"]) == {"ncfind/sub/picture.png"}
    assert found(["and", "gt", "size", 12, "like", "name", "%.csv"]) == {"ncfind/sub/b-report.csv"}
    assert found(["like", "name", "%report%"], path="ncfind/sub") == {"ncfind/sub/b-report.csv"}
    yesterday = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1)
    assert "ncfind/sub/picture.png" in found(["gt", "last_modified", yesterday])
    assert found(["lt", "last_modified", yesterday]) == set()
    nc.files.setfav("ncfind/a-report.txt", True)
    assert found(["eq", "favorite", 1]) == {"ncfind/a-report.txt"}
    # nothing outside the user's own files can be searched
    with pytest.raises(nc_py_api.NextcloudException):
        nc.files.find(["like", "name", "%"], path="../bob")


def test_nc_py_api_shares_with_a_user_and_a_group_and_the_recipient_accepts(drive):
    nc = nextcloud(drive, "alice")
    nc.files.makedirs("ncshare/inside")
    nc.files.upload("ncshare/inside/data.txt", b"data")
    with_bob = nc.files.sharing.create(
        "ncshare", ShareType.TYPE_USER, FilePermissions.PERMISSION_READ, "bob"
    )
    with_class = nc.files.sharing.create(
        "ncshare/inside/data.txt", ShareType.TYPE_GROUP, share_with="class-2026"
    )
    assert with_bob.share_with == "bob" and with_class.share_type == ShareType.TYPE_GROUP

    assert [s.share_id for s in nc.files.sharing.get_list(path="ncshare")] == [with_bob.share_id]
    inside = nc.files.sharing.get_list(path="ncshare", subfiles=True)
    assert [s.share_id for s in inside] == [with_class.share_id]
    assert nc.files.sharing.get_by_id(with_bob.share_id).path == "ncshare"
    inherited = nc.files.sharing.get_inherited("ncshare/inside/data.txt")
    assert [s.share_id for s in inherited] == [with_bob.share_id]
    updated = nc.files.sharing.update(
        with_bob, permissions=FilePermissions.PERMISSION_READ | FilePermissions.PERMISSION_UPDATE
    )
    assert updated.permissions & FilePermissions.PERMISSION_UPDATE

    bob = nextcloud(drive, "bob")
    pending = [s.share_id for s in bob.files.sharing.get_pending()]
    assert with_bob.share_id in pending
    bob.files.sharing.accept_share(with_bob.share_id)
    assert with_bob.share_id not in [s.share_id for s in bob.files.sharing.get_pending()]
    mine = bob.files.sharing.get_list(shared_with_me=True)
    assert with_bob.share_id in [s.share_id for s in mine]
    assert bob.files.download("Shared/ncshare/inside/data.txt") == b"data"
    as_bob = bob.files.sharing.get_by_id(with_bob.share_id)
    assert (as_bob.can_edit, as_bob.can_delete) == (False, True)
    assert nc.files.sharing.get_by_id(with_bob.share_id).can_edit is True
    # a read-and-update share lets bob change the file but not delete it
    bob.files.upload("Shared/ncshare/inside/data.txt", b"bob's data")
    with pytest.raises(nc_py_api.NextcloudException) as refused:
        bob.files.delete("Shared/ncshare/inside/data.txt")
    assert refused.value.status_code == 403
    with pytest.raises(nc_py_api.NextcloudException):
        bob.files.sharing.update(with_bob, permissions=FilePermissions.PERMISSION_READ)

    # a share bob does not want: declined, then taken back from the declined ones
    unwanted = nc.files.sharing.create("ncshare/inside", ShareType.TYPE_USER, share_with="bob")
    bob.files.sharing.decline_share(unwanted)
    assert unwanted.share_id not in [s.share_id for s in bob.files.sharing.get_pending()]
    assert [s.share_id for s in bob.files.sharing.get_deleted()] == [unwanted.share_id]
    bob.files.sharing.undelete(unwanted)
    assert bob.files.sharing.get_deleted() == []
    assert bob.files.download("Shared/inside/data.txt") == b"bob's data"
    nc.files.sharing.delete(unwanted)

    nc.files.sharing.delete(with_bob)
    nc.files.sharing.delete(with_class)
    with pytest.raises(nc_py_api.NextcloudExceptionNotFound):
        nc.files.sharing.get_by_id(with_bob.share_id)
    with pytest.raises(nc_py_api.NextcloudException):
        nc.files.sharing.create("no-such-file", ShareType.TYPE_USER, share_with="bob")


def test_nc_py_api_makes_a_link_with_password_and_expiry(drive):
    nc = nextcloud(drive, "alice")
    nc.files.upload("nclink.txt", b"linked")
    expiry = datetime.date.today() + datetime.timedelta(days=7)
    link = nc.files.sharing.create(
        "nclink.txt",
        ShareType.TYPE_LINK,
        password="Correct-Horse-7",
        expire_date=expiry,
        label="demo",
    )
    assert link.url.endswith(f"/s/{link.token}") and link.label == "demo"
    assert link.expire_date.date() == expiry
    served = httpx.get(f"{drive.base}/public.php/webdav/", auth=(link.token, "Correct-Horse-7"))
    assert served.content == b"linked"
    with pytest.raises(nc_py_api.NextcloudException):
        nc.files.sharing.create(
            "nclink.txt", ShareType.TYPE_LINK, expire_date=datetime.date(2000, 1, 1)
        )
    nc.files.sharing.delete(link)


SEARCH_BODY = (
    '<d:searchrequest xmlns:d="DAV:" xmlns:oc="http://owncloud.org/ns"><d:basicsearch>'
    "<d:select><d:prop><d:displayname/></d:prop></d:select>"
    "<d:from><d:scope><d:href>{scope}</d:href><d:depth>infinity</d:depth></d:scope></d:from>"
    "<d:where>{where}</d:where></d:basicsearch></d:searchrequest>"
)


def test_searches_and_reports_the_drive_cannot_answer_are_refused_with_a_clear_4xx(drive):
    drive.dav("alice", "PUT", "findable.txt", content=b"x")
    like = "<d:like><d:prop><d:displayname/></d:prop><d:literal>%</d:literal></d:like>"

    def search(body: str) -> httpx.Response:
        return drive.client("alice").request(
            "SEARCH", f"{drive.base}/remote.php/dav/", content=body.encode()
        )

    found = search(SEARCH_BODY.format(scope="/files/alice", where=like))
    assert found.status_code == 207 and "findable.txt" in found.text
    refusals = {
        "not xml": (400, "well-formed"),
        SEARCH_BODY.format(scope="/files/bob", where=like): (404, ""),
        SEARCH_BODY.format(scope="/files/alice/no-such-folder", where=like): (404, "not exist"),
        SEARCH_BODY.format(scope="/trashbin/alice/trash", where=like): (403, "your files"),
        SEARCH_BODY.format(scope="/files/alice", where="<d:regex/>"): (400, "not supported"),
        SEARCH_BODY.format(
            scope="/files/alice",
            where="<d:gt><d:prop><d:getlastmodified/></d:prop><d:literal>soon</d:literal></d:gt>",
        ): (400, "not a date"),
        "<d:propfind xmlns:d='DAV:'/>": (400, "searchrequest"),
    }
    for body, (status, words) in refusals.items():
        r = search(body)
        assert r.status_code == status, (body, r.text)
        assert words in r.text, r.text

    report = drive.dav("alice", "REPORT", "", content=b"<d:sync-collection xmlns:d='DAV:'/>")
    assert report.status_code == 403 and "not supported" in report.text
    no_rules = drive.dav(
        "alice", "REPORT", "", content=b"<oc:filter-files xmlns:oc='http://owncloud.org/ns'/>"
    )
    assert no_rules.status_code == 400 and "filter-rules" in no_rules.text
    # nothing of the searched space changed
    assert drive.dav("alice", "GET", "findable.txt").content == b"x"


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("%report%", "A-Report.txt", True),
        ("a_c", "abc", True),
        ("a_c", "abbc", False),
        ("%.csv", "b.csvx", False),
        ("100%", "100%", True),
        ("%", "", True),
        ("_%", "", False),
        # many wildcards against a long name: answered at once, not by exploding backtracking
        ("%a" * 50 + "%b", "a" * 255, False),
    ],
)
def test_like_in_a_search_matches_as_sql_does(pattern, text, matches):
    assert like(pattern, text) is matches
