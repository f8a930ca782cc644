"""Versions (Jupyter's checkpoints) and the trash through the REST API, on a real folder and on
plain WebDAV servers (which keep no versions and have no trash: ours are used, or none).

Nothing of either may land in the synced space.
"""

from __future__ import annotations

import json
import os

import pytest
from conftest import SERVER_HISTORY, notebook_body, swan_on_every_storage, text_body
from harness.dav_servers import raw_client

manager, backend = swan_on_every_storage()


def source(reply) -> str:
    return reply.body["content"]["cells"][0]["source"]


async def test_each_save_that_changes_content_makes_a_version(api, swan_api, jp_root_dir, backend):
    for text in ("one", "two", "two", "three"):
        await api("PUT", "nb.ipynb", notebook_body(text))
    code, listed = await swan_api("GET", "versions", path="nb.ipynb")
    assert code == 200 and listed["path"] == "nb.ipynb"
    if backend in SERVER_HISTORY:
        # the server keeps each content a save replaced: one, two and two again
        assert [v["source"] for v in listed["versions"]] == ["server"] * 3
    else:
        # our snapshots of each content saved, the current one included: one, two, three
        assert [v["source"] for v in listed["versions"]] == ["swan"] * 3
    times = [v["last_modified"] for v in listed["versions"]]
    assert times == sorted(times, reverse=True)
    checkpoints = (await api("GET", "nb.ipynb/checkpoints")).body
    if backend in SERVER_HISTORY:
        # the current content comes first: the checkpoint the server will keep at the next write
        current, *checkpoints = checkpoints
        assert current["id"].startswith("server")
    assert [c["id"] for c in checkpoints] == [v["id"] for v in listed["versions"]]
    assert sorted(p.name for p in jp_root_dir.iterdir()) == ["nb.ipynb"]


async def test_any_version_can_be_restored_and_the_replaced_one_is_kept(api, swan_api, backend):
    for text in ("first", "second", "third"):
        await api("PUT", "nb.ipynb", notebook_body(text))
    _, listed = await swan_api("GET", "versions", path="nb.ipynb")
    oldest = listed["versions"][-1]["id"]
    code, model = await swan_api("POST", "versions/restore", {"path": "nb.ipynb", "id": oldest})
    assert code == 200 and model["path"] == "nb.ipynb" and model["etag"]
    assert source(await api("GET", "nb.ipynb")) == "first"
    _, after = await swan_api("GET", "versions", path="nb.ipynb")
    if backend in SERVER_HISTORY:
        # the server moved "first" back in place and kept what it replaced: third, second
        assert len(after["versions"]) == 2
        replaced = after["versions"][0]["id"]
    else:
        # snapshots of first, second, third, and of first again as the current content
        assert len(after["versions"]) == 4
        replaced = after["versions"][1]["id"]
    # "third" (what the restore replaced) is still there to go back to
    await swan_api("POST", "versions/restore", {"path": "nb.ipynb", "id": replaced})
    assert source(await api("GET", "nb.ipynb")) == "third"


async def test_a_file_changed_by_another_writer_keeps_that_content_as_a_version(
    api, swan_api, jp_root_dir, backend, request
):
    await api("PUT", "notes.txt", text_body("ours"))
    if backend in SERVER_HISTORY:
        # the other writers of such a storage write through it, as its sync clients do
        server, (_, url) = (
            request.getfixturevalue("dav_server"),
            request.getfixturevalue("dav_space"),
        )
        with raw_client(server) as client:
            client.put(url + "notes.txt", content=b"the sync client's edit").raise_for_status()
    else:
        (jp_root_dir / "notes.txt").write_text("the sync client's edit")
    _, listed = await swan_api("GET", "versions", path="notes.txt")
    await swan_api(
        "POST", "versions/restore", {"path": "notes.txt", "id": listed["versions"][0]["id"]}
    )
    assert (jp_root_dir / "notes.txt").read_text() == "ours"
    _, after = await swan_api("GET", "versions", path="notes.txt")
    contents = []
    for v in after["versions"]:
        await swan_api("POST", "versions/restore", {"path": "notes.txt", "id": v["id"]})
        contents.append((jp_root_dir / "notes.txt").read_text())
    assert "the sync client's edit" in contents


