"""SwanContentsManager against a real jupyter-server and a real directory: the models it lists are
the stock manager's to the field, and bad input gets a clear status with nothing escaping the
space, nothing half-written and nothing lost."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess

import pytest
from conftest import notebook_body, text_body
from jupyter_client.jsonutil import json_default
from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager

from swan_contents.storage.ondisk import TEMP_PREFIX


@pytest.fixture
def manager() -> str:
    return "swan"


def _as_json(model: dict) -> dict:
    return json.loads(json.dumps(model, default=json_default))


def _without_etags(model: dict) -> dict:
    """Our model less the fields the stock manager does not have (`etag`, and `shareable`, which
    only a storage with a share API fills), after checking they are there."""
    assert isinstance(model.pop("etag"), str)
    assert model.pop("shareable") is None
    for child in model["content"] if model["type"] == "directory" and model["content"] else ():
        _without_etags(child)
    return model


def _make_tree(root) -> None:
    (root / "sub dir").mkdir()
    (root / "sub dir" / "inner.ipynb").write_text(json.dumps(notebook_body()["content"]))
    (root / "notes.md").write_text("# notes\n")
    (root / "data.csv").write_text("a,b\n")
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (root / "no-extension").write_bytes(b"\xff\xfe")
    (root / "Ümlaut & space.txt").write_text("ü")
    (root / "analysis.ipynb").write_text(json.dumps(notebook_body()["content"]))
    (root / ".hidden").write_text("h")
    (root / "cache.pyc").write_bytes(b"\0")
    (root / "backup~").write_text("b")


async def test_listing_models_equal_the_stock_managers_field_for_field(api, jp_root_dir):
    _make_tree(jp_root_dir)
    stock = AsyncLargeFileManager(root_dir=str(jp_root_dir))
    for path in ("", "sub dir"):
        ours = _without_etags((await api("GET", path)).body)
        theirs = _as_json(await stock.get(path))
        key = lambda m: m["name"]  # noqa: E731
        assert sorted(ours.pop("content"), key=key) == sorted(theirs.pop("content"), key=key)
        assert ours == theirs


@pytest.mark.parametrize("query", [{}, {"type": "directory"}, {"content": "0"}])
async def test_a_long_listing_written_in_steps_is_the_stock_managers(api, jp_root_dir, query):
    # 3,000 children are some 1 MB of JSON: sent in several steps, each flushed
    (jp_root_dir / "big").mkdir()
    for i in range(3000):
        (
            jp_root_dir / "big" / (f"n {i}.ipynb" if i % 7 else f"d {i}")
        ).mkdir() if i % 100 == 0 else (jp_root_dir / "big" / f"ü {i}.csv").write_text("a")
    stock = AsyncLargeFileManager(root_dir=str(jp_root_dir))
    ours = _without_etags((await api("GET", "big", **query)).body)
    theirs = _as_json(await stock.get("big", content=query.get("content", "1") == "1"))
    key = lambda m: m["name"]  # noqa: E731
    if ours["content"] is not None:
        assert len(ours["content"]) == 3000
        assert sorted(ours.pop("content"), key=key) == sorted(theirs.pop("content"), key=key)
    assert ours == theirs


async def test_file_models_with_content_equal_the_stock_managers(api, jp_root_dir):
    _make_tree(jp_root_dir)
    stock = AsyncLargeFileManager(root_dir=str(jp_root_dir))
    for path in ("notes.md", "image.png", "no-extension", "Ümlaut & space.txt", "analysis.ipynb"):
        for query in ({}, {"content": "0"}, {"format": "base64"}, {"hash": "1"}):
            ours = _without_etags((await api("GET", path, **query)).body)
            theirs = _as_json(
                await stock.get(
                    path,
                    content=query.get("content", "1") == "1",
                    format=query.get("format"),
                    require_hash=query.get("hash") == "1",
                )
            )
            assert ours == theirs, (path, query)


@pytest.mark.parametrize(
    "url_path",
    [
        "/api/contents/..",
        "/api/contents/../zz-outside/pwned.txt",
        "/api/contents/%2e%2e/zz-outside/pwned.txt",
        "/api/contents/%2E%2E%2Fzz-outside%2Fpwned.txt",
        "/api/contents/sub/%2e%2e/%2e%2e/zz-outside/pwned.txt",
        "/api/contents/sub%2f..%2f..%2fzz-outside%2fpwned.txt",
        "/api/contents/./secret",
        "/api/contents/%00",
        "/api/contents/a%00b.txt",
        "/files/%2e%2e/outside.txt",
        "/api/contents/%2e%2e/outside.txt/checkpoints",
    ],
)
async def test_traversal_in_any_spelling_never_escapes_the_space(raw_fetch, jp_root_dir, url_path):
    (jp_root_dir / "sub").mkdir()
    outside = jp_root_dir.parent / "outside.txt"
    outside.write_text("keep")
    for method, body in (("GET", None), ("PUT", json.dumps(text_body("pwned"))), ("DELETE", None)):
        r = await raw_fetch(method, url_path, body)
        # 405: /files/ and checkpoints take no PUT; nothing is written either way
        assert r.code in (400, 404, 405), (method, url_path, r.code, r.body)
    assert outside.read_text() == "keep"
    assert not (jp_root_dir.parent / "zz-outside").exists()


@pytest.mark.parametrize(
    "body",
    [
        {"copy_from": "../outside.txt"},
        {"copy_from": "sub/../../outside.txt"},
        {"copy_from": "/../outside.txt"},
    ],
)
async def test_traversal_in_a_copy_source_is_refused(api, jp_root_dir, body):
    (jp_root_dir / "sub").mkdir()
    (jp_root_dir.parent / "outside.txt").write_text("secret")
    r = await api("POST", "", body)
    assert r.code in (400, 404)
    assert not any("outside" in p.name for p in jp_root_dir.rglob("*"))


async def test_traversal_in_a_rename_target_is_refused(api, jp_root_dir):
    (jp_root_dir / "a.txt").write_text("a")
    for target in ("../a.txt", "sub/../../a.txt", "x/../../escape.txt"):
        r = await api("PATCH", "a.txt", {"path": target})
        assert r.code in (400, 404), target
    assert (jp_root_dir / "a.txt").read_text() == "a"
    assert not (jp_root_dir.parent / "a.txt").exists()
    assert not (jp_root_dir.parent / "escape.txt").exists()


async def test_links_leading_outside_the_space_are_not_followed(api, jp_root_dir, tmp_path):
    secret_dir = tmp_path / "elsewhere"
    secret_dir.mkdir()
    (secret_dir / "secret.txt").write_text("secret")
    os.symlink(secret_dir, jp_root_dir / "escape-dir")
    os.symlink(secret_dir / "secret.txt", jp_root_dir / "escape-file.txt")
    os.symlink("/zz-outside/pwned.txt", jp_root_dir / "passwd")
    (jp_root_dir / "real.txt").write_text("r")
    os.symlink("real.txt", jp_root_dir / "inside-link.txt")

    names = [m["name"] for m in (await api("GET", "")).body["content"]]
    assert sorted(names) == ["inside-link.txt", "real.txt"]
    for path in ("escape-dir", "escape-dir/secret.txt", "escape-file.txt", "passwd"):
        assert (await api("GET", path)).code == 404, path
    assert (await api("PUT", "escape-file.txt", text_body("overwrite"))).code in (400, 404)
    assert (await api("PUT", "escape-dir/new.txt", text_body("planted"))).code in (400, 404)
    assert (await api("POST", "", {"copy_from": "escape-file.txt"})).code in (400, 404)
    assert (secret_dir / "secret.txt").read_text() == "secret"
    assert sorted(p.name for p in secret_dir.iterdir()) == ["secret.txt"]
    assert (await api("GET", "inside-link.txt")).body["content"] == "r"


async def test_a_link_inside_the_space_shows_its_targets_size_and_content(api, jp_root_dir):
    (jp_root_dir / "notes.md").write_text("# a longer note\n")
    os.symlink("notes.md", jp_root_dir / "link.md")
    listed = {m["name"]: m for m in (await api("GET", "")).body["content"]}
    assert listed["link.md"]["size"] == listed["notes.md"]["size"] == 16
    assert (await api("GET", "link.md")).body["content"] == "# a longer note\n"
    await api("PUT", "link.md", text_body("through the link\n"))
    assert os.path.islink(jp_root_dir / "link.md")
    assert (jp_root_dir / "notes.md").read_text() == "through the link\n"


async def test_dangling_links_are_not_listed(api, jp_root_dir):
    os.symlink("missing-target", jp_root_dir / "dangling")
    (jp_root_dir / "real.txt").write_text("r")
    assert [m["name"] for m in (await api("GET", "")).body["content"]] == ["real.txt"]
    assert (await api("GET", "dangling")).code == 404


async def test_a_dot_dot_segment_is_refused_even_inside_the_space(api, jp_root_dir):
    (jp_root_dir / "a").mkdir()
    (jp_root_dir / "b.txt").write_text("b")
    r = await api("GET", "a/%2e%2e/b.txt")
    assert r.code in (400, 404)


async def test_a_file_where_a_folder_is_expected_is_a_clear_400(api, jp_root_dir):
    (jp_root_dir / "file.txt").write_text("f")
    r = await api("PUT", "file.txt/new.ipynb", notebook_body())
    assert r.code == 400
    assert "file.txt" in r.message and "folder" in r.message
    assert (await api("GET", "file.txt/new.ipynb")).code == 404
    assert (jp_root_dir / "file.txt").read_text() == "f"


async def test_saving_into_a_missing_folder_is_a_404_not_a_crash(api, jp_root_dir):
    r = await api("PUT", "missing/nb.ipynb", notebook_body())
    assert r.code == 404
    assert "missing" in r.message
    assert not (jp_root_dir / "missing").exists()


async def test_a_copy_never_overwrites_an_existing_file(api, jp_root_dir):
    (jp_root_dir / "a.txt").write_text("a")
    (jp_root_dir / "b.txt").write_text("b")
    r = await api("POST", "b.txt", {"copy_from": "a.txt"})
    assert r.code in (400, 409)
    assert (jp_root_dir / "b.txt").read_text() == "b"


async def test_restoring_a_missing_checkpoint_is_a_404(api):
    await api("PUT", "nb.ipynb", notebook_body())
    (made,) = (await api("GET", "nb.ipynb/checkpoints")).body
    await api("DELETE", f"nb.ipynb/checkpoints/{made['id']}")
    assert (await api("POST", f"nb.ipynb/checkpoints/{made['id']}")).code == 404
    assert (await api("POST", "nb.ipynb/checkpoints/other-id")).code == 404
    assert (await api("POST", "nb.ipynb/checkpoints/swan-20200101T000000000000Z-x")).code == 404


async def test_checkpoints_live_outside_the_space(api, jp_root_dir, versions_dir):
    await api("PUT", "nb.ipynb", notebook_body())
    made = await api("POST", "nb.ipynb/checkpoints")
    assert sorted(p.name for p in jp_root_dir.iterdir()) == ["nb.ipynb"]
    assert (versions_dir / "f.nb.ipynb" / made.body["id"]).is_file()


async def test_a_chunked_upload_changes_nothing_until_its_last_part(api, jp_root_dir):
    (jp_root_dir / "big.bin").write_bytes(b"old")

    def part(chunk: int, data: bytes) -> dict:
        b64 = base64.b64encode(data).decode()
        return {"type": "file", "format": "base64", "chunk": chunk, "content": b64}

    await api("PUT", "big.bin", part(1, b"new-1"))
    await api("PUT", "big.bin", part(2, b"new-2"))
    assert (jp_root_dir / "big.bin").read_bytes() == b"old"
    listing = [m["name"] for m in (await api("GET", "")).body["content"]]
    assert listing == ["big.bin"]
    await api("PUT", "big.bin", part(-1, b"new-3"))
    assert (jp_root_dir / "big.bin").read_bytes() == b"new-1new-2new-3"
    assert [p.name for p in jp_root_dir.iterdir()] == ["big.bin"]


async def test_a_last_chunk_without_a_first_is_refused(api, jp_root_dir):
    body = {"type": "file", "format": "text", "chunk": -1, "content": "tail"}
    r = await api("PUT", "orphan.txt", body)
    assert r.code == 404
    assert "upload" in r.message
    assert not (jp_root_dir / "orphan.txt").exists()
    bad = await api("PUT", "x.txt", {"type": "file", "format": "text", "chunk": 0, "content": ""})
    assert bad.code == 400


async def test_saves_are_atomic_for_a_concurrent_reader(api, jp_root_dir):
    """A reader polling the file while it is rewritten sees whole notebooks only."""
    big = "x = 1\n" * 50_000
    await api("PUT", "nb.ipynb", notebook_body(big))
    path = jp_root_dir / "nb.ipynb"
    stop = asyncio.Event()
    torn = []

    def read_loop() -> int:
        reads = 0
        while not stop.is_set():
            try:
                json.loads(path.read_bytes())
            except ValueError:
                torn.append(reads)
            reads += 1
        return reads

    reader = asyncio.get_running_loop().run_in_executor(None, read_loop)
    for i in range(15):
        assert (await api("PUT", "nb.ipynb", notebook_body(big + f"# {i}\n"))).code == 200
    stop.set()
    reads = await reader
    assert reads > 0 and torn == []
    assert not [p for p in jp_root_dir.iterdir() if p.name.startswith(TEMP_PREFIX)]


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a real tmpfs of the given size (and options) for the test; skip where we cannot."""
    mounted = []

    def mount(size: str, name: str = "mnt"):
        point = tmp_path / name
        point.mkdir()
        r = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(point)],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
        mounted.append(point)
        return point

    yield mount
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], check=False)


