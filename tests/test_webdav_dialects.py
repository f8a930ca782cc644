"""The WebDAV driver speaking to Nextcloud and to Reva (CERNBox; ownCloud 10 and oCIS share its
endpoints): dialect detection, server versions and the server's trash bin.

No such server runs here, so a stand-in answers from the recordings in tests/recordings/ (see
its README for which server and version each comes from) and records what it was asked.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pytest
from conftest import chunk_body, notebook_body
from tornado.web import HTTPError

from swan_contents import SwanContentsManager
from swan_contents.storage import StorageUnavailable, WebDAVStorage
from swan_contents.storage.webdav.multistatus import parse_xml
from swan_contents.versions import encode_id

RECORDINGS = Path(__file__).parent / "recordings"
SPACE = "http://cloud.test/remote.php/dav/files/alice/analysis%20notes/"


class RecordedServer:
    """Answers each request from a recording of `dialect` and keeps the requests."""

    def __init__(self, dialect: str, *, occupied: set[str] = frozenset()):
        self.dir = RECORDINGS / dialect
        self.dialect = dialect
        self.occupied = occupied
        self.requests: list[httpx.Request] = []
        #: parts of chunked uploads by upload folder, and assembled sizes by target path
        self.parts: dict[str, list[int]] = {}
        self.assembled: dict[str, int] = {}
        #: flip a byte of what the next PUT of a file brings, as a broken transfer would
        self.bend_next_put = False

    def recording(self, name: str) -> bytes:
        return (self.dir / name).read_bytes()

    def _file_listing(self, raw_path: bytes) -> bytes:
        """The recorded file listing, about the file that was asked for."""
        href = b"/remote.php/dav/files/alice/analysis%20notes/nb.ipynb"
        listing = self.recording("propfind-file.xml").replace(href, raw_path)
        size = self.assembled.get(unquote(raw_path.decode()))
        if size is not None:
            listing = listing.replace(b">1207<", f">{size}<".encode())
        return listing

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        method, path = request.method, unquote(urlsplit(str(request.url)).path)
        if method == "GET" and path == "/status.php":
            return httpx.Response(200, content=self.recording("status.json"))
        if method == "GET" and path == "/ocs/v1.php/cloud/capabilities":
            return httpx.Response(200, content=self.recording("capabilities.json"))
        if method == "PROPFIND" and path.startswith("/remote.php/dav/files/"):
            return httpx.Response(207, content=self._file_listing(request.url.raw_path))
        if method == "PROPFIND" and ("/versions/" in path or path.endswith("/v/")):
            return httpx.Response(207, content=self.recording("versions.xml"))
        if method == "PROPFIND" and ("/trashbin/" in path or "/trash-bin/" in path):
            name = "trashbin.xml" if self.dialect == "nextcloud" else "trash-bin.xml"
            return httpx.Response(207, content=self.recording(name))
        if method == "GET" and ("/versions/" in path or "/v/" in path):
            return httpx.Response(200, content=b'{"cells": [], "from": "a server version"}')
        if "/remote.php/dav/uploads/" in path:
            return self._chunked_upload(request, path)
        if method == "PUT" and path.startswith("/remote.php/dav/files/"):
            received = request.read()
            self.assembled[path] = len(received)
            if self.bend_next_put and received:
                self.bend_next_put = False
                received = bytes([received[0] ^ 0xFF]) + received[1:]
            return httpx.Response(201, headers=self._hashes(received))
        if method in ("MOVE", "COPY"):
            target = unquote(urlsplit(request.headers["Destination"]).path)
            if target in self.occupied and request.headers.get("Overwrite") == "F":
                return httpx.Response(412)
            return httpx.Response(201)
        if method == "DELETE":
            return httpx.Response(204)
        return httpx.Response(404)

    def _hashes(self, received: bytes) -> dict[str, str]:
        """Nextcloud (19 and later) answers a write with the hashes of what it received."""
        if self.dialect != "nextcloud":
            return {}
        return {
            "X-Hash-MD5": hashlib.md5(received).hexdigest(),  # noqa: S324
            "X-Hash-SHA1": hashlib.sha1(received).hexdigest(),  # noqa: S324
            "X-Hash-SHA256": hashlib.sha256(received).hexdigest(),
        }

    def _chunked_upload(self, request: httpx.Request, path: str) -> httpx.Response:
        folder, _, part = path.rstrip("/").rpartition("/")
        if request.method == "MKCOL":
            self.parts[path.rstrip("/")] = []
            return httpx.Response(201)
        if request.method == "PUT":
            self.parts[folder].append(len(request.read()))
            return httpx.Response(201)
        if request.method == "MOVE" and part == ".file":
            total = sum(self.parts[folder])
            assert int(request.headers["OC-Total-Length"]) == total
            self.assembled[unquote(urlsplit(request.headers["Destination"]).path)] = total
            return httpx.Response(201)
        return httpx.Response(405)

    def sent(self, method: str) -> list[httpx.Request]:
        return [r for r in self.requests if r.method == method]


def manager_for(server: RecordedServer, tmp_path) -> SwanContentsManager:
    storage = WebDAVStorage(
        url=SPACE, transport=httpx.MockTransport(server), password_env="SWAN_TEST_UNSET"
    )
    return SwanContentsManager(
        root_dir=str(tmp_path), versions_dir=str(tmp_path / "versions"), storage=storage
    )


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("nextcloud", {"dialect": "nextcloud", "chunking": "1.0", "version": "27.1.3"}),
        ("reva", {"dialect": "owncloud", "chunking": None, "version": "10.0.11"}),
    ],
)
async def test_the_dialect_is_read_once_from_status_and_capabilities(tmp_path, dialect, expected):
    server = RecordedServer(dialect)
    storage = manager_for(server, tmp_path).storage
    caps = await storage.capabilities()
    assert {k: getattr(caps, k) for k in expected} == expected
    await storage.capabilities()
    assert [unquote(r.url.path) for r in server.requests] == [
        "/status.php",
        "/ocs/v1.php/cloud/capabilities",
    ]
    assert server.requests[1].headers["OCS-APIRequest"] == "true"


async def test_a_plain_webdav_server_is_plain_without_asking_anything():
    def refuse(request):
        raise AssertionError(f"nothing should be asked, got {request.method} {request.url}")

    storage = WebDAVStorage(
        url="http://dav.test/users/alice/", transport=httpx.MockTransport(refuse)
    )
    assert (await storage.capabilities()).dialect == "plain"
    assert not await storage.keeps_versions()
    # the seam's optional capabilities: none of them on a plain server
    assert await storage.versions() is None and await storage.trash_bin() is None
    assert storage.local_folder() is None and not storage.versions_beside_files


async def test_nextcloud_versions_are_listed_read_and_restored_on_the_server(tmp_path):
    server = RecordedServer("nextcloud")
    cm = manager_for(server, tmp_path)
    versions = await cm.list_versions("nb.ipynb")
    assert [(v.id, v.size, v.source) for v in versions] == [
        ("server-1699999000", 1150, "server"),
        ("server-1699990000", 980, "server"),
    ]
    assert unquote(server.sent("PROPFIND")[-1].url.path) == (
        "/remote.php/dav/versions/alice/versions/12345/"
    )
    current, *checkpoints = await cm.list_checkpoints("nb.ipynb")
    assert [c["id"] for c in checkpoints] == [v.id for v in versions]
    assert current["id"] == (await cm.create_checkpoint("nb.ipynb"))["id"]

    await cm.restore_version("nb.ipynb", "server-1699990000")
    (move,) = server.sent("MOVE")
    assert unquote(move.url.path) == "/remote.php/dav/versions/alice/versions/12345/1699990000"
    assert move.headers["Destination"] == (
        "http://cloud.test/remote.php/dav/versions/alice/restore/target"
    )
    assert not server.sent("PUT"), "the server restores; no bytes pass through us"


async def test_a_checkpoint_of_a_content_since_replaced_is_the_servers_version_of_it(tmp_path):
    server = RecordedServer("nextcloud")
    cm = manager_for(server, tmp_path)
    # a checkpoint made while the file held what versions.xml lists as 1699990000 (980 bytes,
    # modified then): the file has changed since, so the server's version is restored
    made_then = encode_id("server", 'now@1699990000@980@"6553a0c1d2e3f"')
    await cm.restore_checkpoint(made_then, "nb.ipynb")
    (move,) = server.sent("MOVE")
    assert unquote(move.url.path) == "/remote.php/dav/versions/alice/versions/12345/1699990000"
    # a checkpoint of the current content restores nothing
    current = await cm.create_checkpoint("nb.ipynb")
    await cm.restore_checkpoint(current["id"], "nb.ipynb")
    assert len(server.sent("MOVE")) == 1
    # one of a content the server no longer keeps is a 404
    with pytest.raises(HTTPError) as raised:
        await cm.restore_checkpoint(encode_id("server", 'now@1600000000@9@"x"'), "nb.ipynb")
    assert raised.value.status_code == 404 and "no longer keeps" in raised.value.log_message


async def test_nextcloud_makes_its_own_versions_so_saves_keep_no_local_copy(tmp_path):
    server = RecordedServer("nextcloud")
    cm = manager_for(server, tmp_path)
    assert await cm.storage_keeps_versions()
    assert await cm.record_version("nb.ipynb", b"{}") is None
    assert not (tmp_path / "versions").exists() or not any((tmp_path / "versions").rglob("swan-*"))


async def test_nextcloud_trash_lists_this_space_and_restores_in_place(tmp_path):
    server = RecordedServer("nextcloud")
    cm = manager_for(server, tmp_path)
    await cm.delete_file("results.csv")
    (delete,) = server.sent("DELETE")
    assert unquote(delete.url.path) == "/remote.php/dav/files/alice/analysis notes/results.csv"

    trash = await cm.list_trash()
    assert trash["supported"]
    # elsewhere.txt was deleted outside this space (the user's files root): not ours to show
    assert [(i.id, i.path, i.type, i.size) for i in trash["items"]] == [
        ("old results.csv.d1700000500", "old results.csv", "file", 5120),
        ("figures.d1700000100", "figures", "directory", None),
    ]
    model = await cm.restore_from_trash("old results.csv.d1700000500")
    assert model["path"] == "old results.csv"
    (move,) = server.sent("MOVE")
    assert (
        unquote(move.url.path) == "/remote.php/dav/trashbin/alice/trash/old results.csv.d1700000500"
    )
    assert unquote(move.headers["Destination"]) == (
        "http://cloud.test/remote.php/dav/trashbin/alice/restore/old results.csv.d1700000500"
    )
    with pytest.raises(HTTPError) as raised:
        await cm.restore_from_trash("old results.csv.d1700000500", "elsewhere/x.csv")
    assert raised.value.status_code == 400


async def test_reva_versions_live_under_meta_and_are_restored_with_a_copy(tmp_path):
    server = RecordedServer("reva")
    cm = manager_for(server, tmp_path)
    (version,) = await cm.list_versions("nb.ipynb")
    assert version.source == "server" and version.size == 1150
    assert unquote(server.sent("PROPFIND")[-1].url.path) == (
        "/remote.php/dav/meta/ZW9zaG9tZS1hITE2NzQ0OTE=/v/"
    )
    # Reva's version keys have a dot; the checkpoint id must still be a Jupyter id
    assert version.id.replace("-", "").replace("_", "").isalnum()
    await cm.restore_version("nb.ipynb", version.id)
    (copy,) = server.sent("COPY")
    assert unquote(copy.url.path).endswith("/v/1699999000.00012ab3")
    assert copy.headers["Destination"] == SPACE + "nb.ipynb"


async def test_reva_trash_restores_to_the_original_place_or_another_but_never_over_a_file(
    tmp_path,
):
    occupied = {"/remote.php/dav/files/alice/analysis notes/old results.csv"}
    server = RecordedServer("reva", occupied=occupied)
    cm = manager_for(server, tmp_path)
    (item,) = (await cm.list_trash())["items"]
    assert (item.id, item.path, item.deleted) == (
        "1700000500.0002fe31",
        "old results.csv",
        1700000500.0,
    )
    with pytest.raises(HTTPError) as raised:
        await cm.restore_from_trash(item.id)
    assert raised.value.status_code == 409
    model = await cm.restore_from_trash(item.id, "old results (restored).csv")
    assert model["path"] == "old results (restored).csv"
    moves = server.sent("MOVE")
    assert [m.headers["Overwrite"] for m in moves] == ["F", "F"]
    assert moves[-1].headers["Destination"] == SPACE + "old%20results%20%28restored%29.csv"


async def test_a_large_upload_to_nextcloud_goes_in_chunked_upload_parts(tmp_path):
    server = RecordedServer("nextcloud")
    cm = manager_for(server, tmp_path)
    cm.storage.chunk_size = 5 * 1024 * 1024
    cm.storage.spool_dir = str(tmp_path / "spool")
    for chunk in [*range(1, 12), -1]:
        await cm.save(chunk_body(chunk, b"x" * (1024 * 1024)), "big.bin")
    (folder,) = server.parts
    assert folder.startswith("/remote.php/dav/uploads/alice/swan-")
    assert server.parts[folder] == [5 * 1024 * 1024, 5 * 1024 * 1024, 2 * 1024 * 1024]
    assert server.assembled == {"/remote.php/dav/files/alice/analysis notes/big.bin": 12 << 20}
    (mkcol,) = server.sent("MKCOL")
    assert unquote(mkcol.headers["Destination"]).endswith("/analysis notes/big.bin")
    assert not [r for r in server.sent("PUT") if "/files/" in r.url.path]
    assert not list(Path(cm.storage.spool_dir).glob("*.part"))


async def test_a_conditional_last_part_goes_as_one_put_with_if_match_not_in_parts(tmp_path):
    server = RecordedServer("nextcloud")
    cm = manager_for(server, tmp_path)
    cm.storage.chunk_size = 5 * 1024 * 1024
    cm.storage.spool_dir = str(tmp_path / "spool")
    etag = (await cm.get("big.bin", content=False))["etag"]
    for chunk in range(1, 7):
        await cm.save(chunk_body(chunk, b"x" * (1024 * 1024)), "big.bin")
    await cm.save({**chunk_body(-1, b"x" * 1024), "etag": etag}, "big.bin")
    # the server compares and writes in one step only in a PUT: no MKCOL, no parts, no MOVE
    assert not server.parts and not server.sent("MKCOL") and not server.sent("MOVE")
    (put,) = server.sent("PUT")
    assert put.headers["If-Match"] == etag
    assert int(put.headers["Content-Length"]) == 6 * 1024 * 1024 + 1024
    assert not list(Path(cm.storage.spool_dir).glob("*.part"))


async def test_nextcloud_answers_a_save_with_hashes_that_must_match_what_was_sent(tmp_path):
    server = RecordedServer("nextcloud")
    cm = manager_for(server, tmp_path)
    assert (await cm.save(notebook_body("intact"), "nb.ipynb"))["path"] == "nb.ipynb"
    server.bend_next_put = True
    with pytest.raises(HTTPError) as raised:
        await cm.save(notebook_body("bent on the way"), "nb.ipynb")
    assert raised.value.status_code == 502
    assert "SHA1 differs" in raised.value.log_message
    # Nextcloud verifies nothing itself and keeps what it received: the user is told to save
    # again, and the next save is compared the same way
    assert (await cm.save(notebook_body("sent again"), "nb.ipynb"))["path"] == "nb.ipynb"


async def test_a_missing_trash_entry_is_a_404(tmp_path):
    cm = manager_for(RecordedServer("reva"), tmp_path)
    for item_id in ("no-such-entry", "../escape", ""):
        with pytest.raises(HTTPError) as raised:
            await cm.restore_from_trash(item_id)
        assert raised.value.status_code == 404


def test_recordings_are_well_formed():
    for path in RECORDINGS.rglob("*.json"):
        json.loads(path.read_text())
    for path in RECORDINGS.rglob("*.xml"):
        parse_xml(path.read_bytes())


ENTITY_BOMB = (
    '<?xml version="1.0" encoding="{encoding}"?><!DOCTYPE d [<!ENTITY a "aaaa">]>'
    '<d:multistatus xmlns:d="DAV:">&a;</d:multistatus>'
)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_xml_in_utf16_or_utf32_is_refused_before_its_document_type_could_hide(encoding):
    body = ENTITY_BOMB.format(encoding=encoding.upper()).encode(encoding)
    assert b"<!DOCTYPE" not in body  # what a byte check for the declaration cannot see
    with pytest.raises(StorageUnavailable, match="UTF-16|UTF-32|NUL") as refused:
        parse_xml(body)
    assert isinstance(refused.value, ValueError)
    with pytest.raises(StorageUnavailable, match="unreadable listing"):
        WebDAVStorage(url=SPACE).parse_multistatus(body, "")


def test_xml_declaring_an_encoding_other_than_utf8_is_refused():
    body = '<?xml version="1.0" encoding="ISO-8859-1"?><d:multistatus xmlns:d="DAV:"/>'
    with pytest.raises(StorageUnavailable, match="ISO-8859-1.*only UTF-8"):
        parse_xml(body.encode("latin-1"))


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0" encoding="utf-8"?><d:multistatus xmlns:d="DAV:"/>',
        b"\xef\xbb\xbf<?xml version='1.0' encoding='UTF-8'?><d:multistatus xmlns:d='DAV:'/>",
        b'<d:multistatus xmlns:d="DAV:"><d:href>/caf\xc3\xa9</d:href></d:multistatus>',
    ],
)
def test_utf8_xml_with_or_without_a_declaration_or_mark_is_read(body):
    assert parse_xml(body).tag == "{DAV:}multistatus"


def test_xml_with_a_document_type_is_refused_before_parsing():
    bomb = b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa">]><d:multistatus xmlns:d="DAV:"/>'
    with pytest.raises(ValueError, match="document type"):
        parse_xml(bomb)
    storage = WebDAVStorage(url=SPACE)
    with pytest.raises(StorageUnavailable, match="unreadable"):
        storage.parse_multistatus(bomb, "")
