"""Create-only saves through the REST API: a save that must not replace an existing file
(`If-None-Match: *`, or the model's `if_none_match: "*"`) creates the file, or finds one there
and leaves it untouched with a 409 that carries its etag.

They run on every storage: POSIX publishes with a rename that refuses to replace
(renameat2 RENAME_NOREPLACE), WebDAV sends `PUT` with `If-None-Match: *`.
"""

from __future__ import annotations

import asyncio
import json
import os

import pytest
from conftest import (
    chunk_body,
    notebook_body,
    put_with_headers,
    swan_on_every_storage,
    text_body,
)

from swan_contents.storage import AlreadyExists, PosixStorage

manager, backend = swan_on_every_storage()


async def test_a_create_only_save_creates_a_new_file(api, jp_root_dir):
    created = await api("PUT", "new.ipynb", {**notebook_body("mine"), "if_none_match": "*"})
    assert created.code == 201
    assert created.body["etag"] and created.body["path"] == "new.ipynb"
    assert "mine" in (jp_root_dir / "new.ipynb").read_text()


async def test_a_create_only_save_over_an_existing_file_is_a_409_with_its_etag(api, jp_root_dir):
    theirs = await api("PUT", "data.txt", text_body("their file"))
    refused = await api("PUT", "data.txt", {**text_body("mine"), "if_none_match": "*"})
    assert refused.code == 409
    assert refused.body["etag"] == theirs.body["etag"]
    assert "exists already" in refused.message
    assert (jp_root_dir / "data.txt").read_text() == "their file"


async def test_the_if_none_match_header_asks_for_the_same(jp_fetch, api, jp_root_dir):
    r = await put_with_headers(jp_fetch, "a.txt", text_body("first"), {"If-None-Match": "*"})
    assert r.code == 201
    r = await put_with_headers(jp_fetch, "a.txt", text_body("second"), {"If-None-Match": "*"})
    assert r.code == 409
    assert json.loads(r.body)["etag"] == (await api("GET", "a.txt")).body["etag"]
    assert (jp_root_dir / "a.txt").read_text() == "first"


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        ({"if_none_match": "yes"}, {}),
        ({"if_none_match": "*", "etag": '"1"'}, {}),
        ({}, {"If-None-Match": '"1"'}),
        ({"etag": '"1"'}, {"If-None-Match": "*"}),
    ],
)
async def test_a_malformed_or_contradictory_create_only_save_is_a_400(
    jp_fetch, api, jp_root_dir, body, headers
):
    r = await put_with_headers(jp_fetch, "b.txt", {**text_body("b"), **body}, headers)
    assert r.code == 400
    assert not (jp_root_dir / "b.txt").exists()


async def test_a_create_only_save_may_go_to_a_conflict_copy(api, jp_root_dir):
    await api("PUT", "nb.ipynb", notebook_body("theirs"))
    body = {**notebook_body("mine"), "if_none_match": "*", "on_conflict": "copy"}
    copied = await api("PUT", "nb.ipynb", body)
    assert copied.code == 200
    assert copied.body["name"].startswith("nb (")
    assert "theirs" in (jp_root_dir / "nb.ipynb").read_text()
    assert "mine" in (jp_root_dir / copied.body["path"]).read_text()


async def test_a_create_only_folder_save_is_a_400(api):
    r = await api("PUT", "d", {"type": "directory", "if_none_match": "*"})
    assert r.code == 400


async def test_the_last_part_of_a_create_only_upload_keeps_the_parts_when_refused(api, jp_root_dir):
    part = b"x" * 1024
    for chunk in (1, 2):
        assert (await api("PUT", "big.bin", chunk_body(chunk, part))).code in (200, 201)
    # someone else creates the file before the last part arrives
    (jp_root_dir / "big.bin").write_bytes(b"theirs")
    last = {**chunk_body(-1, part), "if_none_match": "*"}
    refused = await api("PUT", "big.bin", last)
    assert refused.code == 409 and refused.body["etag"]
    assert (jp_root_dir / "big.bin").read_bytes() == b"theirs"
    # sent again without the condition, the upload publishes all three parts
    assert (await api("PUT", "big.bin", chunk_body(-1, part))).code in (200, 201)
    assert (jp_root_dir / "big.bin").read_bytes() == part * 3


async def test_of_many_create_only_saves_at_once_exactly_one_creates_the_file(api, jp_root_dir):
    bodies = [{**text_body(f"writer {i}"), "if_none_match": "*"} for i in range(8)]
    replies = await asyncio.gather(*(api("PUT", "race.txt", b) for b in bodies))
    assert sorted(r.code for r in replies) == [201] + [409] * 7
    (winner,) = [i for i, r in enumerate(replies) if r.code == 201]
    assert (jp_root_dir / "race.txt").read_text() == f"writer {winner}"


class FileAppearsBeforePublish(PosixStorage):
    """A POSIX storage where another program creates the target in the instant between the
    driver's own check and its rename, the window no check can close."""

    async def write(self, path, data, *, if_match=None, create_only=False):
        original = self._publish

        def publish(fd, tmp, target, *args):
            with open(target, "w") as f:
                f.write("the other program's file")
            return original(fd, tmp, target, *args)

        self._publish = publish
        try:
            return await super().write(path, data, if_match=if_match, create_only=create_only)
        finally:
            del self._publish


async def test_on_posix_a_file_created_just_before_the_rename_is_not_replaced(tmp_path):
    storage = FileAppearsBeforePublish(str(tmp_path))
    with pytest.raises(AlreadyExists) as raised:
        await storage.write("x.txt", b"mine", create_only=True)
    assert raised.value.current_etag
    assert (tmp_path / "x.txt").read_text() == "the other program's file"
    assert [n for n in os.listdir(tmp_path) if n != "x.txt"] == [], "no temp file is left"