@pytest.fixture
def small_disk(tmpfs):
    """A 1 MiB file system, to fill the disk for real."""
    return tmpfs("1m")


async def test_a_full_disk_is_a_507_and_the_stored_file_stays_intact(small_disk, jp_fetch):
    from swan_contents import SwanContentsManager

    space = small_disk / "space"
    space.mkdir()
    cm = SwanContentsManager(root_dir=str(space), versions_dir=str(small_disk.parent / "v"))
    original = notebook_body("keep me")
    await cm.save(original, "nb.ipynb")
    too_big = notebook_body("y" * (2 * 1024 * 1024))
    from tornado.web import HTTPError

    with pytest.raises(HTTPError) as raised:
        await cm.save(too_big, "nb.ipynb")
    assert raised.value.status_code == 507
    assert "space" in raised.value.log_message
    kept = await cm.get("nb.ipynb")
    assert kept["content"]["cells"][0]["source"] == "keep me"
    assert sorted(os.listdir(space)) == ["nb.ipynb"]


async def test_a_missing_storage_root_refuses_to_start_with_a_clear_message(tmp_path):
    from traitlets import TraitError

    from swan_contents import SwanContentsManager

    with pytest.raises(TraitError, match="does not exist"):
        SwanContentsManager(root_dir=str(tmp_path / "not-there"))


