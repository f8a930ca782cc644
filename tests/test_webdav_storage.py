"""SwanContentsManager on real WebDAV servers (WsgiDAV and Apache mod_dav): what each operation
costs at the server, names that need encoding, credentials, and a server that goes away.

Requests are counted by the servers themselves (a WSGI middleware, Apache's access log).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from urllib.parse import unquote, urlsplit

import pytest
from conftest import chunk_body, notebook_body, text_body
from harness.dav_servers import WsgiDavServer, shared_root

from swan_contents import SwanContentsManager
from swan_contents.storage import WebDAVStorage


@pytest.fixture
def manager() -> str:
    return "swan"


@pytest.fixture(params=["wsgidav", "apache", "drive"])
def backend(request) -> str:
    return request.param


@pytest.fixture
def served(dav_server, dav_space):
    """`served()`: the (method, path) requests the server got for this test's space so far."""
    prefix = unquote(urlsplit(dav_space[1]).path)

    def requests() -> list[tuple[str, str]]:
        return [(m, p) for m, p in dav_server.requests() if p.startswith(prefix)]

    return requests


async def cost(served, action) -> list[str]:
    """The methods of the requests the server got while `action` ran."""
    before = len(served())
    await action
    return [m for m, _ in served()[before:]]


async def test_each_operation_costs_what_the_protocol_allows(api, served, jp_root_dir, backend):
    await api("PUT", "folder", {"type": "directory"})
    for i in range(20):
        await api("PUT", f"folder/nb{i}.ipynb", notebook_body(f"n{i}"))
    await api("PUT", "folder/sub", {"type": "directory"})

    listing = await cost(served, api("GET", "folder"))
    assert listing == ["PROPFIND"]
    stat = await cost(served, api("GET", "folder/nb1.ipynb", content="0"))
    assert stat == ["PROPFIND"]
    open_typed = await cost(served, api("GET", "folder/nb1.ipynb", type="notebook"))
    # a server that shares (the drive, of the ownCloud family) is asked for the file's
    # permissions beside the GET, in parallel: a GET does not say whether it may be written
    assert sorted(open_typed) == (["GET", "PROPFIND"] if backend == "drive" else ["GET"])
    open_untyped = await cost(served, api("GET", "folder/nb1.ipynb"))
    assert len(open_untyped) <= (3 if backend == "drive" else 2)
    got = await api("GET", "folder/nb1.ipynb")
    save = await cost(
        served, api("PUT", "folder/nb1.ipynb", {**notebook_body("x"), "etag": got.body["etag"]})
    )
    # a save naming its version is a PUT, plus a PROPFIND for the new etag where the server
    # (Apache) does not send one with its answer
    assert save == (["PUT", "PROPFIND"] if backend == "apache" else ["PUT"])
    created = await cost(
        served, api("PUT", "folder/new.ipynb", {**notebook_body("n"), "if_none_match": "*"})
    )
    assert created == (["PUT", "PROPFIND"] if backend == "apache" else ["PUT"])
    # without a condition jupyter_server's handler asks first whether the file exists (for
    # 200 or 201)
    blind = await cost(served, api("PUT", "folder/nb1.ipynb", notebook_body("y")))
    assert blind[:2] == ["PROPFIND", "PUT"] and len(blind) <= 3


async def test_the_storage_layer_itself_costs_one_request_per_operation(dav_server, dav_space):
    local, url = dav_space
    (local / "a.txt").write_text("a")
    storage = WebDAVStorage(url=url, username=dav_server.username or "")
    if dav_server.password:
        os.environ["SWAN_WEBDAV_PASSWORD"] = dav_server.password
    try:
        # what the server offers is asked once per process, before the first request
        await storage.capabilities()
        storage.requests.clear()
        entry = await storage.stat("a.txt")
        listing = await storage.stat("", children=True)
        _, data = await storage.read("a.txt")
        # the drive shares: a read asks for the file's permissions too (beside its GET)
        shares = (await storage.capabilities()).dialect != "plain"
        assert storage.requests == {"PROPFIND": 3 if shares else 2, "GET": 1}
        assert data == b"a" and [c.name for c in listing.children] == ["a.txt"]
        storage.requests.clear()
        saved = await storage.write("a.txt", b"bb", if_match=entry.etag)
        assert storage.requests.get("PUT") == 1 and sum(storage.requests.values()) <= 2
        assert saved.etag and saved.etag != entry.etag
    finally:
        os.environ.pop("SWAN_WEBDAV_PASSWORD", None)
        await storage.close()


