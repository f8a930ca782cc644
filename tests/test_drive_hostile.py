"""The embedded drive against a hostile user, through `swan up` (real hub, proxy and drive on
127.0.0.1): symbolic links planted in every area, user files that try to script the hub's origin,
tricky Destination headers, locks and chunked uploads into read-only shares, link password
guessing, and secrets in logs. Must not rely on anything but HTTP and the files on disk."""

from __future__ import annotations

import html
import io
import os
import random
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from harness.dav_servers import free_port
from harness.drive import (
    OC,
    PROPFIND_BODY,
    Drive,
    ocs_share,
    parse_xml,
    running_drive,
    send_password_form,
)

pytestmark = pytest.mark.hub

DAV = "{DAV:}"
#: what must never come back: /etc/passwd's first line, and bob's private file
PASSWD = Path("/etc/passwd").read_bytes().split(b"\n", 1)[0]
BOB_ONLY = b"bob's diary, bob only"
#: the names of the links `plant_links` makes
LINK_NAMES = ("passwd", "etc", "to-bob", "relative", "hop")


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("drive-hostile")
    settings = (
        "c.DriveService.auto_accept_shares = True\n"
        f"c.DriveService.access_log = {str(workdir / 'drive-access.log')!r}\n"
    )
    with running_drive(workdir, users="alice,bob,carol", settings=settings) as drive:
        drive.dav("bob", "PUT", "diary.txt", content=BOB_ONLY)
        yield drive


def plant_links(folder: Path, bob_space: Path) -> None:
    """Links out of ``folder``: to /etc/passwd, to /etc, to bob's space, a relative one to
    bob's diary that climbs out, and a link to that link."""
    folder.mkdir(parents=True, exist_ok=True)
    os.symlink("/etc/passwd", folder / "passwd")
    os.symlink("/etc", folder / "etc")
    os.symlink(bob_space, folder / "to-bob")
    os.symlink(os.path.relpath(bob_space / "diary.txt", folder), folder / "relative")
    os.symlink("relative", folder / "hop")
    (folder / "plain.txt").write_bytes(b"a plain file")


def leaks(content: bytes) -> bool:
    return PASSWD in content or BOB_ONLY in content


def assert_nothing_outside(r: httpx.Response, what: str) -> None:
    assert not leaks(r.content), (what, r.status_code)
    if r.status_code == 207:
        hrefs = [h.text or "" for h in parse_xml(r.content).iter(f"{DAV}href")]
        linked = [h for h in hrefs if h.rstrip("/").rsplit("/", 1)[-1] in LINK_NAMES]
        assert not linked, (what, linked)


def probe(client: httpx.Client, base: str, what: str) -> None:
    """Every read of ``base`` (a folder URL holding planted links) and of the links below it."""
    for depth in ("1", "infinity"):
        r = client.request("PROPFIND", base, headers={"Depth": depth}, content=PROPFIND_BODY)
        assert r.status_code in (207, 403), (what, depth, r.status_code)
        assert_nothing_outside(r, f"{what} PROPFIND {depth}")
    for name in ("passwd", "etc/passwd", "to-bob/diary.txt", "relative", "hop", "to-bob"):
        for method in ("GET", "PROPFIND"):
            depth = {"Depth": "1"} if method == "PROPFIND" else {}
            r = client.request(method, f"{base}/{name}", headers=depth)
            assert r.status_code in (403, 404), (what, method, name, r.status_code)
            assert_nothing_outside(r, f"{what} {method} {name}")


def drive_page(drive: Drive, user: str) -> httpx.Client:
    """A client signed in to the drive's web page as ``user`` (through the hub's login form)."""
    browser = httpx.Client(follow_redirects=True, timeout=60)
    form = browser.get(f"{drive.base}/")
    credentials = {"username": user, "password": drive.swan.passwords()[user]}
    signed_in = browser.post(str(form.url), data=credentials | {"_xsrf": browser.cookies["_xsrf"]})
    assert str(signed_in.url).startswith(f"{drive.base}/"), signed_in.text
    return browser