async def test_a_storage_that_disappears_answers_503_then_recovers(tmp_path):
    from tornado.web import HTTPError

    from swan_contents import SwanContentsManager

    space = tmp_path / "space"
    space.mkdir()
    cm = SwanContentsManager(root_dir=str(space), versions_dir=str(tmp_path / "v"))
    await cm.save(text_body("x"), "a.txt")
    os.rename(space, tmp_path / "unmounted")
    with pytest.raises(HTTPError) as raised:
        await cm.get("a.txt")
    assert raised.value.status_code == 503
    os.rename(tmp_path / "unmounted", space)
    assert (await cm.get("a.txt"))["content"] == "x"


async def test_a_read_only_storage_answers_403_and_keeps_the_file(tmpfs, tmp_path):
    from tornado.web import HTTPError

    from swan_contents import SwanContentsManager

    space = tmpfs("1m")
    (space / "nb.ipynb").write_text(json.dumps(notebook_body("stored")["content"]))
    subprocess.run(["mount", "-o", "remount,ro", str(space)], check=True)
    cm = SwanContentsManager(root_dir=str(space), versions_dir=str(tmp_path / "v"))
    for attempt in (
        cm.save(notebook_body("new"), "nb.ipynb"),
        cm.delete("nb.ipynb"),
        cm.rename("nb.ipynb", "other.ipynb"),
        cm.new_untitled(type="notebook"),
    ):
        with pytest.raises(HTTPError) as raised:
            await attempt
        assert raised.value.status_code == 403
        assert "read-only" in raised.value.log_message
    assert (await cm.get("nb.ipynb"))["content"]["cells"][0]["source"] == "stored"