async def test_a_checkpoint_of_a_new_file_can_be_restored_after_later_saves(
    api, swan_api, versions_dir, backend
):
    await api("PUT", "nb.ipynb", notebook_body("first"))
    # JupyterLab creates a checkpoint when it opens a file that has none, and at every save
    listed = (await api("GET", "nb.ipynb/checkpoints")).body
    made = await api("POST", "nb.ipynb/checkpoints")
    assert made.code == 201
    if backend in SERVER_HISTORY:
        # the file's current content is its checkpoint: listed already, nothing copied aside
        assert [c["id"] for c in listed] == [made.body["id"]]
        assert not list(versions_dir.rglob("swan-*"))
    # of the same size, likely within the same second: told apart by the etag they had
    await api("PUT", "nb.ipynb", notebook_body("secnd"))
    await api("PUT", "nb.ipynb", notebook_body("third"))
    restored = await api("POST", f"nb.ipynb/checkpoints/{made.body['id']}")
    assert restored.code == 204
    assert source(await api("GET", "nb.ipynb")) == "first"
    # and "third", which the restore replaced, is a version to go back to
    _, after = await swan_api("GET", "versions", path="nb.ipynb")
    contents = []
    for v in after["versions"]:
        await swan_api("POST", "versions/restore", {"path": "nb.ipynb", "id": v["id"]})
        contents.append(source(await api("GET", "nb.ipynb")))
    assert "third" in contents


async def test_restoring_the_checkpoint_of_the_current_content_changes_nothing(api, backend):
    saved = await api("PUT", "nb.ipynb", notebook_body("only"))
    made = await api("POST", "nb.ipynb/checkpoints")
    assert (await api("POST", f"nb.ipynb/checkpoints/{made.body['id']}")).code == 204
    after = await api("GET", "nb.ipynb")
    assert source(after) == "only"
    if backend in SERVER_HISTORY:
        assert after.body["etag"] == saved.body["etag"], "nothing was written"


async def test_bad_version_requests_are_clear_errors(api, swan_api):
    await api("PUT", "a.txt", text_body("a"))
    await api("PUT", "d", {"type": "directory"})
    assert (await swan_api("GET", "versions", path="missing.txt"))[0] == 404
    assert (await swan_api("GET", "versions", path="d"))[0] == 400
    assert (await swan_api("GET", "versions", path="../x"))[0] == 400
    code, body = await swan_api("POST", "versions/restore", {"path": "a.txt", "id": "swan-nope"})
    assert code == 404 and "version" in body["message"]
    assert (await swan_api("POST", "versions/restore", {"path": "a.txt"}))[0] == 400
    assert (await swan_api("POST", "versions/restore", ["a.txt"]))[0] == 400


async def test_versions_are_capped_at_the_configured_count(tmp_path):
    from swan_contents import SwanContentsManager

    space = tmp_path / "space"
    space.mkdir()
    cm = SwanContentsManager(
        root_dir=str(space), versions_dir=str(tmp_path / "v"), versions_max_count=3
    )
    for i in range(6):
        await cm.save(text_body(f"v{i}" * (i + 1)), "a.txt")
    versions = await cm.list_versions("a.txt")
    assert len(versions) == 3
    await cm.restore_version("a.txt", versions[-1].id)
    assert (space / "a.txt").read_text() == "v3" * 4


async def test_old_versions_age_out_but_the_newest_stays(tmp_path):
    import asyncio

    from swan_contents import SwanContentsManager

    space = tmp_path / "space"
    space.mkdir()
    cm = SwanContentsManager(
        root_dir=str(space), versions_dir=str(tmp_path / "v"), versions_max_age_days=0.5 / 86400
    )
    await cm.save(text_body("old"), "a.txt")
    await asyncio.sleep(0.6)
    await cm.save(text_body("newer"), "a.txt")
    await cm.save(text_body("newest"), "a.txt")
    versions = await cm.list_versions("a.txt")
    assert len(versions) == 2