def test_links_planted_in_every_area_lead_nowhere_outside_it(drive):
    alice, bob = drive.space("alice"), drive.space("bob")
    client = drive.client("alice")
    files = f"{drive.base}/remote.php/dav/files/alice"

    # a space, and what COPY and MOVE make of its links
    plant_links(alice / "trap", bob)
    probe(client, f"{files}/trap", "space")
    probe(client, f"{drive.base}/remote.php/webdav/trap", "legacy webdav")
    for name in LINK_NAMES:
        for method in ("COPY", "MOVE"):
            dest = f"{files}/out-{name}"
            r = client.request(method, f"{files}/trap/{name}", headers={"Destination": dest})
            assert r.status_code in (403, 404), (method, name, r.status_code)
            assert not (alice / f"out-{name}").exists()
    assert drive.dav("alice", "COPY", "trap", headers={"Destination": f"{files}/copied"}).is_success
    assert sorted(p.name for p in (alice / "copied").iterdir()) == ["plain.txt"]

    # a share's folder, as its recipient reaches it
    plant_links(alice / "for-carol", bob)
    ocs_share(drive, "alice", path="for-carol", shareType="0", shareWith="carol", permissions="31")
    shared = f"{drive.base}/remote.php/dav/files/carol/Shared/for-carol"
    probe(drive.client("carol"), shared, "share")

    # the web page's folders
    for user, folder in (("alice", "trap"), ("carol", "Shared/for-carol")):
        page = drive_page(drive, user)
        listed = page.get(f"{drive.base}/", params={"dir": folder})
        assert listed.status_code == 200 and "plain.txt" in listed.text
        shown = [n for n in LINK_NAMES if f">{n}<" in listed.text or f">{n}/<" in listed.text]
        assert shown == [], (user, shown)
        for inner in ("etc", "to-bob"):
            r = page.get(f"{drive.base}/", params={"dir": f"{folder}/{inner}"})
            assert r.status_code == 404 and not leaks(r.content), (user, inner)
            assert "diary.txt" not in r.text and "passwd" not in r.text
        page.close()

    # a public link's folder: WebDAV, its page and its zip
    link = ocs_share(drive, "alice", path="trap", shareType="3")["token"]
    with httpx.Client(auth=(link, ""), timeout=60) as public:
        probe(public, f"{drive.base}/public.php/webdav", "public link")
    zipped = httpx.get(f"{drive.base}/s/{link}/download", timeout=60)
    assert zipped.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(zipped.content))
    assert sorted(archive.namelist()) == ["trap/", "trap/plain.txt"]
    assert not leaks(zipped.content)

    # the trash: a deleted folder takes its links along
    plant_links(alice / "doomed", bob)
    assert drive.dav("alice", "DELETE", "doomed").status_code == 204
    trash = f"{drive.base}/remote.php/dav/trashbin/alice/trash"
    r = client.request("PROPFIND", trash, headers={"Depth": "1"})
    assert r.status_code == 207, r.text
    (item,) = [
        h.text.rstrip("/").rsplit("/", 1)[-1]
        for h in parse_xml(r.content).iter(f"{DAV}href")
        if "doomed" in (h.text or "")
    ]
    probe(client, f"{trash}/{item}", "trash")

    # versions: a version replaced by a link (as a race of a rename would leave one)
    first = drive.dav("alice", "PUT", "kept.txt", content=b"first")
    drive.dav("alice", "PUT", "kept.txt", content=b"second")
    file_id = first.headers["OC-FileId"][:8].lstrip("0")
    versions = f"{drive.base}/remote.php/dav/versions/alice/versions/{file_id}"
    r = client.request("PROPFIND", versions, headers={"Depth": "1"})
    (name,) = [
        n
        for h in parse_xml(r.content).iter(f"{DAV}href")
        if (n := h.text.rstrip("/").rsplit("/", 1)[-1]) != file_id
    ]
    for blob in (drive.swan.data / "drive" / "versions" / "alice").iterdir():
        blob.unlink()
        os.symlink("/etc/passwd", blob)
    probe(client, versions, "versions")
    assert client.get(f"{versions}/{name}").status_code == 404
    restore = f"{drive.base}/remote.php/dav/versions/alice/restore/target"
    r = client.request("COPY", f"{versions}/{name}", headers={"Destination": restore})
    assert r.status_code == 404, r.text
    assert (alice / "kept.txt").read_bytes() == b"second"

    # uploads: a part and a whole upload folder replaced by links
    upload = f"{drive.base}/remote.php/dav/uploads/alice/hostile-1"
    assert client.request("MKCOL", upload).status_code == 201
    assert client.put(f"{upload}/00001", content=b"part one").status_code == 201
    area = drive.swan.data / "drive" / "uploads" / "alice"
    os.symlink("/etc/passwd", area / "hostile-1" / "00002")
    os.symlink("/etc", area / "hostile-2")
    probe(client, upload, "uploads")
    assert_nothing_outside(client.get(f"{upload}/00002"), "upload part")
    r = client.request("PROPFIND", f"{drive.base}/remote.php/dav/uploads/alice/hostile-2")
    assert r.status_code == 404
    dest = f"{files}/assembled.txt"
    r = client.request("MOVE", f"{upload}/.file", headers={"Destination": dest})
    assert r.status_code == 404, r.text
    assert not (alice / "assembled.txt").exists()

    # a restore from the trash never writes through a link that took its folder's place
    (alice / "parent").mkdir()
    drive.dav("alice", "PUT", "parent/child.txt", content=b"child")
    assert drive.dav("alice", "DELETE", "parent/child.txt").status_code == 204
    (alice / "parent").rmdir()
    os.symlink(bob, alice / "parent")
    r = client.request("PROPFIND", trash, headers={"Depth": "1"})
    (item,) = [
        h.text.rstrip("/").rsplit("/", 1)[-1]
        for h in parse_xml(r.content).iter(f"{DAV}href")
        if "child.txt" in (h.text or "")
    ]
    back = f"{drive.base}/remote.php/dav/trashbin/alice/restore/child.txt"
    r = client.request("MOVE", f"{trash}/{item}", headers={"Destination": back})
    assert r.status_code == 404, r.text
    assert not (bob / "child.txt").exists()

    assert sorted(p.name for p in bob.iterdir()) == ["diary.txt"]
    assert (bob / "diary.txt").read_bytes() == BOB_ONLY


