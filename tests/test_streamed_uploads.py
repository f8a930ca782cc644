"""Streamed uploads, PUT /swan/api/upload/<path> with the file as the raw body, on a folder and
on each real WebDAV server: the bytes arrive whole, the answers are those of a save through the
contents API (model, 201/200, conditions, refusals), and a refusal leaves the stored file as it
was. Cut-off bodies and the limits of the connection are in test_streamed_upload_sockets.py."""

from __future__ import annotations

import json
import os

import pytest
from conftest import Reply, swan_on_every_storage

from swan_contents.uploads import PART_SIZE

manager, backend = swan_on_every_storage()


@pytest.fixture
def upload(jp_fetch):
    """`await upload(path, data, **headers)`: the reply of PUT /swan/api/upload/<path>."""

    async def call(path: str, data: bytes, **headers: str) -> Reply:
        r = await jp_fetch(
            "swan",
            "api",
            "upload",
            *path.split("/"),
            method="PUT",
            body=data,
            headers={k.replace("_", "-"): v for k, v in headers.items()},
            raise_error=False,
        )
        return Reply.of(r)

    return call


async def test_a_file_of_several_parts_arrives_byte_for_byte(upload, api, jp_root_dir):
    data = os.urandom(2 * PART_SIZE + 12345)
    r = await upload("big.bin", data)
    assert r.code == 201, r.body
    assert r.body["path"] == "big.bin" and r.body["type"] == "file"
    assert r.body["size"] == len(data) and r.body["content"] is None and r.body["etag"]
    assert (jp_root_dir / "big.bin").read_bytes() == data
    assert (await api("GET", "big.bin", content="0")).body["etag"] == r.body["etag"]
    assert sorted(os.listdir(jp_root_dir)) == ["big.bin"]


async def test_a_file_replaced_by_an_upload_answers_200(upload, jp_root_dir):
    assert (await upload("a.txt", b"first")).code == 201
    r = await upload("a.txt", b"second, longer")
    assert r.code == 200
    assert (jp_root_dir / "a.txt").read_bytes() == b"second, longer"


async def test_an_empty_file_and_a_body_of_exactly_one_part_are_uploaded(upload, jp_root_dir):
    assert (await upload("empty.txt", b"")).code == 201
    assert (jp_root_dir / "empty.txt").read_bytes() == b""
    data = os.urandom(PART_SIZE)
    assert (await upload("one-part.bin", data)).code == 201
    assert (jp_root_dir / "one-part.bin").read_bytes() == data


async def test_an_upload_into_a_subfolder_with_an_unusual_name(upload, api, jp_root_dir):
    await api("PUT", "sub dir", {"type": "directory"})
    r = await upload("sub dir/ünï cödé #1.txt", b"x")
    assert r.code == 201, r.body
    assert r.body["path"] == "sub dir/ünï cödé #1.txt"
    assert (jp_root_dir / "sub dir" / "ünï cödé #1.txt").read_bytes() == b"x"


async def test_if_match_with_the_etag_seen_replaces_and_a_stale_one_is_a_409(upload, jp_root_dir):
    seen = (await upload("data.bin", b"v1")).body["etag"]
    theirs = await upload("data.bin", b"v2 from a sync client")
    stale = await upload("data.bin", os.urandom(PART_SIZE + 10), If_Match=seen)
    assert stale.code == 409
    assert stale.body["etag"] == theirs.body["etag"]
    assert "unchanged" in stale.body["message"]
    assert (jp_root_dir / "data.bin").read_bytes() == b"v2 from a sync client"
    data = os.urandom(PART_SIZE + 10)
    r = await upload("data.bin", data, If_Match=theirs.body["etag"])
    assert r.code == 200
    assert (jp_root_dir / "data.bin").read_bytes() == data


async def test_if_none_match_creates_only(upload, jp_root_dir):
    assert (await upload("new.txt", b"mine", If_None_Match="*")).code == 201
    refused = await upload("new.txt", b"again", If_None_Match="*")
    assert refused.code == 409
    assert "exists already" in refused.body["message"]
    assert (jp_root_dir / "new.txt").read_bytes() == b"mine"


@pytest.mark.parametrize(
    "headers",
    [{"If_Match": "*"}, {"If_Match": '"a", "b"'}, {"If_None_Match": '"x"'}],
)
async def test_a_malformed_condition_is_a_400(upload, jp_root_dir, headers):
    r = await upload("c.txt", b"c", **headers)
    assert r.code == 400
    assert not (jp_root_dir / "c.txt").exists()


@pytest.mark.parametrize(
    ("path", "code"),
    [
        (".hidden", 400),
        ("folder/.hidden/x.txt", 400),
        ("folder", 400),
        ("no-such-folder/x.txt", 404),
        ("file.txt/x.txt", 400),
    ],
)
async def test_refusals_answer_as_the_contents_api_and_change_nothing(
    upload, api, jp_root_dir, path, code
):
    await api("PUT", "folder", {"type": "directory"})
    await upload("file.txt", b"kept")
    before = sorted(os.listdir(jp_root_dir))
    r = await upload(path, os.urandom(PART_SIZE + 1))
    assert r.code == code, r.body
    assert r.body["message"]
    assert sorted(os.listdir(jp_root_dir)) == before
    assert (jp_root_dir / "file.txt").read_bytes() == b"kept"


async def test_a_traversal_is_refused_before_the_storage(raw_fetch, jp_root_dir):
    for spelling in ("%2e%2e/escape.txt", "a/%2E%2E/%2e%2e/escape.txt", "x%00y"):
        r = await raw_fetch("PUT", f"/swan/api/upload/{spelling}", body="evil")
        assert r.code == 400, (spelling, r.body)
    assert not (jp_root_dir.parent / "escape.txt").exists()
    assert os.listdir(jp_root_dir) == []


async def test_an_upload_runs_the_save_hooks_and_emits_a_save_event(
    upload, jp_serverapp, jp_root_dir
):
    cm = jp_serverapp.contents_manager
    seen: list[tuple[str, object]] = []
    cm.register_pre_save_hook(lambda model, path, **kw: seen.append(("pre", path)))
    cm.register_post_save_hook(lambda model, os_path, **kw: seen.append(("post", model["path"])))
    events: list[dict] = []

    async def listener(logger, schema_id, data):
        events.append(data)

    jp_serverapp.event_logger.add_listener(schema_id=cm.event_schema_id, listener=listener)
    assert (await upload("hooked.bin", os.urandom(PART_SIZE + 1))).code == 201
    assert seen == [("pre", "hooked.bin"), ("post", "hooked.bin")]
    saves = [e for e in events if e["action"] == "save"]
    assert [e["path"] for e in saves] == ["hooked.bin"]


async def test_the_server_says_that_it_takes_streamed_uploads(jp_fetch):
    info = json.loads((await jp_fetch("swan", "api", "info")).body)
    assert info["upload"] == {"max_size": 10 * 1024**3}