# EOS keeps .sys.v#. folders on its FUSE mount, which is a POSIX storage
@pytest.mark.parametrize("backend", ["posix"])
async def test_eos_version_folders_are_listed_and_restorable_but_not_deletable(
    api, swan_api, jp_root_dir
):
    await api("PUT", "nb.ipynb", notebook_body("current"))
    eos = jp_root_dir / ".sys.v#.nb.ipynb"
    eos.mkdir()
    (eos / "1700000000.0001a2b3").write_text(json.dumps(notebook_body("from eos")["content"]))
    os.utime(eos / "1700000000.0001a2b3", (1700000000, 1700000000))
    _, listed = await swan_api("GET", "versions", path="nb.ipynb")
    eos_versions = [v for v in listed["versions"] if v["source"] == "eos"]
    assert len(eos_versions) == 1 and eos_versions[0]["read_only"]
    version_id = eos_versions[0]["id"]
    await swan_api("POST", "versions/restore", {"path": "nb.ipynb", "id": version_id})
    assert source(await api("GET", "nb.ipynb")) == "from eos"
    assert (await api("DELETE", f"nb.ipynb/checkpoints/{version_id}")).code == 403
    assert (eos / "1700000000.0001a2b3").exists()
    assert [m["name"] for m in (await api("GET", "")).body["content"]] == ["nb.ipynb"]


async def test_deleted_entries_go_to_the_trash_and_come_back(api, swan_api, jp_root_dir, backend):
    await api("PUT", "d", {"type": "directory"})
    await api("PUT", "d/nb.ipynb", notebook_body("inside"))
    await api("PUT", "top.txt", text_body("top"))
    assert (await api("DELETE", "d")).code == 204
    assert (await api("DELETE", "top.txt")).code == 204
    code, trash = await swan_api("GET", "trash")
    assert code == 200
    if backend != "posix" and backend not in SERVER_HISTORY:
        # a plain WebDAV server has no trash bin: deleting there is for good, and we say so
        assert trash == {"supported": False, "items": []}
        return
    assert trash["supported"] and [i["path"] for i in trash["items"]] == ["top.txt", "d"]
    assert [i["type"] for i in trash["items"]] == ["file", "directory"]
    assert list(jp_root_dir.iterdir()) == []
    folder = trash["items"][1]
    code, model = await swan_api("POST", "trash/restore", {"id": folder["id"]})
    assert code == 200 and model["path"] == "d" and model["type"] == "directory"
    assert source(await api("GET", "d/nb.ipynb")) == "inside"
    await api("PUT", "top.txt", text_body("a new file of that name"))
    code, body = await swan_api("POST", "trash/restore", {"id": trash["items"][0]["id"]})
    assert code == 409
    assert (jp_root_dir / "top.txt").read_text() == "a new file of that name"
    code, model = await swan_api(
        "POST", "trash/restore", {"id": trash["items"][0]["id"], "path": "top (restored).txt"}
    )
    if backend in SERVER_HISTORY:
        # Nextcloud's protocol restores an entry where it was only: make room, then restore
        assert code == 400 and "where it was only" in model["message"]
        assert (await api("PATCH", "top.txt", {"path": "top (new).txt"})).code == 200
        code, model = await swan_api("POST", "trash/restore", {"id": trash["items"][0]["id"]})
        assert code == 200 and (jp_root_dir / "top.txt").read_text() == "top"
    else:
        assert code == 200 and (jp_root_dir / "top (restored).txt").read_text() == "top"
    assert (await swan_api("GET", "trash"))[1]["items"] == []


async def test_restoring_what_is_not_in_the_trash_is_a_404(swan_api, backend):
    for item in ("nope", "../../etc", ".hidden", ""):
        code, _ = await swan_api("POST", "trash/restore", {"id": item})
        assert code in (400, 404), item


@pytest.mark.parametrize("backend", ["posix"])
async def test_the_trash_lives_outside_the_space(api, jp_root_dir, versions_dir):
    await api("PUT", "a.txt", text_body("a"))
    await api("DELETE", "a.txt")
    assert list(jp_root_dir.iterdir()) == []
    (item,) = (versions_dir / "trash").iterdir()
    assert (item / "entry").read_text() == "a"