ACTIVE = {
    "page.html": b"<script>document.title = 'ran'</script>",
    "drawing.svg": b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
    "feed.xml": b"<?xml version='1.0'?><x/>",
    "code.js": b"alert(1)",
}


def assert_confined(r: httpx.Response, name: str) -> None:
    assert r.status_code == 200, (name, r.status_code)
    assert "sandbox" in r.headers["Content-Security-Policy"], name
    assert r.headers["X-Content-Type-Options"] == "nosniff", name
    if name in ACTIVE or name.endswith(".zip"):
        assert r.headers["Content-Disposition"].startswith("attachment"), name


def test_user_files_are_served_sandboxed_and_active_ones_as_downloads(drive):
    client = drive.client("alice")
    drive.dav("alice", "MKCOL", "web")
    for name, data in {**ACTIVE, "notes.txt": b"plain"}.items():
        drive.dav("alice", "PUT", f"web/{name}", content=data)
        drive.dav("alice", "PUT", f"web/{name}", content=data + b" ")  # one version
    shown = drive.dav("alice", "GET", "web/notes.txt")
    assert_confined(shown, "notes.txt")
    assert "Content-Disposition" not in shown.headers
    link = ocs_share(drive, "alice", path="web", shareType="3")["token"]
    file_link = ocs_share(drive, "alice", path="web/page.html", shareType="3")["token"]
    for name in ACTIVE:
        assert_confined(drive.dav("alice", "GET", f"web/{name}"), name)
        legacy = client.get(f"{drive.base}/remote.php/webdav/web/{name}")
        assert_confined(legacy, name)
        public = httpx.get(f"{drive.base}/public.php/webdav/{name}", auth=(link, ""))
        assert_confined(public, name)
        props = drive.propfind("alice", f"web/{name}", depth="0")
        file_id = next(iter(props.values()))["{http://owncloud.org/ns}fileid"]
        versions = f"{drive.base}/remote.php/dav/versions/alice/versions/{file_id}"
        listed = client.request("PROPFIND", versions, headers={"Depth": "1"})
        hrefs = [h.text for h in parse_xml(listed.content).iter(f"{DAV}href")]
        version = hrefs[-1].rstrip("/").rsplit("/", 1)[-1]
        assert_confined(client.get(f"{versions}/{version}"), name)
    assert_confined(httpx.get(f"{drive.base}/s/{file_link}/download"), "page.html")
    assert_confined(httpx.get(f"{drive.base}/s/{link}/download"), "web.zip")
    assert drive.dav("alice", "DELETE", "web/page.html").status_code == 204
    trash = f"{drive.base}/remote.php/dav/trashbin/alice/trash"
    listed = client.request("PROPFIND", trash, headers={"Depth": "1"})
    (item,) = [
        h.text for h in parse_xml(listed.content).iter(f"{DAV}href") if "page.html" in h.text
    ]
    assert_confined(client.get(f"{drive.swan.url}{item}"), "page.html")