@pytest.mark.parametrize(
    "name", ["a b.ipynb", "hash#tag.ipynb", "100% sure.ipynb", "naïve 数据 ✓.ipynb", "q?x=1.ipynb"]
)
async def test_names_that_need_encoding_round_trip(api, jp_root_dir, name, backend):
    if backend == "wsgidav" and "?" in name:
        pytest.skip("WsgiDAV 4.4 decodes MOVE's Destination before parsing it, cutting at '?'")
    assert (await api("PUT", name, notebook_body("x"))).code == 201
    assert (jp_root_dir / name).is_file()
    listed = [m["name"] for m in (await api("GET", "")).body["content"]]
    assert listed == [name]
    assert (await api("GET", name)).body["content"]["cells"][0]["source"] == "x"
    renamed = await api("PATCH", name, {"path": f"moved {name}"})
    assert renamed.code == 200 and (jp_root_dir / f"moved {name}").is_file()
    copied = await api("POST", "", {"copy_from": f"moved {name}"})
    assert copied.code == 201, copied.body
    assert (jp_root_dir / copied.body["name"]).read_bytes() == (
        jp_root_dir / f"moved {name}"
    ).read_bytes()


async def test_a_locked_file_is_a_423_and_stays_unchanged(api, jp_root_dir, dav_server, dav_space):
    from harness.dav_servers import raw_client

    await api("PUT", "locked.txt", text_body("kept"))
    body = (
        '<?xml version="1.0"?><d:lockinfo xmlns:d="DAV:"><d:lockscope><d:exclusive/>'
        "</d:lockscope><d:locktype><d:write/></d:locktype><d:owner>office</d:owner></d:lockinfo>"
    )
    with raw_client(dav_server) as client:
        r = client.request(
            "LOCK", dav_space[1] + "locked.txt", content=body, headers={"Timeout": "Second-60"}
        )
        assert r.status_code == 200
    saved = await api("PUT", "locked.txt", text_body("overwrite"))
    assert saved.code == 423
    assert "locked" in saved.message
    assert (jp_root_dir / "locked.txt").read_text() == "kept"
    assert (await api("GET", "locked.txt")).body["writable"] is False


async def test_a_chunked_upload_is_spooled_locally_and_sent_once(api, jp_root_dir, dav_server):
    parts = [os.urandom(256 * 1024) for _ in range(5)]
    # anywhere on the server: the drive receives it in its uploads area (Nextcloud chunking v2)
    before = len(dav_server.requests())
    for i, part in enumerate(parts):
        chunk = -1 if i == len(parts) - 1 else i + 1
        await api("PUT", "big.bin", chunk_body(chunk, part))
        if chunk != -1:
            assert not (jp_root_dir / "big.bin").exists()
    assert (jp_root_dir / "big.bin").read_bytes() == b"".join(parts)
    assert [m for m, _ in dav_server.requests()[before:]].count("PUT") == 1


async def test_the_middle_parts_of_an_upload_cost_the_storage_no_request(api, served, backend):
    # jupyter_server asks whether the file exists before every part (a PROPFIND each); the
    # parts between the first and the last only go to the local spool
    first = await cost(served, api("PUT", "big.bin", chunk_body(1, b"a" * 1000)))
    middle = [await cost(served, api("PUT", "big.bin", chunk_body(n, b"b" * 1000))) for n in (2, 3)]
    assert first.count("PROPFIND") <= 2
    assert middle == [[], []]
    created = await api("PUT", "big.bin", chunk_body(-1, b"c"))
    assert (created.code, created.body["size"]) == (200, 3001)


# a plain WebDAV server has no status.php, capabilities nor chunked uploads
@pytest.mark.parametrize("backend", ["drive"])
async def test_the_drive_is_driven_in_the_nextcloud_dialect_with_uploads_in_parts(
    dav_server, dav_space
):
    local, url = dav_space
    os.environ["SWAN_WEBDAV_PASSWORD"] = dav_server.password
    storage = WebDAVStorage(url=url, username=dav_server.username, chunk_size=300_000)
    try:
        caps = await storage.capabilities()
        assert caps.dialect == "nextcloud" and caps.chunking == "1.0"
        assert await storage.keeps_versions() and await storage.has_trash()
        data = os.urandom(1_000_000)
        before = len(dav_server.requests())
        for number, start in enumerate(range(0, len(data), 256 * 1024), start=1):
            last = start + 256 * 1024 >= len(data)
            entry = await storage.write_chunk(
                "big.bin", -1 if last else number, data[start:][:262144]
            )
        assert (local / "big.bin").read_bytes() == data and entry.size == len(data)
        sent = dav_server.requests()[before:]
        uploads = [m for m, p in sent if "/remote.php/dav/uploads/" in p]
        # one folder, four parts of at most 300,000 bytes, one assembling MOVE
        assert uploads == ["MKCOL", "PUT", "PUT", "PUT", "PUT", "MOVE"]
        assert not [p for m, p in sent if m == "PUT" and "/dav/files/" in p]
    finally:
        os.environ.pop("SWAN_WEBDAV_PASSWORD", None)
        await storage.close()


