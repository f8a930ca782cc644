"""What interrupted operations leave behind is swept, and what comes back from the trash brings
its versions: temp files of killed saves and spools of abandoned uploads (a real folder and real
WebDAV servers), conditional uploads in parts on every storage, versions of trashed files.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest
from conftest import chunk_body, swan_on_every_storage, text_body

from swan_contents import SwanContentsManager
from swan_contents.storage import PosixStorage, WebDAVStorage
from swan_contents.storage.base import NotFound
from swan_contents.storage.ondisk import TEMP_PREFIX

manager, backend = swan_on_every_storage()

SEVEN_HOURS_AGO = time.time() - 7 * 3600


def age(path, when: float = SEVEN_HOURS_AGO) -> None:
    os.utime(path, (when, when))


def swan_on(tmp_path) -> SwanContentsManager:
    space = tmp_path / "space"
    space.mkdir(exist_ok=True)
    return SwanContentsManager(root_dir=str(space), versions_dir=str(tmp_path / "v"))


async def test_a_killed_saves_temp_file_is_swept_once_old_and_not_before(space, tmp_path):
    storage = PosixStorage(str(space), journal=str(tmp_path / "journal"))
    await storage.mkdir("d")
    await storage.write("d/a.txt", b"saved")
    # what a save killed between its write and its rename leaves, an hour or seven ago
    d = space / "d"
    stale, recent = d / f"{TEMP_PREFIX}0123456789abcdef.part", d / f"{TEMP_PREFIX}fedcba.part"
    stale.write_text("half a notebook")
    recent.write_text("a save going on elsewhere")
    age(stale)
    age(recent, time.time() - 3600)

    assert storage.sweep_leftovers() == 1
    assert not stale.exists() and recent.exists()
    assert (d / "a.txt").read_text() == "saved"


async def test_a_new_server_sweeps_where_an_earlier_one_left_temp_files(tmp_path):
    first = swan_on(tmp_path)
    await first.save({"type": "directory"}, "deep")
    await first.save(text_body("saved"), "deep/a.txt")
    stale = tmp_path / "space" / "deep" / f"{TEMP_PREFIX}0123456789abcdef.part"
    stale.write_text("left by a server that was killed")
    age(stale)
    untouched = tmp_path / "space" / f"{TEMP_PREFIX}not-ours.part"
    untouched.write_text("in a folder no save of ours wrote to")
    age(untouched)

    second = swan_on(tmp_path)  # the same space and versions folder, after a restart
    await second.get("")
    for _ in range(100):
        if not stale.exists():
            break
        await asyncio.sleep(0.05)
    assert not stale.exists()
    # only folders where temp files were made are visited, never the whole tree
    assert untouched.exists()


async def test_folders_noted_while_sweeps_rewrite_the_journal_all_stay_in_it(tmp_path):
    # a sweep rewrites the journal while saves note new folders in it (in worker threads of
    # their own): no folder may be lost between the two (the race is narrow: many short rounds)
    (tmp_path / "space").mkdir()
    for attempt in range(200):
        journal = str(tmp_path / f"journal-{attempt}")
        storage = PosixStorage(str(tmp_path / "space"), journal=journal)
        folders = [os.path.join(storage.root, f"d{i}") for i in range(10)]
        stop = threading.Event()

        def sweep_again_and_again(storage=storage, stop=stop) -> None:
            while not stop.is_set():
                storage.sweep_leftovers()

        sweeper = threading.Thread(target=sweep_again_and_again)
        sweeper.start()
        try:
            for folder in folders:
                storage._note_temp_folder(folder)  # what a save's temp file in `folder` does
        finally:
            stop.set()
            sweeper.join()
        restarted = PosixStorage(str(tmp_path / "space"), journal=journal)
        assert restarted._journaled_folders() == set(folders), f"round {attempt}"


async def test_a_temp_file_in_use_is_never_swept_however_old(tmp_path):
    (tmp_path / "space").mkdir()
    storage = PosixStorage(str(tmp_path / "space"), journal=str(tmp_path / "journal"))
    with storage._temp_in(storage.root) as tmp:
        with open(tmp, "w") as f:
            f.write("a save that is slow")
        age(tmp)
        assert storage.sweep_leftovers() == 0
        assert os.path.exists(tmp)
    assert storage.sweep_leftovers() == 1


async def test_an_abandoned_upload_is_swept_without_waiting_for_another(space, tmp_path):
    storage = PosixStorage(str(space), journal=str(tmp_path / "journal"))
    await storage.write_chunk("big.bin", 1, b"x" * 1024)
    (spool,) = space.glob(f"{TEMP_PREFIX}upload-*")
    assert storage.sweep_leftovers() == 0
    age(spool)
    assert storage.sweep_leftovers() == 1
    with pytest.raises(NotFound):
        await storage.write_chunk("big.bin", -1, b"y")
    assert not (space / "big.bin").exists()


@pytest.mark.parametrize("backend", ["wsgidav"])
async def test_an_abandoned_webdav_upload_spool_is_swept(tmp_path, dav_space):
    storage = WebDAVStorage(url=dav_space[1], spool_dir=str(tmp_path / "spool"))
    try:
        await storage.write_chunk("big.bin", 1, b"x" * 1024)
        (spool,) = (tmp_path / "spool").glob("*.part")
        assert storage.sweep_leftovers() == 0
        age(spool)
        assert storage.sweep_leftovers() == 1
        assert not spool.exists()
    finally:
        await storage.close()


async def test_the_last_part_publishes_when_the_stored_version_is_the_one_named(api, jp_root_dir):
    etag = (await api("PUT", "big.bin", text_body("old"))).body["etag"]
    assert (await api("PUT", "big.bin", chunk_body(1, b"a" * 1000))).code in (200, 201)
    last = await api("PUT", "big.bin", {**chunk_body(-1, b"b" * 10), "etag": etag})
    assert last.code in (200, 201), last.message
    assert (jp_root_dir / "big.bin").read_bytes() == b"a" * 1000 + b"b" * 10
    assert last.body["etag"] and last.body["etag"] != etag


async def test_a_file_changed_meanwhile_refuses_the_last_part_and_keeps_the_others(
    api, jp_root_dir
):
    etag = (await api("PUT", "big.bin", text_body("old"))).body["etag"]
    await api("PUT", "big.bin", chunk_body(1, b"a" * 1000))
    await api("PUT", "big.bin", chunk_body(2, b"b" * 1000))
    (jp_root_dir / "big.bin").write_text("the sync client's edit, longer than before")

    refused = await api("PUT", "big.bin", {**chunk_body(-1, b"c" * 10), "etag": etag})
    assert refused.code == 409
    current = refused.body["etag"]
    assert current and current != etag
    assert (jp_root_dir / "big.bin").read_text().startswith("the sync client's edit")

    # a deliberate overwrite: the last part again, based on what is stored now
    again = await api("PUT", "big.bin", {**chunk_body(-1, b"c" * 10), "etag": current})
    assert again.code in (200, 201), again.message
    assert (jp_root_dir / "big.bin").read_bytes() == b"a" * 1000 + b"b" * 1000 + b"c" * 10


async def test_an_upload_in_parts_cannot_ask_for_a_conflict_copy(api):
    body = {**chunk_body(1, b"a"), "etag": '"x"', "on_conflict": "copy"}
    reply = await api("PUT", "big.bin", body)
    assert reply.code == 400 and "conflict copy" in reply.message


class TestVersionsComeBackFromTheTrash:
    async def test_a_restored_file_has_its_versions_again(self, tmp_path):
        cm = swan_on(tmp_path)
        for text in ("one", "two", "three"):
            await cm.save(text_body(text), "notes.txt")
        before = [v.id for v in await cm.list_versions("notes.txt")]
        assert len(before) == 3

        await cm.delete("notes.txt")
        assert not (tmp_path / "space" / "notes.txt").exists()
        (item,) = (await cm.list_trash())["items"]
        await cm.restore_from_trash(item.id)

        assert [v.id for v in await cm.list_versions("notes.txt")] == before
        await cm.restore_version("notes.txt", before[-1])
        assert (tmp_path / "space" / "notes.txt").read_text() == "one"

    async def test_files_of_a_restored_folder_have_their_versions_at_the_new_place(self, tmp_path):
        cm = swan_on(tmp_path)
        await cm.save({"type": "directory"}, "project")
        for text in ("draft", "final"):
            await cm.save(text_body(text), "project/report.txt")
        await cm.delete("project")
        (item,) = (await cm.list_trash())["items"]
        await cm.restore_from_trash(item.id, "project (restored)")

        versions = await cm.list_versions("project (restored)/report.txt")
        assert len(versions) == 2
        await cm.restore_version("project (restored)/report.txt", versions[-1].id)
        assert (tmp_path / "space" / "project (restored)" / "report.txt").read_text() == "draft"

    async def test_a_new_file_of_the_same_name_does_not_inherit_the_deleted_ones_versions(
        self, tmp_path
    ):
        cm = swan_on(tmp_path)
        await cm.save(text_body("old"), "notes.txt")
        await cm.delete("notes.txt")
        await cm.save(text_body("new"), "notes.txt")
        assert len(await cm.list_versions("notes.txt")) == 1