#: a folder and a file name that would be markup if a page showed them unescaped
MARKUP_FOLDER = "<b onclick=alert(3)>class"
MARKUP_FILE = "x' onmouseover='alert(1)'><img src=x onerror=alert(2)>.ipynb"


def assert_shown_as_text(page: httpx.Response) -> None:
    assert page.status_code == 200, page.status_code
    for name in (MARKUP_FOLDER, MARKUP_FILE):
        assert name not in page.text and name in html.unescape(page.text), name


def test_names_that_look_like_markup_are_shown_as_text_on_the_drive_and_public_link_pages(drive):
    assert drive.dav("alice", "MKCOL", MARKUP_FOLDER).status_code == 201
    put = drive.dav("alice", "PUT", f"{MARKUP_FOLDER}/{MARKUP_FILE}", content=b"{}")
    assert put.status_code == 201
    link = ocs_share(drive, "alice", path=MARKUP_FOLDER, shareType="3")["token"]
    assert_shown_as_text(httpx.get(f"{drive.base}/s/{link}"))
    # the file's preview page, on the public link and on the drive
    preview = httpx.get(f"{drive.base}/s/{link}", params={"path": MARKUP_FILE})
    assert MARKUP_FILE not in preview.text and MARKUP_FILE in html.unescape(preview.text)
    browser = drive_page(drive, "alice")
    try:
        assert_shown_as_text(browser.get(f"{drive.base}/", params={"dir": MARKUP_FOLDER}))
        path = f"{MARKUP_FOLDER}/{MARKUP_FILE}"
        preview = browser.get(f"{drive.base}/preview", params={"path": path})
        assert_shown_as_text(preview)
    finally:
        browser.close()


def move_to(drive: Drive, source: str, raw_destination: str) -> httpx.Response:
    url = f"{drive.base}/remote.php/webdav/{quote(source)}"
    return drive.client("alice").request("MOVE", url, headers={"Destination": raw_destination})


def test_a_destination_hiding_dotdot_behind_an_encoded_question_mark_goes_where_it_says(drive):
    alice = drive.space("alice")
    (alice / "dest").mkdir(parents=True)
    webdav = "/services/drive/remote.php/webdav"
    # where each Destination leads once decoded and normalised: nowhere else may be written
    cases = {
        f"{webdav}/dest/a%3F/../one.txt": "dest/one.txt",
        f"{drive.swan.url}{webdav}/dest/a%3F/../two.txt": "dest/two.txt",
        f"{webdav}/dest/a%3F%2F..%2Fthree.txt": "dest/three.txt",
        f"{webdav}/dest/a%3F/%2E%2E/four.txt": "dest/four.txt",
        f"{webdav}/dest/a%253F/../five.txt": "dest/five.txt",
        f"{webdav}/dest/a%3F/../../dest/six.txt": "dest/six.txt",
        # and names with `?` or `;` land under those names
        f"{webdav}/dest/what%3F.txt": "dest/what?.txt",
        f"{webdav}/dest/semi%3Bcolon.txt": "dest/semi;colon.txt",
    }
    for raw, lands in cases.items():
        drive.dav("alice", "PUT", "moving.txt", content=raw.encode())
        r = move_to(drive, "moving.txt", raw)
        assert r.status_code == 201, (raw, r.status_code, r.text)
        assert (alice / lands).read_bytes() == raw.encode(), raw
        assert sorted(p.name for p in (alice / "dest").iterdir() if p.name == "a") == []
    assert not (alice / "a").exists()

    # one that leaves the user's files for bob's is refused, and nothing moves
    drive.dav("alice", "PUT", "stays.txt", content=b"stays")
    for raw in (
        f"{webdav}/x%3F/../../dav/files/bob/stolen.txt",
        f"{webdav}/x%3F/..%2F..%2Fdav%2Ffiles%2Fbob%2Fstolen.txt",
    ):
        r = move_to(drive, "stays.txt", raw)
        assert 400 <= r.status_code < 600 and r.status_code != 500, (raw, r.status_code)
        assert (alice / "stays.txt").read_bytes() == b"stays"
        assert not (alice / "x").exists()
    assert not (drive.space("bob") / "stolen.txt").exists()

    # a folder with `?` in its name cannot be moved or copied into itself
    assert drive.dav("alice", "MKCOL", "q?").status_code == 201
    for method in ("MOVE", "COPY"):
        url = f"{drive.base}/remote.php/webdav/q%3F"
        r = drive.client("alice").request(
            method, url, headers={"Destination": f"{webdav}/q%3F/inner"}
        )
        assert r.status_code == 400, (method, r.status_code, r.text)
    assert sorted(os.listdir(alice / "q?")) == []