@pytest.fixture
def private_root():
    """A folder for a server of the test's own (one it stops or configures differently)."""
    root = shared_root()
    yield root
    shutil.rmtree(root, ignore_errors=True)


async def test_wrong_credentials_are_a_403_that_says_to_log_in_again(tmp_path, private_root):
    server = WsgiDavServer(private_root)
    server.start()
    try:
        _, url = server.folder("space")
        os.environ["SWAN_TEST_WRONG"] = "not-the-password"
        cm = SwanContentsManager(
            root_dir=str(tmp_path),
            versions_dir=str(tmp_path / "v"),
            storage=WebDAVStorage(url=url, username="alice", password_env="SWAN_TEST_WRONG"),
        )
        from tornado.web import HTTPError

        with pytest.raises(HTTPError) as raised:
            await cm.get("")
        assert raised.value.status_code == 403
        assert "log in again" in raised.value.log_message
    finally:
        os.environ.pop("SWAN_TEST_WRONG", None)
        server.stop()


class BearerDavServer(WsgiDavServer):
    """WsgiDAV (anonymous inside) behind a gate that lets through only
    `Authorization: Bearer <the current token>`, as a token-checking proxy would."""

    username = None
    password = None
    token = "token-one"

    def _counting(self, app):
        inner = super()._counting(app)

        def gate(environ, start_response):
            if environ.pop("HTTP_AUTHORIZATION", None) != f"Bearer {self.token}":
                start_response("401 Unauthorized", [("Content-Length", "0")])
                return [b""]
            return inner(environ, start_response)

        return gate


async def test_a_renewed_token_in_the_token_file_is_used_without_a_restart(tmp_path, private_root):
    server = BearerDavServer(private_root)
    server.start()
    token_file = tmp_path / "token"
    token_file.write_text("token-one\n")
    storage = WebDAVStorage(url=server.folder("space")[1], token_file=str(token_file))
    try:
        await storage.write("a.txt", b"1")
        server.token = "token-two"
        with pytest.raises(Exception, match="log in again"):
            await storage.stat("a.txt")
        token_file.write_text("token-two\n")
        os.utime(token_file, ns=(1, 1))  # a new mtime, however coarse the clock
        entry = await storage.stat("a.txt")
        assert entry.size == 1
    finally:
        await storage.close()
        server.stop()


async def test_a_stopped_server_is_a_503_then_recovers_without_a_restart(tmp_path, private_root):
    from tornado.web import HTTPError

    server = WsgiDavServer(private_root)
    server.start()
    local, url = server.folder("space")
    os.environ["SWAN_TEST_DAV"] = server.password
    cm = SwanContentsManager(
        root_dir=str(tmp_path),
        versions_dir=str(tmp_path / "v"),
        storage=WebDAVStorage(url=url, username=server.username, password_env="SWAN_TEST_DAV"),
    )
    try:
        await cm.save(text_body("before"), "a.txt")
        server.stop()
        for attempt in (cm.get("a.txt"), cm.save(text_body("during"), "a.txt"), cm.get("")):
            with pytest.raises(HTTPError) as raised:
                await attempt
            assert raised.value.status_code == 503
            assert "not available" in raised.value.log_message
        assert (local / "a.txt").read_text() == "before"
        server.start()
        assert (await cm.get("a.txt"))["content"] == "before"
        await cm.save(text_body("after"), "a.txt")
        assert (local / "a.txt").read_text() == "after"
    finally:
        os.environ.pop("SWAN_TEST_DAV", None)
        await cm.storage.close()
        server.stop()


async def test_listing_and_reading_run_concurrently(api, jp_root_dir):
    for i in range(10):
        (jp_root_dir / f"f{i}.txt").write_text(str(i) * 1000)
    replies = await asyncio.gather(*(api("GET", f"f{i}.txt") for i in range(10)), api("GET", ""))
    assert [r.code for r in replies] == [200] * 11
    assert [r.body["content"] for r in replies[:10]] == [str(i) * 1000 for i in range(10)]
    assert json.dumps(replies[10].body)


async def test_a_webdav_storage_without_a_url_stops_the_server_at_start(tmp_path, monkeypatch):
    from traitlets import TraitError

    monkeypatch.delenv("SWAN_WEBDAV_URL", raising=False)
    with pytest.raises(TraitError, match="no WebDAV URL is configured"):
        SwanContentsManager(
            root_dir=str(tmp_path), storage_class="swan_contents.storage.WebDAVStorage"
        )
    with pytest.raises(TraitError, match="http"):
        WebDAVStorage(url="file:///etc/")