@pytest.mark.parametrize("ext", ["/../../escape.txt", "/evil.txt", ".txt\x00.sh", "/.."])
async def test_a_hostile_extension_for_a_new_file_writes_nothing_outside(api, jp_root_dir, ext):
    r = await api("POST", "", {"type": "file", "ext": ext})
    assert r.code in (400, 404), (ext, r.code)
    assert list(jp_root_dir.iterdir()) == []
    assert not (jp_root_dir.parent / "escape.txt").exists()


async def test_a_file_replaced_on_disk_by_a_sync_client_is_a_409_even_with_the_same_mtime(
    api, jp_root_dir
):
    mine = await api("PUT", "notes.txt", text_body("base"))
    # a sync client writes in place, same size, and restores the old mtime: only the inode and
    # the content differ; an atomic replace by a sync client changes the inode
    path = jp_root_dir / "notes.txt"
    tmp = jp_root_dir / "notes.txt.sync"
    tmp.write_text("sync")
    st = path.stat()
    os.replace(tmp, path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    refused = await api("PUT", "notes.txt", {**text_body("mine"), "etag": mine.body["etag"]})
    assert refused.code == 409
    assert path.read_text() == "sync"


class _OneMount:
    """A mount source with one fixed mount (what FederatedMounts answers, without a site)."""

    def __init__(self, mount):
        self.mount = mount

    async def mounts(self):
        return {self.mount.name: self.mount}

    async def refresh(self):
        return await self.mounts()

    async def close(self):
        pass


async def test_an_abandoned_upload_into_a_mounted_share_drops_its_parts_there(tmp_path):
    from swan_contents.storage import PosixStorage
    from swan_contents.storage.mounted import Mount, MountedStorage
    from swan_contents.storage.posix import TEMP_PREFIX

    (tmp_path / "own" / "Shared").mkdir(parents=True)
    (tmp_path / "theirs").mkdir()
    theirs = PosixStorage(str(tmp_path / "theirs"))
    mount = Mount("x", theirs, "bob@other.example", writable=True)
    storage = MountedStorage(PosixStorage(str(tmp_path / "own")), _OneMount(mount))
    await storage.write_chunk("Shared/x/data.bin", 1, b"first part")
    assert [p.name for p in (tmp_path / "theirs").iterdir() if p.name.startswith(TEMP_PREFIX)]
    await storage.drop_upload("Shared/x/data.bin")
    assert list((tmp_path / "theirs").iterdir()) == []


async def test_a_mounted_single_file_is_reached_at_its_name_and_leaves_no_conflict_copy(tmp_path):
    from swan_contents.errors import http_error
    from swan_contents.storage import PosixStorage
    from swan_contents.storage.base import Conflict, NotFound
    from swan_contents.storage.mounted import Mount, MountedStorage

    (tmp_path / "own" / "Shared").mkdir(parents=True)
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "report.txt").write_text("theirs")
    (tmp_path / "theirs" / "beside.txt").write_text("not shared")
    theirs = PosixStorage(str(tmp_path / "theirs"))
    mount = Mount(
        "notes.txt", theirs, "bob@other.example", kind="file", writable=True, root="report.txt"
    )
    storage = MountedStorage(PosixStorage(str(tmp_path / "own")), _OneMount(mount))

    listed = await storage.stat("Shared", children=True)
    assert [(c.name, c.kind) for c in listed.children] == [("notes.txt", "file")]
    entry, data = await storage.read("Shared/notes.txt")
    assert (entry.name, entry.path, data) == ("notes.txt", "Shared/notes.txt", b"theirs")
    for inside in ("Shared/notes.txt/beside.txt", "Shared/notes.txt/x/y"):
        with pytest.raises(NotFound):
            await storage.stat(inside)

    saved = await storage.write("Shared/notes.txt", b"mine", if_match=entry.etag)
    assert saved.path == "Shared/notes.txt"
    with pytest.raises(Conflict) as lost:
        await storage.write("Shared/notes.txt", b"late", if_match=entry.etag)
    assert lost.value.path == "Shared/notes.txt" and not lost.value.copy_beside
    assert "No conflict copy can be made beside" in http_error(lost.value).log_message
    assert (tmp_path / "theirs" / "report.txt").read_bytes() == b"mine"
    assert sorted(p.name for p in (tmp_path / "own" / "Shared").iterdir()) == []