def test_a_read_only_recipient_can_neither_lock_nor_upload_into_the_share(drive):
    alice = drive.space("alice")
    (alice / "handout").mkdir(parents=True)
    drive.dav("alice", "PUT", "handout/sheet.txt", content=b"read me")
    ocs_share(drive, "alice", path="handout", shareType="0", shareWith="bob", permissions="1")
    lock_body = (
        '<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/>'
        "</d:lockscope><d:locktype><d:write/></d:locktype></d:lockinfo>"
    )
    r = drive.dav("bob", "LOCK", "Shared/handout/sheet.txt", content=lock_body)
    assert r.status_code == 403 and "lock" in r.text, r.text
    r = drive.dav("bob", "UNLOCK", "Shared/handout/sheet.txt", headers={"Lock-Token": "<x:y>"})
    assert r.status_code == 403, r.text
    # alice, who may write, still can lock her file
    locked = drive.dav("alice", "LOCK", "handout/sheet.txt", content=lock_body)
    assert locked.status_code == 200, locked.text
    token = locked.headers["Lock-Token"]
    unlocked = drive.dav("alice", "UNLOCK", "handout/sheet.txt", headers={"Lock-Token": token})
    assert unlocked.status_code == 204

    bob = drive.client("bob")
    uploads = f"{drive.base}/remote.php/dav/uploads/bob"
    target = {"Destination": f"{drive.base}/remote.php/dav/files/bob/Shared/handout/new.bin"}
    r = bob.request("MKCOL", f"{uploads}/into-handout", headers=target)
    assert r.status_code == 403, r.text
    assert bob.request("MKCOL", f"{uploads}/no-destination-said").status_code == 201
    r = bob.put(f"{uploads}/no-destination-said/00001", content=b"x" * 100, headers=target)
    assert r.status_code == 403, r.text
    r = bob.request("MOVE", f"{uploads}/no-destination-said/.file", headers=target)
    assert r.status_code in (403, 404), r.text
    assert sorted(os.listdir(alice / "handout")) == ["sheet.txt"]
    assert (alice / "handout" / "sheet.txt").read_bytes() == b"read me"


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path below ``folder`` with a file's bytes (None for a folder or a link)."""
    found: dict[str, bytes | None] = {}
    for root, folders, files in os.walk(folder):
        for name in folders + files:
            path = Path(root, name)
            is_file = path.is_file() and not path.is_symlink()
            found[str(path.relative_to(folder))] = path.read_bytes() if is_file else None
    return found


