"""The contents REST API behaves as jupyter_server's stock manager does.

Every test here runs twice, against a real jupyter-server with the stock AsyncLargeFileManager and
with SwanContentsManager, on a real directory, and asserts the same statuses and model fields.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json

import nbformat
import pytest
from conftest import ALL_STORAGES, SERVER_HISTORY, notebook_body, text_body


@pytest.fixture(params=ALL_STORAGES, ids=lambda p: "-".join(dict.fromkeys(p)))
def storage_setup(request) -> tuple[str, str]:
    return request.param


@pytest.fixture
def manager(storage_setup) -> str:
    return storage_setup[0]


@pytest.fixture
def backend(storage_setup) -> str:
    return storage_setup[1]


MODEL_KEYS = {
    "name",
    "path",
    "type",
    "last_modified",
    "created",
    "content",
    "format",
    "mimetype",
    "size",
    "writable",
    "hash",
    "hash_algorithm",
}


def model_keys(manager: str) -> set[str]:
    """The stock model's keys; ours add the storage's version, `etag`, and whether the item
    can be shared, `shareable` (docs/storage.md)."""
    return MODEL_KEYS | {"etag", "shareable"} if manager == "swan" else MODEL_KEYS


async def test_an_empty_space_lists_as_an_empty_directory(api, manager):
    r = await api("GET", "")
    assert r.code == 200
    assert set(r.body) == model_keys(manager)
    assert (r.body["type"], r.body["format"], r.body["content"]) == ("directory", "json", [])


async def test_a_new_notebook_is_created_then_saved_then_read_back(api, jp_root_dir, manager):
    created = await api("PUT", "nb.ipynb", notebook_body("1 + 1"))
    assert created.code == 201
    assert set(created.body) == model_keys(manager)
    assert created.body["type"] == "notebook" and created.body["content"] is None

    saved = await api("PUT", "nb.ipynb", notebook_body("2 + 2"))
    assert saved.code == 200

    got = await api("GET", "nb.ipynb")
    assert got.code == 200
    assert (got.body["type"], got.body["format"], got.body["mimetype"]) == (
        "notebook",
        "json",
        None,
    )
    assert got.body["content"]["cells"][0]["source"] == "2 + 2"
    on_disk = nbformat.read(jp_root_dir / "nb.ipynb", as_version=4)
    assert on_disk.cells[0].source == "2 + 2"
    assert (jp_root_dir / "nb.ipynb").read_text().endswith("\n")


async def test_untitled_names_count_up_like_jupyter(api):
    names = []
    for body in (
        {"type": "notebook"},
        {"type": "notebook"},
        {"type": "directory"},
        {"type": "directory"},
        {"type": "file", "ext": ".txt"},
        {"type": "file", "ext": ".txt"},
    ):
        r = await api("POST", "", body)
        assert r.code == 201, r.message
        names.append(r.body["name"])
    assert names == [
        "Untitled.ipynb",
        "Untitled1.ipynb",
        "Untitled Folder",
        "Untitled Folder 1",
        "untitled.txt",
        "untitled1.txt",
    ]


async def test_text_and_binary_files_round_trip_in_each_format(api):
    assert (await api("PUT", "a.txt", text_body("héllo\n"))).code == 201
    text = await api("GET", "a.txt")
    assert (text.body["format"], text.body["content"], text.body["mimetype"]) == (
        "text",
        "héllo\n",
        "text/plain",
    )
    as_b64 = await api("GET", "a.txt", format="base64")
    assert base64.b64decode(as_b64.body["content"]) == "héllo\n".encode()

    blob = bytes(range(256)) * 4
    body = {"type": "file", "format": "base64", "content": base64.b64encode(blob).decode()}
    assert (await api("PUT", "blob.bin", body)).code == 201
    got = await api("GET", "blob.bin")
    assert (got.body["format"], got.body["mimetype"]) == ("base64", "application/octet-stream")
    assert base64.b64decode(got.body["content"]) == blob
    assert got.body["size"] == len(blob)
    refused = await api("GET", "blob.bin", format="text")
    assert refused.code == 400


async def test_the_hash_is_the_sha256_of_the_stored_bytes(api):
    await api("PUT", "h.txt", text_body("abc"))
    r = await api("GET", "h.txt", hash="1", content="0")
    assert r.code == 200
    assert r.body["hash"] == hashlib.sha256(b"abc").hexdigest()
    assert r.body["hash_algorithm"] == "sha256"


async def test_asking_for_the_wrong_type_is_a_400(api):
    await api("PUT", "d", {"type": "directory"})
    await api("PUT", "f.txt", text_body("x"))
    assert (await api("GET", "d", type="file")).code == 400
    assert (await api("GET", "f.txt", type="directory")).code == 400
    assert (await api("GET", "f.txt", type="notebook")).code == 400


async def test_a_wrong_type_is_named_by_its_path_without_a_leading_slash(api):
    await api("PUT", "dé", {"type": "directory"})
    await api("PUT", "dé/f.ipynb", notebook_body())
    assert (await api("GET", "dé", type="file")).message == "dé is a directory, not a file"
    wrong = await api("GET", "dé/f.ipynb", type="directory")
    assert wrong.message == "dé/f.ipynb is not a directory"


async def test_missing_things_are_404(api):
    assert (await api("GET", "nope.ipynb")).code == 404
    assert (await api("GET", "no/such/dir/x.txt")).code == 404
    assert (await api("POST", "no-such-dir", {"type": "notebook"})).code == 404
    assert (await api("DELETE", "nope.txt")).code == 404
    assert (await api("PATCH", "nope.txt", {"path": "other.txt"})).code == 404


async def test_posting_to_an_existing_file_is_refused(api):
    await api("PUT", "f.txt", text_body("x"))
    assert (await api("POST", "f.txt", {"type": "file"})).code == 400


async def test_copies_are_named_like_jupyter_names_them(api):
    await api("PUT", "nb.ipynb", notebook_body())
    await api("PUT", "sub", {"type": "directory"})
    await api("PUT", "sub/inner.txt", text_body("in"))
    first = await api("POST", "", {"copy_from": "nb.ipynb"})
    second = await api("POST", "", {"copy_from": "nb.ipynb"})
    into_sub = await api("POST", "sub", {"copy_from": "nb.ipynb"})
    folder = await api("POST", "", {"copy_from": "sub"})
    assert [r.code for r in (first, second, into_sub, folder)] == [201] * 4
    assert [first.body["path"], second.body["path"], into_sub.body["path"]] == [
        "nb-Copy1.ipynb",
        "nb-Copy2.ipynb",
        "sub/nb.ipynb",
    ]
    assert folder.body["path"] == "sub-Copy1"
    assert (await api("GET", "sub-Copy1/inner.txt")).body["content"] == "in"


async def test_a_folder_copied_into_a_folder_that_does_not_exist_lands_inside_it(
    api, jp_fetch, jp_base_url
):
    await api("PUT", "foo", {"type": "directory"})
    await api("PUT", "foo/a.txt", text_body("a"))
    r = await jp_fetch(
        "api", "contents", "new", "parent", method="POST", body=json.dumps({"copy_from": "foo"})
    )
    assert r.code == 201
    assert r.headers["Location"] == f"{jp_base_url}api/contents/new/parent/foo"
    assert json.loads(r.body)["path"] == "new/parent/foo"
    assert (await api("GET", "new/parent/foo/a.txt")).body["content"] == "a"
    again = await api("POST", "new/parent", {"copy_from": "foo"})
    assert (again.code, again.body["path"]) == (201, "new/parent/foo-Copy1")


async def test_a_file_copied_under_a_folder_that_does_not_exist_is_a_404(api):
    await api("PUT", "a.txt", text_body("a"))
    missing = await api("POST", "no/such", {"copy_from": "a.txt"})
    assert missing.code == 404
    assert missing.message == "No such parent directory: no to copy file in"


async def test_rename_moves_and_refuses_to_overwrite(api):
    await api("PUT", "a.ipynb", notebook_body("a"))
    await api("PUT", "b.ipynb", notebook_body("b"))
    moved = await api("PATCH", "a.ipynb", {"path": "c.ipynb"})
    assert moved.code == 200 and moved.body["path"] == "c.ipynb"
    assert (await api("GET", "a.ipynb")).code == 404
    clash = await api("PATCH", "c.ipynb", {"path": "b.ipynb"})
    assert clash.code == 409
    assert (await api("GET", "b.ipynb")).body["content"]["cells"][0]["source"] == "b"
    assert (await api("GET", "c.ipynb")).body["content"]["cells"][0]["source"] == "a"


async def test_delete_removes_files_and_folders(api):
    await api("PUT", "f.txt", text_body("x"))
    await api("PUT", "d", {"type": "directory"})
    await api("PUT", "d/inner.txt", text_body("y"))
    assert (await api("DELETE", "f.txt")).code == 204
    assert (await api("DELETE", "d")).code == 204
    assert (await api("GET", "")).body["content"] == []


async def test_deleting_the_root_is_refused(api):
    assert (await api("DELETE", "")).code == 400


async def test_a_checkpoint_is_made_on_first_save_and_can_be_restored(api, manager, backend):
    await api("PUT", "nb.ipynb", notebook_body("original"))
    listed = await api("GET", "nb.ipynb/checkpoints")
    # a storage keeping versions of its own lists the current content, which it keeps as a
    # version once a save replaces it; the others a copy made on the first save
    assert listed.code == 200 and len(listed.body) == 1

    made = await api("POST", "nb.ipynb/checkpoints")
    assert made.code == 201
    assert [c["id"] for c in (await api("GET", "nb.ipynb/checkpoints")).body] == [made.body["id"]]
    assert made.body["id"] == listed.body[0]["id"]
    await api("PUT", "nb.ipynb", notebook_body("changed"))
    restored = await api("POST", f"nb.ipynb/checkpoints/{made.body['id']}")
    assert restored.code == 204
    assert (await api("GET", "nb.ipynb")).body["content"]["cells"][0]["source"] == "original"

    deleted = await api("DELETE", f"nb.ipynb/checkpoints/{made.body['id']}")
    if backend in SERVER_HISTORY:
        # the storage's versions are the storage's to delete
        assert deleted.code == 403 and "kept by the storage" in deleted.message
        return
    assert deleted.code == 204
    left = [c["id"] for c in (await api("GET", "nb.ipynb/checkpoints")).body]
    # the stock manager keeps one checkpoint; ours keeps every version (docs/storage.md)
    assert made.body["id"] not in left and (left == [] if manager == "stock" else left)
    assert (await api("DELETE", f"nb.ipynb/checkpoints/{made.body['id']}")).code == 404


async def test_a_save_after_a_checkpoint_is_kept_as_a_version_too(api, manager, backend):
    await api("PUT", "nb.ipynb", notebook_body("v1"))
    made = await api("POST", "nb.ipynb/checkpoints")
    await api("PUT", "nb.ipynb", notebook_body("v2, longer"))
    listed = [c["id"] for c in (await api("GET", "nb.ipynb/checkpoints")).body]
    if manager == "stock":
        assert listed == [made.body["id"]]
        return
    # the one deliberate difference (docs/storage.md): the save is a version, newest first
    assert len(listed) == 2 and listed[0] != made.body["id"]
    if backend not in SERVER_HISTORY:  # there, a checkpoint names the server's current content
        assert listed[1] == made.body["id"]


async def test_checkpoints_follow_a_rename_and_go_with_a_delete(api, manager, backend):
    await api("PUT", "dir", {"type": "directory"})
    await api("PUT", "dir/nb.ipynb", notebook_body("v1"))
    if backend in SERVER_HISTORY:
        # the server's first version is the content a save replaces
        await api("PUT", "dir/nb.ipynb", notebook_body("v2"))
    before = [c["id"] for c in (await api("GET", "dir/nb.ipynb/checkpoints")).body]
    assert before
    await api("PATCH", "dir", {"path": "moved"})
    assert [c["id"] for c in (await api("GET", "moved/nb.ipynb/checkpoints")).body] == before
    await api("DELETE", "moved/nb.ipynb")
    await api("PUT", "moved/nb.ipynb", {"type": "file", "format": "text", "content": "{}"})
    after = [c["id"] for c in (await api("GET", "moved/nb.ipynb/checkpoints")).body]
    assert not set(before) & set(after)
    # ours keeps a version of every save, the new file's too (on a storage with versions of its
    # own, the new file's current content); the stock manager none for files
    assert len(after) == (0 if manager == "stock" else 1)


async def test_hidden_files_are_neither_listed_nor_served_nor_created(api, jp_root_dir):
    (jp_root_dir / ".secret").write_text("s")
    (jp_root_dir / ".hiddendir").mkdir()
    (jp_root_dir / ".hiddendir" / "x.txt").write_text("x")
    (jp_root_dir / "visible.txt").write_text("v")
    (jp_root_dir / "junk.pyc").write_bytes(b"\0")
    listing = await api("GET", "")
    assert [m["name"] for m in listing.body["content"]] == ["visible.txt"]
    assert (await api("GET", ".secret")).code == 404
    assert (await api("GET", ".hiddendir/x.txt")).code == 404
    assert (await api("PUT", ".new", text_body("n"))).code == 400
    assert (await api("DELETE", ".secret")).code == 400
    assert (await api("PATCH", "visible.txt", {"path": ".renamed"})).code == 400
    assert (jp_root_dir / ".secret").read_text() == "s"


async def test_hidden_paths_work_where_allowed_and_are_404_again_when_not(
    api, jp_root_dir, jp_serverapp
):
    jp_serverapp.contents_manager.allow_hidden = True
    assert (await api("PUT", ".hidden", {"type": "directory"})).code == 201
    assert (await api("PUT", ".hidden/visible.txt", text_body("v"))).code == 201
    assert (await api("GET", ".hidden")).code == 200
    copied = await api("POST", ".hidden", {"copy_from": ".hidden/visible.txt"})
    assert (copied.code, copied.message) == (201, ""), copied.body
    assert copied.body["path"] == ".hidden/visible-Copy1.txt"
    assert (await api("DELETE", ".hidden/visible-Copy1.txt")).code == 204
    assert (await api("PUT", ".hidden/new.txt", text_body("n"))).code == 201
    jp_serverapp.contents_manager.allow_hidden = False
    hidden = await api("GET", ".hidden")
    assert hidden.code == 404
    assert (await api("GET", ".hidden/new.txt")).code == 404
    assert (jp_root_dir / ".hidden" / "new.txt").read_text() == "n"


async def test_unicode_and_space_names_work_everywhere(api, jp_root_dir):
    folder = "Ünïcødé Ördner"
    name = "naïve ✓ notebook 数据.ipynb"
    assert (await api("PUT", folder, {"type": "directory"})).code == 201
    assert (await api("PUT", f"{folder}/{name}", notebook_body())).code == 201
    assert (jp_root_dir / folder / name).is_file()
    listing = await api("GET", folder)
    assert [(m["name"], m["path"]) for m in listing.body["content"]] == [(name, f"{folder}/{name}")]
    renamed = await api("PATCH", f"{folder}/{name}", {"path": f"{folder}/é ü.ipynb"})
    assert renamed.code == 200


async def test_a_large_upload_in_chunks_arrives_whole(api, jp_root_dir):
    parts = [bytes([i]) * 1000 for i in range(1, 5)]
    for i, part in enumerate(parts):
        chunk = -1 if i == len(parts) - 1 else i + 1
        body = {
            "type": "file",
            "format": "base64",
            "chunk": chunk,
            "content": base64.b64encode(part).decode(),
        }
        r = await api("PUT", "big.bin", body)
        assert r.code in (200, 201), r.message
    assert (jp_root_dir / "big.bin").read_bytes() == b"".join(parts)
    assert (await api("GET", "big.bin", content="0")).body["size"] == 4000


def _with_html_output(trusted: bool, source: str = "print('hi')") -> dict:
    body = notebook_body(source)
    cell = body["content"]["cells"][0]
    cell["metadata"] = {"trusted": trusted}
    cell["outputs"] = [
        {"output_type": "display_data", "data": {"text/html": "<b>hi</b>"}, "metadata": {}}
    ]
    return body


async def _opens_trusted(api, path: str) -> bool:
    return (await api("GET", path)).body["content"]["cells"][0]["metadata"]["trusted"]


async def test_a_notebook_can_be_trusted(api):
    await api("PUT", "nb.ipynb", _with_html_output(trusted=False, source="given"))
    assert not await _opens_trusted(api, "nb.ipynb")
    assert (await api("POST", "nb.ipynb/trust")).code == 201
    assert await _opens_trusted(api, "nb.ipynb")


async def test_a_notebook_saved_with_trusted_outputs_opens_trusted_and_others_do_not(api):
    await api("PUT", "mine.ipynb", _with_html_output(trusted=True))
    assert await _opens_trusted(api, "mine.ipynb")
    # the same outputs of other code: who knows what they do
    await api("PUT", "theirs.ipynb", _with_html_output(trusted=False, source="theirs"))
    assert not await _opens_trusted(api, "theirs.ipynb")


async def test_saving_without_type_or_content_is_a_400(api):
    await api("PUT", "x.txt", text_body("x"))
    assert (await api("PUT", "x.txt", {"content": "x"})).code == 400
    assert (await api("PUT", "x.txt", {"type": "file"})).code == 400
    assert (await api("PUT", "x.txt", {"type": "file", "content": "x"})).code == 400


async def test_broken_notebooks_are_a_400_and_stay_on_disk(api, jp_root_dir):
    (jp_root_dir / "broken.ipynb").write_text("{not json")
    r = await api("GET", "broken.ipynb")
    assert r.code == 400
    assert "Unreadable Notebook" in r.message
    assert (jp_root_dir / "broken.ipynb").read_text() == "{not json"


async def test_files_endpoint_serves_raw_bytes(jp_fetch, api):
    await api("PUT", "data.csv", text_body("a,b\n1,2\n"))
    r = await jp_fetch("files", "data.csv")
    assert r.code == 200 and r.body == b"a,b\n1,2\n"


async def test_server_info_lists_the_extension(jp_fetch, manager, backend):
    r = await jp_fetch("swan", "api", "info")
    info = json.loads(r.body)
    assert info["version"]
    expected = {"stock": "unknown"}.get(manager, "posix" if backend == "posix" else "webdav")
    assert info["storage"]["kind"] == expected
    # no spawner said whether code sees the files: no notice
    assert info["files_for_code"] == {"mounted": None, "notice": "", "refused_uploads": False}
    # streamed uploads need our manager; with the stock one the browser uploads as JupyterLab does
    assert (info["upload"] is None) == (manager == "stock")
    r = await jp_fetch("swan", "api", "upload", "x.bin", method="PUT", body=b"x", raise_error=False)
    assert r.code == (404 if manager == "stock" else 201)


async def test_pages_say_whether_deletes_go_to_a_trash_before_jupyterlab_starts(
    jp_serverapp, manager, backend
):
    """JupyterLab names its delete command ("Move to Trash" or "Delete") once, from the page's
    options: the answer must be in the page, not only in /swan/api/info, which comes later."""
    options = jp_serverapp.web_app.settings.setdefault("page_config_data", {})
    if manager == "stock":
        return
    for _ in range(200):
        if "delete_to_trash" in options:
            break
        await asyncio.sleep(0.05)
    expected = backend in ("posix", *SERVER_HISTORY)
    assert options["delete_to_trash"] is expected
    assert options["delete_to_trash"] is await jp_serverapp.contents_manager.has_trash()


async def test_server_info_says_when_code_sees_only_the_local_folder(jp_fetch, monkeypatch):
    monkeypatch.setenv("SWAN_FILES_MOUNTED", "0")
    info = json.loads((await jp_fetch("swan", "api", "info")).body)
    assert info["files_for_code"]["mounted"] is False
    assert "Code sees only this server's local folder" in info["files_for_code"]["notice"]
    assert info["files_for_code"]["refused_uploads"] is False  # nothing to watch
    monkeypatch.setenv("SWAN_FILES_MOUNTED", "1")
    info = json.loads((await jp_fetch("swan", "api", "info")).body)
    assert info["files_for_code"] == {"mounted": True, "notice": "", "refused_uploads": False}


async def test_the_server_lists_the_uploads_the_storage_refuses_as_the_hub_wrote_them(
    jp_fetch, jp_serverapp, monkeypatch, tmp_path
):
    """The hub (or the pod's sidecar) lists in a file the files code wrote that the storage
    refuses (swan_hub.mounts.StorageMounts.write_status); the server passes the list on, and
    an absent, broken or strange file lists nothing rather than failing."""

    async def listed() -> dict:
        answer = await jp_fetch("swan", "api", "refused-uploads")
        assert answer.headers["Cache-Control"] == "no-store"
        return json.loads(answer.body)

    async def refused() -> list:
        return (await listed())["refused"]

    settings = jp_serverapp.web_app.settings
    settings.pop("api_last_activity", None)
    assert await listed() == {"refused": [], "cut": []}  # no mount: nothing to list
    # JupyterLab reads it every few seconds: not a sign of work that would keep the server from
    # being culled as idle
    assert "api_last_activity" not in settings
    status = tmp_path / "mount-status" / "status.json"
    monkeypatch.setenv("SWAN_FILES_MOUNTED", "1")
    monkeypatch.setenv("SWAN_MOUNT_STATUS", str(status))
    info = json.loads((await jp_fetch("swan", "api", "info")).body)
    assert info["files_for_code"]["refused_uploads"] is True
    assert await refused() == []  # not written yet
    status.parent.mkdir()
    item = {"path": "Shared/week1/results.bin", "why": "Not enough space (507)"}
    status.write_text(json.dumps({"refused": [item]}))  # as a hub of before cut files were listed
    assert await listed() == {"refused": [item], "cut": []}
    cut = {"path": "results.csv"}
    status.write_text(json.dumps({"refused": [item], "cut": [cut]}))
    assert await listed() == {"refused": [item], "cut": [cut]}
    for broken in (
        "{",
        "[]",
        '{"refused": 3, "cut": {}}',
        '{"refused": [1, {"path": 2, "why": "x"}, {"path": "a"}], "cut": [2, {"path": 3}]}',
        "x" * (2 << 20),
    ):
        status.write_text(broken)
        assert await listed() == {"refused": [], "cut": []}
    status.write_bytes(b"\xff\xfe")
    assert await refused() == []