def test_writes_never_land_where_a_link_swapped_in_for_a_folder_points(drive):
    # carol's own code (a terminal, a kernel) swaps her folder for a link to bob's space and
    # back, again and again, while she writes into it through the drive: the drive checks the
    # path and then writes, and nothing it writes may go through the link, whatever moment
    # the swap hits (uploads, overwrites, folders, copies, moves, version and trash restores)
    carol, dav = drive.client("carol"), f"{drive.base}/remote.php/dav"
    files = f"{dav}/files/carol"
    rounds = 40
    assert carol.request("MKCOL", f"{files}/work").status_code == 201
    assert carol.put(f"{files}/source.txt", content=b"copied in").status_code == 201
    for i in range(rounds):
        assert carol.put(f"{files}/move-{i}.txt", content=b"moved in").status_code == 201
    # versions and trash items whose restores write into the folder
    assert carol.put(f"{files}/work/kept.txt", content=b"first").status_code == 201
    assert carol.put(f"{files}/work/kept.txt", content=b"second").status_code == 204
    listing = drive.propfind("carol", "work/kept.txt", "0")
    file_id = next(iter(listing.values()))[f"{OC}fileid"]
    for i in range(rounds):
        assert carol.put(f"{files}/work/bin-{i}.txt", content=b"restored").status_code == 201
        assert carol.delete(f"{files}/work/bin-{i}.txt").status_code == 204
    trash = carol.request("PROPFIND", f"{dav}/trashbin/carol/trash", headers={"Depth": "1"})
    trashed = sorted(
        href.rsplit("/", 1)[-1]
        for href in (e.text or "" for e in parse_xml(trash.content).iter(f"{DAV}href"))
        if "bin-" in href
    )
    assert len(trashed) == rounds

    bob_space = drive.space("bob")
    before = snapshot(bob_space)
    work = drive.space("carol") / "work"
    aside = drive.space("carol") / "work.aside"
    stop = threading.Event()
    swaps = []

    def put_in_place(make) -> None:
        """``make`` the folder's name, keeping apart in carol's space what a restore made
        there meanwhile (restores make missing parents)."""
        while True:
            try:
                return make()
            except OSError:
                os.rename(work, work.with_name(f"work.remade-{time.monotonic_ns()}"))

    def swap_again_and_again() -> None:
        while not stop.is_set():
            os.rename(work, aside)
            put_in_place(lambda: os.symlink(bob_space, work))
            # a few milliseconds each way: about as long as the drive takes from its check
            # of a path to its write there
            time.sleep(random.uniform(0, 0.004))  # noqa: S311 - timing, not secrets
            os.unlink(work)
            put_in_place(lambda: os.rename(aside, work))
            swaps.append(1)
            time.sleep(random.uniform(0, 0.004))  # noqa: S311 - timing, not secrets

    swapper = threading.Thread(target=swap_again_and_again)
    swapper.start()
    answers = []
    try:
        for i in range(rounds):
            to = {"Destination": f"{files}/work/moved-{i}.txt"}
            answers += [
                carol.put(f"{files}/work/new-{i}.txt", content=b"carol's upload"),
                carol.put(f"{files}/work/kept.txt", content=b"carol's overwrite"),
                carol.request("MKCOL", f"{files}/work/folder-{i}"),
                carol.request(
                    "COPY",
                    f"{files}/source.txt",
                    headers={"Destination": f"{files}/work/copy-{i}.txt"},
                ),
                carol.request("MOVE", f"{files}/move-{i}.txt", headers=to),
                carol.request(
                    "MOVE",
                    f"{dav}/trashbin/carol/trash/{quote(trashed[i])}",
                    headers={"Destination": f"{dav}/trashbin/carol/restore/{trashed[i]}"},
                ),
            ]
            versions = carol.request(
                "PROPFIND", f"{dav}/versions/carol/versions/{file_id}", headers={"Depth": "1"}
            )
            names = [
                href.rstrip("/").rsplit("/", 1)[-1]
                for href in (e.text or "" for e in parse_xml(versions.content).iter(f"{DAV}href"))
            ]
            if names[1:]:
                answers.append(
                    carol.request(
                        "COPY",
                        f"{dav}/versions/carol/versions/{file_id}/{names[-1]}",
                        headers={"Destination": f"{dav}/versions/carol/restore/target"},
                    )
                )
    finally:
        stop.set()
        swapper.join()
    assert len(swaps) > rounds
    assert not [r for r in answers if r.status_code >= 500], [r.text for r in answers]
    assert snapshot(bob_space) == before
    left = [p for p, _ in snapshot(drive.space("carol")).items() if ".~swan" in p]
    assert not left


LOCK_BODY = (
    '<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/>'
    "</d:lockscope><d:locktype><d:write/></d:locktype>"
    "<d:owner><d:href>office</d:href></d:owner></d:lockinfo>"
)


def _lock(client: httpx.Client, url: str) -> str:
    r = client.request("LOCK", url, content=LOCK_BODY, headers={"Timeout": "Second-600"})
    assert r.status_code in (200, 201), r.text
    return r.headers["Lock-Token"]


def test_a_lock_holds_whichever_url_names_the_file(drive):
    # WebDAV locks guard a file against lost updates: a lock taken through one of the URLs
    # that reach a file must hold for all of them (the legacy path, a recipient's Shared/
    # path, a public link, chunking v1), and its token must work through each of them
    alice, bob = drive.client("alice"), drive.client("bob")
    files = f"{drive.base}/remote.php/dav/files"
    legacy = f"{drive.base}/remote.php/webdav"
    assert alice.request("MKCOL", f"{files}/alice/office").status_code == 201
    assert alice.put(f"{files}/alice/office/report.docx", content=b"v1").status_code == 201
    ocs_share(drive, "alice", path="office", shareType="0", shareWith="bob", permissions="15")
    link = ocs_share(drive, "alice", path="office", shareType="3", publicUpload="true")
    public = f"{drive.base}/public.php/webdav"
    report = drive.space("alice") / "office" / "report.docx"

    assert alice.put(f"{legacy}/office/other.txt", content=b"o").status_code == 201
    token = _lock(alice, f"{files}/alice/office/report.docx")
    refused = {
        "legacy path": alice.put(f"{legacy}/office/report.docx", content=b"lost"),
        "recipient": bob.put(f"{files}/bob/Shared/office/report.docx", content=b"lost"),
        "public link": httpx.put(
            f"{public}/report.docx", content=b"lost", auth=(link["token"], "")
        ),
        "chunking v1": alice.put(
            f"{legacy}/office/report.docx-chunking-77-1-0",
            content=b"lost",
            headers={"OC-Chunked": "1"},
        ),
        "delete": alice.delete(f"{legacy}/office/report.docx"),
        "move over it": alice.request(
            "MOVE",
            f"{legacy}/office/other.txt",
            headers={"Destination": f"{legacy}/office/report.docx"},
        ),
    }
    assert {what: r.status_code for what, r in refused.items()} == dict.fromkeys(refused, 423)
    assert report.read_bytes() == b"v1"
    # the lock is shown wherever the file is seen from
    found = alice.request(
        "PROPFIND",
        f"{legacy}/office/report.docx",
        headers={"Depth": "0"},
        content=b'<d:propfind xmlns:d="DAV:"><d:prop><d:lockdiscovery/></d:prop></d:propfind>',
    )
    assert found.status_code == 207 and token.strip("<>") in found.text, found.text
    # the holder writes through another URL with the token
    with_token = {"If": f"({token})"}
    r = alice.put(f"{legacy}/office/report.docx", content=b"v2", headers=with_token)
    assert r.status_code == 204, r.text
    assert report.read_bytes() == b"v2"
    r = alice.request("UNLOCK", f"{legacy}/office/report.docx", headers={"Lock-Token": token})
    assert r.status_code == 204, r.text
    assert bob.put(f"{files}/bob/Shared/office/report.docx", content=b"v3").status_code == 204

    # and the other way round: the recipient's lock holds against the owner
    token = _lock(bob, f"{files}/bob/Shared/office/report.docx")
    assert alice.put(f"{files}/alice/office/report.docx", content=b"lost").status_code == 423
    assert report.read_bytes() == b"v3"
    r = bob.request(
        "UNLOCK", f"{files}/bob/Shared/office/report.docx", headers={"Lock-Token": token}
    )
    assert r.status_code == 204, r.text
    assert alice.put(f"{files}/alice/office/report.docx", content=b"v4").status_code == 204


def test_nc_py_api_is_refused_at_the_first_request_of_a_chunked_upload_into_a_read_only_share(
    drive,
):
    """nc-py-api names the Destination on the upload folder's MKCOL (chunking v2)."""
    import nc_py_api

    alice = drive.space("alice")
    (alice / "syllabus").mkdir(parents=True)
    ocs_share(drive, "alice", path="syllabus", shareType="0", shareWith="bob", permissions="1")
    nc = nc_py_api.Nextcloud(
        nextcloud_url=drive.base, nc_auth_user="bob", nc_auth_pass=drive.swan.tokens["bob"]
    )
    chunk = 5 * 1024 * 1024  # the smallest chunk nc-py-api sends with chunking v2
    with pytest.raises(nc_py_api.NextcloudException) as refused:
        nc.files.upload_stream(
            "Shared/syllabus/big.bin", io.BytesIO(os.urandom(chunk + 10)), chunk_size=chunk
        )
    assert refused.value.status_code == 403
    # refused at the MKCOL: not one part was taken in
    log = (drive.swan.data.parent / "drive-access.log").read_text().splitlines()
    upload_requests = [line for line in log if "/uploads/bob/nc-py-api-" in line]
    assert [line.split(" ")[0] for line in upload_requests][:1] == ["MKCOL"], upload_requests
    assert not [line for line in upload_requests if line.startswith("PUT")], upload_requests
    uploads = drive.swan.data / "drive" / "uploads" / "bob"
    assert not [p for p in uploads.rglob("*") if p.is_file()]
    assert os.listdir(alice / "syllabus") == []


def from_address(address: str) -> httpx.Client:
    """A client whose connections come from ``address`` (any of 127.0.0.0/8 is loopback)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=60)


def test_link_passwords_are_refused_for_a_while_after_a_few_wrong_guesses(drive):
    drive.dav("alice", "PUT", "locked.txt", content=b"behind a password")
    token = ocs_share(drive, "alice", path="locked.txt", shareType="3", password="right one")[
        "token"
    ]
    webdav = f"{drive.base}/public.php/webdav"
    with from_address("127.0.0.2") as guesser, from_address("127.0.0.3") as friend:
        for _ in range(5):
            assert guesser.get(webdav, auth=(token, "guess")).status_code == 401
        throttled = guesser.get(webdav, auth=(token, "right one"))
        assert throttled.status_code == 429, throttled.text
        assert 1 <= int(throttled.headers["Retry-After"]) <= 60
        # another client is not held back, and its success frees no one
        assert friend.get(webdav, auth=(token, "right one")).status_code == 200
        assert guesser.get(webdav, auth=(token, "right one")).status_code == 429
        # the page's form counts the same way
        page = f"{drive.base}/s/{token}"
        assert send_password_form(guesser, page, "right one").status_code == 429
    with from_address("127.0.0.4") as typer:
        for _ in range(5):
            assert send_password_form(typer, page, "guess").status_code == 401
        r = send_password_form(typer, page, "right one")
        assert r.status_code == 429 and r.headers["Retry-After"]


def test_the_failure_counts_of_link_passwords_stay_bounded():
    from swan_hub.drive.auth import FailureLimit

    limit = FailureLimit(2, window=60, max_keys=100)
    for i in range(10_000):
        limit.failed(("link", f"10.0.{i // 256}.{i % 256}"))
    assert len(limit) == 100
    limit.failed("last")
    limit.failed("last")
    assert limit.wait("last") > 0 and limit.wait("other") == 0


def test_secrets_in_urls_stay_out_of_the_drive_and_links_logs(drive, tmp_path):
    secret = "s3cretT0kenValue0123456789"
    client = drive.client("alice")
    client.get(f"{drive.base}/remote.php/webdav/token={secret}/x")
    client.get(f"{drive.base}/remote.php/webdav/", params={"token": secret})
    httpx.get(f"{drive.base}/s/{'a' * 32}", params={"password": secret})
    log = (drive.swan.data.parent / "drive-access.log").read_text()
    assert "[redacted]" in log and secret not in log
    assert secret not in drive.swan.output()

    port = free_port()
    env = {
        **os.environ,
        "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}",
        "JUPYTERHUB_SERVICE_PREFIX": "/services/swan-links/",
    }
    out = tmp_path / "links.log"
    with open(out, "wb") as sink:
        service = subprocess.Popen(
            [sys.executable, "-m", "swan_hub.links"], env=env, stdout=sink, stderr=sink
        )
    try:
        base = f"http://127.0.0.1:{port}/services/swan-links"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, out.read_text()
                time.sleep(0.2)
        httpx.get(f"{base}/nothing-here", params={"token": secret})
        httpx.get(f"{base}/api/links", params={"token": secret, "bad": "1"})
        httpx.get(f"{base}/nothing", headers={"Authorization": f"token {secret}"})
    finally:
        service.terminate()
        service.wait(timeout=30)
    logged = out.read_text()
    assert "404" in logged and "token=[redacted]" in logged
    assert secret not in logged
